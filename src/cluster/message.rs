//! Every message nodes send each other, as serde types.
//!
//! A message travels in a frame (`transport/frame.rs`: a big-endian `u32` length, then the
//! body) whose body is an [`Envelope`] encoded with postcard: compact, and safe on untrusted
//! input — every length is checked against the bytes present, and a decode either yields a
//! whole value or an error that closes that one connection. The version agreed at the
//! handshake ([`PROTOCOL_VERSION`]) names this set of types; a change to any of them that an
//! older node could not decode bumps it.
//!
//! Requests carry an id chosen by the sender; the answer carries the same id, so one
//! connection can have many requests in flight and answers can come back in any order.
//! Gossip messages are one-way and travel on their own connection, so a heartbeat never
//! queues behind a large read.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::gossip::{Digest, EndpointDelta};
use crate::replica::{Ballot, Promise, Proposal};
use crate::storage::merkle::{MerkleTree, TokenSpan};
use crate::storage::partition::{
    PartitionFragment, PartitionId, PartitionStart, PartitionUpdate, ReadLimits, ReadStats, Slice,
    TableLayout,
};

/// The version of this message set, agreed at the handshake. 2: the metadata log's messages;
/// 3: Paxos; 4: anti-entropy repair.
pub const PROTOCOL_VERSION: u16 = 4;

/// One frame's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Envelope {
    /// A request expecting exactly one [`Envelope::Response`] with the same id.
    Request { id: u64, request: Request },
    /// The answer to the request `id`.
    Response {
        id: u64,
        response: Result<Response, RemoteError>,
    },
    /// A gossip round's message (one-way, on the gossip connection).
    Gossip(Gossip),
}

/// Gossip exchange, Cassandra's three-step shape: the initiator sends the digests of every
/// endpoint it knows (SYN); the receiver answers with the states the initiator lacks and
/// the digests of those it lacks itself (ACK); the initiator sends those (ACK2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Gossip {
    Syn {
        /// The sender's cluster, checked again at every exchange.
        cluster_name: String,
        digests: Vec<Digest>,
    },
    Ack {
        /// States newer than the initiator's digests showed.
        deltas: Vec<EndpointDelta>,
        /// Endpoints the receiver wants newer state of (its own version in each).
        requests: Vec<Digest>,
    },
    Ack2 {
        deltas: Vec<EndpointDelta>,
    },
    /// A node announcing that it is shutting down, so peers mark it down at once.
    Shutdown {
        host_id: Uuid,
        generation: i64,
    },
}

/// What one node asks of another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness probe; answered with [`Response::Ack`].
    Echo,
    /// Apply these partition updates on the replica (atomically per message).
    Write { updates: Vec<PartitionUpdate> },
    /// Read one partition's slice from the replica: the fragment, or only its digest.
    Read {
        command: ReadCommand,
        digest_only: bool,
    },
    /// Up to `limit` partitions of a table from `start`, with tokens within `end`, in
    /// storage order (partitions holding only tombstones included).
    Scan {
        table: Uuid,
        start: PartitionStart,
        end: std::ops::Bound<i64>,
        limit: u32,
    },
    /// Remove every row of a table (TRUNCATE).
    Truncate { table: Uuid },
    /// Run a lightweight transaction on this node, the partition's only replica, as its
    /// coordinator sent it.
    Cas(ForwardedCas),
    /// Keep a logged batch until its coordinator removes it (or replay it if it never does).
    BatchlogStore {
        id: Uuid,
        updates: Vec<PartitionUpdate>,
    },
    /// The batch was applied: forget it.
    BatchlogRemove { id: Uuid },
    /// Paxos prepare: promise not to accept proposals below `ballot` for the partition;
    /// answered with [`Response::Promise`].
    PaxosPrepare {
        table: Uuid,
        partition: PartitionId,
        ballot: Ballot,
    },
    /// Paxos propose: accept this proposal unless a greater ballot was promised since;
    /// answered with [`Response::Accepted`].
    PaxosPropose(Proposal),
    /// Paxos commit: apply the proposal's updates and record the commit; answered with
    /// [`Response::Ack`].
    PaxosCommit(Proposal),
    /// Anti-entropy: the replica's Merkle tree of a table's token span (every partition it
    /// stores there, read whole as of `now_secs`); answered with [`Response::Tree`].
    MerkleTree {
        layout: TableLayout,
        span: TokenSpan,
        depth: u8,
        now_secs: u32,
    },
    /// Anti-entropy: the digests of up to `limit` whole partitions of a table's token span,
    /// after `after`, in storage order; answered with [`Response::PartitionDigests`].
    PartitionDigests {
        layout: TableLayout,
        span: TokenSpan,
        after: Option<PartitionId>,
        limit: u32,
        now_secs: u32,
    },
    /// A repair of `table` that reached every replica started at `started_at` (µs since the
    /// epoch): tombstones older than that may be purged once past gc_grace. Answered with
    /// [`Response::Ack`].
    Repaired { table: Uuid, started_at: i64 },
    /// A message for the metadata log (Raft, proposals, joins), encoded by
    /// `metadata/rpc.rs`: opaque here, so this message set does not depend on openraft.
    Meta(bytes::Bytes),
    /// The node whose internode address is `address`, as the answering node's membership
    /// knows it (a node replacing a dead one asks, before it has tokens); answered with
    /// [`Response::Node`].
    DescribeNode { address: std::net::IpAddr },
}

