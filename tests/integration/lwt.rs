//! Lightweight transactions on one node through the `scylla` crate: `IF NOT EXISTS` raced
//! by 50 clients, a counter kept with `IF v = ?` by 20 clients, Cassandra's `[applied]`
//! rows with the current values, conditional batches, prepared bind metadata, serial
//! consistency levels, and LWT at RF 3 (Unavailable on one node, applied on three).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use scylla::client::session::Session;
use scylla::frame::types::{Consistency, SerialConsistency};
use scylla::statement::batch::Batch;
use scylla::statement::unprepared::Statement;
use scylla::value::{CqlValue, Row};

use super::data_path::{db_error, run};
use super::node::TestNode;
use super::scylla_driver::connect;

const SCHEMA: &[&str] = &[
    "CREATE KEYSPACE lwt WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    "CREATE TABLE lwt.t (k int, c int, s int static, v int, m map<text, int>, l list<int>, \
     PRIMARY KEY (k, c))",
    "CREATE TABLE lwt.counter (k int PRIMARY KEY, v int)",
];

/// Column names and rows of a statement's result.
async fn result(session: &Session, query: impl Into<Statement>) -> (Vec<String>, Vec<Row>) {
    let rows = session
        .query_unpaged(query, &[])
        .await
        .expect("query")
        .into_rows_result()
        .expect("a conditional write answers with rows");
    let names = rows
        .column_specs()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let rows = rows
        .rows::<Row>()
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    (names, rows)
}

fn applied(row: &Row) -> bool {
    matches!(row.columns.first(), Some(Some(CqlValue::Boolean(true))))
}

fn int(value: &Option<CqlValue>) -> Option<i32> {
    match value {
        Some(CqlValue::Int(v)) => Some(*v),
        _ => None,
    }
}

