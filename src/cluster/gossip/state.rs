//! What gossip spreads, and the rules for merging it: plain types, no I/O.
//!
//! Every node owns one [`EndpointState`]: a heartbeat `(generation, version)` and a map of
//! application states (status, tokens, data centre, addresses, schema version, load), each
//! value stamped with a version. Generation is the node's start time, persisted and bumped
//! at each start, so a restarted node's state replaces everything known of its previous
//! life; versions come from one counter per generation, bumped by every heartbeat and every
//! change, so "newer" is one comparison. A [`Digest`] — host id, generation, highest
//! version — is all a node needs to say what it knows; the exchange then moves only the
//! states one side has newer than the other (Cassandra's SYN / ACK / ACK2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An endpoint's state in one line: who, which life, how far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub host_id: Uuid,
    pub generation: i64,
    pub max_version: u64,
}

/// The application states a node advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AppKey {
    /// `ip:port` of the internode listener.
    InternodeAddress,
    /// `ip:port` clients reach the node's CQL server at.
    CqlAddress,
    DataCenter,
    Rack,
    /// The node's tokens, space-separated decimal.
    Tokens,
    /// `NORMAL`, `JOINING`, `LEAVING`, `LEFT`, `shutdown`.
    Status,
    /// The schema version the node has applied (a UUID).
    SchemaVersion,
    ReleaseVersion,
    /// Bytes of data the node stores (decimal).
    Load,
    /// The host id of the dead node this one replaces (`replace_address`): its tokens are
    /// this node's, and once this node is NORMAL that node is gone from the cluster.
    Replaces,
}

/// One application state's value and the version it was set at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: String,
    pub version: u64,
}

/// Everything known of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointState {
    pub generation: i64,
    /// The heartbeat's version (from the same counter as the states').
    pub heartbeat: u64,
    pub states: BTreeMap<AppKey, Versioned>,
}

/// The part of an endpoint's state newer than some version, as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDelta {
    pub host_id: Uuid,
    pub generation: i64,
    pub heartbeat: u64,
    pub states: Vec<(AppKey, Versioned)>,
}

/// What applying a delta changed, for membership and the failure detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// First state ever heard of this endpoint.
    Discovered(Uuid),
    /// A newer generation: the endpoint restarted.
    Restarted(Uuid),
    /// Same life, newer heartbeat and/or states.
    Advanced { host_id: Uuid, states_changed: bool },
}

impl EndpointState {
    /// A fresh state for a life starting at `generation`.
    pub fn new(generation: i64) -> EndpointState {
        EndpointState {
            generation,
            heartbeat: 0,
            states: BTreeMap::new(),
        }
    }

    /// The highest version of anything in this state.
    pub fn max_version(&self) -> u64 {
        self.states
            .values()
            .map(|v| v.version)
            .fold(self.heartbeat, u64::max)
    }

    /// A state's value.
    pub fn get(&self, key: AppKey) -> Option<&str> {
        self.states.get(&key).map(|v| v.value.as_str())
    }

    fn delta(&self, host_id: Uuid, since: u64) -> EndpointDelta {
        EndpointDelta {
            host_id,
            generation: self.generation,
            heartbeat: self.heartbeat,
            states: self
                .states
                .iter()
                .filter(|(_, v)| v.version > since)
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
        }
    }
}

/// Every endpoint this node knows, its own included.
#[derive(Debug, Clone)]
pub struct GossipState {
    local: Uuid,
    endpoints: BTreeMap<Uuid, EndpointState>,
}

impl GossipState {
    /// A node's view at start: only itself, in life `generation`.
    pub fn new(local: Uuid, generation: i64) -> GossipState {
        GossipState {
            local,
            endpoints: BTreeMap::from([(local, EndpointState::new(generation))]),
        }
    }

    /// This node's id.
    pub fn local_id(&self) -> Uuid {
        self.local
    }

    /// One endpoint's state.
    pub fn endpoint(&self, host_id: &Uuid) -> Option<&EndpointState> {
        self.endpoints.get(host_id)
    }

    /// Every endpoint's state.
    pub fn endpoints(&self) -> impl Iterator<Item = (&Uuid, &EndpointState)> {
        self.endpoints.iter()
    }

    fn local_mut(&mut self) -> &mut EndpointState {
        self.endpoints
            .get_mut(&self.local)
            .expect("the local endpoint")
    }

