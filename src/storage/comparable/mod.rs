//! Byte-comparable encodings of CQL values: `memcmp` of two encodings orders them exactly
//! as Cassandra's comparator for the type (and clustering order) orders the values.
//!
//! RocksDB knows one order, bytewise. Cassandra 5 solved the same problem for its tries with
//! "ByteComparable" (`utils/bytecomparable/ByteComparable.md`); this module follows that
//! design, simplified where we do not need Cassandra's exact bytes:
//!
//! * A clustering key is a sequence of components, each a **header byte** then the
//!   **body**, closed by a **terminator**. Headers: value `0x40`; empty value `0x3F` (ASC) /
//!   `0x41` (DESC); null `0x3E` (ASC) / `0x42` (DESC), so null < empty < values ascending and
//!   the reverse descending. Terminators: `0x38` ends a whole key; `0x20` ("before") and `0x60`
//!   ("after") end a *prefix* used as a bound, sorting before/after every key with that prefix.
//!   Every body is self-delimiting, and everything that can follow a body is in
//!   `0x20..=0x60`, which is what makes the byte order of the sequence lexicographic.
//! * A DESC component's body has every bit flipped (headers and terminators are not).
//! * Bodies per type (big-endian throughout):
//!   - signed fixed-width integers (tinyint, smallint, int, bigint, counter, timestamp, time):
//!     the bytes with the sign bit flipped; date (unsigned) as is;
//!   - float/double: sign bit flipped for positives, all bits flipped for negatives, NaN made
//!     canonical first: this is `Float.compare`/`Double.compare` (-0.0 < 0.0, NaN last and
//!     equal to every NaN); a NaN decodes as the canonical NaN;
//!   - boolean: `0x00`/`0x01` (Cassandra treats any non-zero byte as true; it decodes as 1);
//!   - text, ascii, blob, inet: the bytes with `00` escaped as `00 FF`, then a `00`
//!     terminator (inet is `BYTE_ORDER` in Cassandra: 4-byte v4 and 16-byte v6 addresses
//!     compare as plain bytes);
//!   - uuid: version nibble first, then for v1 the 60-bit timestamp, else the remaining 60 msb
//!     bits, then the 8 lsb bytes unsigned (UUIDType.compareCustom);
//!     timeuuid: the v1 timestamp, then the lsb bytes each compared *signed*
//!     (TimeUUIDType.compareCustom), so each lsb byte has its top bit flipped;
//!   - varint: a length header then the minimal two's-complement bytes (`number.rs`);
//!   - decimal: sign, decimal exponent and base-100 mantissa digits (`number.rs`);
//!   - frozen list/set/map/tuple/UDT: the elements as a nested sequence (`composite.rs`);
//!     set elements and map entries are sorted and de-duplicated by their encodings, which is
//!     the order Cassandra stores them in.
//!
//! Equal values with different wire forms encode identically, because Cassandra's
//! comparators say they are the same clustering: varints with redundant sign bytes, booleans
//! other than 0/1, NaNs, and decimals such as `1.0`, `1.00` and `1` (DecimalType compares
//! with `BigDecimal.compareTo`). Decoding returns one canonical wire form: minimal varints,
//! and decimals with trailing zeros stripped and a non-negative scale where that costs at
//! most [`number::MAX_DECIMAL_PAD`] extra digits, so `1.00` written is `1` read back.
//!
//! User types must be resolved to `CqlType::Tuple` of their field types before encoding
//! (the wire form and the order are the same); duration is not comparable (Cassandra
//! refuses it in keys).

mod bounds;
mod composite;
mod number;
mod scalar;
#[cfg(test)]
mod tests;

pub use bounds::{
    full_range, intersect_ranges, prefix_range, slice_ranges, ClusteringRange, SliceOp,
};

use crate::cql::types::CqlType;

/// Header of a component holding a (non-empty) value, in either order.
pub const VALUE: u8 = 0x40;
/// Header of a null component in an ascending position.
pub const NULL_ASC: u8 = 0x3E;
/// Header of an empty-bytes component in an ascending position.
pub const EMPTY_ASC: u8 = 0x3F;
/// Header of an empty-bytes component in a descending position.
pub const EMPTY_DESC: u8 = 0x41;
/// Header of a null component in a descending position.
pub const NULL_DESC: u8 = 0x42;
/// Terminator of a complete sequence (a whole clustering key, a frozen value).
pub const END: u8 = 0x38;
/// Terminator of a prefix bound sorting before every key with that prefix.
pub const BEFORE: u8 = 0x20;
/// Terminator of a prefix bound sorting after every key with that prefix.
pub const AFTER: u8 = 0x60;

