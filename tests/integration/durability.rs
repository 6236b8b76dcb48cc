//! Durability of acknowledged writes (issue 3): with `batch` durability every acknowledged
//! write was synced, read from the engine's WAL counters on `/metrics` (a process kill
//! cannot tell the modes apart: the OS keeps an unsynced log in its page cache); and kill -9
//! in the middle of a concurrent write load loses no acknowledged write, in both modes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use scylla::client::session::Session;

use super::data_path::run;
use super::node::{metric, TestNode};
use super::scylla_driver::connect;

const SYNCS: &str = "ringcache_storage_wal_syncs_total";
const BATCHES: &str = "ringcache_storage_write_batches_total";

async fn create_table(session: &Session) {
    run(
        session,
        &[
            "CREATE KEYSPACE du WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            "CREATE TABLE du.t (k bigint PRIMARY KEY, v text)",
        ],
    )
    .await;
}

/// Writes `n` rows one at a time (so no two writes can share a WAL sync) and returns the
/// (syncs, batches) counters scraped afterwards.
async fn sequential_writes_then_counters(env: &[(&str, &str)], n: i64) -> (f64, f64) {
    let node = TestNode::start_with_env(env);
    let session = connect(&node).await;
    create_table(&session).await;
    let insert = session
        .prepare("INSERT INTO du.t (k, v) VALUES (?, ?)")
        .await
        .expect("prepare");
    for k in 0..n {
        session
            .execute_unpaged(&insert, (k, "x"))
            .await
            .expect("insert");
    }
    let text = node.scrape_metrics();
    let syncs = metric(&text, SYNCS).unwrap_or_else(|| panic!("{SYNCS} missing from /metrics"));
    let batches =
        metric(&text, BATCHES).unwrap_or_else(|| panic!("{BATCHES} missing from /metrics"));
    (syncs, batches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_durability_syncs_every_acknowledged_write() {
    let n = 300;
    let env = [("RINGCACHE_STORAGE__DURABILITY", "batch")];
    let (syncs, batches) = sequential_writes_then_counters(&env, n).await;
    println!("batch durability: {batches} write batches, {syncs} WAL syncs");
    assert!(
        batches >= n as f64,
        "{n} acknowledged writes but {batches} write batches"
    );
    assert!(
        syncs >= batches,
        "batch durability acknowledged {batches} write batches with only {syncs} WAL syncs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_durability_syncs_far_less_than_it_writes() {
    let n = 300;
    let env = [
        ("RINGCACHE_STORAGE__DURABILITY", "periodic"),
        ("RINGCACHE_STORAGE__SYNC_PERIOD_MS", "3600000"),
    ];
    let (syncs, batches) = sequential_writes_then_counters(&env, n).await;
    println!("periodic durability: {batches} write batches, {syncs} WAL syncs");
    assert!(batches >= n as f64, "{n} writes but {batches} batches");
    assert!(
        syncs * 10.0 < batches,
        "periodic durability (1 h period) synced {syncs} times for {batches} batches"
    );
}

const WRITERS: i64 = 8;
/// Acknowledged writes to wait for before the kill: enough that the kill lands mid-load.
const ACKED_BEFORE_KILL: usize = 2000;

/// Writer `w` inserts keys w, w + WRITERS, ... and records each one after its ack, until a
/// write fails (the node is gone) or is not answered within 5 s.
async fn writer(
    session: Arc<Session>,
    w: i64,
    acked: Arc<Mutex<Vec<i64>>>,
    count: Arc<AtomicUsize>,
) {
    let Ok(insert) = session
        .prepare("INSERT INTO du.t (k, v) VALUES (?, ?)")
        .await
    else {
        return;
    };
    let mut k = w;
    loop {
        let write = session.execute_unpaged(&insert, (k, format!("value {k}")));
        match tokio::time::timeout(Duration::from_secs(5), write).await {
            Ok(Ok(_)) => {
                acked.lock().expect("lock").push(k);
                count.fetch_add(1, Ordering::SeqCst);
            }
            _ => return,
        }
        k += WRITERS;
    }
}

async fn kill9_mid_load_loses_no_acknowledged_write(mode: &str) {
    let mut node = TestNode::start_with_env(&[("RINGCACHE_STORAGE__DURABILITY", mode)]);
    let session = Arc::new(connect(&node).await);
    create_table(&session).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(session.clone(), w, acked.clone(), count.clone())))
        .collect();
    while count.load(Ordering::SeqCst) < ACKED_BEFORE_KILL {
        assert!(
            !tasks.iter().all(|t| t.is_finished()),
            "every writer stopped before the kill"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill9();
    for t in tasks {
        t.await.expect("writer task");
    }
    drop(session);
    let acked: Vec<i64> = acked.lock().expect("lock").clone();

    // The recovery path does not depend on the sync mode, so the restart uses the default.
    let node = node.restart_after_kill9();
    let session = connect(&node).await;
    let select = session
        .prepare("SELECT v FROM du.t WHERE k = ?")
        .await
        .expect("prepare");
    let missing: Vec<i64> = futures::stream::iter(acked.iter().copied())
        .map(|k| {
            let (session, select) = (&session, &select);
            async move {
                let result = session.execute_unpaged(select, (k,)).await.expect("read");
                let row = result
                    .into_rows_result()
                    .expect("rows")
                    .maybe_first_row::<(String,)>()
                    .expect("typed");
                (k, row)
            }
        })
        .buffer_unordered(64)
        .filter_map(|(k, row)| async move {
            (row.map(|r| r.0) != Some(format!("value {k}"))).then_some(k)
        })
        .collect()
        .await;
    println!(
        "kill -9 with {mode} durability: {} acknowledged writes verified after restart, {} missing",
        acked.len() - missing.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "{mode}: {} of {} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_load_batch_durability() {
    kill9_mid_load_loses_no_acknowledged_write("batch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_load_periodic_durability() {
    kill9_mid_load_loses_no_acknowledged_write("periodic").await;
}
