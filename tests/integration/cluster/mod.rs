//! Clusters of real `ringcache serve` processes, and the acceptance tests of replication
//! that run against them.
//!
//! [`TestCluster`] lays nodes out as ccm does: node `i` (numbered from 1) listens on its own
//! loopback address `127.0.X.i`, and every node uses the same CQL, metrics and internode
//! ports, so a driver that learns a peer's address from `system.peers` reaches it on the
//! contact point's port. `X` and the ports are chosen per cluster so that tests running at
//! once in this binary (cargo runs them on parallel threads) and in other test runs on the
//! machine never collide: a process-wide counter added to a per-run random base picks `X` in
//! 100..=140, the ports are random, and every address and port is checked free by binding it
//! before any node starts.
//!
//! Every node has its own temporary data directory, seeds on node 1, accepts link faults
//! through its metrics port (`[faults] link_control`), and writes its log (stderr) to a file
//! in the cluster's temporary directory; the logs are printed when a test fails. The cluster
//! kills and reaps every process when it is dropped, during a panic included.
//!
//! What a test can do: [`TestCluster::kill9`], [`TestCluster::restart`], SIGSTOP/SIGCONT
//! ([`TestCluster::pause`], [`TestCluster::resume`]), cut and heal the link between two
//! nodes at both ends ([`TestCluster::cut`], [`TestCluster::heal`]), wait until every node
//! sees every other up ([`TestCluster::wait_all_up`]) and open a `scylla` session pinned to
//! one node ([`TestCluster::session`]) or token-aware over all of them. Waits are polls with
//! a deadline ([`super::node::EVENT_TIMEOUT`]), never fixed sleeps.

mod availability;
mod coherence;
mod convergence;
mod digests;
mod drivers;
mod front;
mod join;
mod levels;
mod membership;
mod paxos;
mod placement;
mod repair;
mod replace;
mod scans;
mod topology_load;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::Rng;
use ringcache::protocol::codec::{decode_response_frame, encode_request_frame};
use ringcache::protocol::{Event, Request, Response};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::DbError;
use scylla::frame::types::Consistency;
use scylla::policies::host_filter::AllowListHostFilter;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::statement::unprepared::Statement;

use super::node::EVENT_TIMEOUT;

/// How long a node may take from spawn to its ready file.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How often cluster-wide conditions are polled (each poll opens driver sessions).
const CLUSTER_POLL: Duration = Duration::from_millis(100);

/// The third octet of cluster addresses: 127.0.100.0 to 127.0.140.255.
const FIRST_SUBNET: u32 = 100;
const SUBNETS: u32 = 41;

/// The keyspace [`TestCluster::wait_all_up`] writes to at ALL (replicated on every node).
const PROBE_KEYSPACE: &str = "cluster_probe";

/// A cluster to start: how many nodes and what each one's environment adds.
pub struct ClusterBuilder {
    nodes: usize,
    /// Nodes started by [`ClusterBuilder::start`]: the first this many.
    started: usize,
    env: Vec<(String, String)>,
    node_env: Vec<Vec<(String, String)>>,
    /// Node 1 is given itself (`host:port`) as its seed.
    self_seeded: bool,
}

impl ClusterBuilder {
    /// `nodes` nodes with the harness defaults.
    pub fn new(nodes: usize) -> ClusterBuilder {
        ClusterBuilder {
            nodes,
            started: nodes,
            env: Vec::new(),
            node_env: vec![Vec::new(); nodes],
            self_seeded: false,
        }
    }

    /// Node 1 starts with its own internode address (`host:port`) as its only seed.
    pub fn self_seeded(mut self) -> ClusterBuilder {
        self.self_seeded = true;
        self
    }

    /// Starts only the first `n` nodes; the others are laid out (addresses, ports, data
    /// directories) for [`TestCluster::restart`] to start later, joining the running cluster.
    pub fn start_only(mut self, n: usize) -> ClusterBuilder {
        self.started = n;
        self
    }

