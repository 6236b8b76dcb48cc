//! Durability of the node's state across kill -9.

use super::node::TestNode;
use super::scylla_driver::connect;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_and_identity_survive_kill9() {
    let node = TestNode::start();
    let session = connect(&node).await;
    for ddl in [
        "CREATE KEYSPACE k9 WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1} AND durable_writes = false",
        "CREATE TYPE k9.point (x double, y double)",
        "CREATE TABLE k9.t (a int, b text, c frozen<point>, PRIMARY KEY (a, b)) WITH CLUSTERING ORDER BY (b DESC)",
    ] {
        session.query_unpaged(ddl, &[]).await.expect(ddl);
    }
    let before = describe_all(&session).await;
    let local_before = local_identity(&session).await;
    drop(session);

    let node = node.restart_after_kill9();
    let session = connect(&node).await;
    assert_eq!(
        describe_all(&session).await,
        before,
        "schema survives kill -9"
    );
    assert_eq!(
        local_identity(&session).await,
        local_before,
        "host_id, tokens and schema_version survive"
    );
}

async fn describe_all(session: &scylla::client::session::Session) -> Vec<String> {
    let rows = session
        .query_unpaged("DESCRIBE KEYSPACE k9", &[])
        .await
        .expect("describe")
        .into_rows_result()
        .expect("rows");
    rows.rows::<(String, String, String, String)>()
        .expect("typed")
        .map(|r| r.expect("row").3)
        .collect()
}

async fn local_identity(
    session: &scylla::client::session::Session,
) -> (uuid::Uuid, Vec<String>, uuid::Uuid) {
    let rows = session
        .query_unpaged(
            "SELECT host_id, tokens, schema_version FROM system.local WHERE key = 'local'",
            &[],
        )
        .await
        .expect("local")
        .into_rows_result()
        .expect("rows");
    let (host_id, tokens, version): (uuid::Uuid, Vec<String>, uuid::Uuid) =
        rows.single_row().expect("one row");
    (host_id, tokens, version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_version_changes_with_every_ddl_and_only_then() {
    let node = TestNode::start();
    let session = connect(&node).await;
    let version = || async {
        let rows = session
            .query_unpaged(
                "SELECT schema_version FROM system.local WHERE key = 'local'",
                &[],
            )
            .await
            .expect("local")
            .into_rows_result()
            .expect("rows");
        rows.single_row::<(uuid::Uuid,)>().expect("one row").0
    };
    let mut seen = vec![version().await];
    for ddl in [
        "CREATE KEYSPACE sv WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TABLE sv.t (k int PRIMARY KEY, v text)",
        "ALTER TABLE sv.t ADD w int",
        "DROP TABLE sv.t",
    ] {
        session.query_unpaged(ddl, &[]).await.expect(ddl);
        let now = version().await;
        assert_ne!(Some(&now), seen.last(), "{ddl} must produce a new schema version");
        seen.push(now);
    }
    // The version is a hash of content: dropping the only table returns the schema, and so
    // the version, to what it was with just the keyspace.
    assert_eq!(seen[1], seen[4]);
    // A statement that changes nothing leaves the version alone.
    session
        .query_unpaged("CREATE KEYSPACE IF NOT EXISTS sv WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}", &[])
        .await
        .expect("no-op DDL");
    assert_eq!(version().await, *seen.last().expect("versions"));
}
