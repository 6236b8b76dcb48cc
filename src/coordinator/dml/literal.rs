//! CQL literals to serialized values, for the types and forms `CqlValue::from_literal` does
//! not cover: user type literals, dates, times and timestamps written as strings, varints
//! and decimals, durations, and the functions writes use (`now()`, `uuid()`,
//! `toTimestamp(now())`, ...). Collections are converted element by element so nested user
//! types work; set elements and map keys are sorted and de-duplicated by their
//! byte-comparable encoding, which is the order Cassandra keeps them in. Every refusal is a
//! [`LiteralError`] naming its receiver as Cassandra does: the column, `value(l)`, `key(m)`,
//! `t[0]`, `u.f` for what a nested literal was meant for.

use bytes::{BufMut, Bytes, BytesMut};

use crate::coordinator::functions::{next_timeuuid_ticks, timeuuid_bytes};
use crate::cql::ast::Term;
use crate::cql::temporal::{self, date, time, timestamp};
use crate::cql::types::{CqlType, NativeType};
use crate::cql::value::{put_vint, CqlValue, LiteralError};
use crate::schema::Catalog;
use crate::storage::comparable::encode_value;

/// The serialized value of literal `term` as a `ty` (user types looked up in `keyspace`).
pub(in crate::coordinator) fn bytes(
    term: &Term,
    ty: &CqlType,
    catalog: &Catalog,
    keyspace: &str,
) -> Result<Bytes, LiteralError> {
    bytes_for(term, ty, "", catalog, keyspace)
}

/// [`bytes`] for a literal meant for `receiver` (a column or a nested receiver's name).
pub(super) fn bytes_for(
    term: &Term,
    ty: &CqlType,
    receiver: &str,
    catalog: &Catalog,
    keyspace: &str,
) -> Result<Bytes, LiteralError> {
    Converter { catalog, keyspace }
        .convert(term, ty, receiver)
        .map_err(|e| e.for_receiver(receiver))
}

/// The names Cassandra gives the receivers of a composite literal's parts.
pub(super) mod receiver {
    pub fn element(column: &str) -> String {
        format!("value({column})")
    }
    pub fn key(column: &str) -> String {
        format!("key({column})")
    }
    pub fn component(column: &str, index: usize) -> String {
        format!("{column}[{index}]")
    }
    pub fn field(column: &str, field: &str) -> String {
        format!("{column}.{field}")
    }
}

struct Converter<'a> {
    catalog: &'a Catalog,
    keyspace: &'a str,
}

impl Converter<'_> {
    fn convert(&self, term: &Term, ty: &CqlType, name: &str) -> Result<Bytes, LiteralError> {
        let nested =
            |t: &Term, ty: &CqlType, n: &str| self.convert(t, ty, n).map_err(|e| e.for_receiver(n));
        match (term, ty) {
            (Term::FunctionCall { name: f, args }, _) => {
                function(f, args, ty).map_err(LiteralError::Function)
            }
            (Term::Cast { ty: cast, term }, _) => self.convert(term, cast, name),
            (_, CqlType::Frozen(inner)) => {
                self.convert(term, inner, name).map_err(|e| e.of_type(ty))
            }
            (
                _,
                CqlType::UserType {
                    keyspace: ks,
                    name: type_name,
                },
            ) => {
                let ks = ks.as_deref().unwrap_or(self.keyspace);
                let udt = self
                    .catalog
                    .user_type(ks, type_name)
                    .ok_or_else(|| LiteralError::UnknownType(format!("{ks}.{type_name}")))?;
                let inner = Converter {
                    catalog: self.catalog,
                    keyspace: ks,
                };
                let given = user_type_fields(term, ty)?;
                user_type(&given, &udt.fields, ty, |t, fty, field| {
                    let n = receiver::field(name, field);
                    inner
                        .convert(t, fty, &n)
                        .map(Some)
                        .map_err(|e| e.for_receiver(&n))
                })
            }
            (Term::List(items) | Term::Set(items) | Term::Tuple(items), CqlType::List(e)) => {
                let n = receiver::element(name);
                let values = items
                    .iter()
                    .map(|t| not_null(t).and_then(|t| nested(t, e, &n)));
                Ok(collection(values.collect::<Result<_, _>>()?))
            }
            (Term::List(items) | Term::Set(items), CqlType::Set(e)) => {
                let n = receiver::element(name);
                let values = items
                    .iter()
                    .map(|t| not_null(t).and_then(|t| nested(t, e, &n)));
                let values = values.collect::<Result<_, _>>()?;
                Ok(collection(sorted(values, e, self.catalog, self.keyspace)?))
            }
            (Term::Map(entries), CqlType::Set(_)) if entries.is_empty() => {
                Ok(collection(Vec::new()))
            }
            (Term::Map(entries), CqlType::Map(k, v)) => {
                let (key_name, value_name) = (receiver::key(name), receiver::element(name));
                let mut keyed = Vec::with_capacity(entries.len());
                for (key, value) in entries {
                    keyed.push((
                        nested(not_null(key)?, k, &key_name)?,
                        nested(not_null(value)?, v, &value_name)?,
                    ));
                }
                map(keyed, k, self.catalog, self.keyspace)
            }
            (Term::Set(items), CqlType::Map(..)) if items.is_empty() => Ok(collection(Vec::new())),
            (Term::Tuple(items), CqlType::Tuple(types)) => {
                check_arity(items.len(), types.len(), ty)?;
                let mut parts = Vec::with_capacity(items.len());
                for (i, (item, ty)) in items.iter().zip(types).enumerate() {
                    parts.push(match item {
                        Term::Null => None,
                        t => Some(nested(t, ty, &receiver::component(name, i))?),
                    });
                }
                Ok(tuple(&parts))
            }
            (_, CqlType::Native(n)) => native(term, *n),
            _ => CqlValue::from_literal(term, ty).map(|v| v.to_bytes()),
        }
    }
}

