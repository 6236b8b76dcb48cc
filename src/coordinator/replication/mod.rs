//! The replica seam and the fan-out: how a coordinator reaches a partition's replicas and
//! how many answers it waits for (design §17). Everything that talks to more than one
//! replica is in this folder, in plain sight:
//!
//! - [`quorum`]: what a consistency level needs of a partition's replicas, counted by data
//!   centre (Cassandra's `blockFor`, LOCAL_* and EACH_QUORUM rules).
//! - `write.rs`: a write goes to every live replica of each partition it touches — this
//!   node's in-process, the others over internode — and is acknowledged once every
//!   partition has the acknowledgements its level needs; `Unavailable` before anything is
//!   sent when too few are alive, `WriteTimeout` at `write_request_timeout_ms`. Replicas
//!   still working when the level is met finish in the background.
//! - `read.rs`: a partition read asks the closest replica for data and the others the level
//!   needs for digests; equal digests answer with the data, a mismatch asks them all for data
//!   and merges the answers by last-write-wins (`storage::merge`). `ReadTimeout` at
//!   `read_request_timeout_ms`.
//! - `scan.rs`: token-range scans walk the ring range by range, asking each range's
//!   replicas for the partitions they hold; TRUNCATE goes to every node.
//! - `ownership.rs`: the share of the token space each node holds, raw and per keyspace
//!   (`ringcache status`), from the same placements; `counters.rs`: what `/metrics` counts
//!   of requests and of the partitions planned here.
//!
//! A replica is addressed as [`Replica`]: this node (called directly: no serialization, no
//! task, the same [`LocalReplica`] calls a peer's request would make) or a peer's internode
//! address. A one-node cluster is the degenerate case of the same code: every partition's
//! one replica is local, and the write and read paths take their in-process shortcut.

mod batchlog;
mod counters;
mod hints;
mod ownership;
mod pace;
mod quorum;
mod read;
mod repair;
mod scan;
mod write;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use uuid::Uuid;

use super::ClusterLinks;
use crate::cluster::membership::View;
use crate::cluster::message::{Request, Response};
use crate::cluster::transport::CallError;
use crate::config::Config;
use crate::replica::LocalReplica;
use crate::ring::{Location, Placement, Strategy, Token};
use crate::schema::KeyspaceDef;
pub use counters::{Counters, Outcome, PartitionOp, RequestCounts};
pub use ownership::{Ownership, OwnershipError};
pub use quorum::{Need, Tally};
pub use read::{ReadFailed, ReadTarget};
pub use repair::{RepairCounts, RepairProgress, SpanRepair};
pub use write::WriteType;

/// How long the coordinator waits for replicas.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub write: Duration,
    pub read: Duration,
    pub range: Duration,
    pub truncate: Duration,
    pub repair: Duration,
}

impl Timeouts {
    fn from_config(config: &Config) -> Timeouts {
        let ms = Duration::from_millis;
        Timeouts {
            write: ms(config.write_request_timeout_ms),
            read: ms(config.read_request_timeout_ms),
            range: ms(config.range_request_timeout_ms),
            truncate: ms(config.truncate_request_timeout_ms),
            repair: ms(config.repair_request_timeout_ms),
        }
    }
}

/// One replica of a partition, as a request sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    pub host_id: Uuid,
    /// The peer's internode address; None for this node.
    pub address: Option<SocketAddr>,
    pub dc: String,
    pub alive: bool,
}

impl Replica {
    /// Whether this is the coordinating node itself.
    pub fn is_local(&self) -> bool {
        self.address.is_none()
    }

    /// How messages name it: its address, or "this node".
    pub fn label(&self) -> String {
        self.address
            .map_or_else(|| "this node".to_owned(), |a| a.ip().to_string())
    }
}

