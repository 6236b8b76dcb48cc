//! Whole frames: header + (optionally compressed) body, in both directions.
//!
//! The server writes replies straight into the connection's output buffer: the header
//! is reserved first and its length filled in once the body has been encoded in place,
//! so an uncompressed reply is never copied. Compression needs the finished body, so
//! compressed replies take one extra pass.

use bytes::{Buf, Bytes, BytesMut};

use super::compression::Compression;
use super::error::ProtocolError;
use super::frame::{flags, FrameHeader, Opcode};
use super::request::Request;
use super::response::Response;
use super::wire::{self, Reader};
use super::{HEADER_LEN, RESPONSE_BIT, VERSION};

/// A decoded response frame with the optional parts of its body.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFrame {
    pub header: FrameHeader,
    /// Tracing session id (flag 0x02).
    pub tracing_id: Option<uuid::Uuid>,
    /// Server warnings (flag 0x08).
    pub warnings: Vec<String>,
    pub response: Response,
}

/// Appends a v4 response frame on `stream`. Warnings set flag 0x08 and precede the body;
/// with `compression` the whole body (warnings included) is compressed and flag 0x01 set.
/// Empty bodies (READY) are never compressed: the flag is per frame, and some LZ4
/// bindings refuse a zero-length block.
pub fn encode_response_frame(
    out: &mut BytesMut,
    stream: i16,
    response: &Response,
    warnings: &[String],
    compression: Option<Compression>,
) {
    let mut frame_flags = 0;
    if !warnings.is_empty() {
        frame_flags |= flags::WARNING;
    }
    encode_frame(
        out,
        VERSION | RESPONSE_BIT,
        frame_flags,
        stream,
        response.opcode(),
        compression,
        |buf| {
            if !warnings.is_empty() {
                wire::put_string_list(buf, warnings);
            }
            response.encode(buf);
        },
    );
}

/// Appends a v4 request frame (for clients: tests and the benchmark).
pub fn encode_request_frame(
    out: &mut BytesMut,
    stream: i16,
    request: &Request,
    compression: Option<Compression>,
) {
    // STARTUP is never compressed: compression only starts once it has been accepted.
    let compression = compression.filter(|_| request.opcode() != Opcode::Startup);
    encode_frame(
        out,
        VERSION,
        0,
        stream,
        request.opcode(),
        compression,
        |buf| request.encode(buf),
    );
}

fn encode_frame(
    out: &mut BytesMut,
    version: u8,
    mut frame_flags: u8,
    stream: i16,
    opcode: Opcode,
    compression: Option<Compression>,
    body: impl FnOnce(&mut BytesMut),
) {
    let start = out.len();
    FrameHeader {
        version,
        flags: 0,
        stream,
        opcode: opcode as u8,
        length: 0,
    }
    .encode(out);
    let body_start = out.len();
    body(out);
    if let Some(c) = compression.filter(|_| out.len() > body_start) {
        let packed = c.compress(&out[body_start..]);
        out.truncate(body_start);
        out.extend_from_slice(&packed);
        frame_flags |= flags::COMPRESSION;
    }
    // Bodies are bounded far below 4 GiB, so the length always fits.
    let length = u32::try_from(out.len() - body_start).unwrap_or(u32::MAX);
    if let Some(header) = out.get_mut(start..body_start) {
        header[1] = frame_flags;
        header[5..9].copy_from_slice(&length.to_be_bytes());
    }
}

/// Server side: decompresses a complete request body if flag 0x01 is set (to at most
/// `max_body` bytes), skips a custom payload, and decodes the request.
pub fn decode_request_body(
    header: &FrameHeader,
    body: Bytes,
    compression: Option<Compression>,
    max_body: usize,
) -> Result<Request, ProtocolError> {
    let opcode =
        Opcode::from_u8(header.opcode).ok_or(ProtocolError::UnknownOpcode(header.opcode))?;
    let mut body = decompress_body(header, body, compression, max_body)?;
    if header.flags & flags::CUSTOM_PAYLOAD != 0 {
        let mut r = Reader::new(body);
        r.read_bytes_map()?;
        body = r.take_rest();
    }
    Request::decode(opcode, body)
}

