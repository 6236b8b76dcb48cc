//! Frame body compression negotiated at STARTUP (spec §5).
//!
//! LZ4 bodies are a 4-byte big-endian uncompressed length followed by a raw LZ4 block;
//! Snappy bodies are raw snappy. Both declared lengths are checked against the caller's
//! limit before any buffer is allocated, and against the most either format can expand
//! its input (LZ4 about 255x, Snappy about 21x): a ten-byte body declaring 16 MiB is
//! rejected without touching 16 MiB of memory.

use super::error::ProtocolError;

/// A compression algorithm the server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Lz4,
    Snappy,
}

/// Upper bounds on output bytes per input byte, rounded up generously.
const LZ4_MAX_RATIO: usize = 256;
const SNAPPY_MAX_RATIO: usize = 32;
const RATIO_SLACK: usize = 64;

impl Compression {
    /// The algorithm named in STARTUP's `COMPRESSION` option (case-insensitive).
    pub fn from_name(name: &str) -> Option<Compression> {
        if name.eq_ignore_ascii_case("lz4") {
            Some(Compression::Lz4)
        } else if name.eq_ignore_ascii_case("snappy") {
            Some(Compression::Snappy)
        } else {
            None
        }
    }

    /// The name advertised in SUPPORTED.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Lz4 => "lz4",
            Compression::Snappy => "snappy",
        }
    }

    /// Compresses a whole frame body.
    pub fn compress(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Compression::Lz4 => {
                // Frames are far below 2 GiB, so the length always fits the [int] prefix.
                let len = u32::try_from(input.len()).unwrap_or(u32::MAX);
                let block = lz4_flex::block::compress(input);
                let mut out = Vec::with_capacity(4 + block.len());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
                out
            }
            // Only inputs over 4 GiB fail; frame bodies never get there.
            Compression::Snappy => snap::raw::Encoder::new()
                .compress_vec(input)
                .unwrap_or_default(),
        }
    }

    /// Decompresses a frame body, refusing to produce more than `max_len` bytes.
    pub fn decompress(&self, input: &[u8], max_len: usize) -> Result<Vec<u8>, ProtocolError> {
        match self {
            Compression::Lz4 => decompress_lz4(input, max_len),
            Compression::Snappy => decompress_snappy(input, max_len),
        }
    }
}

fn check_declared(
    declared: usize,
    input_len: usize,
    ratio: usize,
    max_len: usize,
) -> Result<(), ProtocolError> {
    if declared > max_len {
        return Err(ProtocolError::CompressedTooLarge {
            declared: declared as u64,
            max: max_len as u64,
        });
    }
    if declared > input_len.saturating_mul(ratio).saturating_add(RATIO_SLACK) {
        return Err(ProtocolError::Decompression(format!(
            "declared length {declared} is impossible for {input_len} compressed bytes"
        )));
    }
    Ok(())
}

fn decompress_lz4(input: &[u8], max_len: usize) -> Result<Vec<u8>, ProtocolError> {
    let (prefix, block) = input
        .split_first_chunk::<4>()
        .ok_or(ProtocolError::Truncated {
            what: "lz4 length prefix",
        })?;
    let declared = i32::from_be_bytes(*prefix);
    let declared = usize::try_from(declared)
        .map_err(|_| ProtocolError::NegativeLength("lz4 uncompressed length"))?;
    check_declared(declared, block.len(), LZ4_MAX_RATIO, max_len)?;
    let out = lz4_flex::block::decompress(block, declared)
        .map_err(|e| ProtocolError::Decompression(e.to_string()))?;
    if out.len() != declared {
        return Err(ProtocolError::Decompression(format!(
            "lz4 body declared {declared} bytes but held {}",
            out.len()
        )));
    }
    Ok(out)
}

fn decompress_snappy(input: &[u8], max_len: usize) -> Result<Vec<u8>, ProtocolError> {
    let declared = snap::raw::decompress_len(input)
        .map_err(|e| ProtocolError::Decompression(e.to_string()))?;
    check_declared(declared, input.len(), SNAPPY_MAX_RATIO, max_len)?;
    snap::raw::Decoder::new()
        .decompress_vec(input)
        .map_err(|e| ProtocolError::Decompression(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"\x00\x00\x00\x0fSELECT * FROM system.local WHERE key='local'\x00\x01\x00";

    #[test]
    fn names_round_trip() {
        for c in [Compression::Lz4, Compression::Snappy] {
            assert_eq!(Compression::from_name(c.name()), Some(c));
        }
        assert_eq!(Compression::from_name("LZ4"), Some(Compression::Lz4));
        assert_eq!(Compression::from_name("zstd"), None);
    }

    #[test]
    fn bodies_round_trip() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
        for c in [Compression::Lz4, Compression::Snappy] {
            for body in [BODY, &[][..], &big[..]] {
                let packed = c.compress(body);
                assert_eq!(c.decompress(&packed, 1 << 20).unwrap(), body, "{c:?}");
            }
        }
    }

    #[test]
    fn lz4_matches_the_python_driver_layout() {
        // Python: int32_pack(len(byts)) + lz4_block.compress(byts, store_size=False).
        let mut python = (BODY.len() as u32).to_be_bytes().to_vec();
        python.extend(lz4_flex::block::compress(BODY));
        assert_eq!(Compression::Lz4.compress(BODY), python);
        assert_eq!(Compression::Lz4.decompress(&python, 1024).unwrap(), BODY);
        // A literal-only block as any LZ4 implementation may emit: token 0x30, "abc".
        let literal = [0, 0, 0, 3, 0x30, b'a', b'b', b'c'];
        assert_eq!(Compression::Lz4.decompress(&literal, 1024).unwrap(), b"abc");
    }

    #[test]
    fn declared_lengths_are_checked_before_allocating() {
        let huge = [0x7f, 0xff, 0xff, 0xff, 0, 0];
        assert!(matches!(
            Compression::Lz4.decompress(&huge, 16 << 20),
            Err(ProtocolError::CompressedTooLarge { .. })
        ));
        let impossible = [0x00, 0x10, 0x00, 0x00, 0x00, 0x00];
        assert!(matches!(
            Compression::Lz4.decompress(&impossible, 16 << 20),
            Err(ProtocolError::Decompression(_))
        ));
        let negative = [0xff, 0xff, 0xff, 0xfe, 0];
        assert!(matches!(
            Compression::Lz4.decompress(&negative, 16 << 20),
            Err(ProtocolError::NegativeLength(_))
        ));
        assert!(Compression::Lz4.decompress(&[0, 0], 16).is_err());
        let packed = Compression::Snappy.compress(&[0u8; 5000]);
        assert!(matches!(
            Compression::Snappy.decompress(&packed, 4999),
            Err(ProtocolError::CompressedTooLarge {
                declared: 5000,
                max: 4999
            })
        ));
        // varint 0x0800_0000 (128 MiB) followed by nothing.
        assert!(Compression::Snappy
            .decompress(&[0x80, 0x80, 0x80, 0x40], usize::MAX)
            .is_err());
    }

    #[test]
    fn lz4_length_mismatch_is_an_error() {
        let mut body = Compression::Lz4.compress(b"abc");
        body[3] = 10; // declares 10 bytes, holds 3
        assert!(Compression::Lz4.decompress(&body, 1024).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for c in [Compression::Lz4, Compression::Snappy] {
            for garbage in [
                &[0xffu8; 40][..],
                &[0x00, 0x00, 0x00, 0x20, 0xf0, 0xff][..],
                &[][..],
            ] {
                let _ = c.decompress(garbage, 1 << 20);
            }
        }
    }
}