/// A collection element, which may not be null.
pub(super) fn not_null(term: &Term) -> Result<&Term, LiteralError> {
    match term {
        Term::Null => Err(LiteralError::NullInCollection),
        t => Ok(t),
    }
}

/// Refuses a tuple literal with more components than its type has.
pub(super) fn check_arity(got: usize, expected: usize, ty: &CqlType) -> Result<(), LiteralError> {
    if got > expected {
        return Err(LiteralError::TupleArity {
            receiver: String::new(),
            ty: ty.to_string(),
            expected,
            got,
        });
    }
    Ok(())
}

fn put_element(buf: &mut BytesMut, value: &[u8]) {
    buf.put_i32(value.len() as i32);
    buf.put_slice(value);
}

/// A serialized list or set of these elements, in this order.
pub(super) fn collection(values: Vec<Bytes>) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(values.len() as i32);
    values.iter().for_each(|v| put_element(&mut buf, v));
    buf.freeze()
}

/// A serialized tuple or user type value: its components in order, None for null.
pub(super) fn tuple(parts: &[Option<Bytes>]) -> Bytes {
    let mut buf = BytesMut::new();
    for part in parts {
        match part {
            None => buf.put_i32(-1),
            Some(v) => put_element(&mut buf, v),
        }
    }
    buf.freeze()
}

/// Sorts set elements by their comparable encoding, dropping duplicates.
pub(super) fn sorted(
    values: Vec<Bytes>,
    ty: &CqlType,
    catalog: &Catalog,
    keyspace: &str,
) -> Result<Vec<Bytes>, LiteralError> {
    let resolved = catalog.resolve_user_types(keyspace, ty);
    let mut keyed = Vec::with_capacity(values.len());
    for value in values {
        let mut key = Vec::new();
        encode_value(&resolved, &value, &mut key)
            .map_err(|e| LiteralError::Value(e.to_string()))?;
        keyed.push((key, value));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    Ok(keyed.into_iter().map(|(_, v)| v).collect())
}

/// A map value with keys sorted; of duplicate keys the last one written wins.
pub(super) fn map(
    entries: Vec<(Bytes, Bytes)>,
    key_ty: &CqlType,
    catalog: &Catalog,
    keyspace: &str,
) -> Result<Bytes, LiteralError> {
    let resolved = catalog.resolve_user_types(keyspace, key_ty);
    let mut keyed = std::collections::BTreeMap::new();
    for (key, value) in entries {
        let mut order = Vec::new();
        encode_value(&resolved, &key, &mut order)
            .map_err(|e| LiteralError::Value(e.to_string()))?;
        keyed.insert(order, (key, value));
    }
    let mut buf = BytesMut::new();
    buf.put_i32(keyed.len() as i32);
    for (key, value) in keyed.values() {
        put_element(&mut buf, key);
        put_element(&mut buf, value);
    }
    Ok(buf.freeze())
}

/// The `field: term` pairs of a user type literal `{field: value, ...}` (which the parser
/// reads as a map when its keys are quoted strings).
pub(super) fn user_type_fields<'t>(
    term: &'t Term,
    ty: &CqlType,
) -> Result<Vec<(String, &'t Term)>, LiteralError> {
    match term {
        Term::UserType(items) => Ok(items.iter().map(|(n, t)| (n.clone(), t)).collect()),
        Term::Map(items) => items
            .iter()
            .map(|(k, v)| match k {
                Term::String(name) => Ok((name.clone(), v)),
                _ => Err(LiteralError::mismatch(term, ty)),
            })
            .collect(),
        other => Err(LiteralError::mismatch(other, ty)),
    }
}

