//! Merkle anti-entropy repair (`ringcache repair`) on three nodes at RF 3.
//!
//! Node 3 is cut off from the others and both sides take different writes at ONE — the
//! same cells with different timestamps, rows and partitions deleted on one side only, new
//! partitions on one side only — with hints off and read repair off, so nothing but the
//! repair can bring them together. After the links heal, `ringcache repair` through node 1
//! must leave each node, read alone (at ONE through a session pinned to it, which answers
//! from its own replica), holding the last-write-wins winner of every cell and none of the
//! deleted rows; a second repair must find every Merkle tree equal; and the repair writes
//! must stay within twice the bytes written on one side only. With a node down, repair
//! refuses and names it, unless forced. A replica that missed a TRUNCATE (its links cut)
//! spreads none of its old rows, by read repair or by repair.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringcache::metrics::status::RepairReport;
use scylla::client::session::Session;
use scylla::frame::types::Consistency;

use super::availability::{at, RF3};
use super::{ClusterBuilder, TestCluster};
use crate::data_path::run;
use crate::node::{eventually, metric};

/// Base rows: keys `0..100`, clusterings `0..3`.
const KEYS: i32 = 100;
/// Partitions written on node 3's side only.
const NEW: std::ops::Range<i32> = 100..110;

fn pad(tag: &str) -> String {
    format!("{tag}:{}", "x".repeat(300))
}

/// One side's write during the partition: the CQL, and the bytes it carries (key,
/// clustering, value, timestamp), which only that side holds until repaired.
struct SideWrite {
    cql: String,
    bytes: usize,
}

fn update(k: i32, c: i32, value: &str, ts: i64) -> SideWrite {
    SideWrite {
        cql: format!(
            "UPDATE rep.t USING TIMESTAMP {ts} SET v = '{value}' WHERE k = {k} AND c = {c}"
        ),
        bytes: 4 + 4 + value.len() + 8,
    }
}

fn delete_row(k: i32, c: i32, ts: i64) -> SideWrite {
    SideWrite {
        cql: format!("DELETE FROM rep.t USING TIMESTAMP {ts} WHERE k = {k} AND c = {c}"),
        bytes: 4 + 4 + 8,
    }
}

fn delete_partition(k: i32, ts: i64) -> SideWrite {
    SideWrite {
        cql: format!("DELETE FROM rep.t USING TIMESTAMP {ts} WHERE k = {k}"),
        bytes: 4 + 8,
    }
}

/// Every row of the table: `(k, c) → v`.
type Rows = BTreeMap<(i32, i32), String>;

