//! The primitive notations of spec §3 (`[int]`, `[string]`, `[bytes]`, ...).
//!
//! [`Reader`] walks a frame body held in [`Bytes`]: `[bytes]` values come out as zero-copy
//! slices of the frame, so a bound value or a cell costs a reference count, not a copy.
//! Every read first checks that the declared length is actually present, so a hostile
//! length field (2^31 with ten bytes left) fails before anything is allocated.
//!
//! The `put_*` functions are the inverse, written against [`BufMut`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Buf, BufMut, Bytes};
use uuid::Uuid;

use super::consistency::Consistency;
use super::error::ProtocolError;
use super::request::Value;

/// A cursor over an untrusted message body.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The bytes not yet consumed.
    pub fn rest(self) -> Bytes {
        self.buf
    }

    /// True once every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails with [`ProtocolError::TrailingBytes`] unless the body was fully consumed.
    pub fn finish(&self, message: &'static str) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes(message))
        }
    }

    /// The unread rest of the body, consuming it.
    pub fn take_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    fn need(&self, n: usize, what: &'static str) -> Result<(), ProtocolError> {
        if self.buf.len() < n {
            Err(ProtocolError::Truncated { what })
        } else {
            Ok(())
        }
    }

    /// `n` raw bytes as a zero-copy slice.
    pub fn read_raw(&mut self, n: usize, what: &'static str) -> Result<Bytes, ProtocolError> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }

    /// `[byte]`.
    pub fn read_u8(&mut self) -> Result<u8, ProtocolError> {
        self.need(1, "[byte]")?;
        Ok(self.buf.get_u8())
    }

    /// `[short]` as signed.
    pub fn read_i16(&mut self) -> Result<i16, ProtocolError> {
        self.need(2, "[short]")?;
        Ok(self.buf.get_i16())
    }

    /// `[short]`, the unsigned 16-bit notation.
    pub fn read_u16(&mut self) -> Result<u16, ProtocolError> {
        self.need(2, "[short]")?;
        Ok(self.buf.get_u16())
    }

    /// `[int]`.
    pub fn read_i32(&mut self) -> Result<i32, ProtocolError> {
        self.need(4, "[int]")?;
        Ok(self.buf.get_i32())
    }

    /// `[long]`.
    pub fn read_i64(&mut self) -> Result<i64, ProtocolError> {
        self.need(8, "[long]")?;
        Ok(self.buf.get_i64())
    }

    /// An `[int]` count that may not be negative.
    pub fn read_count(&mut self, what: &'static str) -> Result<usize, ProtocolError> {
        let n = self.read_i32()?;
        usize::try_from(n).map_err(|_| ProtocolError::NegativeLength(what))
    }

    fn read_utf8(&mut self, n: usize, what: &'static str) -> Result<String, ProtocolError> {
        self.need(n, what)?;
        let text = std::str::from_utf8(&self.buf[..n]).map_err(|_| ProtocolError::BadUtf8(what))?;
        let owned = text.to_owned();
        self.buf.advance(n);
        Ok(owned)
    }

    /// `[string]`: a `[short]` length and UTF-8 bytes.
    pub fn read_string(&mut self) -> Result<String, ProtocolError> {
        let n = self.read_u16()? as usize;
        self.read_utf8(n, "[string]")
    }

    /// `[long string]`: an `[int]` length and UTF-8 bytes.
    pub fn read_long_string(&mut self) -> Result<String, ProtocolError> {
        let n = self.read_count("[long string]")?;
        self.read_utf8(n, "[long string]")
    }

    /// `[bytes]`: an `[int]` length, negative meaning null.
    pub fn read_bytes(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        let n = self.read_i32()?;
        match usize::try_from(n) {
            Ok(n) => self.read_raw(n, "[bytes]").map(Some),
            Err(_) => Ok(None),
        }
    }

    /// `[value]`: like `[bytes]`, but -2 means "unset" and other negatives are invalid.
    pub fn read_value(&mut self) -> Result<Value, ProtocolError> {
        match self.read_i32()? {
            -1 => Ok(Value::Null),
            -2 => Ok(Value::Unset),
            n if n < 0 => Err(ProtocolError::NegativeLength("[value]")),
            n => self.read_raw(n as usize, "[value]").map(Value::Bytes),
        }
    }

    /// `[short bytes]`: a `[short]` length and raw bytes.
    pub fn read_short_bytes(&mut self) -> Result<Bytes, ProtocolError> {
        let n = self.read_u16()? as usize;
        self.read_raw(n, "[short bytes]")
    }

    /// Capacity for `n` declared elements of at least `min_size` bytes each, bounded by
    /// what is actually present so a lying count cannot reserve memory.
    pub fn capacity_for(&self, n: usize, min_size: usize) -> usize {
        n.min(self.buf.len() / min_size.max(1))
    }

    /// `[string list]`.
    pub fn read_string_list(&mut self) -> Result<Vec<String>, ProtocolError> {
        let n = self.read_u16()? as usize;
        let mut list = Vec::with_capacity(self.capacity_for(n, 2));
        for _ in 0..n {
            list.push(self.read_string()?);
        }
        Ok(list)
    }

    /// `[string map]`, in wire order (duplicates kept).
    pub fn read_string_map(&mut self) -> Result<Vec<(String, String)>, ProtocolError> {
        let n = self.read_u16()? as usize;
        let mut map = Vec::with_capacity(self.capacity_for(n, 4));
        for _ in 0..n {
            let key = self.read_string()?;
            map.push((key, self.read_string()?));
        }
        Ok(map)
    }

    /// `[string multimap]`, in wire order.
    pub fn read_string_multimap(&mut self) -> Result<Vec<(String, Vec<String>)>, ProtocolError> {
        let n = self.read_u16()? as usize;
        let mut map = Vec::with_capacity(self.capacity_for(n, 4));
        for _ in 0..n {
            let key = self.read_string()?;
            map.push((key, self.read_string_list()?));
        }
        Ok(map)
    }

    /// `[bytes map]` (custom payloads).
    pub fn read_bytes_map(&mut self) -> Result<Vec<(String, Option<Bytes>)>, ProtocolError> {
        let n = self.read_u16()? as usize;
        let mut map = Vec::with_capacity(self.capacity_for(n, 6));
        for _ in 0..n {
            let key = self.read_string()?;
            map.push((key, self.read_bytes()?));
        }
        Ok(map)
    }

    /// `[uuid]`: 16 bytes.
    pub fn read_uuid(&mut self) -> Result<Uuid, ProtocolError> {
        self.need(16, "[uuid]")?;
        let mut raw = [0u8; 16];
        self.buf.copy_to_slice(&mut raw);
        Ok(Uuid::from_bytes(raw))
    }

    /// `[inetaddr]`: a size byte (4 or 16) and the address.
    pub fn read_inetaddr(&mut self) -> Result<IpAddr, ProtocolError> {
        match self.read_u8()? {
            4 => {
                self.need(4, "[inetaddr]")?;
                Ok(IpAddr::V4(Ipv4Addr::from(self.buf.get_u32())))
            }
            16 => {
                self.need(16, "[inetaddr]")?;
                Ok(IpAddr::V6(Ipv6Addr::from(self.buf.get_u128())))
            }
            n => Err(ProtocolError::Invalid(format!(
                "invalid [inetaddr] size {n}"
            ))),
        }
    }

    /// `[inet]`: an `[inetaddr]` followed by an `[int]` port.
    pub fn read_inet(&mut self) -> Result<SocketAddr, ProtocolError> {
        let ip = self.read_inetaddr()?;
        let port = self.read_i32()?;
        let port = u16::try_from(port)
            .map_err(|_| ProtocolError::Invalid(format!("invalid [inet] port {port}")))?;
        Ok(SocketAddr::new(ip, port))
    }

    /// `[consistency]`: a `[short]` code.
    pub fn read_consistency(&mut self) -> Result<Consistency, ProtocolError> {
        Consistency::try_from(self.read_u16()?)
    }
}

