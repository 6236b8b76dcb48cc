//! Issue 6's replica cache against a real node: coherence under fills racing writes (and
//! proof that the checker catches a node that does not bump versions), coalescing of
//! concurrent cold reads into one storage read, memory held within capacity under ten
//! times the capacity in reads (measured by the node's allocator), and the controls: the
//! table's `caching` option, the node default and the tracing bypass.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::{Rng, SeedableRng};
use scylla::client::session::Session;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::unprepared::Statement;
use scylla::value::Row;

use super::data_path::run;
use super::node::{eventually, metric, partition_reads, ReadGate, TestNode};
use super::scylla_driver::connect;

const RF1: &str = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

/// The value of `name` for one table in a Prometheus exposition (0 if absent).
fn table_metric(exposition: &str, name: &str, keyspace: &str, table: &str) -> f64 {
    let labels = format!("{name}{{keyspace=\"{keyspace}\",table=\"{table}\"}} ");
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(&labels))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn node_metric(node: &TestNode, name: &str) -> f64 {
    metric(&node.scrape_metrics(), name).unwrap_or_else(|| panic!("{name} missing"))
}

async fn create_rows_table(session: &Session) {
    run(
        session,
        &[
            &format!("CREATE KEYSPACE cache WITH replication = {RF1}"),
            "CREATE TABLE cache.t (k int, c int, v text, PRIMARY KEY (k, c))",
        ],
    )
    .await;
}

/// An acknowledged insert of row `c` in partition `k`.
pub(super) struct Write {
    pub(super) k: i32,
    pub(super) c: i32,
    pub(super) acked: Instant,
}

/// A read of partition `k` that began at `started` and saw `seen`.
pub(super) struct Read {
    pub(super) k: i32,
    pub(super) started: Instant,
    pub(super) seen: HashSet<i32>,
}

/// What the checker found.
#[derive(Debug)]
pub(super) struct Checked {
    pub(super) reads: usize,
    pub(super) writes: usize,
    /// Reads that missed a write acknowledged before they began.
    pub(super) stale: usize,
}

/// Every read must see every write to its partition acknowledged before it began.
pub(super) fn check(writes: &[Write], reads: &[Read]) -> Checked {
    let mut by_partition: HashMap<i32, Vec<&Write>> = HashMap::new();
    for w in writes {
        by_partition.entry(w.k).or_default().push(w);
    }
    let stale = reads
        .iter()
        .filter(|r| {
            by_partition
                .get(&r.k)
                .into_iter()
                .flatten()
                .any(|w| w.acked < r.started && !r.seen.contains(&w.c))
        })
        .count();
    Checked {
        reads: reads.len(),
        writes: writes.len(),
        stale,
    }
}

