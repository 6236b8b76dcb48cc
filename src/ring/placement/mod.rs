//! Replica placement: which nodes hold a partition, exactly as Cassandra places replicas
//! (design §18.1).
//!
//! A keyspace's replication option becomes a [`Strategy`]. SimpleStrategy walks the ring
//! clockwise from the token's owner and takes each node not taken yet until it has RF of
//! them. NetworkTopologyStrategy walks the same ring for every data centre at once: in each
//! DC it takes first a node of every rack it has not seen, and a node of a rack already seen
//! only while the DC has fewer racks than its RF still to fill (Cassandra's
//! `acceptableRackRepeats`), until the DC has `min(RF, nodes in DC)` replicas. The first
//! replica found is the primary; the order is the walk's, which drivers reproduce.
//!
//! [`Placement`] computes the replicas of every ring range once per ring and strategy, so a
//! request pays one binary search.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::{Token, TokenRing};

/// How a keyspace replicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// RF replicas around the whole ring, racks and DCs ignored.
    Simple { replication_factor: usize },
    /// RF per data centre, racks spread.
    NetworkTopology { factors: BTreeMap<String, usize> },
    /// Only the node asked (system keyspaces): never replicated.
    Local,
}

impl Strategy {
    /// The strategy a keyspace's `replication` map names (`class` and factors, as stored).
    pub fn from_replication(replication: &BTreeMap<String, String>) -> Strategy {
        let factor = |v: &String| {
            v.split('/')
                .next()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        let class = replication.get("class").map(String::as_str).unwrap_or("");
        if class.ends_with("SimpleStrategy") {
            let replication_factor = replication.get("replication_factor").map_or(0, factor);
            return Strategy::Simple { replication_factor };
        }
        if class.ends_with("NetworkTopologyStrategy") {
            let factors = replication
                .iter()
                .filter(|(k, _)| *k != "class" && *k != "replication_factor")
                .map(|(dc, v)| (dc.clone(), factor(v)))
                .collect();
            return Strategy::NetworkTopology { factors };
        }
        Strategy::Local
    }

    /// The replication factor in each data centre, SimpleStrategy's counted in `local_dc`
    /// (it ignores DCs; on a one-DC cluster that is where its replicas are).
    pub fn factors(&self, local_dc: &str) -> BTreeMap<String, usize> {
        match self {
            Strategy::Simple { replication_factor } => {
                BTreeMap::from([(local_dc.to_owned(), *replication_factor)])
            }
            Strategy::NetworkTopology { factors } => factors.clone(),
            Strategy::Local => BTreeMap::from([(local_dc.to_owned(), 1)]),
        }
    }
}

/// Where a node is: data centre and rack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub data_center: String,
    pub rack: String,
}

/// The replicas of `token` under `strategy` on `ring`, primary first. `Local` yields none:
/// its callers answer from the node asked.
pub fn replicas_for_token(
    ring: &TokenRing<Uuid>,
    locations: &HashMap<Uuid, Location>,
    strategy: &Strategy,
    token: Token,
) -> Vec<Uuid> {
    match strategy {
        Strategy::Local => Vec::new(),
        Strategy::Simple { replication_factor } => simple(ring, token, *replication_factor),
        Strategy::NetworkTopology { factors } => network_topology(ring, locations, factors, token),
    }
}

fn simple(ring: &TokenRing<Uuid>, token: Token, rf: usize) -> Vec<Uuid> {
    let mut chosen: Vec<Uuid> = Vec::with_capacity(rf);
    for (_, node) in ring.ring_range(token) {
        if chosen.len() == rf {
            break;
        }
        if !chosen.contains(node) {
            chosen.push(*node);
        }
    }
    chosen
}

/// One data centre's progress during the walk.
struct DcFill {
    rf_left: usize,
    acceptable_rack_repeats: isize,
}