    /// An environment override for every node (`RINGCACHE_SECTION__FIELD`).
    pub fn env(mut self, key: &str, value: &str) -> ClusterBuilder {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// An environment override for node `i` alone (after the cluster-wide ones).
    pub fn node_env(mut self, i: usize, key: &str, value: &str) -> ClusterBuilder {
        self.node_env[i - 1].push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts every node at once and waits until each has written its ready file.
    pub fn start(self) -> TestCluster {
        let (subnet, ports) = free_layout(self.nodes);
        let tmp = tempfile::tempdir().expect("cluster temp dir");
        let secret = format!("test-{subnet}-{}", rand::rng().random::<u64>());
        let nodes = (1..=self.nodes)
            .map(|i| {
                let mut env = vec![
                    (
                        "RINGCACHE_FAULTS__LINK_CONTROL".to_owned(),
                        "true".to_owned(),
                    ),
                    ("RINGCACHE_CLUSTER_SECRET".to_owned(), secret.clone()),
                    ("NO_COLOR".to_owned(), "1".to_owned()),
                ];
                env.extend(self.env.iter().cloned());
                env.extend(self.node_env[i - 1].iter().cloned());
                ClusterNode {
                    ip: Ipv4Addr::new(127, 0, subnet, i as u8),
                    dir: tmp.path().join(format!("n{i}")),
                    env,
                    child: None,
                }
            })
            .collect();
        let mut cluster = TestCluster {
            nodes,
            ports,
            self_seeded: self.self_seeded,
            tmp: Some(tmp),
        };
        for i in 1..=self.started {
            cluster.spawn(i);
        }
        for i in 1..=self.started {
            cluster.wait_ready(i);
        }
        cluster
    }
}

/// The ports every node of one cluster listens on, each on its own address.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub cql: u16,
    pub metrics: u16,
    pub internode: u16,
}

struct ClusterNode {
    ip: Ipv4Addr,
    dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// Real nodes on 127.0.X.1..n; every process is killed and reaped when this is dropped.
pub struct TestCluster {
    nodes: Vec<ClusterNode>,
    pub ports: Ports,
    self_seeded: bool,
    /// Removed with the cluster, unless a test failed.
    tmp: Option<tempfile::TempDir>,
}

impl TestCluster {
    /// `n` nodes with the harness defaults, ready.
    pub fn start(n: usize) -> TestCluster {
        ClusterBuilder::new(n).start()
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s address.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        self.nodes[i - 1].ip
    }

    /// Node `i`'s CQL address.
    pub fn cql(&self, i: usize) -> SocketAddr {
        SocketAddr::from((self.ip(i), self.ports.cql))
    }

    /// Node `i`'s metrics (and fault control) address.
    pub fn metrics(&self, i: usize) -> SocketAddr {
        SocketAddr::from((self.ip(i), self.ports.metrics))
    }

    /// Node `i`'s process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i - 1].child.as_ref().map(Child::id)
    }

    /// Node `i`'s data directory (what `--data-dir` names).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i - 1].dir.join("data")
    }

    /// The value of environment variable `key` node `i` is started with.
    pub fn env_value(&self, i: usize, key: &str) -> String {
        let env = &self.nodes[i - 1].env;
        let found = env.iter().rev().find(|(k, _)| k == key);
        found.map(|(_, v)| v.clone()).unwrap_or_default()
    }

