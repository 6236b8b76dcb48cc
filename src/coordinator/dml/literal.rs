//! CQL literals to serialized values, for the types and forms `CqlValue::from_literal` does
//! not cover: user type literals, dates, times and timestamps written as strings, varints
//! and decimals, durations, and the functions writes use (`now()`, `uuid()`,
//! `toTimestamp(now())`, ...). Collections are converted element by element so nested user
//! types work; set elements and map keys are sorted and de-duplicated by their
//! byte-comparable encoding, which is the order Cassandra keeps them in.

use bytes::{BufMut, Bytes, BytesMut};

use crate::coordinator::functions::{next_timeuuid_ticks, timeuuid_bytes};
use crate::cql::ast::Term;
use crate::cql::types::{CqlType, NativeType};
use crate::cql::value::{put_vint, CqlValue};
use crate::schema::Catalog;
use crate::storage::comparable::encode_value;

/// The serialized value of literal `term` as a `ty` (user types looked up in `keyspace`).
pub(in crate::coordinator) fn bytes(
    term: &Term,
    ty: &CqlType,
    catalog: &Catalog,
    keyspace: &str,
) -> Result<Bytes, String> {
    let convert = |t: &Term, ty: &CqlType| bytes(t, ty, catalog, keyspace);
    match (term, ty) {
        (Term::FunctionCall { name, args }, _) => function(name, args, ty),
        (Term::Cast { ty: cast, term }, _) => convert(term, cast),
        (_, CqlType::Frozen(inner)) => convert(term, inner),
        (_, CqlType::UserType { keyspace: ks, name }) => {
            let ks = ks.as_deref().unwrap_or(keyspace);
            let udt = catalog
                .user_type(ks, name)
                .ok_or_else(|| format!("Unknown user type {ks}.{name}"))?;
            user_type(term, &udt.fields, |t, ty| bytes(t, ty, catalog, ks))
        }
        (Term::List(items) | Term::Set(items) | Term::Tuple(items), CqlType::List(e)) => {
            let values = items.iter().map(|t| element(t, e, &convert));
            Ok(collection(values.collect::<Result<_, _>>()?))
        }
        (Term::List(items) | Term::Set(items), CqlType::Set(e)) => {
            let values = items.iter().map(|t| element(t, e, &convert));
            let values = sorted(values.collect::<Result<_, _>>()?, e, catalog, keyspace)?;
            Ok(collection(values))
        }
        (Term::Map(entries), CqlType::Set(_)) if entries.is_empty() => Ok(collection(Vec::new())),
        (Term::Map(entries), CqlType::Map(k, v)) => {
            let mut keyed = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                keyed.push((element(key, k, &convert)?, element(value, v, &convert)?));
            }
            map(keyed, k, catalog, keyspace)
        }
        (Term::Set(items), CqlType::Map(..)) if items.is_empty() => Ok(collection(Vec::new())),
        (Term::Tuple(items), CqlType::Tuple(types)) if items.len() <= types.len() => {
            let mut buf = BytesMut::new();
            for (item, ty) in items.iter().zip(types) {
                match item {
                    Term::Null => buf.put_i32(-1),
                    t => put_element(&mut buf, &convert(t, ty)?),
                }
            }
            Ok(buf.freeze())
        }
        (_, CqlType::Native(n)) => native(term, *n),
        _ => CqlValue::from_literal(term, ty).map(|v| v.to_bytes()),
    }
}

/// A collection element, which may not be null.
fn element(
    term: &Term,
    ty: &CqlType,
    convert: &dyn Fn(&Term, &CqlType) -> Result<Bytes, String>,
) -> Result<Bytes, String> {
    match term {
        Term::Null => Err("null is not supported inside collections".to_owned()),
        t => convert(t, ty),
    }
}

fn put_element(buf: &mut BytesMut, value: &[u8]) {
    buf.put_i32(value.len() as i32);
    buf.put_slice(value);
}

fn collection(values: Vec<Bytes>) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(values.len() as i32);
    values.iter().for_each(|v| put_element(&mut buf, v));
    buf.freeze()
}

