//! Raft's messages over the internode transport, and who has been heard from lately.
//!
//! Each Raft RPC is one `Request::Meta` with the deadline openraft gives it, so a dead or
//! cut-off member costs a timeout, never a hang. [`Contacts`] records when each member last
//! answered or called, which is how a proposal that timed out tells "no majority" (and how
//! many answered) from "slow".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RemoteError as RaftRemote, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use uuid::Uuid;

use super::rpc::{self, MetaRequest, MetaResponse};
use super::types::{MetaNode, MetaTypes, RaftError};
use crate::cluster::message::{Request, Response};
use crate::cluster::transport::{CallError, Transport};

/// When each member was last heard from (an answer to this node, or a call from it).
#[derive(Debug, Default)]
pub struct Contacts {
    last: Mutex<HashMap<Uuid, Instant>>,
}

impl Contacts {
    /// Records that `member` was heard from now.
    pub fn heard(&self, member: Uuid) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.insert(member, Instant::now());
    }

    /// Whether `member` was heard from within `window`.
    pub fn recent(&self, member: Uuid, window: Duration) -> bool {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.get(&member).is_some_and(|t| t.elapsed() <= window)
    }
}

/// Sends one metadata message to `to` and decodes the answer, within `timeout`.
pub async fn call(
    transport: &Transport,
    to: SocketAddr,
    request: &MetaRequest,
    timeout: Duration,
) -> Result<MetaResponse, CallError> {
    let body = rpc::encode(request).map_err(CallError::Frame)?;
    let deadline = Instant::now() + timeout;
    match transport.request(to, Request::Meta(body), deadline).await? {
        Response::Meta(body) => rpc::decode(&body).map_err(CallError::Frame),
        other => Err(CallError::Frame(format!(
            "expected a metadata answer, got {other:?}"
        ))),
    }
}

/// Makes a [`PeerLink`] per member openraft replicates to.
pub struct Network {
    pub transport: Transport,
    pub contacts: Arc<Contacts>,
}

impl RaftNetworkFactory<MetaTypes> for Network {
    type Network = PeerLink;

    async fn new_client(&mut self, target: Uuid, node: &MetaNode) -> PeerLink {
        PeerLink {
            target,
            addr: node.addr,
            transport: self.transport.clone(),
            contacts: self.contacts.clone(),
        }
    }
}

/// The link from this node to one member.
pub struct PeerLink {
    target: Uuid,
    addr: SocketAddr,
    transport: Transport,
    contacts: Arc<Contacts>,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<Uuid, MetaNode, RaftError<E>>>;

// The error type is openraft's, fixed by `RaftNetwork`'s signatures.
#[allow(clippy::result_large_err)]
impl PeerLink {
    async fn send<E: std::error::Error>(
        &self,
        request: MetaRequest,
        option: &RPCOption,
    ) -> RpcResult<MetaResponse, E> {
        match call(&self.transport, self.addr, &request, option.hard_ttl()).await {
            Ok(answer) => {
                self.contacts.heard(self.target);
                Ok(answer)
            }
            Err(e @ CallError::Unreachable { .. }) => {
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }

    fn remote<T, E: std::error::Error>(&self, answer: Result<T, RaftError<E>>) -> RpcResult<T, E> {
        answer.map_err(|e| RPCError::RemoteError(RaftRemote::new(self.target, e)))
    }
}

fn mismatched<E: std::error::Error>() -> RPCError<Uuid, MetaNode, RaftError<E>> {
    let e = CallError::Frame("a metadata answer of the wrong kind".into());
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<MetaTypes> for PeerLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<MetaTypes>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<Uuid>> {
        match self.send(MetaRequest::AppendEntries(rpc), &option).await? {
            MetaResponse::AppendEntries(answer) => self.remote(answer),
            _ => Err(mismatched()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<MetaTypes>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<Uuid>, InstallSnapshotError> {
        match self
            .send(MetaRequest::InstallSnapshot(rpc), &option)
            .await?
        {
            MetaResponse::InstallSnapshot(answer) => self.remote(answer),
            _ => Err(mismatched()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Uuid>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<Uuid>> {
        match self.send(MetaRequest::Vote(rpc), &option).await? {
            MetaResponse::Vote(answer) => self.remote(answer),
            _ => Err(mismatched()),
        }
    }

    fn backoff(&self) -> Backoff {
        // A member coming back is retried soon: well within one election timeout.
        Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}
