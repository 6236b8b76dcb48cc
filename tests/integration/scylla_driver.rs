//! The `scylla` crate: a session connects, creates a keyspace, a user type and a table, and
//! its cluster metadata shows them with the right kinds and types. Also prepared statements,
//! paging and USE through the same driver. Each test runs twice: against a node, and
//! through a front tier (a node with `[backend] engine = "cql"` in front of a node it
//! reaches only over CQL).

use std::collections::HashMap;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::cluster::metadata::{CollectionType, ColumnKind, ColumnType, NativeType};
use scylla::statement::unprepared::Statement;

use super::node::TestNode;

/// A scylla session to `node` with default settings: only the contact point.
pub(super) async fn connect(node: &TestNode) -> Session {
    SessionBuilder::new()
        .known_node(node.cql.to_string())
        .build()
        .await
        .expect("scylla session")
}

const SCHEMA: &[&str] = &[
    "CREATE KEYSPACE app WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    "CREATE TYPE app.address (street text, zip int)",
    "CREATE TABLE app.messages (
        thread text, bucket int, id timeuuid, author text, body text, edited boolean,
        tags set<text>, reactions map<text, int>, history list<frozen<map<text, text>>>,
        location frozen<tuple<double, double>>, home frozen<address>, topic text STATIC,
        PRIMARY KEY ((thread, bucket), id, author)
     ) WITH CLUSTERING ORDER BY (id DESC, author ASC) AND comment = 'chat history'",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_metadata_shows_created_schema() {
    metadata_shows_created_schema(&TestNode::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_metadata_shows_created_schema_through_a_front_tier() {
    let backend = TestNode::start();
    metadata_shows_created_schema(&TestNode::start_front_of(&backend)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_prepared_paged_and_use() {
    prepared_paged_and_use(&TestNode::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_prepared_paged_and_use_through_a_front_tier() {
    let backend = TestNode::start();
    prepared_paged_and_use(&TestNode::start_front_of(&backend)).await;
}

async fn metadata_shows_created_schema(node: &TestNode) {
    let session = connect(node).await;
    for ddl in SCHEMA {
        session.query_unpaged(*ddl, &[]).await.expect(ddl);
    }
    session.refresh_metadata().await.expect("metadata refresh");
    let state = session.get_cluster_state();
    let ks = state.get_keyspace("app").expect("keyspace in metadata");
    assert!(ks.durable_writes);
    let table = ks.tables.get("messages").expect("table in metadata");
    assert_eq!(table.partition_key, ["thread", "bucket"]);
    assert_eq!(table.clustering_key, ["id", "author"]);

    let kinds: HashMap<&str, &ColumnKind> = table
        .columns
        .iter()
        .map(|(n, c)| (n.as_str(), &c.kind))
        .collect();
    assert_eq!(kinds["thread"], &ColumnKind::PartitionKey);
    assert_eq!(kinds["id"], &ColumnKind::Clustering);
    assert_eq!(kinds["topic"], &ColumnKind::Static);
    assert_eq!(kinds["body"], &ColumnKind::Regular);

    let typ = |name: &str| table.columns[name].typ.clone();
    assert_eq!(typ("bucket"), ColumnType::Native(NativeType::Int));
    assert_eq!(typ("id"), ColumnType::Native(NativeType::Timeuuid));
    assert_eq!(typ("body"), ColumnType::Native(NativeType::Text));
    assert_eq!(
        typ("tags"),
        ColumnType::Collection {
            frozen: false,
            typ: CollectionType::Set(Box::new(ColumnType::Native(NativeType::Text)))
        }
    );
    match typ("home") {
        ColumnType::UserDefinedType {
            frozen: true,
            definition,
        } => {
            assert_eq!(definition.name, "address");
            let fields: Vec<&str> = definition
                .field_types
                .iter()
                .map(|(n, _)| n.as_ref())
                .collect();
            assert_eq!(fields, ["street", "zip"]);
        }
        other => panic!("home should be a frozen UDT, got {other:?}"),
    }
    assert!(matches!(typ("location"), ColumnType::Tuple(ref t) if t.len() == 2));
    assert!(matches!(
        typ("history"),
        ColumnType::Collection {
            frozen: false,
            typ: CollectionType::List(_)
        }
    ));
}

async fn prepared_paged_and_use(node: &TestNode) {
    let session = connect(node).await;
    session
        .query_unpaged(SCHEMA[0], &[])
        .await
        .expect("keyspace");
    for i in 0..12 {
        let ddl = format!("CREATE TABLE app.t{i:02} (k int PRIMARY KEY, v text)");
        session.query_unpaged(ddl, &[]).await.expect("table");
    }
    let prepared = session
        .prepare("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?")
        .await
        .expect("prepare");
    let rows = session
        .execute_unpaged(&prepared, ("app",))
        .await
        .expect("execute")
        .into_rows_result()
        .expect("rows");
    let names: Vec<String> = rows
        .rows::<(String,)>()
        .expect("typed rows")
        .map(|r| r.expect("row").0)
        .collect();
    assert_eq!(names.len(), 12);
    assert_eq!(names[0], "t00");

    // Paging: page size 5 over the 12 tables, every row exactly once, in order.
    let mut statement = Statement::new(
        "SELECT keyspace_name, table_name FROM system_schema.tables WHERE keyspace_name = 'app'",
    );
    statement.set_page_size(5);
    let mut pager = session
        .query_iter(statement, &[])
        .await
        .expect("query_iter")
        .rows_stream::<(String, String)>()
        .expect("stream");
    let mut seen = Vec::new();
    use futures::StreamExt;
    while let Some(row) = pager.next().await {
        seen.push(row.expect("row").1);
    }
    let expected: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
    assert_eq!(seen, expected);

    session.use_keyspace("app", false).await.expect("USE");
    let rows = session
        .query_unpaged(
            "SELECT count(*) FROM system_schema.columns WHERE keyspace_name = 'app'",
            &[],
        )
        .await
        .expect("count")
        .into_rows_result()
        .expect("rows");
    let (count,): (i64,) = rows.single_row().expect("one row");
    assert_eq!(count, 24);
}
