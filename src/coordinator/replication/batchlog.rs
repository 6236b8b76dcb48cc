//! Logged batches across partitions: Cassandra's batchlog.
//!
//! A logged BATCH promises that if any of its mutations is applied, all of them eventually
//! are, even when its partitions live on different nodes and the coordinator dies half-way.
//! So before applying a batch that spans partitions, the coordinator stores the whole batch
//! on up to two other live nodes (its own data centre first; itself only when no other node
//! is up) and waits for them (`WriteTimeout` with write type `BATCH_LOG` if none answers);
//! then applies the batch at the client's level like any write; then removes the stored
//! copies, without waiting. Every node replays, at every pass of its batchlog worker, the
//! batches stored on it longer ago than twice the write timeout — the ones whose
//! coordinator never removed them — by writing them again at ALL (last-write-wins makes a
//! second application harmless), and removes each once every replica acknowledged it; a
//! batch with a replica down stays and is tried again at the next pass.
//!
//! A batch whose partitions are all replicated on this node alone (a single node) is one
//! atomic engine write already and skips the log.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use uuid::Uuid;

use super::{Replica, Replication, WriteType};
use crate::cluster::message::{Request, Response};
use crate::error::{Error, Result};
use crate::protocol::Consistency;
use crate::schema::Catalog;
use crate::storage::partition::PartitionUpdate;

/// Nodes a batch is stored on before it is applied.
const COPIES: usize = 2;

impl Replication {
    /// Writes a logged batch: stored on other nodes first when it spans partitions.
    pub async fn write_logged(
        &self,
        catalog: &Catalog,
        updates: Vec<PartitionUpdate>,
        consistency: Consistency,
    ) -> Result<()> {
        let partitions: BTreeSet<_> = updates
            .iter()
            .map(|u| (u.table, &u.partition.key))
            .collect();
        let view = self.view();
        if partitions.len() < 2 || view.nodes.len() == 1 {
            return self
                .write(catalog, updates, consistency, WriteType::Batch)
                .await;
        }
        let ticks = crate::coordinator::functions::time::next_timeuuid_ticks();
        let id = Uuid::from_bytes(crate::coordinator::functions::time::timeuuid_bytes(ticks));
        let copies = self.batchlog_nodes();
        self.store_batch(id, &updates, &copies, consistency).await?;
        if self.abandon_batches {
            tracing::warn!(batch = %id, "fault injected: a logged batch is abandoned after it was stored");
            return Err(Error::WriteTimeout {
                consistency,
                received: 0,
                block_for: 1,
                write_type: "BATCH",
            });
        }
        self.write(catalog, updates, consistency, WriteType::Batch)
            .await?;
        for replica in copies {
            let (local, cluster) = (self.local.clone(), self.cluster.clone());
            let deadline = Instant::now() + self.timeouts.write;
            tokio::spawn(async move {
                let request = Request::BatchlogRemove { id };
                let _ = super::call(&local, &cluster, &replica, request, deadline).await;
            });
        }
        Ok(())
    }

    /// Up to [`COPIES`] live nodes other than this one, its data centre first; this node
    /// when no other is up.
    fn batchlog_nodes(&self) -> Vec<Replica> {
        let view = self.view();
        let mut others: Vec<Replica> = view
            .peers()
            .filter(|n| n.alive && n.status.owns_ranges())
            .map(|n| self.replica(&view, n.host_id))
            .collect();
        others.shuffle(&mut rand::rng());
        others.sort_by_key(|r| r.dc != self.local_dc);
        others.truncate(COPIES);
        if others.is_empty() {
            others.push(self.replica(&view, view.local));
        }
        others
    }

    async fn store_batch(
        &self,
        id: Uuid,
        updates: &[PartitionUpdate],
        copies: &[Replica],
        consistency: Consistency,
    ) -> Result<()> {
        let deadline = Instant::now() + self.timeouts.write;
        let stores = copies.iter().map(|r| {
            let request = Request::BatchlogStore {
                id,
                updates: updates.to_vec(),
            };
            self.call(r, request, deadline)
        });
        let answers = futures::future::join_all(stores).await;
        let stored = answers
            .iter()
            .filter(|a| matches!(a, Ok(Response::Ack)))
            .count();
        if stored == 0 {
            return Err(Error::WriteTimeout {
                consistency,
                received: 0,
                block_for: 1,
                write_type: "BATCH_LOG",
            });
        }
        Ok(())
    }

    /// One replay pass over the batches stored on this node longer ago than twice the
    /// write timeout. Returns how many were replayed and removed.
    pub async fn replay_batchlog(&self, catalog: &Catalog) -> Result<usize> {
        let age = self.timeouts.write * 2;
        let before =
            crate::clock::now_micros() - i64::try_from(age.as_micros()).unwrap_or(i64::MAX);
        let mut replayed = 0;
        for batch in self.local.batchlog_older_than(before)? {
            let written = self
                .write(
                    catalog,
                    batch.updates,
                    Consistency::All,
                    WriteType::BatchLog,
                )
                .await;
            match written {
                Ok(()) => {
                    self.local.batchlog_remove(batch.id).await?;
                    replayed += 1;
                }
                Err(Error::Invalid(reason)) => {
                    // Its table is gone: nothing left to apply.
                    tracing::warn!(batch = %batch.id, %reason, "dropping a batchlog entry");
                    self.local.batchlog_remove(batch.id).await?;
                }
                Err(error) => {
                    tracing::info!(batch = %batch.id, %error, "batch replay postponed");
                }
            }
        }
        Ok(replayed)
    }

    /// How often the batchlog worker should look for batches to replay.
    pub fn batchlog_interval(&self) -> Duration {
        self.timeouts.write.max(Duration::from_secs(1))
    }
}