/// A user type value from its given fields, in declaration order; missing fields are null.
/// `convert` turns a field's term into its value (None for null), given the field's type
/// and name.
pub(super) fn user_type(
    given: &[(String, &Term)],
    fields: &[(String, CqlType)],
    ty: &CqlType,
    mut convert: impl FnMut(&Term, &CqlType, &str) -> Result<Option<Bytes>, LiteralError>,
) -> Result<Bytes, LiteralError> {
    if let Some((name, _)) = given
        .iter()
        .find(|(n, _)| !fields.iter().any(|f| &f.0 == n))
    {
        return Err(LiteralError::UnknownField {
            field: name.clone(),
            ty: ty.to_string(),
        });
    }
    let mut parts = Vec::with_capacity(fields.len());
    for (name, field_ty) in fields {
        parts.push(
            match given.iter().find(|(n, _)| n == name).map(|(_, t)| *t) {
                None | Some(Term::Null) => None,
                Some(t) => convert(t, field_ty, name)?,
            },
        );
    }
    Ok(tuple(&parts))
}

fn native(term: &Term, ty: NativeType) -> Result<Bytes, LiteralError> {
    use NativeType as N;
    let value = |text: &str, what: &str| LiteralError::Value(format!("{what} '{text}'"));
    match (term, ty) {
        (Term::String(s), N::Date) => date(s).map(|d| Bytes::copy_from_slice(&d.to_be_bytes())),
        (Term::Integer(s), N::Date) => date(s).map(|d| Bytes::copy_from_slice(&d.to_be_bytes())),
        (Term::String(s), N::Time) => time(s).map(|t| Bytes::copy_from_slice(&t.to_be_bytes())),
        (Term::Integer(s), N::Time) => s
            .parse::<i64>()
            .map(|t| Bytes::copy_from_slice(&t.to_be_bytes()))
            .map_err(|_| value(s, "Unable to make long (for time) from:")),
        (Term::String(s), N::Timestamp) => {
            timestamp(s).map(|t| Bytes::copy_from_slice(&t.to_be_bytes()))
        }
        (Term::Integer(s), N::Varint) => big_integer(s)
            .map(Bytes::from)
            .ok_or_else(|| value(s, "unable to make int from")),
        (Term::Integer(s) | Term::Float(s), N::Decimal) => {
            decimal(s).ok_or_else(|| value(s, "unable to make BigDecimal from"))
        }
        (Term::Duration(s), N::Duration) => duration(s),
        _ => CqlValue::from_literal(term, &CqlType::Native(ty)).map(|v| v.to_bytes()),
    }
}

/// Integers written in decimal get this many digits at most (Cassandra has no bound; a
/// literal this long is a mistake or an attack, and the conversion is quadratic).
const MAX_INTEGER_DIGITS: usize = 10_000;