    /// Bumps this node's heartbeat (once per gossip round).
    pub fn beat(&mut self) {
        let local = self.local_mut();
        local.heartbeat = local.max_version() + 1;
    }

    /// Sets one of this node's states; a value equal to the current one changes nothing.
    pub fn set_local(&mut self, key: AppKey, value: String) {
        let local = self.local_mut();
        if local.get(key) == Some(value.as_str()) {
            return;
        }
        let version = local.max_version() + 1;
        local.states.insert(key, Versioned { value, version });
    }

    /// The digests of every endpoint known, this node's first.
    pub fn digests(&self) -> Vec<Digest> {
        let local = self.endpoints.get_key_value(&self.local);
        let others = self.endpoints.iter().filter(|(id, _)| **id != self.local);
        local
            .into_iter()
            .chain(others)
            .map(|(id, state)| Digest {
                host_id: *id,
                generation: state.generation,
                max_version: state.max_version(),
            })
            .collect()
    }

    /// The answer to a SYN carrying `digests`: the deltas the sender lacks, and digests of
    /// what this node lacks (its own version in each, 0 for nothing).
    pub fn answer_syn(&self, digests: &[Digest]) -> (Vec<EndpointDelta>, Vec<Digest>) {
        let mut deltas = Vec::new();
        let mut requests = Vec::new();
        for digest in digests {
            let want = |since| Digest {
                max_version: since,
                ..*digest
            };
            match self.endpoints.get(&digest.host_id) {
                None => requests.push(want(0)),
                Some(local) if local.generation < digest.generation => requests.push(want(0)),
                Some(local) if local.generation > digest.generation => {
                    deltas.push(local.delta(digest.host_id, 0))
                }
                Some(local) => {
                    let mine = local.max_version();
                    if mine < digest.max_version {
                        requests.push(want(mine));
                    } else if mine > digest.max_version {
                        deltas.push(local.delta(digest.host_id, digest.max_version));
                    }
                }
            }
        }
        for (id, state) in &self.endpoints {
            if !digests.iter().any(|d| d.host_id == *id) {
                deltas.push(state.delta(*id, 0));
            }
        }
        (deltas, requests)
    }

    /// The deltas asked for by `requests` (an ACK's, answered in ACK2).
    pub fn deltas_for(&self, requests: &[Digest]) -> Vec<EndpointDelta> {
        requests
            .iter()
            .filter_map(|r| {
                let local = self.endpoints.get(&r.host_id)?;
                match local.generation.cmp(&r.generation) {
                    std::cmp::Ordering::Greater => Some(local.delta(r.host_id, 0)),
                    std::cmp::Ordering::Equal => Some(local.delta(r.host_id, r.max_version)),
                    std::cmp::Ordering::Less => None,
                }
            })
            .collect()
    }

    /// Merges deltas received from a peer. Nothing about this node itself is taken from
    /// others; a delta about it with a newer generation means another process claims this
    /// node's host id, which is reported as a conflict.
    pub fn apply(&mut self, deltas: Vec<EndpointDelta>) -> (Vec<Change>, Vec<Uuid>) {
        let mut changes = Vec::new();
        let mut conflicts = Vec::new();
        for delta in deltas {
            if delta.host_id == self.local {
                if delta.generation > self.local_mut().generation {
                    conflicts.push(delta.host_id);
                }
                continue;
            }
            if let Some(change) = self.merge(delta) {
                changes.push(change);
            }
        }
        (changes, conflicts)
    }

    fn merge(&mut self, delta: EndpointDelta) -> Option<Change> {
        let host_id = delta.host_id;
        let fresh = || EndpointState {
            generation: delta.generation,
            heartbeat: delta.heartbeat,
            states: delta.states.iter().cloned().collect(),
        };
        let Some(known) = self.endpoints.get_mut(&host_id) else {
            self.endpoints.insert(host_id, fresh());
            return Some(Change::Discovered(host_id));
        };
        if delta.generation > known.generation {
            *known = fresh();
            return Some(Change::Restarted(host_id));
        }
        if delta.generation < known.generation {
            return None;
        }
        let mut advanced = false;
        let mut states_changed = false;
        if delta.heartbeat > known.heartbeat {
            known.heartbeat = delta.heartbeat;
            advanced = true;
        }
        for (key, value) in delta.states {
            let newer = known
                .states
                .get(&key)
                .is_none_or(|v| v.version < value.version);
            if newer {
                known.states.insert(key, value);
                states_changed = true;
            }
        }
        (advanced || states_changed).then_some(Change::Advanced {
            host_id,
            states_changed,
        })
    }

