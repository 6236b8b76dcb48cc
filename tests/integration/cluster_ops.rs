//! Seeing the cluster: `ringcache status` against real three-node clusters, and the proof
//! that token-aware routing lands requests on replicas, read from `/metrics`.
//!
//! Each node is a `ringcache serve` process on its own loopback address with the usual
//! ports (as ccm runs Cassandra), so drivers find the peers on the contact point's port.
//! Each test has its own /24 in 127.0.22–23.x.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::unprepared::Statement;
use serde_json::Value;

use super::node::{eventually, metric};

const BIN: &str = env!("CARGO_BIN_EXE_ringcache");

/// One node of a test cluster, killed when dropped.
struct ClusterNode {
    child: Option<Child>,
    ip: IpAddr,
    _dir: tempfile::TempDir,
}

impl ClusterNode {
    /// Starts a node on `ip` (CQL 9042, metrics 9180, internode 7000) joining through `seed`,
    /// and waits for its ready file.
    fn start(ip: &str, seed: Option<&str>) -> ClusterNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let ready = dir.path().join("ready.json");
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen-address", ip, "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--ready-file")
            .arg(&ready)
            .env("RINGCACHE_CLUSTER_SECRET", "cluster-ops-test")
            // A node going down is the point of one test: its peers' Raft retries are noise.
            .env("RINGCACHE_LOG", "warn,openraft=off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(seed) = seed {
            cmd.args(["--seeds", seed]);
        }
        let mut child = cmd.spawn().expect("spawn ringcache");
        super::node::watch(child.id());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                super::node::unwatch(child.id());
                panic!("node {ip} exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "node {ip} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        ClusterNode {
            child: Some(child),
            ip: ip.parse().expect("ip"),
            _dir: dir,
        }
    }

    fn cql(&self) -> SocketAddr {
        SocketAddr::new(self.ip, 9042)
    }

    fn metrics_host(&self) -> String {
        format!("{}:9180", self.ip)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            super::node::kill_and_reap(&mut child);
        }
    }

    fn scrape(&self) -> String {
        http_get(&self.metrics_host(), "/metrics").unwrap_or_default()
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_get(host: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.split_once("\r\n\r\n")?.1.to_owned())
}

/// Three nodes on `net`.1–3, the first the seed; returns once every node's `/status`
/// shows all three up and normal.
async fn three_nodes(net: &str) -> Vec<ClusterNode> {
    let seed = format!("{net}.1");
    let mut nodes = vec![ClusterNode::start(&seed, None)];
    for last in 2..=3 {
        nodes.push(ClusterNode::start(&format!("{net}.{last}"), Some(&seed)));
    }
    for node in &nodes {
        let host = node.metrics_host();
        eventually("every node sees three nodes up", || {
            status_json(&host, None).is_some_and(|s| up_normal(&s) == 3)
        })
        .await;
    }
    nodes
}

fn status_json(host: &str, keyspace: Option<&str>) -> Option<Value> {
    let path = match keyspace {
        Some(ks) => format!("/status?keyspace={ks}"),
        None => "/status".to_owned(),
    };
    serde_json::from_str(&http_get(host, &path)?).ok()
}

fn up_normal(status: &Value) -> usize {
    status["nodes"].as_array().map_or(0, |n| {
        n.iter()
            .filter(|n| n["up"] == true && n["state"] == "Normal")
            .count()
    })
}

/// `ringcache status` as a user runs it.
fn run_status(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("status")
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run ringcache status")
}

