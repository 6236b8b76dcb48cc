//! Replacing a dead node (`replace_address`) under writes. Three nodes at RF 3; a fourth
//! node asked to replace a live one refuses to start, saying why. Node 3 is killed; node 4
//! started with `--replace-address` of node 3 takes node 3's tokens, takes the QUORUM
//! writes made meanwhile as a pending replica, streams node 3's data (deletes included)
//! from nodes 1 and 2 — `UJ` in node 1's status and "Streaming" in its own meanwhile — and
//! becomes NORMAL; then node 3 is gone everywhere — from `ringcache
//! status` (ownership summing to RF), `system.peers`, the metadata log's voters — drivers got
//! REMOVED_NODE for it and NEW_NODE for node 4, and the hints held for it are dropped.
//! Afterwards node 4 holds every acknowledged write and no deleted row, read at ONE through
//! node 4 (every partition has a replica there: it answers from its own store). Node 3
//! started again on its old data directory finds itself replaced and stops, for good.

use std::collections::HashSet;
use std::sync::Arc;

use scylla::frame::types::Consistency;

use super::availability::{at, missing_from, prepare_at, summary, wait_for_acks, writer, RF3};
use super::convergence::hints;
use super::{events, expect_events, ClusterBuilder};
use crate::data_path::run;
use crate::node::{eventually, ReadGate};

