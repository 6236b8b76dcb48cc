//! Gossip: how nodes find each other and learn what every node advertises.
//!
//! Every round (`[internode] gossip_interval_ms`) a node bumps its heartbeat and sends the
//! digests of everything it knows (SYN) to up to three random live peers, to one peer it
//! believes down (so a node coming back is noticed), and to a seed when none of those was
//! one (so separate groups of nodes that share seeds always merge). The receiver answers
//! with the states the sender lacks and asks for those it lacks itself (ACK); the sender
//! completes the exchange (ACK2). The merge rules live in [`state`].
//!
//! Liveness is decided here too, locally, never gossiped: each heartbeat advance feeds the
//! phi-accrual [`FailureDetector`], which convicts silent peers at every round. A node heard
//! of for the first time, or after a restart, or advancing again after it was convicted, is
//! marked up only once it answers an echo over the requests channel — a third node's gossip
//! says a node is alive, not that this node can reach it (a cut link).
//!
//! A node that stops on purpose says so (`Gossip::Shutdown`) and is marked down at once. The
//! addresses of every peer ever met are kept in `<data_dir>/peers.json`, so a node restarted
//! with no seeds but itself finds its cluster again.

pub mod state;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::IteratorRandom;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use super::failure_detector::FailureDetector;
use super::membership::{Membership, NodeView};
use super::message::{Gossip, Request, Response};
use super::transport::{Peer, Transport};
pub use state::{AppKey, Change, Digest, EndpointDelta, EndpointState, GossipState, Versioned};

/// Where a node keeps the internode addresses of every peer it ever met, in its data
/// directory: present once it has met one.
pub const PEERS_FILE: &str = "peers.json";

/// Peers gossiped to per round, besides one believed down and a seed.
const FANOUT: usize = 3;
/// How long an echo may take before the peer is left down until the next try.
const ECHO_TIMEOUT: Duration = Duration::from_secs(2);

/// What the gossiper asks the rest of the node each round.
pub trait LocalFacts: Send + Sync + 'static {
    /// The schema version applied here.
    fn schema_version(&self) -> Uuid;
    /// Bytes stored here.
    fn load(&self) -> u64;
}

/// The gossip worker of one node.
pub struct Gossiper {
    cluster_name: String,
    transport: Transport,
    membership: Arc<Membership>,
    facts: Arc<dyn LocalFacts>,
    state: Mutex<GossipState>,
    detector: Mutex<FailureDetector>,
    /// Seed addresses, this node's own excluded.
    seeds: Vec<SocketAddr>,
    interval: Duration,
    /// Peers with an echo in flight, so a flood of heartbeats makes one echo.
    echoing: Mutex<HashSet<Uuid>>,
    /// Internode addresses of every peer ever met (`peers.json`).
    known: Mutex<BTreeSet<SocketAddr>>,
    peers_file: PathBuf,
    /// What each peer's last SYN said it holds of this node's state: (generation, version).
    seen: Mutex<HashMap<Uuid, (i64, u64)>>,
    /// Woken at every SYN, for [`Gossiper::wait_seen`].
    seen_changed: Notify,
}

/// How a gossiper is set up.
pub struct GossipConfig {
    pub cluster_name: String,
    pub seeds: Vec<SocketAddr>,
    pub interval: Duration,
    pub phi_convict_threshold: f64,
    pub data_dir: PathBuf,
    pub generation: i64,
}

