//! The conversions of Cassandra's `CastFcts` and `blobAsType`, on serialized values.
//!
//! Numbers convert as Java's `Number` methods do, because that is what Cassandra calls:
//! integers narrow by keeping their low bits, floating point narrows to int or long by
//! saturating (NaN is 0) and to tinyint or smallint through int, decimal and varint
//! truncate toward zero and keep the low bits, a decimal is made from the double value's
//! `Double.toString`, and a varint from the long value. Text is the value's CQL literal as
//! Cassandra's serializers print it: Java's float and double text (`1.0E7`), a decimal's
//! plain text, ISO timestamps in UTC with milliseconds, the uncompressed IPv6 form.

use bytes::Bytes;

use super::time::{civil_of_days, date_of_millis, millis_of, EPOCH_DAY, MILLIS_PER_DAY};
use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};

use NativeType as N;

const NUMBERS: [NativeType; 9] = [
    N::Tinyint,
    N::Smallint,
    N::Int,
    N::Bigint,
    N::Float,
    N::Double,
    N::Decimal,
    N::Counter,
    N::Varint,
];

/// Whether Cassandra has a cast from `from` to the different type `to`.
pub(super) fn castable(from: NativeType, to: NativeType) -> bool {
    if from == to {
        return false;
    }
    let text = matches!(to, N::Ascii | N::Text);
    if NUMBERS.contains(&from) {
        return text || (NUMBERS.contains(&to) && to != N::Counter);
    }
    match from {
        N::Ascii => to == N::Text,
        N::Inet | N::Boolean | N::Time | N::Uuid => text,
        N::Timeuuid => text || matches!(to, N::Date | N::Timestamp),
        N::Timestamp => text || to == N::Date,
        N::Date => text || to == N::Timestamp,
        _ => false,
    }
}

/// An empty value of a type that is not text-like: Cassandra's "empty", which functions
/// see as null.
pub(super) fn is_empty_value(ty: NativeType, value: &[u8]) -> bool {
    value.is_empty() && !matches!(ty, N::Text | N::Ascii | N::Blob)
}

/// `blobAsType`: the bytes, if they are a valid `ty`.
pub(super) fn blob_as(ty: NativeType, value: &[u8]) -> Result<Bytes> {
    crate::cql::serialized::validate(&CqlType::Native(ty), value).map_err(|_| {
        let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
        Error::invalid(format!(
            "In call to function blobas{ty}, value 0x{hex} is not a valid binary representation for type {ty}"
        ))
    })?;
    Ok(Bytes::copy_from_slice(value))
}

/// Casts the non-empty serialized `value` of `from` to `to` (a pair [`castable`] accepts).
pub(super) fn cast(from: NativeType, to: NativeType, value: &[u8]) -> Result<Bytes> {
    let bad = || Error::invalid(format!("Invalid {from} value for a cast to {to}"));
    if matches!(to, N::Ascii | N::Text) {
        return text(from, value).map(Bytes::from).ok_or_else(bad);
    }
    if matches!(to, N::Date | N::Timestamp) {
        let ms = millis_of(value, from).ok_or_else(bad)?;
        return Ok(match to {
            N::Date => Bytes::copy_from_slice(&date_of_millis(ms).to_be_bytes()),
            _ => Bytes::copy_from_slice(&ms.to_be_bytes()),
        });
    }
    let number = Number::decode(from, value).ok_or_else(bad)?;
    Ok(Bytes::from(match to {
        N::Tinyint => vec![number.int_value() as u8],
        N::Smallint => (number.int_value() as i16).to_be_bytes().to_vec(),
        N::Int => number.int_value().to_be_bytes().to_vec(),
        N::Bigint | N::Counter => number.long_value().to_be_bytes().to_vec(),
        N::Float => (number.double_or_float(true) as f32).to_be_bytes().to_vec(),
        N::Double => number.double_or_float(false).to_be_bytes().to_vec(),
        N::Varint => minimal_bytes(i128::from(number.long_value())),
        N::Decimal => decimal_of_double(number.double_or_float(false)).ok_or_else(bad)?,
        _ => return Err(bad()),
    }))
}

/// A numeric value as Java's `Number` subclasses hold it.
#[derive(Debug, Clone, PartialEq)]
enum Number {
    /// tinyint, smallint, int, bigint and counter.
    Long(i64),
    Float(f32),
    Double(f64),
    /// A varint's two's-complement bytes.
    Big(Vec<u8>),
    /// A decimal: the unscaled varint's bytes and the scale.
    Decimal(Vec<u8>, i32),
}

