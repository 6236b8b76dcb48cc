//! The CQL native protocol, version 4, as pure data and codecs.
//!
//! This module knows bytes, not sockets: it never imports tokio or any other ringcache
//! subsystem, so it can be fuzzed and property-tested in isolation. A frame is a 9-byte
//! header (`version | flags | stream | opcode | length`, big-endian) followed by `length`
//! body bytes, optionally compressed with LZ4 or Snappy once STARTUP has chosen one.
//!
//! Reading happens in two phases, as in mini-redis: [`frame::decode_header`] looks at the
//! first nine bytes only and decides whether the frame is acceptable at all (version,
//! direction, size against the configured maximum) *before* the body is buffered; then
//! [`request::Request::decode`] parses a complete body. Every length read from the wire is
//! checked against the bytes actually present before anything is allocated.
//!
//! Responses are encoded by [`response::Response::encode`] into a `BytesMut` that the
//! connection owns, so a loop turn can batch many replies into one write.
//!
//! Layout: `wire` (primitive notations of spec §3), `frame` (header, flags, opcodes),
//! `compression`, `types` (the `[option]` column type), `request` and `response`
//! (one enum each, with both directions implemented so every message round-trips in tests
//! and our own benchmark client can speak to the server; RESULT bodies in `result`), and
//! `codec` (whole frames). `fuzz` is a dependency-free mutation fuzzer that runs on
//! stable Rust as an ordinary test.

pub mod codec;
pub mod compression;
pub mod consistency;
#[cfg(test)]
mod differential;
pub mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzz;
#[cfg(test)]
mod proptests;
pub mod request;
pub mod response;
mod result;
pub mod types;
pub mod wire;

pub use codec::{
    decode_request_body, decode_response_frame, decode_response_frame_full, encode_request_frame,
    encode_response_frame, ResponseFrame,
};
pub use compression::Compression;
pub use consistency::Consistency;
pub use error::{ErrorCode, ProtocolError};
pub use frame::{decode_header, negotiation_error, FrameHeader, HeaderError, Opcode};
pub use request::{
    Batch, BatchKind, BatchQuery, BatchStatement, QueryParameters, Request, Value, Values,
};
pub use response::{
    ChangeType, ColumnSpec, ErrorBody, ErrorExtra, Event, PreparedMetadata, PreparedResult,
    Response, ResultBody, ResultMetadata, Rows, SchemaChange, SchemaTarget,
};
pub use types::DataType;
pub use wire::Reader;

/// The only protocol version this server speaks.
pub const VERSION: u8 = 4;
/// Size of a v3/v4 frame header in bytes.
pub const HEADER_LEN: usize = 9;
/// Bit set in the version byte of every response.
pub const RESPONSE_BIT: u8 = 0x80;
