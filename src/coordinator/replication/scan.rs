//! Token-range scans across the cluster, and TRUNCATE on every node.
//!
//! A scan (a full-table SELECT, a `token(k) > ?` range, their paging) walks the token space
//! in increasing order, one ring range at a time: the replicas a range's consistency level
//! needs are asked for the partitions they hold there (`Request::Scan`), and the union of
//! their answers, in storage order, is the range's partitions — a partition one replica
//! missed is still found through another. Each partition is then read at the same level by
//! the ordinary read path, so its rows are merged as any read's are. A scan returns at
//! most the partitions asked for, so a page never holds the ring in memory; it resumes
//! after its last partition, on any node.

use std::ops::Bound;
use std::time::Instant;

use uuid::Uuid;

use super::{Replica, Replication, Tally};
use crate::cluster::message::{Request, Response};
use crate::cluster::transport::CallError;
use crate::error::{Error, Result};
use crate::protocol::Consistency;
use crate::ring::Strategy;
use crate::schema::KeyspaceDef;
use crate::storage::partition::{PartitionId, PartitionStart};

impl Replication {
    /// Up to `limit` partitions of `table` (in `keyspace`) from `start` with tokens within
    /// `end`, in storage order, as the replicas `consistency` needs hold them.
    pub async fn scan(
        &self,
        keyspace: &KeyspaceDef,
        table: Uuid,
        start: &PartitionStart,
        end: Bound<i64>,
        limit: usize,
        consistency: Consistency,
    ) -> Result<Vec<PartitionId>> {
        let view = self.view();
        let strategy = super::strategy(keyspace);
        if strategy == Strategy::Local || view.nodes.len() == 1 {
            return self.scan_local(table, start.clone(), end, limit);
        }
        let placement = self.placement(&view, &strategy, false);
        let need = self.need(keyspace, consistency);
        let from = start_token(start);
        let mut found: Vec<PartitionId> = Vec::new();
        let mut position = start.clone();
        for (seg_start, seg_end, replicas) in placement.segments() {
            if seg_end.is_some_and(|e| e.0 < from) {
                continue;
            }
            if seg_start.is_some_and(|s| beyond(s.0, end)) {
                break;
            }
            let upper = narrower(seg_end.map(|t| t.0), end);
            let replicas: Vec<Replica> = replicas.iter().map(|h| self.replica(&view, *h)).collect();
            let want = limit - found.len();
            let mut got = self
                .scan_range(replicas, &need, table, &position, upper, want, consistency)
                .await?;
            got.truncate(want);
            found.append(&mut got);
            if found.len() == limit {
                break;
            }
            match seg_end {
                Some(e) => position = PartitionStart::Token(Bound::Excluded(e.0)),
                None => break,
            }
        }
        Ok(found)
    }

    /// One ring range's partitions, the union of what the level's replicas hold.
    #[allow(clippy::too_many_arguments)]
    async fn scan_range(
        &self,
        replicas: Vec<Replica>,
        need: &super::Need,
        table: Uuid,
        start: &PartitionStart,
        end: Bound<i64>,
        limit: usize,
        consistency: Consistency,
    ) -> Result<Vec<PartitionId>> {
        let mut contacted = Vec::new();
        let mut spares = Vec::new();
        let mut chosen = Tally::default();
        for replica in self
            .by_proximity(replicas)
            .into_iter()
            .filter(|r| need.counts(&r.dc))
        {
            if chosen.meets(need) {
                spares.push(replica);
                continue;
            }
            chosen.add(&replica.dc);
            contacted.push(replica);
        }
        if let Some((required, alive)) = chosen.shortfall(need) {
            return Err(Error::Unavailable {
                consistency,
                required: required as i32,
                alive: alive as i32,
            });
        }
        let deadline = Instant::now() + self.timeouts.range;
        let request = Request::Scan {
            table,
            start: start.clone(),
            end,
            limit: limit.min(u32::MAX as usize) as u32,
        };
        let asks = contacted
            .iter()
            .map(|r| self.call(r, request.clone(), deadline));
        let mut answers = futures::future::join_all(asks).await;
        // A replica that cannot be reached at all (crashed, not yet convicted) is replaced
        // by a spare of its data centre, so one dead node does not fail the scan.
        for (replica, answer) in contacted.iter().zip(answers.iter_mut()) {
            let unreachable = matches!(
                answer,
                Err(CallError::Unreachable { .. } | CallError::ConnectionLost(_))
            );
            if let Some(at) = spares
                .iter()
                .position(|s| unreachable && s.dc == replica.dc)
            {
                let spare = spares.remove(at);
                *answer = self.call(&spare, request.clone(), deadline).await;
            }
        }
        let received = answers.iter().filter(|a| a.is_ok()).count();
        let mut union: Vec<PartitionId> = Vec::new();
        for answer in answers {
            match answer {
                Ok(Response::Partitions(ids)) => union.extend(ids),
                _ => {
                    return Err(Error::ReadTimeout {
                        consistency,
                        received: received.min(need.block_for().saturating_sub(1)) as i32,
                        block_for: need.block_for() as i32,
                        data_present: received > 0,
                    })
                }
            }
        }
        union.sort_by(|a, b| a.storage_cmp(b));
        union.dedup();
        union.truncate(limit);
        Ok(union)
    }

