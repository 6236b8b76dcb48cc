//! This node's part of Paxos: per partition, the highest ballot it promised, the most recent
//! proposal it accepted and the most recent commit it learned (Cassandra's `PaxosState`,
//! design §17).
//!
//! The rules are a plain type, [`PaxosState`], so they can be tested without storage:
//! - **prepare**: a ballot is promised only if its time is strictly later than the time of
//!   every ballot promised before. Strictly later in *time*, not merely greater, so that the
//!   proposals a partition commits carry strictly increasing ballot times — their writes are
//!   timestamped with them, and two commits at one timestamp would be decided by
//!   last-write-wins tie-breaks instead of their order. The answer carries the accepted
//!   proposal and the most recent commit either way, and on refusal the ballot that beat it.
//! - **propose**: a proposal is accepted if its ballot is the one promised or a greater one.
//! - **commit**: the update is applied through [`LocalReplica::write`] (so the cache stays
//!   coherent, design §6) before the commit is recorded; an accepted proposal at or below the
//!   committed ballot is finished and forgotten.
//!
//! The state lives in the node's engine under a key space no table uses, as the batchlog does:
//! the reserved id [`PAXOS`], the table id, the token and the partition key. Its value is one
//! cell holding the state (postcard), replaced whole by a removal and a merge in one atomic
//! batch, and written with the node's durability before any answer leaves (synced first under
//! `batch`). Each partition's read-check-write runs under one of [`PaxosLocks`]' stripes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::LocalReplica;
use crate::error::{Error, Result};
use crate::storage::cell::{Cell, StoredValue};
use crate::storage::engine::WriteBatch;
use crate::storage::partition::{PartitionId, PartitionUpdate};

/// The table id no table ever gets: the Paxos state's key space.
pub const PAXOS: Uuid = Uuid::from_u128(0x0000_0000_0000_0000_0000_0000_0000_9a05);

/// 100 ns intervals between 1582-10-15 (time-based UUIDs' epoch) and 1970-01-01.
const GREGORIAN_OFFSET: i64 = 0x01B2_1DD2_1381_4000;

/// A Paxos ballot: a time-based UUID whose time is microseconds since the epoch, ordered by
/// that time and then by its other bytes (which name the coordinator), so ballots from two
/// coordinators never tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ballot(pub Uuid);

impl Ballot {
    /// Below every real ballot: what a partition that never saw Paxos has promised.
    pub const ZERO: Ballot = Ballot(Uuid::nil());

    /// The ballot at `micros` (µs since the epoch) for the coordinator `node`.
    pub fn new(micros: i64, node: [u8; 8]) -> Ballot {
        let ticks = (micros.max(0) as u64 * 10 + GREGORIAN_OFFSET as u64) & ((1 << 60) - 1);
        let mut bytes = [0u8; 16];
        bytes[0..4].copy_from_slice(&(ticks as u32).to_be_bytes());
        bytes[4..6].copy_from_slice(&((ticks >> 32) as u16).to_be_bytes());
        bytes[6..8].copy_from_slice(&((((ticks >> 48) as u16) & 0x0fff) | 0x1000).to_be_bytes());
        bytes[8..].copy_from_slice(&node);
        // The RFC 4122 variant bits.
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Ballot(Uuid::from_bytes(bytes))
    }

    /// The ballot's time in microseconds since the epoch (the timestamp of what it commits).
    pub fn micros(&self) -> i64 {
        if self.0.is_nil() {
            return i64::MIN;
        }
        let b = self.0.as_bytes();
        let low = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let mid = u64::from(u16::from_be_bytes([b[4], b[5]]));
        let high = u64::from(u16::from_be_bytes([b[6], b[7]]) & 0x0fff);
        let ticks = ((high << 48) | (mid << 32) | low) as i64;
        (ticks - GREGORIAN_OFFSET) / 10
    }

    fn order_key(&self) -> (i64, [u8; 8]) {
        let mut rest = [0u8; 8];
        rest.copy_from_slice(&self.0.as_bytes()[8..]);
        (self.micros(), rest)
    }
}

impl Ord for Ballot {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for Ballot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A value proposed for one partition under a ballot: the partition's updates (empty for a
/// proposal that only finishes a round).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub ballot: Ballot,
    pub table: Uuid,
    pub partition: PartitionId,
    pub updates: Vec<PartitionUpdate>,
}

/// A replica's answer to a prepare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promise {
    /// Whether the ballot was promised.
    pub promised: bool,
    /// The highest ballot the replica has promised (the prepared one if promised).
    pub ballot: Ballot,
    /// The most recent proposal the replica accepted and has not seen committed.
    pub accepted: Option<Proposal>,
    /// The most recent commit the replica learned.
    pub committed: Option<Proposal>,
}

/// One partition's Paxos state on a replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaxosState {
    pub promised: Ballot,
    pub accepted: Option<Proposal>,
    pub committed: Option<Proposal>,
}

impl Default for PaxosState {
    fn default() -> Self {
        PaxosState {
            promised: Ballot::ZERO,
            accepted: None,
            committed: None,
        }
    }
}

