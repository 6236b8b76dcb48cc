//! Anti-entropy repair of one token span of one table, the coordinator's side
//! (`storage/merkle.rs` has the trees, `replica/merkle.rs` the replicas' side).
//!
//! 1. Every replica of the span builds its Merkle tree of the span (same depth, same
//!    `now`), in parallel; a tree of the wrong shape is refused.
//! 2. Leaves that differ between any two trees are compared partition by partition: each
//!    replica lists the digest of every partition it holds in the leaf's token span (paged).
//! 3. Each partition whose digests differ, or that some replica lacks, is read whole from
//!    every replica and merged by last-write-wins (`storage::merge`, tombstones included);
//!    each replica is sent exactly what it lacks (`merge::repair_for`) through its normal
//!    write path — so caches stay coherent and a write newer than the repair's reads is never
//!    overwritten: the repair write carries the cells' own timestamps and loses to it. Less
//!    whatever was written at or before this node's last TRUNCATE of the table
//!    ([`Replication::repair_update`], shared with read repair): a replica the TRUNCATE did
//!    not reach must not spread truncated data (hints are held to the same record).
//!
//! What crosses the network therefore grows with the divergence: trees (16 bytes a leaf),
//! digests of the partitions in differing leaves, whole copies of differing partitions, and
//! the repair writes. The writes are the "bytes streamed" a repair reports; the reads are
//! counted beside them. The writes go at most at `stream_throughput_mib_per_sec` (`pace.rs`),
//! shared by every repair and move on the node.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::{Replica, Replication};
use crate::cluster::message::{ReadCommand, Request, Response};
use crate::cluster::transport::CallError;
use crate::replica::{repair_limits, whole_partition};
use crate::schema::KeyspaceDef;
use crate::storage::merge::{merge_fragments, repair_for};
use crate::storage::merkle::{MerkleTree, TokenSpan};
use crate::storage::partition::{PartitionFragment, PartitionId, PartitionUpdate, TableLayout};

/// Partition digests asked for per page.
const DIGEST_PAGE: u32 = 1024;
/// Differing Merkle leaves a span's repair compares and repairs at once.
const LEAVES_IN_FLIGHT: usize = 8;

/// What repairs have done so far, shared with whoever watches them (`ringcache repair`'s
/// progress, the metrics).
#[derive(Debug, Default)]
pub struct RepairProgress {
    pub spans_total: AtomicU64,
    pub spans_done: AtomicU64,
    pub leaves_compared: AtomicU64,
    pub leaves_mismatched: AtomicU64,
    pub partitions_compared: AtomicU64,
    pub partitions_repaired: AtomicU64,
    /// Encoded bytes of the repair writes sent to replicas.
    pub bytes_streamed: AtomicU64,
    /// Encoded bytes of trees, digests and partitions read from peers to find them.
    pub bytes_compared: AtomicU64,
}

/// [`RepairProgress`]'s counts at one moment (spans_total aside), to report and to sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairCounts {
    pub spans_done: u64,
    pub leaves_compared: u64,
    pub leaves_mismatched: u64,
    pub partitions_compared: u64,
    pub partitions_repaired: u64,
    pub bytes_streamed: u64,
    pub bytes_compared: u64,
}

impl RepairProgress {
    /// The counts now.
    pub fn counts(&self) -> RepairCounts {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        RepairCounts {
            spans_done: load(&self.spans_done),
            leaves_compared: load(&self.leaves_compared),
            leaves_mismatched: load(&self.leaves_mismatched),
            partitions_compared: load(&self.partitions_compared),
            partitions_repaired: load(&self.partitions_repaired),
            bytes_streamed: load(&self.bytes_streamed),
            bytes_compared: load(&self.bytes_compared),
        }
    }
}

impl std::ops::Add for RepairCounts {
    type Output = RepairCounts;

    fn add(self, o: RepairCounts) -> RepairCounts {
        RepairCounts {
            spans_done: self.spans_done + o.spans_done,
            leaves_compared: self.leaves_compared + o.leaves_compared,
            leaves_mismatched: self.leaves_mismatched + o.leaves_mismatched,
            partitions_compared: self.partitions_compared + o.partitions_compared,
            partitions_repaired: self.partitions_repaired + o.partitions_repaired,
            bytes_streamed: self.bytes_streamed + o.bytes_streamed,
            bytes_compared: self.bytes_compared + o.bytes_compared,
        }
    }
}

