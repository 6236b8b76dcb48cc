//! The protocol edge over raw sockets: bad input is answered with the right error on the
//! right stream and the connection closed, while other clients keep being served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use ringcache::protocol::codec::{decode_response_frame, encode_request_frame};
use ringcache::protocol::{
    Compression, ErrorCode, Event, FrameHeader, QueryParameters, Request, Response, ResultBody,
};

use super::node::{accept_queue, metric, partition_reads, wait_until, ReadGate, TestNode};

/// A blocking test client speaking v4 with our own codec.
struct Client {
    stream: TcpStream,
    inbuf: BytesMut,
    compression: Option<Compression>,
}

impl Client {
    fn connect(node: &TestNode) -> Client {
        let stream = TcpStream::connect(node.cql).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Client {
            stream,
            inbuf: BytesMut::new(),
            compression: None,
        }
    }

    fn started(node: &TestNode, compression: Option<Compression>) -> Client {
        let mut c = Client::connect(node);
        let mut options = vec![("CQL_VERSION".to_owned(), "3.0.0".to_owned())];
        if let Some(comp) = compression {
            options.push(("COMPRESSION".to_owned(), comp.name().to_owned()));
        }
        c.send(0, &Request::Startup(options));
        assert_eq!(c.recv().1, Response::Ready);
        c.compression = compression;
        c
    }

    fn send(&mut self, stream: i16, request: &Request) {
        let mut out = BytesMut::new();
        encode_request_frame(&mut out, stream, request, self.compression);
        self.stream.write_all(&out).expect("write");
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write raw");
    }

    fn recv(&mut self) -> (FrameHeader, Response) {
        self.try_recv().expect("a frame before EOF")
    }

