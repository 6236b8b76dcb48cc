//! Test nodes: a metadata log over a real transport on its own loopback address, with a
//! toy state machine (a map with "insert if absent").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::cluster::message::{Gossip, RemoteError, Request, Response};
use crate::cluster::service::{answer_meta, MetaInbound};
use crate::cluster::transport::{
    Inbound, LinkFault, LinkFaults, LocalIdentity, Peer, Settings, Transport,
};
use crate::config::{Addresses, Config};
use crate::metadata::{MetaStatus, MetadataLog, StateMachine};

/// A map where `key=value` inserts when the key is absent, replying `inserted` or
/// `exists:<value>`. It records every command it applied, in order, and counts any index
/// applied twice. Its state lives as long as the test keeps it, like a durable store.
#[derive(Default)]
pub struct Toy {
    state: Mutex<ToyState>,
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct ToyState {
    map: BTreeMap<String, String>,
    order: Vec<(u64, String)>,
    applied: Option<u64>,
    #[serde(skip)]
    applied_twice: usize,
    #[serde(skip)]
    restores: usize,
}

impl Toy {
    fn state(&self) -> std::sync::MutexGuard<'_, ToyState> {
        self.state.lock().unwrap()
    }
    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.state().map.get(key).cloned()
    }
    /// Every command applied, with its index, in the order applied.
    pub fn order(&self) -> Vec<(u64, String)> {
        self.state().order.clone()
    }
    /// The whole map.
    pub fn map(&self) -> BTreeMap<String, String> {
        self.state().map.clone()
    }
    /// How many indexes were applied at or below one already applied.
    pub fn applied_twice(&self) -> usize {
        self.state().applied_twice
    }
    /// How many times the state was replaced by a snapshot.
    pub fn restores(&self) -> usize {
        self.state().restores
    }
}

impl StateMachine for Toy {
    fn apply(&self, index: u64, command: &[u8]) -> Vec<u8> {
        let mut s = self.state();
        if Some(index) <= s.applied {
            s.applied_twice += 1;
        }
        s.applied = Some(index);
        let command = String::from_utf8_lossy(command).into_owned();
        s.order.push((index, command.clone()));
        let (key, value) = command.split_once('=').unwrap_or((&command, ""));
        match s.map.get(key) {
            Some(existing) => format!("exists:{existing}").into_bytes(),
            None => {
                s.map.insert(key.to_owned(), value.to_owned());
                b"inserted".to_vec()
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&*self.state()).unwrap()
    }

    fn restore(&self, index: u64, snapshot: &[u8]) -> Result<(), String> {
        let restored: ToyState = serde_json::from_slice(snapshot).map_err(|e| e.to_string())?;
        let mut s = self.state();
        let (twice, restores) = (s.applied_twice, s.restores + 1);
        *s = restored;
        s.applied = Some(index);
        s.applied_twice = twice;
        s.restores = restores;
        Ok(())
    }

    fn last_applied(&self) -> Option<u64> {
        self.state().applied
    }
}

/// The transport service of a test node: metadata messages only.
#[derive(Default)]
struct MetaOnly {
    meta: OnceLock<Arc<dyn MetaInbound>>,
}

impl Inbound for MetaOnly {
    fn request(
        &self,
        from: Peer,
        request: Request,
    ) -> BoxFuture<'static, Result<Response, RemoteError>> {
        match request {
            Request::Meta(body) => answer_meta(&self.meta, from, body),
            _ => Box::pin(async { Err(RemoteError::Failed("metadata only".into())) }),
        }
    }
    fn gossip(&self, _from: Peer, _message: Gossip) {}
    fn admit(&self, _peer: &Peer) -> Result<(), String> {
        Ok(())
    }
}

/// What a node keeps across a restart: identity, address, data directory, state machine.
#[derive(Clone)]
pub struct Identity {
    pub host_id: Uuid,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub toy: Arc<Toy>,
    pub seeds: Vec<SocketAddr>,
    pub snapshot_after: u64,
}

/// A running test node.
pub struct Node {
    pub id: Identity,
    pub log: Arc<MetadataLog>,
    pub transport: Transport,
    shutdown: watch::Sender<bool>,
}

fn settings() -> Settings {
    Settings {
        max_message_bytes: 4 << 20,
        queue_depth: 256,
        max_in_flight_per_connection: 64,
        connect_timeout: Duration::from_secs(2),
    }
}

/// A new node's identity on 127.0.0.`last`, with its data under `root`.
pub fn identity(
    root: &tempfile::TempDir,
    last: u8,
    seeds: &[&Node],
    snapshot_after: u64,
) -> Identity {
    let host_id = Uuid::new_v4();
    Identity {
        host_id,
        addr: SocketAddr::from(([127, 0, 0, last], 0)),
        dir: root.path().join(host_id.to_string()),
        toy: Arc::default(),
        seeds: seeds.iter().map(|n| n.id.addr).collect(),
        snapshot_after,
    }
}

