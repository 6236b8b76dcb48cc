//! Bodies of the native types: fixed-width numbers, floats, uuids and escaped byte strings.

use super::{corrupt, invalid, number, KeyError, Reader};
use crate::cql::types::NativeType;

/// Appends the ascending body of a non-empty native value.
pub(super) fn encode(ty: NativeType, v: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
    use NativeType as N;
    match ty {
        N::Text => {
            std::str::from_utf8(v).map_err(|_| invalid(ty, "not UTF-8"))?;
            encode_escaped(v, out);
        }
        N::Ascii if !v.is_ascii() => return Err(invalid(ty, "not ASCII")),
        N::Ascii | N::Blob => encode_escaped(v, out),
        N::Inet if v.len() != 4 && v.len() != 16 => {
            return Err(invalid(ty, "an address is 4 or 16 bytes"))
        }
        N::Inet => encode_escaped(v, out),
        N::Boolean => out.push(u8::from(fixed::<1>(ty, v)?[0] != 0)),
        N::Tinyint => encode_signed(&fixed::<1>(ty, v)?, out),
        N::Smallint => encode_signed(&fixed::<2>(ty, v)?, out),
        N::Int => encode_signed(&fixed::<4>(ty, v)?, out),
        N::Bigint | N::Counter | N::Timestamp | N::Time => encode_signed(&fixed::<8>(ty, v)?, out),
        N::Date => out.extend_from_slice(&fixed::<4>(ty, v)?),
        N::Float => encode_float(fixed::<4>(ty, v)?, out),
        N::Double => encode_double(fixed::<8>(ty, v)?, out),
        N::Uuid => encode_uuid(fixed::<16>(ty, v)?, out),
        N::Timeuuid => encode_timeuuid(fixed::<16>(ty, v)?, out)?,
        N::Varint => number::encode_varint(v, out),
        N::Decimal => number::encode_decimal(v, out)?,
        N::Duration => return Err(KeyError::NotComparable(ty.to_string())),
    }
    Ok(())
}

/// Reads a body written by [`encode`], appending canonical wire bytes.
pub(super) fn decode(
    ty: NativeType,
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<(), KeyError> {
    use NativeType as N;
    match ty {
        N::Text | N::Ascii | N::Blob | N::Inet => decode_escaped(r, out)?,
        N::Boolean => match r.byte()? {
            b @ (0 | 1) => out.push(b),
            b => return Err(corrupt(format!("boolean byte {b:#04x}"))),
        },
        N::Tinyint => decode_signed(&r.array::<1>()?, out),
        N::Smallint => decode_signed(&r.array::<2>()?, out),
        N::Int => decode_signed(&r.array::<4>()?, out),
        N::Bigint | N::Counter | N::Timestamp | N::Time => decode_signed(&r.array::<8>()?, out),
        N::Date => out.extend_from_slice(&r.array::<4>()?),
        N::Float => decode_float(r.array::<4>()?, out),
        N::Double => decode_double(r.array::<8>()?, out),
        N::Uuid => decode_uuid(r.array::<16>()?, out),
        N::Timeuuid => decode_timeuuid(r.array::<16>()?, out),
        N::Varint => number::decode_varint(r, out)?,
        N::Decimal => number::decode_decimal(r, out)?,
        N::Duration => return Err(KeyError::NotComparable(ty.to_string())),
    }
    Ok(())
}

/// The value as exactly `N` bytes, or an error naming the type.
fn fixed<const N: usize>(ty: NativeType, v: &[u8]) -> Result<[u8; N], KeyError> {
    v.try_into()
        .map_err(|_| invalid(ty, format!("expected {N} bytes, got {}", v.len())))
}

/// `00` becomes `00 FF` and a `00` ends the value: shorter sorts first, and the terminator
/// is only ever followed by a header or terminator byte (never `FF`), so decoding is exact.
pub(super) fn encode_escaped(v: &[u8], out: &mut Vec<u8>) {
    for &b in v {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.push(0);
}

pub(super) fn decode_escaped(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), KeyError> {
    loop {
        match r.byte()? {
            0 if r.peek() == Some(0xFF) => {
                r.byte()?;
                out.push(0);
            }
            0 => return Ok(()),
            b => out.push(b),
        }
    }
}

fn encode_signed(v: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(v);
    if let Some(first) = out.get_mut(start) {
        *first ^= 0x80;
    }
}

fn decode_signed(v: &[u8], out: &mut Vec<u8>) {
    encode_signed(v, out);
}

/// `Float.compare` order: canonical NaN, then positives get the sign bit set and
/// negatives have every bit flipped.
fn encode_float(v: [u8; 4], out: &mut Vec<u8>) {
    let f = f32::from_be_bytes(v);
    let bits = if f.is_nan() {
        f32::NAN.to_bits()
    } else {
        f.to_bits()
    };
    let enc = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    };
    out.extend_from_slice(&enc.to_be_bytes());
}

fn decode_float(v: [u8; 4], out: &mut Vec<u8>) {
    let enc = u32::from_be_bytes(v);
    let bits = if enc >> 31 == 1 {
        enc & !(1 << 31)
    } else {
        !enc
    };
    out.extend_from_slice(&bits.to_be_bytes());
}

fn encode_double(v: [u8; 8], out: &mut Vec<u8>) {
    let f = f64::from_be_bytes(v);
    let bits = if f.is_nan() {
        f64::NAN.to_bits()
    } else {
        f.to_bits()
    };
    let enc = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    out.extend_from_slice(&enc.to_be_bytes());
}

fn decode_double(v: [u8; 8], out: &mut Vec<u8>) {
    let enc = u64::from_be_bytes(v);
    let bits = if enc >> 63 == 1 {
        enc & !(1 << 63)
    } else {
        !enc
    };
    out.extend_from_slice(&bits.to_be_bytes());
}

/// Splits 16 uuid bytes into most and least significant halves.
fn halves(v: [u8; 16]) -> (u64, u64) {
    let n = u128::from_be_bytes(v);
    ((n >> 64) as u64, n as u64)
}

fn join(msb: u64, lsb: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&msb.to_be_bytes());
    out.extend_from_slice(&lsb.to_be_bytes());
}