/// The clustering order of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Order {
    /// Ascending (the default).
    Asc,
    /// Descending (`WITH CLUSTERING ORDER BY (c DESC)`): the body's bits are flipped.
    Desc,
}

impl Order {
    fn mask(self) -> u8 {
        match self {
            Order::Asc => 0x00,
            Order::Desc => 0xFF,
        }
    }

    fn null_header(self) -> u8 {
        match self {
            Order::Asc => NULL_ASC,
            Order::Desc => NULL_DESC,
        }
    }

    fn empty_header(self) -> u8 {
        match self {
            Order::Asc => EMPTY_ASC,
            Order::Desc => EMPTY_DESC,
        }
    }
}

/// One component to encode: its type, its order and its wire bytes (None is null).
pub type Component<'a> = (&'a CqlType, Order, Option<&'a [u8]>);

/// One clustering column's type and order, for decoding and for building bounds.
pub type Column<'a> = (&'a CqlType, Order);

/// Why a value could not be encoded or an encoding could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The wire bytes are not a valid value of the type.
    #[error("invalid {ty} value: {reason}")]
    InvalidValue {
        /// The CQL type the bytes were meant to be.
        ty: String,
        /// What was wrong with them.
        reason: String,
    },
    /// The type cannot be part of a key (duration, custom types).
    #[error("type {0} cannot be used in a key")]
    NotComparable(String),
    /// A user type that was not resolved to a tuple of its field types.
    #[error("user type {0} must be resolved to its field types before encoding")]
    UnresolvedUserType(String),
    /// A value exceeds a bound this module enforces (decimal digits, key lengths).
    #[error("value too large: {0}")]
    TooLarge(String),
    /// The encoded bytes are not a valid encoding (a corrupt or foreign key).
    #[error("malformed encoded key: {0}")]
    Corrupt(String),
}

