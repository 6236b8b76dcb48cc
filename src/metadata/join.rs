//! Becoming a member: founding the group, asking to join it, and (on the leader) admitting
//! a node that asks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::InitializeError;
use openraft::ChangeMembers;
use uuid::Uuid;

use super::network::call;
use super::rpc::{JoinedAs, MetaRequest, MetaResponse, Refused};
use super::types::{MetaError, MetaNode, RaftError};
use super::{MetadataLog, MAX_VOTERS};
use crate::config::Config;

/// How long one join attempt may take: the leader adds the node, waits for it to catch up
/// and promotes it.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_millis(200);
const LAST_RETRY: Duration = Duration::from_secs(2);

/// The configured seeds other than this node; empty for the founder.
pub(super) fn seeds(config: &Config, me: SocketAddr) -> Vec<SocketAddr> {
    let mut seeds = config.seed_addrs();
    seeds.retain(|seed| *seed != me);
    seeds
}

impl MetadataLog {
    /// Founds the group (no seeds but this node) or joins it through `seeds`, retrying
    /// until a seed answers; then records the membership so it is never asked again.
    pub(super) async fn become_member(self: Arc<Self>, seeds: Vec<SocketAddr>) {
        if seeds.is_empty() {
            if let Err(error) = self.found().await {
                tracing::error!(%error, "cannot found the metadata group");
                return;
            }
        } else {
            self.join_through(&seeds).await;
        }
        match self.db.set_joined() {
            Ok(()) => {
                self.joined.send_replace(true);
            }
            Err(error) => tracing::error!(%error, "cannot record membership of the metadata group"),
        }
    }

    async fn found(&self) -> Result<(), MetaError> {
        let me = BTreeMap::from([(self.id, MetaNode { addr: self.addr })]);
        match self.raft.initialize(me).await {
            Ok(()) => {
                tracing::info!(id = %self.id, "founded the metadata group");
                Ok(())
            }
            // Initialised before the mark was written: nothing more to do.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(MetaError::Storage(e.to_string())),
        }
    }

    async fn join_through(&self, seeds: &[SocketAddr]) {
        let mut pause = FIRST_RETRY;
        for seed in seeds.iter().cycle() {
            match self.ask_to_join(*seed).await {
                Ok(joined) => {
                    tracing::info!(%seed, ?joined, "joined the metadata group");
                    return;
                }
                Err(error) => tracing::debug!(%seed, %error, "join not accepted yet; retrying"),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LAST_RETRY);
        }
    }

