//! Clients against a cluster: the `scylla` driver discovers every node from one contact
//! point and follows a node going down and coming back in its cluster state; `ringcache chat
//! load` runs and verifies against three nodes with the chat keyspace at RF 3.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::frame::types::Consistency;

use super::availability::at;
use super::TestCluster;
use crate::node::eventually;

/// Every node the driver knows, by CQL address, with whether it has open connections.
fn driver_view(session: &Session) -> Vec<(SocketAddr, bool)> {
    session
        .get_cluster_state()
        .get_nodes_info()
        .iter()
        .map(|n| {
            (
                SocketAddr::new(n.address.ip(), n.address.port()),
                n.is_connected(),
            )
        })
        .collect()
}

fn connected(session: &Session, addr: SocketAddr) -> Option<bool> {
    driver_view(session)
        .into_iter()
        .find(|(a, _)| *a == addr)
        .map(|(_, up)| up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scylla_driver_discovers_every_node_and_follows_one_down_and_up() {
    let mut cluster = TestCluster::start(3);
    cluster.wait_all_up().await;
    let session = SessionBuilder::new()
        .known_node(cluster.cql(1).to_string())
        .build()
        .await
        .expect("session from one contact point");
    let all: BTreeSet<SocketAddr> = (1..=3).map(|i| cluster.cql(i)).collect();
    eventually("the driver connects to all three nodes", || {
        let view = driver_view(&session);
        view.iter().map(|(a, _)| *a).collect::<BTreeSet<_>>() == all
            && view.iter().all(|(_, up)| *up)
    })
    .await;

    cluster.kill9(3);
    eventually("the driver sees node 3 down", || {
        connected(&session, cluster.cql(3)) == Some(false)
    })
    .await;
    for i in [1, 2] {
        assert_eq!(connected(&session, cluster.cql(i)), Some(true), "node {i}");
    }
    // QUORUM still works through the driver with one node down.
    let write = "INSERT INTO cluster_probe.up (k) VALUES (7)";
    session
        .query_unpaged(at(write, Consistency::Quorum), &[])
        .await
        .expect("QUORUM write with node 3 down");

    cluster.restart(3);
    eventually("the driver reconnects to node 3", || {
        connected(&session, cluster.cql(3)) == Some(true)
    })
    .await;
    assert_eq!(driver_view(&session).len(), 3, "the same three nodes");
    cluster.wait_all_up().await;
    session
        .query_unpaged(at(write, Consistency::All), &[])
        .await
        .expect("ALL write through the driver once node 3 is back");
}

/// The `errors` column of every pattern line of a `chat load` report.
pub(super) fn pattern_errors(report: &str) -> Vec<(String, u64)> {
    report
        .lines()
        .skip_while(|l| !l.starts_with("pattern"))
        .skip(1)
        .take_while(|l| !l.starts_with("verify:"))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            Some((fields.first()?.to_string(), fields.get(2)?.parse().ok()?))
        })
        .collect()
}

/// Runs `ringcache chat load` briefly against node 1 of a three-node cluster whose chat
/// keyspace has replication factor `rf`, and checks it verified with no error.
async fn chat_load_at_rf(rf: usize) {
    let cluster = TestCluster::start(3);
    cluster.wait_all_up().await;
    let session = cluster.session(1).await;
    let alter = format!(
        "ALTER KEYSPACE chat WITH replication = \
         {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
    );
    session
        .query_unpaged(alter.as_str(), &[])
        .await
        .expect(&alter);
    let contact = cluster.cql(1).to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
            .args(["chat", "--contact", &contact, "load"])
            .args(["--users", "10", "--threads", "8"])
            .args(["--duration", "3", "--rate", "200"])
            .output()
            .expect("run ringcache chat load")
    })
    .await
    .expect("load task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "load failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("-> PASS"), "{stdout}");
    let patterns = pattern_errors(&stdout);
    assert!(patterns.len() >= 4, "pattern lines:\n{stdout}");
    assert!(
        patterns.iter().all(|(_, errors)| *errors == 0),
        "errors in:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_load_verifies_with_zero_errors_on_three_nodes_at_rf3() {
    chat_load_at_rf(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_load_verifies_with_zero_errors_on_three_nodes_at_rf1() {
    // Every partition on one of three nodes: most requests are coordinated for another.
    chat_load_at_rf(1).await;
}
