//! Replica placement against the `scylla` driver: on five nodes in two data centres and
//! several racks, for SimpleStrategy and NetworkTopologyStrategy keyspaces, the replicas the
//! driver's token-aware routing names for a token (`ClusterState::get_token_endpoints`) are
//! the replicas `ringcache::ring::Placement` computes from the ring the nodes advertise
//! (tokens, data centres and racks read from `system.local` and `system.peers`), for every
//! ring token, its neighbours and thousands of random tokens. SimpleStrategy's replicas are
//! also in the same order (the ring walk's).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::{Rng, SeedableRng};
use ringcache::ring::{Location, Placement, Strategy, Token, TokenRing};
use scylla::client::session::Session;
use scylla::value::Row;
use uuid::Uuid;

use super::ClusterBuilder;
use crate::data_path::run;

/// (data centre, rack) of nodes 1..=5.
const LAYOUT: [(&str, &str); 5] = [
    ("dc1", "r1"),
    ("dc1", "r2"),
    ("dc1", "r1"),
    ("dc2", "r1"),
    ("dc2", "r2"),
];

/// Keyspaces placed, by replication.
const KEYSPACES: [(&str, &str); 4] = [
    (
        "simple3",
        "{'class': 'SimpleStrategy', 'replication_factor': 3}",
    ),
    (
        "nts21",
        "{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 1}",
    ),
    // Three replicas in dc1's two racks: a rack repeats.
    (
        "nts32",
        "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}",
    ),
    ("nts_dc2", "{'class': 'NetworkTopologyStrategy', 'dc2': 2}"),
];

/// The ring as the node `session` reaches advertises it: every node's tokens and location
/// (`nodes` of them).
pub(super) async fn advertised_ring(
    session: &Session,
    nodes: usize,
) -> (TokenRing<Uuid>, HashMap<Uuid, Location>) {
    let mut pairs = Vec::new();
    let mut locations = HashMap::new();
    for table in ["local", "peers"] {
        let query = format!("SELECT host_id, tokens, data_center, rack FROM system.{table}");
        let rows = session
            .query_unpaged(query.as_str(), &[])
            .await
            .expect(&query)
            .into_rows_result()
            .expect("rows");
        for row in rows
            .rows::<(Uuid, Vec<String>, String, String)>()
            .expect("typed")
        {
            let (host_id, tokens, data_center, rack) = row.expect("row");
            pairs.extend(
                tokens
                    .iter()
                    .map(|t| (t.parse::<Token>().expect("token"), host_id)),
            );
            locations.insert(host_id, Location { data_center, rack });
        }
    }
    assert_eq!(locations.len(), nodes, "every node advertised");
    (TokenRing::new(pairs), locations)
}

/// A keyspace's strategy from its `system_schema` replication map.
async fn strategy(session: &Session, keyspace: &str) -> Strategy {
    let query = "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?";
    let row: Row = session
        .query_unpaged(query, (keyspace,))
        .await
        .expect(query)
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("keyspace row");
    let replication: BTreeMap<String, String> = row.columns[0]
        .as_ref()
        .and_then(|v| v.as_map())
        .expect("replication map")
        .iter()
        .map(|(k, v)| {
            let text = |c: &scylla::value::CqlValue| c.as_text().expect("text").clone();
            (text(k), text(v))
        })
        .collect();
    Strategy::from_replication(&replication)
}

/// The same replicas; in the same order under SimpleStrategy (`ordered`). The order of
/// NetworkTopologyStrategy's differs: ringcache lists them in ring-walk order, the driver
/// groups them by data centre. The set is what routing and consistency depend on.
fn same_replicas(ours: &[Uuid], theirs: &[Uuid], ordered: bool) -> bool {
    let set = |v: &[Uuid]| v.iter().copied().collect::<BTreeSet<_>>();
    match ordered {
        true => ours == theirs,
        false => ours.len() == theirs.len() && set(ours) == set(theirs),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scylla_driver_routes_to_the_replicas_ringcache_places() {
    let mut builder = ClusterBuilder::new(5);
    for (i, (dc, rack)) in LAYOUT.iter().enumerate() {
        builder = builder
            .node_env(i + 1, "RINGCACHE_DATA_CENTER", dc)
            .node_env(i + 1, "RINGCACHE_RACK", rack);
    }
    let cluster = builder.start();
    cluster.wait_all_up().await;
    let admin = cluster.session(1).await;
    for (name, replication) in KEYSPACES {
        run(
            &admin,
            &[
                &format!("CREATE KEYSPACE {name} WITH replication = {replication}"),
                &format!("CREATE TABLE {name}.t (k int PRIMARY KEY)"),
            ],
        )
        .await;
    }
    let driver = cluster.token_aware_session().await;
    driver.refresh_metadata().await.expect("metadata");
    let state = driver.get_cluster_state();
    assert_eq!(
        state.get_nodes_info().len(),
        5,
        "the driver knows five nodes"
    );
    let (ring, locations) = advertised_ring(&admin, 5).await;

    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let mut tokens: Vec<i64> = ring
        .tokens()
        .flat_map(|t| {
            [
                t.value().saturating_sub(1),
                t.value(),
                t.value().saturating_add(1),
            ]
        })
        .collect();
    tokens.extend((0..2000).map(|_| rng.random_range(i64::MIN + 1..=i64::MAX)));
    tokens.extend([i64::MIN + 1, i64::MAX, 0]);
    for (name, _) in KEYSPACES {
        let strategy = strategy(&admin, name).await;
        let ordered = matches!(strategy, Strategy::Simple { .. });
        let placement = Placement::new(&ring, &locations, &strategy);
        let mut differ = Vec::new();
        for token in &tokens {
            let ours = placement.replicas(Token(*token)).to_vec();
            let theirs: Vec<Uuid> = state
                .get_token_endpoints(name, "t", scylla::routing::Token::new(*token))
                .iter()
                .map(|(node, _)| node.host_id)
                .collect();
            assert!(!ours.is_empty(), "{name}: no replicas for {token}");
            if !same_replicas(&ours, &theirs, ordered) {
                differ.push(format!("{token}: ringcache {ours:?}, driver {theirs:?}"));
            }
        }
        assert!(
            differ.is_empty(),
            "{name}: {} of {} tokens placed differently, e.g. {:?}",
            differ.len(),
            tokens.len(),
            &differ[..differ.len().min(3)]
        );
    }
}
