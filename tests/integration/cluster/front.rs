//! Two tiers: ringcache nodes with `[backend] engine = "cql"` in front of a ringcache
//! cluster on the embedded store, which the front tier only ever reaches over CQL, as it
//! would reach ScyllaDB or Cassandra. Clients talk to the front tier only.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use futures::TryStreamExt;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::frame::types::Consistency;
use scylla::statement::unprepared::Statement;

use ringcache::protocol::{ChangeType, Event, SchemaChange, SchemaTarget};

use super::{ClusterBuilder, TestCluster};
use crate::node::{eventually, metric};

/// A front tier of `n` nodes whose backend is `backend` (contact point: its node 1).
fn front_of(backend: &TestCluster, n: usize) -> TestCluster {
    ClusterBuilder::new(n)
        .env("RINGCACHE_BACKEND__ENGINE", "cql")
        .env(
            "RINGCACHE_BACKEND__CONTACT_POINTS",
            &backend.cql(1).to_string(),
        )
        .start()
}

/// The error the backend answered, as the client's driver decoded it.
fn db_error(error: &ExecutionError) -> Option<&DbError> {
    match error {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => Some(db),
        _ => None,
    }
}

async fn session_to(addrs: &[SocketAddr]) -> Session {
    SessionBuilder::new()
        .known_nodes(addrs.iter().map(|a| a.to_string()))
        .build()
        .await
        .expect("session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_tier_passes_requests_and_answers_through_to_its_backend() {
    let backend = TestCluster::start(3);
    backend.wait_all_up().await;
    let front = front_of(&backend, 3);
    front.wait_all_up().await;

    // Drivers see the front tier's ring: the nodes they learn are front nodes.
    let session = session_to(&[front.cql(1)]).await;
    let fronts: BTreeSet<SocketAddr> = (1..=3).map(|i| front.cql(i)).collect();
    eventually(
        "the driver knows the three front nodes and nothing else",
        || {
            let known: BTreeSet<SocketAddr> = session
                .get_cluster_state()
                .get_nodes_info()
                .iter()
                .map(|n| SocketAddr::new(n.address.ip(), n.address.port()))
                .collect();
            known == fronts
        },
    )
    .await;

    // DDL goes to the backend; its errors come back with their codes and fields.
    session
        .query_unpaged(
            "CREATE KEYSPACE fr WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            (),
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged(
            "CREATE TABLE fr.msgs (room text, seq int, body text, PRIMARY KEY (room, seq))",
            (),
        )
        .await
        .expect("create table");
    let again = session
        .query_unpaged(
            "CREATE KEYSPACE fr WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            (),
        )
        .await
        .expect_err("the keyspace exists");
    assert_eq!(
        db_error(&again),
        Some(&DbError::AlreadyExists {
            keyspace: "fr".into(),
            table: String::new()
        }),
        "{again:?}"
    );
    let invalid = session
        .query_unpaged("SELECT * FROM fr.nothing_here", ())
        .await
        .expect_err("no such table");
    assert_eq!(db_error(&invalid), Some(&DbError::Invalid), "{invalid:?}");
    let syntax = session
        .query_unpaged("SELEKT 1", ())
        .await
        .expect_err("not CQL");
    assert_eq!(db_error(&syntax), Some(&DbError::SyntaxError), "{syntax:?}");

    // Prepared writes and reads, token-aware from the front to the backend.
    let insert = session
        .prepare("INSERT INTO fr.msgs (room, seq, body) VALUES (?, ?, ?)")
        .await
        .expect("prepare insert");
    for seq in 0..50 {
        session
            .execute_unpaged(&insert, ("lobby", seq, format!("m{seq}")))
            .await
            .expect("insert");
    }
    // Paging: the driver's paging state goes to the backend and back.
    let mut select = session
        .prepare("SELECT seq, body FROM fr.msgs WHERE room = ?")
        .await
        .expect("prepare select");
    select.set_page_size(7);
    let rows: Vec<(i32, String)> = session
        .execute_iter(select.clone(), ("lobby",))
        .await
        .expect("paged select")
        .rows_stream::<(i32, String)>()
        .expect("typed rows")
        .try_collect()
        .await
        .expect("every page");
    let expected: Vec<(i32, String)> = (0..50).map(|s| (s, format!("m{s}"))).collect();
    assert_eq!(rows, expected);

    // DDL that bypasses the front (straight to the backend) reaches the front's clients
    // that registered for schema changes: the backend's events are relayed.
    let schema_events = super::pushed_events(front.cql(2), &["SCHEMA_CHANGE"]);
    backend
        .session(3)
        .await
        .query_unpaged("CREATE TABLE fr.elsewhere (k int PRIMARY KEY)", ())
        .await
        .expect("DDL straight at the backend");
    let wanted = Event::SchemaChange(SchemaChange {
        change: ChangeType::Created,
        target: SchemaTarget::Table {
            keyspace: "fr".into(),
            name: "elsewhere".into(),
        },
    });
    let deadline = std::time::Instant::now() + crate::node::EVENT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match schema_events.recv_timeout(left) {
            Ok(event) if event == wanted => break,
            Ok(_) => continue,
            Err(_) => panic!("the front never pushed {wanted:?}"),
        }
    }

    // What the front wrote is in the backend: read there directly.
    let direct = backend.session(2).await;
    let (count,) = direct
        .query_unpaged("SELECT count(*) FROM fr.msgs WHERE room = 'lobby'", ())
        .await
        .expect("direct read")
        .into_rows_result()
        .expect("rows")
        .single_row::<(i64,)>()
        .expect("count");
    assert_eq!(count, 50);

    // Lightweight transactions: the [applied] row comes back as the backend built it.
    let cas = "INSERT INTO fr.msgs (room, seq, body) VALUES ('lobby', 0, 'again') IF NOT EXISTS";
    let (applied, room, seq, body) = session
        .query_unpaged(cas, ())
        .await
        .expect("cas")
        .into_rows_result()
        .expect("rows")
        .single_row::<(bool, String, i32, String)>()
        .expect("the existing row");
    assert_eq!(
        (applied, room.as_str(), seq, body.as_str()),
        (false, "lobby", 0, "m0")
    );

    // USE: the front answers it once the backend has the keyspace, and the connection's
    // unqualified statements then run in it.
    session.use_keyspace("fr", false).await.expect("use fr");
    let (body,) = session
        .query_unpaged("SELECT body FROM msgs WHERE room = 'lobby' AND seq = 7", ())
        .await
        .expect("unqualified select")
        .into_rows_result()
        .expect("rows")
        .single_row::<(String,)>()
        .expect("row");
    assert_eq!(body, "m7");
    let missing = session
        .use_keyspace("no_such_keyspace", false)
        .await
        .expect_err("no such keyspace");
    assert!(
        format!("{missing:?}").contains("does not exist"),
        "{missing:?}"
    );

    // The schema clients see is the backend's.
    let tables = session
        .query_unpaged(
            Statement::new(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'fr'",
            ),
            (),
        )
        .await
        .expect("schema read")
        .into_rows_result()
        .expect("rows")
        .rows::<(String,)>()
        .expect("typed")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    assert_eq!(
        tables,
        vec![("elsewhere".to_owned(),), ("msgs".to_owned(),)]
    );

    // Every backend series the dashboard queries is exported by a front node that served.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/grafana/dashboards/ringcache.json"
        ))
        .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            for (at, _) in expr.match_indices("ringcache_backend_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                queried.insert(name);
            }
        }
    }
    assert!(queried.len() >= 4, "{queried:?}");
    let expositions: Vec<String> = (1..=3).map(|i| front.scrape_metrics(i)).collect();
    for name in &queried {
        assert!(
            expositions
                .iter()
                .any(|e| e.lines().any(|l| l.starts_with(name.as_str()))),
            "no front node exports {name}"
        );
    }
    let execute = "ringcache_backend_request_duration_seconds_count{opcode=\"execute\"}";
    assert!(
        expositions
            .iter()
            .any(|e| metric(e, execute).unwrap_or(0.0) > 0.0),
        "backend requests are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprepared_after_a_backend_restart_is_invisible_to_the_client() {
    let mut backend = TestCluster::start(1);
    backend.wait_all_up().await;
    let front = front_of(&backend, 1);
    let session = front.session(1).await;
    session
        .query_unpaged(
            "CREATE KEYSPACE up WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            (),
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged("CREATE TABLE up.t (k int PRIMARY KEY, v int)", ())
        .await
        .expect("create table");
    let insert = session
        .prepare("INSERT INTO up.t (k, v) VALUES (?, ?)")
        .await
        .expect("prepare");
    session
        .execute_unpaged(&insert, (1, 1))
        .await
        .expect("insert");

    // The backend forgets its prepared statements when it restarts.
    backend.kill9(1);
    backend.restart(1);
    backend.wait_all_up().await;
    // The front finds the restarted backend node again (a read needs no statement).
    let deadline = std::time::Instant::now() + crate::node::EVENT_TIMEOUT;
    while let Err(error) = session.query_unpaged("SELECT k FROM up.t", ()).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the front never reached the restarted backend: {error:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The front prepares again and retries: the client's execute just works, and the
    // driver never had to prepare again itself.
    session
        .execute_unpaged(&insert, (2, 2))
        .await
        .expect("execute after the backend restarted");
    let exposition = front.scrape_metrics(1);
    assert_eq!(
        metric(&exposition, "ringcache_backend_reprepares_total"),
        Some(1.0),
        "the front prepared the statement again once"
    );
    let errors = metric(&exposition, "ringcache_errors_total{code=\"unprepared\"}");
    assert_eq!(
        errors.unwrap_or(0.0),
        0.0,
        "the client never saw Unprepared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_faults_reach_the_client_as_the_errors_a_cassandra_client_expects() {
    let mut backend = TestCluster::start(3);
    backend.wait_all_up().await;
    let front = ClusterBuilder::new(1)
        .env("RINGCACHE_BACKEND__ENGINE", "cql")
        .env(
            "RINGCACHE_BACKEND__CONTACT_POINTS",
            &backend.cql(1).to_string(),
        )
        .env("RINGCACHE_BACKEND__REQUEST_TIMEOUT_MS", "1500")
        .start();
    let session = front.session(1).await;
    session
        .query_unpaged(
            "CREATE KEYSPACE bf WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            (),
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged("CREATE TABLE bf.t (k int PRIMARY KEY, v int)", ())
        .await
        .expect("create table");
    let mut insert = session
        .prepare("INSERT INTO bf.t (k, v) VALUES (?, ?)")
        .await
        .expect("prepare insert");
    insert.set_consistency(Consistency::All);
    for k in 0..100 {
        session
            .execute_unpaged(&insert, (k, k))
            .await
            .expect("insert at ALL");
    }

    // A backend node killed in the middle of a read load: reads (idempotent) move to
    // another replica and every one succeeds.
    let mut read = session
        .prepare("SELECT v FROM bf.t WHERE k = ?")
        .await
        .expect("prepare read");
    read.set_consistency(Consistency::One);
    let reads = |from: i32| {
        let session = &session;
        let read = &read;
        async move {
            for k in from..from + 300 {
                let k = k % 100;
                let (v,) = session
                    .execute_unpaged(read, (k,))
                    .await
                    .unwrap_or_else(|e| panic!("read of {k} failed: {e:?}"))
                    .into_rows_result()
                    .expect("rows")
                    .single_row::<(i32,)>()
                    .expect("row");
                assert_eq!(v, k);
            }
        }
    };
    let during = tokio::spawn({
        let session = front.session(1).await;
        let read = read.clone();
        async move {
            let mut done = 0;
            while done < 2000 {
                let k = done % 100;
                session
                    .execute_unpaged(&read, (k,))
                    .await
                    .unwrap_or_else(|e| panic!("read {done} during the kill failed: {e:?}"));
                done += 1;
            }
        }
    });
    reads(0).await;
    backend.kill9(2);
    reads(300).await;
    during.await.expect("reads while a backend node died");

    // The backend's own errors pass through with their fields: a write at ALL with a
    // replica down is Unavailable, as the backend's coordinator counted it.
    for i in [1, 3] {
        backend.wait_sees_down(i).await;
    }
    let unavailable = session
        .execute_unpaged(&insert, (1000, 0))
        .await
        .expect_err("ALL with a replica down");
    assert_eq!(
        db_error(&unavailable),
        Some(&DbError::Unavailable {
            consistency: Consistency::All,
            required: 3,
            alive: 2
        }),
        "{unavailable:?}"
    );

    // A backend that does not answer: the client gets a read timeout, not a hang.
    backend.pause(1);
    backend.pause(3);
    let timed_out = session
        .execute_unpaged(&read, (1,))
        .await
        .expect_err("nobody answers");
    backend.resume(1);
    backend.resume(3);
    assert_eq!(
        db_error(&timed_out),
        Some(&DbError::ReadTimeout {
            consistency: Consistency::One,
            received: 0,
            required: 1,
            data_present: false
        }),
        "{timed_out:?}"
    );
    let exposition = front.scrape_metrics(1);
    assert_eq!(
        metric(
            &exposition,
            "ringcache_backend_errors_total{code=\"timeout\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &exposition,
            "ringcache_backend_errors_total{code=\"unavailable\"}"
        ),
        Some(1.0)
    );
}

/// A TCP proxy between a front node and its backend that passes every frame through,
/// except the answer to a request whose body contains one of `mangled`'s markers: that
/// answer is replaced by a RESULT frame with the marker's body.
async fn mangling_proxy(
    backend: SocketAddr,
    mangled: &'static [(&'static [u8], &'static [u8])],
) -> SocketAddr {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn frame(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).await.ok()?;
        let length = u32::from_be_bytes(header[5..9].try_into().ok()?) as usize;
        let mut whole = header.to_vec();
        whole.resize(9 + length, 0);
        stream.read_exact(&mut whole[9..]).await.ok()?;
        Some(whole)
    }
    let stream_id = |f: &[u8]| i16::from_be_bytes([f[2], f[3]]);

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(backend).await else {
                continue;
            };
            let marked = Arc::new(Mutex::new(std::collections::HashMap::new()));
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let requests = marked.clone();
            tokio::spawn(async move {
                while let Some(f) = frame(&mut client_read).await {
                    for (marker, body) in mangled {
                        if f.windows(marker.len()).any(|w| w == *marker) {
                            requests.lock().unwrap().insert(stream_id(&f), *body);
                        }
                    }
                    if server_write.write_all(&f).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some(mut f) = frame(&mut server_read).await {
                    let replacement = marked.lock().unwrap().remove(&stream_id(&f));
                    if let Some(body) = replacement {
                        f.truncate(9);
                        f[1] = 0; // no flags: no tracing id or warnings before the body
                        f[4] = 0x08; // RESULT
                        f[5..9].copy_from_slice(&(body.len() as u32).to_be_bytes());
                        f.extend_from_slice(body);
                    }
                    if client_write.write_all(&f).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_backend_answer_fails_that_request_and_not_the_client_connection() {
    let backend = crate::node::TestNode::start();
    // A RESULT of no known kind (cdrs refuses it and closes that connection), and ROWS
    // cut short in their metadata (cdrs passes it on; the front checks it).
    let proxy = mangling_proxy(
        backend.cql,
        &[
            (b"corrupt_me", &[0xff; 4]),
            (b"truncate_me", &[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]),
        ],
    )
    .await;
    let front = crate::node::TestNode::start_with_env(&[
        ("RINGCACHE_BACKEND__ENGINE", "cql"),
        ("RINGCACHE_BACKEND__CONTACT_POINTS", &proxy.to_string()),
    ]);
    let session = crate::scylla_driver::connect(&front).await;
    let read = "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?";
    session
        .query_unpaged(read, ("system",))
        .await
        .expect("an answer passed through the proxy unchanged");
    for marker in ["corrupt_me", "truncate_me"] {
        let failed = session
            .query_unpaged(read, (marker,))
            .await
            .expect_err("the backend's answer does not decode");
        assert_eq!(db_error(&failed), Some(&DbError::ServerError), "{failed:?}");
    }
    // The client's connection is still there, and the front still serves it.
    for _ in 0..3 {
        session
            .query_unpaged(read, ("system",))
            .await
            .expect("the same client connection goes on");
    }
}
