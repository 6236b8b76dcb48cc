//! Protocol-level failures and the CQL error codes of spec §8.

use thiserror::Error;

/// CQL error codes (spec §8). The numeric value is the wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    ServerError = 0x0000,
    ProtocolError = 0x000A,
    BadCredentials = 0x0100,
    Unavailable = 0x1000,
    Overloaded = 0x1001,
    IsBootstrapping = 0x1002,
    TruncateError = 0x1003,
    WriteTimeout = 0x1100,
    ReadTimeout = 0x1200,
    ReadFailure = 0x1300,
    FunctionFailure = 0x1400,
    WriteFailure = 0x1500,
    SyntaxError = 0x2000,
    Unauthorized = 0x2100,
    Invalid = 0x2200,
    ConfigError = 0x2300,
    AlreadyExists = 0x2400,
    Unprepared = 0x2500,
}

impl ErrorCode {
    /// Decodes a wire code; `None` for codes this server does not know.
    pub fn from_i32(code: i32) -> Option<ErrorCode> {
        use ErrorCode::*;
        [
            ServerError,
            ProtocolError,
            BadCredentials,
            Unavailable,
            Overloaded,
            IsBootstrapping,
            TruncateError,
            WriteTimeout,
            ReadTimeout,
            ReadFailure,
            FunctionFailure,
            WriteFailure,
            SyntaxError,
            Unauthorized,
            Invalid,
            ConfigError,
            AlreadyExists,
            Unprepared,
        ]
        .into_iter()
        .find(|c| *c as i32 == code)
    }

    /// Lower-case label used in metrics (`invalid`, `syntax_error`, ...).
    pub fn label(self) -> &'static str {
        use ErrorCode::*;
        match self {
            ServerError => "server_error",
            ProtocolError => "protocol_error",
            BadCredentials => "bad_credentials",
            Unavailable => "unavailable",
            Overloaded => "overloaded",
            IsBootstrapping => "is_bootstrapping",
            TruncateError => "truncate_error",
            WriteTimeout => "write_timeout",
            ReadTimeout => "read_timeout",
            ReadFailure => "read_failure",
            FunctionFailure => "function_failure",
            WriteFailure => "write_failure",
            SyntaxError => "syntax_error",
            Unauthorized => "unauthorized",
            Invalid => "invalid",
            ConfigError => "config_error",
            AlreadyExists => "already_exists",
            Unprepared => "unprepared",
        }
    }
}

/// Why bytes could not be decoded as a frame or message. Every variant is answered with
/// a Protocol error (0x000A) and the connection is closed afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("Invalid or unsupported protocol version ({0}); supported versions are (4/v4)")]
    UnsupportedVersion(u8),
    #[error("Invalid message version. Got {got} but previous messages on this connection had version {expected}")]
    VersionChanged { got: u8, expected: u8 },
    #[error("Request is too big: length {length} exceeds maximum allowed length {max}")]
    FrameTooLarge { length: u64, max: u64 },
    #[error("Unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
    #[error("Opcode {0:#04x} is not a request")]
    NotARequest(u8),
    #[error("Opcode {0:#04x} is not a response")]
    NotAResponse(u8),
    #[error("Frame is compressed but no compression was negotiated in STARTUP")]
    UnexpectedCompression,
    #[error("Frame with response bit set sent to the server")]
    ResponseDirection,
    #[error("Not enough bytes to read {what}")]
    Truncated { what: &'static str },
    #[error("Unexpected extraneous bytes after {0} message")]
    TrailingBytes(&'static str),
    #[error("Invalid UTF-8 in {0}")]
    BadUtf8(&'static str),
    #[error("Negative length where none is allowed: {0}")]
    NegativeLength(&'static str),
    #[error("Unknown consistency level {0:#06x}")]
    BadConsistency(u16),
    #[error("Unknown batch type {0}")]
    BadBatchKind(u8),
    #[error("Unknown data type code {0:#06x}")]
    BadTypeCode(u16),
    #[error("Type nesting too deep")]
    TypeTooDeep,
    #[error("Compressed body declares {declared} uncompressed bytes, more than the limit {max}")]
    CompressedTooLarge { declared: u64, max: u64 },
    #[error("Error decompressing frame body: {0}")]
    Decompression(String),
    #[error("{0}")]
    Invalid(String),
}
