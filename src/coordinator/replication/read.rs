//! The read fan-out for one partition's slice (design §18.2).
//!
//! The live replicas that count for the level are taken closest first (this node, its data
//! centre, the rest) until the level's need is met — `Unavailable` if it cannot be. The
//! first is asked for the data, the others only for the digest of what they hold (MD5 of
//! the fragment's canonical bytes, `storage::digest`). If every digest equals the data's,
//! the data is the answer. Otherwise every contacted replica is asked for its data and the
//! answers are merged by last-write-wins (`storage::merge`), range deletions and short-read
//! protection included; the merged fragment is the answer. Nothing waits past
//! `read_request_timeout_ms`: an unanswered replica makes a `ReadTimeout` that says how many
//! answered and whether the data did.
//!
//! When this node alone is contacted (a level of one with a local replica, or a single
//! node), the read is this node's replica read, cache included, with no copy of the
//! fragment: the hot path of a token-aware driver at ONE.

use std::time::Instant;

use bytes::Bytes;

use super::{Replica, Replication, Tally};
use crate::cache::{Caching, Served};
use crate::cluster::message::{ReadCommand, RemoteError, Request, Response};
use crate::cluster::transport::CallError;
use crate::error::Error;
use crate::protocol::Consistency;
use crate::schema::KeyspaceDef;
use crate::storage::merge::merge_fragments;
use crate::storage::partition::{
    PartitionFragment, PartitionId, ReadError, ReadLimits, Slice, TableLayout,
};

/// One partition read, as the coordinator plans it.
pub struct ReadTarget<'a> {
    pub keyspace: &'a KeyspaceDef,
    pub layout: &'a TableLayout,
    pub caching: Caching,
    pub partition: &'a PartitionId,
    pub slice: &'a Slice,
    /// Continue after this encoded clustering key.
    pub after: Option<&'a [u8]>,
    pub limits: &'a ReadLimits,
    /// The table's `read_repair` is BLOCKING: replicas found out of date are brought level
    /// before the read answers.
    pub read_repair: bool,
    /// Replicas (host ids) to ask before the closest ones (a Paxos round's promisers).
    pub prefer: &'a [uuid::Uuid],
}

/// Why a read failed: a replica's own refusal (tombstones, storage), which the caller words
/// with the table's name, or a coordination error ready for the client.
#[derive(Debug)]
pub enum ReadFailed {
    Replica(ReadError),
    Coordination(Error),
}

impl From<Error> for ReadFailed {
    fn from(e: Error) -> Self {
        ReadFailed::Coordination(e)
    }
}

/// One contacted replica's answer.
// Short-lived and consumed at once; boxing would allocate per replica answer.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Data(Served),
    Digest([u8; 16]),
}

