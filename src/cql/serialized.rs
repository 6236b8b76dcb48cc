//! Serialized (wire) values checked against their types, and non-frozen collections
//! split into the elements storage keeps as separate cells.
//!
//! A bound value arrives as opaque bytes; Cassandra runs its type's validator before the
//! value reaches a memtable, so a driver bug or a hostile client cannot store bytes that a
//! later read, comparator or `toJson` chokes on. [`validate`] is that check, with
//! Cassandra 4.1's rules and messages (`org.apache.cassandra.serializers.*`): which types
//! accept the empty value (all but tinyint, smallint, date, time and duration), fixed widths,
//! UTF-8 and 7-bit ASCII, version-1 timeuuids, well-formed durations, and collections,
//! tuples and user types checked element by element (v4 collections: an `i32` count, then
//! `i32`-length-prefixed elements, never null). One deliberate addition: `time` must lie in
//! `[0, 86399999999999]` nanoseconds, a bound Cassandra enforces only when parsing text.
//!
//! User types must be resolved to the tuple of their field types first
//! (`Catalog::resolve_user_types`); a tuple, like a user type, may carry fewer fields than
//! declared (the missing trailing fields read as null), so one rule serves both.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::types::{CqlType, NativeType};

/// A serialized value that is not a value of its type: Cassandra's validator message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl From<String> for InvalidValue {
    fn from(message: String) -> Self {
        InvalidValue(message)
    }
}

/// The largest `time` value: the last nanosecond of a day.
pub const MAX_TIME_NANOS: i64 = 86_399_999_999_999;

/// Checks that `bytes` is a valid serialized value of `ty` (user types resolved to tuples).
/// The error is Cassandra's validator message.
pub fn validate(ty: &CqlType, bytes: &[u8]) -> Result<(), InvalidValue> {
    check(ty, bytes).map_err(InvalidValue)
}

fn check(ty: &CqlType, bytes: &[u8]) -> Result<(), String> {
    match ty.unfrozen() {
        CqlType::Native(native) => validate_native(*native, bytes),
        CqlType::List(elem) => validate_collection("list", bytes, |r| check(elem, r.element()?)),
        CqlType::Set(elem) => validate_collection("set", bytes, |r| check(elem, r.element()?)),
        CqlType::Map(key, value) => validate_collection("map", bytes, |r| {
            check(key, r.element()?)?;
            check(value, r.element()?)
        }),
        CqlType::Tuple(fields) => validate_tuple(fields, bytes),
        // Unresolved user types and custom types have no validator we can apply.
        CqlType::UserType { .. } | CqlType::Custom(_) | CqlType::Frozen(_) => Ok(()),
    }
}

fn validate_native(ty: NativeType, b: &[u8]) -> Result<(), String> {
    use NativeType as N;
    let len = b.len();
    let fixed = |n: usize, message: &str| {
        if len == n || len == 0 {
            Ok(())
        } else {
            Err(format!("{message} ({len})"))
        }
    };
    let exact = |n: usize, message: &str| {
        if len == n {
            Ok(())
        } else {
            Err(format!("{message} ({len})"))
        }
    };
    match ty {
        N::Int => fixed(4, "Expected 4 or 0 byte int"),
        N::Bigint | N::Counter => fixed(8, "Expected 8 or 0 byte long"),
        N::Timestamp => fixed(8, "Expected 8 or 0 byte long for date"),
        N::Float => fixed(4, "Expected 4 or 0 byte value for a float"),
        N::Double => fixed(8, "Expected 8 or 0 byte value for a double"),
        N::Uuid => fixed(16, "UUID should be 16 or 0 bytes"),
        N::Timeuuid => validate_timeuuid(b),
        N::Smallint => exact(2, "Expected 2 bytes for a smallint"),
        N::Tinyint => exact(1, "Expected 1 byte for a tinyint"),
        N::Date => exact(4, "Expected 4 byte long for date"),
        N::Time => {
            exact(8, "Expected 8 byte long for time")?;
            validate_time(b)
        }
        N::Boolean if len > 1 => Err(format!("Expected 1 or 0 byte value ({len})")),
        N::Boolean | N::Blob | N::Varint => Ok(()),
        N::Decimal if len != 0 && len < 4 => Err(format!("Expected 0 or at least 4 bytes ({len})")),
        N::Decimal => Ok(()),
        N::Inet if len == 0 || len == 4 || len == 16 => Ok(()),
        N::Inet => Err(format!("Expected 4 or 16 byte inetaddress; got {}", hex(b))),
        N::Ascii => match b.iter().find(|c| !c.is_ascii()) {
            Some(c) => Err(format!("Invalid byte for ascii: {}", *c as i8)),
            None => Ok(()),
        },
        N::Text => std::str::from_utf8(b)
            .map(|_| ())
            .map_err(|_| "String didn't validate.".to_owned()),
        N::Duration => validate_duration(b),
    }
}

