//! The metadata log in-process: three nodes over real transports on loopback, each on its
//! own 127.0.0.x address so link faults can single it out. Every wait polls for the event
//! with a deadline.

mod harness;

use std::time::{Duration, Instant};

use harness::{converged, eventually, leader, start, start_cut_off, three, Node};

use super::{MetaError, MetaRole};

fn root() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The nodes other than the one with host id `id`.
fn others(nodes: &[Node], id: uuid::Uuid) -> Vec<&Node> {
    nodes.iter().filter(|n| n.id.host_id != id).collect()
}

fn by_id(nodes: &[Node], id: uuid::Uuid) -> &Node {
    nodes.iter().find(|n| n.id.host_id == id).expect("node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_from_every_node_apply_in_one_order_everywhere() {
    let root = root();
    let nodes = three(&root, 11, 1000).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    assert!(nodes.iter().all(|n| n.status().joined));
    for round in 0..3 {
        for (i, node) in nodes.iter().enumerate() {
            let key = format!("k{round}-{i}");
            assert_eq!(node.propose(&format!("{key}=v{i}")).await, "inserted");
            // The proposer's own node has applied it when propose returns.
            assert_eq!(
                node.id.toy.get(&key).as_deref(),
                Some(format!("v{i}").as_str())
            );
        }
    }
    converged(&refs).await;
    let order = nodes[0].id.toy.order();
    assert_eq!(order.len(), 9);
    for node in &nodes[1..] {
        assert_eq!(
            node.id.toy.order(),
            order,
            "same commands, same indexes, same order"
        );
    }
    let status = nodes[0].status();
    assert_eq!(status.learners, Vec::<uuid::Uuid>::new());
    for node in &nodes {
        assert_eq!(status.addresses.get(&node.id.host_id), Some(&node.id.addr));
    }
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n.status().role == MetaRole::Leader)
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_insert_if_absent_of_one_key_has_one_winner() {
    let root = root();
    let nodes = three(&root, 21, 1000).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    let proposals = (0..20).map(|i| {
        let node = &nodes[i % 3];
        async move { node.propose(&format!("table=from-{i}")).await }
    });
    let replies = futures::future::join_all(proposals).await;
    let winners: Vec<_> = replies.iter().filter(|r| *r == "inserted").collect();
    assert_eq!(winners.len(), 1, "{replies:?}");
    converged(&refs).await;
    let value = nodes[0].id.toy.get("table").expect("one table");
    for reply in replies.iter().filter(|r| *r != "inserted") {
        assert_eq!(*reply, format!("exists:{value}"));
    }
    for node in &nodes {
        assert_eq!(node.id.toy.get("table"), Some(value.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_is_replaced_and_proposals_go_on() {
    let root = root();
    let mut nodes = three(&root, 31, 1000).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    let old = leader(&refs, None).await;
    assert_eq!(by_id(&nodes, old).propose("before=1").await, "inserted");
    let at = nodes.iter().position(|n| n.id.host_id == old).unwrap();
    nodes.remove(at).stop().await;
    let survivors: Vec<&Node> = nodes.iter().collect();
    let new = leader(&survivors, Some(old)).await;
    assert_ne!(new, old, "a new leader was elected");
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(node.propose(&format!("after{i}=1")).await, "inserted");
    }
    converged(&survivors).await;
    assert_eq!(nodes[0].id.toy.order(), nodes[1].id.toy.order());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_gets_no_quorum_in_time_while_the_majority_commits() {
    let root = root();
    let nodes = three(&root, 41, 1000).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    // Cut the leader off: the minority side is the old leader itself.
    let old = leader(&refs, None).await;
    let cut = by_id(&nodes, old);
    let majority = others(&nodes, old);
    for other in &majority {
        cut.cut(other);
    }
    let timeout = Duration::from_secs(3);
    let began = Instant::now();
    let refused = cut.log.propose(b"minority=1".to_vec(), timeout).await;
    let took = began.elapsed();
    assert_eq!(
        refused,
        Err(MetaError::NoQuorum {
            voters: 3,
            answered: 1
        })
    );
    assert!(
        took < timeout + Duration::from_millis(500),
        "failed within the timeout: {took:?}"
    );
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("majority of the cluster's 3 voting members; only 1 answered"),
        "{message}"
    );
    // Meanwhile the majority elected a leader of its own and commits.
    let new = leader(&majority, Some(old)).await;
    assert_ne!(new, old);
    assert_eq!(majority[0].propose("majority=1").await, "inserted");
    assert_eq!(majority[1].propose("majority2=1").await, "inserted");
    // An isolated follower is refused the same way.
    let follower = majority.iter().find(|n| n.id.host_id != new).unwrap();
    let lead = by_id(&nodes, new);
    follower.cut(lead);
    let refused = follower.log.propose(b"alone=1".to_vec(), timeout).await;
    assert!(
        matches!(refused, Err(MetaError::NoQuorum { voters: 3, .. })),
        "{refused:?}"
    );
    // Healed, the old leader catches up and drops what it could not commit.
    cut.heal(&majority);
    follower.heal(&[lead]);
    lead.propose("healed=1").await;
    converged(&refs).await;
    for node in &nodes {
        assert_eq!(node.id.toy.order(), lead.id.toy.order());
        assert_eq!(node.id.toy.get("minority"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_resumes_from_its_persisted_log() {
    let root = root();
    let mut nodes = three(&root, 51, 1000).await;
    for i in 0..5 {
        nodes[i % 3].propose(&format!("a{i}=1")).await;
    }
    converged(&nodes.iter().collect::<Vec<_>>()).await;
    let stopped = nodes.pop().unwrap();
    let before = stopped.status();
    let identity = stopped.stop().await;
    for i in 0..5 {
        nodes[i % 2].propose(&format!("b{i}=1")).await;
    }
    // Back, but cut off: what it shows now comes from its own disk.
    let back = start_cut_off(identity, &[&nodes[0], &nodes[1]]).await;
    assert!(back.status().joined, "a restart does not join again");
    eventually(
        "the persisted log reloaded",
        Duration::from_secs(10),
        || {
            let now = back.status();
            now.last_log_index == before.last_log_index
                && now.term >= before.term
                && now.voters.len() == 3
                && back.log.applied_index() == before.last_applied
        },
    )
    .await;
    back.heal(&[&nodes[0], &nodes[1]]);
    nodes.push(back);
    let refs: Vec<&Node> = nodes.iter().collect();
    converged(&refs).await;
    let back = &nodes[2];
    assert_eq!(back.id.toy.order(), nodes[0].id.toy.order());
    assert_eq!(back.id.toy.applied_twice(), 0, "nothing applied twice");
    assert_eq!(back.id.toy.restores(), 0);
    assert_eq!(back.status().voters.len(), 3);
    assert_eq!(back.propose("c=1").await, "inserted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_purged_log_catches_up_from_a_snapshot() {
    let root = root();
    let mut nodes = three(&root, 61, 5).await;
    let stopped = nodes.pop().unwrap();
    let was_at = stopped.log.applied_index();
    let identity = stopped.stop().await;
    for i in 0..30 {
        nodes[i % 2].propose(&format!("p{i}=1")).await;
    }
    eventually(
        "the log purged past the stopped node",
        Duration::from_secs(20),
        || nodes.iter().all(|n| n.status().purged > was_at),
    )
    .await;
    nodes.push(start(identity).await);
    let refs: Vec<&Node> = nodes.iter().collect();
    converged(&refs).await;
    let back = &nodes[2];
    assert!(back.id.toy.restores() >= 1, "installed from a snapshot");
    assert_eq!(back.id.toy.map(), nodes[0].id.toy.map());
    assert_eq!(back.id.toy.applied_twice(), 0);
    assert_eq!(back.propose("after=1").await, "inserted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_through_a_follower_are_serialised_and_stop_promoting_at_five_voters() {
    let root = root();
    let founder = start(harness::identity(&root, 71, &[], 1000)).await;
    let seed = start(harness::identity(&root, 72, &[&founder], 1000)).await;
    assert!(seed.log.wait_joined(Duration::from_secs(30)).await);
    // Four more at once, all through the follower, which forwards to the leader.
    let joiners = (73..77).map(|last| start(harness::identity(&root, last, &[&seed], 1000)));
    let joiners = futures::future::join_all(joiners).await;
    for node in &joiners {
        assert!(
            node.log.wait_joined(Duration::from_secs(60)).await,
            "joined"
        );
    }
    let mut nodes = vec![founder, seed];
    nodes.extend(joiners);
    eventually(
        "five voters and one learner",
        Duration::from_secs(30),
        || {
            nodes.iter().all(|n| {
                let s = n.status();
                s.voters.len() == 5 && s.learners.len() == 1
            })
        },
    )
    .await;
    let learner = nodes[0].status().learners[0];
    let learner = by_id(&nodes, learner);
    assert_eq!(learner.status().role, MetaRole::Learner);
    // A learner proposes like anyone and applies everything.
    assert_eq!(learner.propose("from-learner=1").await, "inserted");
    converged(&nodes.iter().collect::<Vec<_>>()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_seed_starts_later_joins_once_it_is_up() {
    let root = root();
    let mut founder_id = harness::identity(&root, 81, &[], 1000);
    founder_id.addr.set_port(7000);
    let mut joiner_id = harness::identity(&root, 82, &[], 1000);
    joiner_id.seeds = vec![founder_id.addr];
    let joiner = start(joiner_id).await;
    assert!(!joiner.log.wait_joined(Duration::from_millis(300)).await);
    let refused = joiner
        .log
        .propose(b"early=1".to_vec(), Duration::from_millis(300))
        .await;
    assert_eq!(refused, Err(MetaError::NotJoined));
    let founder = start(founder_id).await;
    assert!(joiner.log.wait_joined(Duration::from_secs(30)).await);
    assert_eq!(joiner.propose("late=1").await, "inserted");
    assert_eq!(founder.id.toy.get("late").as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_machine_that_keeps_nothing_is_rebuilt_from_snapshot_and_log() {
    let root = root();
    let mut nodes = three(&root, 91, 5).await;
    for i in 0..12 {
        nodes[i % 3].propose(&format!("r{i}=1")).await;
    }
    converged(&nodes.iter().collect::<Vec<_>>()).await;
    eventually("a snapshot and a purge", Duration::from_secs(20), || {
        nodes[2].status().purged.is_some()
    })
    .await;
    let mut identity = nodes.pop().unwrap().stop().await;
    identity.toy = Default::default();
    let back = start_cut_off(identity, &[&nodes[0], &nodes[1]]).await;
    assert!(
        back.id.toy.restores() == 1,
        "restored from its own snapshot"
    );
    eventually(
        "the log after the snapshot replayed",
        Duration::from_secs(10),
        || back.id.toy.map() == nodes[0].id.toy.map(),
    )
    .await;
    back.heal(&[&nodes[0], &nodes[1]]);
    assert_eq!(back.propose("s=1").await, "inserted");
}
