//! Who owns how much of the token space, as `ringcache status` shows it (Cassandra's
//! `nodetool status` "Owns" column).
//!
//! Raw ownership is the share of the ring each node's tokens end: range `(previous token,
//! T]` belongs to T's node. Effective ownership is placement-aware: every range counts for
//! each of its replicas under a keyspace's strategy, so over all nodes it sums to the
//! keyspace's total replication factor (capped by the nodes there are). Both come from the
//! same [`Placement`] the read and write paths use, so what the status shows is what
//! requests do.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{strategy, Replication};
use crate::ring::{Placement, Strategy, Token};
use crate::schema::{Catalog, KeyspaceDef};

/// Ownership as a status report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ownership {
    /// Fraction of the token space (0..=1) per node; effective when `effective`.
    pub by_node: BTreeMap<Uuid, f64>,
    /// Whether the figures are effective (placement-aware) ownership.
    pub effective: bool,
    /// Why raw ownership is shown instead, as Cassandra words it.
    pub note: Option<String>,
}

/// Why no ownership could be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    #[error("The keyspace {0}, does not exist")]
    UnknownKeyspace(String),
}

/// The token space's size, 2^64.
const RING: f64 = 18_446_744_073_709_551_616.0;

/// The share of the ring range `(start, end]` covers; a ring of one token is all of it.
fn width(start: Token, end: Token) -> f64 {
    let span = end.0.wrapping_sub(start.0) as u64;
    if span == 0 {
        1.0
    } else {
        span as f64 / RING
    }
}

/// Raw and effective ownership over one placement: each range's share to each replica
/// (to the primary alone when `primary_only`).
fn shares(placement: &Placement, primary_only: bool) -> BTreeMap<Uuid, f64> {
    let mut owned = BTreeMap::new();
    for (start, end, replicas) in placement.ranges() {
        let share = width(start, end);
        let take = if primary_only { 1 } else { replicas.len() };
        for host in replicas.iter().take(take) {
            *owned.entry(*host).or_insert(0.0) += share;
        }
    }
    owned
}

impl Replication {
    /// Effective ownership of `keyspace`: per node, the share of the token space it holds a
    /// replica of. Sums to the keyspace's replication factor over the ring's nodes.
    pub fn effective_ownership(&self, keyspace: &KeyspaceDef) -> BTreeMap<Uuid, f64> {
        let view = self.view();
        let strategy = strategy(keyspace);
        if strategy == Strategy::Local {
            return BTreeMap::from([(view.local, 1.0)]);
        }
        shares(&self.placement(&view, &strategy, false), false)
    }

    /// Raw token ownership: per node, the share of the ring its tokens end.
    pub fn token_ownership(&self) -> BTreeMap<Uuid, f64> {
        let view = self.view();
        let simple = Strategy::Simple {
            replication_factor: 1,
        };
        shares(&self.placement(&view, &simple, false), true)
    }

    /// What `ringcache status [keyspace]` shows: effective ownership of `keyspace`; without
    /// one, effective ownership when every user keyspace replicates the same way, else raw
    /// token ownership with Cassandra's note.
    pub fn ownership(
        &self,
        catalog: &Catalog,
        keyspace: Option<&str>,
    ) -> Result<Ownership, OwnershipError> {
        let raw = |note: &str| Ownership {
            by_node: self.token_ownership(),
            effective: false,
            note: Some(note.to_owned()),
        };
        let chosen = match keyspace {
            Some(name) => catalog
                .keyspace(name)
                .ok_or_else(|| OwnershipError::UnknownKeyspace(name.to_owned()))?,
            None => {
                let mut user = catalog.user_keyspaces();
                let Some(first) = user.next() else {
                    return Ok(raw(NO_USER_KEYSPACE));
                };
                if user.any(|k| strategy(k) != strategy(first)) {
                    return Ok(raw(DIFFERENT_REPLICATION));
                }
                first
            }
        };
        if strategy(chosen) == Strategy::Local {
            return Ok(raw(LOCAL_STRATEGY));
        }
        Ok(Ownership {
            by_node: self.effective_ownership(chosen),
            effective: true,
            note: None,
        })
    }
}

const DIFFERENT_REPLICATION: &str =
    "Non-system keyspaces don't have the same replication settings, effective ownership information is meaningless";
const NO_USER_KEYSPACE: &str =
    "Ownership information does not include topology; for complete information, specify a keyspace";
const LOCAL_STRATEGY: &str = "Ownership values for keyspaces with LocalStrategy are meaningless";

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::ring::{Location, TokenRing};

    fn ring(nodes: usize, tokens_each: usize) -> (TokenRing<Uuid>, HashMap<Uuid, Location>) {
        let ids: Vec<Uuid> = (0..nodes).map(|i| Uuid::from_u128(i as u128 + 1)).collect();
        let mut entries = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for id in &ids {
            for _ in 0..tokens_each {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                entries.push((Token(seed as i64), *id));
            }
        }
        let location = Location {
            data_center: "datacenter1".into(),
            rack: "rack1".into(),
        };
        let locations = ids.iter().map(|id| (*id, location.clone())).collect();
        (TokenRing::new(entries), locations)
    }

    #[test]
    fn raw_ownership_sums_to_one_and_effective_to_the_replication_factor() {
        let (ring, locations) = ring(3, 16);
        for rf in 1..=4usize {
            let strategy = Strategy::Simple {
                replication_factor: rf,
            };
            let placement = Placement::new(&ring, &locations, &strategy);
            let effective: f64 = shares(&placement, false).values().sum();
            assert!(
                (effective - rf.min(3) as f64).abs() < 1e-9,
                "rf {rf}: {effective}"
            );
            let raw = shares(&placement, true);
            assert!((raw.values().sum::<f64>() - 1.0).abs() < 1e-9);
            if rf >= 3 {
                assert!(shares(&placement, false)
                    .values()
                    .all(|o| (o - 1.0).abs() < 1e-9));
            }
        }
    }

    #[test]
    fn one_token_owns_the_whole_ring() {
        let (ring, locations) = ring(1, 1);
        let strategy = Strategy::Simple {
            replication_factor: 1,
        };
        let placement = Placement::new(&ring, &locations, &strategy);
        assert_eq!(
            shares(&placement, true)
                .values()
                .copied()
                .collect::<Vec<_>>(),
            [1.0]
        );
    }
}