impl PaxosState {
    /// Answers a prepare of `ballot`; true when the state changed (and must be stored).
    pub fn prepare(&mut self, ballot: Ballot) -> (Promise, bool) {
        let promised = ballot.micros() > self.promised.micros();
        if promised {
            self.promised = ballot;
        }
        let promise = Promise {
            promised,
            ballot: self.promised,
            accepted: self.accepted.clone(),
            committed: self.committed.clone(),
        };
        (promise, promised)
    }

    /// Answers a proposal: accepted (and the state changed) unless a greater ballot was
    /// promised since.
    pub fn propose(&mut self, proposal: &Proposal) -> bool {
        if proposal.ballot < self.promised {
            return false;
        }
        self.promised = proposal.ballot;
        self.accepted = Some(proposal.clone());
        true
    }

    /// Records a commit; true when the state changed.
    pub fn commit(&mut self, proposal: &Proposal) -> bool {
        let newer = self
            .committed
            .as_ref()
            .is_none_or(|c| proposal.ballot > c.ballot);
        if newer {
            self.committed = Some(proposal.clone());
        }
        let finished = self
            .accepted
            .as_ref()
            .is_some_and(|a| a.ballot <= proposal.ballot);
        if finished {
            self.accepted = None;
        }
        newer || finished
    }
}

/// Striped locks over partitions' Paxos state: one prepare, propose or commit of a
/// partition reads, decides and stores at a time.
pub struct PaxosLocks {
    stripes: Box<[tokio::sync::Mutex<()>]>,
}

impl PaxosLocks {
    const STRIPES: usize = 256;

    pub(super) fn new() -> PaxosLocks {
        PaxosLocks {
            stripes: (0..Self::STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    async fn lock(&self, table: &Uuid, partition: &PartitionId) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = (partition.spread(table) >> 32) as usize % Self::STRIPES;
        self.stripes[stripe].lock().await
    }
}

fn key(table: &Uuid, partition: &PartitionId) -> Vec<u8> {
    [
        PAXOS.as_bytes().as_slice(),
        table.as_bytes().as_slice(),
        &partition.token.to_be_bytes(),
        &partition.key,
    ]
    .concat()
}

impl LocalReplica {
    /// Answers a prepare of `ballot` for a partition, stored before it returns.
    pub async fn paxos_prepare(
        &self,
        table: Uuid,
        partition: &PartitionId,
        ballot: Ballot,
    ) -> Result<Promise> {
        let _held = self.paxos_locks.lock(&table, partition).await;
        let mut state = self.paxos_state(&table, partition)?;
        let (promise, changed) = state.prepare(ballot);
        if changed {
            self.store_paxos(&table, partition, &state).await?;
        }
        Ok(promise)
    }

    /// Answers a proposal: whether it was accepted (stored before it returns).
    pub async fn paxos_propose(&self, proposal: &Proposal) -> Result<bool> {
        let (table, partition) = (&proposal.table, &proposal.partition);
        let _held = self.paxos_locks.lock(table, partition).await;
        let mut state = self.paxos_state(table, partition)?;
        let accepted = state.propose(proposal);
        if accepted {
            self.store_paxos(table, partition, &state).await?;
        }
        Ok(accepted)
    }

    /// Applies a committed proposal's updates, then records the commit.
    pub async fn paxos_commit(&self, proposal: &Proposal) -> Result<()> {
        if !proposal.updates.is_empty() {
            self.write(proposal.updates.clone()).await?;
        }
        let (table, partition) = (&proposal.table, &proposal.partition);
        let _held = self.paxos_locks.lock(table, partition).await;
        let mut state = self.paxos_state(table, partition)?;
        if state.commit(proposal) {
            self.store_paxos(table, partition, &state).await?;
        }
        Ok(())
    }

    /// The stored state of a partition (the default if it never saw Paxos).
    pub fn paxos_state(&self, table: &Uuid, partition: &PartitionId) -> Result<PaxosState> {
        let stored = self
            .engine
            .get(&key(table, partition))
            .map_err(super::storage_error)?;
        let Some(value) = stored else {
            return Ok(PaxosState::default());
        };
        let corrupt = |why: String| Error::Server(format!("a Paxos state does not decode: {why}"));
        let StoredValue::Cell(cell) =
            StoredValue::decode(&value).map_err(|e| corrupt(e.to_string()))?
        else {
            return Err(corrupt("not a cell".into()));
        };
        let body = cell.value().ok_or_else(|| corrupt("no value".into()))?;
        postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))
    }

    async fn store_paxos(
        &self,
        table: &Uuid,
        partition: &PartitionId,
        state: &PaxosState,
    ) -> Result<()> {
        let body = postcard::to_stdvec(state)
            .map_err(|e| Error::Server(format!("cannot encode a Paxos state: {e}")))?;
        let cell = Cell::live(crate::clock::now_micros(), Bytes::from(body));
        let key = key(table, partition);
        // Removed and written in one batch: the state is replaced, never merged with the old.
        let mut batch = WriteBatch::new();
        batch.purge(key.clone());
        batch.merge(key, StoredValue::Cell(cell).encode());
        self.engine_write(batch).await
    }
}