/// One span's repair, as planned.
pub struct SpanRepair<'a> {
    pub layout: &'a TableLayout,
    pub span: TokenSpan,
    /// The replicas taking part (the live ones, or all of them).
    pub replicas: Vec<Replica>,
    pub depth: u8,
    pub now_secs: u32,
}

/// Why a span could not be repaired.
#[derive(Debug, thiserror::Error)]
pub enum SpanError {
    #[error("replica {replica} failed: {error}")]
    Call { replica: String, error: CallError },
    #[error("replica {replica} sent {what}")]
    Malformed { replica: String, what: String },
}

impl Replication {
    /// What a replica that answered `answer` lacks of `merged` (`merge::repair_for`), less
    /// every write made at or before this node's last TRUNCATE of `table`; None if nothing
    /// is left to send. TRUNCATE needs every replica, so this node truncated too, and a
    /// replica still holding older data missed the TRUNCATE: repairs must not spread it.
    pub(super) fn repair_update(
        &self,
        merged: &PartitionFragment,
        answer: &PartitionFragment,
        table: uuid::Uuid,
    ) -> Option<PartitionUpdate> {
        let mut update = repair_for(merged, answer, table)?;
        match self.local.truncated_at(table) {
            Some(at) if !update.drop_written_before(at) => None,
            _ => Some(update),
        }
    }

    /// Every token span of `keyspace`'s ring with all its replicas, alive or not, in ring
    /// order (a range that wraps gives two spans).
    pub fn repair_spans(&self, keyspace: &KeyspaceDef) -> Vec<(TokenSpan, Vec<Replica>)> {
        let view = self.view();
        let whole = || TokenSpan {
            first: i64::MIN,
            last: i64::MAX,
        };
        if view.ring.is_empty() {
            return vec![(whole(), self.replicas(&view, keyspace, 0))];
        }
        let mut spans = Vec::new();
        for (start, end, _) in view.ring.ranges() {
            let replicas = self.replicas(&view, keyspace, end.0);
            for span in TokenSpan::of_range(start.0, end.0) {
                spans.push((span, replicas.clone()));
            }
        }
        spans
    }

    /// The spans of `keyspace` that have pending replicas while a node joins or leaves,
    /// each with the replicas a stream of it is a repair among: the span's live replicas
    /// now, then its pending ones. With `to`, only the spans `to` is pending for, with `to`
    /// alone as the pending one (a joining node streams what it gains); without, every
    /// span that gains a replica (a leaving node hands over all it loses).
    pub fn movement_spans(
        &self,
        keyspace: &KeyspaceDef,
        to: Option<uuid::Uuid>,
    ) -> Vec<(TokenSpan, Vec<Replica>)> {
        let view = self.view();
        let Some(future) = &view.pending_ring else {
            return Vec::new();
        };
        // Within a range cut at both rings' tokens, the replicas on each ring are the same
        // throughout (a leaving node's tokens are on the current ring only, a joining one's
        // on the pending ring only).
        let mut spans = Vec::new();
        for (start, end) in future.ranges_with(&view.ring) {
            let mut pending = self.pending_replicas(&view, keyspace, end.0);
            if let Some(to) = to {
                pending.retain(|r| r.host_id == to);
            }
            if pending.is_empty() {
                continue;
            }
            let mut replicas: Vec<Replica> = self
                .replicas(&view, keyspace, end.0)
                .into_iter()
                .filter(|r| r.alive)
                .collect();
            replicas.extend(pending);
            for span in TokenSpan::of_range(start.0, end.0) {
                spans.push((span, replicas.clone()));
            }
        }
        spans
    }

