//! Bodies of the arbitrary-precision numbers, varint and decimal.
//!
//! **varint**: the minimal two's-complement bytes (redundant leading `00`/`FF` stripped, so
//! every wire form of a number encodes alike) after a length header. With `n` = length − 1,
//! a positive number (or zero) writes `FF` for each whole 127 in `n` then `0x80 + rest`
//! (`0x80..=0xFE`); a negative one writes `00` for each 127 then `0x7F − rest`
//! (`0x01..=0x7F`). Longer positives are larger, longer negatives smaller, and equal lengths
//! compare by their two's-complement bytes, which is numeric order.
//!
//! **decimal** (`scale` i32 then an unscaled varint, value = unscaled × 10^−scale): zero is
//! the single byte `0x80`. Otherwise the value is written as ±0.d₁d₂… × 10^E with d₁ ≠ 0 and
//! no trailing zero digit, then: a sign byte (`0x7F` negative, `0x81` positive), E as an
//! i64 with its sign bit flipped, the digits in pairs as `1 + 10·a + b` (a trailing pair
//! padded with 0), and a `00` terminator. A negative number's bytes after the sign byte are
//! all flipped, so a larger magnitude sorts lower. This is Cassandra 5's idea (sign,
//! exponent, base-100 mantissa) with a fixed-width exponent for simplicity.

use super::{corrupt, invalid, KeyError, Reader};
use crate::cql::types::NativeType;

/// Longest unscaled decimal accepted, in bytes: base conversion is quadratic, and a key
/// column this large is no use to anyone (about 9,800 decimal digits).
pub const MAX_DECIMAL_BYTES: usize = 4096;

/// Decoding pads a negative scale to 0 with at most this many zeros (`1E+3` reads back as
/// `1000`); beyond it the negative scale is kept.
pub const MAX_DECIMAL_PAD: i64 = 38;

const DECIMAL_NEG: u8 = 0x7F;
const DECIMAL_ZERO: u8 = 0x80;
const DECIMAL_POS: u8 = 0x81;

/// The minimal two's-complement form: no leading byte that only repeats the sign.
pub(crate) fn minimal(v: &[u8]) -> &[u8] {
    let mut v = v;
    while let [first, second, ..] = v {
        let redundant =
            (*first == 0 && second & 0x80 == 0) || (*first == 0xFF && second & 0x80 != 0);
        if !redundant {
            break;
        }
        v = &v[1..];
    }
    v
}

pub(super) fn encode_varint(v: &[u8], out: &mut Vec<u8>) {
    let digits = minimal(v);
    let negative = digits.first().is_some_and(|b| b & 0x80 != 0);
    let mut n = digits.len().saturating_sub(1);
    while n >= 127 {
        out.push(if negative { 0x00 } else { 0xFF });
        n -= 127;
    }
    let n = n as u8;
    out.push(if negative { 0x7F - n } else { 0x80 + n });
    out.extend_from_slice(digits);
}

pub(super) fn decode_varint(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), KeyError> {
    let mut n: usize = 0;
    let first = r.peek().ok_or_else(|| corrupt("varint ends early"))?;
    let negative = first < 0x80;
    loop {
        let b = r.byte()?;
        let step = match (negative, b) {
            (false, 0xFF) | (true, 0x00) => 127,
            (false, 0x80..=0xFE) => usize::from(b - 0x80),
            (true, 0x01..=0x7F) => usize::from(0x7F - b),
            _ => return Err(corrupt("varint length header")),
        };
        n = n
            .checked_add(step)
            .ok_or_else(|| corrupt("varint length"))?;
        if step != 127 {
            break;
        }
    }
    for _ in 0..=n {
        out.push(r.byte()?);
    }
    Ok(())
}

pub(super) fn encode_decimal(v: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
    let ty = NativeType::Decimal;
    let (scale, unscaled) = match v {
        [a, b, c, d, rest @ ..] if !rest.is_empty() => (i32::from_be_bytes([*a, *b, *c, *d]), rest),
        _ => return Err(invalid(ty, "expected a 4-byte scale and an unscaled value")),
    };
    let unscaled = minimal(unscaled);
    if unscaled.len() > MAX_DECIMAL_BYTES {
        return Err(KeyError::TooLarge(format!(
            "decimal over {MAX_DECIMAL_BYTES} bytes"
        )));
    }
    let negative = unscaled.first().is_some_and(|b| b & 0x80 != 0);
    let mut digits = to_decimal_digits(&magnitude(unscaled, negative));
    if digits.is_empty() {
        out.push(DECIMAL_ZERO);
        return Ok(());
    }
    let exponent = digits.len() as i64 - i64::from(scale);
    while digits.last() == Some(&0) {
        digits.pop();
    }
    canonical_scale(digits.len(), exponent)?;
    out.push(if negative { DECIMAL_NEG } else { DECIMAL_POS });
    let start = out.len();
    out.extend_from_slice(&((exponent as u64) ^ 1 << 63).to_be_bytes());
    for pair in digits.chunks(2) {
        let low = pair.get(1).copied().unwrap_or(0);
        out.push(1 + 10 * pair[0] + low);
    }
    out.push(0);
    if negative {
        out[start..].iter_mut().for_each(|b| *b = !*b);
    }
    Ok(())
}

