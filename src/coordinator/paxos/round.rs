//! One partition's Paxos, as its coordinator runs it: the participants, and the prepare,
//! propose and commit phases with what each waits for.

use std::time::{Duration, Instant};

use rand::Rng;
use uuid::Uuid;

use super::ballot::BallotClock;
use crate::cluster::message::{Request, Response};
use crate::cluster::transport::CallError;
use crate::coordinator::replication::{Need, Replica, Replication, Tally};
use crate::error::{Error, Result};
use crate::protocol::Consistency;
use crate::replica::{Ballot, Promise, Proposal};
use crate::schema::KeyspaceDef;
use crate::storage::partition::PartitionId;

/// The longest random pause before a pre-empted round tries again (Cassandra's).
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// The write type every Paxos timeout reports (protocol v4 has no CAS_WRITE_UNKNOWN).
const CAS: &str = "CAS";

/// A partition's Paxos as one coordinator runs it for one transaction (or SERIAL read).
pub(super) struct Round<'a> {
    replication: &'a Replication,
    clock: &'a BallotClock,
    table: Uuid,
    partition: PartitionId,
    serial: Consistency,
    paxos_need: Need,
    /// The live replicas that count for the Paxos level: prepares and proposals go here.
    participants: Vec<Replica>,
    commit_level: Consistency,
    commit_need: Need,
    /// Every live replica: commits go to all of them.
    replicas: Vec<Replica>,
    /// When contention makes the transaction give up.
    give_up: Instant,
    /// The latest ballot time a replica refused us with (µs).
    seen: i64,
    /// The replicas whose promises the last successful prepare counted.
    promisers: Vec<Uuid>,
}

/// What a prepare got.
enum Prepared {
    /// A quorum of promises, each with the replica's accepted proposal and latest commit.
    Promised(Vec<(Replica, Promise)>),
    /// A replica had promised a later ballot.
    Refused,
}

/// The partition a round runs on, and its levels.
pub(super) struct Target<'a> {
    pub keyspace: &'a KeyspaceDef,
    pub table: Uuid,
    pub partition: &'a PartitionId,
    pub serial: Consistency,
    pub commit: Consistency,
}

