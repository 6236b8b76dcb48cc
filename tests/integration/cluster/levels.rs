//! Every consistency level end to end, with Cassandra's counts, on three nodes in two data
//! centres (nodes 1 and 2 in dc1, node 3 in dc2) and a keyspace with two replicas in dc1
//! and one in dc2 (N = 3): with every node up each level answers; with node 2 dead THREE,
//! ALL, LOCAL_QUORUM (in dc1) and EACH_QUORUM are `Unavailable` with the required and alive
//! counts Cassandra reports, while ONE, TWO, QUORUM, LOCAL_ONE and LOCAL_QUORUM in dc2 still
//! answer; with nodes 2 and 3 dead TWO and QUORUM are refused too. ANY acknowledges a write
//! whose only replica is dead (a hint), which the replica holds once it is back; reads at
//! ANY are refused as Cassandra refuses them.

use scylla::client::session::Session;
use scylla::errors::DbError;
use scylla::frame::types::Consistency;

use super::availability::{at, fails};
use super::{until_unavailable, ClusterBuilder, TestCluster};
use crate::data_path::run;
use crate::node::EVENT_TIMEOUT;

/// Two replicas in dc1 (nodes 1 and 2), one in dc2 (node 3).
const NTS21: &str = "{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 1}";
/// The one replica on node 3.
const DC2_ONLY: &str = "{'class': 'NetworkTopologyStrategy', 'dc2': 1}";

const WRITE: &str = "INSERT INTO lv.t (k, v) VALUES (1, 1)";
const READ: &str = "SELECT v FROM lv.t WHERE k = 1";

/// Every level a write may use, in Cassandra's wire order.
const WRITE_LEVELS: [Consistency; 9] = [
    Consistency::Any,
    Consistency::One,
    Consistency::Two,
    Consistency::Three,
    Consistency::Quorum,
    Consistency::All,
    Consistency::LocalQuorum,
    Consistency::EachQuorum,
    Consistency::LocalOne,
];

async fn ok(session: &Session, cql: &str, level: Consistency) {
    if let Err(e) = session.query_unpaged(at(cql, level), &[]).await {
        panic!("{cql} at {level:?}: {e}");
    }
}

/// Asserts `cql` at `level` is refused with `Unavailable { required, alive }`.
async fn unavailable(session: &Session, cql: &str, level: Consistency, required: i32, alive: i32) {
    let (err, _) = fails(session, at(cql, level)).await;
    let expected = DbError::Unavailable {
        consistency: level,
        required,
        alive,
    };
    assert_eq!(err, expected, "{cql} at {level:?}");
}

fn two_dcs() -> TestCluster {
    ClusterBuilder::new(3)
        .node_env(1, "RINGCACHE_DATA_CENTER", "dc1")
        .node_env(2, "RINGCACHE_DATA_CENTER", "dc1")
        .node_env(3, "RINGCACHE_DATA_CENTER", "dc2")
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_level_counts_replicas_as_cassandra_does() {
    let mut cluster = two_dcs();
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    let s3 = cluster.session(3).await;
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE lv WITH replication = {NTS21}"),
            "CREATE TABLE lv.t (k int PRIMARY KEY, v int)",
            &format!("CREATE KEYSPACE lv2 WITH replication = {DC2_ONLY}"),
            "CREATE TABLE lv2.t (k int PRIMARY KEY, v int)",
        ],
    )
    .await;

    // Every node up: every level answers, reads at every level but ANY.
    for level in WRITE_LEVELS {
        ok(&s1, WRITE, level).await;
        if level != Consistency::Any {
            ok(&s1, READ, level).await;
        }
    }
    let (err, _) = fails(&s1, at(READ, Consistency::Any)).await;
    assert!(matches!(err, DbError::Invalid), "a read at ANY: {err:?}");
    // dc1 holds no replica of lv2: a LOCAL level through node 1 has none alive.
    unavailable(
        &s1,
        "INSERT INTO lv2.t (k, v) VALUES (1, 1)",
        Consistency::LocalOne,
        1,
        0,
    )
    .await;

    // Node 2 (dc1) dead: alive are node 1 (dc1) and node 3 (dc2).
    cluster.kill9(2);
    until_unavailable(&s1, WRITE, Consistency::All).await;
    for (level, required, alive) in [
        (Consistency::Three, 3, 2),
        (Consistency::All, 3, 2),
        (Consistency::LocalQuorum, 2, 1),
        // The first data centre short of its quorum: dc1 needs 2 and has 1.
        (Consistency::EachQuorum, 2, 1),
    ] {
        unavailable(&s1, WRITE, level, required, alive).await;
        unavailable(&s1, READ, level, required, alive).await;
    }
    for level in [
        Consistency::One,
        Consistency::Two,
        Consistency::Quorum,
        Consistency::LocalOne,
    ] {
        ok(&s1, WRITE, level).await;
        ok(&s1, READ, level).await;
    }
    ok(&s1, WRITE, Consistency::Any).await;
    // Through node 3, LOCAL means dc2, whose one replica is alive.
    until_unavailable(&s3, WRITE, Consistency::All).await;
    ok(&s3, WRITE, Consistency::LocalQuorum).await;
    ok(&s3, READ, Consistency::LocalQuorum).await;

    // Nodes 2 and 3 dead: only node 1 is alive.
    cluster.kill9(3);
    until_unavailable(&s1, WRITE, Consistency::Two).await;
    for (level, required, alive) in [(Consistency::Two, 2, 1), (Consistency::Quorum, 2, 1)] {
        unavailable(&s1, WRITE, level, required, alive).await;
        unavailable(&s1, READ, level, required, alive).await;
    }
    ok(&s1, WRITE, Consistency::One).await;
    ok(&s1, READ, Consistency::LocalOne).await;

    // ANY: lv2's only replica (node 3) is dead; ONE is refused, ANY is acknowledged with a
    // hint, which node 3 holds once it is back.
    let hinted = "INSERT INTO lv2.t (k, v) VALUES (7, 70)";
    unavailable(&s1, hinted, Consistency::One, 1, 0).await;
    ok(&s1, hinted, Consistency::Any).await;
    cluster.restart(3);
    let s3 = cluster.session(3).await;
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        let read = at("SELECT v FROM lv2.t WHERE k = 7", Consistency::One);
        let row = s3
            .query_unpaged(read, &[])
            .await
            .ok()
            .and_then(|r| r.into_rows_result().ok())
            .and_then(|r| r.maybe_first_row::<(i32,)>().ok().flatten());
        if row == Some((70,)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node 3 never got the write made at ANY: {row:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
