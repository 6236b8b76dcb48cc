//! Nodes joining and leaving a running cluster under writes. A joining node (bootstrap)
//! streams the ranges it takes over and takes, as a pending replica, the writes made while
//! it joins; a leaving one (decommission) streams its ranges to the nodes that gain them,
//! which take the writes made meanwhile. Afterwards every node holds every acknowledged write
//! of every partition it replicates — checked on each node itself, reading at ONE through it
//! only the partitions the ring makes it a replica of (which it answers from its own
//! store), so the other replicas cannot answer for it. The node that left is out of the
//! metadata log's group too, and never starts again on its old data directory. A driver
//! connection registered on node 1 gets NEW_NODE for the node that joined and REMOVED_NODE
//! for the one that left.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;

use bytes::BytesMut;
use futures::StreamExt;
use ringcache::protocol::codec::{decode_response_frame, encode_request_frame};
use ringcache::protocol::{Event, Request, Response};
use ringcache::ring::{Murmur3Partitioner, Placement, Strategy};
use scylla::client::session::Session;
use scylla::frame::types::Consistency;
use uuid::Uuid;

use super::availability::{at, RF3};
use super::placement::advertised_ring;
use super::{ClusterBuilder, TestCluster};
use crate::data_path::run;
use crate::node::{eventually, EVENT_TIMEOUT};

/// Rows written before the fourth node starts; every tenth is then deleted.
const BEFORE: i32 = 2000;
/// Keys written while node 4 joins start here, and while node 2 leaves here.
const DURING_JOIN: i32 = 100_000;
const DURING_LEAVE: i32 = 200_000;
/// Keys written on the four-node ring, between the join and the leave, start here.
const BETWEEN: i32 = 300_000;

/// The TOPOLOGY_CHANGE events the node at `cql` pushes to a connection that registered for
/// them, as (change, address) — read by a thread until the node closes the connection.
fn topology_events(cql: SocketAddr) -> mpsc::Receiver<(String, SocketAddr)> {
    let mut stream = TcpStream::connect(cql).expect("connect for events");
    let mut inbuf = BytesMut::new();
    let exchange = |stream: &mut TcpStream, id: i16, request: &Request| {
        let mut out = BytesMut::new();
        encode_request_frame(&mut out, id, request, None);
        stream.write_all(&out).expect("write");
    };
    let startup = Request::Startup(vec![("CQL_VERSION".to_owned(), "3.0.0".to_owned())]);
    exchange(&mut stream, 0, &startup);
    let register = Request::Register {
        events: vec!["TOPOLOGY_CHANGE".to_owned()],
    };
    exchange(&mut stream, 1, &register);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || loop {
        while let Ok(Some((_, response))) = decode_response_frame(&mut inbuf, None) {
            if let Response::Event(Event::TopologyChange { change, address }) = response {
                let _ = tx.send((change, address));
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
        }
    });
    rx
}

/// Waits (bounded) for the event `change` about `address` among `events`.
fn expect_event(events: &mpsc::Receiver<(String, SocketAddr)>, change: &str, address: SocketAddr) {
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if event == (change.to_owned(), address) => return,
            Ok(other) => seen.push(other),
            Err(_) => panic!("no {change} for {address}; saw {seen:?}"),
        }
    }
}

/// Writes `k -> k` at QUORUM through `session`.
async fn put(session: &Session, k: i32) -> bool {
    let write = at(
        "INSERT INTO grow.t (k, v) VALUES (?, ?)",
        Consistency::Quorum,
    );
    session.query_unpaged(write, (k, k)).await.is_ok()
}

