//! Nodes joining and leaving a running cluster under writes. Two nodes started at once
//! join in turn (each claims the cluster's one range movement from the metadata log, and
//! node 1 applies claim, release, claim, release). A joining node (bootstrap) streams the
//! ranges it takes over and takes, as a pending replica, the writes made while it joins; a
//! leaving one (decommission) streams its ranges to the nodes that gain them,
//! which take the writes made meanwhile. Afterwards every node holds every acknowledged write
//! of every partition it replicates — checked on each node itself, reading at ONE through it
//! only the partitions the ring makes it a replica of (which it answers from its own
//! store), so the other replicas cannot answer for it. The node that left is out of the
//! metadata log's group too, and never starts again on its old data directory. A driver
//! connection registered on node 1 gets NEW_NODE for the nodes that joined and REMOVED_NODE
//! for the one that left. The leaving node hands over the hints it holds first. While it
//! streams it is UL in node 1's status and "Streaming" in its own (node 3's reads held at a
//! gate until the test has seen both).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use ringcache::ring::{Murmur3Partitioner, Placement, Strategy};
use scylla::client::session::Session;
use scylla::frame::types::Consistency;
use uuid::Uuid;

use super::availability::{at, RF3};
use super::placement::advertised_ring;
use super::{events, expect_events, ClusterBuilder, TestCluster};
use crate::data_path::run;
use crate::node::{eventually, partition_reads, ReadGate};

/// A gate count no test reaches: every read passes.
const OPEN: u64 = 1 << 40;

/// Rows written before the fourth node starts; every tenth is then deleted.
const BEFORE: i32 = 2000;
/// Keys written while node 4 joins start here, and while node 2 leaves here.
const DURING_JOIN: i32 = 100_000;
const DURING_LEAVE: i32 = 200_000;
/// Keys written on the four-node ring, between the join and the leave, start here.
const BETWEEN: i32 = 300_000;
/// Keys written through node 2 while its link to node 3 is cut, so it holds hints for them.
const HINTED: i32 = 400_000;
const HINTED_ROWS: i32 = 300;

/// The range movements node `i` applied from the metadata log, in order: "claim" and
/// "release" with the node's host id, from its log.
fn movements(cluster: &TestCluster, i: usize) -> Vec<String> {
    cluster
        .log(i)
        .lines()
        .filter(|l| l.contains("range movement") && l.contains("command="))
        .map(|l| {
            let kind = if l.contains("command=Claim") {
                "claim"
            } else {
                "release"
            };
            let host = l
                .split("host_id: ")
                .nth(1)
                .and_then(|rest| rest.get(..36))
                .unwrap_or("?");
            format!("{kind} {host}")
        })
        .collect()
}

/// Writes `k -> k` at QUORUM through `session`.
async fn put(session: &Session, k: i32) -> bool {
    write(session, k).await.is_ok()
}

/// Writes `k -> k` at QUORUM through `session`: why not, if it failed.
async fn write(session: &Session, k: i32) -> Result<(), String> {
    let write = at(
        "INSERT INTO grow.t (k, v) VALUES (?, ?)",
        Consistency::Quorum,
    );
    session
        .query_unpaged(write, (k, k))
        .await
        .map(|_| ())
        .map_err(|e| format!("write {k}: {e}"))
}

/// Writes keys from `first` up, at QUORUM, through `sessions` in turn, until `stop`;
/// returns the keys acknowledged, and the failures.
async fn write_until(sessions: Vec<Session>, first: i32, stop: Arc<AtomicBool>) -> Written {
    let mut written = Written::default();
    let mut k = first;
    while !stop.load(Ordering::Relaxed) {
        let session = &sessions[k as usize % sessions.len()];
        match write(session, k).await {
            Ok(()) => written.acknowledged.push(k),
            Err(why) => written.failed.push(why),
        }
        k += 1;
    }
    written
}

