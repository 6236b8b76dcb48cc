//! Lightweight transactions (Paxos) on three nodes: `IF NOT EXISTS` raced through every node
//! applies once and every loser sees the winner's row, at RF 3 and at RF 1; list operations
//! that read the stored list read it from the replica, whichever node coordinates; a counter
//! kept with `UPDATE ... IF v = ?` through every node loses no update and makes none up,
//! also while a node is killed and restarted (uncertain outcomes settled by a SERIAL read);
//! a paused replica does not stop a transaction, two dead ones make it Unavailable.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scylla::client::session::Session;
use scylla::errors::DbError;
use scylla::frame::types::{Consistency, SerialConsistency};
use scylla::statement::batch::Batch;
use scylla::statement::unprepared::Statement;
use scylla::value::{CqlValue, Row};

use super::super::data_path::{db_error, run};
use super::super::node::EVENT_TIMEOUT;
use super::availability::{at, RF3};
use super::TestCluster;

fn applied(row: &Row) -> bool {
    matches!(row.columns.first(), Some(Some(CqlValue::Boolean(true))))
}

fn int(value: Option<&Option<CqlValue>>) -> Option<i32> {
    match value {
        Some(Some(CqlValue::Int(v))) => Some(*v),
        _ => None,
    }
}

/// A three-node cluster with keyspace `px` at RF 3, and a session pinned to each node.
async fn three_nodes(schema: &[&str]) -> (TestCluster, Vec<Arc<Session>>) {
    let cluster = TestCluster::start(3);
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[&format!("CREATE KEYSPACE px WITH replication = {RF3}")],
    )
    .await;
    run(&s1, schema).await;
    let mut sessions = vec![Arc::new(s1)];
    for i in 2..=3 {
        sessions.push(Arc::new(cluster.session(i).await));
    }
    (cluster, sessions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn if_not_exists_raced_through_three_nodes_applies_exactly_once() {
    let (_cluster, sessions) = three_nodes(&[
        "CREATE TABLE px.t (k int PRIMARY KEY, v int, w text)",
        "CREATE KEYSPACE px1 WITH replication = \
         {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TABLE px1.t (k int PRIMARY KEY, v int, w text)",
        "CREATE TABLE px1.lists (k int PRIMARY KEY, l list<int>)",
    ])
    .await;
    // RF 3, then RF 1: there the one replica runs every round, wherever the coordinator.
    race_if_not_exists(&sessions, "px").await;
    race_if_not_exists(&sessions, "px1").await;
    lists_are_read_from_their_replicas(&sessions).await;
}

/// 50 clients through the three nodes insert the same row of `keyspace.t` `IF NOT EXISTS`.
async fn race_if_not_exists(sessions: &[Arc<Session>], keyspace: &str) {
    let mut tasks = Vec::new();
    for client in 0..50i32 {
        let session = sessions[client as usize % 3].clone();
        let keyspace = keyspace.to_owned();
        tasks.push(tokio::spawn(async move {
            let insert = format!(
                "INSERT INTO {keyspace}.t (k, v, w) VALUES (1, {client}, 'c{client}') IF NOT EXISTS"
            );
            let answer = session.query_unpaged(insert, &[]).await.map(|result| {
                let rows = result.into_rows_result().expect("rows");
                rows.first_row::<Row>().expect("one row")
            });
            // A round that stayed contended past cas_contention_timeout_ms is a CAS write
            // timeout, as in Cassandra: applied or not, the SERIAL read below settles it.
            let answer = match answer {
                Ok(row) => Some(row),
                Err(error) => match db_error(&error) {
                    Some(DbError::WriteTimeout { .. }) => None,
                    _ => panic!("conditional insert: {error}"),
                },
            };
            (client, answer)
        }));
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    let mut uncertain = Vec::new();
    for task in tasks {
        match task.await.expect("client") {
            (client, Some(row)) if applied(&row) => winners.push(client),
            (_, Some(row)) => losers.push(row),
            (client, None) => uncertain.push(client),
        }
    }
    assert!(
        winners.len() <= 1,
        "at most one client creates the row: {winners:?}"
    );
    assert!(
        uncertain.len() < 25,
        "most clients got an answer: {uncertain:?} timed out"
    );
    // The row's creator: the one winner, or, if its answer timed out, one of the uncertain.
    let winner = winners.first().copied().unwrap_or_else(|| {
        assert!(!losers.is_empty(), "nobody saw the row");
        int(losers[0].columns.get(2)).expect("the row's v")
    });
    assert!(winners.contains(&winner) || uncertain.contains(&winner));
    // [applied], k, v, w: every loser sees the winner's row.
    for row in &losers {
        assert_eq!(int(row.columns.get(1)), Some(1));
        assert_eq!(int(row.columns.get(2)), Some(winner), "{row:?}");
        assert_eq!(
            row.columns.get(3),
            Some(&Some(CqlValue::Text(format!("c{winner}"))))
        );
    }
    for session in sessions {
        let mut read = Statement::new(format!("SELECT v FROM {keyspace}.t WHERE k = 1"));
        read.set_consistency(Consistency::Serial);
        let rows = session.query_unpaged(read, &[]).await.expect("SERIAL read");
        let (v,) = rows
            .into_rows_result()
            .unwrap()
            .first_row::<(i32,)>()
            .unwrap();
        assert_eq!(v, winner);
    }
}

/// List operations that need the stored list (set or delete by index, remove by value)
/// through each node, on RF 1 partitions of every node: each coordinator reads the list
/// from its replica, not from its own store (which holds nothing of it).
async fn lists_are_read_from_their_replicas(sessions: &[Arc<Session>]) {
    for k in 0..30i32 {
        let [a, b, c] = [0, 1, 2].map(|n| &sessions[(k as usize + n) % 3]);
        for (session, cql, what) in [
            (
                a,
                "UPDATE px1.lists SET l = [1, 2, 3, 4] WHERE k = ?",
                "set the list",
            ),
            (
                b,
                "UPDATE px1.lists SET l[1] = 20 WHERE k = ?",
                "set by index",
            ),
            (
                c,
                "DELETE l[2] FROM px1.lists WHERE k = ?",
                "delete by index",
            ),
            (
                a,
                "UPDATE px1.lists SET l = l - [1] WHERE k = ?",
                "remove by value",
            ),
        ] {
            let write = at(&cql.replace('?', &k.to_string()), Consistency::One);
            session.query_unpaged(write, &[]).await.expect(what);
        }
        let read = at(
            &format!("SELECT l FROM px1.lists WHERE k = {k}"),
            Consistency::One,
        );
        let (l,) = b
            .query_unpaged(read, &[])
            .await
            .expect("read")
            .into_rows_result()
            .expect("rows")
            .first_row::<(Vec<i32>,)>()
            .expect("row");
        assert_eq!(l, vec![20, 4], "partition {k}");
    }
}

/// The counter's table: `v` the counter (static), one row per applied update, named by its
/// client and sequence number, written in the same conditional batch.
const COUNTER: &str =
    "CREATE TABLE px.counter (k int, tag text, v int static, PRIMARY KEY (k, tag))";

/// What the clients saw of their updates.
#[derive(Default)]
struct Outcomes {
    applied: Vec<String>,
    refused: Vec<String>,
    /// Errors (timeouts, lost connections): applied or not, the final read says.
    uncertain: Vec<String>,
}

/// One client: increments the counter through `session` with a conditional batch until
/// `stop`, recording each update's outcome by its tag; after an error it learns the current
/// value with a SERIAL read.
async fn counter_client(
    session: Arc<Session>,
    client: usize,
    outcomes: Arc<Mutex<Outcomes>>,
    stop: Arc<AtomicBool>,
    applied_total: Arc<AtomicUsize>,
) {
    let mut batch = Batch::default();
    batch.append_statement("UPDATE px.counter SET v = ? WHERE k = 0 IF v = ?");
    batch.append_statement("INSERT INTO px.counter (k, tag) VALUES (0, ?)");
    batch.set_consistency(Consistency::Quorum);
    batch.set_serial_consistency(Some(SerialConsistency::Serial));
    let batch = session.prepare_batch(&batch).await.expect("prepare batch");
    let mut current = serial_value(&session, &stop).await.unwrap_or(0);
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let tag = format!("{client}-{seq}");
        seq += 1;
        let answer = session
            .batch(&batch, ((current + 1, current), (tag.as_str(),)))
            .await;
        let row = answer
            .map_err(|e| e.to_string())
            .and_then(|r| r.into_rows_result().map_err(|e| e.to_string()))
            .and_then(|r| {
                let v = r.column_specs().iter().position(|c| c.name() == "v");
                let row = r.first_row::<Row>().map_err(|e| e.to_string())?;
                Ok((v, row))
            });
        match row {
            Ok((_, row)) if applied(&row) => {
                outcomes.lock().unwrap().applied.push(tag);
                applied_total.fetch_add(1, Ordering::SeqCst);
                current += 1;
            }
            Ok((v, row)) => {
                outcomes.lock().unwrap().refused.push(tag);
                current = v.and_then(|v| int(row.columns.get(v))).expect("current v");
            }
            Err(_) => {
                outcomes.lock().unwrap().uncertain.push(tag);
                match serial_value(&session, &stop).await {
                    Some(v) => current = v,
                    None => return,
                }
            }
        }
    }
}

/// The counter read at SERIAL, retried while the node cannot answer (until `stop`).
async fn serial_value(session: &Session, stop: &AtomicBool) -> Option<i32> {
    let mut read = Statement::new("SELECT v FROM px.counter WHERE k = 0 LIMIT 1");
    read.set_consistency(Consistency::Serial);
    while !stop.load(Ordering::Relaxed) {
        let answer = session.query_unpaged(read.clone(), &[]).await;
        if let Some(rows) = answer.ok().and_then(|r| r.into_rows_result().ok()) {
            return Some(
                rows.maybe_first_row::<(Option<i32>,)>()
                    .ok()??
                    .0
                    .unwrap_or(0),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Waits until the clients applied `at_least` updates in all.
async fn wait_applied(total: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while total.load(Ordering::SeqCst) < at_least {
        assert!(
            Instant::now() < deadline,
            "fewer than {at_least} updates applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs three clients per node until `run` returns, then checks the final state, read at
/// SERIAL through node 1: the counter equals the number of update rows, every update a
/// client saw applied is there, none it saw refused is, and the uncertain ones are there or
/// not. Returns the outcomes.
async fn counter_under<F, Fut>(sessions: &[Arc<Session>], run_for: F) -> Outcomes
where
    F: FnOnce(Arc<AtomicUsize>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    run(
        &sessions[0],
        &["INSERT INTO px.counter (k, v) VALUES (0, 0) IF NOT EXISTS"],
    )
    .await;
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..9)
        .map(|client| {
            let session = sessions[client % 3].clone();
            let args = (outcomes.clone(), stop.clone(), total.clone());
            tokio::spawn(counter_client(session, client, args.0, args.1, args.2))
        })
        .collect();
    run_for(total).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let mut read = Statement::new("SELECT tag, v FROM px.counter WHERE k = 0");
    read.set_consistency(Consistency::Serial);
    read.set_page_size(100_000);
    let rows = sessions[0]
        .query_unpaged(read, &[])
        .await
        .expect("final SERIAL read")
        .into_rows_result()
        .unwrap();
    let rows: Vec<(Option<String>, Option<i32>)> =
        rows.rows().unwrap().map(|r| r.unwrap()).collect();
    let tags: HashSet<String> = rows.iter().filter_map(|(t, _)| t.clone()).collect();
    let v = rows.first().and_then(|(_, v)| *v).expect("the counter");
    let lost: Vec<_> = outcomes
        .applied
        .iter()
        .filter(|t| !tags.contains(*t))
        .collect();
    let phantom: Vec<_> = outcomes
        .refused
        .iter()
        .filter(|t| tags.contains(*t))
        .collect();
    let settled = outcomes
        .uncertain
        .iter()
        .filter(|t| tags.contains(*t))
        .count();
    println!(
        "counter {v}: {} applied, {} refused, {} uncertain of which {settled} applied",
        outcomes.applied.len(),
        outcomes.refused.len(),
        outcomes.uncertain.len()
    );
    assert!(lost.is_empty(), "applied updates lost: {lost:?}");
    assert!(phantom.is_empty(), "refused updates applied: {phantom:?}");
    assert_eq!(
        v as usize,
        tags.len(),
        "the counter counts the applied updates"
    );
    assert_eq!(v as usize, outcomes.applied.len() + settled);
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_counter_kept_with_if_through_three_nodes_loses_and_invents_no_update() {
    let (_cluster, sessions) = three_nodes(&[COUNTER]).await;
    let outcomes = counter_under(&sessions, |total| async move {
        wait_applied(&total, 150).await;
    })
    .await;
    assert!(outcomes.applied.len() >= 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_counter_stays_exact_while_a_node_is_killed_and_restarted() {
    let (cluster, sessions) = three_nodes(&[COUNTER]).await;
    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));
    let outcomes = counter_under(&sessions, |total| {
        let cluster = cluster.clone();
        async move {
            wait_applied(&total, 60).await;
            cluster.lock().await.kill9(3);
            let at_kill = total.load(Ordering::SeqCst);
            wait_applied(&total, at_kill + 60).await;
            let mut cluster = cluster.lock().await;
            cluster.restart(3);
            cluster.wait_all_up().await;
            let back = total.load(Ordering::SeqCst);
            wait_applied(&total, back + 60).await;
        }
    })
    .await;
    assert!(outcomes.applied.len() >= 180);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replica_does_not_stop_a_transaction_and_two_dead_ones_make_it_unavailable() {
    let (mut cluster, sessions) =
        three_nodes(&["CREATE TABLE px.t (k int PRIMARY KEY, v int)"]).await;
    let s1 = &sessions[0];
    cluster.pause(3);
    let insert = |k: i32| format!("INSERT INTO px.t (k, v) VALUES ({k}, 1) IF NOT EXISTS");
    for k in 0..5 {
        let rows = s1
            .query_unpaged(insert(k), &[])
            .await
            .expect("with one replica paused");
        assert!(applied(
            &rows.into_rows_result().unwrap().first_row::<Row>().unwrap()
        ));
    }
    let rows = s1
        .query_unpaged("UPDATE px.t SET v = 2 WHERE k = 0 IF v = 1", &[])
        .await
        .expect("update with one replica paused");
    assert!(applied(
        &rows.into_rows_result().unwrap().first_row::<Row>().unwrap()
    ));
    cluster.resume(3);
    cluster.wait_all_up().await;

    cluster.kill9(2);
    cluster.kill9(3);
    cluster.wait_sees_down(1).await;
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let err = s1
            .query_unpaged(insert(9), &[])
            .await
            .expect_err("two replicas dead");
        let db = db_error(&err).cloned();
        if let Some(DbError::Unavailable {
            consistency,
            required,
            alive,
        }) = db
        {
            // The driver's default serial level.
            assert_eq!(
                (consistency, required, alive),
                (Consistency::LocalSerial, 2, 1)
            );
            break;
        }
        assert!(Instant::now() < deadline, "never Unavailable: {err}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut read = Statement::new("SELECT v FROM px.t WHERE k = 0");
    read.set_consistency(Consistency::Serial);
    let err = s1.query_unpaged(read, &[]).await.expect_err("SERIAL read");
    assert!(
        matches!(
            db_error(&err),
            Some(DbError::Unavailable {
                required: 2,
                alive: 1,
                ..
            })
        ),
        "{err}"
    );
}
