//! The cluster as this node sees it: every node, its place on the ring, whether it is up.
//!
//! Gossip feeds it (what each node advertises) and the failure detector decides liveness;
//! the coordinator reads it on every request, as an immutable [`View`] behind an `Arc`
//! replaced whole on each change, so a request plans against one consistent picture and no
//! lock is held while it runs. Changes that drivers care about become protocol events:
//! `NEW_NODE` when a node first shows up serving, `REMOVED_NODE` when it leaves, `UP` and
//! `DOWN` as liveness flips — each carrying the node's CQL address, as drivers expect.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::gossip::{AppKey, EndpointState};
use crate::protocol::Event;
use crate::ring::{Token, TokenRing};

/// Where a node is in its life in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Serving its token ranges.
    Normal,
    /// Started to join, waiting for its turn to move ranges (the metadata log grants one
    /// movement at a time): known, but not yet a pending replica of anything.
    Waiting,
    /// Announced, not yet serving (bootstrap).
    Joining,
    /// Handing its ranges over before it leaves.
    Leaving,
    /// Gone from the cluster.
    Left,
    /// Stopped on purpose; comes back with a new generation.
    Shutdown,
    /// Nothing advertised yet.
    Unknown,
}

impl NodeStatus {
    /// Reads a gossiped status value.
    pub fn parse(value: Option<&str>) -> NodeStatus {
        match value {
            Some("NORMAL") => NodeStatus::Normal,
            Some("WAITING") => NodeStatus::Waiting,
            Some("JOINING") => NodeStatus::Joining,
            Some("LEAVING") => NodeStatus::Leaving,
            Some("LEFT") => NodeStatus::Left,
            Some("shutdown") => NodeStatus::Shutdown,
            _ => NodeStatus::Unknown,
        }
    }

    /// The gossiped form.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Normal => "NORMAL",
            NodeStatus::Waiting => "WAITING",
            NodeStatus::Joining => "JOINING",
            NodeStatus::Leaving => "LEAVING",
            NodeStatus::Left => "LEFT",
            NodeStatus::Shutdown => "shutdown",
            NodeStatus::Unknown => "UNKNOWN",
        }
    }

    /// Whether the node's tokens are on the ring (it owns ranges).
    pub fn owns_ranges(self) -> bool {
        matches!(self, NodeStatus::Normal | NodeStatus::Leaving)
    }

    /// Whether the node's tokens are on the ring once the moves in progress finish: a
    /// joining node's are, a leaving node's are not.
    pub fn will_own_ranges(self) -> bool {
        matches!(self, NodeStatus::Normal | NodeStatus::Joining)
    }
}

/// One node as advertised.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub host_id: Uuid,
    pub internode: SocketAddr,
    pub cql: Option<SocketAddr>,
    pub data_center: String,
    pub rack: String,
    pub tokens: Vec<Token>,
    pub status: NodeStatus,
    pub schema_version: Option<Uuid>,
    pub release_version: Option<String>,
    /// Bytes stored, as last advertised.
    pub load: u64,
    pub generation: i64,
    /// Whether the failure detector considers it up (always true for this node).
    pub alive: bool,
    /// The dead node this one replaces (`replace_address`), by host id.
    pub replaces: Option<Uuid>,
}

impl NodeView {
    /// The view a gossiped state gives, or None while it lacks the internode address.
    pub fn from_state(host_id: Uuid, state: &EndpointState, alive: bool) -> Option<NodeView> {
        let internode = state.get(AppKey::InternodeAddress)?.parse().ok()?;
        let tokens = state
            .get(AppKey::Tokens)
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        Some(NodeView {
            host_id,
            internode,
            cql: state.get(AppKey::CqlAddress).and_then(|a| a.parse().ok()),
            data_center: state.get(AppKey::DataCenter).unwrap_or_default().to_owned(),
            rack: state.get(AppKey::Rack).unwrap_or_default().to_owned(),
            tokens,
            status: NodeStatus::parse(state.get(AppKey::Status)),
            schema_version: state
                .get(AppKey::SchemaVersion)
                .and_then(|v| v.parse().ok()),
            release_version: state.get(AppKey::ReleaseVersion).map(str::to_owned),
            load: state
                .get(AppKey::Load)
                .and_then(|l| l.parse().ok())
                .unwrap_or(0),
            generation: state.generation,
            alive,
            replaces: state.get(AppKey::Replaces).and_then(|v| v.parse().ok()),
        })
    }
}