/// Starts a node (again, when `id` is a stopped node's): binds its transport, then its log,
/// each retried until the stopped instance has let go of its port and store.
pub async fn start(id: Identity) -> Node {
    start_cut_off(id, &[]).await
}

/// Starts a node whose links to `from` are cut before it sends or hears anything.
pub async fn start_cut_off(mut id: Identity, from: &[&Node]) -> Node {
    let faults = Arc::new(LinkFaults::default());
    for other in from {
        faults.set(other.id.addr.ip(), LinkFault::Cut);
        other.transport.faults().set(id.addr.ip(), LinkFault::Cut);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let (shutdown, rx) = watch::channel(false);
    let me = LocalIdentity {
        cluster_name: "metadata-test".into(),
        secret: "secret".into(),
        host_id: id.host_id,
        listen: id.addr,
    };
    let (transport, listener) = retry(deadline, || {
        Transport::bind(me.clone(), settings(), faults.clone(), rx.clone())
    })
    .await;
    id.addr = transport.local().listen;
    let service = Arc::new(MetaOnly::default());
    let serving = transport.clone();
    let handler = service.clone();
    tokio::spawn(async move { serving.serve(listener, handler).await });
    let config = config(&id);
    let log = retry(deadline, || {
        MetadataLog::start(
            &config,
            id.host_id,
            transport.clone(),
            id.toy.clone(),
            rx.clone(),
        )
    })
    .await;
    assert!(service.meta.set(log.inbound()).is_ok());
    Node {
        id,
        log,
        transport,
        shutdown,
    }
}

async fn retry<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    deadline: Instant,
    mut attempt: impl FnMut() -> F,
) -> T {
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) if Instant::now() > deadline => panic!("could not start a node: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn config(id: &Identity) -> Config {
    let mut config = Config {
        data_dir: id.dir.clone(),
        seeds: Addresses(id.seeds.iter().map(|s| s.to_string()).collect()),
        ..Config::default()
    };
    config.metadata.snapshot_after_entries = id.snapshot_after;
    config
}

impl Node {
    /// Stops the node: its log, then its transport. Returns what a restart needs.
    pub async fn stop(self) -> Identity {
        self.log.shutdown().await;
        let _ = self.shutdown.send(true);
        self.id
    }

    /// Cuts the link between this node and `other`, both ways.
    pub fn cut(&self, other: &Node) {
        self.transport
            .faults()
            .set(other.id.addr.ip(), LinkFault::Cut);
        other
            .transport
            .faults()
            .set(self.id.addr.ip(), LinkFault::Cut);
    }

    /// Heals every link of this node and of `others` to it.
    pub fn heal(&self, others: &[&Node]) {
        self.transport.faults().heal(None);
        for other in others {
            other.transport.faults().heal(Some(self.id.addr.ip()));
        }
    }

    /// The node's view of the group.
    pub fn status(&self) -> MetaStatus {
        self.log.status()
    }

    /// Proposes `command` with a generous timeout, expecting success.
    pub async fn propose(&self, command: &str) -> String {
        let reply = self
            .log
            .propose(command.as_bytes().to_vec(), Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("proposal {command} failed: {e}"));
        String::from_utf8(reply).unwrap()
    }
}

/// Waits until `done` holds, polling, at most `within`; panics with `what` otherwise.
pub async fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A founder and two joiners, on 127.0.0.`base`..`base+2`, all voters.
pub async fn three(root: &tempfile::TempDir, base: u8, snapshot_after: u64) -> Vec<Node> {
    let founder = start(identity(root, base, &[], snapshot_after)).await;
    let b = start(identity(root, base + 1, &[&founder], snapshot_after)).await;
    let c = start(identity(root, base + 2, &[&founder], snapshot_after)).await;
    let nodes = vec![founder, b, c];
    for node in &nodes {
        assert!(
            node.log.wait_joined(Duration::from_secs(30)).await,
            "node joined"
        );
    }
    eventually("three voters everywhere", Duration::from_secs(20), || {
        nodes.iter().all(|n| n.status().voters.len() == 3)
    })
    .await;
    nodes
}

/// The node every node agrees leads, other than `not` (waits for one).
pub async fn leader(nodes: &[&Node], not: Option<Uuid>) -> Uuid {
    let mut found = None;
    eventually("one agreed leader", Duration::from_secs(20), || {
        let leaders: Vec<_> = nodes.iter().map(|n| n.status().leader).collect();
        found = leaders[0].filter(|l| leaders.iter().all(|x| *x == Some(*l)) && Some(*l) != not);
        found.is_some()
    })
    .await;
    found.unwrap()
}

/// Waits until every node has applied everything the first one has.
pub async fn converged(nodes: &[&Node]) {
    eventually(
        "every node applied the same entries",
        Duration::from_secs(20),
        || {
            let first = nodes[0].log.applied_index();
            nodes.iter().all(|n| n.log.applied_index() == first)
        },
    )
    .await;
}
