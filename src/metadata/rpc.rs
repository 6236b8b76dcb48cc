//! The log's messages between nodes. They travel as the opaque body of
//! `Request::Meta` / `Response::Meta` (`cluster/message.rs`), postcard-encoded here, so the
//! internode message set does not depend on openraft's types.

use std::net::SocketAddr;

use bytes::Bytes;
use openraft::error::InstallSnapshotError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::types::{MetaTypes, RaftError};

/// What one node asks of another's metadata log.
#[derive(Clone, Serialize, Deserialize)]
pub enum MetaRequest {
    /// Raft: the leader's entries (or heartbeat).
    AppendEntries(AppendEntriesRequest<MetaTypes>),
    /// Raft: a candidate asks for a vote.
    Vote(VoteRequest<Uuid>),
    /// Raft: one chunk of a snapshot for a member behind the purged log.
    InstallSnapshot(InstallSnapshotRequest<MetaTypes>),
    /// A command proposed through another node, for the leader to commit.
    Propose { command: Bytes, timeout_ms: u64 },
    /// A node asks to become a member; a non-leader forwards it to the leader once.
    Join {
        host_id: Uuid,
        addr: SocketAddr,
        timeout_ms: u64,
        forwarded: bool,
    },
    /// A node leaving the cluster asks to be removed; a non-leader forwards it once.
    Leave {
        host_id: Uuid,
        timeout_ms: u64,
        forwarded: bool,
    },
}

/// The answers, one variant per request.
#[derive(Serialize, Deserialize)]
pub enum MetaResponse {
    AppendEntries(Result<AppendEntriesResponse<Uuid>, RaftError>),
    Vote(Result<VoteResponse<Uuid>, RaftError>),
    InstallSnapshot(Result<InstallSnapshotResponse<Uuid>, RaftError<InstallSnapshotError>>),
    Propose(Result<Proposed, Refused>),
    Join(Result<JoinedAs, Refused>),
    Leave(Result<(), Refused>),
}

/// A committed proposal: its log index and the state machine's reply on the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposed {
    pub index: u64,
    pub reply: Bytes,
}

/// Why a node did not take a proposal or a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refused {
    /// Not the leader; the leader it knows of, if any. Nothing was written: retry there.
    NotLeader(Option<SocketAddr>),
    /// Accepted, but not committed before the deadline (no majority, or slow).
    Timeout,
    /// Failed for another reason.
    Failed(String),
}

/// What a join made of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinedAs {
    Voter,
    Learner,
}

/// Encodes a message for the transport.
pub fn encode<T: Serialize>(message: &T) -> Result<Bytes, String> {
    postcard::to_allocvec(message)
        .map(Bytes::from)
        .map_err(|e| format!("cannot encode a metadata message: {e}"))
}

/// Decodes a message from a peer (untrusted input: an error, never a panic).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    postcard::from_bytes(body).map_err(|e| format!("undecodable metadata message: {e}"))
}