/// A v1 msb `time_low | time_mid | version+time_hi` reordered to
/// `version+time_hi | time_mid | time_low` (TimeUUIDType.reorderTimestampBytes).
fn reorder_timestamp(msb: u64) -> u64 {
    (msb << 48) | ((msb << 16) & 0xFFFF_0000_0000) | (msb >> 32)
}

fn restore_timestamp(r: u64) -> u64 {
    ((r & 0xFFFF_FFFF) << 32) | (((r >> 32) & 0xFFFF) << 16) | (r >> 48)
}

/// UUIDType: version first; v1 then by timestamp, others by the rest of the msb; then
/// the lsb unsigned.
fn encode_uuid(v: [u8; 16], out: &mut Vec<u8>) {
    let (msb, lsb) = halves(v);
    let version = (msb >> 12) & 0xF;
    let enc = if version == 1 {
        reorder_timestamp(msb)
    } else {
        (version << 60) | ((msb >> 16) << 12) | (msb & 0xFFF)
    };
    join(enc, lsb, out);
}

fn decode_uuid(v: [u8; 16], out: &mut Vec<u8>) {
    let (enc, lsb) = halves(v);
    let version = enc >> 60;
    let msb = if version == 1 {
        restore_timestamp(enc)
    } else {
        (((enc >> 12) & 0xFFFF_FFFF_FFFF) << 16) | (version << 12) | (enc & 0xFFF)
    };
    join(msb, lsb, out);
}

/// TimeUUIDType: timestamp, then each lsb byte compared signed (top bit flipped here).
fn encode_timeuuid(v: [u8; 16], out: &mut Vec<u8>) -> Result<(), KeyError> {
    let (msb, lsb) = halves(v);
    if (msb >> 12) & 0xF != 1 {
        return Err(invalid(NativeType::Timeuuid, "not a version 1 UUID"));
    }
    join(reorder_timestamp(msb), lsb ^ 0x8080_8080_8080_8080, out);
    Ok(())
}

fn decode_timeuuid(v: [u8; 16], out: &mut Vec<u8>) {
    let (enc, lsb) = halves(v);
    join(restore_timestamp(enc), lsb ^ 0x8080_8080_8080_8080, out);
}