impl Replication {
    /// Reads `target` at `consistency`.
    pub async fn read(
        &self,
        target: &ReadTarget<'_>,
        consistency: Consistency,
    ) -> Result<Served, ReadFailed> {
        let view = self.view();
        let replicas = self.replicas(&view, target.keyspace, target.partition.token);
        let local = replicas.iter().any(Replica::is_local);
        self.counters.planned(super::PartitionOp::Read, local);
        let need = self.need(target.keyspace, consistency);
        let candidates: Vec<Replica> = self
            .by_proximity(replicas)
            .into_iter()
            .filter(|r| need.counts(&r.dc))
            .collect();
        let mut candidates = candidates;
        if !target.prefer.is_empty() {
            // Stable: the preferred keep their proximity order among themselves.
            candidates.sort_by_key(|r| !target.prefer.contains(&r.host_id));
        }
        let mut contacted = Vec::new();
        let mut spares = std::collections::VecDeque::new();
        let mut chosen = Tally::default();
        for replica in candidates {
            if chosen.meets(&need) {
                spares.push_back(replica);
                continue;
            }
            chosen.add(&replica.dc);
            contacted.push(replica);
        }
        if let Some((required, alive)) = chosen.shortfall(&need) {
            return Err(Error::Unavailable {
                consistency,
                required: required as i32,
                alive: alive as i32,
            }
            .into());
        }
        if let [only] = contacted.as_slice() {
            if only.is_local() {
                return self.read_local(target).await.map_err(ReadFailed::Replica);
            }
        }
        let deadline = Instant::now() + self.timeouts.read;
        let block_for = need.block_for();
        let spares = std::sync::Mutex::new(spares);
        let asks = contacted
            .iter()
            .enumerate()
            .map(|(i, r)| self.ask_any(r, &spares, target, i > 0, deadline));
        let (contacted, answers): (Vec<Replica>, Vec<_>) =
            futures::future::join_all(asks).await.into_iter().unzip();
        let timeout = |received: usize, data_present: bool| Error::ReadTimeout {
            consistency,
            received: received.min(block_for.saturating_sub(1)) as i32,
            block_for: block_for as i32,
            data_present,
        };
        let received = answers.iter().filter(|a| a.is_ok()).count();
        let data_present = answers.first().is_some_and(|a| a.is_ok());
        let mut answers = answers
            .into_iter()
            .map(|a| a.map_err(|e| lost(e, &timeout, received, data_present)));
        let Some(Answer::Data(data)) = answers.next().transpose()? else {
            return Err(timeout(received, false).into());
        };
        let digest = data.digest();
        let mut agree = true;
        for answer in answers {
            agree &= matches!(answer?, Answer::Digest(d) if d == digest);
        }
        if agree {
            return Ok(data);
        }
        self.reconcile(target, &contacted, data, deadline, &timeout)
            .await
    }

    /// Digests disagreed: every contacted replica's data, merged by last-write-wins; with
    /// BLOCKING read repair, each replica that lacked something is sent its difference and
    /// the read answers once they all acknowledged (Cassandra 4's monotonic quorum reads).
    async fn reconcile(
        &self,
        target: &ReadTarget<'_>,
        contacted: &[Replica],
        data: Served,
        deadline: Instant,
        timeout: &impl Fn(usize, bool) -> Error,
    ) -> Result<Served, ReadFailed> {
        let stats = data.stats();
        let asks = contacted[1..]
            .iter()
            .map(|r| self.ask(r, target, false, deadline));
        let answers = futures::future::join_all(asks).await;
        let received = 1 + answers.iter().filter(|a| a.is_ok()).count();
        let mut fragments = vec![data.into_fragment()];
        for answer in answers {
            match answer.map_err(|e| lost(e, timeout, received, true))? {
                Answer::Data(served) => fragments.push(served.into_fragment()),
                Answer::Digest(_) => unreachable!("asked for data"),
            }
        }
        let merged = merge_fragments(fragments.clone(), target.slice.reversed);
        if target.read_repair {
            self.repair(target, contacted, &fragments, &merged, deadline)
                .await
                .map_err(|()| timeout(contacted.len(), true))?;
        }
        Ok(Served::Fresh(merged, stats))
    }

    /// Sends each replica what it lacks of `merged` and waits for them all; Err if one did
    /// not acknowledge by `deadline`.
    async fn repair(
        &self,
        target: &ReadTarget<'_>,
        contacted: &[Replica],
        answers: &[PartitionFragment],
        merged: &PartitionFragment,
        deadline: Instant,
    ) -> Result<(), ()> {
        let table = target.layout.id;
        let writes = contacted
            .iter()
            .zip(answers)
            .filter_map(|(replica, answer)| {
                let update = self.repair_update(merged, answer, table)?;
                let request = Request::Write {
                    updates: vec![update],
                };
                Some(self.call(replica, request, deadline))
            });
        let acks = futures::future::join_all(writes).await;
        self.counters.read_repairs(table, acks.len() as u64);
        match acks.iter().all(|a| matches!(a, Ok(Response::Ack))) {
            true => Ok(()),
            false => Err(()),
        }
    }