    /// Sets an environment variable of node `i` for its next start.
    pub fn set_env(&mut self, i: usize, key: &str, value: &str) {
        let env = &mut self.nodes[i - 1].env;
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value.to_owned()));
    }

    fn spawn(&mut self, i: usize) {
        let ports = self.ports;
        let seed = self.ip(1);
        let self_seeded = self.self_seeded;
        let node = &mut self.nodes[i - 1];
        std::fs::create_dir_all(&node.dir).expect("node dir");
        let ready = node.dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let log = File::options()
            .create(true)
            .append(true)
            .open(node.dir.join("node.log"))
            .expect("node log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache"));
        cmd.arg("serve")
            .args(["--listen-address", &node.ip.to_string()])
            .args(["--cql-port", &ports.cql.to_string()])
            .args(["--metrics-port", &ports.metrics.to_string()])
            .args(["--internode-port", &ports.internode.to_string()])
            .arg("--data-dir")
            .arg(node.dir.join("data"))
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if i > 1 {
            cmd.args(["--seeds", &seed.to_string()]);
        } else if self_seeded {
            cmd.args(["--seeds", &format!("{seed}:{}", ports.internode)]);
        }
        cmd.envs(node.env.iter().map(|(k, v)| (k, v)));
        let child = cmd.spawn().expect("spawn ringcache");
        super::node::watch(child.id());
        node.child = Some(child);
    }

    fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + START_TIMEOUT;
        let ready = self.nodes[i - 1].dir.join("ready.json");
        loop {
            let started = std::fs::read_to_string(&ready)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|v| v["cql"].is_string());
            if started {
                return;
            }
            let child = self.nodes[i - 1].child.as_mut().expect("node running");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("node {i} exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "node {i} not ready within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until node `i` exits by itself (bounded) and reaps it: how it exited.
    pub fn wait_exit(&mut self, i: usize) -> std::process::ExitStatus {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let child = self.nodes[i - 1].child.as_mut().expect("node running");
        loop {
            if let Some(status) = child.try_wait().expect("node status") {
                super::node::unwatch(child.id());
                self.nodes[i - 1].child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "node {i} did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `i`, which must exit by itself before it is ready (a refused start):
    /// how it exited.
    pub fn start_expecting_exit(&mut self, i: usize) -> std::process::ExitStatus {
        self.spawn(i);
        self.wait_exit(i)
    }

    /// SIGKILL node `i` and reap it: a crash, no shutdown path runs.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i - 1].child.take() {
            super::node::kill_and_reap(&mut child);
        }
    }

    /// Kills node `i` if it runs, starts it again on its data directory (or for the first
    /// time) and waits until it serves (not until its peers see it:
    /// [`TestCluster::wait_all_up`]).
    pub fn restart(&mut self, i: usize) {
        self.kill9(i);
        self.spawn(i);
        self.wait_ready(i);
    }

    /// SIGSTOP node `i`, and wait until every thread of it has stopped: it holds its
    /// connections open and answers nothing.
    pub fn pause(&self, i: usize) {
        self.signal(i, SIGSTOP);
        let pid = self.pid(i).expect("running");
        super::node::wait_until(&format!("node {i} stopped"), || {
            thread_states(pid).iter().all(|s| *s == 'T')
        });
    }

    /// SIGCONT node `i` after [`TestCluster::pause`], and wait until no thread is stopped.
    pub fn resume(&self, i: usize) {
        self.signal(i, SIGCONT);
        let pid = self.pid(i).expect("running");
        super::node::wait_until(&format!("node {i} running"), || {
            thread_states(pid).iter().all(|s| *s != 'T')
        });
    }

    fn signal(&self, i: usize, signal: i32) {
        let pid = self
            .pid(i)
            .unwrap_or_else(|| panic!("node {i} is not running"));
        // SAFETY: a signal to a process this cluster started and has not reaped.
        let sent = unsafe { libc_kill(pid as i32, signal) };
        assert_eq!(sent, 0, "signal {signal} to node {i}");
    }

    /// Drops every message between nodes `i` and `j`, at both ends.
    pub fn cut(&self, i: usize, j: usize) {
        self.fault(i, &format!("cut/{}", self.ip(j)));
        self.fault(j, &format!("cut/{}", self.ip(i)));
    }

    /// Undoes [`TestCluster::cut`].
    pub fn heal(&self, i: usize, j: usize) {
        self.fault(i, &format!("heal/{}", self.ip(j)));
        self.fault(j, &format!("heal/{}", self.ip(i)));
    }

    /// `POST /faults/<command>` on node `i`, which must accept it.
    fn fault(&self, i: usize, command: &str) {
        let answer = http(self.metrics(i), "POST", &format!("/faults/{command}"));
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "node {i} refused fault {command}: {answer}"
        );
    }

    /// Node `i`'s `/metrics`.
    pub fn scrape_metrics(&self, i: usize) -> String {
        http(self.metrics(i), "GET", "/metrics")
    }

    /// A session that sends every request to node `i` (a host filter allows only it), with
    /// no retries, so a test sees each error as the node sent it.
    pub async fn session(&self, i: usize) -> Session {
        self.try_session(i).await.expect("session to node")
    }

    async fn try_session(&self, i: usize) -> Result<Session, String> {
        let addr = self.cql(i);
        let filter = AllowListHostFilter::new([addr]).map_err(|e| e.to_string())?;
        SessionBuilder::new()
            .known_node(addr.to_string())
            .host_filter(Arc::new(filter))
            .default_execution_profile_handle(no_retries())
            .build()
            .await
            .map_err(|e| format!("session to node {i}: {e}"))
    }

    /// A token-aware session that knows every node (the driver's defaults, no retries).
    pub async fn token_aware_session(&self) -> Session {
        SessionBuilder::new()
            .known_nodes((1..=self.len()).map(|i| self.cql(i).to_string()))
            .default_execution_profile_handle(no_retries())
            .build()
            .await
            .expect("token-aware session")
    }

    /// Waits until every node running sees every other up: each lists all its peers in
    /// `system.peers` with their CQL address and tokens, and a write at ALL to a keyspace
    /// replicated on every node succeeds through it (so it believes every replica alive and
    /// every replica answered it).
    pub async fn wait_all_up(&self) {
        self.create_probe_keyspace().await;
        let deadline = Instant::now() + EVENT_TIMEOUT;
        for i in self.running() {
            loop {
                let Err(last) = self.sees_all_up(i).await else {
                    break;
                };
                assert!(
                    Instant::now() < deadline,
                    "node {i} never saw every node up: {last}"
                );
                tokio::time::sleep(CLUSTER_POLL).await;
            }
        }
    }

    /// Waits until node `i` believes some node down: a write at ALL through it is refused
    /// with `Unavailable`, before anything is sent. ([`TestCluster::wait_all_up`] must have
    /// run once, to create the keyspace written to.)
    pub async fn wait_sees_down(&self, i: usize) {
        let session = self.session(i).await;
        let write = format!("INSERT INTO {PROBE_KEYSPACE}.up (k) VALUES (0)");
        until_unavailable(&session, &write, Consistency::All).await;
    }

    /// The nodes started (and not killed), in order.
    fn running(&self) -> Vec<usize> {
        (1..=self.len())
            .filter(|i| self.nodes[i - 1].child.is_some())
            .collect()
    }

    async fn create_probe_keyspace(&self) {
        let session = self.session(1).await;
        let rf = self.running().len();
        for ddl in [
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {PROBE_KEYSPACE} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
            ),
            format!("CREATE TABLE IF NOT EXISTS {PROBE_KEYSPACE}.up (k int PRIMARY KEY)"),
        ] {
            session.query_unpaged(ddl.as_str(), &[]).await.expect(&ddl);
        }
    }

    async fn sees_all_up(&self, i: usize) -> Result<(), String> {
        let session = self.try_session(i).await?;
        let peers = session
            .query_unpaged("SELECT rpc_address, tokens FROM system.peers", &[])
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?;
        let serving = peers
            .rows::<(Option<std::net::IpAddr>, Option<Vec<String>>)>()
            .map_err(|e| e.to_string())?
            .filter(|r| matches!(r, Ok((Some(_), Some(t))) if !t.is_empty()))
            .count();
        if serving != self.running().len() - 1 {
            return Err(format!("node {i} lists {serving} serving peers"));
        }
        let mut write = Statement::new(format!("INSERT INTO {PROBE_KEYSPACE}.up (k) VALUES (?)"));
        write.set_consistency(Consistency::All);
        session
            .query_unpaged(write, (i as i32,))
            .await
            .map(|_| ())
            .map_err(|e| format!("write at ALL through node {i}: {e}"))
    }

    /// Node `i`'s `ringcache status --json` (ownership for `keyspace`, if named).
    pub fn status(&self, i: usize, keyspace: Option<&str>) -> ringcache::metrics::status::Status {
        let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
            .args(["status", "--json", "-H", &self.metrics(i).to_string()])
            .args(keyspace)
            .output()
            .expect("ringcache status");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// Whether node `i`'s `ringcache status` lists exactly `nodes`, each up and NORMAL.
    pub fn lists_exactly(&self, i: usize, nodes: &[usize]) -> bool {
        let mut listed: Vec<(String, bool)> = self
            .status(i, None)
            .nodes
            .into_iter()
            .map(|n| (n.address, n.up && n.state == "Normal"))
            .collect();
        listed.sort();
        let mut expected: Vec<(String, bool)> = nodes
            .iter()
            .map(|j| (self.ip(*j).to_string(), true))
            .collect();
        expected.sort();
        listed == expected
    }

    /// Whether node `watcher` shows node `mover` in `state` (`Joining`, `Leaving`) and the
    /// mover's own status shows its stream running.
    pub fn shows_streaming(&self, watcher: usize, mover: usize, state: &str) -> bool {
        let address = self.ip(mover).to_string();
        let moving = self
            .status(watcher, None)
            .nodes
            .iter()
            .any(|n| n.address == address && n.state == state);
        moving && self.status(mover, None).streaming.is_some()
    }

    /// The last `lines` lines of node `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = self.log(i);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Node `i`'s whole log (every life of it).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i - 1].dir.join("node.log"))
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in 1..=self.len() {
            self.kill9(i);
        }
        if std::thread::panicking() {
            for i in 1..=self.len() {
                eprintln!(
                    "---- node {i} ({}) log, last lines ----\n{}",
                    self.ip(i),
                    self.log_tail(i, 80)
                );
            }
            // Kept for a closer look at the whole logs and data directories.
            if let Some(tmp) = self.tmp.take() {
                eprintln!("(cluster directory kept: {})", tmp.keep().display());
            }
        }
    }
}