/// The coordinator's access to every replica: this node's, and its peers' through the
/// cluster.
pub struct Replication {
    local: Arc<LocalReplica>,
    cluster: ClusterLinks,
    local_dc: String,
    timeouts: Timeouts,
    placements: Mutex<Placements>,
    /// `[faults] abandon_logged_batches`.
    abandon_batches: bool,
    /// Hinted handoff's settings.
    hints: hints::HintSettings,
    /// Held by a hint delivery pass: one at a time (the worker's, a decommission's), so a
    /// hint is never sent and removed twice.
    delivering: tokio::sync::Mutex<()>,
    /// `stream_throughput_mib_per_sec`, shared by every repair's and move's writes.
    stream_pace: pace::Pacer,
    /// Requests and planned partitions, for `/metrics`.
    pub counters: Arc<Counters>,
}

/// Placements of the current ring (and of the pending ring, flagged `true`), by strategy;
/// dropped when either ring changes.
#[derive(Default)]
struct Placements {
    ring_version: u64,
    by_strategy: HashMap<(Strategy, bool), Arc<Placement>>,
}

impl Replication {
    pub fn new(config: &Config, local: Arc<LocalReplica>, cluster: ClusterLinks) -> Replication {
        Replication {
            local,
            cluster,
            local_dc: config.data_center.clone(),
            timeouts: Timeouts::from_config(config),
            placements: Mutex::new(Placements::default()),
            abandon_batches: config.faults.abandon_logged_batches,
            hints: hints::HintSettings::from_config(config),
            delivering: tokio::sync::Mutex::new(()),
            stream_pace: pace::Pacer::new(config.stream_throughput_mib_per_sec << 20),
            counters: Arc::default(),
        }
    }

    /// This node's replica.
    pub fn local(&self) -> &LocalReplica {
        &self.local
    }

    /// The membership picture requests plan against.
    pub fn view(&self) -> Arc<View> {
        self.cluster.membership.view()
    }

    /// The replicas of `token` in `keyspace`, primary first; system keyspaces (and any
    /// LocalStrategy) have this node alone.
    pub fn replicas(&self, view: &View, keyspace: &KeyspaceDef, token: i64) -> Vec<Replica> {
        let strategy = strategy(keyspace);
        if strategy == Strategy::Local {
            return vec![self.replica(view, view.local)];
        }
        let placement = self.placement(view, &strategy, false);
        placement
            .replicas(Token(token))
            .iter()
            .map(|host| self.replica(view, *host))
            .collect()
    }

    /// The pending replicas of `token` in `keyspace` while a node joins or leaves: the
    /// replicas it will have once the move is done that it does not have now. Writes go to
    /// them too and wait for one more acknowledgement each (Cassandra's pending endpoints),
    /// so a write acknowledged during the move is on enough replicas after it.
    pub fn pending_replicas(
        &self,
        view: &View,
        keyspace: &KeyspaceDef,
        token: i64,
    ) -> Vec<Replica> {
        if view.pending_ring.is_none() {
            return Vec::new();
        }
        let strategy = strategy(keyspace);
        if strategy == Strategy::Local {
            return Vec::new();
        }
        let now = self.placement(view, &strategy, false);
        let natural = now.replicas(Token(token));
        let future = self.placement(view, &strategy, true);
        future
            .replicas(Token(token))
            .iter()
            .filter(|host| !natural.contains(host))
            .map(|host| self.replica(view, *host))
            .collect()
    }

    /// What `consistency` needs of a partition of `keyspace`.
    pub fn need(&self, keyspace: &KeyspaceDef, consistency: crate::protocol::Consistency) -> Need {
        let strategy = strategy(keyspace);
        let simple = matches!(strategy, Strategy::Simple { .. } | Strategy::Local);
        Need::of(
            consistency,
            &strategy.factors(&self.local_dc),
            &self.local_dc,
            simple,
        )
    }

    fn replica(&self, view: &View, host_id: Uuid) -> Replica {
        let node = view.node(&host_id);
        Replica {
            host_id,
            address: (host_id != view.local)
                .then(|| node.map(|n| n.internode))
                .flatten(),
            dc: node.map(|n| n.data_center.clone()).unwrap_or_default(),
            alive: host_id == view.local || node.is_some_and(|n| n.alive),
        }
    }

