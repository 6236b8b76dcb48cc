//! Durability of acknowledged writes (issue 3). With `batch` durability every acknowledged
//! write was synced: the node runs under strace, and the fsync and fdatasync calls its
//! threads complete while it acknowledges writes one at a time are counted from outside (a
//! process kill cannot tell the modes apart, since the OS keeps an unsynced log in its page
//! cache, and the node's own sync counter is bumped where the sync is asked for, so it
//! cannot see a sync that silently stopped happening). And kill -9 in the middle of a
//! concurrent write load loses no acknowledged write, in both modes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use scylla::client::session::Session;

use super::data_path::run;
use super::node::{completed_syncs, metric, TestNode};
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

/// What a run of sequential writes cost.
struct Synced {
    /// Write batches the engine counted.
    batches: f64,
    /// fsync and fdatasync calls the node's process completed, as strace saw them.
    kernel_syncs: usize,
    /// The WAL syncs the node counted itself (reported, not trusted).
    counted_syncs: f64,
}

/// Writes `n` rows one at a time (so no two writes can share a WAL sync) to a node run
/// under strace, and counts what happened between the first write and the last
/// acknowledgement.
async fn sequential_writes(env: &[(&str, &str)], n: i64) -> Synced {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("syncs.strace");
    let node = TestNode::start_traced(env, &trace);
    let session = connect(&node).await;
    create_table(&session).await;
    let insert = session
        .prepare("INSERT INTO du.t (k, v) VALUES (?, ?)")
        .await
        .expect("prepare");
    let counters = || {
        let text = node.scrape_metrics();
        let get = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("{name} missing"));
        (get(BATCHES), get(SYNCS))
    };
    let (batches_before, counted_before) = counters();
    let kernel_before = completed_syncs(&trace);
    for k in 0..n {
        session
            .execute_unpaged(&insert, (k, "x"))
            .await
            .expect("insert");
    }
    let kernel_syncs = completed_syncs(&trace) - kernel_before;
    let (batches, counted) = counters();
    Synced {
        batches: batches - batches_before,
        kernel_syncs,
        counted_syncs: counted - counted_before,
    }
}

impl std::fmt::Display for Synced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} write batches, {} fsync/fdatasync calls completed (strace), {} WAL syncs counted by the node",
            self.batches, self.kernel_syncs, self.counted_syncs
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_durability_syncs_every_acknowledged_write() {
    let n = 300;
    let synced = sequential_writes(&[("RINGCACHE_STORAGE__DURABILITY", "batch")], n).await;
    println!("batch durability, {n} sequential writes: {synced}");
    assert!(
        synced.batches >= n as f64,
        "{n} acknowledged writes but {} write batches",
        synced.batches
    );
    assert!(
        synced.kernel_syncs as f64 >= synced.batches,
        "batch durability acknowledged {} write batches after only {} completed fsync/fdatasync calls",
        synced.batches,
        synced.kernel_syncs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_durability_syncs_far_less_than_it_writes() {
    let n = 300;
    let env = [
        ("RINGCACHE_STORAGE__DURABILITY", "periodic"),
        ("RINGCACHE_STORAGE__SYNC_PERIOD_MS", "3600000"),
    ];
    let synced = sequential_writes(&env, n).await;
    println!("periodic durability (1 h period), {n} sequential writes: {synced}");
    assert!(synced.batches >= n as f64, "{n} writes: {synced}");
    assert!(
        synced.kernel_syncs as f64 * 10.0 < synced.batches,
        "periodic durability (1 h period) synced {} times for {} batches",
        synced.kernel_syncs,
        synced.batches
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
