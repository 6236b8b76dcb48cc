//! Peers' messages to this node's log: Raft's own, proposals and joins.

use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use super::rpc::{self, MetaRequest, MetaResponse};
use super::MetadataLog;
use crate::cluster::message::RemoteError;
use crate::cluster::service::MetaInbound;
use crate::cluster::transport::Peer;

/// The transport service's handle on the log: weak, so a stopped log is dropped (and its
/// store closed) even while connections that could reach it are still open.
pub(super) struct Inbound {
    log: Weak<MetadataLog>,
}

impl Inbound {
    pub(super) fn new(log: Weak<MetadataLog>) -> Inbound {
        Inbound { log }
    }
}

impl MetaInbound for Inbound {
    fn request(&self, from: Peer, body: Bytes) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
        let log = self.log.upgrade();
        Box::pin(async move {
            let log =
                log.ok_or_else(|| RemoteError::Failed("the metadata log is stopped".into()))?;
            let request: MetaRequest = rpc::decode(&body).map_err(RemoteError::Failed)?;
            log.contacts.heard(from.host_id);
            let response = log.answer(request).await;
            rpc::encode(&response).map_err(RemoteError::Failed)
        })
    }
}

impl MetadataLog {
    async fn answer(&self, request: MetaRequest) -> MetaResponse {
        match request {
            MetaRequest::AppendEntries(r) => {
                MetaResponse::AppendEntries(self.raft.append_entries(r).await)
            }
            MetaRequest::Vote(r) => MetaResponse::Vote(self.raft.vote(r).await),
            MetaRequest::InstallSnapshot(r) => {
                MetaResponse::InstallSnapshot(self.raft.install_snapshot(r).await)
            }
            MetaRequest::Propose {
                command,
                timeout_ms,
            } => {
                let timeout = peer_timeout(timeout_ms);
                MetaResponse::Propose(self.commit_for_peer(command, timeout).await)
            }
            MetaRequest::Join {
                host_id,
                addr,
                timeout_ms,
                forwarded,
            } => {
                let timeout = peer_timeout(timeout_ms);
                MetaResponse::Join(self.admit(host_id, addr, timeout, forwarded).await)
            }
            MetaRequest::Leave {
                host_id,
                timeout_ms,
                forwarded,
            } => {
                let timeout = peer_timeout(timeout_ms);
                MetaResponse::Leave(self.remove(host_id, timeout, forwarded).await)
            }
        }
    }
}

/// A peer's timeout, bounded: a request never holds this node's resources for long.
fn peer_timeout(ms: u64) -> Duration {
    Duration::from_millis(ms.min(60_000))
}