    /// The replicas a write of `token` in `keyspace` goes to, and how many of them are its
    /// replicas now: those first, then its pending ones while a node joins or leaves, each
    /// pending one raising every need in `needs` by one where it counts
    /// ([`Need::plus_pending`]).
    pub fn write_replicas(
        &self,
        view: &View,
        keyspace: &KeyspaceDef,
        token: i64,
        needs: &mut [&mut Need],
    ) -> (Vec<Replica>, usize) {
        let mut replicas = self.replicas(view, keyspace, token);
        let natural = replicas.len();
        for pending in self.pending_replicas(view, keyspace, token) {
            for need in needs.iter_mut() {
                need.plus_pending(&pending.dc);
            }
            replicas.push(pending);
        }
        (replicas, natural)
    }

    /// The placement of `strategy` on the current ring, or on the pending one (`pending`,
    /// which falls back to the current ring when no move is in progress).
    fn placement(&self, view: &View, strategy: &Strategy, pending: bool) -> Arc<Placement> {
        let mut cache = self.placements.lock().expect("placements");
        if cache.ring_version != view.ring_version {
            *cache = Placements {
                ring_version: view.ring_version,
                by_strategy: HashMap::new(),
            };
        }
        let ring = match (pending, &view.pending_ring) {
            (true, Some(ring)) => ring,
            _ => &view.ring,
        };
        cache
            .by_strategy
            .entry((strategy.clone(), pending))
            .or_insert_with(|| Arc::new(Placement::new(ring, &locations(view), strategy)))
            .clone()
    }

    /// How long the coordinator waits for replicas.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sends `request` to `replica` (in-process for this node) and waits until `deadline`.
    pub async fn call(
        &self,
        replica: &Replica,
        request: Request,
        deadline: Instant,
    ) -> Result<Response, CallError> {
        call(&self.local, &self.cluster, replica, request, deadline).await
    }

    /// Sends `request` to each of `targets`, each call in its own task so that it finishes
    /// even once the caller stops listening; the answers arrive on the returned channel as
    /// they come (the Paxos rounds' fan-out).
    pub fn send_each(
        &self,
        targets: &[Replica],
        request: &Request,
        deadline: Instant,
    ) -> tokio::sync::mpsc::UnboundedReceiver<(Replica, Result<Response, CallError>)> {
        let (answers, answered) = tokio::sync::mpsc::unbounded_channel();
        for replica in targets.iter().cloned() {
            let (local, cluster, answers) =
                (self.local.clone(), self.cluster.clone(), answers.clone());
            let request = request.clone();
            tokio::spawn(async move {
                let result = call(&local, &cluster, &replica, request, deadline).await;
                let _ = answers.send((replica, result));
            });
        }
        answered
    }

    /// The live replicas in the order reads prefer them: this node, then its data centre,
    /// then the others (shuffled within each group, to spread load).
    fn by_proximity(&self, mut replicas: Vec<Replica>) -> Vec<Replica> {
        replicas.retain(|r| r.alive);
        replicas.shuffle(&mut rand::rng());
        replicas.sort_by_key(|r| (!r.is_local(), r.dc != self.local_dc));
        replicas
    }
}

/// Sends `request` to `replica`: directly to this node's replica, or over internode.
async fn call(
    local: &LocalReplica,
    cluster: &ClusterLinks,
    replica: &Replica,
    request: Request,
    deadline: Instant,
) -> Result<Response, CallError> {
    match replica.address {
        None => crate::cluster::service::answer(local, request)
            .await
            .map_err(CallError::Remote),
        Some(address) => cluster.transport.request(address, request, deadline).await,
    }
}

/// The strategy a keyspace replicates by.
pub fn strategy(keyspace: &KeyspaceDef) -> Strategy {
    if keyspace.is_system() {
        return Strategy::Local;
    }
    Strategy::from_replication(&keyspace.replication)
}

/// Every ring node's location.
fn locations(view: &View) -> HashMap<Uuid, Location> {
    view.nodes
        .values()
        .map(|n| {
            let location = Location {
                data_center: n.data_center.clone(),
                rack: n.rack.clone(),
            };
            (n.host_id, location)
        })
        .collect()
}