/// Rows written before node 3 dies, as writer -1 (every tenth is deleted).
const BEFORE: i32 = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_replaced_by_one_that_takes_its_tokens_and_data() {
    // Node 2's partition reads wait at a gate until the test has seen the replacement
    // stream (which reads whole partitions from every live replica) in progress.
    let gate = ReadGate::closed();
    let (gate_key, gate_path) = gate.env();
    let mut cluster = ClusterBuilder::new(4)
        .start_only(3)
        .node_env(2, gate_key, &gate_path)
        .start();
    cluster.wait_all_up().await;
    let s1 = Arc::new(cluster.session(1).await);
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE rp WITH replication = {RF3}"),
            "CREATE TABLE rp.t (w int, s int, v int, PRIMARY KEY ((w, s)))",
        ],
    )
    .await;
    let insert = prepare_at(
        &s1,
        "INSERT INTO rp.t (w, s, v) VALUES (?, ?, ?)",
        Consistency::Quorum,
    )
    .await;
    for s in 0..BEFORE {
        s1.execute_unpaged(&insert, (-1, s, -1_000_000 + s))
            .await
            .expect("insert");
    }
    let delete = prepare_at(
        &s1,
        "DELETE FROM rp.t WHERE w = ? AND s = ?",
        Consistency::Quorum,
    )
    .await;
    for s in (0..BEFORE).step_by(10) {
        s1.execute_unpaged(&delete, (-1, s)).await.expect("delete");
    }
    let (old_tokens, old_host_id): (Vec<String>, uuid::Uuid) = s1
        .query_unpaged(
            "SELECT tokens, host_id FROM system.peers WHERE peer = ?",
            (std::net::IpAddr::from(cluster.ip(3)),),
        )
        .await
        .expect("node 3's row")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("one row");
    let topology = events(cluster.cql(1), &["TOPOLOGY_CHANGE"]);

    // Replacing a live node is refused before anything is recorded.
    cluster.set_env(4, "RINGCACHE_REPLACE_ADDRESS", &cluster.ip(2).to_string());
    let refused = cluster.start_expecting_exit(4);
    assert!(!refused.success(), "node 4 replaced a live node");
    let log = cluster.log(4);
    assert!(
        log.contains("is up: only a dead node can be replaced"),
        "{}",
        cluster.log_tail(4, 20)
    );
    assert!(
        !cluster.data_dir(4).join("node.json").exists(),
        "a refused replacement created an identity"
    );

    cluster.kill9(3);
    for i in [1, 2] {
        cluster.wait_sees_down(i).await;
    }
    // Writers at QUORUM through nodes 1 and 2 for the whole replacement: node 1 stores
    // hints for node 3 meanwhile.
    let s2 = Arc::new(cluster.session(2).await);
    let acked = Arc::default();
    let mut writers = Vec::new();
    for (id, session) in [&s1, &s2].into_iter().enumerate() {
        let insert = prepare_at(
            session,
            "INSERT INTO rp.t (w, s, v) VALUES (?, ?, ?)",
            Consistency::Quorum,
        )
        .await;
        writers.push(writer(
            session.clone(),
            insert,
            id as i32,
            Arc::clone(&acked),
        ));
    }
    wait_for_acks(&acked, 200).await;
    assert!(hints(&cluster, 1).0 > 0.0, "node 1 holds hints for node 3");

    cluster.set_env(4, "RINGCACHE_REPLACE_ADDRESS", &cluster.ip(3).to_string());
    cluster.restart(4);
    eventually(
        "node 4 is UJ on node 1 and streaming in its own status",
        || cluster.shows_streaming(1, 4, "Joining"),
    )
    .await;
    gate.release(1 << 40);
    eventually(
        "node 1 lists nodes 1, 2 and 4 up and NORMAL, and not node 3",
        || cluster.lists_exactly(1, &[1, 2, 4]),
    )
    .await;
    let at_normal = acked.lock().unwrap().len();
    wait_for_acks(&acked, at_normal + 200).await;
    let mut failed = 0;
    for w in writers {
        failed += w.stop().await;
    }
    let acked: Vec<(i32, i32)> = acked.lock().unwrap().clone();
    println!(
        "{} writes acknowledged during the replacement ({at_normal} before node 4 was NORMAL), {failed} failed",
        acked.len()
    );
    expect_events(
        &topology,
        &[
            ("REMOVED_NODE", cluster.cql(3)),
            ("NEW_NODE", cluster.cql(4)),
        ],
    );
    for i in [2, 4] {
        assert!(cluster.lists_exactly(i, &[1, 2, 4]), "node {i}'s status");
    }
    let peers: Vec<(std::net::IpAddr,)> = s1
        .query_unpaged("SELECT peer FROM system.peers", &[])
        .await
        .expect("peers")
        .into_rows_result()
        .expect("rows")
        .rows()
        .expect("typed")
        .collect::<Result<_, _>>()
        .expect("peer rows");
    let mut peers: Vec<String> = peers.into_iter().map(|(p,)| p.to_string()).collect();
    peers.sort();
    assert_eq!(
        peers,
        [cluster.ip(2).to_string(), cluster.ip(4).to_string()],
        "node 1's system.peers"
    );
    let status = cluster.status(1, Some("rp"));
    let owns: f64 = status.nodes.iter().filter_map(|n| n.owns).sum();
    assert!((owns - 3.0).abs() < 1e-6, "RF 3 ownership sums to {owns}");
    eventually("node 3 is out of the metadata group", || {
        cluster.status(1, None).metadata.voters == 3
    })
    .await;
    eventually("the hints for node 3 are dropped", || {
        hints(&cluster, 1).0 == 0.0
    })
    .await;

    // Node 4 is node 3's successor: its tokens, a new host id.
    let s4 = cluster.session(4).await;
    let (tokens, host_id): (Vec<String>, uuid::Uuid) = s4
        .query_unpaged("SELECT tokens, host_id FROM system.local", &[])
        .await
        .expect("local")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("one row");
    let as_set = |t: &[String]| t.iter().cloned().collect::<HashSet<_>>();
    assert_eq!(as_set(&tokens), as_set(&old_tokens));
    assert_ne!(host_id, old_host_id);

    // Everything, from node 4's own store.
    let before: Vec<(i32, i32)> = (0..BEFORE)
        .filter(|s| s % 10 != 0)
        .map(|s| (-1, s))
        .collect();
    let mut missing = missing_from(&s4, "rp.t", Consistency::One, &before).await;
    missing.extend(missing_from(&s4, "rp.t", Consistency::One, &acked).await);
    assert!(missing.is_empty(), "node 4 lacks {}", summary(&missing));
    for s in (0..BEFORE).step_by(10) {
        let read = at(
            &format!("SELECT v FROM rp.t WHERE w = -1 AND s = {s}"),
            Consistency::One,
        );
        let rows = s4.query_unpaged(read, &[]).await.expect("read");
        let rows = rows.into_rows_result().expect("rows").rows_num();
        assert_eq!(rows, 0, "deleted row (-1, {s}) is back on node 4");
    }

    // Node 3 started again on its old data directory learns that it was replaced and
    // stops, for good; the cluster is unchanged.
    cluster.start_expecting_exit(3);
    assert!(
        cluster
            .log(3)
            .contains("this node was replaced while it was down"),
        "{}",
        cluster.log_tail(3, 20)
    );
    cluster.start_expecting_exit(3);
    assert!(
        cluster.log(3).contains(&format!(
            "this node left its cluster (it was replaced by {host_id})"
        )),
        "{}",
        cluster.log_tail(3, 20)
    );
    assert!(cluster.lists_exactly(1, &[1, 2, 4]));
}
