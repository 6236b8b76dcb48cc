//! Lightweight transactions at any replication factor: Cassandra's single-decree Paxos per
//! partition ("v1", `StorageProxy.cas`), coordinated by whichever node the client asked.
//!
//! A transaction is a sequence of rounds, each under a fresh ballot ([`ballot`]: a
//! time-based UUID, later than any ballot this node made or was refused with):
//! 1. **Prepare**: every live participant (all replicas for SERIAL, the local data centre's
//!    for LOCAL_SERIAL; `Unavailable` first if fewer than the level's quorum are alive) is
//!    asked to promise the ballot; a quorum of promises is needed, and one refusal ends the
//!    attempt. Each promise carries the replica's accepted proposal and latest commit.
//! 2. **Finish earlier rounds**: an accepted proposal newer than the latest commit any
//!    promise shows may have been chosen, so it is proposed again under this ballot and
//!    committed before anything else, and the round starts over. Promising replicas whose
//!    latest commit is older are sent the latest and must acknowledge it. After this, every
//!    promising replica holds every chosen update, so a quorum read sees them all.
//! 3. **Read** the values the conditions name at QUORUM (LOCAL_QUORUM for LOCAL_SERIAL)
//!    through the normal read path, cache off, asking the replicas that just promised first
//!    (they are answering; a closer one may be alive to the failure detector yet silent),
//!    and **decide** with the conditions
//!    (`lwt::decide`). Not applied: the answer carries the current values, nothing is
//!    proposed.
//! 4. **Propose** the updates, timestamped with the ballot's time, to the participants; a
//!    quorum of acceptances wins. Refused by every participant: nothing was accepted
//!    anywhere, so a new round is safe. Accepted by some but not a quorum, or unanswered:
//!    a later round may still finish it, so the client gets `WriteTimeout` (write type CAS)
//!    — protocol v4 has no CAS_WRITE_UNKNOWN.
//! 5. **Commit** to every live replica through the replica's normal write
//!    (`LocalReplica::write`, so caches stay coherent), recorded in its Paxos state, acknowledged
//!    at the commit level (not awaited for ANY).
//!
//! A refused prepare or proposal retries after a random pause of up to 100 ms until
//! `cas_contention_timeout_ms` (counted from the round's start), then `WriteTimeout` (CAS).
//! Every timeout of a phase is `WriteTimeout` with write type CAS and Cassandra's counts.
//!
//! Transactions this node coordinates on one partition take turns (the `CasLocks` the
//! one-replica path uses): concurrent rounds from one coordinator would only pre-empt each
//! other's ballots. The lock is an optimisation, not a correctness need — the ballots are.
//!
//! A SERIAL read of one partition runs steps 1 and 2 (committing at QUORUM) before its quorum
//! read, so an outcome left uncertain by a timeout is settled one way or the other before
//! it is read; a timeout there is a `ReadTimeout`.
//!
//! A keyspace with one replica keeps the older path (`Coordinator::cas_here`): its replica's
//! partition lock already serialises every transaction, at one local read and write instead
//! of three rounds of Paxos state writes.

mod ballot;
mod round;

use std::time::Duration;

use ballot::BallotClock;
use round::{Round, Target};

use super::lwt::{self, CasRequest};
use super::read::ReadPath;
use super::replication::Replication;
use super::restrict::{PartitionSelection, ReadPlan};
use super::stored_lists::{FetchedLists, ReplicaLists};
use super::{Coordinator, Reply};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::protocol::Consistency;
use crate::replica::Proposal;
use crate::schema::KeyspaceDef;

/// This coordinator's Paxos: its ballots and how long contention may last.
pub(super) struct Paxos {
    clock: BallotClock,
    contention: Duration,
}

impl Paxos {
    pub fn new(config: &Config, host_id: uuid::Uuid) -> Paxos {
        Paxos {
            clock: BallotClock::new(host_id),
            contention: Duration::from_millis(config.cas_contention_timeout_ms),
        }
    }

