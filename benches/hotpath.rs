//! Hot-path benchmark of the connection layer (issue 2, design §10).
//!
//! Drives a real in-process ringcache node with OPTIONS and a `system.local` SELECT, and in
//! the same run a bare responder built on the same runtime and codec that answers every
//! frame with a canned reply of the same size: the limit this machine sets for the
//! workload. Prints closed-loop throughput for each, and the ratio, at concurrency 1 and 64,
//! for each scheduling mode of `[tuning]`, so the defaults are chosen by measurement.
//!
//! Run: `cargo bench --bench hotpath` (env HOTPATH_SECS sets seconds per cell, default 3;
//! HOTPATH_WORKLOAD=options or =select runs one workload).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringcache::bench::responder::Responder;
use ringcache::config::{Config, FlushPolicy, Scheduling, Tuning};
use ringcache::protocol::codec::encode_request_frame;
use ringcache::protocol::{QueryParameters, Request, HEADER_LEN};
use ringcache::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connections × requests in flight per connection.
const SHAPES: &[(usize, usize)] = &[(1, 1), (4, 16)];

#[derive(Clone, Copy)]
enum Workload {
    Options,
    SystemLocal,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Options => "OPTIONS",
            Workload::SystemLocal => "SELECT system.local",
        }
    }

    fn request(self) -> Request {
        match self {
            Workload::Options => Request::Options,
            Workload::SystemLocal => Request::Query {
                query: "SELECT * FROM system.local WHERE key='local'".into(),
                params: QueryParameters::default(),
            },
        }
    }
}

fn main() {
    let secs: u64 = std::env::var("HOTPATH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let data = tempfile::tempdir().expect("tempdir");
    println!("hot path, {secs} s per cell, closed loop; ratio = ringcache / bare responder");
    println!(
        "{:<22} {:<16} {:>5} {:>12} {:>12} {:>7}",
        "workload", "mode", "conc", "ringcache/s", "bare/s", "ratio"
    );
    let modes = [
        ("inline+per_turn", Scheduling::Inline, FlushPolicy::PerTurn),
        ("spawn+per_turn", Scheduling::Spawn, FlushPolicy::PerTurn),
        (
            "inline+per_reply",
            Scheduling::Inline,
            FlushPolicy::PerReply,
        ),
    ];
    let only = std::env::var("HOTPATH_WORKLOAD").unwrap_or_default();
    let workloads = [Workload::Options, Workload::SystemLocal]
        .into_iter()
        .filter(|w| only.is_empty() || w.name().to_lowercase().contains(&only.to_lowercase()));
    for workload in workloads {
        for &(conns, depth) in SHAPES {
            let mut bare_rate = None;
            for (mode, scheduling, flush) in modes {
                let tuning = Tuning {
                    request_scheduling: scheduling,
                    reply_flush: flush,
                };
                let server = server_rt.block_on(start_node(data.path(), tuning));
                let addr = server.cql_addr;
                let reply = client_rt.block_on(sample_reply(addr, workload));
                let ours = client_rt.block_on(drive(addr, workload, conns, depth, secs));
                server_rt.block_on(server.shutdown());
                let bare = *bare_rate.get_or_insert_with(|| {
                    // The machine's limit: same runtime, same header decoding, this reply to
                    // every frame, written once per read like the server's per-turn flush.
                    let responder = server_rt
                        .block_on(Responder::canned(reply))
                        .expect("bare responder");
                    let rate =
                        client_rt.block_on(drive(responder.addr, workload, conns, depth, secs));
                    server_rt.block_on(async move { drop(responder) });
                    rate
                });
                println!(
                    "{:<22} {:<16} {:>5} {:>12.0} {:>12.0} {:>7.2}",
                    workload.name(),
                    mode,
                    conns * depth,
                    ours,
                    bare,
                    ours / bare
                );
            }
        }
    }
}

async fn start_node(dir: &std::path::Path, tuning: Tuning) -> Server {
    let config = Config {
        cql_port: 0,
        metrics_port: 0,
        internode_port: 0,
        data_dir: dir.to_path_buf(),
        tuning,
        ..Config::default()
    };
    Server::start(config, &[]).await.expect("start node")
}

fn frame(stream: i16, request: &Request) -> Bytes {
    let mut out = BytesMut::new();
    encode_request_frame(&mut out, stream, request, None);
    out.freeze()
}

fn startup() -> Request {
    Request::Startup(vec![("CQL_VERSION".into(), "3.0.0".into())])
}

/// Opens a started connection.
async fn open(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.write_all(&frame(0, &startup())).await.expect("startup");
    read_frame(&mut s, &mut BytesMut::new()).await;
    s
}

/// Reads one whole frame, returning it with its header.
async fn read_frame(s: &mut TcpStream, buf: &mut BytesMut) -> Bytes {
    loop {
        if let Ok(Some(h)) = decode_header_any(buf) {
            let total = HEADER_LEN + h as usize;
            if buf.len() >= total {
                return buf.split_to(total).freeze();
            }
        }
        if s.read_buf(buf).await.expect("read") == 0 {
            panic!("connection closed during benchmark");
        }
    }
}

/// Body length of a buffered response header.
fn decode_header_any(buf: &[u8]) -> Result<Option<u32>, ()> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    Ok(Some(u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]])))
}

/// One real reply, so the bare responder answers with a frame of the same size.
async fn sample_reply(addr: SocketAddr, workload: Workload) -> Bytes {
    let mut s = open(addr).await;
    s.write_all(&frame(1, &workload.request()))
        .await
        .expect("write");
    read_frame(&mut s, &mut BytesMut::new()).await
}

/// Closed loop: each connection keeps `depth` requests in flight for `secs` seconds.
async fn drive(addr: SocketAddr, workload: Workload, conns: usize, depth: usize, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (done, stop) = (done.clone(), stop.clone());
        let frames: Vec<Bytes> = (0..depth)
            .map(|i| frame(i as i16 + 1, &workload.request()))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut s = open(addr).await;
            let (mut rd, mut wr) = s.split();
            let mut pipeline = BytesMut::new();
            frames.iter().for_each(|f| pipeline.extend_from_slice(f));
            wr.write_all(&pipeline).await.expect("write");
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let mut outstanding = depth;
            while outstanding > 0 {
                if rd.read_buf(&mut buf).await.expect("read") == 0 {
                    panic!("closed");
                }
                let mut resend = BytesMut::new();
                while let Ok(Some(len)) = decode_header_any(&buf) {
                    let total = HEADER_LEN + len as usize;
                    if buf.len() < total {
                        break;
                    }
                    let stream = i16::from_be_bytes([buf[2], buf[3]]);
                    let _ = buf.split_to(total);
                    done.fetch_add(1, Ordering::Relaxed);
                    if stop.load(Ordering::Relaxed) {
                        outstanding -= 1;
                    } else {
                        resend.extend_from_slice(&frames[stream as usize - 1]);
                    }
                }
                if !resend.is_empty() {
                    wr.write_all(&resend).await.expect("write");
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start_count = done.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let count = done.load(Ordering::Relaxed) - start_count;
    let rate = count as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    rate
}
