//! Typed CQL values and their wire serialisation (spec §6).
//!
//! `CqlValue` is what the executor builds rows from and what literals and bound values are
//! converted into. `to_bytes` gives the `[bytes]` content of a cell.

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::ast::Term;
use super::types::{CqlType, NativeType};

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
    Decimal {
        scale: i32,
        unscaled: Vec<u8>,
    },
    Duration {
        months: i32,
        days: i32,
        nanos: i64,
    },
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
            Duration {
                months,
                days,
                nanos,
            } => {
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
            Udt(fields) => fields
                .iter()
                .for_each(|(_, v)| put_element(buf, v.as_ref())),
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
///
/// ```
/// let mut buf = bytes::BytesMut::new();
/// ringcache::cql::value::put_vint(&mut buf, i64::MIN);
/// assert_eq!(&buf[..], &[0xFF; 9]);
/// ```
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
    // The first byte carries `extra` leading one-bits, then the high bits of the value
    // (all eight bits are ones for a 9-byte vint, whose value fills the next 8 bytes).
    out[0] |= (0xFF00u16 >> extra) as u8;
    buf.put_slice(&out[..bytes_needed]);
}

/// Why a literal is no value of its type, in Cassandra's words. `receiver` names what the
/// literal was meant for (a column, `value(l)`, `u.f`); the caller that knows it fills it
/// in with [`LiteralError::for_receiver`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiteralError {
    /// A constant of a kind the type does not take (`'a'` for an int).
    #[error(
        "Invalid {kind} constant ({text}) for {} of type {ty}",
        quoted(receiver)
    )]
    Constant {
        kind: &'static str,
        text: String,
        receiver: String,
        ty: String,
    },
    /// A collection, tuple or user type literal the type does not take.
    #[error("Invalid {kind} literal for {} of type {ty}", plain(receiver))]
    Literal {
        kind: &'static str,
        receiver: String,
        ty: String,
    },
    /// A tuple literal with more components than its type.
    #[error("Invalid tuple literal for {}: too many elements. Type {ty} expects {expected} but got {got}", plain(receiver))]
    TupleArity {
        receiver: String,
        ty: String,
        expected: usize,
        got: usize,
    },
    /// A constant of the right kind whose text is no value of the type (Cassandra's
    /// serializer message, such as "Unable to make int from '99999999999'").
    #[error("{0}")]
    Value(String),
    #[error("null is not supported inside collections")]
    NullInCollection,
    /// A user type literal naming a field its type lacks.
    #[error("Unknown field '{field}' in value of user defined type {ty}")]
    UnknownField { field: String, ty: String },
    #[error("Unknown user type {0}")]
    UnknownType(String),
    /// A function call that cannot be evaluated or assigned.
    #[error("{0}")]
    Function(String),
}

impl LiteralError {
    /// The error with its receiver named, unless a nested literal already named its own.
    pub fn for_receiver(mut self, name: &str) -> LiteralError {
        match &mut self {
            LiteralError::Constant { receiver, .. }
            | LiteralError::Literal { receiver, .. }
            | LiteralError::TupleArity { receiver, .. }
                if receiver.is_empty() =>
            {
                *receiver = name.to_owned();
            }
            _ => {}
        }
        self
    }

    /// The error with the receiver's type shown as `ty` (the declared type, such as
    /// `frozen<addr>`, rather than the one a nested conversion saw), unless named already.
    pub fn of_type(mut self, declared: &CqlType) -> LiteralError {
        match &mut self {
            LiteralError::Constant { receiver, ty, .. }
            | LiteralError::Literal { receiver, ty, .. }
                if receiver.is_empty() =>
            {
                *ty = declared.to_string();
            }
            _ => {}
        }
        self
    }

    /// The refusal of `term` as a value of `ty`, by the kind of literal it is.
    pub fn mismatch(term: &Term, ty: &CqlType) -> LiteralError {
        let ty = ty.to_string();
        let receiver = String::new();
        let constant = |kind: &'static str, text: String| LiteralError::Constant {
            kind,
            text,
            receiver: String::new(),
            ty: ty.clone(),
        };
        let literal = |kind: &'static str| LiteralError::Literal {
            kind,
            receiver: String::new(),
            ty: ty.clone(),
        };
        match term {
            Term::String(s) => constant("STRING", s.clone()),
            Term::Integer(s) => constant("INTEGER", s.clone()),
            Term::Float(s) => constant("FLOAT", s.clone()),
            Term::Boolean(b) => constant("BOOLEAN", b.to_string()),
            Term::Uuid(s) => constant("UUID", s.clone()),
            Term::Blob(s) => constant("HEX", format!("0x{s}")),
            Term::Duration(s) => constant("DURATION", s.clone()),
            Term::List(_) => literal("list"),
            Term::Set(_) => literal("set"),
            Term::Map(_) => literal("map"),
            Term::Tuple(_) => literal("tuple"),
            Term::UserType(_) => literal("user type"),
            Term::Null | Term::BindMarker(_) | Term::FunctionCall { .. } | Term::Cast { .. } => {
                LiteralError::Literal {
                    kind: "term",
                    receiver,
                    ty,
                }
            }
        }
    }
}

