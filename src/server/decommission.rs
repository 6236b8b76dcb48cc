//! Leaving the cluster (`ringcache decommission`, `POST /decommission` on the leaving node),
//! the mirror of joining (`server/bootstrap.rs`):
//!
//! 1. Checks, refusing with the reason: this node is NORMAL, no other node is joining or
//!    leaving (one move at a time), every node is up (each is a source or a target), and
//!    every keyspace's replication factor still fits in the nodes that remain in each data
//!    centre (Cassandra's check). Then it claims the cluster's one range movement from the
//!    metadata log; held by another node, the decommission fails at once, saying which.
//! 2. It turns LEAVING: it still owns its ranges, and every coordinator that sees it also
//!    sends writes to the nodes that will gain them (pending replicas, `pending_ring`).
//! 3. It waits until every live peer has seen it leaving, then streams every span that
//!    gains a replica — a repair of that span from its live replicas into the gaining ones,
//!    so the gainers hold everything acknowledged before and take everything after.
//! 4. It turns LEFT: no node's ring holds its tokens any more, `system.peers` and
//!    `ringcache status` drop it, drivers get REMOVED_NODE. Once every live peer has seen
//!    that, it records it (`node/bootstrap.rs`: it never starts on this data directory
//!    again), releases the range movement, leaves the metadata log's group (so its
//!    majority stops counting this node, and a learner takes its vote) and stops.
//!
//! Between 3 and 4 it hands over the hints it holds: every target is up, so it delivers
//! them (what a target refuses is lost with this node, logged; a repair covers it). Every
//! other node drops the hints it holds for this one once it has LEFT (the hints worker).
//!
//! A stream that fails turns the node NORMAL again, with the reason in the report; what it
//! already streamed is harmless extra copies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::repair::{Repairs, Stream};
use super::Shared;
use crate::cluster::gossip::Gossiper;
use crate::cluster::membership::{Membership, NodeStatus, View};
use crate::metadata::MetadataLog;

/// How long the leaving node waits for its peers to see each of its status changes.
const SEEN_WAIT: Duration = Duration::from_secs(30);

/// This node's way out of the cluster.
pub struct Decommission {
    shared: Arc<Shared>,
    repairs: Arc<Repairs>,
    membership: Arc<Membership>,
    gossiper: Arc<Gossiper>,
    metadata: Arc<MetadataLog>,
    /// Set once a decommission started: there is no second one.
    started: AtomicBool,
    /// Told once the node has left, so the process stops.
    left: watch::Sender<bool>,
}

impl Decommission {
    pub fn new(
        shared: Arc<Shared>,
        repairs: Arc<Repairs>,
        (membership, gossiper): (Arc<Membership>, Arc<Gossiper>),
        metadata: Arc<MetadataLog>,
        left: watch::Sender<bool>,
    ) -> Decommission {
        Decommission {
            shared,
            repairs,
            membership,
            gossiper,
            metadata,
            started: AtomicBool::new(false),
            left,
        }
    }

