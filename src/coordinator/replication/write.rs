//! The write fan-out: every live replica of every partition a statement writes receives it;
//! the statement is acknowledged once each partition has what its consistency level needs.
//!
//! 1. Plan: for each partition update, its replicas (placement) and the level's [`Need`];
//!    while a node joins, its pending replicas too, each raising the need by one (a write
//!    acknowledged during the move is then on enough replicas after it); if the live
//!    replicas cannot meet it, `Unavailable` — before anything is sent.
//! 2. Send: one message per replica node carrying all of that node's updates, this node's
//!    applied in-process through `LocalReplica::write` (the cache versions are bumped before
//!    it returns), each in its own task, so a replica still writing when the level is met
//!    finishes anyway — a write reaches every replica it can.
//! 3. Count: each answer acknowledges the updates it carried; when every update's tally
//!    meets its need the statement is acknowledged. Failures that leave a need unreachable
//!    end it with `WriteFailure`; the deadline with `WriteTimeout` (received = the fewest
//!    acknowledgements any partition got, as Cassandra reports per mutation) — a replica
//!    whose own call timed out at that deadline counts as silent, not failed.
//!
//! When this node is the only replica of everything written (a single node, RF 1 here),
//! the write is applied inline with no task and no message: the single-node path of old.

use std::collections::BTreeMap;
use std::time::Instant;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{call, Need, Replica, Replication, Tally};
use crate::cluster::message::{Request, Response};
use crate::cluster::transport::CallError;
use crate::error::{Error, Result};
use crate::protocol::Consistency;
use crate::schema::Catalog;
use crate::storage::partition::PartitionUpdate;

/// What kind of write a timeout reports (the protocol's `writeType`).
// BatchLog and Cas are reported once the batchlog and forwarded transactions write here.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteType {
    Simple,
    Batch,
    UnloggedBatch,
    BatchLog,
    Cas,
}

impl WriteType {
    fn name(self) -> &'static str {
        match self {
            WriteType::Simple => "SIMPLE",
            WriteType::Batch => "BATCH",
            WriteType::UnloggedBatch => "UNLOGGED_BATCH",
            WriteType::BatchLog => "BATCH_LOG",
            WriteType::Cas => "CAS",
        }
    }
}

/// One partition update's replicas and what it needs from them.
struct Planned {
    need: Need,
    acks: Tally,
    /// Replicas that could still acknowledge, by data centre.
    pending: Tally,
}

impl Replication {
    /// Writes `updates` (tables found in `catalog`) to their replicas at `consistency`.
    pub async fn write(
        &self,
        catalog: &Catalog,
        updates: Vec<PartitionUpdate>,
        consistency: Consistency,
        write_type: WriteType,
    ) -> Result<()> {
        let view = self.view();
        let mut planned = Vec::with_capacity(updates.len());
        let mut targets: BTreeMap<Uuid, (Replica, Vec<usize>)> = BTreeMap::new();
        let mut down: BTreeMap<Uuid, (Replica, Vec<usize>)> = BTreeMap::new();
        for (index, update) in updates.iter().enumerate() {
            let keyspace = catalog
                .table_by_id(update.table)
                .and_then(|t| catalog.keyspace(&t.keyspace))
                .ok_or_else(|| Error::invalid(format!("unknown table id {}", update.table)))?;
            let mut need = self.need(keyspace, consistency);
            let mut alive = Tally::default();
            let token = update.partition.token;
            let (replicas, natural) = self.write_replicas(&view, keyspace, token, &mut [&mut need]);
            let local = replicas[..natural].iter().any(Replica::is_local);
            self.counters.planned(super::PartitionOp::Write, local);
            for replica in replicas {
                let group = match replica.alive {
                    true => {
                        alive.add(&replica.dc);
                        &mut targets
                    }
                    false => &mut down,
                };
                let entry = group
                    .entry(replica.host_id)
                    .or_insert_with(|| (replica, Vec::new()));
                entry.1.push(index);
            }
            // ANY is met by a hint stored here: it is never Unavailable.
            let any = consistency == Consistency::Any && self.hints.enabled;
            if let (false, Some((required, present))) = (any, alive.shortfall(&need)) {
                return Err(Error::Unavailable {
                    consistency,
                    required: required as i32,
                    alive: present as i32,
                });
            }
            planned.push(Planned {
                need,
                acks: Tally::default(),
                pending: alive,
            });
        }
        let hinted = self.hint_down(&updates, down).await;
        if consistency == Consistency::Any && targets.is_empty() {
            return match hinted {
                true => Ok(()),
                false => Err(Error::Unavailable {
                    consistency,
                    required: 1,
                    alive: 0,
                }),
            };
        }
        if targets.len() == 1 && targets.values().all(|(r, _)| r.is_local()) {
            return self.local.write(updates).await;
        }
        let written = self
            .fan_out(updates, targets, planned, consistency, write_type)
            .await;
        match (written, consistency) {
            // The replicas that did not acknowledge are hinted by their own tasks.
            (Err(Error::WriteTimeout { .. } | Error::WriteFailure { .. }), Consistency::Any) => {
                Ok(())
            }
            (written, _) => written,
        }
    }

