//! Frame body compression negotiated at STARTUP (spec §5).
//!
//! LZ4 bodies are a 4-byte big-endian uncompressed length followed by a raw LZ4 block;
//! Snappy bodies are raw snappy. Both declared lengths are checked against the caller's
//! limit before any buffer is allocated.

/// A compression algorithm the server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Lz4,
    Snappy,
}