/// Writes keys from `first` up, at QUORUM, through `sessions` in turn, until `stop`;
/// returns the keys acknowledged. Counts failures in `failed`.
async fn write_until(
    sessions: Vec<Session>,
    first: i32,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
) -> Vec<i32> {
    let mut acknowledged = Vec::new();
    let mut k = first;
    while !stop.load(Ordering::Relaxed) {
        let session = &sessions[k as usize % sessions.len()];
        match put(session, k).await {
            true => acknowledged.push(k),
            false => {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        k += 1;
    }
    acknowledged
}

/// The host id of the node `session` reaches.
async fn host_id(session: &Session) -> Uuid {
    session
        .query_unpaged("SELECT host_id FROM system.local", &[])
        .await
        .expect("system.local")
        .into_rows_result()
        .expect("rows")
        .single_row::<(Uuid,)>()
        .expect("host id")
        .0
}

/// Reads at ONE through `session` (node `host`) every key of `expected` that the ring
/// `session` advertises makes `host` a replica of — which it answers from its own store —
/// and returns how many it checked and the (key, expected, found) it got wrong.
async fn check_replica(
    session: &Session,
    nodes: usize,
    expected: &BTreeMap<i32, Option<i32>>,
) -> (usize, Vec<(i32, Option<i32>, Option<i32>)>) {
    let host = host_id(session).await;
    let (ring, locations) = advertised_ring(session, nodes).await;
    let placement = Placement::new(
        &ring,
        &locations,
        &Strategy::Simple {
            replication_factor: 3,
        },
    );
    let mine: Vec<(i32, Option<i32>)> = expected
        .iter()
        .filter(|(k, _)| {
            let token = Murmur3Partitioner::token(&k.to_be_bytes());
            placement.replicas(token).contains(&host)
        })
        .map(|(k, want)| (*k, *want))
        .collect();
    let reads = mine.iter().map(|(k, want)| async move {
        let read = at("SELECT v FROM grow.t WHERE k = ?", Consistency::One);
        let rows = session
            .query_unpaged(read, (*k,))
            .await
            .expect("read at ONE");
        let got = rows
            .into_rows_result()
            .expect("rows")
            .maybe_first_row::<(i32,)>()
            .expect("typed")
            .map(|r| r.0);
        (got != *want).then_some((*k, *want, got))
    });
    let wrong: Vec<_> = futures::stream::iter(reads)
        .buffer_unordered(32)
        .filter_map(|w| async move { w })
        .collect()
        .await;
    let checked = mine.len();
    (checked, wrong)
}

/// Asserts that node `i` holds every partition of `expected` it replicates, and that it
/// replicates more than `share` of them.
async fn assert_holds(
    cluster: &TestCluster,
    i: usize,
    nodes: usize,
    expected: &BTreeMap<i32, Option<i32>>,
    share: f64,
) {
    let session = cluster.session(i).await;
    let (checked, wrong) = check_replica(&session, nodes, expected).await;
    assert!(
        wrong.is_empty(),
        "node {i} holds {} of the {checked} partitions it replicates wrongly, e.g. (key, \
         expected, found) {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    assert!(
        checked as f64 > share * expected.len() as f64,
        "node {i} replicates only {checked} of {} partitions",
        expected.len()
    );
}

/// Ownership as node `i` reports it for `grow`: every node listed, each effective share,
/// summing to RF 3.
fn assert_ownership(cluster: &TestCluster, i: usize, nodes: usize) {
    let seen = cluster.status(i, Some("grow"));
    assert_eq!(seen.nodes.len(), nodes, "{seen:?}");
    assert!(
        seen.nodes.iter().all(|n| n.up && n.state == "Normal"),
        "{seen:?}"
    );
    let total: f64 = seen.nodes.iter().map(|n| n.owns.expect("owns")).sum();
    assert!(
        (total - 3.0).abs() < 1e-6,
        "ownership sums to {total}, not 3"
    );
}

/// Writes at QUORUM in the background through chosen nodes, from a first key up.
struct Writer {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<i32>>,
    started: std::time::Instant,
}

impl Writer {
    async fn start(cluster: &TestCluster, through: &[usize], first: i32) -> Writer {
        let mut sessions = Vec::new();
        for i in through {
            sessions.push(cluster.session(*i).await);
        }
        let (stop, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let task = tokio::spawn(write_until(sessions, first, stop.clone(), failed.clone()));
        Writer {
            stop,
            failed,
            task,
            started: std::time::Instant::now(),
        }
    }

    /// Stops it: the keys acknowledged, after checking that some were and none failed, and
    /// printing how long `what` (the change it ran beside) took.
    async fn stop(self, what: &str) -> Vec<i32> {
        self.stop.store(true, Ordering::Relaxed);
        let written = self.task.await.expect("writer");
        assert_eq!(
            self.failed.load(Ordering::Relaxed),
            0,
            "writes failed meanwhile"
        );
        assert!(!written.is_empty(), "no write was made meanwhile");
        eprintln!(
            "{what} in {:.1} s, {} writes acknowledged meanwhile",
            self.started.elapsed().as_secs_f64(),
            written.len()
        );
        written
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_then_one_leaves_and_no_acknowledged_write_is_lost() {
    let mut cluster = ClusterBuilder::new(4).start_only(3).start();
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE grow WITH replication = {RF3}"),
            "CREATE TABLE grow.t (k int PRIMARY KEY, v int)",
        ],
    )
    .await;
    for k in 0..BEFORE {
        assert!(put(&s1, k).await, "write {k} before the join");
    }
    for k in (0..BEFORE).step_by(10) {
        let delete = at("DELETE FROM grow.t WHERE k = ?", Consistency::Quorum);
        s1.query_unpaged(delete, (k,)).await.expect("delete");
    }
    let mut expected: BTreeMap<i32, Option<i32>> = (0..BEFORE)
        .map(|k| (k, (k % 10 != 0).then_some(k)))
        .collect();

    // Join: writes keep coming through nodes 1-3 while node 4 starts, streams and turns
    // NORMAL. Node 4 then answers, from its own store, every partition it replicates.
    let events = topology_events(cluster.cql(1));
    let n4 = cluster.ip(4).to_string();
    let writer = Writer::start(&cluster, &[1, 2, 3], DURING_JOIN).await;
    cluster.spawn(4);
    eventually("node 1 sees node 4 up and NORMAL", || {
        cluster
            .status(1, Some("grow"))
            .nodes
            .iter()
            .any(|n| n.address == n4 && n.up && n.state == "Normal")
    })
    .await;
    let written = writer.stop("node 4 joined").await;
    expected.extend(written.into_iter().map(|k| (k, Some(k))));
    expect_event(&events, "NEW_NODE", cluster.cql(4));
    assert_ownership(&cluster, 1, 4);
    assert_holds(&cluster, 4, 4, &expected, 0.5).await;

    // Rows placed on the four-node ring, so each node lacks a quarter of them.
    for k in BETWEEN..BETWEEN + BEFORE {
        assert!(
            put(&s1, k).await,
            "write {k} between the join and the leave"
        );
        expected.insert(k, Some(k));
    }

    // Leave: node 2 hands its ranges over while writes come through nodes 1, 3 and 4, and
    // stops. With RF 3 on the three left, each holds every partition.
    let writer = Writer::start(&cluster, &[1, 3, 4], DURING_LEAVE).await;
    let metrics = cluster.metrics(2).to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
            .args(["decommission", "-H", &metrics])
            .output()
            .expect("ringcache decommission")
    })
    .await
    .expect("decommission");
    assert!(
        out.status.success(),
        "decommission failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let written = writer.stop("node 2 left").await;
    expected.extend(written.into_iter().map(|k| (k, Some(k))));
    expect_event(&events, "REMOVED_NODE", cluster.cql(2));
    let stopped = cluster.wait_exit(2);
    assert!(stopped.success(), "node 2 stopped with {stopped}");
    eventually("the metadata group counts the three nodes left", || {
        let meta = cluster.status(1, Some("grow")).metadata;
        meta.voters + meta.learners == 3
    })
    .await;
    for i in [1, 3, 4] {
        assert_ownership(&cluster, i, 3);
        assert_holds(&cluster, i, 3, &expected, 0.99).await;
    }

    // A node that left does not come back on its old data directory.
    cluster.spawn(2);
    let refused = cluster.wait_exit(2);
    assert!(!refused.success());
    let log = cluster.log_tail(2, 100);
    assert!(
        log.contains("was decommissioned and left its cluster"),
        "{log}"
    );
}
