//! Coherence across nodes with every replica's cache on: writers at QUORUM through node 1,
//! readers at QUORUM through node 2, and every read must see every write acknowledged before
//! it began (the checker of `cache.rs`). The same checker is shown to catch stale reads:
//! with `[faults] skip_cache_version_bumps` (replica writes leave cached partitions in
//! place) and reads at ONE, node 2 answers from its stale cache.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use scylla::client::session::Session;
use scylla::frame::types::Consistency;

use super::availability::{prepare_at, RF3};
use super::{ClusterBuilder, TestCluster};
use crate::cache::{check, Checked, Read, Write};
use crate::data_path::run;

/// Partitions every worker picks from: few, so reads and writes meet.
const HOT: i32 = 4;

/// 4 writers through `writer`, 8 readers through `reader`, for `secs` seconds, on HOT
/// partitions of an RF 3 table.
async fn race(cluster: &TestCluster, read_at: Consistency, secs: u64) -> Checked {
    let writer = Arc::new(cluster.session(1).await);
    run(
        &writer,
        &[
            &format!("CREATE KEYSPACE coherent WITH replication = {RF3}"),
            "CREATE TABLE coherent.t (k int, c int, PRIMARY KEY (k, c))",
        ],
    )
    .await;
    let reader = Arc::new(cluster.session(2).await);
    let insert = "INSERT INTO coherent.t (k, c) VALUES (?, ?)";
    let insert = prepare_at(&writer, insert, Consistency::Quorum).await;
    let select = "SELECT c FROM coherent.t WHERE k = ?";
    let select = prepare_at(&reader, select, read_at).await;
    let writes = Arc::new(Mutex::new(Vec::new()));
    let reads = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (session, insert, writes) = (writer.clone(), insert.clone(), writes.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w);
            let mut i = 0;
            while Instant::now() < deadline {
                let (k, c) = (rng.random_range(0..HOT), w as i32 * 1_000_000 + i);
                session
                    .execute_unpaged(&insert, (k, c))
                    .await
                    .expect("insert at QUORUM");
                let acked = Instant::now();
                writes.lock().unwrap().push(Write { k, c, acked });
                i += 1;
            }
        }));
    }
    for r in 0..8 {
        let (session, select, reads) = (reader.clone(), select.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(100 + r);
            while Instant::now() < deadline {
                let k = rng.random_range(0..HOT);
                let started = Instant::now();
                let seen = read(&session, &select, k).await;
                reads.lock().unwrap().push(Read { k, started, seen });
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    let (writes, reads) = (writes.lock().unwrap(), reads.lock().unwrap());
    check(&writes, &reads)
}

async fn read(
    session: &Session,
    select: &scylla::statement::prepared::PreparedStatement,
    k: i32,
) -> HashSet<i32> {
    session
        .execute_unpaged(select, (k,))
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .rows::<(i32,)>()
        .expect("typed")
        .map(|r| r.expect("row").0)
        .collect()
}

/// The sum of a metric over the cluster's nodes.
fn cluster_metric(cluster: &TestCluster, name: &str) -> f64 {
    (1..=cluster.len())
        .map(|i| crate::node::metric(&cluster.scrape_metrics(i), name).unwrap_or(0.0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_reads_through_one_node_see_quorum_writes_through_another() {
    let cluster = ClusterBuilder::new(3)
        .env("RINGCACHE_FAULTS__STORAGE_READ_DELAY_MS", "5")
        .start();
    cluster.wait_all_up().await;
    let checked = race(&cluster, Consistency::Quorum, 4).await;
    let hits = cluster_metric(&cluster, "ringcache_cache_hits_total");
    println!("coherence across nodes: {checked:?}, cache hits {hits}");
    assert!(checked.reads > 100 && checked.writes > 100, "{checked:?}");
    assert!(hits > 0.0, "the caches served no read");
    assert_eq!(checked.stale, 0, "stale reads: {checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_sees_stale_reads_from_a_cache_that_writes_do_not_invalidate() {
    let cluster = ClusterBuilder::new(3)
        .env("RINGCACHE_FAULTS__STORAGE_READ_DELAY_MS", "5")
        .env("RINGCACHE_FAULTS__SKIP_CACHE_VERSION_BUMPS", "true")
        .start();
    cluster.wait_all_up().await;
    let checked = race(&cluster, Consistency::One, 3).await;
    println!("without version bumps, reads at ONE: {checked:?}");
    assert!(
        checked.stale > 0,
        "the checker missed stale reads: {checked:?}"
    );
}