/// Node 1's side (nodes 1 and 2) and node 3's side, and what every node must hold after
/// the repair.
fn plan() -> (Vec<SideWrite>, Vec<SideWrite>, Rows) {
    let mut expected = BTreeMap::new();
    for k in 0..KEYS {
        for c in 0..3 {
            expected.insert((k, c), pad(&format!("base{k}.{c}")));
        }
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    // The same cells on both sides for keys 20..40: odd keys' newer write is A's (3000 >
    // 2500), even keys' is B's (2500 > 2000).
    for k in 0..40 {
        let ts = if k % 2 == 0 { 2000 } else { 3000 };
        let value = pad(&format!("A{k}"));
        a.push(update(k, 0, &value, ts));
        expected.insert((k, 0), value);
    }
    for k in 20..60 {
        let value = pad(&format!("B{k}"));
        b.push(update(k, 0, &value, 2500));
        if k >= 40 || k % 2 == 0 {
            expected.insert((k, 0), value);
        }
    }
    for k in 60..70 {
        a.push(delete_row(k, 1, 4000));
        expected.remove(&(k, 1));
    }
    for k in 70..75 {
        b.push(delete_partition(k, 4000));
        for c in 0..3 {
            expected.remove(&(k, c));
        }
    }
    for k in NEW {
        let value = pad(&format!("new{k}"));
        b.push(update(k, 0, &value, 2500));
        expected.insert((k, 0), value);
    }
    (a, b, expected)
}

/// Every row of `rep.t` node `session` holds, read at ONE partition by partition.
async fn rows_at_one(session: &Session) -> Rows {
    let mut rows = BTreeMap::new();
    for k in 0..NEW.end {
        let read = at("SELECT c, v FROM rep.t WHERE k = ?", Consistency::One);
        let result = session
            .query_unpaged(read, (k,))
            .await
            .expect("read at ONE");
        for row in result
            .into_rows_result()
            .expect("rows")
            .rows::<(i32, String)>()
            .expect("typed rows")
        {
            let (c, v) = row.expect("row");
            rows.insert((k, c), v);
        }
    }
    rows
}

/// `ringcache repair <args>` against node `i`: exit success, stdout, stderr. Killed after
/// two minutes.
pub(super) fn repair_cli(cluster: &TestCluster, i: usize, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("repair")
        .args(["-H", &cluster.metrics(i).to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ringcache repair starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("repair's status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ringcache repair did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("repair's output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn repair_json(cluster: &TestCluster, i: usize, args: &[&str]) -> RepairReport {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = repair_cli(cluster, i, &all);
    assert!(ok, "repair failed: {err}{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("repair's JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_after_a_partition_leaves_every_replica_with_the_newest_and_nothing_deleted() {
    let mut cluster = ClusterBuilder::new(3)
        .env("RINGCACHE_HINTED_HANDOFF_ENABLED", "false")
        .env("RINGCACHE_REPAIR_REQUEST_TIMEOUT_MS", "20000")
        .start();
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE rep WITH replication = {RF3}"),
            "CREATE TABLE rep.t (k int, c int, v text, PRIMARY KEY (k, c)) \
             WITH read_repair = 'NONE'",
        ],
    )
    .await;
    for k in 0..KEYS {
        for c in 0..3 {
            let insert = at(
                "INSERT INTO rep.t (k, c, v) VALUES (?, ?, ?) USING TIMESTAMP 1000",
                Consistency::All,
            );
            let value = pad(&format!("base{k}.{c}"));
            s1.query_unpaged(insert, (k, c, value))
                .await
                .expect("base write at ALL");
        }
    }
    let s3 = cluster.session(3).await;

    // Node 3 alone on one side; each side writes at ONE through its own node.
    cluster.cut(1, 3);
    cluster.cut(2, 3);
    let (side_a, side_b, expected) = plan();
    for (session, writes) in [(&s1, &side_a), (&s3, &side_b)] {
        for write in writes {
            session
                .query_unpaged(at(&write.cql, Consistency::One), &[])
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", write.cql));
        }
    }
    cluster.heal(1, 3);
    cluster.heal(2, 3);
    cluster.wait_all_up().await;
    let s2 = cluster.session(2).await;
    let sessions = [&s1, &s2, &s3];
    let before = [rows_at_one(&s1).await, rows_at_one(&s3).await];
    assert_ne!(before[0], before[1], "the two sides diverged");
    assert_ne!(before[0], expected, "node 1 lacks node 3's side");

    let report = repair_json(&cluster, 1, &["rep.t"]);
    let divergent: usize = side_a.iter().chain(&side_b).map(|w| w.bytes).sum();
    println!(
        "repair: {} spans, {} of {} leaves mismatched, {} of {} partitions repaired, \
         {} bytes streamed for {divergent} bytes written on one side only ({:.2}x), \
         {} bytes read to compare, {:.2} s",
        report.spans_done,
        report.leaves_mismatched,
        report.leaves_compared,
        report.partitions_repaired,
        report.partitions_compared,
        report.bytes_streamed,
        report.bytes_streamed as f64 / divergent as f64,
        report.bytes_compared,
        report.elapsed_secs
    );
    assert_eq!(report.state, "succeeded");
    assert_eq!(report.spans_done, report.spans_total);
    assert!(report.partitions_repaired > 0);
    assert!(
        report.bytes_streamed <= 2 * divergent as u64,
        "{} bytes streamed for {divergent} divergent",
        report.bytes_streamed
    );

    for (i, session) in sessions.iter().enumerate() {
        let held = rows_at_one(session).await;
        let wrong: Vec<_> = expected
            .iter()
            .filter(|(key, v)| held.get(key) != Some(v))
            .map(|(key, _)| key)
            .collect();
        let resurrected: Vec<_> = held.keys().filter(|k| !expected.contains_key(k)).collect();
        assert!(
            wrong.is_empty() && resurrected.is_empty(),
            "node {}: wrong or missing {wrong:?}, deleted but present {resurrected:?}",
            i + 1
        );
    }
    let again = repair_json(&cluster, 2, &["rep"]);
    assert_eq!(
        (again.leaves_mismatched, again.partitions_repaired),
        (0, 0),
        "a second repair finds every replica's Merkle tree equal"
    );
    let metrics = cluster.scrape_metrics(1);
    assert!(
        metrics.contains(
            "ringcache_repair_last_success_timestamp_seconds{keyspace=\"rep\",table=\"t\"}"
        ),
        "{metrics}"
    );

    // A replica down: refused, and named; forced, repaired among the live ones.
    cluster.kill9(3);
    cluster.wait_sees_down(1).await;
    let (ok, _, err) = repair_cli(&cluster, 1, &["rep"]);
    assert!(!ok, "repair ran with a replica down");
    assert!(
        err.contains("down") && err.contains(&cluster.ip(3).to_string()),
        "{err}"
    );
    let forced = repair_json(&cluster, 1, &["rep", "--force"]);
    assert_eq!(forced.left_out, vec![cluster.ip(3).to_string()]);
    assert_eq!(forced.state, "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_worker_repairs_a_table_nobody_asked_to_repair() {
    let cluster = ClusterBuilder::new(2)
        .env("RINGCACHE_HINTED_HANDOFF_ENABLED", "false")
        .env("RINGCACHE_REPAIR_INTERVAL_MS", "2000")
        .start();
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[
            "CREATE KEYSPACE sched WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 2}",
            "CREATE TABLE sched.t (k int PRIMARY KEY, v int) WITH read_repair = 'NONE'",
        ],
    )
    .await;
    // Written on node 2 alone while the link is cut: only a repair can take it to node 1.
    let s2 = cluster.session(2).await;
    cluster.cut(1, 2);
    s2.query_unpaged(
        at("INSERT INTO sched.t (k, v) VALUES (1, 1)", Consistency::One),
        &[],
    )
    .await
    .expect("write at ONE on node 2");
    cluster.heal(1, 2);
    cluster.wait_all_up().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let read = at("SELECT v FROM sched.t WHERE k = 1", Consistency::One);
        let rows = s1.query_unpaged(read, &[]).await.expect("read at ONE");
        if rows.into_rows_result().expect("rows").rows_num() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled repair brought the row to node 1"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The row can arrive before the repair's last span is done: its success follows.
    let repaired =
        "ringcache_repair_last_success_timestamp_seconds{keyspace=\"sched\",table=\"t\"}";
    loop {
        let metrics = format!("{}{}", cluster.scrape_metrics(1), cluster.scrape_metrics(2));
        if metrics.contains(repaired) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled repair of sched.t succeeded: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_past_gc_grace_is_kept_until_a_repair_has_reached_every_replica() {
    let mut cluster = ClusterBuilder::new(3)
        .env("RINGCACHE_HINTED_HANDOFF_ENABLED", "false")
        .env("RINGCACHE_STORAGE__PURGE_INTERVAL_SECS", "1")
        .start();
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE gc WITH replication = {RF3}"),
            "CREATE TABLE gc.t (k int PRIMARY KEY, v int) \
             WITH gc_grace_seconds = 1 AND read_repair = 'NONE'",
        ],
    )
    .await;
    s1.query_unpaged(
        at("INSERT INTO gc.t (k, v) VALUES (1, 1)", Consistency::All),
        &[],
    )
    .await
    .expect("write at ALL");
    // Node 3 misses the deletion; nodes 1 and 2 hold its tombstone.
    cluster.kill9(3);
    cluster.wait_sees_down(1).await;
    s1.query_unpaged(at("DELETE FROM gc.t WHERE k = 1", Consistency::Quorum), &[])
        .await
        .expect("delete at QUORUM");
    // Purge passes that start after the tombstone's gc_grace has passed, on both nodes.
    let deleted = Instant::now();
    eventually("gc_grace_seconds passed", || {
        deleted.elapsed() > Duration::from_secs(2)
    })
    .await;
    let passes = |i| {
        metric(
            &cluster.scrape_metrics(i),
            "ringcache_storage_purge_passes_total",
        )
        .unwrap_or(0.0)
    };
    let (p1, p2) = (passes(1), passes(2));
    eventually("nodes 1 and 2 ran purge passes past gc_grace", || {
        passes(1) >= p1 + 2.0 && passes(2) >= p2 + 2.0
    })
    .await;
    // The tombstone must still be there: a repair now takes it to node 3, not node 3's row
    // back to the others.
    cluster.restart(3);
    cluster.wait_all_up().await;
    let report = repair_json(&cluster, 1, &["gc"]);
    assert_eq!(report.state, "succeeded");
    for i in 1..=3 {
        let session = cluster.session(i).await;
        let read = at("SELECT v FROM gc.t WHERE k = 1", Consistency::One);
        let rows = session.query_unpaged(read, &[]).await.expect("read at ONE");
        assert_eq!(
            rows.into_rows_result().expect("rows").rows_num(),
            0,
            "node {i}: the deleted row came back"
        );
    }
}

/// `keyspace.t (k int PRIMARY KEY, v int)` at RF 3 with keys `0..rows` written at ALL
/// through node 1 (so every replica holds them); a session to node 1.
async fn rf3_rows(cluster: &TestCluster, keyspace: &str, rows: i32) -> Session {
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE {keyspace} WITH replication = {RF3}"),
            &format!("CREATE TABLE {keyspace}.t (k int PRIMARY KEY, v int)"),
        ],
    )
    .await;
    let insert = format!("INSERT INTO {keyspace}.t (k, v) VALUES (?, ?)");
    for k in 0..rows {
        let insert = at(&insert, Consistency::All);
        s1.query_unpaged(insert, (k, k))
            .await
            .expect("write at ALL");
    }
    s1
}

/// Rows of `rt.t` node `session` answers for alone (at ONE: from its own replica).
async fn truncated_rows_at_one(session: &Session) -> usize {
    super::convergence::count_at_one(session, "rt.t", 50).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_missed_a_truncate_does_not_spread_what_it_truncated() {
    let cluster = ClusterBuilder::new(3)
        .env("RINGCACHE_HINTED_HANDOFF_ENABLED", "false")
        .env("RINGCACHE_TRUNCATE_REQUEST_TIMEOUT_MS", "1000")
        .start();
    let s1 = rf3_rows(&cluster, "rt", 50).await;
    // Node 3 misses the TRUNCATE: its links are cut before anyone convicted it, so the
    // TRUNCATE reaches nodes 1 and 2 and times out waiting for node 3.
    cluster.cut(1, 3);
    cluster.cut(2, 3);
    let truncate = s1.query_unpaged("TRUNCATE rt.t", &[]).await;
    assert!(truncate.is_err(), "TRUNCATE cannot reach node 3");
    let s2 = cluster.session(2).await;
    assert_eq!(truncated_rows_at_one(&s1).await, 0);
    assert_eq!(truncated_rows_at_one(&s2).await, 0);
    cluster.heal(1, 3);
    cluster.heal(2, 3);
    cluster.wait_all_up().await;
    let s3 = cluster.session(3).await;
    assert_eq!(truncated_rows_at_one(&s3).await, 50, "node 3 kept its rows");

    // Read repair: reads at ALL through nodes 1 and 2 see node 3's copy differ, and send
    // nobody the truncated rows.
    for session in [&s1, &s2] {
        for k in 0..50 {
            let read = at("SELECT v FROM rt.t WHERE k = ?", Consistency::All);
            session
                .query_unpaged(read, (k,))
                .await
                .expect("read at ALL");
        }
    }
    assert_eq!(truncated_rows_at_one(&s1).await, 0, "read repair on node 1");
    assert_eq!(truncated_rows_at_one(&s2).await, 0, "read repair on node 2");
    // Anti-entropy through node 1: node 3's rows differ, and are not streamed.
    let report = repair_json(&cluster, 1, &["rt.t"]);
    assert!(report.leaves_mismatched > 0, "{report:?}");
    assert_eq!(truncated_rows_at_one(&s1).await, 0, "repair on node 1");
    assert_eq!(truncated_rows_at_one(&s2).await, 0, "repair on node 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_that_loses_a_replica_fails_naming_it_and_is_counted() {
    let cluster = ClusterBuilder::new(3)
        .env("RINGCACHE_REPAIR_REQUEST_TIMEOUT_MS", "1000")
        .start();
    rf3_rows(&cluster, "rf", 20).await;
    // Node 3 stops answering node 1 before node 1 has convicted it: the repair starts with
    // every replica up, then gets no tree from node 3.
    cluster.cut(1, 3);
    let (ok, out, err) = repair_cli(&cluster, 1, &["rf.t"]);
    assert!(!ok, "a repair without node 3's answers succeeded: {out}");
    let said = format!("{out}{err}");
    assert!(
        said.contains(&cluster.ip(3).to_string()),
        "the failure names node 3: {said}"
    );
    let text = cluster.scrape_metrics(1);
    let series = |outcome: &str| {
        metric(
            &text,
            &format!("ringcache_repair_runs_total{{kind=\"repair\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(series("failed"), Some(1.0), "{said}");
    assert_eq!(series("succeeded"), None);
    // Healed, the same repair succeeds and is counted.
    cluster.heal(1, 3);
    cluster.wait_all_up().await;
    let report = repair_json(&cluster, 1, &["rf.t"]);
    assert_eq!(report.state, "succeeded");
    let text = cluster.scrape_metrics(1);
    assert_eq!(
        metric(
            &text,
            "ringcache_repair_runs_total{kind=\"repair\",outcome=\"succeeded\"}"
        ),
        Some(1.0)
    );
}
