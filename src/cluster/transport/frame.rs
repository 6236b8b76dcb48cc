//! Internode frames: a big-endian `u32` body length, then the body (postcard).
//!
//! ```text
//! 0      4                         4 + len
//! | len  | body: postcard(Envelope) |
//! ```
//!
//! Decoding is two-phase, as the CQL connection's: the 4-byte header alone decides whether
//! the frame is acceptable (`len` within `max_message_bytes`) before the body is buffered,
//! so an oversized frame closes the connection without a byte of it being kept. The body
//! decode allocates nothing beyond what the bytes present describe, and the room reserved
//! for a body still to come is at most [`READ_AHEAD`] (it grows as the body arrives), so a
//! header declaring the limit does not make a node hold the limit. Nothing here panics on
//! any input; `fuzz_internode_one_million` (`fuzz/`, a million executions in
//! `scripts/test.sh`) holds it to all of that.

use bytes::{Buf, BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;
/// The most room [`decode`] reserves for a body's bytes not yet received.
pub const READ_AHEAD: usize = 64 << 10;

/// Why a frame could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The declared length exceeds what this node accepts.
    #[error("internode message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The body is not a message of the agreed protocol version.
    #[error("malformed internode message: {0}")]
    Malformed(String),
}

/// Appends `message` as one frame to `out`.
pub fn encode<T: Serialize>(message: &T, max: usize, out: &mut BytesMut) -> Result<(), FrameError> {
    let start = out.len();
    out.put_u32(0);
    let body = postcard::to_extend(message, Vec::new())
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if body.len() > max {
        out.truncate(start);
        return Err(FrameError::TooLarge {
            len: body.len(),
            max,
        });
    }
    out.extend_from_slice(&body);
    let len = (body.len() as u32).to_be_bytes();
    out[start..start + HEADER_LEN].copy_from_slice(&len);
    Ok(())
}

/// Takes one whole frame off the front of `buf` and decodes it: `Ok(None)` when more bytes
/// are needed, an error when the frame is too large (checked from the header alone) or its
/// body does not decode. A frame is consumed only when it is whole.
pub fn decode<T: DeserializeOwned>(
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<T>, FrameError> {
    let Some(len) = body_len(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < HEADER_LEN + len {
        // Room for the body as it arrives, but never more than `READ_AHEAD` beyond the bytes
        // here: a 4-byte header declaring the limit must not make the node hold the limit.
        // (The buffer still grows geometrically, so a large body is copied O(1) times.)
        let missing = HEADER_LEN + len - buf.len();
        buf.reserve(missing.min(READ_AHEAD));
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let body = buf.split_to(len);
    postcard::from_bytes(&body)
        .map(Some)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

/// The body length the header declares, once the header is buffered.
fn body_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(header.try_into().expect("4 bytes")) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::message::{Envelope, Request};

    #[test]
    fn frames_round_trip_and_wait_for_whole_bodies() {
        let message = Envelope::Request {
            id: 7,
            request: Request::Echo,
        };
        let mut buf = BytesMut::new();
        encode(&message, 1 << 20, &mut buf).unwrap();
        encode(&message, 1 << 20, &mut buf).unwrap();
        let whole = buf.clone();
        let mut partial = BytesMut::from(&whole[..whole.len() / 2 - 1]);
        let first: Option<Envelope> = decode(&mut partial, 1 << 20).unwrap();
        assert_eq!(first, None, "half a frame is not a frame");
        let decoded: Envelope = decode(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!(decoded, message);
        let decoded: Envelope = decode(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!(decoded, message);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_frames_are_refused_from_the_header() {
        let mut buf = BytesMut::from(&[0x7F, 0xFF, 0xFF, 0xFF][..]);
        let result: Result<Option<Envelope>, _> = decode(&mut buf, 1 << 20);
        assert!(matches!(result, Err(FrameError::TooLarge { .. })));
        let mut out = BytesMut::new();
        let big = Envelope::Response {
            id: 1,
            response: Err(crate::cluster::message::RemoteError::Failed(
                "x".repeat(100),
            )),
        };
        assert!(encode(&big, 64, &mut out).is_err());
        assert!(out.is_empty(), "nothing is left of a refused frame");
    }

    #[test]
    fn a_declared_length_is_not_reserved_before_it_arrives() {
        let max = 64 << 20;
        let mut buf = BytesMut::from(&((max - 1) as u32).to_be_bytes()[..]);
        let result: Result<Option<Envelope>, _> = decode(&mut buf, max);
        assert_eq!(result, Ok(None));
        assert!(
            buf.capacity() <= HEADER_LEN + READ_AHEAD,
            "a 4-byte header made room for {} bytes",
            buf.capacity()
        );
    }

    #[test]
    fn garbage_bodies_are_errors() {
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0xFF, 0xFF, 0xFF][..]);
        let result: Result<Option<Envelope>, _> = decode(&mut buf, 1 << 20);
        assert!(matches!(result, Err(FrameError::Malformed(_))));
    }
}