/// One consistent picture of the cluster.
#[derive(Debug, Clone)]
pub struct View {
    /// This node's id.
    pub local: Uuid,
    /// Every node known, this one included.
    pub nodes: BTreeMap<Uuid, NodeView>,
    /// The tokens of every node that owns ranges.
    pub ring: TokenRing<Uuid>,
    /// The ring once the moves in progress are done (joining nodes' tokens added), while a
    /// node is joining: its replicas that are not replicas on `ring` are the *pending*
    /// replicas writes also go to, so a joining node misses no write made while it streams
    /// (Cassandra's pending ranges). None when no move is in progress.
    pub pending_ring: Option<TokenRing<Uuid>>,
    /// Bumped on every change of either ring (tokens or statuses), for placement caches.
    pub ring_version: u64,
}

impl View {
    /// The node `host_id`, if known.
    pub fn node(&self, host_id: &Uuid) -> Option<&NodeView> {
        self.nodes.get(host_id)
    }

    /// This node.
    pub fn local(&self) -> &NodeView {
        &self.nodes[&self.local]
    }

    /// Whether `host_id` is up.
    pub fn is_alive(&self, host_id: &Uuid) -> bool {
        self.nodes.get(host_id).is_some_and(|n| n.alive)
    }

    /// Every node of the cluster, this one included: those that left are gone (their
    /// gossip state lingers).
    pub fn members(&self) -> impl Iterator<Item = &NodeView> {
        self.nodes.values().filter(|n| n.status != NodeStatus::Left)
    }

    /// Every node other than this one.
    pub fn peers(&self) -> impl Iterator<Item = &NodeView> {
        self.nodes.values().filter(|n| n.host_id != self.local)
    }

    /// Whether a NORMAL node replaced `host_id` (`replace_address`): then it is gone, as
    /// if it had left, whatever its own lingering gossip state says.
    pub fn is_replaced(&self, host_id: &Uuid) -> bool {
        self.nodes
            .values()
            .any(|n| n.replaces == Some(*host_id) && n.status == NodeStatus::Normal)
    }

    /// Marks every node a NORMAL node replaced as LEFT; the events that makes.
    fn settle_replacements(&mut self) -> Vec<Event> {
        let replaced: Vec<Uuid> = self
            .nodes
            .values()
            .filter(|n| n.status == NodeStatus::Normal)
            .filter_map(|n| n.replaces)
            .collect();
        let mut events = Vec::new();
        for id in replaced {
            if let Some(node) = self.nodes.get_mut(&id) {
                if node.status != NodeStatus::Left {
                    let before = node.clone();
                    node.status = NodeStatus::Left;
                    tracing::info!(host_id = %id, address = %node.internode, "node replaced: it is gone from the cluster");
                    events.extend(transition_events(Some(&before), node));
                }
            }
        }
        events
    }

    fn rebuild_ring(&mut self) {
        // A node being replaced keeps its ranges until its replacement is NORMAL; on the
        // pending ring the replacement (JOINING, same tokens) holds them instead.
        let being_replaced: std::collections::HashSet<Uuid> = self
            .nodes
            .values()
            .filter(|n| n.status == NodeStatus::Joining)
            .filter_map(|n| n.replaces)
            .collect();
        let ring_of = |owns: fn(NodeStatus) -> bool, skip: &std::collections::HashSet<Uuid>| {
            TokenRing::new(
                self.nodes
                    .values()
                    .filter(|n| owns(n.status) && !skip.contains(&n.host_id))
                    .flat_map(|n| n.tokens.iter().map(|t| (*t, n.host_id))),
            )
        };
        let ring = ring_of(NodeStatus::owns_ranges, &Default::default());
        let future = ring_of(NodeStatus::will_own_ranges, &being_replaced);
        let pending_ring = (future != ring).then_some(future);
        if ring != self.ring || pending_ring != self.pending_ring {
            self.ring = ring;
            self.pending_ring = pending_ring;
            self.ring_version += 1;
        }
    }
}