fn network_topology(
    ring: &TokenRing<Uuid>,
    locations: &HashMap<Uuid, Location>,
    factors: &BTreeMap<String, usize>,
    token: Token,
) -> Vec<Uuid> {
    let mut nodes_in: HashMap<&str, BTreeSet<Uuid>> = HashMap::new();
    let mut racks_in: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (_, node) in ring.iter() {
        if let Some(at) = locations.get(node) {
            nodes_in.entry(&at.data_center).or_default().insert(*node);
            racks_in
                .entry(&at.data_center)
                .or_default()
                .insert(&at.rack);
        }
    }
    let mut fills: HashMap<&str, DcFill> = factors
        .iter()
        .filter(|(_, rf)| **rf > 0)
        .filter_map(|(dc, rf)| {
            let nodes = nodes_in.get(dc.as_str())?.len();
            let racks = racks_in.get(dc.as_str()).map_or(0, BTreeSet::len);
            Some((
                dc.as_str(),
                DcFill {
                    rf_left: (*rf).min(nodes),
                    acceptable_rack_repeats: *rf as isize - racks as isize,
                },
            ))
        })
        .collect();
    let mut chosen: Vec<Uuid> = Vec::new();
    let mut seen_racks: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (_, node) in ring.ring_range(token) {
        if fills.values().all(|f| f.rf_left == 0) {
            break;
        }
        let Some(at) = locations.get(node) else {
            continue;
        };
        let Some(fill) = fills.get_mut(at.data_center.as_str()) else {
            continue;
        };
        if fill.rf_left == 0 || chosen.contains(node) {
            continue;
        }
        if seen_racks.insert((&at.data_center, &at.rack)) {
            chosen.push(*node);
            fill.rf_left -= 1;
        } else if fill.acceptable_rack_repeats > 0 {
            chosen.push(*node);
            fill.acceptable_rack_repeats -= 1;
            fill.rf_left -= 1;
        }
    }
    chosen
}

/// The replicas of every ring range for one strategy on one ring, computed once.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The ring's tokens in order; range `i` is `(tokens[i-1], tokens[i]]`.
    tokens: Vec<Token>,
    /// Replicas of range `i`, primary first.
    replicas: Vec<Arc<[Uuid]>>,
}

impl Placement {
    /// Places every range of `ring` under `strategy`.
    pub fn new(
        ring: &TokenRing<Uuid>,
        locations: &HashMap<Uuid, Location>,
        strategy: &Strategy,
    ) -> Placement {
        let tokens: Vec<Token> = ring.tokens().collect();
        let replicas = tokens
            .iter()
            .map(|t| replicas_for_token(ring, locations, strategy, *t).into())
            .collect();
        Placement { tokens, replicas }
    }

    /// The replicas of the range containing `token` (empty on an empty ring).
    pub fn replicas(&self, token: Token) -> &[Uuid] {
        if self.tokens.is_empty() {
            return &[];
        }
        let i = self.tokens.partition_point(|t| *t < token);
        &self.replicas[if i == self.tokens.len() { 0 } else { i }]
    }

    /// The token space in increasing order, cut at every ring token: `(start exclusive,
    /// end inclusive, replicas)`, None for the ring's minimum (start) and maximum (end). The
    /// wrapping range appears twice, as the first and the last piece.
    pub fn segments(&self) -> Vec<(Option<Token>, Option<Token>, &[Uuid])> {
        let Some(first) = self.replicas.first() else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(self.tokens.len() + 1);
        let mut start = None;
        for (token, replicas) in self.tokens.iter().zip(&self.replicas) {
            out.push((start, Some(*token), &replicas[..]));
            start = Some(*token);
        }
        out.push((start, None, &first[..]));
        out
    }

    /// Every range as `(start exclusive, end inclusive, replicas)`, in ring order; the first
    /// wraps around from the last token.
    pub fn ranges(&self) -> impl Iterator<Item = (Token, Token, &[Uuid])> {
        let last = self.tokens.last().copied();
        last.into_iter()
            .chain(self.tokens.iter().copied())
            .zip(self.tokens.iter().zip(&self.replicas))
            .map(|(start, (end, replicas))| (start, *end, &replicas[..]))
    }
}

#[cfg(test)]
mod tests;
