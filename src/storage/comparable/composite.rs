//! Bodies of frozen collections, tuples and (resolved) user types.
//!
//! The body is a nested sequence: one component per element (header + ascending body, as at
//! the top level) and an [`END`] terminator, so a list that is a prefix of another sorts
//! first, as in Cassandra's `ListType.compareListOrSet`. A map writes key then value per
//! entry (`MapType.compareMaps`). A tuple drops trailing nulls before writing, because
//! `TupleType.compareCustom` treats trailing nulls as equal to missing fields; it decodes
//! back to one field per declared type, padding with nulls.
//!
//! Wire forms (protocol v4): a collection is an i32 count then `[bytes]` elements; a tuple is
//! `[bytes]` fields until the value ends; `[bytes]` is an i32 length (−1 for null) and bytes.

use super::{corrupt, encode_component, invalid, KeyError, Order, Reader, END, VALUE};
use super::{EMPTY_ASC, NULL_ASC};
use crate::cql::types::CqlType;

/// A cursor over a collection's or tuple's wire bytes.
struct Wire<'a> {
    buf: &'a [u8],
    ty: &'a str,
}

impl<'a> Wire<'a> {
    fn int(&mut self) -> Result<i32, KeyError> {
        match self.buf {
            [a, b, c, d, rest @ ..] => {
                self.buf = rest;
                Ok(i32::from_be_bytes([*a, *b, *c, *d]))
            }
            _ => Err(invalid(self.ty, "truncated")),
        }
    }

    /// One `[bytes]` element; None for a null (negative length).
    fn element(&mut self) -> Result<Option<&'a [u8]>, KeyError> {
        let Ok(len) = usize::try_from(self.int()?) else {
            return Ok(None);
        };
        if len > self.buf.len() {
            return Err(invalid(self.ty, "element longer than the value"));
        }
        let (elem, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(Some(elem))
    }

    fn count(&mut self) -> Result<usize, KeyError> {
        usize::try_from(self.int()?).map_err(|_| invalid(self.ty, "negative element count"))
    }

    fn finish(&self) -> Result<(), KeyError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(invalid(self.ty, "trailing bytes"))
        }
    }
}

/// Encodes one element as an ascending component into its own buffer.
fn element(ty: &CqlType, value: Option<&[u8]>) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::new();
    encode_component(ty, Order::Asc, value, &mut out)?;
    Ok(out)
}

/// Encodes every element of a list or set wire value, each as its own component.
fn elements(elem: &CqlType, v: &[u8], name: &str) -> Result<Vec<Vec<u8>>, KeyError> {
    let mut wire = Wire { buf: v, ty: name };
    let count = wire.count()?;
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(element(elem, wire.element()?)?);
    }
    wire.finish()?;
    Ok(out)
}

pub(super) fn encode_list(elem: &CqlType, v: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
    elements(elem, v, "list")?
        .iter()
        .for_each(|e| out.extend_from_slice(e));
    out.push(END);
    Ok(())
}

/// Sets are written sorted and de-duplicated, as Cassandra stores them.
pub(super) fn encode_set(elem: &CqlType, v: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
    let mut items = elements(elem, v, "set")?;
    items.sort_unstable();
    items.dedup();
    items.iter().for_each(|e| out.extend_from_slice(e));
    out.push(END);
    Ok(())
}

/// Maps are written sorted by key; of duplicate keys the last wins, as in a bound map.
pub(super) fn encode_map(
    kt: &CqlType,
    vt: &CqlType,
    v: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), KeyError> {
    let mut wire = Wire { buf: v, ty: "map" };
    let count = wire.count()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let key = element(kt, wire.element()?)?;
        entries.push((key, element(vt, wire.element()?)?));
    }
    wire.finish()?;
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(&b.0)); // stable: the last duplicate is now first
    entries.dedup_by(|later, first| later.0 == first.0);
    for (key, value) in &entries {
        out.extend_from_slice(key);
        out.extend_from_slice(value);
    }
    out.push(END);
    Ok(())
}

pub(super) fn encode_tuple(
    fields: &[CqlType],
    v: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), KeyError> {
    let mut wire = Wire {
        buf: v,
        ty: "tuple",
    };
    let mut last_non_null = out.len();
    for ty in fields {
        if wire.buf.is_empty() {
            break;
        }
        let value = wire.element()?;
        encode_component(ty, Order::Asc, value, out)?;
        if value.is_some() {
            last_non_null = out.len();
        }
    }
    wire.finish()
        .map_err(|_| invalid("tuple", "more fields than the type has"))?;
    out.truncate(last_non_null);
    out.push(END);
    Ok(())
}

/// Reads one nested element: None at [`END`], else its wire `[bytes]` appended to `out`.
fn decode_element(ty: &CqlType, r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<bool, KeyError> {
    match r.byte()? {
        END => Ok(false),
        NULL_ASC => {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            Ok(true)
        }
        EMPTY_ASC => {
            out.extend_from_slice(&0i32.to_be_bytes());
            Ok(true)
        }
        VALUE => {
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            super::decode_body(ty, r, out)?;
            let len = out.len() - at - 4;
            patch_len(out, at, len)?;
            Ok(true)
        }
        b => Err(corrupt(format!("nested header byte {b:#04x}"))),
    }
}

/// Writes `value` as an i32 at `at` (a placeholder reserved earlier).
fn patch_len(out: &mut [u8], at: usize, value: usize) -> Result<(), KeyError> {
    let value = i32::try_from(value).map_err(|_| corrupt("element too long"))?;
    out.get_mut(at..at + 4)
        .ok_or_else(|| corrupt("length placeholder"))?
        .copy_from_slice(&value.to_be_bytes());
    Ok(())
}

pub(super) fn decode_list(
    elem: &CqlType,
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<(), KeyError> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut count = 0;
    while decode_element(elem, r, out)? {
        count += 1;
    }
    patch_len(out, at, count)
}

pub(super) fn decode_map(
    kt: &CqlType,
    vt: &CqlType,
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<(), KeyError> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut count = 0;
    while decode_element(kt, r, out)? {
        if !decode_element(vt, r, out)? {
            return Err(corrupt("map key without a value"));
        }
        count += 1;
    }
    patch_len(out, at, count)
}

pub(super) fn decode_tuple(
    fields: &[CqlType],
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<(), KeyError> {
    let mut read = 0;
    loop {
        let Some(ty) = fields.get(read) else {
            return match r.byte()? {
                END => Ok(()),
                _ => Err(corrupt("tuple has more fields than its type")),
            };
        };
        if !decode_element(ty, r, out)? {
            break;
        }
        read += 1;
    }
    for _ in read..fields.len() {
        out.extend_from_slice(&(-1i32).to_be_bytes());
    }
    Ok(())
}