#[cfg(test)]
mod tests {
    use crate::replica::tests::{memory_engine, memory_replica};

    use super::*;

    const A: [u8; 8] = [1; 8];
    const B: [u8; 8] = [2; 8];

    fn partition() -> PartitionId {
        PartitionId {
            token: 42,
            key: Bytes::from_static(b"k"),
        }
    }

    fn proposal(ballot: Ballot) -> Proposal {
        Proposal {
            ballot,
            table: Uuid::from_u128(7),
            partition: partition(),
            updates: Vec::new(),
        }
    }

    #[test]
    fn ballots_order_by_time_then_by_coordinator_and_keep_their_micros() {
        let now = 1_700_000_000_123_456;
        assert_eq!(Ballot::new(now, A).micros(), now);
        assert!(Ballot::new(now, A) < Ballot::new(now + 1, A));
        assert!(Ballot::new(now, B) < Ballot::new(now + 1, A), "time first");
        assert!(
            Ballot::new(now, A) < Ballot::new(now, B),
            "same time: the node bytes decide"
        );
        assert!(Ballot::ZERO < Ballot::new(0, A));
        assert_eq!(
            Ballot::new(now, A).0.get_version_num(),
            1,
            "a time-based UUID"
        );
    }

    #[test]
    fn a_prepare_is_promised_only_strictly_later_in_time() {
        let mut state = PaxosState::default();
        let first = Ballot::new(100, A);
        let (promise, changed) = state.prepare(first);
        assert!(promise.promised && changed);
        // Greater as a ballot, but not later in time: refused, and told what beat it.
        let (promise, changed) = state.prepare(Ballot::new(100, B));
        assert!(!promise.promised && !changed);
        assert_eq!(promise.ballot, first);
        let (promise, _) = state.prepare(Ballot::new(99, B));
        assert!(!promise.promised);
        assert!(state.prepare(Ballot::new(101, B)).0.promised);
    }

    #[test]
    fn a_proposal_is_accepted_at_or_above_the_promise_only() {
        let mut state = PaxosState::default();
        state.prepare(Ballot::new(200, A));
        assert!(
            !state.propose(&proposal(Ballot::new(150, B))),
            "below the promise"
        );
        assert!(state.accepted.is_none());
        assert!(
            state.propose(&proposal(Ballot::new(200, A))),
            "the promised ballot"
        );
        state.prepare(Ballot::new(300, B));
        assert!(!state.propose(&proposal(Ballot::new(200, A))), "pre-empted");
        let (promise, _) = state.prepare(Ballot::new(400, A));
        assert_eq!(
            promise.accepted.map(|a| a.ballot),
            Some(Ballot::new(200, A)),
            "a promise carries what was accepted"
        );
    }

    #[test]
    fn a_commit_finishes_older_accepted_proposals_and_keeps_the_newest_commit() {
        let mut state = PaxosState::default();
        state.prepare(Ballot::new(10, A));
        state.propose(&proposal(Ballot::new(10, A)));
        assert!(state.commit(&proposal(Ballot::new(10, A))));
        assert!(state.accepted.is_none());
        state.prepare(Ballot::new(30, A));
        state.propose(&proposal(Ballot::new(30, A)));
        // A late commit of an older round neither replaces the newest commit nor finishes
        // the newer accepted proposal.
        assert!(state.commit(&proposal(Ballot::new(20, B))));
        assert!(!state.commit(&proposal(Ballot::new(15, B))));
        assert_eq!(
            state.committed.as_ref().map(|c| c.ballot),
            Some(Ballot::new(20, B))
        );
        assert!(state.accepted.is_some());
    }

    #[tokio::test]
    async fn the_state_is_stored_and_read_back_replaced_whole() {
        let replica = memory_replica(memory_engine());
        let table = Uuid::from_u128(7);
        let p = partition();
        let first = Ballot::new(1_000, A);
        assert!(
            replica
                .paxos_prepare(table, &p, first)
                .await
                .unwrap()
                .promised
        );
        assert!(replica.paxos_propose(&proposal(first)).await.unwrap());
        let later = Ballot::new(2_000, B);
        let promise = replica.paxos_prepare(table, &p, later).await.unwrap();
        assert_eq!(promise.accepted.map(|a| a.ballot), Some(first));
        replica.paxos_commit(&proposal(first)).await.unwrap();
        let state = replica.paxos_state(&table, &p).unwrap();
        assert_eq!(state.promised, later);
        assert_eq!(state.accepted, None);
        assert_eq!(state.committed.map(|c| c.ballot), Some(first));
        let other = PartitionId {
            token: 42,
            key: Bytes::from_static(b"other"),
        };
        assert_eq!(
            replica.paxos_state(&table, &other).unwrap(),
            PaxosState::default()
        );
    }
}