/// An integer literal of any size (`-123…`) as the minimal two's-complement big-endian
/// bytes of a varint.
fn big_integer(text: &str) -> Option<Vec<u8>> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() || digits.len() > MAX_INTEGER_DIGITS {
        return None;
    }
    // Magnitude, big-endian base 256, built by multiply-and-add per decimal digit.
    let mut magnitude: Vec<u8> = vec![0];
    for c in digits.chars() {
        let mut carry = c.to_digit(10)?;
        for byte in magnitude.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xFF) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            magnitude.insert(0, (carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    // A leading zero byte keeps the sign bit clear before negation.
    magnitude.insert(0, 0);
    if negative {
        for byte in magnitude.iter_mut() {
            *byte = !*byte;
        }
        for byte in magnitude.iter_mut().rev() {
            let (v, overflow) = byte.overflowing_add(1);
            *byte = v;
            if !overflow {
                break;
            }
        }
    }
    let redundant =
        |w: &[u8]| (w[0] == 0x00 && w[1] & 0x80 == 0) || (w[0] == 0xFF && w[1] & 0x80 != 0);
    let start = magnitude.windows(2).take_while(|w| redundant(w)).count();
    Some(magnitude[start..].to_vec())
}

/// The minimal two's-complement big-endian bytes of `v` (a varint body).
#[cfg(test)]
fn minimal(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

/// `123`, `-1.25`, `1.5e3` as a decimal: scale, then the unscaled varint.
fn decimal(text: &str) -> Option<Bytes> {
    let lower = text.to_ascii_lowercase();
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (lower.as_str(), 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let unscaled = big_integer(&digits)?;
    let scale = i32::try_from(frac.len()).ok()?.checked_sub(exponent)?;
    let mut buf = BytesMut::new();
    buf.put_i32(scale);
    buf.put_slice(&unscaled);
    Some(buf.freeze())
}

/// A duration literal's serialized value: months, days and nanoseconds as vints.
fn duration(text: &str) -> Result<Bytes, LiteralError> {
    let d = temporal::duration(text)?;
    let mut buf = BytesMut::new();
    put_vint(&mut buf, i64::from(d.months));
    put_vint(&mut buf, i64::from(d.days));
    put_vint(&mut buf, d.nanos);
    Ok(buf.freeze())
}

/// A function call written as a value: the native functions of `coordinator::functions`
/// (time functions, `typeAsBlob`/`blobAsType`, casts), their literal arguments converted
/// as literals are here; the result must be a valid `ty`.
fn function(name: &str, args: &[Term], ty: &CqlType) -> Result<Bytes, String> {
    // Function arguments are native values: no user type needs the catalog, so one
    // catalog made once serves every call (a write may call `now()` per row).
    static NATIVE_ONLY: std::sync::LazyLock<Catalog> = std::sync::LazyLock::new(Catalog::new);
    let literal = |t: &Term, ty: &CqlType| match t {
        // A write's markers are numbered by the statement walk, which does not look
        // inside calls: PREPARE refuses these, and so does execution.
        Term::BindMarker(_) => Err(
            "Bind markers in function arguments are not supported yet by this ringcache build \
             (only in a SELECT's WHERE values)"
                .to_owned(),
        ),
        t => bytes(t, ty, &NATIVE_ONLY, "").map_err(|e| e.to_string()),
    };
    let (value, result) =
        crate::coordinator::functions::evaluate(name, args, &literal).map_err(|e| e.to_string())?;
    let value = value.ok_or_else(|| format!("Invalid null value returned by function {name}"))?;
    crate::cql::serialized::validate(ty, &value).map_err(|_| {
        format!("Type error: cannot assign result of function system.{name} (type {result}) to a value of type {ty}")
    })?;
    Ok(value)
}

/// The next version-1 UUID of this node's generator, which never repeats or goes back, so
/// list elements appended later sort later.
pub(super) fn next_timeuuid() -> [u8; 16] {
    timeuuid_bytes(next_timeuuid_ticks())
}

#[cfg(test)]
mod big_integer_tests {
    use super::{big_integer, minimal};

    #[test]
    fn integers_of_any_size_match_twos_complement() {
        for v in [
            0i128,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            i64::MAX as i128,
            i128::MIN + 1,
            i128::MAX,
        ] {
            assert_eq!(big_integer(&v.to_string()), Some(minimal(v)), "{v}");
        }
        // 2^200 = 0x01 followed by 25 zero bytes; -(2^200) = 0xFF followed by 25 zero bytes.
        let two_200 = "1606938044258990275541962092341162602522202993782792835301376";
        let mut positive = vec![0x01];
        positive.extend([0u8; 25]);
        assert_eq!(big_integer(two_200), Some(positive));
        let mut negative = vec![0xFF];
        negative.extend([0u8; 25]);
        assert_eq!(big_integer(&format!("-{two_200}")), Some(negative));
        assert_eq!(big_integer("12a"), None);
        assert_eq!(big_integer("-"), None);
    }
}