    /// Starts the decommission (steps 1–2 here, the rest in the background): the stream's
    /// first report as JSON, or an HTTP status and why it was refused.
    pub fn start(self: &Arc<Self>) -> Result<String, (&'static str, String)> {
        let view = self.membership.view();
        self.refusal(&view)
            .map_err(|why| ("400 Bad Request", why))?;
        if self.started.swap(true, Ordering::SeqCst) {
            return Err((
                "409 Conflict",
                "a decommission of this node already started".to_owned(),
            ));
        }
        self.set(NodeStatus::Leaving);
        let plan = self.shared.coordinator.plan_movement(false);
        let (report, progress) = match self.repairs.begin_stream(Stream::Decommission, &plan) {
            Ok(started) => started,
            Err(why) => {
                self.set(NodeStatus::Normal);
                self.started.store(false, Ordering::SeqCst);
                return Err(("409 Conflict", why));
            }
        };
        tracing::info!(
            tables = plan.len(),
            spans = report.spans_total,
            "decommission: LEAVING, handing this node's ranges over"
        );
        let leaving = self.clone();
        tokio::spawn(async move {
            let claimed = leaving
                .shared
                .coordinator
                .claim_movement(Stream::Decommission.name())
                .await;
            let refused = match claimed {
                Ok(None) => None,
                Ok(Some(holder)) => Some(format!(
                    "another node ({}) is moving ranges ({}): one range movement at a time",
                    leaving.address_of(holder.host_id),
                    holder.kind
                )),
                Err(error) => Some(format!("cannot claim the range movement: {error}")),
            };
            if let Some(why) = refused {
                tracing::warn!(%why, "decommission refused; this node is NORMAL again");
                leaving.repairs.abandon(&progress, why);
                leaving.set(NodeStatus::Normal);
                leaving.started.store(false, Ordering::SeqCst);
                return;
            }
            let seen = leaving.gossiper.local_version();
            leaving.wait_seen(seen).await;
            let streamed = leaving
                .repairs
                .stream(&leaving.shared, &plan, &progress)
                .await;
            match streamed {
                Ok(counts) => {
                    tracing::info!(
                        partitions = counts.partitions_repaired,
                        bytes = counts.bytes_streamed,
                        "decommission: ranges handed over; LEFT"
                    );
                    leaving.hand_hints_over().await;
                    leaving.leave().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "decommission failed; this node is NORMAL again");
                    leaving.set(NodeStatus::Normal);
                    leaving.release().await;
                    leaving.started.store(false, Ordering::SeqCst);
                }
            }
        });
        serde_json::to_string_pretty(&report)
            .map_err(|e| ("500 Internal Server Error", e.to_string()))
    }

    /// Why this node cannot leave now, if it cannot.
    fn refusal(&self, view: &View) -> Result<(), String> {
        let local = view.local();
        if local.status != NodeStatus::Normal {
            return Err(format!(
                "this node is {}: only a NORMAL node can be decommissioned",
                local.status.as_str()
            ));
        }
        if view.pending_ring.is_some() {
            return Err("another node is joining or leaving: one move at a time".to_owned());
        }
        let owners: Vec<_> = view
            .nodes
            .values()
            .filter(|n| n.status.owns_ranges())
            .collect();
        let down: Vec<String> = owners
            .iter()
            .filter(|n| !n.alive)
            .map(|n| n.internode.ip().to_string())
            .collect();
        if !down.is_empty() {
            return Err(format!(
                "cannot decommission while nodes are down: {} (they would miss the ranges \
                 handed over)",
                down.join(", ")
            ));
        }
        if owners.len() < 2 {
            return Err("the only node of the cluster cannot leave it".to_owned());
        }
        self.shared.coordinator.fits_without(view.local)?;
        Ok(())
    }

    /// Releases the range movement (tried a few times: a node that cannot leaves it held,
    /// logged, and `ringcache status` shows it).
    async fn release(&self) {
        for _ in 0..3 {
            match self.shared.coordinator.release_movement().await {
                Ok(()) => return,
                Err(error) => tracing::warn!(%error, "cannot release the range movement"),
            }
        }
    }

    /// `host_id`'s address, as gossip knows it.
    fn address_of(&self, host_id: uuid::Uuid) -> String {
        self.membership
            .view()
            .node(&host_id)
            .map_or_else(|| host_id.to_string(), |n| n.internode.ip().to_string())
    }

    fn set(&self, status: NodeStatus) {
        crate::cluster::set_status(&self.membership, &self.gossiper, status);
    }

    async fn wait_seen(&self, version: (i64, u64)) {
        if let Some(missing) = self.gossiper.wait_seen(version, SEEN_WAIT).await {
            if !missing.is_empty() {
                tracing::warn!(?missing, "these peers have not yet seen this node's status");
            }
        }
    }

    /// Delivers the hints this node holds, pass after pass while passes deliver some.
    async fn hand_hints_over(&self) {
        let coordinator = &self.shared.coordinator;
        loop {
            let pending = coordinator.hints_pending();
            if pending == 0 {
                return;
            }
            match coordinator.deliver_hints().await {
                Ok(delivered) if delivered > 0 => {
                    tracing::info!(delivered, "decommission: hints handed over");
                }
                Ok(_) => {
                    tracing::warn!(pending, "decommission: hints their targets did not take are lost with this node; a repair covers them");
                    return;
                }
                Err(error) => {
                    tracing::warn!(pending, %error, "decommission: hints could not be handed over and are lost with this node; a repair covers them");
                    return;
                }
            }
        }
    }

    /// Step 4: LEFT, seen, recorded, stopped.
    async fn leave(&self) {
        self.set(NodeStatus::Left);
        self.wait_seen(self.gossiper.local_version()).await;
        if let Err(error) = crate::node::bootstrap::record_left(
            &self.shared.config.data_dir,
            "it was decommissioned",
        ) {
            tracing::error!(%error, "cannot record that this node left; do not restart it on its data directory");
        }
        self.release().await;
        // Out of the metadata group too, so its majority no longer counts this node.
        if let Err(error) = self.metadata.leave().await {
            tracing::warn!(%error, "could not leave the metadata group; the others still count this node among its voters");
        }
        tracing::info!("this node left the cluster; stopping");
        self.left.send_replace(true);
    }
}