    /// [`Replication::ask`] `first`, or — when it cannot be reached at all (a crashed node
    /// the failure detector has not convicted yet) — the next spare replica of its data
    /// centre, so one dead replica does not fail a read the others can answer. Returns who
    /// answered.
    async fn ask_any(
        &self,
        first: &Replica,
        spares: &std::sync::Mutex<std::collections::VecDeque<Replica>>,
        target: &ReadTarget<'_>,
        digest_only: bool,
        deadline: Instant,
    ) -> (Replica, Result<Answer, CallError>) {
        let mut replica = first.clone();
        loop {
            let answer = self.ask(&replica, target, digest_only, deadline).await;
            let unreachable = matches!(
                answer,
                Err(CallError::Unreachable { .. } | CallError::ConnectionLost(_))
            );
            let spare = unreachable
                .then(|| take_spare(spares, &replica.dc))
                .flatten();
            match spare {
                Some(next) => replica = next,
                None => return (replica, answer),
            }
        }
    }

    async fn ask(
        &self,
        replica: &Replica,
        target: &ReadTarget<'_>,
        digest_only: bool,
        deadline: Instant,
    ) -> Result<Answer, CallError> {
        if replica.is_local() {
            let served = self
                .read_local(target)
                .await
                .map_err(|e| CallError::Remote(remote(e)))?;
            return Ok(match digest_only {
                true => Answer::Digest(served.digest()),
                false => Answer::Data(served),
            });
        }
        let command = ReadCommand {
            layout: target.layout.clone(),
            caching: target.caching,
            partition: target.partition.clone(),
            slice: target.slice.clone(),
            after: target.after.map(Bytes::copy_from_slice),
            limits: *target.limits,
        };
        let request = Request::Read {
            command,
            digest_only,
        };
        match self.call(replica, request, deadline).await? {
            Response::Digest(d) => Ok(Answer::Digest(d)),
            Response::Data { fragment, stats } => Ok(Answer::Data(Served::Fresh(fragment, stats))),
            other => Err(CallError::Remote(RemoteError::Failed(format!(
                "unexpected answer {other:?}"
            )))),
        }
    }

    async fn read_local(&self, target: &ReadTarget<'_>) -> Result<Served, ReadError> {
        self.local
            .read(
                target.layout,
                target.caching,
                target.partition,
                target.slice,
                target.after,
                target.limits,
            )
            .await
    }
}

/// The next spare replica in `dc`, if any is left.
fn take_spare(
    spares: &std::sync::Mutex<std::collections::VecDeque<Replica>>,
    dc: &str,
) -> Option<Replica> {
    let mut spares = spares.lock().expect("spares");
    let at = spares.iter().position(|r| r.dc == dc)?;
    spares.remove(at)
}

/// A replica's failure as the read reports it: its refusal as it is, anything else (no
/// answer in time, a lost connection) as the level not met.
fn lost(
    error: CallError,
    timeout: &impl Fn(usize, bool) -> Error,
    received: usize,
    data_present: bool,
) -> ReadFailed {
    match error {
        CallError::Remote(RemoteError::TombstoneOverwhelming(n)) => {
            ReadFailed::Replica(ReadError::TombstoneOverwhelming {
                tombstones: n as usize,
            })
        }
        CallError::Remote(RemoteError::Failed(message)) => ReadFailed::Replica(ReadError::Storage(
            crate::storage::engine::StorageError::Io(message),
        )),
        _ => ReadFailed::Coordination(timeout(received, data_present)),
    }
}

fn remote(error: ReadError) -> RemoteError {
    match error {
        ReadError::TombstoneOverwhelming { tombstones } => {
            RemoteError::TombstoneOverwhelming(tombstones as u64)
        }
        other => RemoteError::Failed(other.to_string()),
    }
}