/// The live membership, shared by gossip (writer) and the coordinator (reader).
pub struct Membership {
    view: RwLock<Arc<View>>,
    events: broadcast::Sender<Event>,
    /// When each peer now down was marked down (hinted handoff's window counts from it).
    down_since: std::sync::Mutex<std::collections::HashMap<Uuid, std::time::Instant>>,
    /// Counts the changes of who owns which ranges (the current ring, not a pending one).
    ownership: watch::Sender<u64>,
}

impl Membership {
    /// Membership holding only this node, which is up.
    pub fn new(local: NodeView, events: broadcast::Sender<Event>) -> Membership {
        let mut view = View {
            local: local.host_id,
            nodes: BTreeMap::from([(local.host_id, local)]),
            ring: TokenRing::default(),
            pending_ring: None,
            ring_version: 0,
        };
        view.rebuild_ring();
        Membership {
            view: RwLock::new(Arc::new(view)),
            events,
            down_since: Default::default(),
            ownership: watch::channel(0).0,
        }
    }

    /// Changes whenever the ranges nodes own change (a node became NORMAL, or left).
    pub fn ownership_changes(&self) -> watch::Receiver<u64> {
        self.ownership.subscribe()
    }

    /// The current picture.
    pub fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes a node's advertised state (from gossip). Returns whether anything changed.
    pub fn update(&self, mut node: NodeView) -> bool {
        self.change(|view| {
            if view.is_replaced(&node.host_id) {
                node.status = NodeStatus::Left;
            }
            let before = view.nodes.get(&node.host_id).cloned();
            if before.as_ref() == Some(&node) {
                return Vec::new();
            }
            let events = transition_events(before.as_ref(), &node);
            view.nodes.insert(node.host_id, node);
            events
        })
    }

    /// Marks `host_id` up or down (the failure detector's verdict).
    pub fn set_alive(&self, host_id: Uuid, alive: bool) -> bool {
        self.change(|view| {
            let Some(node) = view.nodes.get_mut(&host_id) else {
                return Vec::new();
            };
            if node.alive == alive || host_id == view.local {
                return Vec::new();
            }
            node.alive = alive;
            let mut down_since = self.down_since.lock().expect("down since");
            match alive {
                true => down_since.remove(&host_id),
                false => down_since.insert(host_id, std::time::Instant::now()),
            };
            drop(down_since);
            tracing::info!(%host_id, address = %node.internode, alive, "peer is {}", if alive { "up" } else { "down" });
            let before = NodeView {
                alive: !alive,
                ..node.clone()
            };
            transition_events(Some(&before), node)
        })
    }

    /// How long `host_id` has been down (zero if it is up or was never marked down).
    pub fn down_for(&self, host_id: &Uuid) -> std::time::Duration {
        let down_since = self.down_since.lock().expect("down since");
        down_since
            .get(host_id)
            .map_or(std::time::Duration::ZERO, |at| at.elapsed())
    }

    /// Updates one of this node's own facts.
    pub fn update_local(&self, edit: impl FnOnce(&mut NodeView)) {
        self.change(|view| {
            let local = view.local;
            if let Some(node) = view.nodes.get_mut(&local) {
                edit(node);
            }
            Vec::new()
        });
    }

    /// Forgets a node that left.
    pub fn remove(&self, host_id: &Uuid) {
        self.change(|view| {
            let Some(node) = view.nodes.remove(host_id) else {
                return Vec::new();
            };
            node.cql
                .map(|address| Event::TopologyChange {
                    change: "REMOVED_NODE".into(),
                    address,
                })
                .into_iter()
                .collect()
        });
    }

    fn change(&self, edit: impl FnOnce(&mut View) -> Vec<Event>) -> bool {
        let mut guard = self.view.write().unwrap_or_else(|p| p.into_inner());
        let mut next = View::clone(&guard);
        let mut events = edit(&mut next);
        events.extend(next.settle_replacements());
        next.rebuild_ring();
        let changed = !events.is_empty() || next.nodes != guard.nodes;
        let owners_changed = next.ring != guard.ring;
        *guard = Arc::new(next);
        drop(guard);
        if owners_changed {
            self.ownership.send_modify(|n| *n += 1);
        }
        for event in events {
            let _ = self.events.send(event);
        }
        changed
    }
}

