//! Schema answers a new user checks first, through the `scylla` crate with default settings
//! (LOCAL_QUORUM): NetworkTopologyStrategy's `replication_factor` shorthand, and what a
//! dropped column leaves behind, with the replica cache answering in between.

use scylla::client::session::Session;
use scylla::statement::unprepared::Statement;

use super::node::{metric, TestNode};
use super::scylla_driver::connect;

async fn run(session: &Session, cql: &str) {
    session.query_unpaged(cql, &[]).await.expect(cql);
}

/// Every row of `cql` as (c, x) pairs of a table `(k int, c int, x int, ...)`.
async fn rows(session: &Session, cql: &str) -> Vec<(i32, Option<i32>)> {
    let result = session.query_unpaged(cql, &[]).await.expect(cql);
    let rows = result.into_rows_result().expect("rows");
    rows.rows::<(i32, Option<i32>)>()
        .expect("typed rows")
        .collect::<Result<Vec<_>, _>>()
        .expect("decode")
}

/// The form drivers' examples use works at the driver's default consistency: the keyspace
/// is stored with one entry per known data centre, so LOCAL_QUORUM finds its replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_topology_replication_factor_serves_default_consistency() {
    let node = TestNode::start();
    let session = connect(&node).await;
    run(
        &session,
        "CREATE KEYSPACE app WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 1}",
    )
    .await;
    run(
        &session,
        "CREATE TABLE app.t (k int, c int, x int, PRIMARY KEY (k, c))",
    )
    .await;
    run(&session, "INSERT INTO app.t (k, c, x) VALUES (1, 2, 3)").await;
    assert_eq!(
        rows(&session, "SELECT c, x FROM app.t WHERE k = 1").await,
        [(2, Some(3))]
    );
    let result = session
        .query_unpaged(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'app'",
            &[],
        )
        .await
        .expect("system_schema");
    let (replication,) = result
        .into_rows_result()
        .expect("rows")
        .single_row::<(std::collections::BTreeMap<String, String>,)>()
        .expect("one row");
    assert_eq!(
        replication,
        std::collections::BTreeMap::from([
            (
                "class".to_string(),
                "org.apache.cassandra.locator.NetworkTopologyStrategy".to_string()
            ),
            ("datacenter1".to_string(), "1".to_string()),
        ])
    );
    let unknown = session
        .query_unpaged(
            "CREATE KEYSPACE other WITH replication = {'class': 'NetworkTopologyStrategy', 'dc9': 1}",
            &[],
        )
        .await
        .expect_err("dc9 is not a data centre of this cluster");
    assert!(
        unknown.to_string().contains(
            "Unrecognized strategy option {dc9} passed to NetworkTopologyStrategy for keyspace other"
        ),
        "{unknown}"
    );
}

/// `ALTER TABLE DROP x` removes rows that lived only through `x` (an UPDATE-made row)
/// and keeps rows with a marker (an INSERT-made row); the read after the ALTER is served
/// from the entry filled before it (a cache hit) and still gives the new answer, because
/// entries hold the stored fragment and every read resolves it against the schema it runs
/// with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_column_drops_the_rows_it_kept_alive() {
    let node = TestNode::start();
    let session = connect(&node).await;
    run(
        &session,
        "CREATE KEYSPACE app WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    )
    .await;
    run(
        &session,
        "CREATE TABLE app.t (k int, c int, x int, y int, PRIMARY KEY (k, c)) WITH caching = {'keys': 'ALL', 'rows_per_partition': 'ALL'}",
    )
    .await;
    run(&session, "UPDATE app.t SET x = 1 WHERE k = 1 AND c = 1").await;
    run(&session, "INSERT INTO app.t (k, c, x) VALUES (1, 2, 2)").await;
    run(
        &session,
        "UPDATE app.t SET x = 3, y = 3 WHERE k = 1 AND c = 3",
    )
    .await;
    let select = "SELECT c, y FROM app.t WHERE k = 1";
    assert_eq!(
        rows(&session, select).await,
        [(1, None), (2, None), (3, Some(3))]
    );
    let hits = || metric(&node.scrape_metrics(), "ringcache_cache_hits_total").unwrap_or(0.0);
    let before = hits();
    run(&session, "ALTER TABLE app.t DROP x").await;
    assert_eq!(rows(&session, select).await, [(2, None), (3, Some(3))]);
    assert!(hits() > before, "the read after the ALTER was a cache hit");
}