pub(crate) fn invalid(ty: impl std::fmt::Display, reason: impl Into<String>) -> KeyError {
    KeyError::InvalidValue {
        ty: ty.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn corrupt(reason: impl Into<String>) -> KeyError {
    KeyError::Corrupt(reason.into())
}

/// Appends a whole clustering key: every component, then [`END`].
pub fn encode_clustering(components: &[Component<'_>], out: &mut Vec<u8>) -> Result<(), KeyError> {
    encode_prefix(components, out)?;
    out.push(END);
    Ok(())
}

/// Appends the components without a terminator; push [`BEFORE`] or [`AFTER`] to make a
/// bound, or [`END`] to make a whole key.
pub fn encode_prefix(components: &[Component<'_>], out: &mut Vec<u8>) -> Result<(), KeyError> {
    components
        .iter()
        .try_for_each(|&(ty, order, value)| encode_component(ty, order, value, out))
}

/// Appends one component: its header byte and, for a non-empty value, its body.
pub fn encode_component(
    ty: &CqlType,
    order: Order,
    value: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<(), KeyError> {
    match value {
        None => out.push(order.null_header()),
        Some([]) => out.push(order.empty_header()),
        Some(bytes) => {
            out.push(VALUE);
            let start = out.len();
            encode_body(ty, bytes, out)?;
            if order == Order::Desc {
                out[start..].iter_mut().for_each(|b| *b = !*b);
            }
        }
    }
    Ok(())
}

/// How an encoded clustering sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Terminator {
    /// [`BEFORE`]: a bound before every key with this prefix.
    Before,
    /// [`END`]: a complete key.
    End,
    /// [`AFTER`]: a bound after every key with this prefix.
    After,
}

/// A decoded clustering sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedClustering {
    /// Wire bytes of each component present (None for null), in canonical form.
    pub values: Vec<Option<Vec<u8>>>,
    /// How the sequence ended.
    pub terminator: Terminator,
    /// Bytes of input consumed, terminator included.
    pub len: usize,
}

/// Decodes a clustering key or bound at the start of `bytes` back to wire values. Fewer
/// components than columns is allowed (a prefix bound); more is an error.
pub fn decode_clustering(
    columns: &[Column<'_>],
    bytes: &[u8],
) -> Result<DecodedClustering, KeyError> {
    let mut r = Reader::new(bytes);
    let mut values = Vec::new();
    loop {
        let header = r.byte()?;
        let terminator = match header {
            BEFORE => Some(Terminator::Before),
            END => Some(Terminator::End),
            AFTER => Some(Terminator::After),
            _ => None,
        };
        if let Some(terminator) = terminator {
            let len = r.pos;
            return Ok(DecodedClustering {
                values,
                terminator,
                len,
            });
        }
        let &(ty, order) = columns
            .get(values.len())
            .ok_or_else(|| corrupt("more components than clustering columns"))?;
        values.push(decode_component(ty, order, header, &mut r)?);
    }
}

/// Decodes the body that follows `header` for a column of `order`.
fn decode_component(
    ty: &CqlType,
    order: Order,
    header: u8,
    r: &mut Reader<'_>,
) -> Result<Option<Vec<u8>>, KeyError> {
    if header == order.null_header() {
        return Ok(None);
    }
    if header == order.empty_header() {
        return Ok(Some(Vec::new()));
    }
    if header != VALUE {
        return Err(corrupt(format!("unexpected header byte {header:#04x}")));
    }
    let mut out = Vec::new();
    r.mask = order.mask();
    let result = decode_body(ty, r, &mut out);
    r.mask = 0;
    result.map(|()| Some(out))
}

/// Encodes one value alone (header, body, [`END`]): a collection cell path, for instance.
pub fn encode_value(ty: &CqlType, value: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
    encode_component(ty, Order::Asc, Some(value), out)?;
    out.push(END);
    Ok(())
}

/// Decodes what [`encode_value`] wrote; the whole input must be consumed.
pub fn decode_value(ty: &CqlType, bytes: &[u8]) -> Result<Vec<u8>, KeyError> {
    let decoded = decode_clustering(&[(ty, Order::Asc)], bytes)?;
    if decoded.len != bytes.len() || decoded.terminator != Terminator::End {
        return Err(corrupt("trailing bytes after a value"));
    }
    match decoded.values.into_iter().next() {
        Some(Some(value)) => Ok(value),
        _ => Err(corrupt("expected one non-null value")),
    }
}

/// Appends the ascending body of a non-empty value.
fn encode_body(ty: &CqlType, value: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
    match ty.unfrozen() {
        CqlType::Native(n) => scalar::encode(*n, value, out),
        CqlType::List(elem) => composite::encode_list(elem, value, out),
        CqlType::Set(elem) => composite::encode_set(elem, value, out),
        CqlType::Map(k, v) => composite::encode_map(k, v, value, out),
        CqlType::Tuple(fields) => composite::encode_tuple(fields, value, out),
        CqlType::UserType { name, .. } => Err(KeyError::UnresolvedUserType(name.clone())),
        CqlType::Custom(_) | CqlType::Frozen(_) => Err(KeyError::NotComparable(ty.to_string())),
    }
}

/// Reads a body written by [`encode_body`], appending the canonical wire bytes.
fn decode_body(ty: &CqlType, r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), KeyError> {
    match ty.unfrozen() {
        CqlType::Native(n) => scalar::decode(*n, r, out),
        CqlType::List(elem) | CqlType::Set(elem) => composite::decode_list(elem, r, out),
        CqlType::Map(k, v) => composite::decode_map(k, v, r, out),
        CqlType::Tuple(fields) => composite::decode_tuple(fields, r, out),
        CqlType::UserType { name, .. } => Err(KeyError::UnresolvedUserType(name.clone())),
        CqlType::Custom(_) | CqlType::Frozen(_) => Err(KeyError::NotComparable(ty.to_string())),
    }
}

/// A cursor over encoded bytes that un-flips DESC bodies as it reads (`mask`).
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    mask: u8,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            mask: 0,
        }
    }

    /// The next byte, un-flipped.
    fn byte(&mut self) -> Result<u8, KeyError> {
        let b = self
            .buf
            .get(self.pos)
            .ok_or_else(|| corrupt("encoding ends early"))?;
        self.pos += 1;
        Ok(b ^ self.mask)
    }

    /// The next byte without consuming it.
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).map(|b| b ^ self.mask)
    }

    /// The next `N` bytes, un-flipped.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], KeyError> {
        let mut out = [0u8; N];
        for b in out.iter_mut() {
            *b = self.byte()?;
        }
        Ok(out)
    }

    /// Flips the meaning of every following byte (a negative decimal's magnitude).
    fn invert(&mut self) {
        self.mask = !self.mask;
    }
}