/// The longest prefix of `s` that fits a `[short]` length, cut at a character boundary.
/// Server messages (which may quote a whole query) are shortened rather than corrupted.
fn short_prefix(s: &str) -> &str {
    let max = u16::MAX as usize;
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A length for an `[int]`-prefixed field. Frames are limited far below 2 GiB, so a
/// longer field cannot be sent anyway; clamping keeps the writer total.
fn int_len(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Writes `[byte]`.
pub fn put_u8(buf: &mut impl BufMut, v: u8) {
    buf.put_u8(v);
}

/// Writes `[short]` (signed).
pub fn put_i16(buf: &mut impl BufMut, v: i16) {
    buf.put_i16(v);
}

/// Writes `[short]`.
pub fn put_u16(buf: &mut impl BufMut, v: u16) {
    buf.put_u16(v);
}

/// Writes `[int]`.
pub fn put_i32(buf: &mut impl BufMut, v: i32) {
    buf.put_i32(v);
}

/// Writes `[long]`.
pub fn put_i64(buf: &mut impl BufMut, v: i64) {
    buf.put_i64(v);
}

/// Writes `[string]`; longer than 65535 bytes is truncated at a character boundary.
pub fn put_string(buf: &mut impl BufMut, s: &str) {
    let s = short_prefix(s);
    buf.put_u16(s.len() as u16);
    buf.put_slice(s.as_bytes());
}

/// Writes `[long string]`.
pub fn put_long_string(buf: &mut impl BufMut, s: &str) {
    put_raw_with_int_len(buf, s.as_bytes());
}

fn put_raw_with_int_len(buf: &mut impl BufMut, b: &[u8]) {
    let n = int_len(b.len());
    buf.put_i32(n);
    buf.put_slice(&b[..n as usize]);
}

/// Writes `[bytes]`; `None` is null (-1).
pub fn put_bytes(buf: &mut impl BufMut, b: Option<&[u8]>) {
    match b {
        Some(b) => put_raw_with_int_len(buf, b),
        None => buf.put_i32(-1),
    }
}

/// Writes `[value]` (null -1, unset -2).
pub fn put_value(buf: &mut impl BufMut, v: &Value) {
    match v {
        Value::Null => buf.put_i32(-1),
        Value::Unset => buf.put_i32(-2),
        Value::Bytes(b) => put_raw_with_int_len(buf, b),
    }
}

/// Writes `[short bytes]`; longer than 65535 bytes is truncated.
pub fn put_short_bytes(buf: &mut impl BufMut, b: &[u8]) {
    let b = &b[..b.len().min(u16::MAX as usize)];
    buf.put_u16(b.len() as u16);
    buf.put_slice(b);
}

/// Writes `[string list]` (at most 65535 entries).
pub fn put_string_list<S: AsRef<str>>(buf: &mut impl BufMut, list: &[S]) {
    let list = &list[..list.len().min(u16::MAX as usize)];
    buf.put_u16(list.len() as u16);
    for s in list {
        put_string(buf, s.as_ref());
    }
}

/// Writes `[string map]` (at most 65535 entries).
pub fn put_string_map(buf: &mut impl BufMut, map: &[(String, String)]) {
    let map = &map[..map.len().min(u16::MAX as usize)];
    buf.put_u16(map.len() as u16);
    for (k, v) in map {
        put_string(buf, k);
        put_string(buf, v);
    }
}

/// Writes `[string multimap]` (at most 65535 entries).
pub fn put_string_multimap(buf: &mut impl BufMut, map: &[(String, Vec<String>)]) {
    let map = &map[..map.len().min(u16::MAX as usize)];
    buf.put_u16(map.len() as u16);
    for (k, v) in map {
        put_string(buf, k);
        put_string_list(buf, v);
    }
}

/// Writes `[bytes map]` (at most 65535 entries).
pub fn put_bytes_map(buf: &mut impl BufMut, map: &[(String, Option<Bytes>)]) {
    let map = &map[..map.len().min(u16::MAX as usize)];
    buf.put_u16(map.len() as u16);
    for (k, v) in map {
        put_string(buf, k);
        put_bytes(buf, v.as_deref());
    }
}

/// Writes `[uuid]`.
pub fn put_uuid(buf: &mut impl BufMut, id: &Uuid) {
    buf.put_slice(id.as_bytes());
}

/// Writes `[inetaddr]`.
pub fn put_inetaddr(buf: &mut impl BufMut, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            buf.put_u8(4);
            buf.put_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            buf.put_u8(16);
            buf.put_slice(&v6.octets());
        }
    }
}

