//! ScyllaDB or Cassandra behind the tier (design §19): with `[backend] engine = "cql"` the
//! data lives in backend nodes reached over CQL, and this node passes its clients'
//! requests through to them.
//!
//! [`Backend`] is all the tier needs of a backend: send one request body, get its answer.
//! The driver under it can so be swapped and measured; [`cdrs::CdrsBackend`] (cdrs-tokio,
//! token-aware over the backend's ring) is the one in use. [`front::Front`] runs each
//! client request in this mode: statements on the tier's own tables (`system.local`,
//! `system.peers`) here, everything else at the backend, with the client's consistency,
//! paging and timestamps, and the backend's answer passed back as it came.

pub mod cdrs;
pub mod front;

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;

use crate::protocol::frame::flags;
use crate::protocol::{Consistency, Opcode};

/// One request for the backend.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// QUERY, PREPARE, EXECUTE or BATCH.
    pub opcode: Opcode,
    /// The request body as protocol v4 encodes it.
    pub body: Vec<u8>,
    /// The client asked for a trace.
    pub tracing: bool,
    /// The keyspace the client's connection is in (`USE`): the backend connection the
    /// request goes out on must be in it too.
    pub session_keyspace: Option<String>,
    /// Where the request's partition lives, for token-aware routing: its keyspace and its
    /// routing key (the partition key, serialized as drivers do). `None`: any node.
    pub routing: Option<Routing>,
    /// The client's consistency level (local DC preference).
    pub consistency: Consistency,
    /// Sending it twice is harmless: after a connection broke mid-request, it may go to
    /// another node.
    pub idempotent: bool,
}

/// A request's partition, for token-aware routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub keyspace: String,
    pub key: Vec<u8>,
}

/// The backend's answer: a RESULT or an ERROR frame's body, with its prefixes taken off.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub opcode: Opcode,
    pub body: Bytes,
    pub tracing_id: Option<[u8; 16]>,
    pub warnings: Vec<String>,
}

/// Why a request got no answer from the backend.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// No backend node could be reached.
    #[error("no backend node could be reached: {0}")]
    Unreachable(String),
    /// The request was sent and its connection failed, or the answer could not be read.
    #[error("backend request failed: {0}")]
    Failed(String),
    /// This node refuses to open more backend sessions.
    #[error("{0}")]
    Refused(String),
}

/// What the tier needs of a CQL backend.
pub trait Backend: Send + Sync + 'static {
    /// Sends one request and waits for its answer.
    fn send(&self, request: Outgoing) -> BoxFuture<'_, Result<Incoming, BackendError>>;

    /// Sends one request to every backend node that is up, and waits for each answer:
    /// PREPARE, so every replica an EXECUTE may be routed to holds the statement, and the
    /// schema version queries of a schema agreement check.
    fn send_to_all(&self, request: Outgoing) -> BoxFuture<'_, Vec<Result<Incoming, BackendError>>>;
}

/// A RESULT the backend encoded, framed for the client as it came: `body` holds the
/// frame's whole body (tracing id and warnings first, when `flags` says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub flags: u8,
    pub body: Bytes,
}

impl Forwarded {
    /// The frame body of `incoming`'s RESULT, with its tracing id and warnings put back.
    pub fn of(incoming: &Incoming) -> Forwarded {
        if incoming.tracing_id.is_none() && incoming.warnings.is_empty() {
            return Forwarded {
                flags: 0,
                body: incoming.body.clone(),
            };
        }
        let mut frame_flags = 0;
        let mut body = BytesMut::with_capacity(incoming.body.len() + 64);
        if let Some(id) = incoming.tracing_id {
            frame_flags |= flags::TRACING;
            body.put_slice(&id);
        }
        if !incoming.warnings.is_empty() {
            frame_flags |= flags::WARNING;
            crate::protocol::wire::put_string_list(&mut body, &incoming.warnings);
        }
        body.put_slice(&incoming.body);
        Forwarded {
            flags: frame_flags,
            body: body.freeze(),
        }
    }
}