fn decompress_body(
    header: &FrameHeader,
    body: Bytes,
    compression: Option<Compression>,
    max_body: usize,
) -> Result<Bytes, ProtocolError> {
    if header.flags & flags::COMPRESSION == 0 {
        return Ok(body);
    }
    let c = compression.ok_or(ProtocolError::UnexpectedCompression)?;
    c.decompress(&body, max_body).map(Bytes::from)
}

/// Client side: takes one complete response frame off the front of `buf`, or returns
/// `Ok(None)` (leaving `buf` untouched) until the whole frame is buffered.
/// Warnings and tracing ids are dropped; see [`decode_response_frame_full`].
pub fn decode_response_frame(
    buf: &mut BytesMut,
    compression: Option<Compression>,
) -> Result<Option<(FrameHeader, Response)>, ProtocolError> {
    Ok(decode_response_frame_full(buf, compression)?.map(|f| (f.header, f.response)))
}

/// Client-side frame limit: 256 MiB, the largest frame Cassandra can be configured for.
const CLIENT_MAX_BODY: usize = 256 << 20;

/// Like [`decode_response_frame`], keeping warnings and the tracing id.
pub fn decode_response_frame_full(
    buf: &mut BytesMut,
    compression: Option<Compression>,
) -> Result<Option<ResponseFrame>, ProtocolError> {
    let Some(header) = FrameHeader::parse(buf) else {
        return Ok(None);
    };
    if header.version != VERSION | RESPONSE_BIT {
        return Err(ProtocolError::UnsupportedVersion(header.version));
    }
    let length = header.length as usize;
    if length > CLIENT_MAX_BODY {
        return Err(ProtocolError::FrameTooLarge {
            length: length as u64,
            max: CLIENT_MAX_BODY as u64,
        });
    }
    if buf.len() < HEADER_LEN + length {
        buf.reserve(HEADER_LEN + length - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let body = buf.split_to(length).freeze();
    let opcode =
        Opcode::from_u8(header.opcode).ok_or(ProtocolError::UnknownOpcode(header.opcode))?;
    let body = decompress_body(&header, body, compression, CLIENT_MAX_BODY)?;
    decode_response_body(header, opcode, body).map(Some)
}

fn decode_response_body(
    header: FrameHeader,
    opcode: Opcode,
    body: Bytes,
) -> Result<ResponseFrame, ProtocolError> {
    // Order of the optional prefixes as drivers read them: tracing id, warnings, payload.
    let mut r = Reader::new(body);
    let tracing_id = if header.flags & flags::TRACING != 0 {
        Some(r.read_uuid()?)
    } else {
        None
    };
    let warnings = if header.flags & flags::WARNING != 0 {
        r.read_string_list()?
    } else {
        Vec::new()
    };
    if header.flags & flags::CUSTOM_PAYLOAD != 0 {
        r.read_bytes_map()?;
    }
    let response = Response::decode(opcode, r.take_rest())?;
    Ok(ResponseFrame {
        header,
        tracing_id,
        warnings,
        response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::decode_header;
    use crate::protocol::response::{ColumnSpec, ResultBody, ResultMetadata, Rows};
    use crate::protocol::types::DataType;
    use crate::protocol::ErrorCode;

    const MAX: usize = 1 << 20;

    fn rows() -> Response {
        let col = |name: &str| ColumnSpec {
            keyspace: "system".into(),
            table: "local".into(),
            name: name.into(),
            data_type: DataType::Varchar,
        };
        let metadata = ResultMetadata::new(vec![col("key"), col("cluster_name")]);
        let cell = |s: &'static str| Some(Bytes::from_static(s.as_bytes()));
        Response::Result(ResultBody::Rows(Rows {
            metadata,
            rows: vec![vec![cell("local"), cell("ringcache")]; 50],
        }))
    }

    fn server_side(
        frame: &[u8],
        compression: Option<Compression>,
    ) -> Result<Request, ProtocolError> {
        let header = decode_header(frame, MAX).unwrap().unwrap();
        let body = Bytes::copy_from_slice(&frame[HEADER_LEN..]);
        assert_eq!(body.len(), header.length as usize);
        decode_request_body(&header, body, compression, MAX)
    }

    #[test]
    fn request_frames_round_trip_with_every_compression() {
        let query = Request::Query {
            query: "SELECT * FROM system.local".repeat(20),
            params: Default::default(),
        };
        for c in [None, Some(Compression::Lz4), Some(Compression::Snappy)] {
            let mut out = BytesMut::new();
            encode_request_frame(&mut out, 7, &query, c);
            assert_eq!(out[1] & flags::COMPRESSION != 0, c.is_some());
            assert_eq!(server_side(&out, c), Ok(query.clone()));
        }
    }

    #[test]
    fn startup_is_never_compressed() {
        let startup = Request::Startup(vec![("CQL_VERSION".into(), "3.0.0".into())]);
        let mut out = BytesMut::new();
        encode_request_frame(&mut out, 0, &startup, Some(Compression::Lz4));
        assert_eq!(out[1], 0);
        assert_eq!(server_side(&out, None), Ok(startup));
    }

    #[test]
    fn compressed_frame_without_negotiation_is_an_error() {
        let mut out = BytesMut::new();
        encode_request_frame(
            &mut out,
            1,
            &Request::Prepare {
                query: "SELECT 1".into(),
            },
            Some(Compression::Lz4),
        );
        assert_eq!(
            server_side(&out, None),
            Err(ProtocolError::UnexpectedCompression)
        );
    }

    #[test]
    fn unknown_opcode_is_reported_after_the_header() {
        let frame = [4, 0, 0, 3, 0x04, 0, 0, 0, 0];
        assert_eq!(
            server_side(&frame, None),
            Err(ProtocolError::UnknownOpcode(4))
        );
        let frame = [4, 0, 0, 3, 0x08, 0, 0, 0, 0];
        assert_eq!(
            server_side(&frame, None),
            Err(ProtocolError::NotARequest(8))
        );
    }

    #[test]
    fn custom_payload_is_skipped() {
        let mut body = BytesMut::new();
        wire::put_bytes_map(&mut body, &[("k".into(), Some(Bytes::from_static(b"v")))]);
        Request::Options.encode(&mut body);
        let mut frame = BytesMut::new();
        FrameHeader {
            version: 4,
            flags: flags::CUSTOM_PAYLOAD,
            stream: 2,
            opcode: 5,
            length: body.len() as u32,
        }
        .encode(&mut frame);
        frame.extend_from_slice(&body);
        assert_eq!(server_side(&frame, None), Ok(Request::Options));
    }

    #[test]
    fn response_frames_round_trip_with_warnings_and_compression() {
        let warnings = ["Aggregation query used without partition key".to_string()];
        for c in [None, Some(Compression::Lz4), Some(Compression::Snappy)] {
            for w in [&[][..], &warnings[..]] {
                let mut out = BytesMut::new();
                encode_response_frame(&mut out, 42, &rows(), w, c);
                encode_response_frame(&mut out, -1, &Response::Ready, w, c);
                let first = decode_response_frame_full(&mut out, c).unwrap().unwrap();
                assert_eq!((first.header.stream, first.header.version), (42, 0x84));
                assert_eq!(first.header.flags & flags::WARNING != 0, !w.is_empty());
                assert_eq!((first.warnings.as_slice(), &first.response), (w, &rows()));
                let (h, ready) = decode_response_frame(&mut out, c).unwrap().unwrap();
                assert_eq!((h.stream, ready), (-1, Response::Ready));
                assert!(out.is_empty());
            }
        }
    }

    #[test]
    fn ready_is_never_compressed() {
        let mut out = BytesMut::new();
        encode_response_frame(&mut out, 0, &Response::Ready, &[], Some(Compression::Lz4));
        assert_eq!(&out[..], &[0x84, 0, 0, 0, 0x02, 0, 0, 0, 0]);
    }

    #[test]
    fn partial_response_frames_wait_for_more() {
        let mut full = BytesMut::new();
        encode_response_frame(
            &mut full,
            3,
            &Response::error(ErrorCode::Invalid, "no such table"),
            &[],
            None,
        );
        for cut in 0..full.len() {
            let mut partial = BytesMut::from(&full[..cut]);
            assert_eq!(decode_response_frame(&mut partial, None), Ok(None));
            assert_eq!(partial.len(), cut);
        }
    }
}
