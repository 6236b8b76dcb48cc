//! Replicas converging after they missed writes: hinted handoff (a killed node catches up
//! from its peers' hints, and a node down longer than the hint window gets none), blocking
//! read repair (a stale replica is brought level by the QUORUM read that noticed it), and
//! the batchlog (a logged batch whose coordinator gave up after storing it is applied by
//! replay); and a TRUNCATE with hints pending, which none of them may undo.
//!
//! Each checks the replica that missed something through a session pinned to it, reading at
//! ONE — which that node answers from its own replica — so a coordinator that merely
//! answered from the others could not pass.

use scylla::client::session::Session;
use scylla::errors::DbError;
use scylla::frame::types::Consistency;

use super::availability::{at, RF3};
use super::{ClusterBuilder, TestCluster};
use crate::data_path::run;
use crate::node::{eventually, metric};

/// How many rows of `conv.t` (keys `0..n`) node `session` holds, read at ONE.
async fn rows_at_one(session: &Session, n: i32) -> usize {
    count_at_one(session, "conv.t", n).await
}

/// How many rows of `table` (`k int PRIMARY KEY`, keys `0..n`) node `session` holds, read
/// at ONE (which it answers from its own replica).
pub(super) async fn count_at_one(session: &Session, table: &str, n: i32) -> usize {
    let select = format!("SELECT k FROM {table} WHERE k = ?");
    let mut found = 0;
    for k in 0..n {
        let read = at(&select, Consistency::One);
        let rows = session
            .query_unpaged(read, (k,))
            .await
            .expect("read at ONE");
        found += rows.into_rows_result().expect("rows").rows_num();
    }
    found
}

/// Row 0's `v`, read through `session` at `consistency`.
async fn value_of(session: &Session, consistency: Consistency) -> i32 {
    let read = at("SELECT v FROM conv.t WHERE k = 0", consistency);
    let rows = session.query_unpaged(read, &[]).await.expect("read");
    let row = rows
        .into_rows_result()
        .expect("rows")
        .single_row::<(i32,)>();
    row.expect("row").0
}

async fn schema(session: &Session) {
    run(
        session,
        &[
            &format!("CREATE KEYSPACE conv WITH replication = {RF3}"),
            "CREATE TABLE conv.t (k int PRIMARY KEY, v int)",
        ],
    )
    .await;
}

/// Three nodes from `builder`, every one up, `conv.t` created; a session to node 1.
async fn three_nodes(builder: ClusterBuilder) -> (TestCluster, Session) {
    let cluster = builder.start();
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    schema(&s1).await;
    (cluster, s1)
}

/// [`three_nodes`], then node 3 killed and seen down by node 1.
async fn node_3_dead(builder: ClusterBuilder) -> (TestCluster, Session) {
    let (mut cluster, s1) = three_nodes(builder).await;
    cluster.kill9(3);
    cluster.wait_sees_down(1).await;
    (cluster, s1)
}

async fn write_rows(session: &Session, keys: std::ops::Range<i32>, consistency: Consistency) {
    for k in keys {
        let insert = at("INSERT INTO conv.t (k, v) VALUES (?, ?)", consistency);
        session.query_unpaged(insert, (k, k)).await.expect("write");
    }
}

