//! Issue 4's purging against a real node: with purge passes every second, tombstones and
//! expired cells older than a table's `gc_grace_seconds` are removed without anything they
//! covered coming back, while a table still within grace keeps its tombstones (a late write
//! older than a deletion stays hidden there, and shows where the tombstone was purged).

use scylla::client::session::Session;

use super::data_path::{node_secs, run, wait_for_node_clock};
use super::node::{eventually, metric, TestNode};
use super::scylla_driver::connect;

const RF1: &str = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

/// Writes, then deletes in every way, in `ks.<table>`.
async fn write_and_delete(session: &Session, table: &str) {
    let t = format!("gc.{table}");
    let mut statements = Vec::new();
    for p in 0..4 {
        for c in 0..6 {
            statements.push(format!(
                "INSERT INTO {t} (p, c, v, tags) VALUES ({p}, {c}, 'v{p}{c}', {{'a', 'b'}}) USING TIMESTAMP 1000"
            ));
        }
    }
    statements.extend([
        // A range of rows, a row, a cell, a whole partition, a collection overwrite.
        format!("DELETE FROM {t} USING TIMESTAMP 2000 WHERE p = 0 AND c >= 1 AND c < 4"),
        format!("DELETE FROM {t} USING TIMESTAMP 2000 WHERE p = 1 AND c = 2"),
        format!("DELETE v FROM {t} USING TIMESTAMP 2000 WHERE p = 1 AND c = 3"),
        format!("DELETE FROM {t} USING TIMESTAMP 2000 WHERE p = 2"),
        format!("UPDATE {t} USING TIMESTAMP 2000 SET tags = {{'z'}} WHERE p = 3 AND c = 0"),
        // Newer than the partition deletion: shows again.
        format!("INSERT INTO {t} (p, c, v) VALUES (2, 9, 'after') USING TIMESTAMP 3000"),
        // Expires at once.
        format!("INSERT INTO {t} (p, c, v) VALUES (3, 7, 'brief') USING TIMESTAMP 1000 AND TTL 1"),
    ]);
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    run(session, &refs).await;
}

/// Every live row of `gc.<table>` as `p/c=v [tags]`, sorted.
async fn contents(session: &Session, table: &str) -> Vec<String> {
    let query = format!("SELECT p, c, v, tags FROM gc.{table}");
    let result = session.query_unpaged(query, &[]).await.expect("select");
    type Row = (i32, i32, Option<String>, Option<Vec<String>>);
    let mut rows: Vec<String> = result
        .into_rows_result()
        .expect("rows")
        .rows::<Row>()
        .expect("typed")
        .map(|r| {
            let (p, c, v, tags) = r.expect("row");
            format!(
                "{p}/{c}={} {:?}",
                v.unwrap_or_default(),
                tags.unwrap_or_default()
            )
        })
        .collect();
    rows.sort();
    rows
}