impl Number {
    fn decode(ty: NativeType, b: &[u8]) -> Option<Number> {
        let signed = |n: usize| (b.len() == n).then(|| low_i64(b));
        Some(match ty {
            N::Tinyint => Number::Long(signed(1)?),
            N::Smallint => Number::Long(signed(2)?),
            N::Int => Number::Long(signed(4)?),
            N::Bigint | N::Counter => Number::Long(signed(8)?),
            N::Float => Number::Float(f32::from_be_bytes(b.try_into().ok()?)),
            N::Double => Number::Double(f64::from_be_bytes(b.try_into().ok()?)),
            N::Varint if !b.is_empty() => Number::Big(b.to_vec()),
            N::Decimal if b.len() > 4 => {
                let scale = i32::from_be_bytes(b[..4].try_into().ok()?);
                Number::Decimal(b[4..].to_vec(), scale)
            }
            _ => return None,
        })
    }

    /// Java's `longValue()`: floating point saturates, big numbers keep their low 64 bits.
    fn long_value(&self) -> i64 {
        match self {
            Number::Long(v) => *v,
            Number::Float(v) => *v as i64,
            Number::Double(v) => *v as i64,
            Number::Big(b) => low_i64(b),
            Number::Decimal(b, scale) => truncated_low_bits(b, *scale),
        }
    }

    /// Java's `intValue()` (and, narrowed further, `byteValue()` and `shortValue()`).
    fn int_value(&self) -> i32 {
        match self {
            Number::Float(v) => *v as i32,
            Number::Double(v) => *v as i32,
            other => other.long_value() as i32,
        }
    }

    /// Java's `doubleValue()`, or `floatValue()` widened when `float` is set (a varint or
    /// decimal rounds once, straight to float).
    fn double_or_float(&self, float: bool) -> f64 {
        let parse = |text: String| match float {
            true => text.parse::<f32>().map_or(f64::NAN, f64::from),
            false => text.parse::<f64>().unwrap_or(f64::NAN),
        };
        match self {
            Number::Long(v) if float => f64::from(*v as f32),
            Number::Long(v) => *v as f64,
            Number::Float(v) => f64::from(*v),
            Number::Double(v) if float => f64::from(*v as f32),
            Number::Double(v) => *v,
            Number::Big(b) => parse(varint_text(b)),
            Number::Decimal(b, scale) => {
                parse(format!("{}e{}", varint_text(b), -i64::from(*scale)))
            }
        }
    }
}

/// The low 64 bits of a two's-complement big-endian integer, sign-extended.
fn low_i64(b: &[u8]) -> i64 {
    let fill = if b.first().is_some_and(|x| x & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut out = [fill; 8];
    let tail = &b[b.len().saturating_sub(8)..];
    out[8 - tail.len()..].copy_from_slice(tail);
    i64::from_be_bytes(out)
}

/// The decimal's integer part (toward zero), low 64 bits: Java's `BigDecimal.longValue()`.
fn truncated_low_bits(unscaled: &[u8], scale: i32) -> i64 {
    let text = varint_text(unscaled);
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.as_str()),
    };
    let keep = match usize::try_from(scale) {
        Ok(s) => digits.len().saturating_sub(s),
        Err(_) => digits.len(),
    };
    let mut acc: u64 = 0;
    for d in digits[..keep].bytes() {
        acc = acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
    }
    // 10^64 is a multiple of 2^64: more zeros change nothing in the low bits.
    let zeros = if scale < 0 {
        scale.unsigned_abs().min(64)
    } else {
        0
    };
    for _ in 0..zeros {
        acc = acc.wrapping_mul(10);
    }
    let value = acc as i64;
    if negative {
        value.wrapping_neg()
    } else {
        value
    }
}

/// A two's-complement big-endian integer in decimal.
pub(super) fn varint_text(b: &[u8]) -> String {
    let negative = b.first().is_some_and(|x| x & 0x80 != 0);
    let mut magnitude: Vec<u8> = b.to_vec();
    if negative {
        // Two's complement negation: invert, then add one.
        magnitude.iter_mut().for_each(|x| *x = !*x);
        for x in magnitude.iter_mut().rev() {
            let (sum, carry) = x.overflowing_add(1);
            *x = sum;
            if !carry {
                break;
            }
        }
    }
    let mut chunks = Vec::new(); // base 10^9, least significant first
    while magnitude.iter().any(|x| *x != 0) {
        let mut rem: u64 = 0;
        for x in magnitude.iter_mut() {
            let cur = (rem << 8) | u64::from(*x);
            *x = (cur / 1_000_000_000) as u8;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem);
    }
    let mut out = String::from(if negative { "-" } else { "" });
    match chunks.split_last() {
        None => out.push('0'),
        Some((top, rest)) => {
            out.push_str(&top.to_string());
            rest.iter()
                .rev()
                .for_each(|c| out.push_str(&format!("{c:09}")));
        }
    }
    out
}

/// The minimal two's-complement bytes of `v`, as varint serializes.
fn minimal_bytes(v: i128) -> Vec<u8> {
    let all = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (all[start], all[start + 1]);
        if !((b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0)) {
            break;
        }
        start += 1;
    }
    all[start..].to_vec()
}