/// What [`Request::DescribeNode`] tells of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub host_id: Uuid,
    pub tokens: Vec<i64>,
    pub data_center: String,
    pub rack: String,
    /// Its gossiped status (`NORMAL`, `LEFT`, ...).
    pub status: String,
    /// Whether the answering node's failure detector considers it up.
    pub alive: bool,
}

/// A replica read, as the coordinator plans it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadCommand {
    /// The table's key layout (id, clustering types and orders): carried so a replica whose
    /// schema lags can still read.
    pub layout: TableLayout,
    /// Whether and how the replica may serve and fill its cache (the table's policy, or Off
    /// for a traced request).
    pub caching: crate::cache::Caching,
    pub partition: PartitionId,
    pub slice: Slice,
    /// Continue after this encoded clustering key (paging, short-read protection).
    pub after: Option<bytes::Bytes>,
    pub limits: ReadLimits,
}

/// A lightweight transaction as its coordinator forwards it to the partition's replica:
/// the statements as the client sent them, to be bound and run there under the
/// partition's lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardedCas {
    pub kind: CasKind,
    pub items: Vec<CasItem>,
    pub serial: Option<crate::protocol::Consistency>,
    pub commit: crate::protocol::Consistency,
}

/// How the statements of a forwarded transaction were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CasKind {
    /// One conditional statement.
    Statement,
    /// A CQL-text BATCH (one item: the whole batch text).
    TextBatch,
    /// A BATCH message's statements.
    Items,
}

/// One statement of a forwarded transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasItem {
    pub text: String,
    pub keyspace: Option<String>,
    pub values: Vec<crate::protocol::Value>,
}

/// A successful answer.
// Decoded from a frame and consumed at once: boxing the fragment would add an allocation
// to every remote read.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Ack,
    Data {
        fragment: PartitionFragment,
        stats: ReadStats,
    },
    Digest([u8; 16]),
    Partitions(Vec<PartitionId>),
    /// A forwarded transaction's answer: a RESULT body, or an ERROR body, each in its
    /// native protocol encoding, passed to the client as they are.
    Cas(Result<bytes::Bytes, bytes::Bytes>),
    /// The metadata log's answer to a [`Request::Meta`], encoded by `metadata/rpc.rs`.
    Meta(bytes::Bytes),
    /// The answer to a [`Request::PaxosPrepare`].
    Promise(Promise),
    /// The answer to a [`Request::PaxosPropose`]: whether it was accepted.
    Accepted(bool),
    /// The answer to a [`Request::MerkleTree`].
    Tree(MerkleTree),
    /// The answer to a [`Request::PartitionDigests`].
    PartitionDigests(Vec<(PartitionId, [u8; 16])>),
    /// The answer to a [`Request::DescribeNode`]: None when no node has that address.
    Node(Option<NodeFacts>),
}

/// Why a remote node could not do what was asked: the coordinator counts it as that
/// replica's failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteError {
    /// The read passed more tombstones than the replica's failure threshold.
    #[error("Scanned over {0} tombstones during query; query aborted")]
    TombstoneOverwhelming(u64),
    /// The replica failed for another reason (storage, an unknown table, ...).
    #[error("{0}")]
    Failed(String),
}