/// What the writes and deletions leave, computed from them.
fn expected() -> Vec<String> {
    let mut rows = Vec::new();
    for p in 0..4 {
        for c in 0..6 {
            let deleted = (p == 0 && (1..4).contains(&c)) || (p == 1 && c == 2) || p == 2;
            if deleted {
                continue;
            }
            let v = if p == 1 && c == 3 {
                String::new()
            } else {
                format!("v{p}{c}")
            };
            let tags = if p == 3 && c == 0 {
                "[\"z\"]"
            } else {
                "[\"a\", \"b\"]"
            };
            rows.push(format!("{p}/{c}={v} {tags}"));
        }
    }
    rows.push("2/9=after []".to_owned());
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_past_gc_grace_brings_nothing_back_and_tombstones_within_grace_stay() {
    let node = TestNode::start_with_env(&[("RINGCACHE_STORAGE__PURGE_INTERVAL_SECS", "1")]);
    let session = connect(&node).await;
    let schema = "(p int, c int, v text, tags set<text>, PRIMARY KEY (p, c))";
    run(
        &session,
        &[
            &format!("CREATE KEYSPACE gc WITH replication = {RF1}"),
            &format!("CREATE TABLE gc.short {schema} WITH gc_grace_seconds = 0"),
            &format!("CREATE TABLE gc.long {schema}"),
        ],
    )
    .await;
    for table in ["short", "long"] {
        write_and_delete(&session, table).await;
    }
    // By the node's clock, everything above was written by `written` (in its second or
    // before): from `written + 1` the TTL of 1 s has run out and the deletions are past a
    // grace of 0 (`purgeable`: local deletion time + grace < now).
    let written = node_secs(&session).await;
    wait_for_node_clock(&session, written + 1).await;
    // Then two full rounds of passes, the second begun after that second: eight user
    // tables, the two here and the chat schema's six.
    let text = || node.scrape_metrics();
    let passes = || metric(&text(), "ringcache_storage_purge_passes_total").unwrap_or(0.0);
    let start = passes();
    eventually("two full purge rounds ran after the expiry", || {
        passes() >= start + 2.0 * 8.0
    })
    .await;
    let removed = metric(&text(), "ringcache_storage_purged_keys_total").expect("purged keys");
    println!("purge: {removed} keys removed");
    // Everything deleted in "short": the range's 3 rows, the row, the partition's 6 rows
    // (marker, value and two elements each) and the cell, the overwritten elements, the
    // expired row, and every tombstone (grace 0); in "long" the shadowed data only.
    assert!(removed >= 60.0, "only {removed} keys purged");
    for table in ["short", "long"] {
        assert_eq!(contents(&session, table).await, expected(), "{table}");
    }
    // A late write older than the deletions: hidden where the tombstones are kept, shown
    // where they were purged past grace (Cassandra's gc_grace contract).
    for table in ["short", "long"] {
        let late =
            format!("INSERT INTO gc.{table} (p, c, v) VALUES (2, 1, 'late') USING TIMESTAMP 1500");
        session.query_unpaged(late, &[]).await.expect("late write");
    }
    let shows = |rows: &[String]| rows.iter().any(|r| r.starts_with("2/1=late"));
    assert!(
        !shows(&contents(&session, "long").await),
        "a tombstone within grace was purged"
    );
    assert!(
        shows(&contents(&session, "short").await),
        "the partition tombstone was never purged"
    );
}

/// `POST /flush` writes the memory tables to disk (as `nodetool flush`), and `/metrics`
/// shows RocksDB's files and background work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_writes_the_memory_tables_to_sorted_files() {
    let node = TestNode::start();
    let session = connect(&node).await;
    run(
        &session,
        &[
            &format!("CREATE KEYSPACE fl WITH replication = {RF1}"),
            "CREATE TABLE fl.t (k int PRIMARY KEY, v text)",
        ],
    )
    .await;
    for k in 0..200 {
        let insert = format!("INSERT INTO fl.t (k, v) VALUES ({k}, 'v{k}')");
        session.query_unpaged(insert, &[]).await.expect("insert");
    }
    let sample = |name: &str| metric(&node.scrape_metrics(), name).unwrap_or(-1.0);
    assert_eq!(sample("ringcache_storage_sst_files{level=\"0\"}"), 0.0);
    assert!(sample("ringcache_storage_memtable_bytes") > 0.0);
    let answer = super::cluster::http(node.metrics, "POST", "/flush");
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    eventually("the memory tables are on disk", || {
        sample("ringcache_storage_sst_files{level=\"0\"}") >= 1.0
            && sample("ringcache_storage_running_flushes") == 0.0
    })
    .await;
    assert!(sample("ringcache_storage_live_sst_bytes") > 0.0);
    assert_eq!(sample("ringcache_storage_writes_stopped"), 0.0);
    let rows = session
        .query_unpaged("SELECT k FROM fl.t", &[])
        .await
        .expect("read")
        .into_rows_result()
        .expect("rows")
        .rows_num();
    assert_eq!(rows, 200);
}
