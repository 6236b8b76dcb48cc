//! One client connection: framing, session state, in-flight requests, events.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};

use super::Shared;
use crate::config::{FlushPolicy, Scheduling};
use crate::coordinator::{Reply, RequestContext};
use crate::error::Error;
use crate::protocol::frame::{decode_header, flags, negotiation_error, HeaderError};
use crate::protocol::{
    codec, Compression, Event, FrameHeader, Opcode, ProtocolError, Request, Response, ResultBody,
    RESPONSE_BIT, VERSION,
};

/// A request running on behalf of this connection.
type Pending = Pin<Box<dyn Future<Output = Completed> + Send>>;

/// A finished request, ready to be encoded.
struct Completed {
    stream: i16,
    opcode: Opcode,
    started: Instant,
    /// Request bytes charged against the in-flight budget until now.
    bytes: usize,
    outcome: Result<Reply, Error>,
}

/// What a request brought with it besides its body.
struct Started {
    /// When it was decoded.
    at: Instant,
    /// Its bytes, charged against the in-flight budget.
    bytes: usize,
    /// The client set the tracing flag.
    traced: bool,
}

/// Which pushed events a connection registered for.
#[derive(Default, Clone, Copy)]
struct EventMask {
    topology: bool,
    status: bool,
    schema: bool,
}

/// State of one client connection.
pub(super) struct Connection {
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    inbuf: BytesMut,
    outbuf: BytesMut,
    started: bool,
    compression: Option<Compression>,
    keyspace: Option<String>,
    events: Option<(broadcast::Receiver<Event>, EventMask)>,
    pending: FuturesUnordered<Pending>,
    in_flight_bytes: usize,
    /// Set once the connection must end: after a fatal error, EOF or shutdown. In-flight
    /// requests still finish and their replies are still written.
    closing: bool,
}

const READ_CHUNK: usize = 16 * 1024;

/// How long a connection goes without a request in flight or a byte buffered before it
/// gives its buffers back: a connection that waits holds no buffer, one that works keeps
/// them between requests.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);

/// The room a read into an empty buffer takes (`BytesMut`'s least): a released connection
/// holds this much while it waits for its next request.
const WAITING_ROOM: usize = 64;

impl Connection {
    pub(super) fn new(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) -> Connection {
        let local = stream.local_addr().unwrap_or(peer);
        Connection {
            shared,
            stream,
            peer,
            local,
            inbuf: BytesMut::new(),
            outbuf: BytesMut::new(),
            started: false,
            compression: None,
            keyspace: None,
            events: None,
            pending: FuturesUnordered::new(),
            in_flight_bytes: 0,
            closing: false,
        }
    }