fn validate_timeuuid(b: &[u8]) -> Result<(), String> {
    match b {
        [] => Ok(()),
        [_, _, _, _, _, _, version, ..] if b.len() == 16 => {
            if version & 0xF0 == 0x10 {
                Ok(())
            } else {
                Err("Invalid version for TimeUUID type.".to_owned())
            }
        }
        _ => Err(format!("UUID should be 16 or 0 bytes ({})", b.len())),
    }
}

fn validate_time(b: &[u8]) -> Result<(), String> {
    let nanos = <[u8; 8]>::try_from(b)
        .map(i64::from_be_bytes)
        .map_err(|_| format!("Expected 8 byte long for time ({})", b.len()))?;
    if (0..=MAX_TIME_NANOS).contains(&nanos) {
        Ok(())
    } else {
        Err(format!(
            "Time value {nanos} is out of range: expected 0 to {MAX_TIME_NANOS} nanoseconds"
        ))
    }
}

fn validate_duration(b: &[u8]) -> Result<(), String> {
    if b.len() < 3 {
        return Err(format!(
            "Expected at least 3 bytes for a duration ({})",
            b.len()
        ));
    }
    let invalid = || "Invalid duration: truncated or malformed vint".to_owned();
    let mut rest = b;
    let months = read_vint(&mut rest).ok_or_else(invalid)?;
    let days = read_vint(&mut rest).ok_or_else(invalid)?;
    let nanos = read_vint(&mut rest).ok_or_else(invalid)?;
    if !rest.is_empty() {
        return Err("Invalid duration: unexpected bytes after the nanoseconds".to_owned());
    }
    if i32::try_from(months).is_err() {
        return Err(format!(
            "The duration months must be a 32 bits integer but was: {months}"
        ));
    }
    if i32::try_from(days).is_err() {
        return Err(format!(
            "The duration days must be a 32 bits integer but was: {days}"
        ));
    }
    let all_non_negative = months >= 0 && days >= 0 && nanos >= 0;
    let all_non_positive = months <= 0 && days <= 0 && nanos <= 0;
    if all_non_negative || all_non_positive {
        Ok(())
    } else {
        Err(format!(
            "The duration months, days and nanoseconds must be all of the same sign ({months}, {days}, {nanos})"
        ))
    }
}

/// Reads one zig-zag `[vint]` (the first byte's leading one-bits count the extra bytes).
fn read_vint(input: &mut &[u8]) -> Option<i64> {
    let (&first, rest) = input.split_first()?;
    let extra = first.leading_ones() as usize;
    let tail = rest.get(..extra)?;
    let mut n = u64::from(first.checked_shl(extra as u32).map_or(0, |b| b >> extra));
    for &byte in tail {
        n = (n << 8) | u64::from(byte);
    }
    *input = rest.get(extra..)?;
    Some(((n >> 1) as i64) ^ -((n & 1) as i64))
}

