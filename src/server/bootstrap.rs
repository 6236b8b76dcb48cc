//! Joining a running cluster with the data of the ranges this node takes over (bootstrap),
//! in Cassandra's shape:
//!
//! 1. The node starts WAITING (`node/bootstrap.rs` decides that it must join): known to
//!    its peers, on no ring. It claims the cluster's one range movement from the metadata
//!    log, waiting its turn while another node joins or leaves ([`claim_turn`]): two moves
//!    never overlap (Cassandra refuses a second bootstrap instead). Then it turns JOINING:
//!    its tokens are gossiped but not on anyone's ring, so every coordinator that sees it
//!    treats it as a *pending* replica of the ranges it is gaining — writes go to it as
//!    well and wait for it too — while reads still plan on the current ring
//!    (`coordinator/replication`). A node waiting its turn is not pending yet: were it,
//!    writes would wait for one more replica for as long as another node streams.
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
//!    bootstrap marker is removed. Once its peers have seen that, it releases the range
//!    movement for the next node.
//!
//! A node replacing a dead one (`server/replace.rs`) runs the same steps with the dead
//! node's tokens; once NORMAL it removes that node from the metadata log's group.
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
use crate::metadata::MetadataLog;
use crate::replica::LocalReplica;

/// How long a joining node waits for its peers to see it before it streams anyway (with a
/// warning: a peer that had not seen it may acknowledge a write it misses).
const SEEN_WAIT: Duration = Duration::from_secs(30);
/// The pause before a failed stream is tried again.
const RETRY: Duration = Duration::from_secs(5);
/// How often a node waiting for its turn to move ranges looks again.
const TURN_POLL: Duration = Duration::from_secs(1);

/// What a bootstrap needs of the node.
pub struct Joining {
    pub shared: Arc<Shared>,
    pub repairs: Arc<Repairs>,
    pub membership: Arc<Membership>,
    pub gossiper: Arc<Gossiper>,
    /// The dead node this one replaces (`server/replace.rs`), if it does.
    pub replacing: Option<uuid::Uuid>,
    pub metadata: Arc<MetadataLog>,
}

/// Runs the bootstrap (steps 2–4 above) until the node is NORMAL or shuts down.
pub async fn run(joining: Joining, mut shutdown: watch::Receiver<bool>) {
    let Joining {
        shared,
        repairs,
        membership,
        gossiper,
        replacing,
        metadata,
    } = joining;
    let data_dir = shared.config.data_dir.clone();
    let kind = match replacing {
        Some(_) => "replace",
        None => Stream::Bootstrap.name(),
    };
    if !claim_turn(&shared, kind, &mut shutdown).await {
        return;
    }
    crate::cluster::set_status(&membership, &gossiper, NodeStatus::Joining);
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
    if let Some(replaced) = replacing {
        // Every node that sees this one NORMAL counts the replaced node gone; the metadata
        // group stops counting it among its voters.
        if let Err(error) = crate::node::replace::finish(&data_dir) {
            tracing::error!(%error, "cannot record that the replacement finished; the next start streams again");
        }
        match metadata.remove_member(replaced).await {
            Ok(()) => tracing::info!(%replaced, "the replaced node is out of the metadata group"),
            Err(error) => {
                tracing::warn!(%replaced, %error, "could not remove the replaced node from the metadata group; its majority still counts it")
            }
        }
    }
    if let Err(error) = crate::node::bootstrap::finished(&data_dir) {
        tracing::error!(%error, "cannot record that the bootstrap finished; the next start streams again");
    }
    let _ = gossiper
        .wait_seen(gossiper.local_version(), SEEN_WAIT)
        .await;
    release_turn(&shared, shutdown).await;
}

/// Claims the cluster's one range movement for this node as `kind`, waiting while another
/// node holds it (looking at this node's copy of the log before asking, so a wait adds no
/// entries) or while the log has no majority; false if the node shuts down first.
async fn claim_turn(shared: &Shared, kind: &str, shutdown: &mut watch::Receiver<bool>) -> bool {
    let mut waiting_for = None;
    loop {
        let held = shared
            .coordinator
            .movement()
            .filter(|_| !shared.coordinator.holds_movement());
        let holder = match held {
            Some(holder) => Some(holder),
            None => match shared.coordinator.claim_movement(kind).await {
                Ok(None) => return true,
                Ok(Some(holder)) => Some(holder),
                Err(error) => {
                    tracing::warn!(%error, "cannot claim the range movement yet; trying again");
                    None
                }
            },
        };
        if let Some(holder) = holder {
            if waiting_for != Some(holder.host_id) {
                tracing::info!(
                    node = %holder.host_id,
                    kind = %holder.kind,
                    "another node is moving ranges: waiting for it to finish (one range \
                     movement at a time)"
                );
                waiting_for = Some(holder.host_id);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TURN_POLL) => {}
            _ = shutdown.changed() => return false,
        }
    }
}

/// Releases this node's range movement, trying again while the log has no majority (until
/// shutdown: the next start releases it then, [`release_stale_turn`]).
async fn release_turn(shared: &Shared, mut shutdown: watch::Receiver<bool>) {
    loop {
        match shared.coordinator.release_movement().await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot release the range movement yet; trying again")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// At the start of a node that is not joining: a range movement it still holds is one it
/// did not finish (it was killed while leaving, and came back NORMAL); it is released.
pub async fn release_stale_turn(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    if shared.coordinator.holds_movement() {
        tracing::info!("this node holds a range movement it did not finish; releasing it");
        release_turn(&shared, shutdown).await;
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
