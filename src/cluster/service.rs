//! What a node does for its peers: the replica side of every internode request.
//!
//! Each request is answered through the same [`LocalReplica`] calls the coordinator makes
//! in-process — a write is `LocalReplica::write` (so it bumps the cache versions before it
//! is acknowledged, design §6), a read is `LocalReplica::read` (served from the cache when
//! the coordinator's policy admits it) — so a remote replica behaves exactly as a local one.
//! A digest read computes the digest of the very fragment a data read would return. Paxos
//! prepares, proposals and commits go to the replica's Paxos state (`replica/paxos.rs`), a
//! commit's updates through the same `LocalReplica::write`.
//!
//! Metadata-log messages go to the log bound with [`ReplicaService::bind_meta`]: the log
//! starts after the transport it talks over, so it is bound late, and until then those
//! requests are refused (the sender retries).

use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::future::BoxFuture;

use super::gossip::Gossiper;
use super::message::{ForwardedCas, Gossip, ReadCommand, RemoteError, Request, Response};
use super::transport::{Inbound, Peer};
use crate::replica::LocalReplica;
use crate::storage::partition::{PartitionStart, ReadError};

/// Answers peers' requests with this node's replica, and hands gossip to the gossiper.
pub struct ReplicaService {
    replica: Arc<LocalReplica>,
    gossiper: Arc<Gossiper>,
    meta: OnceLock<Arc<dyn MetaInbound>>,
    cas: OnceLock<Arc<dyn CasInbound>>,
}

/// Where this node runs the lightweight transactions other coordinators forward to it (the
/// coordinator, bound once it exists).
pub trait CasInbound: Send + Sync + 'static {
    /// Runs `cas` here; the RESULT or ERROR body in its protocol encoding.
    fn cas(&self, cas: ForwardedCas) -> BoxFuture<'static, Result<Bytes, Bytes>>;
}

/// Where this node's metadata log takes the messages peers send it.
pub trait MetaInbound: Send + Sync + 'static {
    /// Answers one encoded metadata message from `from`.
    fn request(&self, from: Peer, body: Bytes) -> BoxFuture<'static, Result<Bytes, RemoteError>>;
}

impl ReplicaService {
    pub fn new(replica: Arc<LocalReplica>, gossiper: Arc<Gossiper>) -> ReplicaService {
        ReplicaService {
            replica,
            gossiper,
            meta: OnceLock::new(),
            cas: OnceLock::new(),
        }
    }

    /// Runs forwarded transactions through `cas` from now on; false if one was bound.
    pub fn bind_cas(&self, cas: Arc<dyn CasInbound>) -> bool {
        self.cas.set(cas).is_ok()
    }

    /// Hands metadata-log messages to `meta` from now on; false if one was bound already.
    pub fn bind_meta(&self, meta: Arc<dyn MetaInbound>) -> bool {
        self.meta.set(meta).is_ok()
    }
}

/// Answers a metadata message with the log bound to `slot`, or refuses it while none is.
pub fn answer_meta(
    slot: &OnceLock<Arc<dyn MetaInbound>>,
    from: Peer,
    body: Bytes,
) -> BoxFuture<'static, Result<Response, RemoteError>> {
    let Some(meta) = slot.get() else {
        return Box::pin(async {
            Err(RemoteError::Failed(
                "the metadata log is not started on this node yet".into(),
            ))
        });
    };
    let answer = meta.request(from, body);
    Box::pin(async move { answer.await.map(Response::Meta) })
}

impl Inbound for ReplicaService {
    fn request(
        &self,
        from: Peer,
        request: Request,
    ) -> BoxFuture<'static, Result<Response, RemoteError>> {
        let request = match request {
            Request::Meta(body) => return answer_meta(&self.meta, from, body),
            Request::DescribeNode { address } => {
                let facts = describe(&self.gossiper.membership().view(), address);
                return Box::pin(async move { Ok(Response::Node(facts)) });
            }
            Request::Cas(cas) => {
                let Some(handler) = self.cas.get() else {
                    return Box::pin(async {
                        Err(RemoteError::Failed("this node is still starting".into()))
                    });
                };
                let answer = handler.cas(cas);
                return Box::pin(async move { Ok(Response::Cas(answer.await)) });
            }
            other => other,
        };
        let replica = self.replica.clone();
        Box::pin(async move { answer(&replica, request).await })
    }

    fn gossip(&self, from: Peer, message: Gossip) {
        self.gossiper.receive(from, message);
    }

    fn admit(&self, peer: &Peer) -> Result<(), String> {
        self.gossiper.admit(peer)
    }
}