    /// Before a SERIAL or LOCAL_SERIAL read of `plan` in `keyspace`: with more than one
    /// replica, finishes the partition's Paxos rounds in progress and returns the level the
    /// read then runs at (QUORUM or LOCAL_QUORUM) and the replicas that promised, which the
    /// read asks first; otherwise returns `level` unchanged.
    pub async fn before_serial_read(
        &self,
        replication: &Replication,
        keyspace: &KeyspaceDef,
        table: uuid::Uuid,
        plan: &ReadPlan,
        level: Consistency,
    ) -> Result<(Consistency, Vec<uuid::Uuid>)> {
        if !is_serial(level) || lwt::single_replica(keyspace) {
            return Ok((level, Vec::new()));
        }
        let quorum = read_level(level);
        let PartitionSelection::Keys(keys) = &plan.partitions else {
            return Ok((quorum, Vec::new()));
        };
        let [partition] = keys.as_slice() else {
            return Err(Error::invalid(
                "SERIAL/LOCAL_SERIAL consistency may only be requested for one partition at a time",
            ));
        };
        let target = Target {
            keyspace,
            table,
            partition,
            serial: level,
            commit: quorum,
        };
        let mut round = Round::new(replication, &self.clock, &target, self.contention)?;
        match round.begin().await {
            Err(Error::WriteTimeout { .. }) => Err(Error::ReadTimeout {
                consistency: level,
                received: 0,
                block_for: round.block_for() as i32,
                data_present: false,
            }),
            other => other.map(|_| (quorum, round.promisers().to_vec())),
        }
    }
}

fn is_serial(level: Consistency) -> bool {
    matches!(level, Consistency::Serial | Consistency::LocalSerial)
}

/// The level a Paxos round reads (and a SERIAL read's repair commits) at.
fn read_level(serial: Consistency) -> Consistency {
    match serial {
        Consistency::LocalSerial => Consistency::LocalQuorum,
        _ => Consistency::Quorum,
    }
}

impl Coordinator {
    /// Runs a lightweight transaction on a partition with several replicas (module essay).
    pub(super) async fn paxos_cas(&self, request: &CasRequest) -> Result<Reply> {
        let catalog = self.read_catalog();
        let keyspace = catalog.keyspace(request.keyspace()).ok_or_else(|| {
            Error::invalid(format!("Keyspace {} does not exist", request.keyspace()))
        })?;
        let levels = request.levels();
        let serial = levels.serial.unwrap_or(Consistency::Serial);
        let (table, partition) = request.lock_key();
        let target = Target {
            keyspace,
            table,
            partition,
            serial,
            commit: levels.commit,
        };
        let paxos = &self.paxos;
        let mut round = Round::new(&self.replication, &paxos.clock, &target, paxos.contention)?;
        let turn = self.cas_locks.lock(table, partition);
        let Ok(_turn) = tokio::time::timeout(self.replication.timeouts().write, turn).await else {
            return Err(Error::WriteTimeout {
                consistency: serial,
                received: 0,
                block_for: round.block_for() as i32,
                write_type: "CAS",
            });
        };
        loop {
            let ballot = round.begin().await?;
            let decided = self
                .decide_in_round(&round, request, &catalog, keyspace, ballot.micros())
                .await?;
            let (updates, reply) = match decided {
                lwt::Outcome::NotApplied(body) => return Ok(Reply::Result(body)),
                lwt::Outcome::Apply { updates, reply } => (updates, reply),
            };
            let proposal = Proposal {
                ballot,
                table,
                partition: partition.clone(),
                updates,
            };
            if round.propose(&proposal, true).await? {
                round.commit(&proposal).await?;
                return Ok(Reply::Result(reply));
            }
            round.back_off().await?;
        }
    }

    /// Reads and decides within a round; stored lists the writes need (list operations by
    /// index or value) are read at the round's read level, then the writes bound again.
    async fn decide_in_round(
        &self,
        round: &Round<'_>,
        request: &CasRequest,
        catalog: &crate::schema::Catalog,
        keyspace: &KeyspaceDef,
        timestamp: i64,
    ) -> Result<lwt::Outcome> {
        let level = read_level(round.serial());
        let fetched = FetchedLists::default();
        for _ in 0..super::MAX_LIST_READS {
            let lists = ReplicaLists { fetched: &fetched };
            let with = lwt::Decide {
                catalog,
                path: ReadPath::Replicas {
                    replication: &self.replication,
                    keyspace,
                    prefer: round.promisers(),
                },
                read_level: level,
                lists: &lists,
                max_unpaged_rows: self.max_unpaged_rows,
                stamp: lwt::Stamp::Exactly(timestamp),
            };
            match lwt::decide(request, &with).await {
                Err(Error::ListNeeded(key)) => {
                    let elements = self.fetch_list(&key, level).await?;
                    fetched.insert(*key, elements);
                }
                other => return other,
            }
        }
        Err(Error::invalid(format!(
            "a statement may read at most {} stored lists",
            super::MAX_LIST_READS
        )))
    }
}