/// `ringcache_hints_*` of node `i`: (pending for every target, stored, replayed, dropped).
pub(super) fn hints(cluster: &TestCluster, i: usize) -> (f64, f64, f64, f64) {
    let text = cluster.scrape_metrics(i);
    let pending = text
        .lines()
        .filter(|l| l.starts_with("ringcache_hints_pending{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let event =
        |e: &str| metric(&text, &format!("ringcache_hints_total{{event=\"{e}\"}}")).unwrap_or(0.0);
    (
        pending,
        event("stored"),
        event("replayed"),
        event("dropped"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_catches_up_from_hints_and_holds_every_write_alone() {
    let (mut cluster, s1) = three_nodes(ClusterBuilder::new(3)).await;
    cluster.kill9(3);
    // Writes at ONE while node 3 is dead: before and after its peers convict it.
    write_rows(&s1, 0..150, Consistency::One).await;
    cluster.wait_sees_down(1).await;
    // TRUNCATE needs every node (a replica that missed it would bring the rows back), so
    // with one down it is Unavailable at ALL, decided before anything is sent.
    let (err, _) = super::availability::fails(&s1, "TRUNCATE conv.t".into()).await;
    assert!(
        matches!(
            err,
            DbError::Unavailable {
                consistency: Consistency::All,
                required: 3,
                alive: 2
            }
        ),
        "{err:?}"
    );
    write_rows(&s1, 150..300, Consistency::One).await;
    let (pending, stored, _, _) = hints(&cluster, 1);
    assert!(
        pending >= 300.0 && stored >= 300.0,
        "hints for node 3: {pending} pending, {stored} stored"
    );

    cluster.restart(3);
    cluster.wait_all_up().await;
    eventually("node 1 has handed every hint to node 3", || {
        hints(&cluster, 1).0 == 0.0
    })
    .await;
    let (_, _, replayed, _) = hints(&cluster, 1);
    assert!(replayed >= 300.0, "{replayed} hints replayed");
    let s3 = cluster.session(3).await;
    assert_eq!(
        rows_at_one(&s3, 300).await,
        300,
        "node 3's own replica holds every write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hint_is_kept_for_a_node_down_longer_than_the_window() {
    let (mut cluster, s1) =
        node_3_dead(ClusterBuilder::new(3).env("RINGCACHE_MAX_HINT_WINDOW_MS", "200")).await;
    // Writes are hinted until node 1 has seen node 3 down for the window: the first one that
    // is dropped instead marks the window's end.
    let deadline = std::time::Instant::now() + crate::node::EVENT_TIMEOUT;
    let mut key = 1000;
    loop {
        let dropped = hints(&cluster, 1).3;
        write_rows(&s1, key..key + 1, Consistency::One).await;
        key += 1;
        if hints(&cluster, 1).3 > dropped {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "writes were hinted forever"
        );
    }
    let before = hints(&cluster, 1);
    write_rows(&s1, 0..20, Consistency::One).await;
    let (pending, stored, _, dropped) = hints(&cluster, 1);
    assert_eq!(stored, before.1, "no hint stored past the window");
    assert_eq!(pending, before.0);
    assert_eq!(dropped, before.3 + 20.0, "each hint not kept is counted");

    // Node 1 says node 3 needs a repair, until one of every table ran; so does node 3
    // itself once back, having been down longer than the window (it last recorded being
    // alive before it was killed); node 2, never down, says neither.
    let ip3 = cluster.ip(3).to_string();
    assert_eq!(needs_repair(&cluster, 1), vec![ip3.clone()]);
    cluster.restart(3);
    cluster.wait_all_up().await;
    let own = needs_repair(&cluster, 3);
    assert!(
        matches!(own.as_slice(), [only] if only.starts_with(&format!("this node ({ip3}, down "))),
        "node 3's own status: {own:?}"
    );
    assert!(needs_repair(&cluster, 2).is_empty());
    let (ok, out, err) = super::repair::repair_cli(&cluster, 1, &[]);
    assert!(ok, "repair: {err}{out}");
    assert!(needs_repair(&cluster, 1).is_empty());
    assert!(
        needs_repair(&cluster, 3).is_empty(),
        "a repair of every table reached node 3"
    );
}

/// `ringcache status --json` of node `i`: the nodes it says need a repair.
fn needs_repair(cluster: &TestCluster, i: usize) -> Vec<String> {
    cluster.status(i, None).needs_repair
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_read_repairs_the_stale_replica_it_read() {
    // No hints: node 3 must stay stale until a read repairs it.
    let (cluster, s1) =
        three_nodes(ClusterBuilder::new(3).env("RINGCACHE_HINTED_HANDOFF_ENABLED", "false")).await;
    write_rows(&s1, 0..1, Consistency::All).await;
    // At TWO, so nodes 1 and 2 both hold it when it is acknowledged (at ONE, node 2 could
    // still be applying it when node 3's QUORUM read asks it, and both would say 0).
    cluster.cut(1, 3);
    let update = at("UPDATE conv.t SET v = 42 WHERE k = 0", Consistency::Two);
    s1.query_unpaged(update, &[]).await.expect("write at TWO");
    cluster.heal(1, 3);
    let s3 = cluster.session(3).await;
    assert_eq!(
        value_of(&s3, Consistency::One).await,
        0,
        "node 3 missed the update"
    );
    // Node 3 coordinates at QUORUM: its own replica and one other, which disagree.
    assert_eq!(
        value_of(&s3, Consistency::Quorum).await,
        42,
        "the newest value wins"
    );
    assert_eq!(
        value_of(&s3, Consistency::One).await,
        42,
        "and node 3's replica was repaired"
    );
    let series = "ringcache_read_repair_writes_total{keyspace=\"conv\",table=\"t\"}";
    let repairs = metric(&cluster.scrape_metrics(3), series);
    assert!(
        repairs.unwrap_or(0.0) >= 1.0,
        "the repair is counted for its table: {repairs:?}"
    );

    // With read_repair = 'NONE' the read still answers the newest value, and repairs
    // nobody: node 3 stays stale, and nothing more is counted.
    s1.query_unpaged("ALTER TABLE conv.t WITH read_repair = 'NONE'", &[])
        .await
        .expect("read_repair NONE");
    cluster.cut(1, 3);
    let update = at("UPDATE conv.t SET v = 43 WHERE k = 0", Consistency::Two);
    s1.query_unpaged(update, &[]).await.expect("write at TWO");
    cluster.heal(1, 3);
    assert_eq!(value_of(&s3, Consistency::Quorum).await, 43);
    assert_eq!(
        value_of(&s3, Consistency::One).await,
        42,
        "read_repair NONE left node 3 as it was"
    );
    assert_eq!(metric(&cluster.scrape_metrics(3), series), repairs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_batch_abandoned_after_it_was_stored_is_applied_by_replay() {
    // Node 1 stores each logged batch in the batchlog and then gives up, as if it died.
    let cluster = ClusterBuilder::new(3)
        .node_env(1, "RINGCACHE_FAULTS__ABANDON_LOGGED_BATCHES", "true")
        .start();
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[
            "CREATE KEYSPACE conv WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            "CREATE TABLE conv.t (k int PRIMARY KEY, v int)",
        ],
    )
    .await;
    let inserts: String = (0..30)
        .map(|k| format!("INSERT INTO conv.t (k, v) VALUES ({k}, {k}); "))
        .collect();
    let batch = format!("BEGIN BATCH {inserts} APPLY BATCH");
    let abandoned = s1.query_unpaged(at(&batch, Consistency::One), &[]).await;
    assert!(abandoned.is_err(), "the coordinator gave up: {abandoned:?}");
    let s2 = cluster.session(2).await;
    let deadline = std::time::Instant::now() + crate::node::EVENT_TIMEOUT;
    loop {
        let read = at("SELECT k FROM conv.t", Consistency::One);
        let rows = s2.query_unpaged(read, &[]).await.expect("scan");
        if rows.into_rows_result().expect("rows").rows_num() == 30 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the batch was never replayed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_with_hints_pending_brings_nothing_back() {
    // Replayed at 1 KiB/s, so hints are still pending when the TRUNCATE comes.
    let (mut cluster, s1) =
        node_3_dead(ClusterBuilder::new(3).env("RINGCACHE_HINTED_HANDOFF_THROTTLE_KB", "1")).await;
    write_rows(&s1, 0..300, Consistency::One).await;
    cluster.restart(3);
    cluster.wait_all_up().await;
    s1.query_unpaged("TRUNCATE conv.t", &[])
        .await
        .expect("TRUNCATE with every node up");
    let (pending, _, _, _) = hints(&cluster, 1);
    assert!(pending > 0.0, "no hint was pending at the TRUNCATE");
    eventually("node 1 has no hint pending", || hints(&cluster, 1).0 == 0.0).await;
    let s3 = cluster.session(3).await;
    assert_eq!(
        rows_at_one(&s3, 300).await,
        0,
        "node 3 got truncated rows back from hints"
    );
    // (Other hints pending then, for the harness's own keyspace, were delivered.)
    let (_, _, _, dropped) = hints(&cluster, 1);
    assert!(
        dropped > 0.0,
        "no hint was dropped ({pending} were pending)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_outlive_a_restart_of_their_holder_within_their_space() {
    // Node 1 may keep 8 KiB of hints per target: a few dozen of these writes.
    let builder = ClusterBuilder::new(3).node_env(1, "RINGCACHE_MAX_HINTS_BYTES", "8192");
    let (mut cluster, s1) = node_3_dead(builder).await;
    // (Node 1 may already hold hints for node 3: probe writes it made before it convicted it.)
    let before = hints(&cluster, 1);
    write_rows(&s1, 0..200, Consistency::One).await;
    let (pending, stored, _, dropped) = hints(&cluster, 1);
    let (stored, dropped) = (stored - before.1, dropped - before.3);
    assert!(
        stored > 0.0 && dropped > 0.0 && stored + dropped == 200.0,
        "{stored} stored, {dropped} dropped past max_hints_bytes"
    );
    assert_eq!(pending, before.0 + stored);
    // Hints it could not keep make node 3 need a repair, and node 1 says so.
    let ip3 = cluster.ip(3).to_string();
    assert_eq!(cluster.status(1, None).needs_repair, vec![ip3]);

    // The holder crashes and comes back: its hints are still there.
    cluster.restart(1);
    assert_eq!(
        hints(&cluster, 1).0,
        pending,
        "hints kept across node 1's restart"
    );

    // Node 3 comes back and gets exactly the writes whose hints were kept.
    cluster.restart(3);
    cluster.wait_all_up().await;
    eventually("node 1 has handed its hints to node 3", || {
        hints(&cluster, 1).0 == 0.0
    })
    .await;
    assert_eq!(
        hints(&cluster, 1).2,
        pending,
        "every kept hint replayed once"
    );
    let s3 = cluster.session(3).await;
    assert_eq!(rows_at_one(&s3, 200).await, stored as usize);
}