/// A cursor over a collection or tuple body.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn i32(&mut self) -> Option<i32> {
        let head = self.rest.get(..4)?;
        self.rest = self.rest.get(4..)?;
        head.try_into().ok().map(i32::from_be_bytes)
    }

    /// An `[bytes]`-framed value: None is null (negative length); Err if truncated.
    fn value(&mut self) -> Result<Option<&'a [u8]>, ()> {
        let len = self.i32().ok_or(())?;
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        let value = self.rest.get(..len).ok_or(())?;
        self.rest = self.rest.get(len..).ok_or(())?;
        Ok(Some(value))
    }

    /// A collection element, which may not be null.
    fn element(&mut self) -> Result<&'a [u8], String> {
        match self.value() {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err("Null value read when not allowed".to_owned()),
            Err(()) => Err(String::new()),
        }
    }
}

/// Checks the v4 collection layout, calling `element` once per element (or entry); an
/// empty byte string is the empty collection.
fn validate_collection(
    kind: &str,
    bytes: &[u8],
    mut element: impl FnMut(&mut Reader<'_>) -> Result<(), String>,
) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let short = || format!("Not enough bytes to read a {kind}");
    let mut reader = Reader { rest: bytes };
    let count = reader.i32().ok_or_else(short)?;
    if count < 0 {
        return Err(short());
    }
    for _ in 0..count {
        // An empty message means the reader ran out of bytes.
        element(&mut reader).map_err(|e| if e.is_empty() { short() } else { e })?;
    }
    if reader.rest.is_empty() {
        Ok(())
    } else {
        Err(format!("Unexpected extraneous bytes after {kind} value"))
    }
}

fn validate_tuple(fields: &[CqlType], bytes: &[u8]) -> Result<(), String> {
    let mut reader = Reader { rest: bytes };
    for (i, ty) in fields.iter().enumerate() {
        // Fewer fields than declared are allowed: the type may have grown since.
        if reader.rest.is_empty() {
            return Ok(());
        }
        if reader.rest.len() < 4 {
            return Err(format!("Not enough bytes to read size of {i}th component"));
        }
        match reader.value() {
            Ok(Some(field)) => check(ty, field)?,
            Ok(None) => {}
            Err(()) => return Err(format!("Not enough bytes to read {i}th component")),
        }
    }
    if reader.rest.is_empty() {
        Ok(())
    } else {
        Err("Invalid remaining data after end of tuple value".to_owned())
    }
}

/// The elements of a non-frozen list, set or map value as `(key, value)` pairs: a set's
/// elements as `(element, empty)`, a map's entries as `(key, value)`, a list's elements as
/// `(empty, element)`. The value should have passed [`validate`]; anything else errs.
pub fn split_collection(ty: &CqlType, bytes: &[u8]) -> Result<Vec<(Bytes, Bytes)>, InvalidValue> {
    split(ty, bytes).map_err(InvalidValue)
}

fn split(ty: &CqlType, bytes: &[u8]) -> Result<Vec<(Bytes, Bytes)>, String> {
    let (kind, entry_len) = match ty.unfrozen() {
        CqlType::List(_) => ("list", 1),
        CqlType::Set(_) => ("set", 1),
        CqlType::Map(_, _) => ("map", 2),
        other => return Err(format!("{other} is not a collection")),
    };
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let short = || format!("Not enough bytes to read a {kind}");
    let mut reader = Reader { rest: bytes };
    let count = reader.i32().ok_or_else(short)?;
    // Each element takes at least its 4-byte length: bound the allocation by the input.
    let count = usize::try_from(count).map_err(|_| short())?;
    if count > reader.rest.len() / (4 * entry_len) {
        return Err(short());
    }
    let mut out = Vec::with_capacity(count);
    let next = |r: &mut Reader<'_>| {
        r.element()
            .map(Bytes::copy_from_slice)
            .map_err(|e| if e.is_empty() { short() } else { e })
    };
    for _ in 0..count {
        let first = next(&mut reader)?;
        out.push(match kind {
            "list" => (Bytes::new(), first),
            "set" => (first, Bytes::new()),
            _ => (first, next(&mut reader)?),
        });
    }
    if !reader.rest.is_empty() {
        return Err(format!("Unexpected extraneous bytes after {kind} value"));
    }
    Ok(out)
}