    /// Stores hints for the replicas that are down; true if any was stored.
    async fn hint_down(
        &self,
        updates: &[PartitionUpdate],
        down: BTreeMap<Uuid, (Replica, Vec<usize>)>,
    ) -> bool {
        let mut stored = false;
        for (replica, indexes) in down.into_values() {
            let missed = indexes.iter().map(|i| updates[*i].clone()).collect();
            stored |= self.hint(&replica, missed).await;
        }
        stored
    }

    async fn fan_out(
        &self,
        updates: Vec<PartitionUpdate>,
        targets: BTreeMap<Uuid, (Replica, Vec<usize>)>,
        mut planned: Vec<Planned>,
        consistency: Consistency,
        write_type: WriteType,
    ) -> Result<()> {
        let deadline = Instant::now() + self.timeouts.write;
        let (answers, mut answered) = mpsc::unbounded_channel();
        let updates = std::sync::Arc::new(updates);
        for (replica, indexes) in targets.into_values() {
            let request = Request::Write {
                updates: indexes.iter().map(|i| updates[*i].clone()).collect(),
            };
            let (local, cluster, answers) =
                (self.local.clone(), self.cluster.clone(), answers.clone());
            let (settings, counters, all) = (self.hints, self.counters.clone(), updates.clone());
            tokio::spawn(async move {
                let result = call(&local, &cluster, &replica, request, deadline).await;
                if matches!(
                    result,
                    Err(CallError::Timeout(_)
                        | CallError::Unreachable { .. }
                        | CallError::ConnectionLost(_))
                ) {
                    let missed = indexes.iter().map(|i| all[*i].clone()).collect();
                    super::hints::hint(&local, &cluster, settings, &counters, &replica, missed)
                        .await;
                }
                let _ = answers.send((replica, indexes, result));
            });
        }
        drop(answers);
        let mut failures = 0;
        let mut reason = String::new();
        loop {
            if planned.iter().all(|p| p.acks.meets(&p.need)) {
                return Ok(());
            }
            let next = tokio::time::timeout_at(deadline.into(), answered.recv()).await;
            let Ok(Some((replica, indexes, result))) = next else {
                return Err(timeout(&planned, consistency, write_type));
            };
            // The replica's call shares this deadline and may report it first: a replica
            // that did not answer in time is a timeout, never a failure.
            if matches!(result, Err(CallError::Timeout(_))) {
                continue;
            }
            let acked = matches!(result, Ok(Response::Ack));
            if !acked {
                failures += 1;
                reason = match result {
                    Err(e) => e.to_string(),
                    Ok(other) => format!("unexpected answer {other:?}"),
                };
                tracing::debug!(replica = %replica.host_id, %reason, "replica write failed");
            }
            for index in indexes {
                let p = &mut planned[index];
                if acked {
                    p.acks.add(&replica.dc);
                } else {
                    p.pending.remove(&replica.dc);
                    if !p.pending.meets(&p.need) {
                        return Err(failure(p, failures, consistency, write_type, reason));
                    }
                }
            }
        }
    }
}

fn timeout(planned: &[Planned], consistency: Consistency, write_type: WriteType) -> Error {
    let short = planned
        .iter()
        .filter(|p| !p.acks.meets(&p.need))
        .min_by_key(|p| p.acks.counted(&p.need))
        .or(planned.first());
    let (received, block_for) = short.map_or((0, 0), |p| {
        let block_for = p.need.block_for();
        // Acknowledgements can race the deadline: never report the level as met.
        (
            p.acks.counted(&p.need).min(block_for.saturating_sub(1)),
            block_for,
        )
    });
    Error::WriteTimeout {
        consistency,
        received: received as i32,
        block_for: block_for as i32,
        write_type: write_type.name(),
    }
}

fn failure(
    planned: &Planned,
    failures: usize,
    consistency: Consistency,
    write_type: WriteType,
    reason: String,
) -> Error {
    Error::WriteFailure {
        consistency,
        received: planned.acks.counted(&planned.need) as i32,
        block_for: planned.need.block_for() as i32,
        failures: failures as i32,
        write_type: write_type.name(),
        reason,
    }
}