impl<'a> Round<'a> {
    /// Plans a round: `Unavailable` when fewer participants are alive than the Paxos level
    /// needs, before anything is sent.
    pub fn new(
        replication: &'a Replication,
        clock: &'a BallotClock,
        target: &Target<'_>,
        contention: Duration,
    ) -> Result<Round<'a>> {
        let view = replication.view();
        let mut paxos_need = replication.need(target.keyspace, target.serial);
        let mut commit_need = replication.need(target.keyspace, target.commit);
        // A node joining takes part as a pending replica, raising both needs by one, as
        // Cassandra's Paxos does: a decision is then known to enough replicas on either
        // side of the move.
        let (mut replicas, _) = replication.write_replicas(
            &view,
            target.keyspace,
            target.partition.token,
            &mut [&mut paxos_need, &mut commit_need],
        );
        replicas.retain(|r| r.alive);
        let participants: Vec<Replica> = replicas
            .iter()
            .filter(|r| paxos_need.counts(&r.dc))
            .cloned()
            .collect();
        if let Some((required, alive)) = tally(&participants).shortfall(&paxos_need) {
            return Err(Error::Unavailable {
                consistency: target.serial,
                required: required as i32,
                alive: alive as i32,
            });
        }
        Ok(Round {
            replication,
            clock,
            table: target.table,
            partition: target.partition.clone(),
            serial: target.serial,
            commit_need,
            commit_level: target.commit,
            paxos_need,
            participants,
            replicas,
            give_up: Instant::now() + contention,
            seen: i64::MIN,
            promisers: Vec::new(),
        })
    }

    /// The Paxos level.
    pub fn serial(&self) -> Consistency {
        self.serial
    }

    /// The replicas (host ids) that promised the ballot [`Round::begin`] returned.
    pub fn promisers(&self) -> &[Uuid] {
        &self.promisers
    }

    /// What the Paxos level blocks for.
    pub fn block_for(&self) -> usize {
        self.paxos_need.block_for()
    }

    /// Gets a ballot promised by a quorum, with every earlier round finished: an accepted
    /// proposal newer than the latest commit is proposed again under the new ballot and
    /// committed (then it starts over), and promising replicas that missed the latest commit
    /// are sent it. Pre-empted attempts retry after a random pause until the contention
    /// timeout, then `WriteTimeout`.
    pub async fn begin(&mut self) -> Result<Ballot> {
        loop {
            let ballot = self.clock.next(self.seen);
            let Prepared::Promised(promises) = self.prepare(ballot).await? else {
                self.back_off().await?;
                continue;
            };
            let latest = promises
                .iter()
                .filter_map(|(_, p)| p.committed.as_ref())
                .max_by_key(|c| c.ballot);
            let committed = latest.map_or(Ballot::ZERO, |c| c.ballot);
            if committed > ballot {
                // A commit from a later round reached a replica that promised us: a
                // proposal under this ballot could not win, so try above it.
                self.seen = self.seen.max(committed.micros());
                self.back_off().await?;
                continue;
            }
            let in_progress = promises
                .iter()
                .filter_map(|(_, p)| p.accepted.as_ref())
                .filter(|a| !a.updates.is_empty())
                .max_by_key(|a| a.ballot)
                .filter(|a| a.ballot > committed);
            if let Some(unfinished) = in_progress {
                self.finish(unfinished, ballot).await?;
                continue;
            }
            let missing: Vec<Replica> = promises
                .iter()
                .filter(|(_, p)| {
                    p.committed.as_ref().map_or(Ballot::ZERO, |c| c.ballot) < committed
                })
                .map(|(r, _)| r.clone())
                .collect();
            if let (Some(latest), false) = (latest, missing.is_empty()) {
                if !self.commit_to(latest, &missing).await {
                    self.back_off().await?;
                    continue;
                }
            }
            self.promisers = promises.iter().map(|(r, _)| r.host_id).collect();
            return Ok(ballot);
        }
    }

    /// Completes an accepted proposal found in progress, under `ballot`. Its updates keep
    /// their timestamps: it was accepted above every commit before it, and every later
    /// commit's ballot is later still, so it takes the same place among them whoever
    /// commits it, and committing it twice writes the same cells.
    async fn finish(&mut self, unfinished: &Proposal, ballot: Ballot) -> Result<()> {
        let again = Proposal {
            ballot,
            ..unfinished.clone()
        };
        if self.propose(&again, false).await? {
            self.commit(&again).await
        } else {
            self.back_off().await
        }
    }

    /// Waits a random pause after a pre-empted attempt; `WriteTimeout` once the contention
    /// timeout has passed.
    pub async fn back_off(&mut self) -> Result<()> {
        let pause = rand::rng().random_range(Duration::ZERO..MAX_BACKOFF);
        let wake = (Instant::now() + pause).min(self.give_up);
        tokio::time::sleep_until(wake.into()).await;
        if Instant::now() >= self.give_up {
            return Err(Error::WriteTimeout {
                consistency: self.serial,
                received: 0,
                block_for: self.paxos_need.block_for() as i32,
                write_type: CAS,
            });
        }
        Ok(())
    }

    async fn prepare(&mut self, ballot: Ballot) -> Result<Prepared> {
        let request = Request::PaxosPrepare {
            table: self.table,
            partition: self.partition.clone(),
            ballot,
        };
        let deadline = Instant::now() + self.replication.timeouts().write;
        let mut answers = self
            .replication
            .send_each(&self.participants, &request, deadline);
        let mut promised = Tally::default();
        let mut possible = tally(&self.participants);
        let mut promises = Vec::new();
        while !promised.meets(&self.paxos_need) {
            let answer = tokio::time::timeout_at(deadline.into(), answers.recv()).await;
            let Ok(Some((replica, result))) = answer else {
                return Err(self.timeout(false, &promised));
            };
            match result {
                Ok(Response::Promise(promise)) if !promise.promised => {
                    self.seen = self.seen.max(promise.ballot.micros());
                    return Ok(Prepared::Refused);
                }
                Ok(Response::Promise(promise)) => {
                    promised.add(&replica.dc);
                    promises.push((replica, promise));
                }
                other => {
                    tracing::debug!(replica = %replica.host_id, ?other, "Paxos prepare failed");
                    possible.remove(&replica.dc);
                    if !possible.meets(&self.paxos_need) {
                        return Err(self.timeout(false, &promised));
                    }
                }
            }
        }
        Ok(Prepared::Promised(promises))
    }

    /// Proposes to the participants: true once a quorum accepted; false when every one of
    /// them refused (nothing was accepted anywhere, so trying again is safe). Otherwise some
    /// replica may hold the proposal, which a later round would finish: with
    /// `timeout_if_partial` that uncertain outcome is a `WriteTimeout` (CAS), else false.
    pub async fn propose(&mut self, proposal: &Proposal, timeout_if_partial: bool) -> Result<bool> {
        let request = Request::PaxosPropose(proposal.clone());
        let deadline = Instant::now() + self.replication.timeouts().write;
        let mut answers = self
            .replication
            .send_each(&self.participants, &request, deadline);
        let mut accepted = Tally::default();
        let mut waiting = self.participants.len();
        let mut unknown = 0;
        while waiting > 0 && !accepted.meets(&self.paxos_need) {
            let answer = tokio::time::timeout_at(deadline.into(), answers.recv()).await;
            let Ok(Some((replica, result))) = answer else {
                unknown += waiting;
                break;
            };
            waiting -= 1;
            match result {
                Ok(Response::Accepted(true)) => accepted.add(&replica.dc),
                // Refused, never delivered, or failed before it was stored.
                Ok(Response::Accepted(false))
                | Err(CallError::Unreachable { .. } | CallError::Frame(_) | CallError::Remote(_)) =>
                    {}
                Ok(_) | Err(CallError::Timeout(_) | CallError::ConnectionLost(_)) => unknown += 1,
            }
        }
        if accepted.meets(&self.paxos_need) {
            return Ok(true);
        }
        let refused_everywhere = accepted.counted(&self.paxos_need) == 0 && unknown == 0;
        if refused_everywhere || !timeout_if_partial {
            return Ok(false);
        }
        Err(self.timeout(false, &accepted))
    }

    /// Commits to every live replica and waits for the commit level's acknowledgements
    /// (none for ANY); `WriteTimeout` (CAS) when they do not come in time.
    pub async fn commit(&mut self, proposal: &Proposal) -> Result<()> {
        let request = Request::PaxosCommit(proposal.clone());
        let deadline = Instant::now() + self.replication.timeouts().write;
        let mut answers = self
            .replication
            .send_each(&self.replicas, &request, deadline);
        if self.commit_level == Consistency::Any {
            return Ok(());
        }
        let mut acks = Tally::default();
        let mut possible = tally(&self.replicas);
        while !acks.meets(&self.commit_need) {
            let answer = tokio::time::timeout_at(deadline.into(), answers.recv()).await;
            let Ok(Some((replica, result))) = answer else {
                return Err(self.timeout(true, &acks));
            };
            if matches!(result, Ok(Response::Ack)) {
                acks.add(&replica.dc);
                continue;
            }
            tracing::debug!(replica = %replica.host_id, ?result, "Paxos commit failed");
            possible.remove(&replica.dc);
            if !possible.meets(&self.commit_need) {
                return Err(self.timeout(true, &acks));
            }
        }
        Ok(())
    }

    /// Sends the latest commit to replicas that missed it; true once all acknowledged.
    async fn commit_to(&self, latest: &Proposal, targets: &[Replica]) -> bool {
        let request = Request::PaxosCommit(latest.clone());
        let deadline = Instant::now() + self.replication.timeouts().write;
        let mut answers = self.replication.send_each(targets, &request, deadline);
        for _ in targets {
            let answer = tokio::time::timeout_at(deadline.into(), answers.recv()).await;
            if !matches!(answer, Ok(Some((_, Ok(Response::Ack))))) {
                return false;
            }
        }
        true
    }

    /// A phase's `WriteTimeout`: of the Paxos level, or of the commit's.
    fn timeout(&self, commit: bool, got: &Tally) -> Error {
        let (level, need) = match commit {
            true => (self.commit_level, &self.commit_need),
            false => (self.serial, &self.paxos_need),
        };
        let block_for = need.block_for();
        Error::WriteTimeout {
            consistency: level,
            // Answers can race the deadline: never report the level as met.
            received: got.counted(need).min(block_for.saturating_sub(1)) as i32,
            block_for: block_for as i32,
            write_type: CAS,
        }
    }
}

fn tally(replicas: &[Replica]) -> Tally {
    let mut tally = Tally::default();
    for replica in replicas {
        tally.add(&replica.dc);
    }
    tally
}