async fn session(node: &ClusterNode) -> Session {
    SessionBuilder::new()
        .known_node(node.cql().to_string())
        .build()
        .await
        .expect("scylla session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_node_its_ownership_and_a_node_going_down() {
    let mut nodes = three_nodes("127.0.22").await;
    let s = session(&nodes[0]).await;
    s.query_unpaged(
        "CREATE KEYSPACE rf3 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
        &[],
    )
    .await
    .expect("create rf3");
    let host = nodes[1].metrics_host();

    let out = run_status(&["--host", &host, "rf3"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("Datacenter: datacenter1\n=======================\n"),
        "{text}"
    );
    assert!(text.contains("Owns (effective)"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("UN  127.0.22."))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains("  100.0%  ") && r.contains("  16  ")),
        "{text}"
    );
    assert!(text.contains("Metadata log: leader 127.0.22."), "{text}");

    // Without a keyspace: chat (RF 1) and rf3 differ, so raw ownership and the note.
    let out = run_status(&["--host", &host]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Note: Non-system keyspaces don't have the same replication"),
        "{text}"
    );
    let json = status_json(&host, None).expect("status");
    let raw: f64 = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["owns"].as_f64().unwrap())
        .sum();
    assert!((raw - 1.0).abs() < 1e-6, "raw ownership sums to {raw}");
    let json = status_json(&host, Some("chat")).expect("status");
    let rf1: f64 = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["owns"].as_f64().unwrap())
        .sum();
    assert!(
        (rf1 - 1.0).abs() < 1e-6,
        "RF 1 effective ownership sums to {rf1}"
    );

    let out = run_status(&["--host", &host, "no_such_ks"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("The keyspace no_such_ks, does not exist"),
        "{err}"
    );

    nodes[2].kill();
    eventually("node 3 shows as down", || {
        let out = run_status(&["--host", &host]);
        String::from_utf8_lossy(&out.stdout).contains("DN  127.0.22.3 ")
    })
    .await;
    let text = nodes[1].scrape();
    assert_eq!(
        metric(&text, "ringcache_peer_up{peer=\"127.0.22.3\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "ringcache_peers{state=\"down\"}"),
        Some(1.0),
        "{text}"
    );

    nodes[1].kill();
    let out = run_status(&["--host", &host]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreachable node must fail the command"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Failed to connect to '127.0.22.2:9180'"),
        "{err}"
    );
}

/// `(local-replica partitions, all partitions)` planned over `nodes`, for `op`.
fn replica_share(nodes: &[ClusterNode], op: &str) -> (f64, f64) {
    let mut local = 0.0;
    let mut all = 0.0;
    for node in nodes {
        let text = node.scrape();
        let series = |replica: &str| {
            let name = format!(
                "ringcache_coordinator_partitions_total{{local_replica=\"{replica}\",op=\"{op}\"}}"
            );
            metric(&text, &name).unwrap_or(0.0)
        };
        local += series("true");
        all += series("true") + series("false");
    }
    (local, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_aware_driver_is_coordinated_on_replicas() {
    let nodes = three_nodes("127.0.23").await;
    let s = session(&nodes[0]).await;
    for ddl in [
        "CREATE KEYSPACE rf3 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
        "CREATE TABLE rf3.kv (k int PRIMARY KEY, v int)",
        "CREATE KEYSPACE rf1 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TABLE rf1.kv (k int PRIMARY KEY, v int)",
    ] {
        s.query_unpaged(ddl, &[]).await.expect(ddl);
    }
    s.refresh_metadata().await.expect("metadata refresh");
    // On RF 3 over three nodes every node is a replica; RF 1 is where routing shows.
    for ks in ["rf3", "rf1"] {
        let before = replica_share(&nodes, "write");
        let insert = s
            .prepare(format!("INSERT INTO {ks}.kv (k, v) VALUES (?, ?)"))
            .await
            .expect("prepare insert");
        let select = s
            .prepare(format!("SELECT v FROM {ks}.kv WHERE k = ?"))
            .await
            .expect("prepare select");
        for k in 0..300i32 {
            s.execute_unpaged(&insert, (k, k)).await.expect("insert");
        }
        let after = replica_share(&nodes, "write");
        let (local, all) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(all, 300.0, "{ks}: every write planned once");
        assert!(
            local / all >= 0.95,
            "{ks}: only {local} of {all} writes coordinated on a replica"
        );

        let before = replica_share(&nodes, "read");
        for k in 0..300i32 {
            s.execute_unpaged(&select, (k,)).await.expect("select");
        }
        let after = replica_share(&nodes, "read");
        let (local, all) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(all, 300.0, "{ks}: every read planned once");
        assert!(
            local / all >= 0.95,
            "{ks}: only {local} of {all} reads coordinated on a replica"
        );
    }

    // The metric can tell: unprepared statements carry no routing key, so the driver
    // spreads them over the nodes and about a third land on the one RF 1 replica.
    let before = replica_share(&nodes, "write");
    for k in 1000..1300i32 {
        let text = format!("INSERT INTO rf1.kv (k, v) VALUES ({k}, {k})");
        s.query_unpaged(Statement::new(text), &[])
            .await
            .expect("insert");
    }
    let after = replica_share(&nodes, "write");
    let (local, all) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(all, 300.0);
    assert!(
        local / all < 0.8,
        "unrouted writes: {local} of {all} on a replica"
    );
}