    /// Serves the connection until the client leaves, a fatal error, or shutdown.
    pub(super) async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        if *shutdown.borrow_and_update() {
            return Ok(());
        }
        loop {
            let more_buffered = self.process_input();
            self.drain_ready();
            self.flush().await?;
            if self.closing && self.pending.is_empty() {
                return Ok(());
            }
            if more_buffered {
                continue;
            }
            let can_read = !self.closing && self.has_budget();
            if !can_read && !self.closing {
                self.shared.metrics.backpressure_pauses.inc();
            }
            // A released connection waits with the least room; its first bytes take a
            // whole chunk.
            let released = self.inbuf.is_empty() && self.inbuf.capacity() <= WAITING_ROOM;
            if !released && self.inbuf.capacity() - self.inbuf.len() < READ_CHUNK / 2 {
                self.inbuf.reserve(READ_CHUNK);
            }
            let idle = self.pending.is_empty() && self.inbuf.is_empty() && self.outbuf.is_empty();
            let holding = !released || self.outbuf.capacity() > 0;
            tokio::select! {
                Some(done) = self.pending.next(), if !self.pending.is_empty() => self.complete(done),
                event = next_event(&mut self.events) => self.push_event(event),
                read = self.stream.read_buf(&mut self.inbuf), if can_read => {
                    if read? == 0 {
                        self.closing = true;
                    }
                }
                // In an async block, so the timer is made only when the branch is polled,
                // not on every turn of a busy connection.
                _ = async { tokio::time::sleep(IDLE_RELEASE).await }, if idle && holding => {
                    self.inbuf = BytesMut::new();
                    self.outbuf = BytesMut::new();
                }
                _ = shutdown.changed(), if !self.closing => self.closing = true,
            }
        }
    }

    fn per_reply_flush(&self) -> bool {
        self.shared.config.tuning.reply_flush == FlushPolicy::PerReply
    }

    fn has_budget(&self) -> bool {
        let limits = &self.shared.config.limits;
        self.in_flight_bytes < limits.max_in_flight_bytes_per_connection
            && self.pending.len() < limits.max_in_flight_requests_per_connection
    }

    /// Decodes complete frames from the input buffer while budget remains. Returns true
    /// when it stopped early with a whole frame still buffered (per-reply flushing), so the
    /// caller must come back before waiting for the socket.
    fn process_input(&mut self) -> bool {
        let max = self.shared.config.limits.max_frame_bytes;
        while !self.closing && self.has_budget() {
            let header = match decode_header(&self.inbuf, max) {
                Ok(Some(header)) => header,
                Ok(None) => return false,
                Err(e) => {
                    self.reject_header(e);
                    return false;
                }
            };
            let total = crate::protocol::HEADER_LEN + header.length as usize;
            if self.inbuf.len() < total {
                self.inbuf.reserve(total - self.inbuf.len());
                return false;
            }
            let frame = self.inbuf.split_to(total).freeze();
            self.dispatch(header, frame.slice(crate::protocol::HEADER_LEN..));
            if self.per_reply_flush() && !self.outbuf.is_empty() {
                return true;
            }
        }
        false
    }

    /// Answers a header that cannot be accepted, then closes: the body is never read.
    fn reject_header(&mut self, error: HeaderError) {
        self.closing = true;
        self.inbuf.clear();
        match error {
            HeaderError::UnsupportedVersion {
                requested,
                reply_version,
            } => {
                let (_, message) = negotiation_error(requested);
                let error = Error::Protocol(ProtocolError::Invalid(message));
                let start = self.outbuf.len();
                self.encode_error(0, &error);
                // Drivers read the header's version byte as "try this one next".
                self.outbuf[start] = reply_version;
            }
            HeaderError::TooLarge { stream, length } => {
                let max = self.shared.config.limits.max_frame_bytes as u64;
                let e = ProtocolError::FrameTooLarge {
                    length: u64::from(length),
                    max,
                };
                self.encode_error(stream, &Error::Protocol(e));
            }
            HeaderError::ResponseDirection { stream } => {
                self.encode_error(stream, &Error::Protocol(ProtocolError::ResponseDirection));
            }
        }
    }

    fn dispatch(&mut self, header: FrameHeader, body: Bytes) {
        let stream = header.stream;
        let Some(opcode) = header.opcode() else {
            let error = Error::Protocol(ProtocolError::UnknownOpcode(header.opcode));
            self.closing = true;
            return self.encode_error(stream, &error);
        };
        self.shared.metrics.opcode(opcode).requests.inc();
        let max = self.shared.config.limits.max_frame_bytes;
        let request = match codec::decode_request_body(&header, body, self.compression, max) {
            Ok(request) => request,
            Err(e) => {
                self.closing = true;
                return self.encode_error(stream, &Error::Protocol(e));
            }
        };
        let started = Instant::now();
        match request {
            Request::Options => self.reply_supported(stream),
            Request::Startup(options) => self.startup(stream, options),
            _ if !self.started => {
                let message =
                    format!("Unexpected message {opcode:?}, expecting STARTUP or OPTIONS");
                self.closing = true;
                self.encode_error(stream, &Error::Protocol(ProtocolError::Invalid(message)));
            }
            Request::Register { events } => self.register(stream, &events),
            Request::AuthResponse { .. } => {
                let message = "Unexpected AUTH_RESPONSE: authentication is not enabled".to_owned();
                self.encode_error(stream, &Error::Protocol(ProtocolError::Invalid(message)));
            }
            request => {
                // Asynchronous requests are observed when they complete.
                let traced = header.flags & crate::protocol::frame::flags::TRACING != 0;
                let started = Started {
                    at: started,
                    bytes: header.length as usize,
                    traced,
                };
                return self.submit(stream, opcode, started, request);
            }
        }
        self.observe(opcode, started);
    }

    /// SUPPORTED never changes, so its body is encoded once per process and copied.
    fn reply_supported(&mut self, stream: i16) {
        static BODY: OnceLock<Bytes> = OnceLock::new();
        let body = BODY.get_or_init(|| {
            let mut buf = BytesMut::new();
            supported().encode(&mut buf);
            buf.freeze()
        });
        let opcode = Opcode::Supported;
        encode_frame_with(
            &mut self.outbuf,
            (stream, 0),
            opcode,
            self.compression,
            |buf| buf.extend_from_slice(body),
        );
    }

    fn startup(&mut self, stream: i16, options: Vec<(String, String)>) {
        if self.started {
            let message = "Unexpected message STARTUP, the connection is already initialized";
            return self.encode_error(
                stream,
                &Error::Protocol(ProtocolError::Invalid(message.into())),
            );
        }
        if let Err(e) = check_cql_version(&options) {
            return self.encode_error(stream, &e);
        }
        let requested = options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("COMPRESSION"));
        let compression = match requested {
            None => None,
            Some((_, name)) => match Compression::from_name(&name.to_ascii_lowercase()) {
                Some(c) => Some(c),
                None => {
                    let e = Error::Protocol(ProtocolError::Invalid(format!(
                        "Unknown compression algorithm: {name}"
                    )));
                    return self.encode_error(stream, &e);
                }
            },
        };
        // READY itself goes out uncompressed: drivers only install their decompressor once
        // they have read it.
        self.started = true;
        self.reply(stream, &Response::Ready);
        self.compression = compression;
    }

    fn register(&mut self, stream: i16, events: &[String]) {
        let mut mask = EventMask::default();
        for event in events {
            match event.as_str() {
                "TOPOLOGY_CHANGE" => mask.topology = true,
                "STATUS_CHANGE" => mask.status = true,
                "SCHEMA_CHANGE" => mask.schema = true,
                other => {
                    let e = Error::Protocol(ProtocolError::Invalid(format!(
                        "Invalid value '{other}' for Type"
                    )));
                    return self.encode_error(stream, &e);
                }
            }
        }
        let receiver = self.shared.coordinator.subscribe();
        self.events = Some((receiver, mask));
        self.reply(stream, &Response::Ready);
    }

    /// Starts a QUERY/PREPARE/EXECUTE/BATCH. It is polled with the others on this task, or
    /// spawned, as configured; either way it completes independently of its neighbours.
    fn submit(&mut self, stream: i16, opcode: Opcode, started: Started, request: Request) {
        let Started {
            at: started,
            bytes,
            traced,
        } = started;
        let shared = self.shared.clone();
        let ctx = RequestContext {
            keyspace: self.keyspace.clone(),
            local_addr: self.local,
            peer: self.peer,
            tracing: traced,
            lists: Default::default(),
        };
        self.in_flight_bytes += bytes;
        let work = async move {
            let outcome = match &shared.front {
                Some(front) => front.handle(&shared.coordinator, ctx, request).await,
                None => shared.coordinator.handle(ctx, request).await,
            };
            Completed {
                stream,
                opcode,
                started,
                bytes,
                outcome,
            }
        };
        let pending: Pending = match self.shared.config.tuning.request_scheduling {
            Scheduling::Inline => Box::pin(work),
            Scheduling::Spawn => Box::pin(tokio::spawn(work).map(move |joined| {
                joined.unwrap_or_else(|e| Completed {
                    stream,
                    opcode,
                    started,
                    bytes,
                    outcome: Err(Error::Server(format!("request task failed: {e}"))),
                })
            })),
        };
        self.pending.push(pending);
    }

    /// Collects requests that are already finished without waiting, so their replies share
    /// one write with the rest of this loop turn.
    fn drain_ready(&mut self) {
        if self.per_reply_flush() {
            return;
        }
        while let Some(Some(done)) = self.pending.next().now_or_never() {
            self.complete(done);
        }
    }

    fn complete(&mut self, done: Completed) {
        self.in_flight_bytes -= done.bytes;
        match done.outcome {
            Ok(Reply::Result(result)) => {
                if let ResultBody::SetKeyspace(keyspace) = &result {
                    self.keyspace = Some(keyspace.clone());
                }
                self.reply(done.stream, &Response::Result(result));
            }
            Ok(rows @ Reply::Rows(_)) => {
                let (stream, compression) = (done.stream, self.compression);
                encode_frame_with(
                    &mut self.outbuf,
                    (stream, 0),
                    Opcode::Result,
                    compression,
                    |buf| rows.encode(buf),
                );
            }
            Ok(Reply::Forwarded(forwarded)) => {
                let (stream, compression) = (done.stream, self.compression);
                encode_frame_with(
                    &mut self.outbuf,
                    (stream, forwarded.flags),
                    Opcode::Result,
                    compression,
                    |buf| buf.extend_from_slice(&forwarded.body),
                );
            }
            Err(e) => {
                self.closing |= e.is_fatal();
                self.encode_error(done.stream, &e);
            }
        }
        self.observe(done.opcode, done.started);
    }

    fn observe(&self, opcode: Opcode, started: Instant) {
        let elapsed = started.elapsed().as_secs_f64();
        self.shared.metrics.opcode(opcode).duration.observe(elapsed);
    }

    fn push_event(&mut self, event: Option<Event>) {
        let Some((_, mask)) = &self.events else {
            return;
        };
        let Some(event) = event else {
            // The sender is gone: the node is stopping.
            self.events = None;
            return;
        };
        let wanted = match &event {
            Event::TopologyChange { .. } => mask.topology,
            Event::StatusChange { .. } => mask.status,
            Event::SchemaChange(_) => mask.schema,
        };
        if wanted {
            self.reply(-1, &Response::Event(event));
        }
    }

    fn reply(&mut self, stream: i16, response: &Response) {
        codec::encode_response_frame(&mut self.outbuf, stream, response, &[], self.compression);
    }

    fn encode_error(&mut self, stream: i16, error: &Error) {
        self.shared
            .metrics
            .errors
            .with_label_values(&[error.code().label()])
            .inc();
        if error.is_fatal() {
            // Every protocol error ends the connection: after one, the stream of frames
            // cannot be trusted to be in step with what the client thinks it sent.
            self.closing = true;
            tracing::debug!(peer = %self.peer, stream, error = %error, "closing connection after protocol error");
        }
        self.reply(stream, &Response::Error(error.to_body()));
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.outbuf.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.outbuf).await;
        self.outbuf.clear();
        result
    }
}

