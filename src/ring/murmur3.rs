//! MurmurHash3 x64_128, seed 0, bit-for-bit as Cassandra's `MurmurHash.hash3_x64_128`.
//!
//! The one deliberate deviation from the reference C++ MurmurHash3 is Cassandra's: the 1–15
//! tail bytes are *sign-extended* before being shifted into `k1`/`k2`
//! (`k1 ^= ((long) key[i]) << (8*i)` with Java's signed `byte`). Any byte ≥ 0x80 in the tail
//! therefore smears ones over the higher bytes of the lane. Body blocks are read as
//! little-endian `u64` and are unaffected. Every Cassandra-compatible implementation (Scylla's
//! `int8_t`, the Rust driver's `as i8 as i64`) copies this, and so must we, or tokens of
//! non-ASCII keys land on the wrong node.

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

/// Both 64-bit halves of MurmurHash3 x64_128 (seed 0, Cassandra tail quirk) as signed
/// integers, the way Cassandra's `long[2]` holds them. The token uses only `.0` (`h1`).
pub fn murmur3_x64_128(data: &[u8]) -> (i64, i64) {
    let mut h1: u64 = 0;
    let mut h2: u64 = 0;
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let (lo, hi) = block.split_at(8);
        mix_body(&mut h1, &mut h2, le_u64(lo), le_u64(hi));
    }
    let tail = blocks.remainder();
    let (lo, hi) = tail.split_at(tail.len().min(8));
    if !hi.is_empty() {
        h2 ^= mix_k2(signed_lane(hi));
    }
    if !lo.is_empty() {
        h1 ^= mix_k1(signed_lane(lo));
    }

    // Java's `length` is an int; keys are far below 2^31 bytes, so `as u64` matches it.
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1 as i64, h2 as i64)
}

/// The first half (`h1`) of [`murmur3_x64_128`]: Cassandra's raw token value, before the
/// `i64::MIN → i64::MAX` normalisation that [`crate::ring::Token::from_hash`] applies.
#[inline]
pub fn murmur3_x64_128_h1(data: &[u8]) -> i64 {
    murmur3_x64_128(data).0
}

/// One 16-byte body block: the standard MurmurHash3 x64_128 round.
#[inline]
fn mix_body(h1: &mut u64, h2: &mut u64, k1: u64, k2: u64) {
    *h1 ^= mix_k1(k1);
    *h1 = h1.rotate_left(27).wrapping_add(*h2);
    *h1 = h1.wrapping_mul(5).wrapping_add(0x52dc_e729);

    *h2 ^= mix_k2(k2);
    *h2 = h2.rotate_left(31).wrapping_add(*h1);
    *h2 = h2.wrapping_mul(5).wrapping_add(0x3849_5ab5);
}

#[inline]
fn mix_k1(k1: u64) -> u64 {
    k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2)
}

#[inline]
fn mix_k2(k2: u64) -> u64 {
    k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1)
}

/// Reads 8 bytes little-endian; the caller always passes exactly 8 (a half of a 16-byte chunk).
#[inline]
fn le_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

/// Folds up to 8 tail bytes into a lane the way Cassandra does: each byte is a Java signed
/// byte widened to `long` (sign-extended) before the shift, and lanes are XORed, so a high
/// byte's ones overwrite-by-XOR the bytes above it. Reproducing this is the whole point.
#[inline]
fn signed_lane(bytes: &[u8]) -> u64 {
    bytes.iter().enumerate().fold(0u64, |k, (i, &b)| {
        k ^ (((b as i8) as i64 as u64) << (8 * i))
    })
}

/// MurmurHash3's 64-bit finaliser (avalanche).
#[inline]
fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_extension_differs_from_unsigned_tail() {
        // A lone 0x80 tail byte sign-extends to 0xffff_ffff_ffff_ff80; an unsigned
        // implementation would use 0x80. The lanes must differ, or the quirk is lost.
        assert_eq!(signed_lane(&[0x80]), 0xffff_ffff_ffff_ff80);
        assert_eq!(signed_lane(&[0x01, 0x80]), 0xffff_ffff_ffff_8001);
        assert_eq!(signed_lane(&[0x7f]), 0x7f);
    }

    #[test]
    fn empty_input_hashes_to_zero() {
        // With seed 0 and length 0 every step maps 0 to 0; Cassandra never hashes it anyway.
        assert_eq!(murmur3_x64_128(&[]), (0, 0));
    }

    #[test]
    fn known_h1_values() {
        assert_eq!(murmur3_x64_128_h1(b"test"), -6017608668500074083);
        assert_eq!(murmur3_x64_128_h1(b"xd"), 4507812186440344727);
    }
}