/// The scale decoding writes for `len` significant digits at exponent `exponent`, and how
/// many zeros it appends to the digits to get there.
fn canonical_scale(len: usize, exponent: i64) -> Result<(i32, usize), KeyError> {
    let scale = len as i64 - exponent;
    let (scale, pad) = if (-MAX_DECIMAL_PAD..0).contains(&scale) {
        (0, (-scale) as usize)
    } else {
        (scale, 0)
    };
    let scale = i32::try_from(scale)
        .map_err(|_| KeyError::TooLarge("decimal scale out of range".into()))?;
    Ok((scale, pad))
}

pub(super) fn decode_decimal(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), KeyError> {
    let negative = match r.byte()? {
        DECIMAL_ZERO => {
            out.extend_from_slice(&[0, 0, 0, 0, 0]);
            return Ok(());
        }
        DECIMAL_NEG => true,
        DECIMAL_POS => false,
        b => return Err(corrupt(format!("decimal sign byte {b:#04x}"))),
    };
    if negative {
        r.invert();
    }
    let result = decode_magnitude(r);
    if negative {
        r.invert();
    }
    let (exponent, mut digits) = result?;
    let (scale, pad) =
        canonical_scale(digits.len(), exponent).map_err(|_| corrupt("decimal scale"))?;
    digits.extend(std::iter::repeat_n(0, pad));
    let mut bytes = from_decimal_digits(&digits);
    if negative {
        negate(&mut bytes);
    }
    out.extend_from_slice(&scale.to_be_bytes());
    out.extend_from_slice(minimal(&bytes));
    Ok(())
}

/// Reads the exponent and digit pairs (already un-flipped for negatives).
fn decode_magnitude(r: &mut Reader<'_>) -> Result<(i64, Vec<u8>), KeyError> {
    let exponent = (u64::from_be_bytes(r.array::<8>()?) ^ 1 << 63) as i64;
    let mut digits = Vec::new();
    loop {
        match r.byte()? {
            0 => break,
            b @ 1..=100 => {
                digits.push((b - 1) / 10);
                digits.push((b - 1) % 10);
            }
            b => return Err(corrupt(format!("decimal digit byte {b:#04x}"))),
        }
        if digits.len() > 2 * MAX_DECIMAL_BYTES * 3 {
            return Err(corrupt("decimal too long"));
        }
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.first().is_none_or(|d| *d == 0) {
        return Err(corrupt("decimal mantissa"));
    }
    Ok((exponent, digits))
}

/// The absolute value of a two's-complement number, big-endian, with a leading zero byte.
fn magnitude(v: &[u8], negative: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(v.len() + 1);
    m.push(if negative { 0xFF } else { 0 });
    m.extend_from_slice(v);
    if negative {
        negate(&mut m);
    }
    m
}

/// Two's-complement negation in place (invert, add one).
fn negate(v: &mut [u8]) {
    let mut carry = true;
    for b in v.iter_mut().rev() {
        let (sum, overflow) = (!*b).overflowing_add(u8::from(carry));
        *b = sum;
        carry = carry && overflow;
    }
}

/// Decimal digits (0..=9, most significant first, no leading zero; empty for zero) of an
/// unsigned big-endian number, by repeated division by 10⁹ over 32-bit limbs.
fn to_decimal_digits(mag: &[u8]) -> Vec<u8> {
    let pad = (4 - mag.len() % 4) % 4;
    let padded: Vec<u8> = std::iter::repeat_n(0, pad)
        .chain(mag.iter().copied())
        .collect();
    let mut limbs: Vec<u32> = padded
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut chunks = Vec::new();
    let mut start = 0;
    while let Some(offset) = limbs[start..].iter().position(|l| *l != 0) {
        start += offset;
        let mut rem: u64 = 0;
        for limb in &mut limbs[start..] {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
    }
    let text: String = match chunks.split_last() {
        None => return Vec::new(),
        Some((top, rest)) => {
            let mut s = top.to_string();
            rest.iter()
                .rev()
                .for_each(|c| s.push_str(&format!("{c:09}")));
            s
        }
    };
    text.bytes().map(|b| b - b'0').collect()
}

/// The unsigned big-endian bytes (with a leading zero byte) of a decimal digit string.
fn from_decimal_digits(digits: &[u8]) -> Vec<u8> {
    let mut limbs: Vec<u32> = Vec::new(); // little-endian base 2^32
    for &d in digits {
        let mut carry = u64::from(d);
        for limb in limbs.iter_mut() {
            let cur = u64::from(*limb) * 10 + carry;
            *limb = cur as u32;
            carry = cur >> 32;
        }
        if carry != 0 {
            limbs.push(carry as u32);
        }
    }
    let mut bytes = vec![0u8];
    limbs
        .iter()
        .rev()
        .for_each(|l| bytes.extend_from_slice(&l.to_be_bytes()));
    bytes
}