/// 8 writers and 16 readers on 4 hot partitions for `secs` seconds.
async fn race(node: &TestNode, secs: u64) -> Checked {
    const HOT: i32 = 4;
    let session = Arc::new(connect(node).await);
    create_rows_table(&session).await;
    let insert = session
        .prepare("INSERT INTO cache.t (k, c, v) VALUES (?, ?, 'x')")
        .await
        .expect("prepare insert");
    let select = session
        .prepare("SELECT c FROM cache.t WHERE k = ?")
        .await
        .expect("prepare select");
    let writes = Arc::new(Mutex::new(Vec::new()));
    let reads = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let (session, insert, writes) = (session.clone(), insert.clone(), writes.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(writer);
            let mut i = 0;
            while Instant::now() < deadline {
                let (k, c) = (rng.random_range(0..HOT), writer as i32 * 1_000_000 + i);
                session
                    .execute_unpaged(&insert, (k, c))
                    .await
                    .expect("insert");
                let acked = Instant::now();
                writes.lock().unwrap().push(Write { k, c, acked });
                i += 1;
            }
        }));
    }
    for reader in 0..16 {
        let (session, select, reads) = (session.clone(), select.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(100 + reader);
            while Instant::now() < deadline {
                let k = rng.random_range(0..HOT);
                let started = Instant::now();
                let result = session.execute_unpaged(&select, (k,)).await;
                let seen = result
                    .expect("select")
                    .into_rows_result()
                    .expect("rows")
                    .rows::<(i32,)>()
                    .expect("typed")
                    .map(|r| r.expect("row").0)
                    .collect();
                reads.lock().unwrap().push(Read { k, started, seen });
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    let writes = writes.lock().unwrap();
    let reads = reads.lock().unwrap();
    check(&writes, &reads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_sees_every_write_acknowledged_before_it_began() {
    let node = TestNode::start_with_env(&[("RINGCACHE_FAULTS__STORAGE_READ_DELAY_MS", "5")]);
    let checked = race(&node, 4).await;
    let text = node.scrape_metrics();
    let hits = table_metric(&text, "ringcache_cache_hits_total", "cache", "t");
    let stale = table_metric(&text, "ringcache_cache_stale_total", "cache", "t");
    println!("coherence: {checked:?}, cache hits {hits}, stale entries replaced {stale}");
    assert!(checked.reads > 200 && checked.writes > 200, "{checked:?}");
    // The cache was really in the path: reads were served from it, and writes retired
    // entries that fills had raced.
    assert!(hits > 0.0 && stale > 0.0, "hits {hits}, stale {stale}");
    assert_eq!(checked.stale, 0, "stale reads: {checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reports_stale_reads_when_writes_do_not_bump_versions() {
    let node = TestNode::start_with_env(&[
        ("RINGCACHE_FAULTS__STORAGE_READ_DELAY_MS", "5"),
        ("RINGCACHE_FAULTS__SKIP_CACHE_VERSION_BUMPS", "true"),
    ]);
    let checked = race(&node, 2).await;
    println!("without version bumps: {checked:?}");
    assert!(
        checked.stale > 0,
        "the checker missed stale reads: {checked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_cold_reads_cause_one_storage_read() {
    // Storage reads wait at the gate, so the first read's fetch stays open until all the
    // others have arrived: however slowly they are sent, they find it in progress.
    let gate = ReadGate::closed();
    let (name, path) = gate.env();
    let node = TestNode::start_with_env(&[(name, &path)]);
    let session = Arc::new(connect(&node).await);
    create_rows_table(&session).await;
    for k in [1, 2] {
        let insert = format!("INSERT INTO cache.t (k, c, v) VALUES ({k}, 1, 'one')");
        session.query_unpaged(insert, &[]).await.expect("insert");
    }
    let select = session
        .prepare("SELECT c, v FROM cache.t WHERE k = ?")
        .await
        .expect("prepare");
    // What one storage read of a one-row partition costs the engine.
    let (engine_before, partitions_before) = storage_reads(&node);
    gate.release(1);
    session
        .execute_unpaged(&select, (2,))
        .await
        .expect("one read");
    let (engine_one, partitions_one) = storage_reads(&node);
    let one_read = engine_one - engine_before;
    assert_eq!(partitions_one - partitions_before, 1.0);
    let executes_before = metric(&node.scrape_metrics(), EXECUTES).unwrap_or(0.0);
    let reads = tokio::spawn({
        let (session, select) = (session.clone(), select.clone());
        futures::stream::iter(0..1000)
            .map(move |_| {
                let (session, select) = (session.clone(), select.clone());
                async move {
                    let result = session.execute_unpaged(&select, (1,)).await.expect("read");
                    let rows = result.into_rows_result().expect("rows");
                    rows.rows::<(i32, String)>().expect("typed").count()
                }
            })
            .buffer_unordered(1000)
            .collect::<Vec<usize>>()
    });
    eventually("1000 reads arrived while one storage read is held", || {
        let text = node.scrape_metrics();
        let executes = metric(&text, EXECUTES).unwrap_or(0.0);
        executes - executes_before == 1000.0 && partition_reads(&text) - partitions_one == 1.0
    })
    .await;
    gate.release(2);
    let reads = reads.await.expect("readers");
    assert!(reads.iter().all(|rows| *rows == 1));
    let (engine_after, partitions_after) = storage_reads(&node);
    let text = node.scrape_metrics();
    let coalesced = table_metric(&text, "ringcache_cache_coalesced_total", "cache", "t");
    let hits = table_metric(&text, "ringcache_cache_hits_total", "cache", "t");
    println!(
        "1000 concurrent cold reads: {} partition reads, {} engine reads (one read: {one_read}), {coalesced} coalesced, {hits} hits",
        partitions_after - partitions_one,
        engine_after - engine_one
    );
    assert_eq!(partitions_after - partitions_one, 1.0);
    assert_eq!(engine_after - engine_one, one_read);
    assert!(coalesced > 0.0, "no read waited for the shared fetch");
    assert_eq!(coalesced + hits, 999.0);
}

/// EXECUTE requests the node has received.
const EXECUTES: &str = "ringcache_requests_total{opcode=\"execute\"}";

/// The engine's read operations and the partition reads that reached it.
fn storage_reads(node: &TestNode) -> (f64, f64) {
    let text = node.scrape_metrics();
    let engine = metric(&text, "ringcache_storage_reads_total").expect("engine reads");
    let partitions =
        metric(&text, "ringcache_storage_partition_reads_total").expect("partition reads");
    (engine, partitions)
}

/// Bytes the cache may hold in the memory test, and what is read through it: ten times.
const CAPACITY: u64 = 8 << 20;
const VALUE_BYTES: usize = 4000;
const PARTITIONS: i32 = (10 * CAPACITY as usize / VALUE_BYTES) as i32;
/// What the node may hold beyond the capacity: the cache's own structures that no weigher
/// sees (moka's frequency sketch and queues) and the allocator-visible noise of a node
/// serving 64 requests at a time.
const OVERHEAD: f64 = 0.25 * CAPACITY as f64 + (4 << 20) as f64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_within_capacity_under_ten_times_the_load() {
    let capacity = CAPACITY.to_string();
    let node = TestNode::start_with_env(&[
        ("RINGCACHE_CACHE__CAPACITY_BYTES", capacity.as_str()),
        ("RINGCACHE_CACHE__MAX_ENTRY_BYTES", "1048576"),
    ]);
    let session = Arc::new(connect(&node).await);
    create_rows_table(&session).await;
    let insert = session
        .prepare("INSERT INTO cache.t (k, c, v) VALUES (?, 0, ?)")
        .await
        .expect("prepare insert");
    let value = "m".repeat(VALUE_BYTES);
    futures::stream::iter(0..PARTITIONS)
        .map(|k| {
            let (session, insert, value) = (session.clone(), insert.clone(), value.clone());
            async move { session.execute_unpaged(&insert, (k, value)).await }
        })
        .buffer_unordered(64)
        .for_each(|r| async move {
            r.expect("insert");
        })
        .await;
    let select = session
        .prepare("SELECT v FROM cache.t WHERE k = ?")
        .await
        .expect("prepare select");
    let heap_before = node_metric(&node, "ringcache_heap_allocated_bytes");
    let rss_before = node_metric(&node, "ringcache_process_resident_bytes");
    futures::stream::iter(0..PARTITIONS)
        .map(|k| {
            let (session, select) = (session.clone(), select.clone());
            async move { session.execute_unpaged(&select, (k,)).await }
        })
        .buffer_unordered(64)
        .for_each(|r| async move {
            r.expect("select");
        })
        .await;
    let text = node.scrape_metrics();
    let heap_after = metric(&text, "ringcache_heap_allocated_bytes").expect("heap");
    let rss_after = metric(&text, "ringcache_process_resident_bytes").expect("rss");
    let weighed = metric(&text, "ringcache_cache_bytes").expect("cache bytes");
    let evictions = metric(&text, "ringcache_cache_evictions_total").expect("evictions");
    let misses = table_metric(&text, "ringcache_cache_misses_total", "cache", "t");
    let held = heap_after - heap_before;
    let mib = |b: f64| b / (1 << 20) as f64;
    println!(
        "memory: capacity {:.1} MiB, read through {:.1} MiB in {PARTITIONS} partitions; cache weighs {:.1} MiB; heap grew {:.1} MiB (allowed {:.1} MiB); RSS grew {:.1} MiB; {evictions} evictions",
        mib(CAPACITY as f64),
        mib(misses * VALUE_BYTES as f64),
        mib(weighed),
        mib(held),
        mib(CAPACITY as f64 + OVERHEAD),
        mib(rss_after - rss_before)
    );
    assert_eq!(misses, f64::from(PARTITIONS));
    assert!(evictions > 0.0, "the cache never had to evict");
    assert!(weighed <= CAPACITY as f64, "the weigher reports {weighed}");
    // The allocator sees the cache: it holds at least half of what its weigher says...
    assert!(
        held >= weighed / 2.0,
        "heap grew {held}, cache weighs {weighed}"
    );
    // ...and no more than the capacity plus the stated overhead.
    assert!(
        held <= CAPACITY as f64 + OVERHEAD,
        "heap grew {held} for a {CAPACITY}-byte cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tables_caching_option_and_tracing_decide_what_is_cached() {
    let node = TestNode::start();
    let session = connect(&node).await;
    create_rows_table(&session).await;
    run(
        &session,
        &[
            "INSERT INTO cache.t (k, c, v) VALUES (1, 1, 'a')",
            "INSERT INTO cache.t (k, c, v) VALUES (1, 2, 'b')",
        ],
    )
    .await;
    let counts = || {
        let text = node.scrape_metrics();
        let get = |name: &str| table_metric(&text, name, "cache", "t");
        (
            get("ringcache_cache_hits_total"),
            get("ringcache_cache_bypassed_total"),
        )
    };
    let read = |query: &'static str| {
        let session = &session;
        async move { session.query_unpaged(query, &[]).await.expect(query) }
    };
    // Never set: the node's default (on).
    read("SELECT * FROM cache.t WHERE k = 1").await;
    read("SELECT * FROM cache.t WHERE k = 1").await;
    assert_eq!(counts(), (1.0, 0.0));
    // A traced request bypasses the cache.
    let mut traced = Statement::new("SELECT * FROM cache.t WHERE k = 1");
    traced.set_tracing(true);
    session.query_unpaged(traced, &[]).await.expect("traced");
    assert_eq!(counts(), (1.0, 1.0));
    // 'NONE' turns it off for this table.
    run(
        &session,
        &["ALTER TABLE cache.t WITH caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'}"],
    )
    .await;
    read("SELECT * FROM cache.t WHERE k = 1").await;
    read("SELECT * FROM cache.t WHERE k = 1").await;
    assert_eq!(counts(), (1.0, 3.0));
    // A number caches reads of at most that many rows from the partition's start.
    run(
        &session,
        &["ALTER TABLE cache.t WITH caching = {'keys': 'ALL', 'rows_per_partition': '1'}"],
    )
    .await;
    read("SELECT * FROM cache.t WHERE k = 1 LIMIT 1").await;
    read("SELECT * FROM cache.t WHERE k = 1 LIMIT 1").await;
    assert_eq!(counts(), (2.0, 3.0));
    read("SELECT * FROM cache.t WHERE k = 1").await;
    assert_eq!(counts(), (2.0, 4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_caching_off_caches_only_tables_that_ask() {
    let node = TestNode::start_with_env(&[("RINGCACHE_CACHE__ENABLED", "false")]);
    let session = connect(&node).await;
    run(
        &session,
        &[
            &format!("CREATE KEYSPACE cache WITH replication = {RF1}"),
            "CREATE TABLE cache.plain (k int PRIMARY KEY, v text)",
            "CREATE TABLE cache.hot (k int PRIMARY KEY, v text) WITH caching = {'keys': 'ALL', 'rows_per_partition': 'ALL'}",
        ],
    )
    .await;
    for table in ["plain", "hot"] {
        for _ in 0..3 {
            let query = format!("SELECT * FROM cache.{table} WHERE k = 1");
            session.query_unpaged(query, &[]).await.expect("read");
        }
    }
    let text = node.scrape_metrics();
    let get = |name: &str, table: &str| table_metric(&text, name, "cache", table);
    assert_eq!(get("ringcache_cache_bypassed_total", "plain"), 3.0);
    assert_eq!(get("ringcache_cache_hits_total", "plain"), 0.0);
    assert_eq!(get("ringcache_cache_hits_total", "hot"), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_path_is_seen_by_the_next_read() {
    let node = TestNode::start();
    let session = connect(&node).await;
    create_rows_table(&session).await;
    let read = || async {
        let result = session
            .query_unpaged("SELECT c, v FROM cache.t WHERE k = 1", &[])
            .await
            .expect("read");
        let rows = result.into_rows_result().expect("rows");
        let typed = rows.rows::<(i32, Option<String>)>().expect("typed");
        typed
            .map(|r| {
                let (c, v) = r.expect("row");
                format!("{c}={}", v.unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let steps: [(&str, &str); 7] = [
        ("INSERT INTO cache.t (k, c, v) VALUES (1, 1, 'a')", "1=a"),
        ("UPDATE cache.t SET v = 'b' WHERE k = 1 AND c = 1", "1=b"),
        (
            "BEGIN BATCH INSERT INTO cache.t (k, c, v) VALUES (1, 2, 'c'); UPDATE cache.t SET v = 'd' WHERE k = 1 AND c = 1; APPLY BATCH",
            "1=d,2=c",
        ),
        ("UPDATE cache.t SET v = 'e' WHERE k = 1 AND c = 2 IF v = 'c'", "1=d,2=e"),
        ("DELETE FROM cache.t WHERE k = 1 AND c = 1", "2=e"),
        ("INSERT INTO cache.t (k, c, v) VALUES (1, 3, 'f') IF NOT EXISTS", "2=e,3=f"),
        ("TRUNCATE cache.t", ""),
    ];
    for (write, expected) in steps {
        // Twice before the write, so the slice is cached and the second read a hit.
        read().await;
        read().await;
        session.query_unpaged(write, &[]).await.expect(write);
        assert_eq!(read().await, expected, "after {write}");
    }
    let hits = table_metric(
        &node.scrape_metrics(),
        "ringcache_cache_hits_total",
        "cache",
        "t",
    );
    assert!(
        hits >= 7.0,
        "the reads were not served from the cache: {hits} hits"
    );
}

/// Every page of `statement` (prepared, page size `page_size`), the rows as the driver
/// decodes them and the paging states between pages, from storage (`traced`: the tracing
/// flag bypasses the cache) or through the cache.
async fn pages(session: &Session, statement: &str, page_size: i32, traced: bool) -> String {
    let mut prepared = session.prepare(statement).await.expect(statement);
    prepared.set_page_size(page_size);
    prepared.set_tracing(traced);
    let mut state = PagingState::start();
    let mut out = String::new();
    loop {
        let (result, next) = session
            .execute_single_page(&prepared, (), state)
            .await
            .expect(statement);
        for row in result
            .into_rows_result()
            .expect("rows")
            .rows::<Row>()
            .expect("rows")
        {
            out += &format!("{:?}\n", row.expect("row").columns);
        }
        match next {
            PagingStateResponse::HasMorePages { state: s } => {
                out += &format!("-- page ends at {:?}\n", s.as_bytes_slice());
                state = s;
            }
            PagingStateResponse::NoMorePages => return out,
        }
    }
}

/// Table `cache.<name>` with partitions that exercise row assembly: static only, static
/// with rows, a list, deleted rows and a range deletion, TTL'd cells and a row of nulls.
async fn create_shapes_table(session: &Session, name: &str) {
    let statements = [
        "CREATE TABLE cache.T (k int, c int, s text static, v text, l list<int>, \
         PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC)",
        "INSERT INTO cache.T (k, s) VALUES (1, 'lonely')",
        "INSERT INTO cache.T (k, s) VALUES (2, 'shared')",
        "INSERT INTO cache.T (k, c, v, l) VALUES (2, 1, 'a', [1, 2])",
        "INSERT INTO cache.T (k, c, v) VALUES (2, 2, 'b') USING TIMESTAMP 1000",
        "INSERT INTO cache.T (k, c, v) VALUES (2, 3, 'c')",
        "INSERT INTO cache.T (k, c, v) VALUES (2, 4, 'd')",
        "INSERT INTO cache.T (k, c, v) VALUES (2, 5, 'e')",
        "DELETE FROM cache.T WHERE k = 2 AND c = 3",
        "DELETE FROM cache.T WHERE k = 2 AND c > 4 AND c <= 5",
        "INSERT INTO cache.T (k, c, v) VALUES (3, 1, 'ttl') USING TTL 86400",
        "INSERT INTO cache.T (k, c) VALUES (3, 2)",
    ];
    let statements: Vec<String> = statements
        .iter()
        .map(|s| s.replace("cache.T", &format!("cache.{name}")))
        .collect();
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    run(session, &statements).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_kept_with_an_entry_answer_exactly_as_storage_does() {
    let node = TestNode::start();
    let session = connect(&node).await;
    run(
        &session,
        &[&format!("CREATE KEYSPACE cache WITH replication = {RF1}")],
    )
    .await;
    let reused = |table: &str| {
        let text = node.scrape_metrics();
        table_metric(&text, "ringcache_cache_rows_reused_total", "cache", table)
    };
    // (statement, page size, whether its rows may be kept); each on a table of its own, so
    // that no two share an entry.
    let statements = [
        ("SELECT * FROM cache.T WHERE k = K", 100, true),
        ("SELECT * FROM cache.T WHERE k = K", 1, true),
        (
            "SELECT k, c, v, writetime(v), token(k), l FROM cache.T WHERE k = K LIMIT 2",
            100,
            true,
        ),
        ("SELECT DISTINCT k, s FROM cache.T WHERE k = K", 100, true),
        (
            "SELECT c, v FROM cache.T WHERE k = K AND c > 1 ORDER BY c ASC",
            1,
            true,
        ),
        (
            "SELECT s, c FROM cache.T WHERE k = K PER PARTITION LIMIT 1",
            100,
            true,
        ),
        // "Now" decides ttl(); a residual filter decides which rows are kept.
        ("SELECT v, ttl(v) FROM cache.T WHERE k = K", 100, false),
        (
            "SELECT c, v FROM cache.T WHERE k = K AND v = 'b' ALLOW FILTERING",
            100,
            false,
        ),
    ];
    for (i, (statement, page_size, kept)) in statements.into_iter().enumerate() {
        let table = format!("r{i}");
        create_shapes_table(&session, &table).await;
        for k in 1..=3 {
            let statement = statement
                .replace("cache.T", &format!("cache.{table}"))
                .replace('K', &k.to_string());
            let stored = pages(&session, &statement, page_size, true).await;
            let before = reused(&table);
            // The first read through the cache fills the entry and keeps its rows, the
            // next ones copy them; every answer is storage's, byte for byte.
            for round in 0..3 {
                let cached = pages(&session, &statement, page_size, false).await;
                assert_eq!(cached, stored, "{statement} (round {round})");
            }
            let reuses = reused(&table) - before;
            match kept {
                true => assert!(
                    reuses >= 2.0,
                    "{statement}: kept rows reused {reuses} times"
                ),
                false => assert_eq!(
                    reuses, 0.0,
                    "{statement}: rows depend on more than the read"
                ),
            }
        }
    }
    // Two projections of one slice each keep their rows.
    let both = [
        "SELECT c FROM cache.r0 WHERE k = 2 LIMIT 3",
        "SELECT v FROM cache.r0 WHERE k = 2 LIMIT 3",
    ];
    let stored = [
        pages(&session, both[0], 100, true).await,
        pages(&session, both[1], 100, true).await,
    ];
    let before = reused("r0");
    for _ in 0..3 {
        assert_eq!(pages(&session, both[0], 100, false).await, stored[0]);
        assert_eq!(pages(&session, both[1], 100, false).await, stored[1]);
    }
    assert!(reused("r0") - before >= 4.0);
}