impl Gossiper {
    /// A gossiper advertising `local` (this node's facts) in life `config.generation`.
    pub fn new(
        config: GossipConfig,
        local: &NodeView,
        transport: Transport,
        membership: Arc<Membership>,
        facts: Arc<dyn LocalFacts>,
    ) -> Arc<Gossiper> {
        let mut state = GossipState::new(local.host_id, config.generation);
        for (key, value) in advertised(local, &*facts) {
            state.set_local(key, value);
        }
        let peers_file = config.data_dir.join(PEERS_FILE);
        let known = load_peers(&peers_file);
        let me = transport.local().listen;
        Arc::new(Gossiper {
            cluster_name: config.cluster_name,
            transport,
            membership,
            facts,
            state: Mutex::new(state),
            detector: Mutex::new(FailureDetector::new(
                config.phi_convict_threshold,
                config.interval,
            )),
            seeds: config.seeds.into_iter().filter(|s| *s != me).collect(),
            interval: config.interval,
            echoing: Mutex::new(HashSet::new()),
            known: Mutex::new(known),
            peers_file,
            seen: Mutex::new(HashMap::new()),
            seen_changed: Notify::new(),
        })
    }

    /// Gossips every interval until `shutdown`, then tells live peers this node is leaving.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.round(),
                _ = shutdown.changed() => break,
            }
        }
        self.announce_shutdown();
    }

    /// One round: heartbeat, SYN to the chosen peers, convictions.
    fn round(self: &Arc<Self>) {
        let digests = {
            let mut state = self.state.lock().expect("gossip state");
            for (key, value) in [
                (
                    AppKey::SchemaVersion,
                    self.facts.schema_version().to_string(),
                ),
                (AppKey::Load, self.facts.load().to_string()),
            ] {
                state.set_local(key, value);
            }
            state.beat();
            state.digests()
        };
        let syn = Gossip::Syn {
            cluster_name: self.cluster_name.clone(),
            digests,
        };
        for target in self.targets() {
            self.transport.gossip(target, &syn);
        }
        let convicted = self
            .detector
            .lock()
            .expect("detector")
            .convicted(Instant::now());
        for host_id in convicted {
            self.membership.set_alive(host_id, false);
        }
    }

    /// This round's peers: up to [`FANOUT`] live ones, one believed down, and a seed if
    /// none of those is one.
    fn targets(&self) -> Vec<SocketAddr> {
        let view = self.membership.view();
        let mut rng = rand::rng();
        let mut targets: Vec<SocketAddr> = view
            .peers()
            .filter(|n| n.alive)
            .map(|n| n.internode)
            .choose_multiple(&mut rng, FANOUT);
        let mut down: Vec<SocketAddr> = view
            .peers()
            .filter(|n| !n.alive)
            .map(|n| n.internode)
            .collect();
        let met = self.known.lock().expect("known peers");
        down.extend(
            met.iter()
                .filter(|a| !view.peers().any(|n| n.internode == **a)),
        );
        drop(met);
        if let Some(one) = down.into_iter().choose(&mut rng) {
            targets.push(one);
        }
        if !targets.iter().any(|t| self.seeds.contains(t)) {
            if let Some(seed) = self.seeds.iter().choose(&mut rng) {
                targets.push(*seed);
            }
        }
        targets.sort();
        targets.dedup();
        targets
    }

    /// Handles one gossip message from `from`.
    pub fn receive(self: &Arc<Self>, from: Peer, message: Gossip) {
        match message {
            Gossip::Syn {
                cluster_name,
                digests,
            } => {
                if cluster_name != self.cluster_name {
                    return;
                }
                self.note_seen(from.host_id, &digests);
                let (deltas, requests) = self
                    .state
                    .lock()
                    .expect("gossip state")
                    .answer_syn(&digests);
                self.transport
                    .gossip(from.listen, &Gossip::Ack { deltas, requests });
            }
            Gossip::Ack { deltas, requests } => {
                self.apply(deltas);
                let back = self
                    .state
                    .lock()
                    .expect("gossip state")
                    .deltas_for(&requests);
                if !back.is_empty() {
                    self.transport
                        .gossip(from.listen, &Gossip::Ack2 { deltas: back });
                }
            }
            Gossip::Ack2 { deltas } => self.apply(deltas),
            Gossip::Shutdown {
                host_id,
                generation,
            } => {
                let current = self
                    .state
                    .lock()
                    .expect("gossip state")
                    .endpoint(&host_id)
                    .map(|s| s.generation);
                if current == Some(generation) {
                    tracing::info!(%host_id, "peer announced its shutdown");
                    self.membership.set_alive(host_id, false);
                }
            }
        }
    }

    /// Merges deltas and brings membership and the failure detector up to date.
    fn apply(self: &Arc<Self>, deltas: Vec<EndpointDelta>) {
        let now = Instant::now();
        let (changes, conflicts) = self.state.lock().expect("gossip state").apply(deltas);
        for host_id in conflicts {
            tracing::error!(%host_id, "another node claims this node's host id with a newer generation; it is ignored");
        }
        for change in changes {
            let (host_id, restarted, states_changed) = match change {
                Change::Discovered(id) | Change::Restarted(id) => (id, true, true),
                Change::Advanced {
                    host_id,
                    states_changed,
                } => (host_id, false, states_changed),
            };
            {
                let mut detector = self.detector.lock().expect("detector");
                if restarted {
                    detector.reset(host_id, now);
                } else {
                    detector.report(host_id, now);
                }
            }
            let view = self.membership.view();
            let alive = !restarted && view.is_alive(&host_id);
            if restarted || states_changed {
                let state = self
                    .state
                    .lock()
                    .expect("gossip state")
                    .endpoint(&host_id)
                    .cloned();
                if let Some(node) = state.and_then(|s| NodeView::from_state(host_id, &s, alive)) {
                    if let Some(clash) = self.clash(&node) {
                        tracing::error!(%host_id, address = %node.internode, holder = %clash, "host id already held by a live node at another address; ignored");
                        continue;
                    }
                    self.remember(node.internode);
                    self.membership.update(node);
                }
            }
            if !alive {
                self.echo(host_id);
            }
        }
    }

    /// The address of a live node already holding `node`'s host id elsewhere, if any.
    fn clash(&self, node: &NodeView) -> Option<SocketAddr> {
        let view = self.membership.view();
        let known = view.node(&node.host_id)?;
        (known.alive && known.internode != node.internode).then_some(known.internode)
    }

    /// Whether a dialer may connect: refused when another live node holds its host id.
    pub fn admit(&self, peer: &Peer) -> Result<(), String> {
        let view = self.membership.view();
        match view.node(&peer.host_id) {
            Some(known) if known.alive && known.internode != peer.listen => Err(format!(
                "host id {} is held by the live node at {}",
                peer.host_id, known.internode
            )),
            _ => Ok(()),
        }
    }

    /// Marks `host_id` up once it answers an echo.
    fn echo(self: &Arc<Self>, host_id: Uuid) {
        let Some(address) = self.membership.view().node(&host_id).map(|n| n.internode) else {
            return;
        };
        if !self.echoing.lock().expect("echoing").insert(host_id) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + ECHO_TIMEOUT;
            let answered = this
                .transport
                .request(address, Request::Echo, deadline)
                .await;
            this.echoing.lock().expect("echoing").remove(&host_id);
            if matches!(answered, Ok(Response::Ack)) {
                this.detector
                    .lock()
                    .expect("detector")
                    .report(host_id, Instant::now());
                this.membership.set_alive(host_id, true);
            }
        });
    }

    /// Records a peer's address in `peers.json` the first time it is met.
    fn remember(&self, address: SocketAddr) {
        let mut known = self.known.lock().expect("known peers");
        if address == self.transport.local().listen || !known.insert(address) {
            return;
        }
        let list: Vec<String> = known.iter().map(|a| a.to_string()).collect();
        drop(known);
        if let Err(error) = save_peers(&self.peers_file, &list) {
            tracing::warn!(%error, "could not save the list of known peers");
        }
    }

    /// Tells every live peer this node is going away, so they mark it down at once.
    fn announce_shutdown(&self) {
        let (host_id, generation) = {
            let state = self.state.lock().expect("gossip state");
            let local = state.local_id();
            (local, state.endpoint(&local).map_or(0, |s| s.generation))
        };
        let message = Gossip::Shutdown {
            host_id,
            generation,
        };
        for peer in self.membership.view().peers().filter(|n| n.alive) {
            self.transport.gossip(peer.internode, &message);
        }
    }

    /// The membership this gossiper keeps.
    pub fn membership(&self) -> &Arc<Membership> {
        &self.membership
    }

    /// A gossiped state of this node's.
    pub fn set_local(&self, key: AppKey, value: String) {
        self.state
            .lock()
            .expect("gossip state")
            .set_local(key, value);
    }

    /// This node's generation and the version of everything it advertises now.
    pub fn local_version(&self) -> (i64, u64) {
        let state = self.state.lock().expect("gossip state");
        let local = state
            .endpoint(&state.local_id())
            .expect("the local endpoint");
        (local.generation, local.max_version())
    }

    fn note_seen(&self, from: Uuid, digests: &[Digest]) {
        let local = self.membership.view().local;
        if let Some(mine) = digests.iter().find(|d| d.host_id == local) {
            let mut seen = self.seen.lock().expect("seen");
            seen.insert(from, (mine.generation, mine.max_version));
        }
        self.seen_changed.notify_waiters();
    }

    /// Waits until this node knows a ring (a peer that owns ranges) and every live peer has
    /// shown (in a SYN's digests) that it holds this node's state up to `version` of this
    /// life, e.g. a status change, so each has applied it; at most `limit`. Returns the
    /// live peers that had not, or None when no ring is known yet.
    pub async fn wait_seen(&self, version: (i64, u64), limit: Duration) -> Option<Vec<SocketAddr>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.seen_changed.notified();
            let view = self.membership.view();
            let missing: Vec<SocketAddr> = {
                let seen = self.seen.lock().expect("seen");
                view.peers()
                    .filter(|n| n.alive)
                    .filter(|n| {
                        seen.get(&n.host_id)
                            .is_none_or(|(g, v)| *g != version.0 || *v < version.1)
                    })
                    .map(|n| n.internode)
                    .collect()
            };
            let ring = !view.ring.is_empty();
            if ring && missing.is_empty() {
                return Some(missing);
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => return ring.then_some(missing),
            }
        }
    }

    /// Every endpoint's gossiped state (for `ringcache status` and tests).
    pub fn endpoints(&self) -> Vec<(Uuid, EndpointState)> {
        let state = self.state.lock().expect("gossip state");
        state.endpoints().map(|(id, s)| (*id, s.clone())).collect()
    }
}

