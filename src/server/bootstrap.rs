//! Joining a running cluster with the data of the ranges this node takes over (bootstrap),
//! in Cassandra's shape:
//!
//! 1. The node starts JOINING (`node/bootstrap.rs` decides that it must): its tokens are
//!    gossiped but not on anyone's ring, so every coordinator that sees it treats it as a
//!    *pending* replica of the ranges it is gaining — writes go to it as well and wait for
//!    it too — while reads still plan on the current ring (`coordinator/replication`).
//! 2. It waits until it knows the ring and every live peer has seen it joining (their
//!    gossip digests hold its state; Cassandra sleeps RING_DELAY instead), so every write
//!    acknowledged from then on reaches it.
//! 3. It streams: every span it will replicate, of every user table, is repaired from the
//!    span's live replicas into it (`Repairs::stream`: Merkle trees, then the partitions
//!    it lacks, merged by last-write-wins, tombstones included, applied through its normal
//!    write path). Together with step 2 this node then holds every write acknowledged
//!    before it was seen joining and every one after. A failure (a source gone, a timeout)
//!    is retried after a pause, the node staying JOINING.
//! 4. It becomes NORMAL: its tokens join every node's ring (drivers get NEW_NODE), and the
//!    bootstrap marker is removed.
//!
//! Every node, this one included, drops its cache when the ranges it replicates change
//! ([`drop_cache_on_ownership_change`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::repair::{Repairs, Stream};
use super::Shared;
use crate::cluster::gossip::Gossiper;
use crate::cluster::membership::{Membership, NodeStatus};
use crate::replica::LocalReplica;

/// How long a joining node waits for its peers to see it before it streams anyway (with a
/// warning: a peer that had not seen it may acknowledge a write it misses).
const SEEN_WAIT: Duration = Duration::from_secs(30);
/// The pause before a failed stream is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// What a bootstrap needs of the node.
pub struct Joining {
    pub shared: Arc<Shared>,
    pub repairs: Arc<Repairs>,
    pub membership: Arc<Membership>,
    pub gossiper: Arc<Gossiper>,
}

/// Runs the bootstrap (steps 2–4 above) until the node is NORMAL or shuts down.
pub async fn run(joining: Joining, mut shutdown: watch::Receiver<bool>) {
    let Joining {
        shared,
        repairs,
        membership,
        gossiper,
    } = joining;
    let data_dir = shared.config.data_dir.clone();
    tracing::info!("joining the cluster: waiting for the ring and for every peer to see this node");
    let version = gossiper.local_version();
    let missing = loop {
        tokio::select! {
            seen = gossiper.wait_seen(version, SEEN_WAIT) => match seen {
                Some(missing) => break missing,
                None => tracing::warn!("no node that owns ranges is known yet; still waiting"),
            },
            _ = shutdown.changed() => return,
        }
    };
    if !missing.is_empty() {
        tracing::warn!(
            ?missing,
            "streaming although these peers have not yet seen this node joining"
        );
    }
    loop {
        let plan = shared.coordinator.plan_movement(true);
        let streamed = match repairs.begin_stream(Stream::Bootstrap, &plan) {
            Ok((_, progress)) => tokio::select! {
                streamed = repairs.stream(&shared, &plan, &progress) => streamed,
                _ = shutdown.changed() => return,
            },
            Err(error) => Err(error),
        };
        match streamed {
            Ok(counts) => {
                tracing::info!(
                    partitions = counts.partitions_repaired,
                    bytes = counts.bytes_streamed,
                    "bootstrap streamed; this node is NORMAL"
                );
                break;
            }
            Err(error) => {
                tracing::warn!(%error, "bootstrap stream failed; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
    crate::cluster::set_status(&membership, &gossiper, NodeStatus::Normal);
    if let Err(error) = crate::node::bootstrap::finished(&data_dir) {
        tracing::error!(%error, "cannot record that the bootstrap finished; the next start streams again");
    }
}

/// Drops this node's cache whenever the ranges nodes own change, until shutdown.
pub async fn drop_cache_on_ownership_change(
    membership: Arc<Membership>,
    replica: Arc<LocalReplica>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = membership.ownership_changes();
    changes.mark_unchanged();
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                tracing::info!("the ranges nodes own changed: dropping the cache");
                replica.cache().ownership_changed();
            }
            _ = shutdown.changed() => return,
        }
    }
}