    fn scan_local(
        &self,
        table: Uuid,
        mut start: PartitionStart,
        end: Bound<i64>,
        limit: usize,
    ) -> Result<Vec<PartitionId>> {
        let mut found = Vec::new();
        while found.len() < limit {
            let next = self
                .local
                .next_partition(table, &start, end)
                .map_err(|e| Error::Server(format!("storage failure: {e}")))?;
            let Some(next) = next else { break };
            start = PartitionStart::After(next.clone());
            found.push(next);
        }
        Ok(found)
    }

    /// Removes every row of `table` on every node; all must be up and answer (Cassandra's
    /// rule: a replica that missed a TRUNCATE would bring the rows back).
    pub async fn truncate(&self, table: Uuid) -> Result<()> {
        let view = self.view();
        let nodes: Vec<Replica> = view
            .nodes
            .values()
            .filter(|n| n.status.owns_ranges() || n.host_id == view.local)
            .map(|n| self.replica(&view, n.host_id))
            .collect();
        let alive = nodes.iter().filter(|r| r.alive).count();
        if alive < nodes.len() {
            return Err(Error::Unavailable {
                consistency: Consistency::All,
                required: nodes.len() as i32,
                alive: alive as i32,
            });
        }
        let deadline = Instant::now() + self.timeouts.truncate;
        let asks = nodes
            .iter()
            .map(|r| self.call(r, Request::Truncate { table }, deadline));
        for (node, answer) in nodes.iter().zip(futures::future::join_all(asks).await) {
            if !matches!(answer, Ok(Response::Ack)) {
                let why = answer
                    .err()
                    .map_or("unexpected answer".to_owned(), |e| e.to_string());
                return Err(Error::Truncate(format!(
                    "node {} did not truncate: {why}",
                    node.host_id
                )));
            }
        }
        Ok(())
    }
}

/// The token a scan starts at.
fn start_token(start: &PartitionStart) -> i64 {
    match start {
        PartitionStart::Token(Bound::Included(t) | Bound::Excluded(t)) => *t,
        PartitionStart::Token(Bound::Unbounded) => i64::MIN,
        PartitionStart::After(id) => id.token,
    }
}

/// Whether every token above `token` lies past `end`.
fn beyond(token: i64, end: Bound<i64>) -> bool {
    match end {
        Bound::Included(e) => token >= e,
        Bound::Excluded(e) => token >= e.saturating_sub(1),
        Bound::Unbounded => false,
    }
}

/// The tighter of a range's inclusive end (None: the ring's end) and the scan's end.
fn narrower(range_end: Option<i64>, end: Bound<i64>) -> Bound<i64> {
    match (range_end, end) {
        (None, end) => end,
        (Some(r), Bound::Unbounded) => Bound::Included(r),
        (Some(r), Bound::Included(e)) => Bound::Included(r.min(e)),
        (Some(r), Bound::Excluded(e)) if r < e => Bound::Included(r),
        (Some(_), Bound::Excluded(e)) => Bound::Excluded(e),
    }
}
