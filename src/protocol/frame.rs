//! The 9-byte frame header (spec §2) and opcodes.
//!
//! [`decode_header`] is the first of the two read phases: it decides from nine bytes
//! whether a frame is acceptable at all, before its body is buffered. Version problems
//! are answered the way every driver's downgrade logic expects (design §18.5).

use bytes::{BufMut, BytesMut};
use thiserror::Error;

use super::{HEADER_LEN, RESPONSE_BIT, VERSION};

/// Header flag bits (spec §2.2).
pub mod flags {
    /// The body is compressed with the algorithm chosen at STARTUP.
    pub const COMPRESSION: u8 = 0x01;
    /// Request: trace this. Response: the body starts with a tracing `[uuid]`.
    pub const TRACING: u8 = 0x02;
    /// The body starts with a `[bytes map]` custom payload.
    pub const CUSTOM_PAYLOAD: u8 = 0x04;
    /// Response: the body starts with a `[string list]` of warnings.
    pub const WARNING: u8 = 0x08;
    /// Beta protocol versions only.
    pub const USE_BETA: u8 = 0x10;
}

/// Message opcodes (spec §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    Error = 0x00,
    Startup = 0x01,
    Ready = 0x02,
    Authenticate = 0x03,
    Options = 0x05,
    Supported = 0x06,
    Query = 0x07,
    Result = 0x08,
    Prepare = 0x09,
    Execute = 0x0A,
    Register = 0x0B,
    Event = 0x0C,
    Batch = 0x0D,
    AuthChallenge = 0x0E,
    AuthResponse = 0x0F,
    AuthSuccess = 0x10,
}

impl Opcode {
    /// Every opcode, in wire order.
    pub const ALL: [Opcode; 16] = [
        Opcode::Error,
        Opcode::Startup,
        Opcode::Ready,
        Opcode::Authenticate,
        Opcode::Options,
        Opcode::Supported,
        Opcode::Query,
        Opcode::Result,
        Opcode::Prepare,
        Opcode::Execute,
        Opcode::Register,
        Opcode::Event,
        Opcode::Batch,
        Opcode::AuthChallenge,
        Opcode::AuthResponse,
        Opcode::AuthSuccess,
    ];

    /// Decodes a wire opcode; `None` for unknown values (0x04 is unused since v1).
    pub fn from_u8(code: u8) -> Option<Opcode> {
        Opcode::ALL.into_iter().find(|op| *op as u8 == code)
    }

    /// True for the opcodes a client may send.
    pub fn is_request(self) -> bool {
        use Opcode::*;
        matches!(
            self,
            Startup | Options | Query | Prepare | Execute | Register | Batch | AuthResponse
        )
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Version byte with the direction bit (0x04 request, 0x84 response).
    pub version: u8,
    /// Flag bits, see [`flags`].
    pub flags: u8,
    /// Stream id; responses echo the request's, events use -1.
    pub stream: i16,
    /// Raw opcode byte; unknown values are rejected when the body is decoded.
    pub opcode: u8,
    /// Body length in bytes as declared by the sender.
    pub length: u32,
}

impl FrameHeader {
    /// Appends the nine header bytes.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.reserve(HEADER_LEN);
        buf.put_u8(self.version);
        buf.put_u8(self.flags);
        buf.put_i16(self.stream);
        buf.put_u8(self.opcode);
        buf.put_u32(self.length);
    }

    /// Parses nine header bytes without any validation (`None` if fewer are present).
    pub fn parse(buf: &[u8]) -> Option<FrameHeader> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            version: h[0],
            flags: h[1],
            stream: i16::from_be_bytes([h[2], h[3]]),
            opcode: h[4],
            length: u32::from_be_bytes([h[5], h[6], h[7], h[8]]),
        })
    }

    /// The known opcode, if any.
    pub fn opcode(&self) -> Option<Opcode> {
        Opcode::from_u8(self.opcode)
    }
}

/// A request header the server cannot accept. Each variant says how to answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// The client sent a frame with the response bit set. Answer with a protocol error
    /// on `stream` and close.
    #[error("Wrong protocol direction (expected REQUEST, got RESPONSE)")]
    ResponseDirection { stream: i16 },
    /// Any version but v4. Answer on stream 0 with header version `reply_version`, code
    /// 0x000A and [`negotiation_error`]'s message, then close.
    #[error(
        "Invalid or unsupported protocol version ({requested}); supported versions are (4/v4)"
    )]
    UnsupportedVersion { requested: u8, reply_version: u8 },
    /// The declared body exceeds the configured maximum; the stream is known, so the
    /// answer goes there (Cassandra answers Invalid and discards the body).
    #[error("Request is too big: length {length} exceeds the maximum allowed length")]
    TooLarge { stream: i16, length: u32 },
}

