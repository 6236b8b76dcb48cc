//! Proposing a command: from any node, committed by the leader, answered once applied here.
//!
//! A node that is not the leader forwards the command to the leader it knows of and, when
//! that one turns out not to be the leader (or cannot be reached, so it was never sent),
//! tries again with the next one, until the deadline. A command sent whose answer is lost
//! is never sent again — it may have been committed — and the caller is told so. Once
//! committed, the proposer waits until its own node has applied the entry, so the caller
//! reads its own change wherever it proposed it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::error::ClientWriteError;

use super::network::call;
use super::rpc::{MetaRequest, MetaResponse, Proposed, Refused};
use super::types::{MetaError, RaftError};
use super::MetadataLog;
use crate::cluster::transport::CallError;

/// How long a proposer waits for news of a new leader before trying again anyway.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// How one attempt to commit ended.
pub(super) enum Attempt {
    /// Nothing was written: try again (elsewhere).
    Retry,
    /// Sent, but not committed by the deadline.
    Timeout,
    Fail(MetaError),
}

impl MetadataLog {
    /// Commits `command` through the leader and returns the state machine's reply once
    /// the entry is applied on this node; fails within `timeout`, with
    /// [`MetaError::NoQuorum`] when too few voters answer.
    pub async fn propose(&self, command: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, MetaError> {
        let deadline = Instant::now() + timeout;
        let proposed = self.commit(Bytes::from(command), deadline, timeout).await?;
        let mut applied = self.applied.clone();
        let index = Some(proposed.index);
        let here = async move { applied.wait_for(|a| *a >= index).await.map(|_| ()) };
        match tokio::time::timeout_at(deadline.into(), here).await {
            Ok(Ok(_)) => Ok(proposed.reply.to_vec()),
            Ok(Err(_)) => Err(MetaError::Stopped),
            Err(_) => Err(MetaError::Timeout(timeout)),
        }
    }

    async fn commit(
        &self,
        command: Bytes,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Proposed, MetaError> {
        let mut metrics = self.raft.metrics();
        loop {
            let leader = metrics.borrow_and_update().current_leader;
            let attempt = match leader {
                Some(leader) if leader == self.id => {
                    self.commit_here(command.clone(), deadline).await
                }
                Some(leader) => self.commit_at(leader, command.clone(), deadline).await,
                None => Err(Attempt::Retry),
            };
            match attempt {
                Ok(proposed) => return Ok(proposed),
                Err(Attempt::Retry) => {}
                Err(Attempt::Timeout) => return Err(self.why_not_committed(timeout)),
                Err(Attempt::Fail(e)) => return Err(e),
            }
            let pause = (Instant::now() + RETRY_PAUSE).min(deadline);
            let news =
                metrics.wait_for(|m| m.current_leader.is_some() && m.current_leader != leader);
            let _ = tokio::time::timeout_at(pause.into(), news).await;
            if Instant::now() >= deadline {
                return Err(self.why_not_committed(timeout));
            }
        }
    }

    /// Appends `command` as the leader and waits for it to commit and apply here.
    pub(super) async fn commit_here(
        &self,
        command: Bytes,
        deadline: Instant,
    ) -> Result<Proposed, Attempt> {
        let write = self.raft.client_write(command);
        match tokio::time::timeout_at(deadline.into(), write).await {
            Err(_) => Err(Attempt::Timeout),
            Ok(Ok(written)) => Ok(Proposed {
                index: written.log_id.index,
                reply: written.data,
            }),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(Attempt::Retry)
            }
            Ok(Err(RaftError::APIError(other))) => {
                Err(Attempt::Fail(MetaError::Remote(other.to_string())))
            }
            Ok(Err(RaftError::Fatal(_))) => Err(Attempt::Fail(MetaError::Stopped)),
        }
    }

    /// Forwards `command` to `leader`.
    async fn commit_at(
        &self,
        leader: uuid::Uuid,
        command: Bytes,
        deadline: Instant,
    ) -> Result<Proposed, Attempt> {
        let Some(addr) = self.address_of(leader) else {
            return Err(Attempt::Retry);
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        // The leader gives up a little before this node does, so its answer still arrives.
        let request = MetaRequest::Propose {
            command,
            timeout_ms: (remaining.as_millis() as u64 * 9 / 10).max(1),
        };
        match call(&self.transport, addr, &request, remaining).await {
            Ok(MetaResponse::Propose(Ok(proposed))) => Ok(proposed),
            Ok(MetaResponse::Propose(Err(refused))) => Err(attempt(refused)),
            Ok(_) => Err(Attempt::Fail(MetaError::Remote(
                "a metadata answer of the wrong kind".into(),
            ))),
            Err(CallError::Unreachable { .. } | CallError::Remote(_)) => Err(Attempt::Retry),
            Err(CallError::Timeout(_)) => Err(Attempt::Timeout),
            Err(CallError::ConnectionLost(addr)) => Err(Attempt::Fail(MetaError::InDoubt(addr))),
            Err(CallError::Frame(e)) => Err(Attempt::Fail(MetaError::Remote(e))),
        }
    }

    /// A proposal forwarded by a peer: committed here if this node leads.
    pub(super) async fn commit_for_peer(
        &self,
        command: Bytes,
        timeout: Duration,
    ) -> Result<Proposed, Refused> {
        let deadline = Instant::now() + timeout;
        match self.commit_here(command, deadline).await {
            Ok(proposed) => Ok(proposed),
            Err(Attempt::Retry) => Err(Refused::NotLeader(self.leader_address())),
            Err(Attempt::Timeout) => Err(Refused::Timeout),
            Err(Attempt::Fail(e)) => Err(Refused::Failed(e.to_string())),
        }
    }

    fn leader_address(&self) -> Option<std::net::SocketAddr> {
        let leader = self.raft.metrics().borrow().current_leader?;
        self.address_of(leader)
    }

    /// Why nothing committed in time: too few voters heard from lately, or only slowness.
    fn why_not_committed(&self, timeout: Duration) -> MetaError {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let voters: Vec<_> = membership.membership().voter_ids().collect();
        if voters.is_empty() || membership.membership().get_node(&self.id).is_none() {
            return MetaError::NotJoined;
        }
        let window = self.election_timeout_max;
        let answered = voters
            .iter()
            .filter(|v| **v == self.id || self.contacts.recent(**v, window))
            .count();
        if answered * 2 <= voters.len() {
            MetaError::NoQuorum {
                voters: voters.len(),
                answered,
            }
        } else {
            MetaError::Timeout(timeout)
        }
    }
}

fn attempt(refused: Refused) -> Attempt {
    match refused {
        Refused::NotLeader(_) => Attempt::Retry,
        Refused::Timeout => Attempt::Timeout,
        Refused::Failed(e) => Attempt::Fail(MetaError::Remote(e)),
    }
}