/// `bytes` (a valid value of `ty`, user types resolved) in the form Cassandra stores: the
/// elements of every set sorted and de-duplicated, and the entries of every map sorted by
/// key with the last of equal keys kept, at any depth — Cassandra rebuilds frozen sets
/// and maps in its comparator's order when it receives them, so a driver's hash-ordered
/// map reads back sorted and equal values compare equal.
pub fn normalize(ty: &CqlType, bytes: &Bytes) -> Result<Bytes, InvalidValue> {
    normalized(ty, bytes).map_err(InvalidValue)
}

fn normalized(ty: &CqlType, bytes: &Bytes) -> Result<Bytes, String> {
    if bytes.is_empty() || !has_unordered(ty) {
        return Ok(bytes.clone());
    }
    match ty.unfrozen() {
        CqlType::List(e) => {
            let mut items = split(ty, bytes)?;
            for item in &mut items {
                item.1 = normalized(e, &item.1)?;
            }
            Ok(join_collection(ty, &items))
        }
        CqlType::Set(e) => {
            let keys = split(ty, bytes)?
                .into_iter()
                .map(|(k, _)| normalized(e, &k))
                .collect::<Result<Vec<_>, _>>()?;
            let entries = keys.into_iter().map(|k| (k, Bytes::new())).collect();
            Ok(join_collection(ty, &sorted_by_key(e, entries)?))
        }
        CqlType::Map(k, v) => {
            let mut entries = Vec::new();
            for (key, value) in split(ty, bytes)? {
                entries.push((normalized(k, &key)?, normalized(v, &value)?));
            }
            Ok(join_collection(ty, &sorted_by_key(k, entries)?))
        }
        CqlType::Tuple(fields) => normalize_fields(fields, bytes),
        _ => Ok(bytes.clone()),
    }
}

/// Whether a value of `ty` can hold a set or map anywhere inside.
fn has_unordered(ty: &CqlType) -> bool {
    match ty.unfrozen() {
        CqlType::Set(_) | CqlType::Map(_, _) => true,
        CqlType::List(e) => has_unordered(e),
        CqlType::Tuple(fields) => fields.iter().any(has_unordered),
        _ => false,
    }
}

/// Entries sorted by their keys' comparator order; of equal keys the last one stays.
fn sorted_by_key(
    key_type: &CqlType,
    entries: Vec<(Bytes, Bytes)>,
) -> Result<Vec<(Bytes, Bytes)>, String> {
    let mut keyed = Vec::with_capacity(entries.len());
    for (position, (key, value)) in entries.into_iter().enumerate() {
        let mut order = Vec::new();
        crate::storage::comparable::encode_value(key_type, &key, &mut order)
            .map_err(|e| e.to_string())?;
        keyed.push((order, position, key, value));
    }
    // Equal keys end up adjacent, the latest last; keep only that one.
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<(Vec<u8>, (Bytes, Bytes))> = Vec::with_capacity(keyed.len());
    for (order, _, key, value) in keyed {
        match out.last_mut() {
            Some(last) if last.0 == order => last.1 = (key, value),
            _ => out.push((order, (key, value))),
        }
    }
    Ok(out.into_iter().map(|(_, entry)| entry).collect())
}

/// A tuple's (or resolved user type's) fields, each normalized; nulls and missing trailing
/// fields stay as they are.
fn normalize_fields(fields: &[CqlType], bytes: &Bytes) -> Result<Bytes, String> {
    let mut reader = Reader { rest: bytes };
    let mut buf = BytesMut::with_capacity(bytes.len());
    for ty in fields {
        if reader.rest.is_empty() {
            break;
        }
        let field = reader
            .value()
            .map_err(|()| "Not enough bytes to read a tuple field".to_owned())?;
        match field {
            None => buf.put_i32(-1),
            Some(field) => {
                let field = normalized(ty, &Bytes::copy_from_slice(field))?;
                buf.put_i32(field.len() as i32);
                buf.put_slice(&field);
            }
        }
    }
    buf.put_slice(reader.rest);
    Ok(buf.freeze())
}