/// Waits (bounded) until `cql` at `level` through `session` is refused with `Unavailable`:
/// the coordinator has convicted enough replicas.
pub async fn until_unavailable(session: &Session, cql: &str, level: Consistency) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let mut statement = Statement::new(cql);
        statement.set_consistency(level);
        let answer = session.query_unpaged(statement, &[]).await;
        let refused = answer.as_ref().err().and_then(super::data_path::db_error);
        if matches!(refused, Some(DbError::Unavailable { .. })) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{cql} at {level:?} never refused: {answer:?}"
        );
        tokio::time::sleep(CLUSTER_POLL).await;
    }
}

/// The events the node at `cql` pushes to a connection that registered for `kinds`
/// (`TOPOLOGY_CHANGE`, `STATUS_CHANGE`), as (change or status, address) — read by a thread
/// until the node closes the connection.
pub fn events(cql: SocketAddr, kinds: &[&str]) -> mpsc::Receiver<(String, SocketAddr)> {
    let pushed = pushed_events(cql, kinds);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for event in pushed {
            let event = match event {
                Event::TopologyChange { change, address } => (change, address),
                Event::StatusChange { status, address } => (status, address),
                Event::SchemaChange(_) => continue,
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    rx
}

/// Every event the node at `cql` pushes to a connection that registered for `kinds` —
/// read by a thread until the node closes the connection.
pub fn pushed_events(cql: SocketAddr, kinds: &[&str]) -> mpsc::Receiver<Event> {
    let mut stream = TcpStream::connect(cql).expect("connect for events");
    let mut inbuf = BytesMut::new();
    let send = |stream: &mut TcpStream, id: i16, request: &Request| {
        let mut out = BytesMut::new();
        encode_request_frame(&mut out, id, request, None);
        stream.write_all(&out).expect("write");
    };
    let startup = Request::Startup(vec![("CQL_VERSION".to_owned(), "3.0.0".to_owned())]);
    send(&mut stream, 0, &startup);
    let register = Request::Register {
        events: kinds.iter().map(|k| k.to_string()).collect(),
    };
    send(&mut stream, 1, &register);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || loop {
        while let Ok(Some((_, response))) = decode_response_frame(&mut inbuf, None) {
            let Response::Event(event) = response else {
                continue;
            };
            if tx.send(event).is_err() {
                return;
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
        }
    });
    rx
}

/// Waits (bounded) for every event of `expected` (change, address) among `events`, in
/// any order.
pub fn expect_events(
    events: &mpsc::Receiver<(String, SocketAddr)>,
    expected: &[(&str, SocketAddr)],
) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let mut missing: Vec<(String, SocketAddr)> =
        expected.iter().map(|(c, a)| (c.to_string(), *a)).collect();
    let mut seen = Vec::new();
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => {
                missing.retain(|m| *m != event);
                seen.push(event);
            }
            Err(_) => panic!("no {missing:?}; saw {seen:?}"),
        }
    }
}

