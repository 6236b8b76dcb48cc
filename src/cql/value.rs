//! Typed CQL values and their wire serialisation (spec §6).
//!
//! `CqlValue` is what the executor builds rows from and what literals and bound values are
//! converted into. `to_bytes` gives the `[bytes]` content of a cell.

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// A value of some CQL type. Null is represented outside (as `Option<CqlValue>`).
#[derive(Debug, Clone, PartialEq)]
pub enum CqlValue {
    Ascii(String),
    Text(String),
    Bigint(i64),
    Counter(i64),
    Int(i32),
    Smallint(i16),
    Tinyint(i8),
    Boolean(bool),
    Blob(Bytes),
    Double(f64),
    Float(f32),
    Uuid(Uuid),
    Timeuuid(Uuid),
    Inet(IpAddr),
    /// Milliseconds since the epoch.
    Timestamp(i64),
    /// Days with 2^31 = 1970-01-01.
    Date(u32),
    /// Nanoseconds since midnight.
    Time(i64),
    /// Minimal two's-complement big-endian bytes.
    Varint(Vec<u8>),
    /// `unscaled × 10^-scale`, unscaled as minimal two's-complement bytes.
    Decimal { scale: i32, unscaled: Vec<u8> },
    Duration { months: i32, days: i32, nanos: i64 },
    List(Vec<CqlValue>),
    Set(Vec<CqlValue>),
    Map(Vec<(CqlValue, CqlValue)>),
    Tuple(Vec<Option<CqlValue>>),
    /// Fields in declaration order; trailing fields may be missing.
    Udt(Vec<(String, Option<CqlValue>)>),
}

impl CqlValue {
    /// The serialized cell content.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.serialize(&mut buf);
        buf.freeze()
    }

    /// Appends the serialized form (without the `[bytes]` length prefix).
    pub fn serialize(&self, buf: &mut BytesMut) {
        use CqlValue::*;
        match self {
            Ascii(s) | Text(s) => buf.put_slice(s.as_bytes()),
            Bigint(v) | Counter(v) | Timestamp(v) | Time(v) => buf.put_i64(*v),
            Int(v) => buf.put_i32(*v),
            Smallint(v) => buf.put_i16(*v),
            Tinyint(v) => buf.put_i8(*v),
            Boolean(v) => buf.put_u8(u8::from(*v)),
            Blob(b) => buf.put_slice(b),
            Double(v) => buf.put_f64(*v),
            Float(v) => buf.put_f32(*v),
            Uuid(u) | Timeuuid(u) => buf.put_slice(u.as_bytes()),
            Inet(IpAddr::V4(a)) => buf.put_slice(&a.octets()),
            Inet(IpAddr::V6(a)) => buf.put_slice(&a.octets()),
            Date(d) => buf.put_u32(*d),
            Varint(b) => buf.put_slice(b),
            Decimal { scale, unscaled } => {
                buf.put_i32(*scale);
                buf.put_slice(unscaled);
            }
            Duration { months, days, nanos } => {
                put_vint(buf, i64::from(*months));
                put_vint(buf, i64::from(*days));
                put_vint(buf, *nanos);
            }
            List(items) | Set(items) => {
                buf.put_i32(items.len() as i32);
                items.iter().for_each(|v| put_element(buf, Some(v)));
            }
            Map(entries) => {
                buf.put_i32(entries.len() as i32);
                for (k, v) in entries {
                    put_element(buf, Some(k));
                    put_element(buf, Some(v));
                }
            }
            Tuple(items) => items.iter().for_each(|v| put_element(buf, v.as_ref())),
            Udt(fields) => fields.iter().for_each(|(_, v)| put_element(buf, v.as_ref())),
        }
    }
}

/// A collection element or tuple field: `[bytes]` with -1 for null.
fn put_element(buf: &mut BytesMut, value: Option<&CqlValue>) {
    match value {
        None => buf.put_i32(-1),
        Some(v) => {
            let start = buf.len();
            buf.put_i32(0);
            v.serialize(buf);
            let len = (buf.len() - start - 4) as i32;
            buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
}

/// Zig-zag encoded variable-length integer (spec §3 `[vint]`), as used by duration.
pub fn put_vint(buf: &mut BytesMut, value: i64) {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    let bytes_needed = (64 - n.leading_zeros()).max(1).div_ceil(7).min(9) as usize;
    if bytes_needed == 1 {
        buf.put_u8(n as u8);
        return;
    }
    let mut out = [0u8; 9];
    let extra = bytes_needed - 1;
    for i in (0..bytes_needed).rev() {
        out[i] = n as u8;
        n >>= 8;
    }
    // The first byte carries `extra` leading one-bits, then the high bits of the value.
    out[0] |= !(0xFFu8 >> extra);
    buf.put_slice(&out[..bytes_needed]);
}
