//! Hinted handoff, the coordinator's side: keeping the writes a replica missed, and handing
//! them over once it is back.
//!
//! A write's replica that is down when the write is planned, or that does not acknowledge
//! it (a timeout, a broken connection), gets a hint on the coordinator: its updates, stored
//! in this node's engine (`replica/hints.rs`) — unless hints are off, the replica has been
//! down longer than `max_hint_window_ms` (it needs a repair: hints older than that would
//! not be the whole story), or its hints already fill `max_hints_bytes` (the hint is
//! dropped and counted). Every pass of the hints worker looks at the targets with hints
//! pending that gossip says are up, and sends each its hints oldest first through its
//! normal write path (`Request::Write`, so its cache stays coherent), at
//! `hinted_handoff_throttle_kb`; each hint is removed once acknowledged, and a target that
//! does not answer is tried again at the next pass. Hints keep the writes' timestamps, so
//! one replayed twice changes nothing. A hint older than the `gc_grace_seconds` of a table
//! it writes is dropped instead of replayed: the tombstones that shadowed it elsewhere may
//! be purged by then, and replaying it could bring deleted data back. Nor is an update of a
//! table this node truncated after the hint was stored (`replica/truncations.rs`).
//!
//! A target that left the cluster (decommissioned) gets none: its hints are dropped at the
//! next pass, as Cassandra excises them — its ranges were streamed to the nodes that took
//! them over. A node that leaves hands its own hints over first: it delivers them to their
//! targets, all up (decommission refuses otherwise), before it turns LEFT.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{Replica, Replication};
use crate::cluster::membership::NodeStatus;
use crate::cluster::message::{Request, Response};
use crate::error::Result;
use crate::schema::Catalog;
use crate::storage::partition::PartitionUpdate;

/// Hints read per target per step of a delivery pass.
const BATCH: usize = 64;

/// Hinted handoff's settings, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct HintSettings {
    pub enabled: bool,
    pub window: Duration,
    pub max_bytes: u64,
    /// Bytes per second replayed to one target.
    pub throttle: u64,
}

impl HintSettings {
    pub fn from_config(config: &crate::config::Config) -> HintSettings {
        HintSettings {
            enabled: config.hinted_handoff_enabled,
            window: Duration::from_millis(config.max_hint_window_ms),
            max_bytes: config.max_hints_bytes,
            throttle: config.hinted_handoff_throttle_kb.max(1) * 1024,
        }
    }
}

impl Replication {
    /// Keeps `updates` as a hint for `replica`, if the rules above allow; true if stored.
    pub async fn hint(&self, replica: &Replica, updates: Vec<PartitionUpdate>) -> bool {
        hint(
            &self.local,
            &self.cluster,
            self.hints,
            &self.counters,
            replica,
            updates,
        )
        .await
    }

    /// One delivery pass: every target with hints pending that is up gets them, oldest
    /// first. Returns how many were delivered.
    pub async fn deliver_hints(&self, catalog: &Catalog) -> Result<usize> {
        let _one_pass = self.delivering.lock().await;
        let view = self.view();
        let mut delivered = 0;
        for (target, _, _) in self.local.hint_ledger().targets() {
            if view
                .node(&target)
                .is_some_and(|n| n.status == NodeStatus::Left)
            {
                let dropped = self.drop_hints_for(target).await?;
                tracing::info!(%target, dropped, "hints for a node that left the cluster dropped");
                continue;
            }
            if !view.is_alive(&target) || target == view.local {
                continue;
            }
            delivered += self
                .deliver_to(catalog, &self.replica(&view, target))
                .await?;
        }
        Ok(delivered)
    }

    /// Removes every hint for `target`, counting each as dropped; how many there were.
    async fn drop_hints_for(&self, target: Uuid) -> Result<usize> {
        let mut dropped = 0;
        loop {
            let hints = self.local.hints_for(target, BATCH).await?;
            if hints.is_empty() {
                return Ok(dropped);
            }
            for hint in hints {
                self.local.hint_remove(target, &hint).await?;
                self.counters.hints_dropped.fetch_add(1, Ordering::Relaxed);
                dropped += 1;
            }
        }
    }

