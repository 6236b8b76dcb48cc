//! The log's Raft types and its errors.

use std::fmt;
use std::io::Cursor;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

openraft::declare_raft_types!(
    /// The metadata log's Raft types: entries carry the state machine's opaque commands,
    /// nodes are host ids with their internode address.
    pub MetaTypes:
        D = Bytes,
        R = Bytes,
        NodeId = Uuid,
        Node = MetaNode,
        Entry = openraft::Entry<MetaTypes>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A log entry.
pub type Entry = openraft::Entry<MetaTypes>;
/// A position in the log: the term of the leader that wrote it, and its index.
pub type LogId = openraft::LogId<Uuid>;
/// The group's membership as of one log entry.
pub type StoredMembership = openraft::StoredMembership<Uuid, MetaNode>;
/// What a snapshot covers.
pub type SnapshotMeta = openraft::SnapshotMeta<Uuid, MetaNode>;
/// A Raft error whose API part is `E`.
pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<Uuid, E>;
/// openraft's storage error.
pub type StorageError = openraft::StorageError<Uuid>;

/// Where a member of the group is reached: its internode address. (openraft wants a
/// `Default` node, which `SocketAddr` is not.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaNode {
    pub addr: SocketAddr,
}

impl Default for MetaNode {
    fn default() -> Self {
        MetaNode {
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        }
    }
}

impl fmt::Display for MetaNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.addr.fmt(f)
    }
}

/// Why a metadata operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// Too few voting members answer for anything to commit.
    #[error(
        "cluster metadata changes (schema, token ownership) need a majority of the cluster's \
         {voters} voting members; only {answered} answered"
    )]
    NoQuorum { voters: usize, answered: usize },
    /// A majority answers, but the change was not applied here in time (a slow or busy
    /// cluster; it may still be applied later).
    #[error("the metadata change was not applied on this node within {0:?}")]
    Timeout(Duration),
    /// This node is not yet a member of the metadata group (its join is still in progress).
    #[error("this node has not joined the cluster's metadata group yet")]
    NotJoined,
    /// The connection to the leader broke with the change in flight: it may or may not be
    /// applied.
    #[error("lost the metadata leader {0} with the change in flight; it may or may not apply")]
    InDoubt(SocketAddr),
    /// The `[metadata]` settings are not usable.
    #[error("invalid [metadata] settings: {0}")]
    Config(String),
    /// The log's storage failed.
    #[error("metadata log storage: {0}")]
    Storage(String),
    /// The log is shutting down or stopped.
    #[error("the metadata log is stopped")]
    Stopped,
    /// Another node refused or failed the request.
    #[error("{0}")]
    Remote(String),
}