/// `DROP x USING TIMESTAMP n` drops only what was written at or before n: after `ADD x`,
/// a value written after n is back (and its row with it), one written before is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_using_timestamp_keeps_later_writes_for_a_re_added_column() {
    let node = TestNode::start();
    let session = connect(&node).await;
    run(
        &session,
        "CREATE KEYSPACE app WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    )
    .await;
    run(
        &session,
        "CREATE TABLE app.t (k int, c int, x int, PRIMARY KEY (k, c))",
    )
    .await;
    run(
        &session,
        "UPDATE app.t USING TIMESTAMP 100 SET x = 1 WHERE k = 1 AND c = 1",
    )
    .await;
    run(
        &session,
        "UPDATE app.t USING TIMESTAMP 300 SET x = 3 WHERE k = 1 AND c = 3",
    )
    .await;
    run(&session, "ALTER TABLE app.t DROP x USING TIMESTAMP 200").await;
    let count = "SELECT c, k FROM app.t WHERE k = 1";
    assert!(
        rows(&session, count).await.is_empty(),
        "no column shows either value while x is dropped"
    );
    run(&session, "ALTER TABLE app.t ADD x int").await;
    assert_eq!(
        rows(&session, "SELECT c, x FROM app.t WHERE k = 1").await,
        [(3, Some(3))]
    );
    let mut describe = Statement::new("DESCRIBE TABLE app.t WITH INTERNALS");
    describe.set_page_size(100);
    let result = session
        .query_unpaged(describe, &[])
        .await
        .expect("describe");
    let rows = result.into_rows_result().expect("rows");
    let text: Vec<String> = rows
        .rows::<(String, String, String, String)>()
        .expect("typed")
        .map(|r| r.expect("decode").3)
        .collect();
    assert!(
        text[0].contains(
            "ALTER TABLE app.t DROP x USING TIMESTAMP 200;\nALTER TABLE app.t ADD x int;"
        ),
        "{}",
        text[0]
    );
}

/// A ScyllaDB user's schema script runs as written: keyspace `tablets`, table `cdc`,
/// `tombstone_gc`, `paxos_grace_seconds`, ScyllaDB's compaction class and compression
/// spelling; the table works and DESCRIBE echoes the options. ScyllaDB's
/// `caching = {'enabled': false}` is the one that acts here: its reads bypass the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scylla_schema_script_runs() {
    let node = TestNode::start();
    let session = connect(&node).await;
    run(
        &session,
        "CREATE KEYSPACE app WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 1} AND tablets = {'enabled': false}",
    )
    .await;
    run(
        &session,
        "CREATE TABLE app.t (k int, c int, x int, PRIMARY KEY (k, c)) WITH cdc = {'enabled': false} \
         AND tombstone_gc = {'mode': 'repair', 'propagation_delay_in_seconds': 120} \
         AND paxos_grace_seconds = 864000 AND compaction = {'class': 'IncrementalCompactionStrategy'} \
         AND compression = {'sstable_compression': 'LZ4Compressor'} AND caching = {'enabled': false}",
    )
    .await;
    run(&session, "INSERT INTO app.t (k, c, x) VALUES (1, 1, 1)").await;
    let select = "SELECT c, x FROM app.t WHERE k = 1";
    let bypassed =
        || metric(&node.scrape_metrics(), "ringcache_cache_bypassed_total").unwrap_or(0.0);
    let before = bypassed();
    assert_eq!(rows(&session, select).await, [(1, Some(1))]);
    assert!(
        bypassed() > before,
        "caching = {{'enabled': false}} bypasses the cache"
    );
    let result = session
        .query_unpaged("DESCRIBE KEYSPACE app", &[])
        .await
        .expect("describe");
    let text: Vec<String> = result
        .into_rows_result()
        .expect("rows")
        .rows::<(String, String, String, String)>()
        .expect("typed")
        .map(|r| r.expect("decode").3)
        .collect();
    assert!(
        text[0].ends_with("AND durable_writes = true AND tablets = {'enabled': false};"),
        "{}",
        text[0]
    );
    assert!(
        text[1].ends_with("    AND paxos_grace_seconds = 864000\n    AND tombstone_gc = {'mode': 'repair', 'propagation_delay_in_seconds': '120'};"),
        "{}",
        text[1]
    );
}

/// A list dropped and added again is empty to the writes that read it first (`l[i] = v`),
/// as to SELECT: the old elements are not indexed into.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_added_list_starts_empty_for_index_writes() {
    let node = TestNode::start();
    let session = connect(&node).await;
    run(
        &session,
        "CREATE KEYSPACE app WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    )
    .await;
    run(
        &session,
        "CREATE TABLE app.t (k int PRIMARY KEY, l list<int>)",
    )
    .await;
    run(&session, "INSERT INTO app.t (k, l) VALUES (1, [1, 2, 3])").await;
    run(&session, "ALTER TABLE app.t DROP l").await;
    run(&session, "ALTER TABLE app.t ADD l list<int>").await;
    let err = session
        .query_unpaged("UPDATE app.t SET l[0] = 9 WHERE k = 1", &[])
        .await
        .expect_err("the re-added list is empty");
    assert!(
        err.to_string()
            .contains("Attempted to set an element on a list which is null"),
        "{err}"
    );
}