/// What a [`Writer`] did.
#[derive(Default)]
struct Written {
    acknowledged: Vec<i32>,
    failed: Vec<String>,
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

/// `grow`'s placement (RF 3) on the ring of `nodes` nodes `session` advertises.
async fn placement(session: &Session, nodes: usize) -> Placement {
    let (ring, locations) = advertised_ring(session, nodes).await;
    Placement::new(
        &ring,
        &locations,
        &Strategy::Simple {
            replication_factor: 3,
        },
    )
}

/// Whether `host` is a replica of key `k`.
fn replicates(placement: &Placement, host: &Uuid, k: i32) -> bool {
    let token = Murmur3Partitioner::token(&k.to_be_bytes());
    placement.replicas(token).contains(host)
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
    let placement = placement(session, nodes).await;
    let mine: Vec<(i32, Option<i32>)> = expected
        .iter()
        .filter(|(k, _)| replicates(&placement, &host, **k))
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
    // Node i's own view of the ring first: a node may learn of the last move later than
    // node 1, which the test waited on.
    eventually(
        &format!("node {i} sees {nodes} nodes up and NORMAL"),
        || {
            let seen = cluster.status(i, None).nodes;
            seen.len() == nodes && seen.iter().all(|n| n.up && n.state == "Normal")
        },
    )
    .await;
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
    task: tokio::task::JoinHandle<Written>,
    started: std::time::Instant,
}

impl Writer {
    async fn start(cluster: &TestCluster, through: &[usize], first: i32) -> Writer {
        let mut sessions = Vec::new();
        for i in through {
            sessions.push(cluster.session(*i).await);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(write_until(sessions, first, stop.clone()));
        Writer {
            stop,
            task,
            started: std::time::Instant::now(),
        }
    }

    /// Stops it: the keys acknowledged, after checking that some were and none failed, and
    /// printing how long `what` (the change it ran beside) took.
    async fn stop(self, what: &str) -> Vec<i32> {
        self.stop.store(true, Ordering::Relaxed);
        let written = self.task.await.expect("writer");
        assert!(
            written.failed.is_empty(),
            "{} writes failed meanwhile: {:?}",
            written.failed.len(),
            &written.failed[..written.failed.len().min(5)]
        );
        assert!(
            !written.acknowledged.is_empty(),
            "no write was made meanwhile"
        );
        eprintln!(
            "{what} in {:.1} s, {} writes acknowledged meanwhile",
            self.started.elapsed().as_secs_f64(),
            written.acknowledged.len()
        );
        written.acknowledged
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_then_one_leaves_and_no_acknowledged_write_is_lost() {
    // Node 3's partition reads pass a gate, open until the leave, where it holds the
    // stream (which reads from every live replica) until the test has seen it running.
    let gate = ReadGate::closed();
    gate.release(OPEN);
    let (gate_key, gate_path) = gate.env();
    let mut cluster = ClusterBuilder::new(5)
        .node_env(2, "RINGCACHE_FAULTS__HOLD_HINTS", "true")
        .node_env(3, gate_key, &gate_path)
        .start_only(3)
        .start();
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

    // Join: writes keep coming through nodes 1-3 while nodes 4 and 5 start at once, each
    // streams in its turn (the metadata log grants one range movement at a time) and turns
    // NORMAL. Each then answers, from its own store, every partition it replicates.
    let events = events(cluster.cql(1), &["TOPOLOGY_CHANGE"]);
    let joiners = [cluster.ip(4).to_string(), cluster.ip(5).to_string()];
    // Nodes 2 and 3 joined node 1 the same way when the cluster started.
    let before = movements(&cluster, 1).len();
    let writer = Writer::start(&cluster, &[1, 2, 3], DURING_JOIN).await;
    cluster.spawn(4);
    cluster.spawn(5);
    eventually("node 1 sees nodes 4 and 5 up and NORMAL", || {
        let seen = cluster.status(1, Some("grow"));
        joiners.iter().all(|ip| {
            seen.nodes
                .iter()
                .any(|n| n.address == *ip && n.up && n.state == "Normal")
        })
    })
    .await;
    let written = writer.stop("nodes 4 and 5 joined").await;
    expected.extend(written.into_iter().map(|k| (k, Some(k))));
    expect_events(
        &events,
        &[("NEW_NODE", cluster.cql(4)), ("NEW_NODE", cluster.cql(5))],
    );
    assert_ownership(&cluster, 1, 5);
    for i in [4, 5] {
        assert_holds(&cluster, i, 5, &expected, 0.25).await;
    }
    let (n4, n5) = (
        host_id(&cluster.session(4).await).await.to_string(),
        host_id(&cluster.session(5).await).await.to_string(),
    );
    eventually("both joins released their range movement", || {
        movements(&cluster, 1).len() == before + 4
    })
    .await;
    let joins = movements(&cluster, 1)[before..].to_vec();
    let (first, second) = match joins.first() {
        Some(c) if *c == format!("claim {n5}") => (&n5, &n4),
        _ => (&n4, &n5),
    };
    assert_eq!(
        joins,
        [
            format!("claim {first}"),
            format!("release {first}"),
            format!("claim {second}"),
            format!("release {second}")
        ],
        "the two joins took turns"
    );

    // Rows placed on the five-node ring, so each node lacks two fifths of them.
    for k in BETWEEN..BETWEEN + BEFORE {
        assert!(
            put(&s1, k).await,
            "write {k} between the join and the leave"
        );
        expected.insert(k, Some(k));
    }

    // Node 2 will leave holding hints for node 3: rows written through it while the link
    // between them is cut, which node 3 misses and node 2 keeps a hint of each, not
    // delivering them by itself (`[faults] hold_hints`). It must hand them over as it
    // leaves: no stream brings node 3 a partition it replicated already.
    cluster.cut(2, 3);
    let s2 = cluster.session(2).await;
    for k in HINTED..HINTED + HINTED_ROWS {
        assert!(
            put(&s2, k).await,
            "write {k} through node 2, cut off from node 3"
        );
        expected.insert(k, Some(k));
    }
    let n2 = host_id(&s2).await;
    let n3 = host_id(&cluster.session(3).await).await;
    let five = placement(&s2, 5).await;
    let missed = (HINTED..HINTED + HINTED_ROWS)
        .filter(|k| replicates(&five, &n3, *k))
        .count();
    eventually(
        "node 2 holds a hint for each of those rows node 3 replicates",
        || super::convergence::hints(&cluster, 2).0 >= missed as f64,
    )
    .await;
    cluster.heal(2, 3);
    cluster.wait_all_up().await;

    // Leave: node 2 hands its ranges and hints over while writes come through nodes 1, 3,
    // 4 and 5, and stops.
    let writer = Writer::start(&cluster, &[1, 3, 4, 5], DURING_LEAVE).await;
    gate.release(partition_reads(&cluster.scrape_metrics(3)) as u64);
    let metrics = cluster.metrics(2).to_string();
    let leaving = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
            .args(["decommission", "-H", &metrics])
            .output()
            .expect("ringcache decommission")
    });
    eventually(
        "node 2 is UL on node 1 and streaming in its own status",
        || cluster.shows_streaming(1, 2, "Leaving"),
    )
    .await;
    gate.release(OPEN);
    let out = leaving.await.expect("decommission");
    assert!(
        out.status.success(),
        "decommission failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let written = writer.stop("node 2 left").await;
    expected.extend(written.into_iter().map(|k| (k, Some(k))));
    expect_events(&events, &[("REMOVED_NODE", cluster.cql(2))]);
    let stopped = cluster.wait_exit(2);
    assert!(stopped.success(), "node 2 stopped with {stopped}");
    eventually("the metadata group counts the four nodes left", || {
        let meta = cluster.status(1, Some("grow")).metadata;
        meta.voters + meta.learners == 4
    })
    .await;
    for i in [1, 3, 4, 5] {
        assert_ownership(&cluster, i, 4);
        assert_holds(&cluster, i, 4, &expected, 0.5).await;
    }
    eventually("the decommission released its range movement", || {
        movements(&cluster, 1).len() == before + 6
    })
    .await;
    assert_eq!(
        movements(&cluster, 1)[before + 4..],
        [format!("claim {n2}"), format!("release {n2}")],
        "the decommission claimed and released the range movement"
    );
    assert!(cluster.status(1, None).movement.is_none());

    // A node that left does not come back on its old data directory.
    cluster.spawn(2);
    let refused = cluster.wait_exit(2);
    assert!(!refused.success());
    let log = cluster.log_tail(2, 100);
    assert!(
        log.contains("this node left its cluster (it was decommissioned)"),
        "{log}"
    );
}
