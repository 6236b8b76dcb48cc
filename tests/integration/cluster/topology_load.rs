//! The chat application through every change of topology at once: `ringcache chat load`
//! runs against a three-node cluster whose chat keyspace has RF 3 while a fourth node joins,
//! the second is decommissioned, and the third is killed and replaced by a fifth; the load,
//! still running when the last change is done, verifies every post it made with zero
//! errors, and `ringcache status` gives the chat keyspace 100 % × RF of ownership over the
//! three nodes left (1, 4 and 5).

use std::process::{Child, Command, Stdio};

use super::{ClusterBuilder, TestCluster};
use crate::node::eventually;

/// Seconds of chat traffic: longer than the three changes take on this machine (the test
/// checks that the load is still running when they are done).
const LOAD_SECS: u64 = 60;

/// Whether node `i` lists exactly `nodes`, each up and NORMAL, and no range movement is in
/// progress (the last mover released it).
fn lists_exactly(cluster: &TestCluster, i: usize, nodes: &[usize]) -> bool {
    cluster.status(i, None).movement.is_none() && cluster.lists_exactly(i, nodes)
}

/// The load's process, killed if the test ends before it does.
struct Load(Option<Child>);

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            crate::node::kill_and_reap(&mut child);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_load_verifies_through_a_join_a_decommission_and_a_replacement() {
    let mut cluster = ClusterBuilder::new(5).start_only(3).start();
    cluster.wait_all_up().await;
    let session = cluster.session(1).await;
    session
        .query_unpaged(
            "ALTER KEYSPACE chat WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 3}",
            &[],
        )
        .await
        .expect("chat at RF 3");
    let report = tempfile::NamedTempFile::new().expect("report file");
    let load = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .args(["chat", "--contact", &cluster.cql(1).to_string(), "load"])
        .args(["--users", "20", "--threads", "16"])
        .args(["--duration", &LOAD_SECS.to_string(), "--rate", "100"])
        .stdout(report.reopen().expect("report"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chat load");
    crate::node::watch(load.id());
    let mut load = Load(Some(load));

    // A fourth node joins.
    cluster.restart(4);
    eventually("nodes 1 to 4 are up and NORMAL, the join finished", || {
        lists_exactly(&cluster, 1, &[1, 2, 3, 4])
    })
    .await;
    // The second leaves.
    let metrics = cluster.metrics(2).to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ringcache"))
            .args(["decommission", "-H", &metrics])
            .output()
            .expect("ringcache decommission")
    })
    .await
    .expect("decommission");
    assert!(
        out.status.success(),
        "decommission: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cluster.wait_exit(2).success());
    // The third dies and a fifth replaces it.
    cluster.kill9(3);
    for i in [1, 4] {
        cluster.wait_sees_down(i).await;
    }
    cluster.set_env(5, "RINGCACHE_REPLACE_ADDRESS", &cluster.ip(3).to_string());
    cluster.restart(5);
    eventually("nodes 1, 4 and 5 are up and NORMAL, and only they", || {
        lists_exactly(&cluster, 1, &[1, 4, 5])
    })
    .await;
    let child = load.0.as_mut().expect("load");
    assert!(
        child.try_wait().expect("load status").is_none(),
        "the chat load ended before the changes did: raise LOAD_SECS"
    );

    let status = cluster.status(1, Some("chat"));
    let owns: f64 = status.nodes.iter().filter_map(|n| n.owns).sum();
    assert!((owns - 3.0).abs() < 1e-6, "chat's ownership sums to {owns}");

    let mut child = load.0.take().expect("load");
    let exit = tokio::task::spawn_blocking(move || {
        let status = child.wait().expect("chat load");
        crate::node::unwatch(child.id());
        status
    })
    .await
    .expect("load task");
    let stdout = std::fs::read_to_string(report.path()).expect("report");
    println!("{stdout}");
    assert!(exit.success(), "chat load failed:\n{stdout}");
    assert!(stdout.contains("-> PASS"), "{stdout}");
    let patterns = super::drivers::pattern_errors(&stdout);
    assert!(patterns.len() >= 4, "pattern lines:\n{stdout}");
    assert!(
        patterns.iter().all(|(_, errors)| *errors == 0),
        "errors in:\n{stdout}"
    );
}
