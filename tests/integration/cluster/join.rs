//! A node joining a running cluster (bootstrap): it streams the ranges it takes over and
//! takes, as a pending replica, the writes made while it joins, so once it is NORMAL it
//! holds every acknowledged write of every partition it replicates — checked on the node
//! itself, reading at ONE through it only the partitions the ring makes it a replica of
//! (which it answers from its own store), so the other replicas cannot answer for it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ringcache::metrics::status::Status;
use ringcache::ring::{Murmur3Partitioner, Placement, Strategy};
use scylla::client::session::Session;
use scylla::frame::types::Consistency;
use uuid::Uuid;

use super::availability::{at, RF3};
use super::placement::advertised_ring;
use super::{ClusterBuilder, TestCluster};
use crate::data_path::run;
use crate::node::eventually;

/// Rows written before the fourth node starts; every tenth is then deleted.
const BEFORE: i32 = 2000;
/// Keys written while it joins start here.
const DURING: i32 = 100_000;

/// `ringcache status --json` of node `i` for `keyspace`.
fn status(cluster: &TestCluster, i: usize, keyspace: &str) -> Status {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .args([
            "status",
            "--json",
            "-H",
            &cluster.metrics(i).to_string(),
            keyspace,
        ])
        .output()
        .expect("ringcache status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// Writes `k -> k` at QUORUM through `session`.
async fn put(session: &Session, k: i32) -> bool {
    let write = at(
        "INSERT INTO grow.t (k, v) VALUES (?, ?)",
        Consistency::Quorum,
    );
    session.query_unpaged(write, (k, k)).await.is_ok()
}

/// Writes keys from [`DURING`] up, at QUORUM, through nodes 1–3 in turn, until `stop`;
/// returns the keys acknowledged. Counts failures in `failed`.
async fn write_until(
    sessions: Vec<Session>,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
) -> Vec<i32> {
    let mut acknowledged = Vec::new();
    let mut k = DURING;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_streams_its_ranges_and_takes_the_writes_made_meanwhile() {
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

    // Writes keep coming through nodes 1-3 while node 4 starts, streams and turns NORMAL.
    let mut sessions = Vec::new();
    for i in 1..=3 {
        sessions.push(cluster.session(i).await);
    }
    let (stop, failed) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let writer = tokio::spawn(write_until(sessions, stop.clone(), Arc::clone(&failed)));
    cluster.restart(4);
    eventually("node 1 sees node 4 up and NORMAL", || {
        let seen = status(&cluster, 1, "grow");
        let n4 = cluster.ip(4).to_string();
        seen.nodes
            .iter()
            .any(|n| n.address == n4 && n.up && n.state == "Normal")
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let during = writer.await.expect("writer");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "writes failed during the join"
    );
    assert!(!during.is_empty(), "no write was made while node 4 joined");

    // Ownership: four nodes, each share effective for RF 3, summing to 300 %.
    let seen = status(&cluster, 1, "grow");
    assert_eq!(seen.nodes.len(), 4);
    let total: f64 = seen.nodes.iter().map(|n| n.owns.expect("owns")).sum();
    assert!(
        (total - 3.0).abs() < 1e-6,
        "ownership sums to {total}, not 3"
    );

    // Node 4 answers, from its own store, every partition the ring makes it a replica of.
    let s4 = cluster.session(4).await;
    let local = s4
        .query_unpaged("SELECT host_id FROM system.local", &[])
        .await
        .expect("system.local")
        .into_rows_result()
        .expect("rows")
        .single_row::<(Uuid,)>()
        .expect("host id")
        .0;
    let (ring, locations) = advertised_ring(&s1, 4).await;
    let placement = Placement::new(
        &ring,
        &locations,
        &Strategy::Simple {
            replication_factor: 3,
        },
    );
    let expected: BTreeMap<i32, Option<i32>> = (0..BEFORE)
        .map(|k| (k, (k % 10 != 0).then_some(k)))
        .chain(during.iter().map(|k| (*k, Some(*k))))
        .collect();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (k, want) in &expected {
        let token = Murmur3Partitioner::token(&k.to_be_bytes());
        if !placement.replicas(token).contains(&local) {
            continue;
        }
        checked += 1;
        let read = at("SELECT v FROM grow.t WHERE k = ?", Consistency::One);
        let rows = s4.query_unpaged(read, (*k,)).await.expect("read at ONE");
        let got = rows
            .into_rows_result()
            .expect("rows")
            .maybe_first_row::<(i32,)>()
            .expect("typed")
            .map(|r| r.0);
        if got != *want {
            wrong.push((*k, *want, got));
        }
    }
    assert!(
        wrong.is_empty(),
        "node 4 holds {} of {checked} partitions it replicates wrongly, e.g. (key, \
         expected, found) {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    assert!(
        checked > expected.len() / 2,
        "node 4 replicates only {checked} of {} partitions",
        expected.len()
    );
}