/// The driver events a node's change from `before` to `after` makes.
fn transition_events(before: Option<&NodeView>, after: &NodeView) -> Vec<Event> {
    let Some(address) = after.cql else {
        return Vec::new();
    };
    let mut events = Vec::new();
    let was_serving = before.is_some_and(|b| b.status.owns_ranges());
    let serving = after.status.owns_ranges();
    if serving && !was_serving {
        events.push(Event::TopologyChange {
            change: "NEW_NODE".into(),
            address,
        });
    }
    if after.status == NodeStatus::Left && before.is_some_and(|b| b.status != NodeStatus::Left) {
        events.push(Event::TopologyChange {
            change: "REMOVED_NODE".into(),
            address,
        });
    }
    if let Some(before) = before {
        if before.alive != after.alive {
            let status = if after.alive { "UP" } else { "DOWN" };
            events.push(Event::StatusChange {
                status: status.into(),
                address,
            });
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(last: u8, token: i64, status: NodeStatus, replaces: Option<Uuid>) -> NodeView {
        NodeView {
            host_id: Uuid::from_u128(last.into()),
            internode: SocketAddr::from(([127, 0, 0, last], 7000)),
            cql: Some(SocketAddr::from(([127, 0, 0, last], 9042))),
            data_center: "dc1".into(),
            rack: "r1".into(),
            tokens: vec![Token(token)],
            status,
            schema_version: None,
            release_version: None,
            load: 0,
            generation: 1,
            alive: last != 3,
            replaces,
        }
    }

    fn owner(ring: &TokenRing<Uuid>, token: i64) -> Uuid {
        *ring.owner(Token(token)).expect("an owner")
    }

    #[test]
    fn a_replacement_holds_the_dead_nodes_ranges_pending_then_owns_them() {
        let (events, mut rx) = broadcast::channel(16);
        let membership = Membership::new(node(1, 10, NodeStatus::Normal, None), events);
        membership.update(node(2, 20, NodeStatus::Normal, None));
        let dead = node(3, 30, NodeStatus::Normal, None);
        membership.update(dead.clone());
        while rx.try_recv().is_ok() {}
        let (x, r) = (Uuid::from_u128(3), Uuid::from_u128(4));

        // Joining with the dead node's token: the dead node still owns it, the replacement
        // holds it on the pending ring.
        membership.update(node(4, 30, NodeStatus::Joining, Some(x)));
        let view = membership.view();
        assert_eq!(owner(&view.ring, 30), x);
        assert_eq!(owner(view.pending_ring.as_ref().expect("pending"), 30), r);
        assert_eq!(view.members().count(), 4);

        // NORMAL: the dead node is gone, drivers are told, and its own lingering state
        // (gossip may deliver it again) does not bring it back.
        membership.update(node(4, 30, NodeStatus::Normal, Some(x)));
        let view = membership.view();
        assert_eq!(owner(&view.ring, 30), r);
        assert!(view.pending_ring.is_none());
        assert_eq!(view.node(&x).map(|n| n.status), Some(NodeStatus::Left));
        assert!(view.is_replaced(&x));
        assert_eq!(view.members().count(), 3);
        let mut seen = Vec::new();
        while let Ok(event) = rx.try_recv() {
            seen.push(event);
        }
        let removed = Event::TopologyChange {
            change: "REMOVED_NODE".into(),
            address: dead.cql.unwrap(),
        };
        assert!(seen.contains(&removed), "{seen:?}");
        membership.update(NodeView {
            generation: 2,
            ..dead
        });
        let view = membership.view();
        assert_eq!(view.node(&x).map(|n| n.status), Some(NodeStatus::Left));
        assert_eq!(owner(&view.ring, 30), r);
        assert!(
            rx.try_recv().is_err(),
            "no event for the replaced node's return"
        );
    }
}
