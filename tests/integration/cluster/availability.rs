//! Availability at the consistency levels: QUORUM writes survive a node killed mid-load and
//! are read back through every node, the dead one once it returns; and when replicas are
//! missing the coordinator answers with Cassandra's errors and counts — `Unavailable` before
//! sending when too few are alive, `WriteTimeout` / `ReadTimeout` within the configured
//! timeouts when a replica is alive to the failure detector but silent (SIGSTOP).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use scylla::client::session::Session;
use scylla::errors::{DbError, WriteType};
use scylla::frame::types::Consistency;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;

use super::super::data_path::{db_error, run};
use super::super::node::EVENT_TIMEOUT;
use super::{ClusterBuilder, TestCluster};

pub(super) const RF3: &str = "{'class': 'SimpleStrategy', 'replication_factor': 3}";

/// A statement at `consistency`.
pub(super) fn at(cql: &str, consistency: Consistency) -> Statement {
    let mut s = Statement::new(cql);
    s.set_consistency(consistency);
    s
}

/// A prepared statement at `consistency`.
pub(super) async fn prepare_at(
    session: &Session,
    cql: &str,
    consistency: Consistency,
) -> PreparedStatement {
    let mut p = session.prepare(cql).await.expect(cql);
    p.set_consistency(consistency);
    p
}

/// The acknowledged writes: (writer, seq), each written with value `writer * 1e6 + seq`.
pub(super) type Acked = Arc<Mutex<Vec<(i32, i32)>>>;

/// One writer: QUORUM inserts of new keys until `stop`, recording each acknowledged one.
pub(super) fn writer(
    session: Arc<Session>,
    insert: PreparedStatement,
    id: i32,
    acked: Acked,
) -> Writer {
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut failed = 0;
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                match session
                    .execute_unpaged(&insert, (id, seq, id * 1_000_000 + seq))
                    .await
                {
                    Ok(_) => acked.lock().unwrap().push((id, seq)),
                    Err(_) => failed += 1,
                }
                seq += 1;
            }
            failed
        }
    });
    Writer { stop, task }
}

pub(super) struct Writer {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) task: tokio::task::JoinHandle<u32>,
}

impl Writer {
    /// Stops the writer; how many of its writes failed.
    pub(super) async fn stop(self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer")
    }
}