/// Waits for the next event, forever if the connection did not register.
async fn next_event(events: &mut Option<(broadcast::Receiver<Event>, EventMask)>) -> Option<Event> {
    let Some((receiver, _)) = events else {
        return std::future::pending().await;
    };
    loop {
        match receiver.recv().await {
            Ok(event) => return Some(event),
            // A slow reader missed events: drivers refresh metadata on the next one anyway.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// STARTUP must carry a CQL_VERSION of at least 3.0.0, as Cassandra demands.
fn check_cql_version(options: &[(String, String)]) -> Result<(), Error> {
    let Some((_, version)) = options.iter().find(|(k, _)| k == "CQL_VERSION") else {
        return Err(Error::Protocol(ProtocolError::Invalid(
            "Missing value CQL_VERSION in STARTUP message".into(),
        )));
    };
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.trim().parse::<u32>().ok());
    match major {
        Some(m) if m >= 3 => Ok(()),
        _ => Err(Error::Protocol(ProtocolError::Invalid(format!(
            "CQL version {version} is not supported by the binary protocol (supported version are >= 3.0.0)"
        )))),
    }
}

/// The options this node supports (OPTIONS' answer).
fn supported() -> Response {
    Response::Supported(vec![
        (
            "CQL_VERSION".into(),
            vec![crate::coordinator::CQL_VERSION.into()],
        ),
        ("COMPRESSION".into(), vec!["lz4".into(), "snappy".into()]),
        ("PROTOCOL_VERSIONS".into(), vec!["4/v4".into()]),
    ])
}

/// Appends a response frame whose body `body` writes, framed exactly as
/// [`codec::encode_response_frame`] frames a `Response` (header, then the body compressed
/// when the connection negotiated it; empty bodies never are): for bodies that are already
/// encoded, or that a cached plan encodes, rather than built as a `Response`. `head` is
/// the stream and the flags the body's own prefixes need (tracing id, warnings).
fn encode_frame_with(
    out: &mut BytesMut,
    head: (i16, u8),
    opcode: Opcode,
    compression: Option<Compression>,
    body: impl FnOnce(&mut BytesMut),
) {
    let (stream, prefix_flags) = head;
    let start = out.len();
    FrameHeader {
        version: VERSION | RESPONSE_BIT,
        flags: 0,
        stream,
        opcode: opcode as u8,
        length: 0,
    }
    .encode(out);
    let body_start = out.len();
    body(out);
    let mut frame_flags = prefix_flags;
    if let Some(c) = compression.filter(|_| out.len() > body_start) {
        let packed = c.compress(&out[body_start..]);
        out.truncate(body_start);
        out.extend_from_slice(&packed);
        frame_flags |= flags::COMPRESSION;
    }
    let length = u32::try_from(out.len() - body_start).unwrap_or(u32::MAX);
    if let Some(header) = out.get_mut(start..body_start) {
        header[1] = frame_flags;
        header[5..9].copy_from_slice(&length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_written_from_encoded_bodies_match_the_codec() {
        let rows = ResultBody::Rows(crate::protocol::Rows::default());
        for compression in [None, Some(Compression::Lz4), Some(Compression::Snappy)] {
            for response in [supported(), Response::Result(rows.clone()), Response::Ready] {
                let mut expected = BytesMut::from(&b"prefix"[..]);
                codec::encode_response_frame(&mut expected, 7, &response, &[], compression);
                let mut ours = BytesMut::from(&b"prefix"[..]);
                encode_frame_with(&mut ours, (7, 0), response.opcode(), compression, |buf| {
                    response.encode(buf)
                });
                assert_eq!(ours, expected, "{response:?} {compression:?}");
            }
        }
    }
}