/// An execution profile that never retries: errors reach the test as the node sent them.
fn no_retries() -> scylla::client::execution_profile::ExecutionProfileHandle {
    ExecutionProfile::builder()
        .retry_policy(Arc::new(FallthroughRetryPolicy::new()))
        .build()
        .into_handle()
}

/// A subnet and ports that no other cluster uses, every address and port checked free.
fn free_layout(nodes: usize) -> (u8, Ports) {
    static BASE: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = *BASE.get_or_init(|| rand::rng().random_range(0..SUBNETS));
    for _ in 0..200 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let subnet = (FIRST_SUBNET + (base + n) % SUBNETS) as u8;
        // Below the kernel's ephemeral range (32768 and up), so no client socket holds them.
        let first = rand::rng().random_range(20_000..32_000u16);
        let ports = Ports {
            cql: first,
            metrics: first + 1,
            internode: first + 2,
        };
        let free = (1..=nodes).all(|i| {
            let ip = Ipv4Addr::new(127, 0, subnet, i as u8);
            [ports.cql, ports.metrics, ports.internode]
                .iter()
                .all(|port| TcpListener::bind((ip, *port)).is_ok())
        });
        if free {
            return (subnet, ports);
        }
    }
    panic!("no free cluster addresses and ports after 200 tries");
}

/// The state letter (`R`, `S`, `T` for stopped, ...) of every thread of process `pid`,
/// from `/proc/<pid>/task/*/stat`.
fn thread_states(pid: u32) -> Vec<char> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("process tasks");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        // The state follows the command name, which is in parentheses and may hold spaces.
        .filter_map(|stat| stat.rsplit_once(") ")?.1.chars().next())
        .collect()
}

/// One HTTP/1.1 request without a body; the whole answer, status line first.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

const SIGSTOP: i32 = 19;
const SIGCONT: i32 = 18;

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