    async fn deliver_to(&self, catalog: &Catalog, target: &Replica) -> Result<usize> {
        let mut delivered = 0;
        loop {
            let hints = self.local.hints_for(target.host_id, BATCH).await?;
            if hints.is_empty() {
                return Ok(delivered);
            }
            for mut hint in hints {
                // Updates of tables truncated since the hint was stored are dropped: they
                // would bring truncated rows back.
                let before = hint.updates.len();
                let local = &self.local;
                hint.updates.retain(|u| {
                    local
                        .truncated_at(u.table)
                        .is_none_or(|at| at < hint.stored_at)
                });
                if hint.updates.is_empty() {
                    tracing::info!(target = %target.host_id, hint = %hint.id, truncated = before, "hint older than a TRUNCATE of its tables dropped");
                    self.counters.hints_dropped.fetch_add(1, Ordering::Relaxed);
                    self.local.hint_remove(target.host_id, &hint).await?;
                    continue;
                }
                if too_old(catalog, &hint.updates, hint.stored_at) {
                    tracing::info!(target = %target.host_id, hint = %hint.id, "hint older than gc_grace_seconds dropped");
                    self.counters.hints_dropped.fetch_add(1, Ordering::Relaxed);
                    self.local.hint_remove(target.host_id, &hint).await?;
                    continue;
                }
                let started = Instant::now();
                let deadline = started + self.timeouts.write;
                let request = Request::Write {
                    updates: hint.updates.clone(),
                };
                if !matches!(
                    self.call(target, request, deadline).await,
                    Ok(Response::Ack)
                ) {
                    return Ok(delivered);
                }
                self.local.hint_remove(target.host_id, &hint).await?;
                self.counters.hints_replayed.fetch_add(1, Ordering::Relaxed);
                delivered += 1;
                let pace = Duration::from_secs_f64(hint.bytes as f64 / self.hints.throttle as f64);
                tokio::time::sleep(pace.saturating_sub(started.elapsed())).await;
            }
        }
    }
}

/// Keeps a hint (the free-standing form, for the write fan-out's replica tasks).
pub(super) async fn hint(
    local: &crate::replica::LocalReplica,
    cluster: &crate::coordinator::ClusterLinks,
    settings: HintSettings,
    counters: &super::Counters,
    replica: &Replica,
    updates: Vec<PartitionUpdate>,
) -> bool {
    if !settings.enabled || replica.is_local() {
        return false;
    }
    let target = replica.host_id;
    let why = if cluster.membership.down_for(&target) > settings.window {
        Some("it has been down longer than max_hint_window_ms")
    } else if local.hint_ledger().of(&target).1 >= settings.max_bytes {
        Some("its hints fill max_hints_bytes")
    } else {
        None
    };
    if let Some(why) = why {
        counters.hints_dropped.fetch_add(1, Ordering::Relaxed);
        let address = replica.label();
        let first = counters
            .unhinted
            .lock()
            .expect("unhinted")
            .insert(address.clone());
        if first {
            tracing::warn!(
                node = %address,
                "writes for {address} are no longer hinted ({why}): run `ringcache repair` \
                 once it is back, before gc_grace_seconds passes, or deleted data may return"
            );
        }
        return false;
    }
    let ticks = crate::coordinator::functions::time::next_timeuuid_ticks();
    let id = Uuid::from_bytes(crate::coordinator::functions::time::timeuuid_bytes(ticks));
    match local.hint_store(target, id, &updates).await {
        Ok(_) => {
            counters.hints_stored.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(error) => {
            tracing::warn!(%target, %error, "could not store a hint");
            counters.hints_dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// Whether a hint stored at `stored_at` (µs) outlived the `gc_grace_seconds` of a table it
/// writes (or the table is gone).
fn too_old(catalog: &Catalog, updates: &[PartitionUpdate], stored_at: i64) -> bool {
    let age = crate::clock::now_micros().saturating_sub(stored_at) / 1_000_000;
    updates.iter().any(|u| match catalog.table_by_id(u.table) {
        Some(table) => age > i64::from(table.options.gc_grace_seconds),
        None => true,
    })
}