    async fn ask_to_join(&self, seed: SocketAddr) -> Result<JoinedAs, String> {
        let request = MetaRequest::Join {
            host_id: self.id,
            addr: self.addr,
            timeout_ms: JOIN_TIMEOUT.as_millis() as u64,
            forwarded: false,
        };
        // One more second than the seed has, so a forwarded answer still arrives.
        match call(
            &self.transport,
            seed,
            &request,
            JOIN_TIMEOUT + Duration::from_secs(1),
        )
        .await
        {
            Ok(MetaResponse::Join(Ok(joined))) => Ok(joined),
            Ok(MetaResponse::Join(Err(refused))) => Err(format!("{refused:?}")),
            Ok(_) => Err("a metadata answer of the wrong kind".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A join request: admitted here when this node leads, else forwarded to the leader
    /// (once: a forwarded request reaching a non-leader is refused).
    pub(super) async fn admit(
        &self,
        host_id: Uuid,
        addr: SocketAddr,
        timeout: Duration,
        forwarded: bool,
    ) -> Result<JoinedAs, Refused> {
        let request = MetaRequest::Join {
            host_id,
            addr,
            timeout_ms: timeout.as_millis() as u64,
            forwarded: true,
        };
        let here = |deadline| self.admit_as_leader(host_id, MetaNode { addr }, deadline);
        let answer = |response| match response {
            MetaResponse::Join(answer) => Some(answer),
            _ => None,
        };
        self.at_leader(timeout, forwarded, here, request, answer)
            .await
    }

    /// Leaves the group (this node is leaving the cluster): asks the leader, through any
    /// member, to remove it, so the group's majority stops counting a node that is gone.
    pub async fn leave(&self) -> Result<(), MetaError> {
        self.remove_member(self.id).await
    }

    /// Asks the leader, through any member, to remove `host_id` from the group (a dead
    /// node that another replaced), so the group's majority stops counting it.
    pub async fn remove_member(&self, host_id: Uuid) -> Result<(), MetaError> {
        match self.remove(host_id, JOIN_TIMEOUT, false).await {
            Ok(()) => Ok(()),
            Err(Refused::Timeout) => Err(MetaError::Timeout(JOIN_TIMEOUT)),
            Err(refused) => Err(MetaError::Remote(format!("{refused:?}"))),
        }
    }

    /// A leave request: done here when this node leads, else forwarded to the leader once.
    pub(super) async fn remove(
        &self,
        host_id: Uuid,
        timeout: Duration,
        forwarded: bool,
    ) -> Result<(), Refused> {
        let request = MetaRequest::Leave {
            host_id,
            timeout_ms: timeout.as_millis() as u64,
            forwarded: true,
        };
        let here = |deadline| self.remove_as_leader(host_id, deadline);
        let answer = |response| match response {
            MetaResponse::Leave(answer) => Some(answer),
            _ => None,
        };
        self.at_leader(timeout, forwarded, here, request, answer)
            .await
    }

    /// Runs a membership change `here` when this node leads (one change at a time), else
    /// sends `request` (marked forwarded) to the leader and takes its result out of the
    /// answer with `answer`. A request that was itself forwarded is not forwarded again.
    async fn at_leader<T, F>(
        &self,
        timeout: Duration,
        forwarded: bool,
        here: impl FnOnce(Instant) -> F,
        request: MetaRequest,
        answer: impl FnOnce(MetaResponse) -> Option<Result<T, Refused>>,
    ) -> Result<T, Refused>
    where
        F: std::future::Future<Output = Result<T, Refused>>,
    {
        let deadline = Instant::now() + timeout;
        let leader = self.raft.metrics().borrow().current_leader;
        if leader == Some(self.id) {
            let _one_at_a_time = tokio::time::timeout_at(deadline.into(), self.join_lock.lock())
                .await
                .map_err(|_| Refused::Timeout)?;
            return here(deadline).await;
        }
        let leader_addr = leader.and_then(|l| self.address_of(l));
        let (Some(to), false) = (leader_addr, forwarded) else {
            return Err(Refused::NotLeader(leader_addr));
        };
        match call(&self.transport, to, &request, timeout).await {
            Ok(response) => answer(response).unwrap_or_else(|| {
                Err(Refused::Failed(
                    "a metadata answer of the wrong kind".into(),
                ))
            }),
            Err(e) => Err(Refused::Failed(e.to_string())),
        }
    }

    /// Removes the node from the group (voter or learner), then promotes a learner in its
    /// place while the group has fewer than [`MAX_VOTERS`] voters.
    async fn remove_as_leader(&self, id: Uuid, deadline: Instant) -> Result<(), Refused> {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let voters: BTreeSet<Uuid> = membership.membership().voter_ids().collect();
        if voters.contains(&id) {
            let remove = ChangeMembers::RemoveVoters(BTreeSet::from([id]));
            self.change_retaining(remove, false, deadline).await?;
        } else if membership.membership().get_node(&id).is_some() {
            let remove = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
            self.change(remove, deadline).await?;
        }
        tracing::info!(%id, "removed from the metadata group");
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let voters: BTreeSet<Uuid> = membership.membership().voter_ids().collect();
        let learner = membership
            .membership()
            .learner_ids()
            .find(|l| !voters.contains(l));
        if let (Some(learner), true) = (learner, voters.len() < MAX_VOTERS) {
            self.caught_up(learner, deadline).await?;
            self.change(
                ChangeMembers::AddVoterIds(BTreeSet::from([learner])),
                deadline,
            )
            .await?;
            tracing::info!(id = %learner, "promoted to voter in place of a node that left");
        }
        Ok(())
    }

    /// Adds the node as a learner (or updates its address), then promotes it to voter
    /// once it has caught up, while the group has fewer than [`MAX_VOTERS`] voters.
    async fn admit_as_leader(
        &self,
        id: Uuid,
        node: MetaNode,
        deadline: Instant,
    ) -> Result<JoinedAs, Refused> {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let change = match membership.membership().get_node(&id) {
            None => Some(ChangeMembers::AddNodes(BTreeMap::from([(id, node)]))),
            Some(known) if *known != node => {
                Some(ChangeMembers::SetNodes(BTreeMap::from([(id, node)])))
            }
            Some(_) => None,
        };
        if let Some(change) = change {
            self.change(change, deadline).await?;
        }
        let voters: BTreeSet<Uuid> = membership.membership().voter_ids().collect();
        if voters.contains(&id) {
            return Ok(JoinedAs::Voter);
        }
        if voters.len() >= MAX_VOTERS {
            tracing::info!(%id, addr = %node.addr, "admitted to the metadata group as a learner");
            return Ok(JoinedAs::Learner);
        }
        self.caught_up(id, deadline).await?;
        self.change(ChangeMembers::AddVoterIds(BTreeSet::from([id])), deadline)
            .await?;
        tracing::info!(%id, addr = %node.addr, "admitted to the metadata group as a voter");
        Ok(JoinedAs::Voter)
    }

    async fn change(
        &self,
        change: ChangeMembers<Uuid, MetaNode>,
        deadline: Instant,
    ) -> Result<(), Refused> {
        self.change_retaining(change, true, deadline).await
    }

    /// Changes the membership; `retain`: voters removed stay as learners.
    async fn change_retaining(
        &self,
        change: ChangeMembers<Uuid, MetaNode>,
        retain: bool,
        deadline: Instant,
    ) -> Result<(), Refused> {
        let changed = self.raft.change_membership(change, retain);
        match tokio::time::timeout_at(deadline.into(), changed).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Refused::Failed(e.to_string())),
            Err(_) => Err(Refused::Timeout),
        }
    }

    /// Waits until the learner `id` has every entry the leader had when this began.
    async fn caught_up(&self, id: Uuid, deadline: Instant) -> Result<(), Refused> {
        let mut metrics = self.raft.metrics();
        let target = metrics.borrow().last_log_index;
        let matched = async move {
            let caught_up = metrics.wait_for(|m| {
                let at = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&id).cloned().flatten());
                at.map(|id| id.index) >= target
            });
            caught_up.await.map(|_| ())
        };
        match tokio::time::timeout_at(deadline.into(), matched).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Refused::Failed("the metadata log stopped".into())),
            Err(_) => Err(Refused::Timeout),
        }
    }
}