    /// Tells every live node that a repair of `table` reaching every replica started at
    /// `started_at`, so their purge passes may drop the tombstones it carried; the nodes
    /// that did not take it (they keep those tombstones longer, which is safe).
    pub async fn announce_repaired(&self, table: uuid::Uuid, started_at: i64) -> Vec<String> {
        let view = self.view();
        let nodes: Vec<Replica> = view
            .nodes
            .values()
            .filter(|n| n.alive || n.host_id == view.local)
            .map(|n| self.replica(&view, n.host_id))
            .collect();
        let deadline = Instant::now() + self.timeouts.write;
        let asks = nodes
            .iter()
            .map(|r| self.call(r, Request::Repaired { table, started_at }, deadline));
        let answers = futures::future::join_all(asks).await;
        nodes
            .iter()
            .zip(answers)
            .filter(|(_, a)| !matches!(a, Ok(Response::Ack)))
            .map(|(r, _)| r.label())
            .collect()
    }

    /// Repairs one span (see the module's essay).
    pub async fn repair_span(
        &self,
        job: &SpanRepair<'_>,
        progress: &RepairProgress,
    ) -> Result<(), SpanError> {
        if job.replicas.len() < 2 {
            return Ok(());
        }
        let trees = self.trees(job, progress).await?;
        let differing = MerkleTree::differing_leaves(&trees);
        progress
            .leaves_compared
            .fetch_add(trees[0].leaves.len() as u64, Ordering::Relaxed);
        progress
            .leaves_mismatched
            .fetch_add(differing.len() as u64, Ordering::Relaxed);
        let leaves: Vec<TokenSpan> = differing
            .into_iter()
            .filter_map(|leaf| job.span.leaf_span(job.depth, leaf))
            .collect();
        // A few leaves at a time: one at a time leaves the repair waiting on round trips
        // (a join's stream, where every leaf with data differs, ran at 1.1 MB/s); a few
        // bound memory to a few leaves' digests and partition copies.
        futures::stream::iter(leaves)
            .map(|span| async move {
                for partition in self.differing_partitions(job, span, progress).await? {
                    self.repair_partition(job, &partition, progress).await?;
                }
                Ok::<(), SpanError>(())
            })
            .buffer_unordered(LEAVES_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        Ok(())
    }

    async fn trees(
        &self,
        job: &SpanRepair<'_>,
        progress: &RepairProgress,
    ) -> Result<Vec<MerkleTree>, SpanError> {
        let request = Request::MerkleTree {
            layout: job.layout.clone(),
            span: job.span,
            depth: job.depth,
            now_secs: job.now_secs,
        };
        let deadline = Instant::now() + self.timeouts.repair;
        let asks = job
            .replicas
            .iter()
            .map(|r| self.call(r, request.clone(), deadline));
        let mut trees = Vec::with_capacity(job.replicas.len());
        for (replica, answer) in job
            .replicas
            .iter()
            .zip(futures::future::join_all(asks).await)
        {
            match answer.map_err(|error| call_error(replica, error))? {
                Response::Tree(tree) => {
                    tree.check(job.depth)
                        .map_err(|what| malformed(replica, what))?;
                    if !replica.is_local() {
                        progress
                            .bytes_compared
                            .fetch_add(16 * tree.leaves.len() as u64, Ordering::Relaxed);
                    }
                    trees.push(tree);
                }
                other => return Err(malformed(replica, format!("{other:?}"))),
            }
        }
        Ok(trees)
    }

    /// The partitions of `span` whose digests differ between replicas or that some replica
    /// lacks.
    async fn differing_partitions(
        &self,
        job: &SpanRepair<'_>,
        span: TokenSpan,
        progress: &RepairProgress,
    ) -> Result<Vec<PartitionId>, SpanError> {
        let mut seen: HashMap<PartitionId, Vec<Option<[u8; 16]>>> = HashMap::new();
        let count = job.replicas.len();
        for (i, replica) in job.replicas.iter().enumerate() {
            let mut after = None;
            loop {
                let request = Request::PartitionDigests {
                    layout: job.layout.clone(),
                    span,
                    after: after.clone(),
                    limit: DIGEST_PAGE,
                    now_secs: job.now_secs,
                };
                let deadline = Instant::now() + self.timeouts.repair;
                let page = match self
                    .call(replica, request, deadline)
                    .await
                    .map_err(|error| call_error(replica, error))?
                {
                    Response::PartitionDigests(page) => page,
                    other => return Err(malformed(replica, format!("{other:?}"))),
                };
                if !replica.is_local() {
                    let bytes: usize = page.iter().map(|(p, _)| p.key.len() + 24).sum();
                    progress
                        .bytes_compared
                        .fetch_add(bytes as u64, Ordering::Relaxed);
                }
                let full = page.len() >= DIGEST_PAGE as usize;
                for (partition, digest) in page {
                    if !span.contains(partition.token) {
                        return Err(malformed(
                            replica,
                            format!("a partition outside {}..={}", span.first, span.last),
                        ));
                    }
                    after = Some(partition.clone());
                    seen.entry(partition).or_insert_with(|| vec![None; count])[i] = Some(digest);
                }
                if !full {
                    break;
                }
            }
        }
        progress
            .partitions_compared
            .fetch_add(seen.len() as u64, Ordering::Relaxed);
        let mut differing: Vec<PartitionId> = seen
            .into_iter()
            .filter(|(_, digests)| digests.iter().any(|d| d.is_none() || *d != digests[0]))
            .map(|(partition, _)| partition)
            .collect();
        differing.sort_by(|a, b| (a.token, &a.key).cmp(&(b.token, &b.key)));
        Ok(differing)
    }

    /// Reads `partition` whole from every replica, merges, and sends each what it lacks.
    async fn repair_partition(
        &self,
        job: &SpanRepair<'_>,
        partition: &PartitionId,
        progress: &RepairProgress,
    ) -> Result<(), SpanError> {
        let command = ReadCommand {
            layout: job.layout.clone(),
            caching: crate::cache::Caching::Off,
            partition: partition.clone(),
            slice: whole_partition(),
            after: None,
            limits: repair_limits(job.now_secs),
        };
        let deadline = Instant::now() + self.timeouts.repair;
        let asks = job.replicas.iter().map(|r| {
            let request = Request::Read {
                command: command.clone(),
                digest_only: false,
            };
            self.call(r, request, deadline)
        });
        let mut fragments: Vec<PartitionFragment> = Vec::with_capacity(job.replicas.len());
        for (replica, answer) in job
            .replicas
            .iter()
            .zip(futures::future::join_all(asks).await)
        {
            match answer.map_err(|error| call_error(replica, error))? {
                Response::Data { fragment, .. } => {
                    if fragment.partition != *partition || !fragment.exhausted {
                        return Err(malformed(
                            replica,
                            "a partial or different partition".into(),
                        ));
                    }
                    if !replica.is_local() {
                        progress
                            .bytes_compared
                            .fetch_add(encoded_len(&fragment), Ordering::Relaxed);
                    }
                    fragments.push(fragment);
                }
                other => return Err(malformed(replica, format!("{other:?}"))),
            }
        }
        let merged = merge_fragments(fragments.clone(), false);
        let updates: Vec<_> = job
            .replicas
            .iter()
            .zip(&fragments)
            .filter_map(|(replica, fragment)| {
                Some((
                    replica,
                    self.repair_update(&merged, fragment, job.layout.id)?,
                ))
            })
            .collect();
        let bytes: u64 = updates.iter().map(|(_, u)| encoded_len(u)).sum();
        self.stream_pace.pace(bytes).await;
        progress.bytes_streamed.fetch_add(bytes, Ordering::Relaxed);
        let deadline = Instant::now() + self.timeouts.repair;
        let writes = updates.into_iter().map(|(replica, update)| {
            let request = Request::Write {
                updates: vec![update],
            };
            async move { (replica, self.call(replica, request, deadline).await) }
        });
        for (replica, answer) in futures::future::join_all(writes).await {
            match answer.map_err(|error| call_error(replica, error))? {
                Response::Ack => {}
                other => return Err(malformed(replica, format!("{other:?}"))),
            }
        }
        progress.partitions_repaired.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn call_error(replica: &Replica, error: CallError) -> SpanError {
    SpanError::Call {
        replica: replica.label(),
        error,
    }
}

fn malformed(replica: &Replica, what: String) -> SpanError {
    SpanError::Malformed {
        replica: replica.label(),
        what,
    }
}

fn encoded_len<T: serde::Serialize>(value: &T) -> u64 {
    postcard::to_stdvec(value).map_or(0, |b| b.len() as u64)
}