/// Writes `[inet]`: address then `[int]` port.
pub fn put_inet(buf: &mut impl BufMut, addr: &SocketAddr) {
    put_inetaddr(buf, &addr.ip());
    buf.put_i32(i32::from(addr.port()));
}

/// Writes `[consistency]`.
pub fn put_consistency(buf: &mut impl BufMut, c: Consistency) {
    buf.put_u16(c as u16);
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    fn reader(write: impl FnOnce(&mut BytesMut)) -> Reader {
        let mut buf = BytesMut::new();
        write(&mut buf);
        Reader::new(buf.freeze())
    }

    #[test]
    fn integers_round_trip() {
        let mut r = reader(|b| {
            put_u8(b, 0xfe);
            put_i16(b, -2);
            put_u16(b, 65000);
            put_i32(b, i32::MIN);
            put_i64(b, -7);
        });
        assert_eq!(r.read_u8(), Ok(0xfe));
        assert_eq!(r.read_i16(), Ok(-2));
        assert_eq!(r.read_u16(), Ok(65000));
        assert_eq!(r.read_i32(), Ok(i32::MIN));
        assert_eq!(r.read_i64(), Ok(-7));
        assert!(r.is_empty());
        assert!(r.read_u8().is_err());
    }

    #[test]
    fn strings_round_trip() {
        let mut r = reader(|b| {
            put_string(b, "héllo");
            put_long_string(b, "SELECT * FROM t");
        });
        assert_eq!(r.read_string().as_deref(), Ok("héllo"));
        assert_eq!(r.read_long_string().as_deref(), Ok("SELECT * FROM t"));
        assert_eq!(r.finish("test"), Ok(()));
    }

    #[test]
    fn overlong_string_is_truncated_at_char_boundary() {
        let long = "é".repeat(40_000); // 80,000 bytes
        let mut r = reader(|b| put_string(b, &long));
        let back = r.read_string().unwrap();
        assert_eq!(back.len(), 65534);
        assert!(long.starts_with(&back));
    }

    #[test]
    fn bytes_and_values_round_trip() {
        let mut r = reader(|b| {
            put_bytes(b, Some(b"abc"));
            put_bytes(b, None);
            put_value(b, &Value::Null);
            put_value(b, &Value::Unset);
            put_value(b, &Value::Bytes(Bytes::from_static(b"xy")));
            put_short_bytes(b, b"id");
        });
        assert_eq!(r.read_bytes(), Ok(Some(Bytes::from_static(b"abc"))));
        assert_eq!(r.read_bytes(), Ok(None));
        assert_eq!(r.read_value(), Ok(Value::Null));
        assert_eq!(r.read_value(), Ok(Value::Unset));
        assert_eq!(r.read_value(), Ok(Value::Bytes(Bytes::from_static(b"xy"))));
        assert_eq!(r.read_short_bytes(), Ok(Bytes::from_static(b"id")));
        assert!(r.is_empty());
    }

    #[test]
    fn value_rejects_other_negative_lengths() {
        let mut r = reader(|b| put_i32(b, -3));
        assert_eq!(
            r.read_value(),
            Err(ProtocolError::NegativeLength("[value]"))
        );
    }

    #[test]
    fn huge_declared_lengths_fail_without_allocating() {
        let mut r = reader(|b| {
            put_i32(b, i32::MAX);
            b.put_slice(&[0; 10]);
        });
        assert!(matches!(
            r.read_bytes(),
            Err(ProtocolError::Truncated { .. })
        ));
        let mut r = reader(|b| put_u16(b, u16::MAX)); // 65535 strings declared, none present
        assert!(r.read_string_list().is_err());
        assert_eq!(r.capacity_for(1 << 30, 2), 0);
    }

    #[test]
    fn collections_round_trip() {
        let list = vec!["a".to_string(), "bc".to_string()];
        let map = vec![("CQL_VERSION".to_string(), "3.0.0".to_string())];
        let multi = vec![("COMPRESSION".to_string(), vec!["lz4".to_string()])];
        let bmap = vec![
            ("k".to_string(), Some(Bytes::from_static(b"v"))),
            ("n".to_string(), None),
        ];
        let mut r = reader(|b| {
            put_string_list(b, &list);
            put_string_map(b, &map);
            put_string_multimap(b, &multi);
            put_bytes_map(b, &bmap);
        });
        assert_eq!(r.read_string_list(), Ok(list));
        assert_eq!(r.read_string_map(), Ok(map));
        assert_eq!(r.read_string_multimap(), Ok(multi));
        assert_eq!(r.read_bytes_map(), Ok(bmap));
        assert!(r.is_empty());
    }

    #[test]
    fn uuid_inet_consistency_round_trip() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let v4: SocketAddr = "10.1.2.3:9042".parse().unwrap();
        let v6: SocketAddr = "[::1]:7000".parse().unwrap();
        let mut r = reader(|b| {
            put_uuid(b, &id);
            put_inet(b, &v4);
            put_inet(b, &v6);
            put_consistency(b, Consistency::LocalQuorum);
        });
        assert_eq!(r.read_uuid(), Ok(id));
        assert_eq!(r.read_inet(), Ok(v4));
        assert_eq!(r.read_inet(), Ok(v6));
        assert_eq!(r.read_consistency(), Ok(Consistency::LocalQuorum));
        assert!(r.is_empty());
    }

    #[test]
    fn bad_utf8_and_bad_inet_are_errors() {
        let mut r = reader(|b| {
            put_u16(b, 2);
            b.put_slice(&[0xff, 0xfe]);
        });
        assert_eq!(r.read_string(), Err(ProtocolError::BadUtf8("[string]")));
        let mut r = reader(|b| put_u8(b, 5));
        assert!(r.read_inetaddr().is_err());
        let mut r = reader(|b| put_u16(b, 0x00ff));
        assert_eq!(
            r.read_consistency(),
            Err(ProtocolError::BadConsistency(0xff))
        );
    }
}