pub(super) async fn wait_for_acks(acked: &Acked, at_least: usize) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while acked.lock().unwrap().len() < at_least {
        assert!(
            Instant::now() < deadline,
            "fewer than {at_least} acked writes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads every acknowledged write at QUORUM through `session`; returns the ones missing or
/// wrong.
async fn missing_through(session: &Session, acked: &[(i32, i32)]) -> Vec<String> {
    missing_from(session, "avail.t", Consistency::Quorum, acked).await
}

/// Reads every acknowledged write of `table` (as [`writer`] writes them) at `level` through
/// `session`; returns the ones missing or wrong.
pub(super) async fn missing_from(
    session: &Session,
    table: &str,
    level: Consistency,
    acked: &[(i32, i32)],
) -> Vec<String> {
    let cql = format!("SELECT v FROM {table} WHERE w = ? AND s = ?");
    let select = prepare_at(session, &cql, level).await;
    let results: Vec<Option<String>> = futures::stream::iter(acked.iter().copied())
        .map(|(w, s)| {
            let select = &select;
            async move {
                let got = session
                    .execute_unpaged(select, (w, s))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.into_rows_result().map_err(|e| e.to_string()))
                    .and_then(|r| r.maybe_first_row::<(i32,)>().map_err(|e| e.to_string()));
                match got {
                    Ok(Some((v,))) if v == w * 1_000_000 + s => None,
                    other => Some(format!("({w}, {s}): {other:?}")),
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_writes_acknowledged_while_a_node_dies_are_read_back_through_every_node() {
    let mut cluster = TestCluster::start(3);
    cluster.wait_all_up().await;
    let s1 = Arc::new(cluster.session(1).await);
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE avail WITH replication = {RF3}"),
            "CREATE TABLE avail.t (w int, s int, v int, PRIMARY KEY ((w, s)))",
        ],
    )
    .await;
    let s2 = Arc::new(cluster.session(2).await);
    let aware = Arc::new(cluster.token_aware_session().await);
    let acked: Acked = Arc::default();
    let insert = "INSERT INTO avail.t (w, s, v) VALUES (?, ?, ?)";
    let mut writers = Vec::new();
    // Six writers through three clients: two pinned to the survivors, one token-aware
    // that also sends to the node about to die.
    for (id, session) in [&s1, &s1, &s2, &s2, &aware, &aware].into_iter().enumerate() {
        let insert = prepare_at(session, insert, Consistency::Quorum).await;
        writers.push(writer(session.clone(), insert, id as i32, acked.clone()));
    }
    wait_for_acks(&acked, 300).await;
    cluster.kill9(3);
    let at_kill = acked.lock().unwrap().len();
    wait_for_acks(&acked, at_kill + 600).await;
    let mut failed = 0;
    for w in writers {
        w.stop.store(true, Ordering::Relaxed);
        failed += w.task.await.expect("writer");
    }
    let acked: Vec<(i32, i32)> = acked.lock().unwrap().clone();
    println!(
        "{} writes acknowledged ({at_kill} before the kill), {failed} failed",
        acked.len()
    );
    assert_eq!(
        acked.iter().collect::<HashSet<_>>().len(),
        acked.len(),
        "every key is written once"
    );
    // Read back once the survivors have convicted node 3: until then a read may pick it
    // for a digest and fail (a replica that cannot be reached is not replaced by another).
    for (i, session) in [(1, &s1), (2, &s2)] {
        cluster.wait_sees_down(i).await;
        let missing = missing_through(session, &acked).await;
        assert!(
            missing.is_empty(),
            "through node {i}: {}",
            summary(&missing)
        );
    }
    cluster.restart(3);
    cluster.wait_all_up().await;
    let s3 = cluster.session(3).await;
    let missing = missing_through(&s3, &acked).await;
    assert!(
        missing.is_empty(),
        "through the restarted node 3: {}",
        summary(&missing)
    );
}

/// How many are missing, and the first few.
pub(super) fn summary(missing: &[String]) -> String {
    format!(
        "{} missing, first: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    )
}

/// The error a statement must fail with, and how long it took.
pub(super) async fn fails(session: &Session, statement: Statement) -> (DbError, Duration) {
    let started = Instant::now();
    let cql = statement.contents.clone();
    let level = statement.get_consistency();
    let err = match session.query_unpaged(statement, &[]).await {
        Ok(r) => panic!(
            "{cql} at {level:?} must fail, but {:?} answered",
            r.request_coordinator()
        ),
        Err(e) => e,
    };
    let took = started.elapsed();
    let db = db_error(&err).unwrap_or_else(|| panic!("not a server error: {err}"));
    (db.clone(), took)
}

/// A key of `keyspace.one` (RF 1) whose only replica is node `i`, as the driver places it.
async fn key_owned_by(cluster: &TestCluster, aware: &Session, keyspace: &str, i: usize) -> i32 {
    aware.refresh_metadata().await.expect("metadata");
    let state = aware.get_cluster_state();
    (0..10_000)
        .find(|k| {
            let replicas = state
                .get_endpoints(keyspace, "one", &(*k,))
                .expect("endpoints");
            replicas.len() == 1 && replicas[0].0.address.ip() == cluster.ip(i)
        })
        .expect("a key on the node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_replicas_give_unavailable_or_timeouts_with_cassandras_counts() {
    let mut cluster = ClusterBuilder::new(3)
        .env("RINGCACHE_WRITE_REQUEST_TIMEOUT_MS", "500")
        .env("RINGCACHE_READ_REQUEST_TIMEOUT_MS", "1000")
        .start();
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE avail WITH replication = {RF3}"),
            "CREATE TABLE avail.t (k int PRIMARY KEY, v int)",
            "CREATE KEYSPACE avail1 WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 1}",
            "CREATE TABLE avail1.one (k int PRIMARY KEY, v int)",
        ],
    )
    .await;
    let write = |cl| at("INSERT INTO avail.t (k, v) VALUES (1, 1)", cl);
    let read = |cl| at("SELECT v FROM avail.t WHERE k = 1", cl);
    s1.query_unpaged(write(Consistency::All), &[])
        .await
        .expect("write at ALL with every node up");

    let aware = cluster.token_aware_session().await;
    let on_3 = key_owned_by(&cluster, &aware, "avail1", 3).await;

    // A paused node is alive to the failure detector (it convicts after about 9 s), so
    // requests are sent to it and time out.
    cluster.pause(3);
    let (err, took) = fails(&s1, write(Consistency::All)).await;
    assert!(
        matches!(
            err,
            DbError::WriteTimeout {
                consistency: Consistency::All,
                received: 2,
                required: 3,
                write_type: WriteType::Simple
            }
        ),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    let (err, took) = fails(&s1, read(Consistency::All)).await;
    assert!(
        matches!(
            err,
            DbError::ReadTimeout {
                consistency: Consistency::All,
                received: 2,
                required: 3,
                data_present: true
            }
        ),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(3000),
        "{took:?}"
    );
    // The only replica, silent: nothing received, and the data replica did not answer.
    let one = |q: &str| at(&q.replace("?", &on_3.to_string()), Consistency::One);
    let (err, _) = fails(&s1, one("INSERT INTO avail1.one (k, v) VALUES (?, 1)")).await;
    assert!(
        matches!(
            err,
            DbError::WriteTimeout {
                consistency: Consistency::One,
                received: 0,
                required: 1,
                write_type: WriteType::Simple
            }
        ),
        "{err:?}"
    );
    let (err, _) = fails(&s1, one("SELECT v FROM avail1.one WHERE k = ?")).await;
    assert!(
        matches!(
            err,
            DbError::ReadTimeout {
                consistency: Consistency::One,
                received: 0,
                required: 1,
                data_present: false
            }
        ),
        "{err:?}"
    );
    cluster.resume(3);
    cluster.wait_all_up().await;

    // Two of three dead: once node 1 has convicted them, QUORUM is refused before anything
    // is sent, at once.
    cluster.kill9(2);
    cluster.kill9(3);
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let (err, _) = fails(&s1, write(Consistency::Quorum)).await;
        if matches!(err, DbError::Unavailable { .. }) {
            break;
        }
        assert!(Instant::now() < deadline, "never Unavailable: {err:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for statement in [write(Consistency::Quorum), read(Consistency::Quorum)] {
        let (err, took) = fails(&s1, statement).await;
        assert!(
            matches!(
                err,
                DbError::Unavailable {
                    consistency: Consistency::Quorum,
                    required: 2,
                    alive: 1
                }
            ),
            "{err:?}"
        );
        // Decided before anything is sent (a silent replica would have made a timeout):
        // it waits for no replica, and never hangs.
        assert!(took < Duration::from_secs(2), "Unavailable took {took:?}");
    }
    // ONE still works with the one replica left.
    s1.query_unpaged(write(Consistency::One), &[])
        .await
        .expect("write at ONE");
    s1.query_unpaged(read(Consistency::One), &[])
        .await
        .expect("read at ONE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_reads_right_after_a_replica_crashes_use_the_live_replicas() {
    let mut cluster = TestCluster::start(3);
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE avail WITH replication = {RF3}"),
            "CREATE TABLE avail.t (w int, s int, v int, PRIMARY KEY ((w, s)))",
        ],
    )
    .await;
    let insert = prepare_at(
        &s1,
        "INSERT INTO avail.t (w, s, v) VALUES (?, ?, ?)",
        Consistency::All,
    )
    .await;
    let keys: Vec<(i32, i32)> = (0..40).map(|s| (0, s)).collect();
    for (w, s) in &keys {
        s1.execute_unpaged(&insert, (*w, *s, w * 1_000_000 + s))
            .await
            .expect("write at ALL");
    }
    // Read at once, while node 1 still believes node 3 alive: two live replicas remain.
    cluster.kill9(3);
    let missing = missing_through(&s1, &keys).await;
    assert!(missing.is_empty(), "through node 1: {}", summary(&missing));
}
