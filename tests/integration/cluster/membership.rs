//! Membership on real processes: a node whose only seed is itself is a one-node cluster; a
//! killed or paused node is marked down by every other node within 15 s and up again within
//! 5 s of listening, and a driver connection registered for STATUS_CHANGE is told DOWN and
//! UP; `system.peers` and `system.peers_v2` describe every other node as its own
//! `system.local` does; and a node with the wrong secret, the wrong cluster name or a live
//! node's host id is refused, the reason logged, and does not join — while the same node
//! started right joins (the control).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use scylla::client::session::Session;
use scylla::frame::types::Consistency;
use uuid::Uuid;

use super::availability::at;
use super::{events, expect_events, ClusterBuilder, TestCluster};
use crate::data_path::{rows, run};
use crate::node::{eventually, metric};

/// Cassandra's and the bounds: down within 15 s, up within 5 s of listening.
const DOWN_WITHIN: Duration = Duration::from_secs(15);
const UP_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_seeded_only_by_itself_is_a_one_node_cluster() {
    let cluster = ClusterBuilder::new(1).self_seeded().start();
    let status = cluster.status(1, None);
    assert_eq!(status.nodes.len(), 1, "{status:?}");
    assert!(status.nodes[0].up && status.nodes[0].state == "Normal");
    assert_eq!(status.metadata.voters, 1, "{status:?}");
    let s = cluster.session(1).await;
    run(
        &s,
        &[
            "CREATE KEYSPACE solo WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 1}",
            "CREATE TABLE solo.t (k int PRIMARY KEY, v int)",
        ],
    )
    .await;
    s.query_unpaged(
        at("INSERT INTO solo.t (k, v) VALUES (1, 1)", Consistency::All),
        &[],
    )
    .await
    .expect("write at ALL");
    let row = s
        .query_unpaged(
            at("SELECT v FROM solo.t WHERE k = 1", Consistency::Quorum),
            &[],
        )
        .await
        .expect("read")
        .into_rows_result()
        .expect("rows")
        .single_row::<(i32,)>()
        .expect("one row");
    assert_eq!(row, (1,));
    let peers = rows(&s, "SELECT peer FROM system.peers").await.len();
    assert_eq!(peers, 0);
    let text = cluster.scrape_metrics(1);
    assert_eq!(metric(&text, "ringcache_cluster_nodes"), Some(1.0));
    // It never dialled itself as a peer.
    assert!(
        !text.contains("ringcache_internode_messages_total{"),
        "internode traffic on a one-node cluster"
    );
}

