//! Consistency levels: how many replicas a statement needs and whether that many are alive.
//!
//! The counts are Cassandra's (`ConsistencyLevel.blockFor`, design §18.2):
//! QUORUM is ⌊N/2⌋+1 of the replication factors summed over data centres, LOCAL_* count the
//! coordinator's data centre only, EACH_QUORUM needs a quorum in every data centre. The
//! replicas a partition has are those the strategy can place on the nodes that exist — on a
//! one-node cluster at most one — so RF 3 at QUORUM on one node is Unavailable (required 2,
//! alive 1), exactly what Cassandra answers, rather than a silent downgrade.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::protocol::Consistency;
use crate::schema::KeyspaceDef;

/// Whether a statement reads or writes (some levels are valid for one only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

/// The topology a check runs against: nodes per data centre, and the coordinator's.
pub(super) struct Topology<'a> {
    /// Live nodes in each data centre.
    pub live_nodes: &'a BTreeMap<String, usize>,
    /// The coordinator's data centre (LOCAL_* levels count only it).
    pub local_dc: &'a str,
}

/// Fails with Invalid for a level the statement kind cannot use, or Unavailable when fewer
/// replicas are alive than `consistency` requires in `keyspace`.
pub(super) fn check(
    consistency: Consistency,
    access: Access,
    keyspace: &KeyspaceDef,
    topology: &Topology<'_>,
) -> Result<()> {
    use Consistency as C;
    match (consistency, access) {
        (C::Any, Access::Read) => {
            return Err(Error::invalid(
                "ANY ConsistencyLevel is only supported for writes",
            ))
        }
        (C::Serial | C::LocalSerial, Access::Write) => {
            return Err(Error::invalid(
                "You must use conditional updates for serializable writes",
            ))
        }
        _ => {}
    }
    if keyspace.is_system() {
        // System keyspaces are node-local here: always answered by this node.
        return Ok(());
    }
    let factors = replication_factors(keyspace, topology.local_dc);
    let replicas = |dc: &str, rf: usize| rf.min(topology.live_nodes.get(dc).copied().unwrap_or(0));
    let total_rf: usize = factors.values().sum();
    // SimpleStrategy places its replicas around the whole ring, every data centre's nodes
    // included: its factor is counted in the local DC, but its live replicas are anywhere.
    let total_live: usize = if is_simple(keyspace) {
        total_rf.min(topology.live_nodes.values().sum())
    } else {
        factors.iter().map(|(dc, rf)| replicas(dc, *rf)).sum()
    };
    let local_rf = factors.get(topology.local_dc).copied().unwrap_or(0);
    let local_live = replicas(topology.local_dc, local_rf);
    let quorum = |n: usize| n / 2 + 1;
    let need = |required: usize, alive: usize| {
        if alive < required {
            Err(Error::Unavailable {
                consistency,
                required: required as i32,
                alive: alive as i32,
            })
        } else {
            Ok(())
        }
    };
    match consistency {
        // A hint stored on the coordinator is enough for ANY.
        C::Any => Ok(()),
        C::One => need(1, total_live),
        C::Two => need(2, total_live),
        C::Three => need(3, total_live),
        C::Quorum | C::Serial => need(quorum(total_rf), total_live),
        C::All => need(total_rf, total_live),
        C::LocalOne => need(1, local_live),
        C::LocalQuorum | C::LocalSerial => need(quorum(local_rf), local_live),
        C::EachQuorum if is_simple(keyspace) => need(quorum(total_rf), total_live),
        C::EachQuorum => factors
            .iter()
            .try_for_each(|(dc, rf)| need(quorum(*rf), replicas(dc, *rf))),
    }
}

fn is_simple(keyspace: &KeyspaceDef) -> bool {
    keyspace
        .replication
        .get("class")
        .is_some_and(|c| c.ends_with("SimpleStrategy"))
}

