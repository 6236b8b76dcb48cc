//! Internode traffic per peer, for `/metrics`: messages and bytes each way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

/// Traffic with one peer since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerTraffic {
    pub messages_sent: u64,
    pub bytes_sent: u64,
    /// Reads of the peer's connections that returned data (not frames: a read may hold
    /// several).
    pub reads: u64,
    pub bytes_received: u64,
    /// Messages decoded from the peer's connections (cut links' included: they arrive
    /// before the fault seam drops them).
    pub messages_received: u64,
}

/// Counters by peer address. One short lock per message: internode traffic is a few
/// messages per request, far from contended at this scale.
#[derive(Debug, Default)]
pub struct TransportStats {
    peers: Mutex<BTreeMap<SocketAddr, PeerTraffic>>,
}

impl TransportStats {
    pub(super) fn sent(&self, to: SocketAddr, bytes: usize) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let traffic = peers.entry(to).or_default();
        traffic.messages_sent += 1;
        traffic.bytes_sent += bytes as u64;
    }

    pub(super) fn received(&self, from: SocketAddr, bytes: usize) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let traffic = peers.entry(from).or_default();
        traffic.reads += 1;
        traffic.bytes_received += bytes as u64;
    }

    pub(super) fn decoded(&self, from: SocketAddr) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.entry(from).or_default().messages_received += 1;
    }

    /// Every peer's counters.
    pub fn snapshot(&self) -> Vec<(SocketAddr, PeerTraffic)> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.iter().map(|(a, t)| (*a, *t)).collect()
    }
}