/// Sorts set elements by their comparable encoding, dropping duplicates.
fn sorted(
    values: Vec<Bytes>,
    ty: &CqlType,
    catalog: &Catalog,
    keyspace: &str,
) -> Result<Vec<Bytes>, String> {
    let resolved = catalog.resolve_user_types(keyspace, ty);
    let mut keyed = Vec::with_capacity(values.len());
    for value in values {
        let mut key = Vec::new();
        encode_value(&resolved, &value, &mut key).map_err(|e| e.to_string())?;
        keyed.push((key, value));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    Ok(keyed.into_iter().map(|(_, v)| v).collect())
}

/// A map value with keys sorted; of duplicate keys the last one written wins.
fn map(
    entries: Vec<(Bytes, Bytes)>,
    key_ty: &CqlType,
    catalog: &Catalog,
    keyspace: &str,
) -> Result<Bytes, String> {
    let resolved = catalog.resolve_user_types(keyspace, key_ty);
    let mut keyed = std::collections::BTreeMap::new();
    for (key, value) in entries {
        let mut order = Vec::new();
        encode_value(&resolved, &key, &mut order).map_err(|e| e.to_string())?;
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

/// `{field: value, ...}` (parsed as a user type or a map literal) in field order; missing
/// fields are null.
fn user_type(
    term: &Term,
    fields: &[(String, CqlType)],
    convert: impl Fn(&Term, &CqlType) -> Result<Bytes, String>,
) -> Result<Bytes, String> {
    let given: Vec<(String, &Term)> = match term {
        Term::UserType(items) => items.iter().map(|(n, t)| (n.clone(), t)).collect(),
        Term::Map(items) => items
            .iter()
            .map(|(k, v)| match k {
                Term::String(name) => Ok((name.clone(), v)),
                other => Err(format!("Invalid user type field name {other:?}")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("Invalid user type literal {other:?}")),
    };
    if let Some((name, _)) = given
        .iter()
        .find(|(n, _)| !fields.iter().any(|f| &f.0 == n))
    {
        return Err(format!(
            "Unknown field '{name}' in value of user defined type"
        ));
    }
    let mut buf = BytesMut::new();
    for (name, ty) in fields {
        match given.iter().find(|(n, _)| n == name).map(|(_, t)| *t) {
            None | Some(Term::Null) => buf.put_i32(-1),
            Some(t) => put_element(&mut buf, &convert(t, ty)?),
        }
    }
    Ok(buf.freeze())
}

fn native(term: &Term, ty: NativeType) -> Result<Bytes, String> {
    use NativeType as N;
    let mismatch = || format!("Invalid literal {term:?} for a value of type {ty}");
    match (term, ty) {
        (Term::String(s), N::Date) => date(s).map(|d| Bytes::copy_from_slice(&d.to_be_bytes())),
        (Term::Integer(s), N::Date) => s
            .parse::<u32>()
            .map(|d| Bytes::copy_from_slice(&d.to_be_bytes()))
            .map_err(|_| mismatch()),
        (Term::String(s), N::Time) => time(s).map(|t| Bytes::copy_from_slice(&t.to_be_bytes())),
        (Term::Integer(s), N::Time) => s
            .parse::<i64>()
            .map(|t| Bytes::copy_from_slice(&t.to_be_bytes()))
            .map_err(|_| mismatch()),
        (Term::String(s), N::Timestamp) => {
            timestamp(s).map(|t| Bytes::copy_from_slice(&t.to_be_bytes()))
        }
        (Term::Integer(s), N::Varint) => big_integer(s).map(Bytes::from).ok_or_else(mismatch),
        (Term::Integer(s) | Term::Float(s), N::Decimal) => decimal(s).ok_or_else(mismatch),
        (Term::Duration(s), N::Duration) => duration(s).ok_or_else(mismatch),
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

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `yyyy-mm-dd` as days since the epoch.
fn civil_days(text: &str) -> Option<i64> {
    let (sign, body) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let mut parts = body.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(sign * y, m, d))
}

/// A `date` literal: `yyyy-mm-dd`, stored as days with the epoch at 2^31.
fn date(text: &str) -> Result<u32, String> {
    let days = civil_days(text)
        .ok_or_else(|| format!("Unable to coerce '{text}' to a formatted date (long)"))?;
    u32::try_from(days + (1i64 << 31)).map_err(|_| format!("Date '{text}' is out of range"))
}

/// A `time` literal: `hh:mm[:ss[.fffffffff]]` as nanoseconds since midnight.
fn time(text: &str) -> Result<i64, String> {
    let bad = || format!("Unable to coerce '{text}' to a formatted time (long)");
    let (clock, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = clock.split(':');
    let mut field = |max: i64| -> Result<i64, String> {
        let v: i64 = parts.next().unwrap_or("0").parse().map_err(|_| bad())?;
        if (0..=max).contains(&v) {
            Ok(v)
        } else {
            Err(bad())
        }
    };
    let (h, m, s) = (field(23)?, field(59)?, field(59)?);
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let nanos: i64 = format!("{fraction:0<9}").parse().map_err(|_| bad())?;
    Ok(((h * 60 + m) * 60 + s) * 1_000_000_000 + nanos)
}

/// A `timestamp` literal: `yyyy-mm-dd[( |T)hh:mm[:ss[.fff]]][Z|±hh[:]mm]` (UTC when no
/// zone is given), as milliseconds since the epoch.
fn timestamp(text: &str) -> Result<i64, String> {
    let bad = || format!("Unable to coerce '{text}' to a formatted date (long)");
    let trimmed = text.trim();
    let date_len = trimmed
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == ' ' || *c == 'T')
        .map_or(trimmed.len(), |(i, _)| i);
    let days = civil_days(&trimmed[..date_len]).ok_or_else(bad)?;
    let rest = trimmed[date_len..].trim_start_matches([' ', 'T']);
    let (clock, offset_minutes) = split_zone(rest).ok_or_else(bad)?;
    let millis_of_day = if clock.is_empty() {
        0
    } else {
        time(clock).map_err(|_| bad())? / 1_000_000
    };
    Ok(days * 86_400_000 + millis_of_day - offset_minutes * 60_000)
}

/// Splits a zone suffix (`Z`, `+hhmm`, `+hh:mm`, `-hh`) off a clock, giving its offset.
fn split_zone(text: &str) -> Option<(&str, i64)> {
    if let Some(clock) = text.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let Some(at) = text.rfind(['+', '-']) else {
        return Some((text, 0));
    };
    let (clock, zone) = text.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i64>().ok()?, 0),
        4 => (
            digits[..2].parse::<i64>().ok()?,
            digits[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    Some((clock.trim_end(), sign * (h * 60 + m)))
}

/// A duration literal: `1y2mo3w4d5h6m7s8ms9us10ns` (optionally negative) or ISO 8601
/// `P1Y2M3DT4H5M6S` / `P2W`.
fn duration(text: &str) -> Option<Bytes> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (months, days, nanos) = if let Some(iso) = body.strip_prefix(['P', 'p']) {
        iso_duration(iso)?
    } else {
        unit_duration(body)?
    };
    let sign = if negative { -1 } else { 1 };
    let mut buf = BytesMut::new();
    put_vint(&mut buf, sign * months);
    put_vint(&mut buf, sign * days);
    put_vint(&mut buf, sign * nanos);
    Some(buf.freeze())
}

const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

fn unit_duration(text: &str) -> Option<(i64, i64, i64)> {
    let (mut months, mut days, mut nanos) = (0i64, 0i64, 0i64);
    let lower = text.to_ascii_lowercase();
    let mut rest = lower.as_str();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let add = |total: i64, factor: i64| total.checked_add(n.checked_mul(factor)?);
        match &rest[..unit] {
            "y" => months = add(months, 12)?,
            "mo" => months = add(months, 1)?,
            "w" => days = add(days, 7)?,
            "d" => days = add(days, 1)?,
            "h" => nanos = add(nanos, NANOS_PER_HOUR)?,
            "m" => nanos = add(nanos, 60_000_000_000)?,
            "s" => nanos = add(nanos, 1_000_000_000)?,
            "ms" => nanos = add(nanos, 1_000_000)?,
            "us" | "µs" => nanos = add(nanos, 1_000)?,
            "ns" => nanos = add(nanos, 1)?,
            _ => return None,
        }
        rest = &rest[unit..];
    }
    Some((months, days, nanos))
}

fn iso_duration(text: &str) -> Option<(i64, i64, i64)> {
    let upper = text.to_ascii_uppercase();
    let (date, clock) = upper.split_once('T').unwrap_or((upper.as_str(), ""));
    let (mut months, mut days, mut nanos) = (0i64, 0i64, 0i64);
    for (n, unit) in iso_fields(date)? {
        match unit {
            'Y' => months = months.checked_add(n.checked_mul(12)?)?,
            'M' => months = months.checked_add(n)?,
            'W' => days = days.checked_add(n.checked_mul(7)?)?,
            'D' => days = days.checked_add(n)?,
            _ => return None,
        }
    }
    for (n, unit) in iso_fields(clock)? {
        let factor = match unit {
            'H' => NANOS_PER_HOUR,
            'M' => 60_000_000_000,
            'S' => 1_000_000_000,
            _ => return None,
        };
        nanos = nanos.checked_add(n.checked_mul(factor)?)?;
    }
    Some((months, days, nanos))
}

fn iso_fields(text: &str) -> Option<Vec<(i64, char)>> {
    let mut out = Vec::new();
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
        } else {
            out.push((number.parse().ok()?, c));
            number.clear();
        }
    }
    number.is_empty().then_some(out)
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
        t => bytes(t, ty, &NATIVE_ONLY, ""),
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