/// `BigDecimal.valueOf(d)`: the decimal written by `Double.toString(d)`; None for NaN and
/// the infinities, which have none.
fn decimal_of_double(d: f64) -> Option<Vec<u8>> {
    if !d.is_finite() {
        return None;
    }
    let text = java_text(&format!("{d:e}"));
    let (mantissa, exponent) = match text.split_once('E') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text.as_str(), 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let unscaled: i128 = format!("{int}{frac}").parse().ok()?;
    let scale = i32::try_from(frac.len()).ok()? - exponent;
    let mut out = scale.to_be_bytes().to_vec();
    out.extend(minimal_bytes(unscaled));
    Some(out)
}

/// Java's `Double.toString` / `Float.toString` of a number, from Rust's shortest
/// round-trip scientific form (`1.5e7`, `-3e-4`, `NaN`, `inf`): plain between 10^-3 and
/// 10^7, computerized scientific notation outside, always with a fractional digit.
pub(super) fn java_text(scientific: &str) -> String {
    match scientific {
        "NaN" => return "NaN".to_owned(),
        "inf" => return "Infinity".to_owned(),
        "-inf" => return "-Infinity".to_owned(),
        _ => {}
    }
    let (sign, rest) = match scientific.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", scientific),
    };
    let (mantissa, exponent) = rest.split_once('e').unwrap_or((rest, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if digits.bytes().all(|d| d == b'0') {
        return format!("{sign}0.0");
    }
    if !(-3..7).contains(&exponent) {
        let (first, more) = digits.split_at(1);
        let more = if more.is_empty() { "0" } else { more };
        return format!("{sign}{first}.{more}E{exponent}");
    }
    if exponent < 0 {
        let zeros = "0".repeat((-exponent - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let point = exponent as usize + 1;
    let padded = format!("{digits:0<point$}");
    let (int, frac) = padded.split_at(point);
    let frac = if frac.is_empty() { "0" } else { frac };
    format!("{sign}{int}.{frac}")
}

/// The CQL literal text Cassandra's serializer gives a `ty` value (`toCQLLiteral`).
fn text(ty: NativeType, b: &[u8]) -> Option<String> {
    Some(match ty {
        N::Ascii | N::Text => String::from_utf8(b.to_vec()).ok()?,
        N::Boolean => (b.first()? != &0).to_string(),
        N::Float => java_text(&format!("{:e}", f32::from_be_bytes(b.try_into().ok()?))),
        N::Double => java_text(&format!("{:e}", f64::from_be_bytes(b.try_into().ok()?))),
        N::Varint => varint_text(b),
        N::Decimal => match Number::decode(ty, b)? {
            Number::Decimal(unscaled, scale) => plain_decimal(&varint_text(&unscaled), scale),
            _ => return None,
        },
        N::Uuid | N::Timeuuid => uuid::Uuid::from_slice(b).ok()?.to_string(),
        N::Inet => inet_text(b)?,
        N::Timestamp => timestamp_text(i64::from_be_bytes(b.try_into().ok()?)),
        N::Date => date_text(i64::from(u32::from_be_bytes(b.try_into().ok()?)) - EPOCH_DAY),
        N::Time => time_text(i64::from_be_bytes(b.try_into().ok()?)),
        n if NUMBERS.contains(&n) => Number::decode(n, b)?.long_value().to_string(),
        _ => return None,
    })
}

/// `BigDecimal.toPlainString()` of `unscaled` (decimal text) × 10^-scale.
fn plain_decimal(unscaled: &str, scale: i32) -> String {
    let (sign, digits) = match unscaled.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", unscaled),
    };
    let Ok(scale) = usize::try_from(scale) else {
        let zeros = "0".repeat(scale.unsigned_abs() as usize);
        return format!("{sign}{digits}{zeros}");
    };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// `InetAddress.getHostAddress()`: dotted IPv4, or eight uncompressed hex groups.
fn inet_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])),
        16 => Some(
            b.chunks(2)
                .map(|g| format!("{:x}", u16::from_be_bytes([g[0], g[1]])))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        _ => None,
    }
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` in UTC.
fn timestamp_text(ms: i64) -> String {
    let day = ms.div_euclid(MILLIS_PER_DAY);
    let in_day = ms.rem_euclid(MILLIS_PER_DAY);
    let (h, m, s) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60);
    format!(
        "{}T{h:02}:{m:02}:{s:02}.{:03}Z",
        date_text(day),
        in_day % 1000
    )
}

fn date_text(days_from_epoch: i64) -> String {
    let (y, m, d) = civil_of_days(days_from_epoch);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:mm:ss.nnnnnnnnn` of nanoseconds since midnight.
fn time_text(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!(
        "{h:02}:{m:02}:{s:02}.{:09}",
        nanos.rem_euclid(1_000_000_000)
    )
}