/// `"name"`, as Cassandra quotes the receiver of a constant (nothing when unnamed).
fn quoted(receiver: &str) -> String {
    match receiver.is_empty() {
        true => "a value".to_owned(),
        false => format!("\"{receiver}\""),
    }
}

fn plain(receiver: &str) -> String {
    match receiver.is_empty() {
        true => "a value".to_owned(),
        false => receiver.to_owned(),
    }
}

/// A literal's failure as the text a `Result<_, String>` caller passes on.
impl From<LiteralError> for String {
    fn from(e: LiteralError) -> String {
        e.to_string()
    }
}

impl CqlValue {
    /// Converts a literal term to a value of type `ty`. Bind markers and function calls are
    /// resolved by the caller; this handles constants and collection literals.
    pub fn from_literal(term: &Term, ty: &CqlType) -> Result<CqlValue, LiteralError> {
        match ty {
            CqlType::Frozen(inner) => CqlValue::from_literal(term, inner),
            CqlType::Native(native) => native_from_literal(term, *native),
            CqlType::List(elem) | CqlType::Set(elem) => {
                let items = match term {
                    Term::List(items) | Term::Set(items) | Term::Tuple(items) => items,
                    other => return Err(LiteralError::mismatch(other, ty)),
                };
                let values = items
                    .iter()
                    .map(|t| element_from_literal(t, elem))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if matches!(ty, CqlType::List(_)) {
                    CqlValue::List(values)
                } else {
                    sorted_set(values)
                })
            }
            CqlType::Map(k, v) => match term {
                Term::Map(entries) => entries
                    .iter()
                    .map(|(a, b)| Ok((element_from_literal(a, k)?, element_from_literal(b, v)?)))
                    .collect::<Result<Vec<_>, LiteralError>>()
                    .map(CqlValue::Map),
                Term::Set(items) if items.is_empty() => Ok(CqlValue::Map(Vec::new())),
                other => Err(LiteralError::mismatch(other, ty)),
            },
            CqlType::Tuple(types) => match term {
                Term::Tuple(items) if items.len() <= types.len() => items
                    .iter()
                    .zip(types)
                    .map(|(t, ty)| nullable_from_literal(t, ty))
                    .collect::<Result<Vec<_>, _>>()
                    .map(CqlValue::Tuple),
                Term::Tuple(items) => Err(LiteralError::TupleArity {
                    receiver: String::new(),
                    ty: ty.to_string(),
                    expected: types.len(),
                    got: items.len(),
                }),
                other => Err(LiteralError::mismatch(other, ty)),
            },
            CqlType::UserType { .. } | CqlType::Custom(_) => Err(LiteralError::mismatch(term, ty)),
        }
    }

    /// The JSON text Cassandra's `toJson()` produces for this value.
    pub fn to_json(&self) -> String {
        use CqlValue::*;
        match self {
            Ascii(s) | Text(s) => json_string(s),
            Bigint(v) | Counter(v) => v.to_string(),
            Int(v) => v.to_string(),
            Smallint(v) => v.to_string(),
            Tinyint(v) => v.to_string(),
            Boolean(v) => v.to_string(),
            Double(v) => v.to_string(),
            Float(v) => v.to_string(),
            Uuid(u) | Timeuuid(u) => json_string(&u.to_string()),
            Inet(a) => json_string(&a.to_string()),
            Blob(b) => json_string(&format!("0x{}", hex(b))),
            List(items) | Set(items) => {
                let inner: Vec<String> = items.iter().map(CqlValue::to_json).collect();
                format!("[{}]", inner.join(", "))
            }
            Map(entries) => {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", json_key(k), v.to_json()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            Tuple(items) => {
                let inner: Vec<String> = items.iter().map(json_or_null).collect();
                format!("[{}]", inner.join(", "))
            }
            Udt(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(name, v)| format!("{}: {}", json_string(name), json_or_null(v)))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            other => json_string(&format!("{other:?}")),
        }
    }

    /// Orders two values of the same type as CQL compares them; `None` across types.
    pub fn compare(&self, other: &CqlValue) -> Option<std::cmp::Ordering> {
        use CqlValue::*;
        match (self, other) {
            (Ascii(a), Ascii(b)) | (Text(a), Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Bigint(a), Bigint(b)) | (Counter(a), Counter(b)) | (Timestamp(a), Timestamp(b)) => {
                Some(a.cmp(b))
            }
            (Time(a), Time(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Smallint(a), Smallint(b)) => Some(a.cmp(b)),
            (Tinyint(a), Tinyint(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Boolean(a), Boolean(b)) => Some(a.cmp(b)),
            (Double(a), Double(b)) => a.partial_cmp(b),
            (Float(a), Float(b)) => a.partial_cmp(b),
            _ => Some(self.to_bytes().cmp(&other.to_bytes())),
        }
    }
}

fn nullable_from_literal(term: &Term, ty: &CqlType) -> Result<Option<CqlValue>, LiteralError> {
    match term {
        Term::Null => Ok(None),
        t => CqlValue::from_literal(t, ty).map(Some),
    }
}

/// A collection element, which may not be null.
fn element_from_literal(term: &Term, ty: &CqlType) -> Result<CqlValue, LiteralError> {
    match term {
        Term::Null => Err(LiteralError::NullInCollection),
        t => CqlValue::from_literal(t, ty),
    }
}

fn sorted_set(mut values: Vec<CqlValue>) -> CqlValue {
    values.sort_by(|a, b| a.compare(b).unwrap_or(std::cmp::Ordering::Equal));
    values.dedup();
    CqlValue::Set(values)
}

fn native_from_literal(term: &Term, ty: NativeType) -> Result<CqlValue, LiteralError> {
    use NativeType as N;
    let bad = || LiteralError::mismatch(term, &CqlType::Native(ty));
    // The right kind of constant whose text is no value: Cassandra's serializer message.
    let unparsable = |what: &str, text: &str| {
        LiteralError::Value(format!("Unable to make {what} from '{text}'"))
    };
    let int = |s: &str, what: &str| s.parse::<i64>().map_err(|_| unparsable(what, s));
    Ok(match (term, ty) {
        (Term::String(s), N::Text) => CqlValue::Text(s.clone()),
        (Term::String(s), N::Ascii) => match s.bytes().find(|b| !b.is_ascii()) {
            None => CqlValue::Ascii(s.clone()),
            Some(b) => {
                return Err(LiteralError::Value(format!(
                    "Invalid byte for ascii: {}",
                    b as i8
                )))
            }
        },
        (Term::Integer(s), N::Int) => {
            CqlValue::Int(i32::try_from(int(s, "int")?).map_err(|_| unparsable("int", s))?)
        }
        (Term::Integer(s), N::Bigint | N::Counter) => CqlValue::Bigint(int(s, "long")?),
        (Term::Integer(s), N::Smallint) => {
            CqlValue::Smallint(i16::try_from(int(s, "short")?).map_err(|_| unparsable("short", s))?)
        }
        (Term::Integer(s), N::Tinyint) => {
            CqlValue::Tinyint(i8::try_from(int(s, "byte")?).map_err(|_| unparsable("byte", s))?)
        }
        (Term::Integer(s), N::Timestamp) => CqlValue::Timestamp(s.parse().map_err(|_| {
            LiteralError::Value(format!("Unable to make long (for date) from: '{s}'"))
        })?),
        (Term::Integer(s) | Term::Float(s), N::Double) => {
            CqlValue::Double(s.parse().map_err(|_| unparsable("double", s))?)
        }
        (Term::Integer(s) | Term::Float(s), N::Float) => {
            CqlValue::Float(s.parse().map_err(|_| unparsable("float", s))?)
        }
        (Term::Boolean(b), N::Boolean) => CqlValue::Boolean(*b),
        (Term::Uuid(s), N::Uuid) => CqlValue::Uuid(s.parse().map_err(|_| unparsable("UUID", s))?),
        (Term::Uuid(s), N::Timeuuid) => {
            CqlValue::Timeuuid(s.parse().map_err(|_| unparsable("UUID", s))?)
        }
        (Term::String(s), N::Inet) => {
            CqlValue::Inet(s.parse().map_err(|_| unparsable("inet address", s))?)
        }
        (Term::Blob(h), N::Blob) => {
            CqlValue::Blob(Bytes::from(unhex(h).ok_or_else(|| {
                LiteralError::Value(format!("cannot parse '0x{h}' as hex bytes"))
            })?))
        }
        _ => return Err(bad()),
    })
}

fn json_or_null(v: &Option<CqlValue>) -> String {
    v.as_ref()
        .map_or_else(|| "null".to_owned(), CqlValue::to_json)
}

/// Map keys are JSON strings; non-text keys are their JSON text, quoted.
fn json_key(k: &CqlValue) -> String {
    match k {
        CqlValue::Ascii(_) | CqlValue::Text(_) => k.to_json(),
        other => json_string(&other.to_json()),
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
