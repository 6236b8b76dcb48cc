//! cdrs-tokio: a v4 TCP session starts (its control connection needs `toJson(replication)`,
//! `system.peers_v2` falling back on Invalid, and REGISTER) and runs DDL.

use std::time::Duration;

use cdrs_tokio::cluster::session::{SessionBuilder, TcpSessionBuilder};
use cdrs_tokio::cluster::NodeTcpConfigBuilder;
use cdrs_tokio::load_balancing::RoundRobinLoadBalancingStrategy;

use super::node::TestNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdrs_session_connects_and_runs_ddl() {
    let node = TestNode::start();
    let config = NodeTcpConfigBuilder::new()
        .with_contact_point(node.cql.to_string().into())
        .build()
        .await
        .expect("cdrs config");
    let build = TcpSessionBuilder::new(RoundRobinLoadBalancingStrategy::new(), config).build();
    let session = tokio::time::timeout(Duration::from_secs(20), build)
        .await
        .expect("cdrs session start must complete (it never does if metadata queries fail)")
        .expect("cdrs session");

    session
        .query("CREATE KEYSPACE cdrs_ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        .await
        .expect("create keyspace");
    session
        .query("CREATE TABLE cdrs_ks.t (id int PRIMARY KEY, name text, tags set<text>)")
        .await
        .expect("create table");
    let rows = session
        .query("SELECT keyspace_name, table_name FROM system_schema.tables WHERE keyspace_name = 'cdrs_ks'")
        .await
        .expect("select")
        .response_body()
        .expect("body")
        .into_rows()
        .expect("rows");
    assert_eq!(rows.len(), 1);

    let err = session
        .query("CREATE KEYSPACE cdrs_ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        .await
        .expect_err("duplicate keyspace");
    assert!(format!("{err:?}").contains("AlreadyExists"), "{err:?}");
    session
        .query("DROP KEYSPACE cdrs_ks")
        .await
        .expect("drop keyspace");
}