/// Polls node `i`'s `ringcache status` until node `j` is up (`UN`) or down (`DN`); panics
/// if that takes past `by`. Prints how long it took from `since`.
fn wait_seen(cluster: &TestCluster, i: usize, j: usize, up: bool, since: Instant, by: Instant) {
    let address = cluster.ip(j).to_string();
    loop {
        let status = cluster.status(i, None);
        let row = status.nodes.iter().find(|n| n.address == address);
        if row.is_some_and(|n| n.up == up && n.state == "Normal") {
            eprintln!(
                "node {i} saw node {j} {} after {:.1} s",
                if up { "up" } else { "down" },
                since.elapsed().as_secs_f64()
            );
            return;
        }
        assert!(
            Instant::now() < by,
            "node {i} did not see node {j} {} in time: {row:?}",
            if up { "up" } else { "down" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_paused_nodes_are_marked_down_and_up_within_bounds_and_drivers_told() {
    let mut cluster = TestCluster::start(3);
    cluster.wait_all_up().await;
    peers_describe_every_other_node(&cluster).await;
    let status_events = events(cluster.cql(1), &["STATUS_CHANGE"]);

    cluster.kill9(3);
    seen_by(&cluster, &status_events, [1, 2], 3, false);
    cluster.restart(3);
    seen_by(&cluster, &status_events, [1, 2], 3, true);

    // A paused node keeps its connections open and answers nothing: only the failure
    // detector can tell.
    cluster.pause(2);
    seen_by(&cluster, &status_events, [1, 3], 2, false);
    cluster.resume(2);
    seen_by(&cluster, &status_events, [1, 3], 2, true);
}

/// Nodes `watchers` each see node `j` up (within [`UP_WITHIN`]) or down (within
/// [`DOWN_WITHIN`]) from now, and `events` (registered on a node) tell UP or DOWN for it.
fn seen_by(
    cluster: &TestCluster,
    events: &std::sync::mpsc::Receiver<(String, std::net::SocketAddr)>,
    watchers: [usize; 2],
    j: usize,
    up: bool,
) {
    let since = Instant::now();
    let within = if up { UP_WITHIN } else { DOWN_WITHIN };
    for i in watchers {
        wait_seen(cluster, i, j, up, since, since + within);
    }
    let change = if up { "UP" } else { "DOWN" };
    expect_events(events, &[(change, cluster.cql(j))]);
}

/// A node's `system.local` facts, as its peers must repeat them.
#[derive(Debug, PartialEq)]
struct Facts {
    host_id: Uuid,
    address: IpAddr,
    data_center: String,
    rack: String,
    tokens: Vec<String>,
    schema_version: Uuid,
    release_version: String,
}

type LocalRow = (Uuid, IpAddr, String, String, Vec<String>, Uuid, String);

type PeerV2Row = (
    IpAddr,
    i32,
    IpAddr,
    i32,
    Uuid,
    String,
    String,
    Vec<String>,
    Uuid,
    String,
);

async fn local_facts(session: &Session) -> Result<Facts, String> {
    let (host_id, address, data_center, rack, mut tokens, schema_version, release_version) =
        session
            .query_unpaged(
                "SELECT host_id, rpc_address, data_center, rack, tokens, schema_version, \
                 release_version FROM system.local",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?
            .single_row::<LocalRow>()
            .map_err(|e| e.to_string())?;
    tokens.sort();
    Ok(Facts {
        host_id,
        address,
        data_center,
        rack,
        tokens,
        schema_version,
        release_version,
    })
}

/// Whether every node's `system.peers_v2` and `system.peers` hold exactly one row per other
/// node with what that node says of itself, native and internode ports included.
async fn peers_match(cluster: &TestCluster, sessions: &[Session]) -> Result<(), String> {
    let mut facts = Vec::new();
    for s in sessions {
        facts.push(local_facts(s).await?);
    }
    for (i, s) in sessions.iter().enumerate() {
        let v2 = s
            .query_unpaged(
                "SELECT peer, peer_port, native_address, native_port, host_id, data_center, \
                 rack, tokens, schema_version, release_version FROM system.peers_v2",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        for row in v2.rows::<PeerV2Row>().map_err(|e| e.to_string())? {
            let (peer, peer_port, native, native_port, host_id, dc, rack, mut tokens, sv, rv) =
                row.map_err(|e| format!("node {}: a peers_v2 row with nulls: {e}", i + 1))?;
            tokens.sort();
            let expected = (
                cluster.ports.internode as i32,
                cluster.ports.cql as i32,
                peer,
            );
            if (peer_port, native_port, native) != expected {
                return Err(format!(
                    "node {}: peer {peer} at ports {peer_port}/{native_port} via {native}",
                    i + 1
                ));
            }
            seen.push(Facts {
                host_id,
                address: peer,
                data_center: dc,
                rack,
                tokens,
                schema_version: sv,
                release_version: rv,
            });
        }
        let mut others: Vec<&Facts> = facts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, f)| f)
            .collect();
        others.sort_by_key(|f| f.host_id);
        seen.sort_by_key(|f| f.host_id);
        if seen.iter().collect::<Vec<_>>() != others {
            return Err(format!(
                "node {} peers_v2 {seen:?} != the peers' own {others:?}",
                i + 1
            ));
        }
        // system.peers: the same nodes, addressed by rpc_address.
        let v1 = s
            .query_unpaged(
                "SELECT peer, rpc_address, host_id, release_version FROM system.peers",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?;
        let mut v1: Vec<(IpAddr, IpAddr, Uuid, String)> = v1
            .rows()
            .map_err(|e| e.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        v1.sort_by_key(|r| r.2);
        let expected: Vec<_> = others
            .iter()
            .map(|f| (f.address, f.address, f.host_id, f.release_version.clone()))
            .collect();
        if v1 != expected {
            return Err(format!("node {} peers {v1:?} != {expected:?}", i + 1));
        }
    }
    if facts.iter().any(|f| f.release_version.is_empty()) {
        return Err(format!("an empty release_version: {facts:?}"));
    }
    Ok(())
}

/// Waits (bounded; schema versions travel by gossip) until [`peers_match`] holds.
async fn peers_describe_every_other_node(cluster: &TestCluster) {
    let mut sessions = Vec::new();
    for i in 1..=cluster.len() {
        sessions.push(cluster.session(i).await);
    }
    let deadline = Instant::now() + crate::node::EVENT_TIMEOUT;
    loop {
        match peers_match(cluster, &sessions).await {
            Ok(()) => return,
            Err(why) => assert!(Instant::now() < deadline, "{why}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Node 3 started with `env` on an empty data directory (after `prepare`) is refused:
/// `refusal` appears in the log of node `logged_by`, and nodes 1 and 2 still list only
/// each other.
async fn refused(
    cluster: &mut TestCluster,
    env: &[(&str, &str)],
    prepare: impl FnOnce(&std::path::Path),
    logged_by: usize,
    refusal: &str,
) {
    let dir = cluster.data_dir(3);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("data dir");
    prepare(&dir);
    for (key, value) in env {
        cluster.set_env(3, key, value);
    }
    cluster.restart(3);
    eventually(&format!("node {logged_by} logs {refusal:?}"), || {
        cluster.log(logged_by).contains(refusal)
    })
    .await;
    // A refused node stays out however long it keeps trying: a gossip round of node 1
    // (a second) passes several times without it appearing.
    let before = cluster.log(logged_by).matches(refusal).count();
    eventually("node 3 is refused again", || {
        cluster.log(logged_by).matches(refusal).count() >= before + 2
    })
    .await;
    for i in [1, 2] {
        let status = cluster.status(i, None);
        let addresses: Vec<&str> = status.nodes.iter().map(|n| n.address.as_str()).collect();
        assert_eq!(
            addresses.len(),
            2,
            "node {i} lists {addresses:?} after {refusal:?}"
        );
        assert!(
            !addresses.contains(&cluster.ip(3).to_string().as_str()),
            "{addresses:?}"
        );
    }
    let s1 = cluster.session(1).await;
    let peers = rows(&s1, "SELECT peer FROM system.peers").await.len();
    assert_eq!(peers, 1, "node 1 lists node 3 after {refusal:?}");
    cluster.kill9(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_cluster_name_or_a_live_host_id_is_refused_and_nothing_joins() {
    let mut cluster = ClusterBuilder::new(3).start_only(2).start();
    cluster.wait_all_up().await;
    let secret = cluster.env_value(1, "RINGCACHE_CLUSTER_SECRET");

    refused(
        &mut cluster,
        &[("RINGCACHE_CLUSTER_SECRET", "not-the-secret")],
        |_| {},
        3,
        "does not know this cluster's secret",
    )
    .await;
    refused(
        &mut cluster,
        &[
            ("RINGCACHE_CLUSTER_SECRET", &secret),
            ("RINGCACHE_CLUSTER_NAME", "another cluster"),
        ],
        |_| {},
        1,
        "cluster name \"another cluster\" is not this node's",
    )
    .await;
    // Node 2's identity file: its host id (and tokens) in a second process.
    let node2 = std::fs::read(cluster.data_dir(2).join("node.json")).expect("node 2 identity");
    let id: serde_json::Value = serde_json::from_slice(&node2).expect("identity JSON");
    let host_id = id["host_id"].as_str().expect("host_id").to_owned();
    refused(
        &mut cluster,
        &[("RINGCACHE_CLUSTER_NAME", "ringcache")],
        |dir| std::fs::write(dir.join("node.json"), &node2).expect("copy identity"),
        1,
        &format!("host id {host_id} is held by the live node"),
    )
    .await;

    // The control: node 3 with the cluster's secret, name and its own identity joins.
    refused_nothing(&mut cluster).await;
}

/// Node 3 on an empty data directory with the cluster's settings joins.
async fn refused_nothing(cluster: &mut TestCluster) {
    let dir = cluster.data_dir(3);
    std::fs::remove_dir_all(&dir).expect("clear node 3");
    cluster.restart(3);
    cluster.wait_all_up().await;
    assert_eq!(cluster.status(1, None).nodes.len(), 3);
}
