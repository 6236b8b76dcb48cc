//! The transport's test seam: faults on the link between this node and chosen peers.
//!
//! Every message this node sends and every message it receives passes [`LinkFaults`] first,
//! keyed by the peer's IP address (every node of a test cluster has its own loopback
//! address). A cut link drops messages both ways and refuses new connections, as a network
//! partition would — requests across it time out rather than fail fast, exactly what a
//! coordinator must cope with. A delayed link holds each outgoing message for a while.
//! Cutting both directions of a link takes a call on each of its two nodes.
//!
//! Tests reach the seam of a running node through its metrics port (`POST /faults/...`,
//! only when `[faults] link_control` is on); in-process tests call it directly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::Duration;

/// What is wrong with the link to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFault {
    /// Nothing passes either way.
    Cut,
    /// Each outgoing message waits this long.
    Delay(Duration),
}

/// The faults in force, by peer address. Empty (and one uncontended read lock per message)
/// unless a test put something there.
#[derive(Debug, Default)]
pub struct LinkFaults {
    links: RwLock<HashMap<IpAddr, LinkFault>>,
}

impl LinkFaults {
    /// Sets the fault on the link to `peer`.
    pub fn set(&self, peer: IpAddr, fault: LinkFault) {
        tracing::warn!(%peer, ?fault, "fault injected on the internode link");
        self.write().insert(peer, fault);
    }

    /// Heals the link to `peer`, or every link when `peer` is None.
    pub fn heal(&self, peer: Option<IpAddr>) {
        tracing::warn!(?peer, "internode link healed");
        match peer {
            Some(peer) => {
                self.write().remove(&peer);
            }
            None => self.write().clear(),
        }
    }

    /// Whether the link to `peer` is cut.
    pub fn is_cut(&self, peer: IpAddr) -> bool {
        self.get(peer) == Some(LinkFault::Cut)
    }

    /// The delay on the link to `peer`, if any.
    pub fn delay(&self, peer: IpAddr) -> Option<Duration> {
        match self.get(peer) {
            Some(LinkFault::Delay(d)) => Some(d),
            _ => None,
        }
    }

    fn get(&self, peer: IpAddr) -> Option<LinkFault> {
        let links = self.links.read().unwrap_or_else(|p| p.into_inner());
        if links.is_empty() {
            return None;
        }
        links.get(&peer).copied()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<IpAddr, LinkFault>> {
        self.links.write().unwrap_or_else(|p| p.into_inner())
    }
}