/// The most partition digests one answer carries, whatever a peer asks for.
const MAX_DIGESTS: u32 = 4096;

/// Runs one request against `replica`.
pub async fn answer(replica: &LocalReplica, request: Request) -> Result<Response, RemoteError> {
    match request {
        Request::Echo => Ok(Response::Ack),
        Request::Write { updates } => replica
            .write(updates)
            .await
            .map(|()| Response::Ack)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        Request::Read {
            command,
            digest_only,
        } => read(replica, &command, digest_only).await,
        Request::Scan {
            table,
            start,
            end,
            limit,
        } => scan(replica, table, start, end, limit),
        Request::Truncate { table } => replica
            .truncate(table)
            .map(|()| Response::Ack)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        Request::BatchlogStore { id, updates } => replica
            .batchlog_store(id, &updates)
            .await
            .map(|()| Response::Ack)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        Request::BatchlogRemove { id } => replica
            .batchlog_remove(id)
            .await
            .map(|()| Response::Ack)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        Request::PaxosPrepare {
            table,
            partition,
            ballot,
        } => replica
            .paxos_prepare(table, &partition, ballot)
            .await
            .map(Response::Promise)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        Request::PaxosPropose(proposal) => replica
            .paxos_propose(&proposal)
            .await
            .map(Response::Accepted)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        Request::PaxosCommit(proposal) => replica
            .paxos_commit(&proposal)
            .await
            .map(|()| Response::Ack)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        Request::MerkleTree { span, .. } | Request::PartitionDigests { span, .. }
            if span.first > span.last =>
        {
            Err(RemoteError::Failed(format!(
                "an empty token span {}..={}",
                span.first, span.last
            )))
        }
        Request::MerkleTree {
            layout,
            span,
            depth,
            now_secs,
        } => replica
            .merkle_tree(&layout, span, depth, now_secs)
            .await
            .map(Response::Tree)
            .map_err(read_error),
        Request::PartitionDigests {
            layout,
            span,
            after,
            limit,
            now_secs,
        } => replica
            .partition_digests(&layout, span, after, limit.min(MAX_DIGESTS), now_secs)
            .await
            .map(Response::PartitionDigests)
            .map_err(read_error),
        Request::Repaired { table, started_at } => replica
            .record_repair(table, started_at)
            .await
            .map(|()| Response::Ack)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        Request::Meta(_) | Request::Cas(_) | Request::DescribeNode { .. } => {
            Err(RemoteError::Failed("not a replica request".into()))
        }
    }
}

/// The node listening (internode) on `address` in `view`; of several (a replaced node and
/// its replacement at the same address), one that has not left.
fn describe(
    view: &crate::cluster::membership::View,
    address: std::net::IpAddr,
) -> Option<crate::cluster::message::NodeFacts> {
    use crate::cluster::membership::NodeStatus;
    let node = view
        .nodes
        .values()
        .filter(|n| n.internode.ip() == address)
        .max_by_key(|n| n.status != NodeStatus::Left)?;
    Some(crate::cluster::message::NodeFacts {
        host_id: node.host_id,
        tokens: node.tokens.iter().map(|t| t.0).collect(),
        data_center: node.data_center.clone(),
        rack: node.rack.clone(),
        status: node.status.as_str().to_owned(),
        alive: node.alive,
    })
}

async fn read(
    replica: &LocalReplica,
    command: &ReadCommand,
    digest_only: bool,
) -> Result<Response, RemoteError> {
    let served = replica
        .read(
            &command.layout,
            command.caching,
            &command.partition,
            &command.slice,
            command.after.as_deref(),
            &command.limits,
        )
        .await
        .map_err(read_error)?;
    Ok(if digest_only {
        Response::Digest(served.digest())
    } else {
        Response::Data {
            stats: served.stats(),
            fragment: served.into_fragment(),
        }
    })
}

fn scan(
    replica: &LocalReplica,
    table: uuid::Uuid,
    mut start: PartitionStart,
    end: Bound<i64>,
    limit: u32,
) -> Result<Response, RemoteError> {
    let mut found = Vec::new();
    while found.len() < limit as usize {
        match replica
            .next_partition(table, &start, end)
            .map_err(read_error)?
        {
            Some(next) => {
                start = PartitionStart::After(next.clone());
                found.push(next);
            }
            None => break,
        }
    }
    Ok(Response::Partitions(found))
}

fn read_error(error: ReadError) -> RemoteError {
    match error {
        ReadError::TombstoneOverwhelming { tombstones } => {
            RemoteError::TombstoneOverwhelming(tombstones as u64)
        }
        other => RemoteError::Failed(other.to_string()),
    }
}