    /// The next frame, or None on EOF.
    fn try_recv(&mut self) -> Option<(FrameHeader, Response)> {
        loop {
            if let Some(frame) = decode_response_frame(&mut self.inbuf, self.compression)
                .expect("valid response frame")
            {
                return Some(frame);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).expect("read");
            if n == 0 {
                return None;
            }
            self.inbuf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next frame whatever its version byte (the negotiation error may be 0x83).
    fn recv_any_version(&mut self) -> (FrameHeader, Response) {
        let mut head = [0u8; 9];
        self.stream.read_exact(&mut head).expect("header");
        let header = FrameHeader::parse(&head).expect("nine bytes");
        let mut body = vec![0u8; header.length as usize];
        self.stream.read_exact(&mut body).expect("body");
        let opcode = header.opcode().expect("known opcode");
        let response = Response::decode(opcode, bytes::Bytes::from(body)).expect("decodable body");
        (header, response)
    }

    /// Asserts that the server closed the connection and sent nothing more.
    fn expect_closed(&mut self) {
        assert!(
            self.try_recv().is_none(),
            "expected the server to close the connection"
        );
    }
}

fn query(text: &str) -> Request {
    Request::Query {
        query: text.to_owned(),
        params: QueryParameters::default(),
    }
}

fn error_code(response: &Response) -> ErrorCode {
    match response {
        Response::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn raw_header(version: u8, stream: i16, opcode: u8, length: u32) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u8(version);
    b.put_u8(0);
    b.put_i16(stream);
    b.put_u8(opcode);
    b.put_u32(length);
    b.to_vec()
}

#[test]
fn unsupported_versions_get_the_negotiation_error_on_stream_zero() {
    let node = TestNode::start();
    for (version, reply) in [
        (0x05u8, 0x84u8),
        (0x42, 0x84),
        (0x41, 0x84),
        (0x06, 0x84),
        (0x03, 0x83),
    ] {
        let mut c = Client::connect(&node);
        let mut frame = raw_header(version, 0, 0x05, 0);
        frame.truncate(9);
        c.send_raw(&frame);
        let (header, response) = c.recv_any_version();
        assert_eq!(
            header.version, reply,
            "reply version for request version {version:#x}"
        );
        assert_eq!(header.stream, 0);
        let Response::Error(e) = response else {
            panic!("expected error")
        };
        assert_eq!(e.code, ErrorCode::ProtocolError);
        assert!(
            e.message
                .contains("Invalid or unsupported protocol version"),
            "{}",
            e.message
        );
        c.expect_closed();
    }
}

#[test]
fn garbage_body_gets_protocol_error_on_its_stream_then_close() {
    let node = TestNode::start();
    let mut c = Client::started(&node, None);
    // A QUERY whose [long string] claims 2 GiB of text in a 6-byte body.
    let mut frame = raw_header(0x04, 77, 0x07, 6);
    frame.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0x00, 0x01]);
    c.send_raw(&frame);
    let (header, response) = c.recv();
    assert_eq!(header.stream, 77);
    assert_eq!(error_code(&response), ErrorCode::ProtocolError);
    c.expect_closed();
}

#[test]
fn oversized_frame_is_refused_from_its_header() {
    let node = TestNode::start_with_env(&[("RINGCACHE_LIMITS__MAX_FRAME_BYTES", "65536")]);
    let mut c = Client::started(&node, None);
    // Only the header is sent: the refusal must not wait for the 1 MiB body.
    c.send_raw(&raw_header(0x04, 9, 0x07, 1 << 20));
    let (header, response) = c.recv();
    assert_eq!(header.stream, 9);
    assert_eq!(error_code(&response), ErrorCode::ProtocolError);
    c.expect_closed();
}

#[test]
fn bad_clients_do_not_disturb_a_pipelining_client() {
    let node = TestNode::start();
    let mut good = Client::started(&node, None);
    const IN_FLIGHT: i16 = 500;
    for stream in 1..=IN_FLIGHT {
        let request = if stream % 2 == 0 {
            Request::Options
        } else {
            query("SELECT * FROM system.local WHERE key='local'")
        };
        good.send(stream, &request);
        if stream % 100 == 0 {
            let mut bad = Client::connect(&node);
            bad.send_raw(&raw_header(0x42, 0, 0x05, 0));
            let mut garbage = Client::started(&node, None);
            garbage.send_raw(&[0x04, 0, 0, 1, 0x07, 0, 0, 0, 2, 0xff, 0xff]);
        }
    }
    let mut answered = vec![false; IN_FLIGHT as usize + 1];
    for _ in 0..IN_FLIGHT {
        let (header, response) = good.recv();
        assert!(
            header.stream > 0 && header.stream <= IN_FLIGHT,
            "stream {}",
            header.stream
        );
        assert!(
            !answered[header.stream as usize],
            "stream {} answered twice",
            header.stream
        );
        answered[header.stream as usize] = true;
        match (header.stream % 2, response) {
            (0, Response::Supported(_)) => {}
            (1, Response::Result(ResultBody::Rows(rows))) => assert_eq!(rows.rows.len(), 1),
            (_, other) => panic!("stream {}: unexpected {other:?}", header.stream),
        }
    }
}

/// A connection of `node` with keyspace `slow` and table `slow.t` holding rows 0..`rows`.
fn slow_table(node: &TestNode, rows: i32) -> Client {
    let mut c = Client::started(node, None);
    for ddl in [
        "CREATE KEYSPACE slow WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TABLE slow.t (k int PRIMARY KEY, v int)",
    ] {
        c.send(1, &query(ddl));
        assert!(matches!(c.recv().1, Response::Result(_)), "{ddl}");
    }
    for k in 0..rows {
        c.send(
            1,
            &query(&format!("INSERT INTO slow.t (k, v) VALUES ({k}, {k})")),
        );
        assert!(matches!(c.recv().1, Response::Result(ResultBody::Void)));
    }
    c
}

#[test]
fn replies_come_back_out_of_order_on_their_own_streams() {
    // The user-table read waits at the gate until both later requests are answered;
    // system.local is computed without storage.
    let gate = ReadGate::closed();
    let (name, path) = gate.env();
    let node = TestNode::start_with_env(&[(name, &path)]);
    let mut c = slow_table(&node, 1);
    c.send(10, &query("SELECT v FROM slow.t WHERE k = 0"));
    c.send(11, &query("SELECT release_version FROM system.local"));
    c.send(12, &Request::Options);
    let mut fast = vec![c.recv().0.stream, c.recv().0.stream];
    fast.sort();
    assert_eq!(
        fast,
        [11, 12],
        "answered while the read of stream 10 was held"
    );
    gate.release(1);
    let (header, response) = c.recv();
    assert_eq!(header.stream, 10);
    assert!(matches!(response, Response::Result(ResultBody::Rows(_))));
}

/// Requests of `opcode` the node has received (counted as each is decoded).
fn received(node: &TestNode, opcode: &str) -> f64 {
    let name = format!("ringcache_requests_total{{opcode=\"{opcode}\"}}");
    metric(&node.scrape_metrics(), &name).unwrap_or(0.0)
}

#[test]
fn a_connection_at_its_in_flight_limit_stops_being_read_and_others_are_served() {
    const LIMIT: u64 = 4;
    const READS: u64 = 20;
    let gate = ReadGate::closed();
    let (name, path) = gate.env();
    let limit = LIMIT.to_string();
    let node = TestNode::start_with_env(&[
        (name, &path),
        (
            "RINGCACHE_LIMITS__MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION",
            &limit,
        ),
    ]);
    let mut busy = slow_table(&node, READS as i32);
    let queries_before = received(&node, "query");
    // Distinct partitions, so no two reads share a storage fetch.
    for stream in 1..=READS as i16 {
        busy.send(
            stream,
            &query(&format!("SELECT v FROM slow.t WHERE k = {}", stream - 1)),
        );
    }
    // The connection takes LIMIT requests, their reads are held, and it stops reading.
    wait_until(
        "LIMIT reads are held and the busy connection paused",
        || {
            let text = node.scrape_metrics();
            let pauses = metric(&text, "ringcache_backpressure_pauses_total");
            partition_reads(&text) == LIMIT as f64 && pauses.is_some_and(|p| p >= 1.0)
        },
    );
    // Another connection is served while the first one waits on storage.
    let mut other = Client::started(&node, None);
    other.send(1, &Request::Options);
    assert!(matches!(other.recv().1, Response::Supported(_)));
    // Each read released lets exactly one more request in: never more than LIMIT at once.
    let mut answered = Vec::new();
    for released in 1..=READS {
        let taken = received(&node, "query") - queries_before;
        assert!(
            taken <= (released - 1 + LIMIT) as f64,
            "{taken} requests taken with {} answered: more than {LIMIT} in flight",
            released - 1
        );
        gate.release(released);
        answered.push(busy.recv().0.stream);
        let next = READS.min(released + LIMIT) as f64;
        wait_until("the freed slot takes the next request", || {
            partition_reads(&node.scrape_metrics()) == next
        });
    }
    answered.sort();
    assert_eq!(answered, (1..=READS as i16).collect::<Vec<_>>());
    assert_eq!(received(&node, "query") - queries_before, READS as f64);
}

#[test]
fn requests_before_startup_are_refused_but_options_works() {
    let node = TestNode::start();
    let mut c = Client::connect(&node);
    c.send(3, &Request::Options);
    let (header, response) = c.recv();
    assert_eq!(header.stream, 3);
    let Response::Supported(options) = response else {
        panic!("expected SUPPORTED")
    };
    let get = |k: &str| {
        options
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    assert!(get("CQL_VERSION").is_some_and(|v| !v.is_empty()));
    assert_eq!(
        get("COMPRESSION"),
        Some(vec!["lz4".to_owned(), "snappy".to_owned()])
    );
    c.send(4, &query("SELECT * FROM system.local"));
    let (header, response) = c.recv();
    assert_eq!(header.stream, 4);
    assert_eq!(error_code(&response), ErrorCode::ProtocolError);
}

#[test]
fn lz4_and_snappy_compressed_sessions_work() {
    let node = TestNode::start();
    for compression in [Compression::Lz4, Compression::Snappy] {
        let mut c = Client::started(&node, Some(compression));
        c.send(1, &query("SELECT * FROM system_schema.columns"));
        let (header, response) = c.recv();
        assert_eq!(
            header.flags & 0x01,
            0x01,
            "{compression:?} replies are compressed"
        );
        let Response::Result(ResultBody::Rows(rows)) = response else {
            panic!("rows expected")
        };
        assert!(rows.rows.len() > 50, "system tables are described");
        c.send(2, &Request::Options);
        assert!(matches!(c.recv().1, Response::Supported(_)));
    }
}

#[test]
fn schema_change_events_reach_registered_connections() {
    let node = TestNode::start();
    let mut listener = Client::started(&node, None);
    listener.send(
        1,
        &Request::Register {
            events: vec!["SCHEMA_CHANGE".into(), "STATUS_CHANGE".into()],
        },
    );
    assert_eq!(listener.recv().1, Response::Ready);
    let mut writer = Client::started(&node, None);
    writer.send(1, &query("CREATE KEYSPACE ev WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"));
    assert!(matches!(
        writer.recv().1,
        Response::Result(ResultBody::SchemaChange(_))
    ));
    let (header, response) = listener.recv();
    assert_eq!(header.stream, -1);
    let Response::Event(Event::SchemaChange(change)) = response else {
        panic!("expected event, got {response:?}")
    };
    assert_eq!(
        change.target,
        ringcache::protocol::SchemaTarget::Keyspace("ev".into())
    );
}

#[test]
fn connections_beyond_the_limit_wait_their_turn() {
    let node = TestNode::start_with_env(&[("RINGCACHE_LIMITS__MAX_CONNECTIONS", "2")]);
    let first = Client::started(&node, None);
    let mut second = Client::started(&node, None);
    let mut third = Client::connect(&node);
    third.send(1, &Request::Options);
    // The kernel completed the third handshake; the node never accepted it.
    wait_until("the third connection waits in the accept queue", || {
        accept_queue(node.cql) == Some(1)
    });
    // The node is serving, and still has not taken the third.
    second.send(1, &Request::Options);
    assert!(matches!(second.recv().1, Response::Supported(_)));
    assert_eq!(
        accept_queue(node.cql),
        Some(1),
        "the third connection must not be accepted while two are open"
    );
    let total = metric(&node.scrape_metrics(), "ringcache_connections_total");
    assert_eq!(total, Some(2.0));
    drop(first);
    assert!(matches!(third.recv().1, Response::Supported(_)));
}

#[test]
fn metrics_endpoint_counts_requests_and_errors() {
    let node = TestNode::start();
    let mut c = Client::started(&node, None);
    c.send(1, &Request::Options);
    c.recv();
    c.send(2, &query("SELECT * FROM nowhere.t"));
    assert_eq!(error_code(&c.recv().1), ErrorCode::Invalid);
    c.send(3, &query("SELEKT 1"));
    assert_eq!(error_code(&c.recv().1), ErrorCode::SyntaxError);
    let text = node.scrape_metrics();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for needle in [
        "ringcache_requests_total{opcode=\"options\"} 1",
        "ringcache_errors_total{code=\"invalid\"} 1",
        "ringcache_errors_total{code=\"syntax_error\"} 1",
        "ringcache_connections_open 1",
        "ringcache_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[test]
fn graceful_shutdown_exits_cleanly() {
    let mut node = TestNode::start();
    let _client = Client::started(&node, None);
    assert!(node.terminate(), "SIGTERM must lead to a clean exit");
}