    /// Forgets an endpoint (a node that left the cluster).
    pub fn remove(&mut self, host_id: &Uuid) {
        if *host_id != self.local {
            self.endpoints.remove(host_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    /// One full SYN/ACK/ACK2 exchange initiated by `a` towards `b`.
    fn exchange(a: &mut GossipState, b: &mut GossipState) {
        let (deltas, requests) = b.answer_syn(&a.digests());
        a.apply(deltas);
        let back = a.deltas_for(&requests);
        b.apply(back);
    }

    fn node(n: u8, generation: i64) -> GossipState {
        let mut state = GossipState::new(id(n), generation);
        state.set_local(AppKey::Status, "NORMAL".into());
        state.set_local(AppKey::Tokens, format!("{n}"));
        state
    }

    #[test]
    fn one_exchange_makes_two_nodes_agree() {
        let (mut a, mut b) = (node(1, 100), node(2, 200));
        exchange(&mut a, &mut b);
        assert_eq!(a.digests().len(), 2);
        assert_eq!(a.endpoint(&id(2)), b.endpoint(&id(2)));
        assert_eq!(a.endpoint(&id(1)), b.endpoint(&id(1)));
    }

    #[test]
    fn only_newer_states_travel_and_heartbeats_advance() {
        let (mut a, mut b) = (node(1, 100), node(2, 200));
        exchange(&mut a, &mut b);
        a.beat();
        a.set_local(AppKey::SchemaVersion, "v2".into());
        let (deltas, requests) = a.answer_syn(&b.digests());
        assert!(requests.is_empty());
        assert_eq!(deltas.len(), 1, "only a's own state is newer");
        assert_eq!(deltas[0].states.len(), 1, "only the changed state travels");
        let (changes, _) = b.apply(deltas);
        assert_eq!(
            changes,
            [Change::Advanced {
                host_id: id(1),
                states_changed: true
            }]
        );
        assert_eq!(
            b.endpoint(&id(1)).unwrap().get(AppKey::SchemaVersion),
            Some("v2")
        );
    }

    #[test]
    fn a_newer_generation_replaces_everything_and_an_older_one_is_ignored() {
        let (mut a, mut b) = (node(1, 100), node(2, 200));
        exchange(&mut a, &mut b);
        let mut restarted = GossipState::new(id(1), 101);
        restarted.set_local(AppKey::Status, "NORMAL".into());
        let (deltas, _) = restarted.answer_syn(&[]);
        let (changes, _) = b.apply(deltas);
        assert!(changes.contains(&Change::Restarted(id(1))));
        let seen = b.endpoint(&id(1)).unwrap();
        assert_eq!((seen.generation, seen.get(AppKey::Tokens)), (101, None));
        let (stale, _) = a.answer_syn(&[]);
        let (changes, _) = b.apply(stale);
        assert!(!changes.iter().any(|c| matches!(c, Change::Restarted(_))));
        assert_eq!(b.endpoint(&id(1)).unwrap().generation, 101);
    }

    #[test]
    fn state_spreads_through_a_third_node() {
        let (mut a, mut b, mut c) = (node(1, 1), node(2, 2), node(3, 3));
        exchange(&mut a, &mut b);
        exchange(&mut c, &mut b);
        assert_eq!(c.digests().len(), 3, "c learned of a through b");
        exchange(&mut a, &mut b);
        assert_eq!(a.endpoint(&id(3)), c.endpoint(&id(3)));
    }

    #[test]
    fn nobody_else_speaks_for_this_node() {
        let mut a = node(1, 100);
        let mut impostor = node(1, 500);
        impostor.set_local(AppKey::Tokens, "666".into());
        let (deltas, _) = impostor.answer_syn(&[]);
        let (changes, conflicts) = a.apply(deltas);
        assert!(changes.is_empty());
        assert_eq!(conflicts, [id(1)]);
        assert_eq!(a.endpoint(&id(1)).unwrap().get(AppKey::Tokens), Some("1"));
    }
}