async fn setup() -> (TestNode, Session) {
    let node = TestNode::start();
    let session = connect(&node).await;
    run(&session, SCHEMA).await;
    (node, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn if_not_exists_under_50_concurrent_clients_applies_exactly_once() {
    let (node, _) = setup().await;
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(Arc::new(connect(&node).await));
    }
    let mut tasks = Vec::new();
    for client in 0..50i32 {
        let session = sessions[client as usize % sessions.len()].clone();
        tasks.push(tokio::spawn(async move {
            let query =
                format!("INSERT INTO lwt.t (k, c, v) VALUES (1, 1, {client}) IF NOT EXISTS");
            let (_, rows) = result(&session, query).await;
            let row = rows.into_iter().next().expect("one row");
            (client, applied(&row), row)
        }));
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        let (client, won, row) = task.await.expect("task");
        if won {
            winners.push(client);
        } else {
            losers.push(row);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one client creates the row");
    let winner = winners[0];
    // Losers see the row as the winner wrote it: [applied], k, c, s, l, m, v.
    for row in &losers {
        assert_eq!(row.columns.len(), 7);
        assert_eq!(int(&row.columns[1]), Some(1));
        assert_eq!(int(&row.columns[2]), Some(1));
        assert_eq!(int(&row.columns[6]), Some(winner));
    }
    let (_, rows) = result(&sessions[0], "SELECT v FROM lwt.t WHERE k = 1 AND c = 1").await;
    assert_eq!(int(&rows[0].columns[0]), Some(winner));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_counter_kept_with_if_by_20_clients_loses_no_applied_update() {
    const CLIENTS: usize = 20;
    const INCREMENTS: usize = 15;
    let (node, session) = setup().await;
    run(&session, &["INSERT INTO lwt.counter (k, v) VALUES (0, 0)"]).await;
    let applied_total = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let session = connect(&node).await;
        let applied_total = applied_total.clone();
        tasks.push(tokio::spawn(async move {
            let update = session
                .prepare("UPDATE lwt.counter SET v = ? WHERE k = 0 IF v = ?")
                .await
                .expect("prepare");
            let (_, rows) = result(&session, "SELECT v FROM lwt.counter WHERE k = 0").await;
            let mut current = int(&rows[0].columns[0]).expect("v");
            let mut mine = 0;
            while mine < INCREMENTS {
                let rows = session
                    .execute_unpaged(&update, (current + 1, current))
                    .await
                    .expect("conditional update")
                    .into_rows_result()
                    .expect("rows");
                let row = rows.first_row::<Row>().expect("one row");
                if applied(&row) {
                    mine += 1;
                    applied_total.fetch_add(1, Ordering::SeqCst);
                    current += 1;
                } else {
                    // The failure row carries the value that beat us.
                    current = int(&row.columns[1]).expect("current v");
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    let total = applied_total.load(Ordering::SeqCst);
    assert_eq!(total, CLIENTS * INCREMENTS);
    let (_, rows) = result(&session, "SELECT v FROM lwt.counter WHERE k = 0").await;
    assert_eq!(int(&rows[0].columns[0]), Some(total as i32));
}

#[tokio::test]
async fn failures_answer_with_the_current_values_of_the_condition_columns() {
    let (_node, session) = setup().await;
    run(
        &session,
        &["INSERT INTO lwt.t (k, c, s, v, m, l) VALUES (1, 1, 7, 10, {'a': 1}, [5, 6])"],
    )
    .await;
    let (names, rows) = result(
        &session,
        "UPDATE lwt.t SET v = 11 WHERE k = 1 AND c = 1 IF v = 9 AND s = 6",
    )
    .await;
    assert_eq!(names, ["[applied]", "v", "s"]);
    assert!(!applied(&rows[0]));
    assert_eq!(int(&rows[0].columns[1]), Some(10));
    assert_eq!(int(&rows[0].columns[2]), Some(7));

    let (names, rows) = result(
        &session,
        "UPDATE lwt.t SET v = 11 WHERE k = 1 AND c = 1 IF m['a'] = 2",
    )
    .await;
    assert_eq!(names, ["[applied]", "m"]);
    assert!(!applied(&rows[0]));

    for (condition, holds) in [
        ("v = 10", true),
        ("v != 10", false),
        ("v < 11", true),
        ("v <= 9", false),
        ("v > 9", true),
        ("v >= 11", false),
        ("v IN (1, 10)", true),
        ("v IN (1, 2)", false),
        ("m['a'] = 1", true),
        ("m['b'] = null", true),
        ("l[1] = 6", true),
        ("l[5] = 6", false),
        ("s = 7", true),
    ] {
        let query = format!("UPDATE lwt.t SET v = 10 WHERE k = 1 AND c = 1 IF {condition}");
        let (_, rows) = result(&session, query).await;
        assert_eq!(applied(&rows[0]), holds, "IF {condition}");
    }
    // A missing row: its columns are null, and only [applied] comes back.
    let (names, rows) = result(
        &session,
        "UPDATE lwt.t SET v = 1 WHERE k = 9 AND c = 9 IF v = 1",
    )
    .await;
    assert_eq!(names, ["[applied]"]);
    assert!(!applied(&rows[0]));
    let (_, rows) = result(
        &session,
        "DELETE FROM lwt.t WHERE k = 1 AND c = 1 IF EXISTS",
    )
    .await;
    assert!(applied(&rows[0]));
    let (_, rows) = result(
        &session,
        "DELETE FROM lwt.t WHERE k = 1 AND c = 1 IF EXISTS",
    )
    .await;
    assert!(!applied(&rows[0]));
    let err = session
        .query_unpaged(
            "UPDATE lwt.t SET v = 1 WHERE k = 1 AND c = 1 IF v < null",
            &[],
        )
        .await
        .expect_err("null comparison");
    assert!(format!("{err}").contains("Invalid comparison with null for operator \"<\""));
}

#[tokio::test]
async fn conditional_batches_apply_together_on_one_partition() {
    let (_node, session) = setup().await;
    let batch = |statements: &[&str]| {
        let mut batch = Batch::default();
        for s in statements {
            batch.append_statement(*s);
        }
        batch
    };
    let create = batch(&[
        "INSERT INTO lwt.t (k, c, v) VALUES (2, 1, 1) IF NOT EXISTS",
        "INSERT INTO lwt.t (k, c, v) VALUES (2, 2, 2) IF NOT EXISTS",
        "UPDATE lwt.t SET s = 5 WHERE k = 2",
    ]);
    let values = ((), (), ());
    let rows = session.batch(&create, values).await.expect("batch");
    let rows = rows.into_rows_result().expect("rows");
    assert!(applied(&rows.first_row::<Row>().expect("row")));

    // One condition fails: nothing is written, and every row read comes back with the
    // primary key first.
    let update = batch(&[
        "UPDATE lwt.t SET v = 10 WHERE k = 2 AND c = 1 IF v = 1",
        "UPDATE lwt.t SET v = 20 WHERE k = 2 AND c = 2 IF v = 3",
    ]);
    let rows = session.batch(&update, ((), ())).await.expect("batch");
    let rows = rows.into_rows_result().expect("rows");
    let names: Vec<&str> = rows.column_specs().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["[applied]", "k", "c", "v"]);
    let rows: Vec<Row> = rows
        .rows::<Row>()
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| !applied(r)));
    assert_eq!(int(&rows[1].columns[3]), Some(2));
    let (_, current) = result(&session, "SELECT v FROM lwt.t WHERE k = 2 AND c = 1").await;
    assert_eq!(int(&current[0].columns[0]), Some(1));

    let (_, rows) = result(
        &session,
        "BEGIN BATCH UPDATE lwt.t SET v = 10 WHERE k = 2 AND c = 1 IF v = 1; \
         UPDATE lwt.t SET v = 20 WHERE k = 2 AND c = 2 IF v = 2 APPLY BATCH",
    )
    .await;
    assert!(applied(&rows[0]));
    let (_, current) = result(&session, "SELECT v FROM lwt.t WHERE k = 2").await;
    let values: Vec<Option<i32>> = current.iter().map(|r| int(&r.columns[0])).collect();
    assert_eq!(values, [Some(10), Some(20)]);

    let spanning = batch(&[
        "INSERT INTO lwt.t (k, c, v) VALUES (3, 1, 1) IF NOT EXISTS",
        "INSERT INTO lwt.t (k, c, v) VALUES (4, 1, 1)",
    ]);
    let err = session
        .batch(&spanning, ((), ()))
        .await
        .expect_err("two partitions");
    assert!(db_error(&err).is_some());
    assert!(format!("{err}").contains("Batch with conditions cannot span multiple partitions"));
}

#[tokio::test]
async fn prepared_conditions_bind_in_text_order_and_serial_levels_are_accepted() {
    let (_node, session) = setup().await;
    let prepared = session
        .prepare("UPDATE lwt.t SET v = ? WHERE k = ? AND c = ? IF v = ? AND m[?] = ?")
        .await
        .expect("prepare");
    let names: Vec<&str> = prepared
        .get_variable_col_specs()
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(names, ["v", "k", "c", "v", "key(m)", "value(m)"]);
    assert_eq!(prepared.get_variable_pk_indexes()[0].index, 1);
    run(
        &session,
        &["INSERT INTO lwt.t (k, c, v, m) VALUES (5, 1, 1, {'x': 2})"],
    )
    .await;
    let rows = session
        .execute_unpaged(&prepared, (3, 5, 1, 1, "x", 2))
        .await
        .expect("execute")
        .into_rows_result()
        .expect("rows");
    assert!(applied(&rows.first_row::<Row>().expect("row")));

    let mut insert = Statement::new("INSERT INTO lwt.t (k, c, v) VALUES (6, 1, 1) IF NOT EXISTS");
    insert.set_serial_consistency(Some(SerialConsistency::LocalSerial));
    let (_, rows) = result(&session, insert).await;
    assert!(applied(&rows[0]));
    let mut read = Statement::new("SELECT v FROM lwt.t WHERE k = 6 AND c = 1");
    read.set_consistency(Consistency::Serial);
    let (_, rows) = result(&session, read).await;
    assert_eq!(int(&rows[0].columns[0]), Some(1));

    let mut serial_commit =
        Statement::new("INSERT INTO lwt.t (k, c, v) VALUES (7, 1, 1) IF NOT EXISTS");
    serial_commit.set_consistency(Consistency::Serial);
    let err = session
        .query_unpaged(serial_commit, &[])
        .await
        .expect_err("SERIAL commit");
    assert!(format!("{err}").contains("is not supported as conditional update commit consistency"));
    let err = session
        .query_unpaged(
            "INSERT INTO lwt.t (k, c, v) VALUES (7, 1, 1) IF NOT EXISTS USING TIMESTAMP 5",
            &[],
        )
        .await
        .expect_err("custom timestamp");
    assert!(format!("{err}").contains("Cannot provide custom timestamp for conditional updates"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lwt_at_replication_factor_3_runs_through_paxos() {
    // One node cannot hold three replicas: SERIAL needs two of them, as in Cassandra.
    let (_node, session) = setup().await;
    run(
        &session,
        &[
            "CREATE KEYSPACE rf3 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            "CREATE TABLE rf3.t (k int PRIMARY KEY, v int)",
        ],
    )
    .await;
    let err = session
        .query_unpaged("INSERT INTO rf3.t (k, v) VALUES (1, 1) IF NOT EXISTS", &[])
        .await
        .expect_err("three replicas on one node");
    assert!(
        matches!(
            db_error(&err),
            Some(scylla::errors::DbError::Unavailable {
                required: 2,
                alive: 1,
                ..
            })
        ),
        "{err}"
    );
    // Three nodes: each statement applies, through Paxos.
    let cluster = super::cluster::TestCluster::start(3);
    cluster.wait_all_up().await;
    let session = cluster.session(1).await;
    run(
        &session,
        &[
            "CREATE KEYSPACE rf3 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            "CREATE TABLE rf3.t (k int PRIMARY KEY, v int)",
        ],
    )
    .await;
    for query in [
        "INSERT INTO rf3.t (k, v) VALUES (1, 1) IF NOT EXISTS",
        "UPDATE rf3.t SET v = 2 WHERE k = 1 IF v = 1",
        "DELETE FROM rf3.t WHERE k = 1 IF EXISTS",
    ] {
        let (_, rows) = result(&session, query).await;
        assert!(applied(&rows[0]), "{query}: {rows:?}");
    }
    let (_, rows) = result(&session, "SELECT v FROM rf3.t WHERE k = 1").await;
    assert!(rows.is_empty(), "{rows:?}");
}