/// Replication factor per data centre. SimpleStrategy places its replicas around the whole
/// ring whatever their data centres; its factor is counted in the local one (what LOCAL_*
/// levels use, as Cassandra does).
fn replication_factors(keyspace: &KeyspaceDef, local_dc: &str) -> BTreeMap<String, usize> {
    let parse = |v: &String| {
        v.split('/')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    if is_simple(keyspace) {
        let rf = keyspace
            .replication
            .get("replication_factor")
            .map_or(0, parse);
        return BTreeMap::from([(local_dc.to_owned(), rf)]);
    }
    keyspace
        .replication
        .iter()
        .filter(|(k, _)| k.as_str() != "class" && k.as_str() != "replication_factor")
        .map(|(dc, v)| (dc.clone(), parse(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::KeyspaceKind;

    fn keyspace(replication: &[(&str, &str)]) -> KeyspaceDef {
        KeyspaceDef {
            name: "ks".into(),
            replication: replication
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            durable_writes: true,
            tables: BTreeMap::new(),
            types: BTreeMap::new(),
            tablets: None,
            kind: KeyspaceKind::User,
        }
    }

    fn simple(rf: &str) -> KeyspaceDef {
        keyspace(&[
            ("class", "org.apache.cassandra.locator.SimpleStrategy"),
            ("replication_factor", rf),
        ])
    }

    fn run(cl: Consistency, access: Access, ks: &KeyspaceDef) -> Result<()> {
        let live = BTreeMap::from([("dc1".to_owned(), 1)]);
        let topology = Topology {
            live_nodes: &live,
            local_dc: "dc1",
        };
        check(cl, access, ks, &topology)
    }

    fn unavailable(result: Result<()>) -> Option<(i32, i32)> {
        match result {
            Err(Error::Unavailable {
                required, alive, ..
            }) => Some((required, alive)),
            _ => None,
        }
    }

    #[test]
    fn one_node_serves_rf_1_at_every_level() {
        use Consistency as C;
        for cl in [
            C::One,
            C::Quorum,
            C::All,
            C::LocalOne,
            C::LocalQuorum,
            C::EachQuorum,
        ] {
            assert!(run(cl, Access::Read, &simple("1")).is_ok(), "{cl:?}");
            assert!(run(cl, Access::Write, &simple("1")).is_ok(), "{cl:?}");
        }
    }

    #[test]
    fn rf_3_on_one_node_needs_what_cassandra_needs() {
        use Consistency as C;
        let ks = simple("3");
        assert!(run(C::One, Access::Read, &ks).is_ok());
        assert_eq!(unavailable(run(C::Quorum, Access::Read, &ks)), Some((2, 1)));
        assert_eq!(unavailable(run(C::All, Access::Write, &ks)), Some((3, 1)));
        assert_eq!(unavailable(run(C::Two, Access::Write, &ks)), Some((2, 1)));
        assert_eq!(
            unavailable(run(C::LocalQuorum, Access::Read, &ks)),
            Some((2, 1))
        );
    }

    #[test]
    fn network_topology_counts_data_centres() {
        use Consistency as C;
        let ks = keyspace(&[
            (
                "class",
                "org.apache.cassandra.locator.NetworkTopologyStrategy",
            ),
            ("dc1", "1"),
            ("dc2", "2"),
        ]);
        assert!(run(C::LocalQuorum, Access::Read, &ks).is_ok());
        assert!(run(C::One, Access::Read, &ks).is_ok());
        assert_eq!(unavailable(run(C::Quorum, Access::Read, &ks)), Some((2, 1)));
        assert_eq!(
            unavailable(run(C::EachQuorum, Access::Write, &ks)),
            Some((2, 0))
        );
        let elsewhere = keyspace(&[
            (
                "class",
                "org.apache.cassandra.locator.NetworkTopologyStrategy",
            ),
            ("dc2", "1"),
        ]);
        assert_eq!(
            unavailable(run(C::LocalOne, Access::Read, &elsewhere)),
            Some((1, 0))
        );
        assert_eq!(
            unavailable(run(C::One, Access::Read, &elsewhere)),
            Some((1, 0))
        );
    }

    #[test]
    fn simple_strategy_counts_live_nodes_of_every_data_centre() {
        use Consistency as C;
        let ks = simple("5");
        let check_with = |cl, dc1, dc2| {
            let live = BTreeMap::from([("dc1".to_owned(), dc1), ("dc2".to_owned(), dc2)]);
            let topology = Topology {
                live_nodes: &live,
                local_dc: "dc1",
            };
            check(cl, Access::Write, &ks, &topology)
        };
        assert!(
            check_with(C::All, 3, 2).is_ok(),
            "five replicas over two DCs"
        );
        assert!(check_with(C::Quorum, 2, 1).is_ok());
        assert_eq!(unavailable(check_with(C::All, 3, 1)), Some((5, 4)));
        assert_eq!(unavailable(check_with(C::Quorum, 1, 1)), Some((3, 2)));
    }

    #[test]
    fn levels_valid_for_one_access_only_are_refused_for_the_other() {
        use Consistency as C;
        let ks = simple("1");
        assert!(matches!(
            run(C::Any, Access::Read, &ks),
            Err(Error::Invalid(_))
        ));
        assert!(run(C::Any, Access::Write, &ks).is_ok());
        assert!(matches!(
            run(C::Serial, Access::Write, &ks),
            Err(Error::Invalid(_))
        ));
        assert!(run(C::Serial, Access::Read, &ks).is_ok());
    }
}