/// The states a node advertises about itself at start.
fn advertised(local: &NodeView, facts: &dyn LocalFacts) -> Vec<(AppKey, String)> {
    let tokens: Vec<String> = local.tokens.iter().map(|t| t.to_string()).collect();
    let mut states = vec![
        (AppKey::InternodeAddress, local.internode.to_string()),
        (AppKey::DataCenter, local.data_center.clone()),
        (AppKey::Rack, local.rack.clone()),
        (AppKey::Tokens, tokens.join(" ")),
        (AppKey::Status, local.status.as_str().to_owned()),
        (AppKey::SchemaVersion, facts.schema_version().to_string()),
        (AppKey::Load, facts.load().to_string()),
    ];
    if let Some(cql) = local.cql {
        states.push((AppKey::CqlAddress, cql.to_string()));
    }
    if let Some(release) = &local.release_version {
        states.push((AppKey::ReleaseVersion, release.clone()));
    }
    if let Some(replaced) = local.replaces {
        states.push((AppKey::Replaces, replaced.to_string()));
    }
    states
}

fn load_peers(path: &std::path::Path) -> BTreeSet<SocketAddr> {
    let Ok(bytes) = std::fs::read(path) else {
        return BTreeSet::new();
    };
    let list: Vec<String> = serde_json::from_slice(&bytes).unwrap_or_default();
    list.iter().filter_map(|a| a.parse().ok()).collect()
}

fn save_peers(path: &std::path::Path, list: &[String]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(list).expect("a list serializes"),
    )?;
    std::fs::rename(tmp, path)
}
