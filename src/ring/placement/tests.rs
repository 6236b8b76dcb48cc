//! Placement against hand-worked rings: SimpleStrategy's distinct-owner walk, and
//! NetworkTopologyStrategy's per-DC counts and rack spreading (design §18.1).

use super::*;

fn id(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

/// A ring from `(token, node)` and each node's `(dc, rack)`.
fn ring(
    tokens: &[(i64, u8)],
    at: &[(u8, &str, &str)],
) -> (TokenRing<Uuid>, HashMap<Uuid, Location>) {
    let ring = TokenRing::new(tokens.iter().map(|(t, n)| (Token(*t), id(*n))));
    let locations = at
        .iter()
        .map(|(n, dc, rack)| {
            (
                id(*n),
                Location {
                    data_center: dc.to_string(),
                    rack: rack.to_string(),
                },
            )
        })
        .collect();
    (ring, locations)
}

fn nts(factors: &[(&str, usize)]) -> Strategy {
    Strategy::NetworkTopology {
        factors: factors.iter().map(|(d, f)| (d.to_string(), *f)).collect(),
    }
}

fn names(replicas: &[Uuid]) -> Vec<u8> {
    replicas.iter().map(|u| u.as_bytes()[0]).collect()
}

#[test]
fn simple_strategy_takes_distinct_owners_clockwise() {
    // vnodes: node 1 holds two adjacent tokens; it must count once.
    let (ring, at) = ring(&[(0, 1), (10, 1), (20, 2), (30, 3)], &[]);
    let s = |rf| Strategy::Simple {
        replication_factor: rf,
    };
    assert_eq!(
        names(&replicas_for_token(&ring, &at, &s(2), Token(5))),
        [1, 2]
    );
    assert_eq!(
        names(&replicas_for_token(&ring, &at, &s(3), Token(25))),
        [3, 1, 2]
    );
    assert_eq!(
        names(&replicas_for_token(&ring, &at, &s(3), Token(31))),
        [1, 2, 3],
        "wraps"
    );
    assert_eq!(
        names(&replicas_for_token(&ring, &at, &s(5), Token(0))),
        [1, 2, 3],
        "RF above nodes"
    );
}

#[test]
fn network_topology_counts_each_data_centre() {
    let (ring, at) = ring(
        &[(0, 1), (10, 4), (20, 2), (30, 5), (40, 3)],
        &[
            (1, "dc1", "r1"),
            (2, "dc1", "r2"),
            (3, "dc1", "r3"),
            (4, "dc2", "r1"),
            (5, "dc2", "r2"),
        ],
    );
    let got = replicas_for_token(&ring, &at, &nts(&[("dc1", 2), ("dc2", 1)]), Token(0));
    assert_eq!(names(&got), [1, 4, 2], "walk order, dc2 done after one");
    let got = replicas_for_token(&ring, &at, &nts(&[("dc1", 5), ("dc2", 2)]), Token(0));
    assert_eq!(
        names(&got),
        [1, 4, 2, 5, 3],
        "RF above a DC's nodes takes them all"
    );
    let got = replicas_for_token(&ring, &at, &nts(&[("dc3", 3)]), Token(0));
    assert!(got.is_empty(), "a DC with no nodes places nothing");
}

#[test]
fn network_topology_spreads_racks_before_repeating_one() {
    // dc1: racks a (nodes 1, 2) and b (node 3); the walk meets 1, 2, 3.
    let (ring, at) = ring(
        &[(0, 1), (10, 2), (20, 3)],
        &[(1, "dc1", "a"), (2, "dc1", "a"), (3, "dc1", "b")],
    );
    let got = replicas_for_token(&ring, &at, &nts(&[("dc1", 2)]), Token(0));
    assert_eq!(
        names(&got),
        [1, 3],
        "node 2 repeats rack a while rack b is unseen"
    );
    // RF 3 over 2 racks: one repeat is acceptable, taken in walk order.
    let got = replicas_for_token(&ring, &at, &nts(&[("dc1", 3)]), Token(0));
    assert_eq!(names(&got), [1, 2, 3]);
}

#[test]
fn placement_precomputes_every_range() {
    let (ring, at) = ring(&[(0, 1), (10, 2), (20, 3)], &[]);
    let placement = Placement::new(
        &ring,
        &at,
        &Strategy::Simple {
            replication_factor: 2,
        },
    );
    assert_eq!(names(placement.replicas(Token(-5))), [1, 2]);
    assert_eq!(
        names(placement.replicas(Token(0))),
        [1, 2],
        "range end inclusive"
    );
    assert_eq!(names(placement.replicas(Token(1))), [2, 3]);
    assert_eq!(names(placement.replicas(Token(21))), [1, 2], "wraps");
    let ranges: Vec<_> = placement
        .ranges()
        .map(|(s, e, r)| (s.0, e.0, names(r)))
        .collect();
    assert_eq!(
        ranges,
        [
            (20, 0, vec![1, 2]),
            (0, 10, vec![2, 3]),
            (10, 20, vec![3, 1])
        ]
    );
}

#[test]
fn strategies_are_read_from_the_replication_map() {
    let map = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        Strategy::from_replication(&map(&[
            ("class", "org.apache.cassandra.locator.SimpleStrategy"),
            ("replication_factor", "3")
        ])),
        Strategy::Simple {
            replication_factor: 3
        }
    );
    assert_eq!(
        Strategy::from_replication(&map(&[
            ("class", "NetworkTopologyStrategy"),
            ("dc1", "3"),
            ("dc2", "2")
        ])),
        nts(&[("dc1", 3), ("dc2", 2)])
    );
    assert_eq!(
        Strategy::from_replication(&map(&[("class", "LocalStrategy")])),
        Strategy::Local
    );
}
