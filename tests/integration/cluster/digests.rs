//! Read digests and the last-write-wins merge across replicas (`storage::merge`): replicas
//! made to disagree by writes at ONE while links are cut — each holding the newest value of
//! a different column — are merged cell by cell by a QUORUM read once the links heal.
//!
//! The test first shows, by reads at ONE through each node (answered by that node's own
//! replica), that the replicas really hold different versions, so a coordinator that
//! returned its own data without comparing digests, or merged by anything but timestamps,
//! fails it.

use scylla::client::session::Session;
use scylla::frame::types::Consistency;

use super::availability::{at, RF3};
use super::TestCluster;
use crate::data_path::run;
use crate::node::EVENT_TIMEOUT;

/// Columns `a` and `b` of row 1, read at `consistency` through `session`.
async fn row(session: &Session, consistency: Consistency) -> (String, String) {
    session
        .query_unpaged(
            at("SELECT a, b FROM digests.t WHERE k = 1", consistency),
            &[],
        )
        .await
        .expect("read")
        .into_rows_result()
        .expect("rows")
        .single_row::<(String, String)>()
        .expect("one row")
}

async fn write(session: &Session, cql: &str, consistency: Consistency) {
    session
        .query_unpaged(at(cql, consistency), &[])
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"));
}

/// Waits until node `session`'s own replica (a read at ONE) holds `expected`.
async fn wait_for_replica(session: &Session, expected: (&str, &str)) {
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        let (a, b) = row(session, Consistency::One).await;
        if (a.as_str(), b.as_str()) == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica holds ({a}, {b}), not {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_read_merges_disagreeing_replicas_cell_by_cell_to_the_newest() {
    let cluster = TestCluster::start(3);
    cluster.wait_all_up().await;
    let s1 = cluster.session(1).await;
    run(
        &s1,
        &[
            &format!("CREATE KEYSPACE digests WITH replication = {RF3}"),
            "CREATE TABLE digests.t (k int PRIMARY KEY, a text, b text)",
        ],
    )
    .await;
    let s2 = cluster.session(2).await;
    let s3 = cluster.session(3).await;
    let old = "INSERT INTO digests.t (k, a, b) VALUES (1, 'a-old', 'b-old')";
    write(&s1, old, Consistency::All).await;

    // Node 3 misses a newer `a`: written at ONE through node 1 while their link is cut.
    cluster.cut(1, 3);
    let new_a = "UPDATE digests.t SET a = 'a-new' WHERE k = 1";
    write(&s1, new_a, Consistency::One).await;
    cluster.heal(1, 3);
    wait_for_replica(&s2, ("a-new", "b-old")).await;

    // Then only node 3 gets a newer `b`: written at ONE through it while it is cut off.
    cluster.cut(3, 1);
    cluster.cut(3, 2);
    let new_b = "UPDATE digests.t SET b = 'b-new' WHERE k = 1";
    write(&s3, new_b, Consistency::One).await;
    cluster.heal(3, 1);
    cluster.heal(3, 2);

    // The replicas disagree, each newer in one column.
    assert_eq!(
        row(&s1, Consistency::One).await,
        ("a-new".into(), "b-old".into())
    );
    assert_eq!(
        row(&s2, Consistency::One).await,
        ("a-new".into(), "b-old".into())
    );
    assert_eq!(
        row(&s3, Consistency::One).await,
        ("a-old".into(), "b-new".into())
    );

    // Node 3 coordinates: its own replica gives the data, another a digest that differs;
    // the merge takes `a` from the other replica and `b` from its own.
    let newest = ("a-new".to_owned(), "b-new".to_owned());
    assert_eq!(row(&s3, Consistency::Quorum).await, newest);
    // Through node 1, ALL contacts every replica whatever the shuffle picks.
    assert_eq!(row(&s1, Consistency::All).await, newest);
}