/// Validates a request header: `Ok(None)` until nine bytes are buffered.
///
/// Checks, in order: direction bit, version (only 4), declared length against
/// `max_body`. An unknown opcode is *not* a header error: the body is still consumed
/// and the request is answered on its own stream.
pub fn decode_header(buf: &[u8], max_body: usize) -> Result<Option<FrameHeader>, HeaderError> {
    let Some(header) = FrameHeader::parse(buf) else {
        return Ok(None);
    };
    if header.version & RESPONSE_BIT != 0 {
        return Err(HeaderError::ResponseDirection {
            stream: header.stream,
        });
    }
    if header.version != VERSION {
        let (reply_version, _) = negotiation_error(header.version);
        return Err(HeaderError::UnsupportedVersion {
            requested: header.version,
            reply_version,
        });
    }
    if header.length as u64 > max_body as u64 {
        return Err(HeaderError::TooLarge {
            stream: header.stream,
            length: header.length,
        });
    }
    Ok(Some(header))
}

/// The reply to a request in an unsupported protocol version: the header version byte
/// (0x84 for newer versions such as v5, v6 and DSE 0x41/0x42, so gocql retries with v4;
/// the client's own version with the response bit for older ones, so they can parse it)
/// and the exact message every driver's downgrade logic matches on.
pub fn negotiation_error(requested: u8) -> (u8, String) {
    let requested = requested & !RESPONSE_BIT;
    let reply_version = if requested < VERSION {
        requested | RESPONSE_BIT
    } else {
        VERSION | RESPONSE_BIT
    };
    let message = format!(
        "Invalid or unsupported protocol version ({requested}); supported versions are (4/v4)"
    );
    (reply_version, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u8, stream: i16, opcode: u8, length: u32) -> Vec<u8> {
        let mut buf = BytesMut::new();
        FrameHeader {
            version,
            flags: 0,
            stream,
            opcode,
            length,
        }
        .encode(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn header_round_trips() {
        let h = FrameHeader {
            version: 0x84,
            flags: 0x09,
            stream: -1,
            opcode: 0x0C,
            length: 70000,
        };
        let mut buf = BytesMut::new();
        h.encode(&mut buf);
        assert_eq!(buf.len(), HEADER_LEN);
        assert_eq!(FrameHeader::parse(&buf), Some(h));
    }

    #[test]
    fn opcodes_round_trip() {
        for op in Opcode::ALL {
            assert_eq!(Opcode::from_u8(op as u8), Some(op));
        }
        assert_eq!(Opcode::from_u8(0x04), None);
        assert_eq!(Opcode::from_u8(0x11), None);
    }

    #[test]
    fn short_input_needs_more() {
        assert_eq!(decode_header(&[4, 0, 0, 0, 5, 0, 0, 0], 100), Ok(None));
    }

    #[test]
    fn accepts_v4_and_unknown_opcodes() {
        let h = decode_header(&header(4, 7, 0x05, 0), 100).unwrap().unwrap();
        assert_eq!((h.stream, h.opcode()), (7, Some(Opcode::Options)));
        let h = decode_header(&header(4, 7, 0x33, 3), 100).unwrap().unwrap();
        assert_eq!(h.opcode(), None);
    }

    #[test]
    fn direction_is_checked_first() {
        let err = decode_header(&header(0x85, 3, 5, u32::MAX), 100).unwrap_err();
        assert_eq!(err, HeaderError::ResponseDirection { stream: 3 });
    }

    #[test]
    fn newer_versions_are_answered_with_v4() {
        for v in [5u8, 6, 0x41, 0x42] {
            let err = decode_header(&header(v, 0, 5, u32::MAX), 100).unwrap_err();
            assert_eq!(
                err,
                HeaderError::UnsupportedVersion {
                    requested: v,
                    reply_version: 0x84
                }
            );
        }
        let (reply, msg) = negotiation_error(0x42);
        assert_eq!(reply, 0x84);
        assert_eq!(
            msg,
            "Invalid or unsupported protocol version (66); supported versions are (4/v4)"
        );
    }

    #[test]
    fn older_versions_are_answered_in_their_own_version() {
        let err = decode_header(&header(3, 0, 5, 0), 100).unwrap_err();
        assert_eq!(
            err,
            HeaderError::UnsupportedVersion {
                requested: 3,
                reply_version: 0x83
            }
        );
        assert_eq!(negotiation_error(1).0, 0x81);
    }

    #[test]
    fn too_large_carries_the_stream() {
        let err = decode_header(&header(4, 9, 7, 101), 100).unwrap_err();
        assert_eq!(
            err,
            HeaderError::TooLarge {
                stream: 9,
                length: 101
            }
        );
        assert!(decode_header(&header(4, 9, 7, 100), 100).is_ok());
    }
}