/// The inverse of [`split_collection`]: the v4 serialized value drivers read, from elements
/// in storage order (a list's values in order, a set's keys, a map's keys and values).
/// Anything but a list, set or map gives the empty value.
pub fn join_collection(ty: &CqlType, elements: &[(Bytes, Bytes)]) -> Bytes {
    let mut buf = BytesMut::new();
    let kind = ty.unfrozen();
    if !matches!(
        kind,
        CqlType::List(_) | CqlType::Set(_) | CqlType::Map(_, _)
    ) {
        return Bytes::new();
    }
    buf.put_i32(elements.len() as i32);
    let put = |buf: &mut BytesMut, b: &Bytes| {
        buf.put_i32(b.len() as i32);
        buf.put_slice(b);
    };
    for (key, value) in elements {
        match kind {
            CqlType::List(_) => put(&mut buf, value),
            CqlType::Set(_) => put(&mut buf, key),
            _ => {
                put(&mut buf, key);
                put(&mut buf, value);
            }
        }
    }
    buf.freeze()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use proptest::prelude::*;

    use super::*;
    use crate::cql::value::CqlValue;

    fn native(n: NativeType) -> CqlType {
        CqlType::Native(n)
    }

    fn err(ty: &CqlType, bytes: &[u8]) -> String {
        validate(ty, bytes).expect_err("should be refused").0
    }

    #[test]
    fn fixed_widths_have_cassandras_messages() {
        use NativeType as N;
        assert_eq!(
            err(&native(N::Int), &[0; 3]),
            "Expected 4 or 0 byte int (3)"
        );
        assert_eq!(
            err(&native(N::Bigint), &[0; 4]),
            "Expected 8 or 0 byte long (4)"
        );
        assert_eq!(
            err(&native(N::Tinyint), &[]),
            "Expected 1 byte for a tinyint (0)"
        );
        assert_eq!(
            err(&native(N::Smallint), &[0; 4]),
            "Expected 2 bytes for a smallint (4)"
        );
        assert_eq!(
            err(&native(N::Date), &[]),
            "Expected 4 byte long for date (0)"
        );
        assert_eq!(
            err(&native(N::Boolean), &[1, 1]),
            "Expected 1 or 0 byte value (2)"
        );
        assert_eq!(
            err(&native(N::Uuid), &[0; 15]),
            "UUID should be 16 or 0 bytes (15)"
        );
        assert_eq!(
            err(&native(N::Inet), &[1, 2, 3]),
            "Expected 4 or 16 byte inetaddress; got 010203"
        );
        assert_eq!(
            err(&native(N::Decimal), &[0, 0]),
            "Expected 0 or at least 4 bytes (2)"
        );
    }

    #[test]
    fn empty_values_are_valid_where_cassandra_allows_them() {
        use NativeType as N;
        let allowed = [
            N::Int,
            N::Bigint,
            N::Counter,
            N::Timestamp,
            N::Float,
            N::Double,
            N::Uuid,
            N::Timeuuid,
            N::Boolean,
            N::Inet,
            N::Decimal,
            N::Varint,
            N::Text,
            N::Ascii,
            N::Blob,
        ];
        for ty in NativeType::ALL {
            let result = validate(&native(ty), &[]);
            assert_eq!(result.is_ok(), allowed.contains(&ty), "{ty}: {result:?}");
        }
        assert!(validate(&CqlType::list(native(N::Int)), &[]).is_ok());
    }

    #[test]
    fn text_ascii_timeuuid_and_time_are_checked() {
        use NativeType as N;
        assert_eq!(err(&native(N::Text), &[0xC3]), "String didn't validate.");
        assert_eq!(
            err(&native(N::Ascii), &[b'a', 0xC3]),
            "Invalid byte for ascii: -61"
        );
        let v4 = uuid::Uuid::new_v4();
        assert_eq!(
            err(&native(N::Timeuuid), v4.as_bytes()),
            "Invalid version for TimeUUID type."
        );
        let day = (MAX_TIME_NANOS + 1).to_be_bytes();
        assert!(err(&native(N::Time), &day).contains("out of range"));
        assert!(validate(&native(N::Time), &MAX_TIME_NANOS.to_be_bytes()).is_ok());
    }

    #[test]
    fn durations_must_be_well_formed() {
        let ty = native(NativeType::Duration);
        let mixed = CqlValue::Duration {
            months: 1,
            days: -1,
            nanos: 0,
        };
        assert_eq!(
            err(&ty, &mixed.to_bytes()),
            "The duration months, days and nanoseconds must be all of the same sign (1, -1, 0)"
        );
        assert_eq!(
            err(&ty, &[0, 0]),
            "Expected at least 3 bytes for a duration (2)"
        );
        assert!(err(&ty, &[0, 0, 0xF0]).starts_with("Invalid duration"));
        assert!(err(&ty, &[0, 0, 0, 0]).starts_with("Invalid duration"));
        // A nine-byte vint: 0xFF, then the eight bytes of zig-zag(i64::MAX).
        let longest = [0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE];
        assert!(validate(&ty, &longest).is_ok());
    }

    #[test]
    fn collections_refuse_nulls_truncation_and_trailing_bytes() {
        let ty = CqlType::list(native(NativeType::Int));
        let null = [0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(err(&ty, &null), "Null value read when not allowed");
        assert_eq!(
            err(&ty, &[0, 0, 0, 1, 0, 0]),
            "Not enough bytes to read a list"
        );
        assert_eq!(
            err(&ty, &[0, 0, 0, 0, 9]),
            "Unexpected extraneous bytes after list value"
        );
        let bad_elem = [0, 0, 0, 1, 0, 0, 0, 1, 7];
        assert_eq!(err(&ty, &bad_elem), "Expected 4 or 0 byte int (1)");
        let map = CqlType::map(native(NativeType::Text), native(NativeType::Int));
        assert_eq!(err(&map, &[0, 0, 0, 1]), "Not enough bytes to read a map");
    }

    #[test]
    fn tuples_may_be_short_but_not_long() {
        let ty = CqlType::Tuple(vec![native(NativeType::Int), native(NativeType::Text)]);
        let one = [0, 0, 0, 4, 0, 0, 0, 7];
        assert!(validate(&ty, &one).is_ok());
        let null_field = [0xFF, 0xFF, 0xFF, 0xFF];
        assert!(validate(&ty, &null_field).is_ok());
        let mut three = one.to_vec();
        three.extend_from_slice(&[0, 0, 0, 0]);
        assert!(validate(&ty, &three).is_ok());
        three.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            err(&ty, &three),
            "Invalid remaining data after end of tuple value"
        );
        assert_eq!(
            err(&ty, &[0, 0]),
            "Not enough bytes to read size of 0th component"
        );
        assert_eq!(
            err(&ty, &[0, 0, 0, 4, 0]),
            "Not enough bytes to read 0th component"
        );
    }

    #[test]
    fn split_and_join_shape_elements_per_kind() {
        let int = |v: i32| Bytes::copy_from_slice(&v.to_be_bytes());
        let list = CqlType::list(native(NativeType::Int));
        let bytes = CqlValue::List(vec![CqlValue::Int(1), CqlValue::Int(2)]).to_bytes();
        let split = split_collection(&list, &bytes).expect("split");
        assert_eq!(split, vec![(Bytes::new(), int(1)), (Bytes::new(), int(2))]);
        assert_eq!(join_collection(&list, &split), bytes);
        let set = CqlType::set(native(NativeType::Int));
        let split = split_collection(&set, &bytes).expect("split");
        assert_eq!(split, vec![(int(1), Bytes::new()), (int(2), Bytes::new())]);
        let map = CqlType::map(native(NativeType::Int), native(NativeType::Int));
        let bytes = CqlValue::Map(vec![(CqlValue::Int(1), CqlValue::Int(2))]).to_bytes();
        assert_eq!(
            split_collection(&map, &bytes).expect("split"),
            vec![(int(1), int(2))]
        );
        assert_eq!(split_collection(&map, &[]).expect("empty"), vec![]);
        assert!(split_collection(&map, &[0x7F, 0xFF, 0xFF, 0xFF]).is_err());
    }

    fn arb_native() -> impl Strategy<Value = (NativeType, CqlValue)> {
        use NativeType as N;
        prop_oneof![
            any::<String>().prop_map(|s| (N::Text, CqlValue::Text(s))),
            "[ -~]*".prop_map(|s| (N::Ascii, CqlValue::Ascii(s))),
            any::<i64>().prop_map(|v| (N::Bigint, CqlValue::Bigint(v))),
            any::<i64>().prop_map(|v| (N::Counter, CqlValue::Counter(v))),
            any::<i32>().prop_map(|v| (N::Int, CqlValue::Int(v))),
            any::<i16>().prop_map(|v| (N::Smallint, CqlValue::Smallint(v))),
            any::<i8>().prop_map(|v| (N::Tinyint, CqlValue::Tinyint(v))),
            any::<bool>().prop_map(|v| (N::Boolean, CqlValue::Boolean(v))),
            any::<Vec<u8>>().prop_map(|v| (N::Blob, CqlValue::Blob(v.into()))),
            any::<f64>().prop_map(|v| (N::Double, CqlValue::Double(v))),
            any::<f32>().prop_map(|v| (N::Float, CqlValue::Float(v))),
            any::<u128>().prop_map(|v| (N::Uuid, CqlValue::Uuid(uuid::Uuid::from_u128(v)))),
            any::<[u8; 16]>().prop_map(|mut b| {
                b[6] = (b[6] & 0x0F) | 0x10;
                (N::Timeuuid, CqlValue::Timeuuid(uuid::Uuid::from_bytes(b)))
            }),
            any::<[u8; 4]>().prop_map(|b| (N::Inet, CqlValue::Inet(IpAddr::from(b)))),
            any::<[u8; 16]>().prop_map(|b| (N::Inet, CqlValue::Inet(IpAddr::from(b)))),
            any::<i64>().prop_map(|v| (N::Timestamp, CqlValue::Timestamp(v))),
            any::<u32>().prop_map(|v| (N::Date, CqlValue::Date(v))),
            (0..=MAX_TIME_NANOS).prop_map(|v| (N::Time, CqlValue::Time(v))),
            any::<Vec<u8>>().prop_map(|v| (N::Varint, CqlValue::Varint(v))),
            (any::<i32>(), any::<Vec<u8>>())
                .prop_map(|(scale, unscaled)| (N::Decimal, CqlValue::Decimal { scale, unscaled })),
            // value.rs's put_vint cannot yet write 9-byte vints (nanos >= 2^55).
            (0..=i32::MAX, 0..=i32::MAX, 0..(1i64 << 55), any::<bool>()).prop_map(
                |(months, days, nanos, negative)| {
                    let sign = if negative { -1 } else { 1 };
                    let value = CqlValue::Duration {
                        months: months * sign,
                        days: days * sign,
                        nanos: nanos * i64::from(sign),
                    };
                    (N::Duration, value)
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn validate_accepts_every_serialized_native_value((ty, value) in arb_native()) {
            let bytes = value.to_bytes();
            prop_assert!(validate(&native(ty), &bytes).is_ok(), "{ty} {value:?}");
            let list = CqlType::list(native(ty));
            let listed = CqlValue::List(vec![value.clone(), value]).to_bytes();
            prop_assert!(validate(&list, &listed).is_ok());
            let tuple = CqlType::Tuple(vec![native(ty), CqlType::set(native(ty))]);
            let mut both = BytesMut::new();
            both.put_i32(bytes.len() as i32);
            both.put_slice(&bytes);
            both.put_i32(-1);
            prop_assert!(validate(&tuple, &both).is_ok());
        }

        #[test]
        fn truncated_collections_are_refused_without_panicking(
            (ty, value) in arb_native(),
            cut in 1usize..64,
        ) {
            let list = CqlType::list(native(ty));
            let bytes = CqlValue::List(vec![value]).to_bytes();
            let cut = cut.min(bytes.len());
            prop_assert!(validate(&list, &bytes[..bytes.len() - cut]).is_err() || cut == bytes.len());
            prop_assert!(split(&list, &bytes[..bytes.len() - cut]).is_err() || cut == bytes.len());
        }

        #[test]
        fn garbage_never_panics(bytes in any::<Vec<u8>>()) {
            let types = [
                CqlType::list(native(NativeType::Text)),
                CqlType::map(native(NativeType::Int), CqlType::set(native(NativeType::Duration))),
                CqlType::Tuple(vec![native(NativeType::Decimal), native(NativeType::Timeuuid)]),
                native(NativeType::Duration),
                native(NativeType::Time),
            ];
            for ty in &types {
                let _ = validate(ty, &bytes);
                let _ = split(ty, &bytes);
            }
        }

        #[test]
        fn split_inverts_join(
            elements in proptest::collection::vec(any::<Vec<u8>>(), 0..8),
            values in proptest::collection::vec(any::<Vec<u8>>(), 8),
        ) {
            let blob = native(NativeType::Blob);
            let b = |v: &Vec<u8>| Bytes::copy_from_slice(v);
            let cases = [
                (CqlType::list(blob.clone()), elements.iter().map(|e| (Bytes::new(), b(e))).collect::<Vec<_>>()),
                (CqlType::set(blob.clone()), elements.iter().map(|e| (b(e), Bytes::new())).collect()),
                (
                    CqlType::map(blob.clone(), blob.clone()),
                    elements.iter().zip(&values).map(|(k, v)| (b(k), b(v))).collect(),
                ),
            ];
            for (ty, x) in cases {
                let joined = join_collection(&ty, &x);
                prop_assert!(validate(&ty, &joined).is_ok());
                prop_assert_eq!(split(&ty, &joined).expect("split"), x);
            }
        }
    }
}

#[cfg(test)]
mod normalize_tests {
    use super::*;

    fn int(v: i32) -> Bytes {
        Bytes::copy_from_slice(&v.to_be_bytes())
    }

    fn int_type() -> CqlType {
        CqlType::Native(NativeType::Int)
    }

    #[test]
    fn sets_and_maps_come_out_sorted_and_deduplicated_at_any_depth() {
        let set = CqlType::Frozen(Box::new(CqlType::Set(Box::new(int_type()))));
        let unsorted = [3, -1, 2, 3].map(|v| (int(v), Bytes::new()));
        let value = join_collection(&set, &unsorted);
        let sorted = [-1, 2, 3].map(|v| (int(v), Bytes::new()));
        assert_eq!(
            normalize(&set, &value).expect("set"),
            join_collection(&set, &sorted)
        );

        let map = CqlType::Map(Box::new(int_type()), Box::new(int_type()));
        let entries = [(2, 20), (1, 10), (2, 21)].map(|(k, v)| (int(k), int(v)));
        let value = join_collection(&map, &entries);
        let expected = [(1, 10), (2, 21)].map(|(k, v)| (int(k), int(v)));
        assert_eq!(
            normalize(&map, &value).expect("map"),
            join_collection(&map, &expected)
        );

        // A map inside a list inside a tuple with a null field.
        let list = CqlType::List(Box::new(map.clone()));
        let tuple = CqlType::Tuple(vec![int_type(), list.clone()]);
        let inner = join_collection(&list, &[(Bytes::new(), value)]);
        let mut buf = BytesMut::new();
        buf.put_i32(-1);
        buf.put_i32(inner.len() as i32);
        buf.put_slice(&inner);
        let normalized = normalize(&tuple, &buf.freeze()).expect("tuple");
        let sorted_map = join_collection(&map, &expected);
        let sorted_inner = join_collection(&list, &[(Bytes::new(), sorted_map)]);
        let mut want = BytesMut::new();
        want.put_i32(-1);
        want.put_i32(sorted_inner.len() as i32);
        want.put_slice(&sorted_inner);
        assert_eq!(normalized, want.freeze());
    }

    #[test]
    fn values_without_sets_or_maps_are_returned_untouched() {
        let list = CqlType::List(Box::new(int_type()));
        let value = join_collection(&list, &[(Bytes::new(), int(2)), (Bytes::new(), int(1))]);
        assert_eq!(normalize(&list, &value).expect("list"), value);
    }
}
