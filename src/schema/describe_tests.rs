//! DESCRIBE golden strings from Cassandra 4.1's own unit tests: DescribeStatementTest
//! (`tableParametersCql()`, `keyspaceOutput()`, the tables of `testDescribe`,
//! `testDescribeTableWithInternals`, `testDescribeTableAndMaterializedViewWithClustringOrder`,
//! `testPrimaryKeyPositionWithAndWithoutInternals`, `testDescribeTypes`,
//! `testUsingReservedInCreateType`, `testDescribeVirtualTables`, `testDescribeCluster`) and
//! SchemaCQLHelperTest (`testCfmOptionsCQL`). In 4.1 the options block has `memtable =
//! 'default'` and not 5.0's `allow_auto_snapshot` and `incremental_backups`, and the keyspace
//! line names a strategy of `org.apache.cassandra.locator` by its simple name
//! (`'class': 'SimpleStrategy'`, ReplicationParams.appendCqlTo) while system_schema keeps the
//! full class name. ScyllaDB's options, which Cassandra lacks, follow ScyllaDB's DESCRIBE.

use super::tests::{run, setup};
use super::*;
use crate::cql::ast::{Describe, DescribeTarget, QualifiedName};
use crate::cql::parse_statement;
use crate::cql::value::CqlValue;

const TABLE_PARAMS: &str = "additional_write_policy = '99p'\n    AND bloom_filter_fp_chance = 0.01\n    AND caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'}\n    AND cdc = false\n    AND comment = ''\n    AND compaction = {'class': 'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy', 'max_threshold': '32', 'min_threshold': '4'}\n    AND compression = {'chunk_length_in_kb': '16', 'class': 'org.apache.cassandra.io.compress.LZ4Compressor'}\n    AND memtable = 'default'\n    AND crc_check_chance = 1.0\n    AND default_time_to_live = 0\n    AND extensions = {}\n    AND gc_grace_seconds = 864000\n    AND max_index_interval = 2048\n    AND memtable_flush_period_in_ms = 0\n    AND min_index_interval = 128\n    AND read_repair = 'BLOCKING'\n    AND speculative_retry = '99p';";

const TEST_KS: &str = "CREATE KEYSPACE test WITH REPLICATION = {'class' : 'SimpleStrategy', 'replication_factor' : 1};";

fn cluster() -> ClusterInfo {
    ClusterInfo {
        cluster_name: "Test Cluster".into(),
        partitioner: "org.apache.cassandra.dht.Murmur3Partitioner".into(),
        snitch: "org.apache.cassandra.locator.SimpleSnitch".into(),
        range_ownership: None,
    }
}

fn describe(cat: &Catalog, cql: &str, ks: Option<&str>) -> Result<DescribeResult, SchemaError> {
    match parse_statement(cql) {
        Ok(crate::cql::Statement::Describe(d)) => cat.describe(&d, ks, &cluster()),
        other => panic!("{cql} parsed as {other:?}"),
    }
}

fn rows_text(result: &DescribeResult) -> Vec<Vec<String>> {
    result
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| match v {
                    Some(CqlValue::Text(s)) => s.clone(),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
}

fn statements(cat: &Catalog, cql: &str, ks: Option<&str>) -> Vec<String> {
    let result = describe(cat, cql, ks).unwrap_or_else(|e| panic!("{cql}: {e}"));
    rows_text(&result)
        .into_iter()
        .filter_map(|r| r.get(3).cloned())
        .collect()
}

fn all_types_table() -> String {
    format!(
        "CREATE TABLE test.has_all_types (\n    num int PRIMARY KEY,\n    asciicol ascii,\n    bigintcol bigint,\n    blobcol blob,\n    booleancol boolean,\n    decimalcol decimal,\n    doublecol double,\n    durationcol duration,\n    floatcol float,\n    frozenlistcol frozen<list<text>>,\n    frozenmapcol frozen<map<timestamp, timeuuid>>,\n    frozensetcol frozen<set<bigint>>,\n    intcol int,\n    smallintcol smallint,\n    textcol text,\n    timestampcol timestamp,\n    tinyintcol tinyint,\n    tuplecol frozen<tuple<text, int, frozen<tuple<timestamp>>>>,\n    uuidcol uuid,\n    varcharcol text,\n    varintcol varint,\n    listcol list<decimal>,\n    mapcol map<timestamp, timeuuid>,\n    setcol set<tinyint>\n) WITH {TABLE_PARAMS}"
    )
}

fn test_schema() -> Catalog {
    setup(&[
        TEST_KS,
        "CREATE TABLE test.users ( userid text PRIMARY KEY, firstname text, lastname text, age int);",
        "CREATE TABLE test.\"Test\" (id int, col int, val text, PRIMARY KEY(id, col));",
        "CREATE TABLE test.users_mv (username varchar, password varchar, gender varchar, session_token varchar, state varchar, birth_year bigint, PRIMARY KEY (username));",
        &all_types_table(),
    ])
}

#[test]
fn describe_tables_match_cassandra() {
    let cat = test_schema();
    let users = format!("CREATE TABLE test.users (\n    userid text PRIMARY KEY,\n    age int,\n    firstname text,\n    lastname text\n) WITH {TABLE_PARAMS}");
    assert_eq!(
        statements(&cat, "DESCRIBE TABLE test.users", None),
        std::slice::from_ref(&users)
    );
    assert_eq!(statements(&cat, "DESC users", Some("test")), [users]);
    let test = format!("CREATE TABLE test.\"Test\" (\n    id int,\n    col int,\n    val text,\n    PRIMARY KEY (id, col)\n) WITH CLUSTERING ORDER BY (col ASC)\n    AND {TABLE_PARAMS}");
    assert_eq!(
        statements(&cat, "DESCRIBE TABLE test.\"Test\"", None),
        [test]
    );
    let mv = format!("CREATE TABLE test.users_mv (\n    username text PRIMARY KEY,\n    birth_year bigint,\n    gender text,\n    password text,\n    session_token text,\n    state text\n) WITH {TABLE_PARAMS}");
    assert_eq!(statements(&cat, "DESCRIBE test.users_mv", None), [mv]);
    assert_eq!(
        statements(&cat, "DESCRIBE TABLE test.has_all_types", None),
        [all_types_table()]
    );
    let listing = rows_text(&describe(&cat, "DESCRIBE TABLES", Some("test")).expect("tables"));
    let expected: Vec<Vec<String>> = ["has_all_types", "\"Test\"", "users", "users_mv"]
        .iter()
        .map(|n| vec!["test".to_string(), "table".to_string(), n.to_string()])
        .collect();
    assert_eq!(listing, expected);
}

/// Only DESCRIBE shortens the class: the catalog (and so system_schema.keyspaces, built
/// from it) keeps the full name, as ReplicationParams.asMap does; classes outside
/// org.apache.cassandra.locator keep their full name in DESCRIBE too.
#[test]
fn describe_keyspace_strategy_class_name() {
    let cat = test_schema();
    let test = cat.keyspace("test").expect("test");
    assert_eq!(
        test.replication.get("class").map(String::as_str),
        Some("org.apache.cassandra.locator.SimpleStrategy")
    );
    let mut custom = test.clone();
    let class = "com.example.locator.MyStrategy".to_string();
    custom.replication.insert("class".into(), class.clone());
    assert!(keyspace_cql(&custom).contains(&format!("{{'class': '{class}', ")));
    let mut nested = test.clone();
    let class = "org.apache.cassandra.locator.sub.Deep".to_string();
    nested.replication.insert("class".into(), class.clone());
    assert!(keyspace_cql(&nested).contains(&format!("{{'class': '{class}', ")));
    let nts = setup(&[
        "CREATE KEYSPACE n WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2}",
    ]);
    assert_eq!(
        statements(&nts, "DESCRIBE ONLY KEYSPACE n", None),
        ["CREATE KEYSPACE n WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': '2'}  AND durable_writes = true;"]
    );
}

#[test]
fn describe_keyspace_and_schema() {
    let cat = test_schema();
    // DescribeStatementTest.keyspaceOutput(); the dtest expects the same text on 4.1.
    let ks = "CREATE KEYSPACE test WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'}  AND durable_writes = true;";
    assert_eq!(statements(&cat, "DESCRIBE ONLY KEYSPACE test", None), [ks]);
    let rows = rows_text(&describe(&cat, "DESCRIBE KEYSPACE test", None).expect("ks"));
    let names: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.get(2).map(String::as_str))
        .collect();
    assert_eq!(
        names,
        ["test", "has_all_types", "\"Test\"", "users", "users_mv"]
    );
    assert_eq!(
        rows,
        rows_text(&describe(&cat, "DESCRIBE test", None).expect("generic"))
    );
    assert_eq!(
        rows,
        rows_text(&describe(&cat, "DESCRIBE SCHEMA", None).expect("schema"))
    );
    let full = describe(&cat, "DESCRIBE FULL SCHEMA", None).expect("full");
    assert!(full.rows.len() > rows.len());
    let listing = rows_text(&describe(&cat, "DESCRIBE KEYSPACES", None).expect("keyspaces"));
    let names: Vec<&str> = listing
        .iter()
        .filter_map(|r| r.get(2).map(String::as_str))
        .collect();
    assert_eq!(
        names,
        [
            "system",
            "system_auth",
            "system_distributed",
            "system_schema",
            "system_traces",
            "system_views",
            "system_virtual_schema",
            "test"
        ]
    );
}

#[test]
fn describe_errors() {
    let cat = test_schema();
    let msg = |cql: &str, ks: Option<&str>| describe(&cat, cql, ks).err().map(|e| e.to_string());
    assert_eq!(
        msg("DESCRIBE test2", None).as_deref(),
        Some("'test2' not found in keyspaces")
    );
    assert_eq!(
        msg("DESCRIBE users2", Some("test")).as_deref(),
        Some("'users2' not found in keyspace 'test'")
    );
    assert_eq!(
        msg("DESCRIBE test.users2", None).as_deref(),
        Some("'users2' not found in keyspace 'test'")
    );
    assert_eq!(
        msg("DESCRIBE TABLE foop", None).as_deref(),
        Some("No keyspace specified and no current keyspace")
    );
    assert_eq!(
        msg("DESCRIBE TYPE foop", None).as_deref(),
        Some("No keyspace specified and no current keyspace")
    );
}

#[test]
fn describe_with_internals_and_clustering_order() {
    let mut cat = setup(&[TEST_KS]);
    run(&mut cat, "CREATE TABLE test.t (pk1 text, pk2 int, c int, s decimal static, v1 text, v2 int, v3 int, PRIMARY KEY ((pk1, pk2), c ))", None).expect("t");
    let id = cat.table("test", "t").map(|t| t.id).expect("id");
    let want = format!("CREATE TABLE test.t (\n    pk1 text,\n    pk2 int,\n    c int,\n    s decimal static,\n    v1 text,\n    v2 int,\n    v3 int,\n    PRIMARY KEY ((pk1, pk2), c)\n) WITH ID = {id}\n    AND CLUSTERING ORDER BY (c ASC)\n    AND {TABLE_PARAMS}");
    assert_eq!(
        statements(&cat, "DESCRIBE TABLE test.t WITH INTERNALS", None),
        [want]
    );
    run(&mut cat, "CREATE TABLE IF NOT EXISTS test.o (pk1 int, pk2 int, ck1 int, ck2 int, reg1 int, reg2 list<int>, reg3 int, PRIMARY KEY ((pk1, pk2), ck1, ck2)) WITH CLUSTERING ORDER BY (ck1 ASC, ck2 DESC);", None).expect("o");
    let want = format!("CREATE TABLE test.o (\n    pk1 int,\n    pk2 int,\n    ck1 int,\n    ck2 int,\n    reg1 int,\n    reg3 int,\n    reg2 list<int>,\n    PRIMARY KEY ((pk1, pk2), ck1, ck2)\n) WITH CLUSTERING ORDER BY (ck1 ASC, ck2 DESC)\n    AND {TABLE_PARAMS}");
    assert_eq!(statements(&cat, "DESCRIBE TABLE test.o", None), [want]);
    run(
        &mut cat,
        "CREATE TABLE test.p (pk text, v1 text, v2 int, v3 int, PRIMARY KEY (pk))",
        None,
    )
    .expect("p");
    run(&mut cat, "ALTER TABLE test.p DROP v3", None).expect("drop");
    let p = cat.table("test", "p").cloned().expect("p");
    let ts = p
        .dropped
        .get("v3")
        .map(|d| d.dropped_at_micros)
        .expect("dropped");
    let want = format!("CREATE TABLE test.p (\n    pk text PRIMARY KEY,\n    v1 text,\n    v2 int,\n    v3 int\n) WITH ID = {}\n    AND {TABLE_PARAMS}\nALTER TABLE test.p DROP v3 USING TIMESTAMP {ts};", p.id);
    assert_eq!(
        statements(&cat, "DESCRIBE TABLE test.p WITH INTERNALS", None),
        [want]
    );
    let want = format!("CREATE TABLE test.p (\n    pk text PRIMARY KEY,\n    v1 text,\n    v2 int\n) WITH {TABLE_PARAMS}");
    assert_eq!(statements(&cat, "DESCRIBE TABLE test.p", None), [want]);
}

#[test]
fn describe_types_in_dependency_order() {
    let cat = setup(&[
        TEST_KS,
        "CREATE TYPE test.type1 (a int)",
        "CREATE TYPE test.type2 (x text, y text)",
        "CREATE TYPE test.type3 (a text, b frozen<type2>)",
        "ALTER TYPE test.type1 ADD b frozen<type3>",
        "CREATE TYPE test.kw (\"token\" text, \"desc\" text);",
    ]);
    assert_eq!(
        statements(&cat, "DESCRIBE TYPE type1", Some("test")),
        ["CREATE TYPE test.type1 (\n    a int,\n    b frozen<type3>\n);"]
    );
    assert_eq!(
        statements(&cat, "DESCRIBE TYPE test.kw", None),
        ["CREATE TYPE test.kw (\n    \"token\" text,\n    \"desc\" text\n);"]
    );
    let rows = rows_text(&describe(&cat, "DESCRIBE KEYSPACE test", None).expect("ks"));
    let names: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.get(2).map(String::as_str))
        .collect();
    assert_eq!(names, ["test", "kw", "type2", "type3", "type1"]);
    let listing = rows_text(&describe(&cat, "DESCRIBE TYPES", Some("test")).expect("types"));
    let names: Vec<&str> = listing
        .iter()
        .filter_map(|r| r.get(2).map(String::as_str))
        .collect();
    assert_eq!(names, ["kw", "type1", "type2", "type3"]);
}

#[test]
fn describe_virtual_and_cluster() {
    let cat = Catalog::new();
    assert_eq!(
        statements(&cat, "DESCRIBE ONLY KEYSPACE system_virtual_schema;", None),
        ["/*\nWarning: Keyspace system_virtual_schema is a virtual keyspace and cannot be recreated with CQL.\nStructure, for reference:\nVIRTUAL KEYSPACE system_virtual_schema;\n*/"]
    );
    assert_eq!(
        statements(&cat, "DESCRIBE TABLE system_virtual_schema.columns;", None),
        ["/*\nWarning: Table system_virtual_schema.columns is a virtual table and cannot be recreated with CQL.\nStructure, for reference:\nVIRTUAL TABLE system_virtual_schema.columns (\n    keyspace_name text,\n    table_name text,\n    column_name text,\n    clustering_order text,\n    column_name_bytes blob,\n    kind text,\n    position int,\n    type text,\n    PRIMARY KEY (keyspace_name, table_name, column_name)\n) WITH CLUSTERING ORDER BY (table_name ASC, column_name ASC)\n    AND comment = 'virtual column definitions';\n*/"]
    );
    let result = cat
        .describe(
            &Describe {
                target: DescribeTarget::Cluster,
                with_internals: false,
            },
            None,
            &cluster(),
        )
        .expect("cluster");
    assert_eq!(
        result
            .columns
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["cluster", "partitioner", "snitch"]
    );
    assert_eq!(
        rows_text(&result),
        [["Test Cluster", "Murmur3Partitioner", "SimpleSnitch"]]
    );
    let local = cat.describe(
        &Describe {
            target: DescribeTarget::Table(QualifiedName {
                keyspace: Some("system".into()),
                name: "local".into(),
            }),
            with_internals: false,
        },
        None,
        &cluster(),
    );
    assert!(local.is_ok());
}

/// DESCRIBE output, parsed and applied to a fresh catalog, describes identically; WITH
/// INTERNALS (table ids included) it even rebuilds an equal catalog.
#[test]
fn describe_round_trips() {
    let mut cat = test_schema();
    for stmt in [
        "CREATE KEYSPACE \"Other\" WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': '2'} AND durable_writes = false",
        "CREATE TYPE \"Other\".addr (street text, tags set<text>)",
        "CREATE TYPE \"Other\".pt (x int, y int)",
        "CREATE TYPE \"Other\".person (\"Name\" text, home frozen<addr>, prev list<frozen<addr>>)",
        "CREATE TABLE \"Other\".counts (k int PRIMARY KEY, n counter)",
        "CREATE TABLE \"Other\".kv (k frozen<tuple<int, text>>, s int static, c int, v map<text, frozen<list<int>>>, a pt, b frozen<addr>, PRIMARY KEY (k, c)) WITH caching = {'keys': 'NONE', 'rows_per_partition': '10'} AND gc_grace_seconds = 10",
    ] {
        if let Err(e) = run(&mut cat, stmt, None) {
            panic!("{stmt}: {e}");
        }
    }
    run(&mut cat, "CREATE TABLE \"Other\".\"Messages\" (thread uuid, ts timeuuid, \"Body\" text, author frozen<person>, PRIMARY KEY ((thread), ts)) WITH CLUSTERING ORDER BY (ts DESC) AND comment = 'it''s' AND compaction = {'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': '160'} AND speculative_retry = '95PERCENTILE' AND bloom_filter_fp_chance = 0.1", None).expect("messages");
    for internals in [false, true] {
        let query = if internals {
            "DESCRIBE SCHEMA WITH INTERNALS"
        } else {
            "DESCRIBE SCHEMA"
        };
        let first = statements(&cat, query, None);
        let mut fresh = Catalog::new();
        // Re-applied verbatim: `WITH ID = <bare uuid>` (WITH INTERNALS) must parse.
        for stmt in &first {
            if let Err(e) = run(&mut fresh, stmt, None) {
                panic!("re-applying {stmt}: {e}");
            }
        }
        assert_eq!(statements(&fresh, query, None), first);
        if internals {
            // DESCRIBE always prints `caching`, so the replayed tables have set it: they
            // cache as their option says, not as the node's default. Apart from that the
            // schema is the same.
            assert!(user_tables(&fresh).all(|t| t.options.caching_set));
            assert_eq!(without_caching_set(&fresh), without_caching_set(&cat));
            assert_eq!(
                without_caching_set(&fresh).schema_version(),
                without_caching_set(&cat).schema_version()
            );
        }
    }
}

fn user_tables(cat: &Catalog) -> impl Iterator<Item = &TableDef> {
    cat.user_keyspaces().flat_map(|k| k.tables.values())
}

fn without_caching_set(cat: &Catalog) -> Catalog {
    let mut out = cat.clone();
    let names: Vec<String> = out.user_keyspaces().map(|k| k.name.clone()).collect();
    for name in names {
        if let Some(ks) = out.keyspace_mut(&name) {
            for table in ks.tables.values_mut() {
                table.options.caching_set = false;
            }
        }
    }
    out
}

/// A ScyllaDB schema script — here ScyllaDB's own DESCRIBE output, replayed — runs, and
/// DESCRIBE echoes ScyllaDB's options after Cassandra's, where ScyllaDB prints them
/// (keyspace `tablets` after `durable_writes`; table extensions after
/// `speculative_retry`); the echo replays to the same schema.
#[test]
fn describe_echoes_scylla_options() {
    let mut cat = Catalog::new();
    for stmt in [
        "CREATE KEYSPACE social WITH replication = {'class': 'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '1'} AND durable_writes = true AND tablets = {'enabled': false};",
        "CREATE TABLE social.users (\n    username text,\n    bio text,\n    PRIMARY KEY (username)\n) WITH bloom_filter_fp_chance = 0.01\n    AND caching = {'keys': 'ALL', 'rows_per_partition': 'ALL'}\n    AND comment = ''\n    AND compaction = {'class': 'IncrementalCompactionStrategy'}\n    AND compression = {'sstable_compression': 'org.apache.cassandra.io.compress.LZ4Compressor'}\n    AND crc_check_chance = 1\n    AND default_time_to_live = 0\n    AND gc_grace_seconds = 864000\n    AND max_index_interval = 2048\n    AND memtable_flush_period_in_ms = 0\n    AND min_index_interval = 128\n    AND speculative_retry = '99.0PERCENTILE'\n    AND tombstone_gc = {'mode': 'timeout', 'propagation_delay_in_seconds': '3600'};",
        "CREATE TABLE social.events (id int PRIMARY KEY, v text) WITH cdc = {'enabled': false, 'ttl': 600} AND paxos_grace_seconds = 3600 AND per_partition_rate_limit = {'max_writes_per_second': 100} AND synchronous_updates = false AND tablets = {'min_tablet_count': 4} AND caching = {'enabled': false}",
    ] {
        run(&mut cat, stmt, None).unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let described = statements(&cat, "DESCRIBE KEYSPACE social", None);
    assert_eq!(
        described[0],
        "CREATE KEYSPACE social WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'}  AND durable_writes = true AND tablets = {'enabled': false};"
    );
    let events = &described[1];
    assert!(
        events.ends_with("    AND speculative_retry = '99p'\n    AND cdc = {'delta': 'full', 'enabled': 'false', 'postimage': 'false', 'preimage': 'false', 'ttl': '600'}\n    AND paxos_grace_seconds = 3600\n    AND per_partition_rate_limit = {'max_writes_per_second': '100'}\n    AND tablets = {'min_tablet_count': '4'}\n    AND synchronous_updates = false;"),
        "{events}"
    );
    assert!(
        !events.contains("AND cdc = false"),
        "one cdc clause: {events}"
    );
    assert!(events
        .contains("caching = {'enabled': 'false', 'keys': 'ALL', 'rows_per_partition': 'NONE'}"));
    let users = &described[2];
    assert!(users.contains("AND compaction = {'class': 'org.apache.cassandra.db.compaction.IncrementalCompactionStrategy', "), "{users}");
    assert!(users.ends_with("AND speculative_retry = '99p'\n    AND tombstone_gc = {'mode': 'timeout', 'propagation_delay_in_seconds': '3600'};"), "{users}");
    let mut fresh = Catalog::new();
    for stmt in &described {
        run(&mut fresh, stmt, None).unwrap_or_else(|e| panic!("replaying {stmt}: {e}"));
    }
    assert_eq!(
        statements(&fresh, "DESCRIBE KEYSPACE social", None),
        described
    );
}

/// The non-default options of Cassandra 4.1's SchemaCQLHelperTest.testCfmOptionsCQL, set
/// through CQL, print as its golden text does.
#[test]
fn describe_non_default_options_match_cassandra() {
    let mut cat = setup(&[TEST_KS]);
    run(&mut cat, "CREATE TABLE test.test_table_options (pk1 varint, cl1 varint, reg1 ascii, PRIMARY KEY (pk1, cl1)) WITH additional_write_policy = 'always' AND bloom_filter_fp_chance = 1.0 AND comment = 'comment' AND compaction = {'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': '1'} AND compression = {'class': 'LZ4Compressor', 'chunk_length_in_kb': 64, 'min_compress_ratio': '2.0'} AND crc_check_chance = 0.3 AND default_time_to_live = 4 AND extensions = {'ext1': '0x76616c31'} AND gc_grace_seconds = 5 AND min_index_interval = 6 AND max_index_interval = 7 AND memtable_flush_period_in_ms = 8 AND speculative_retry = 'always'", None).expect("create");
    let golden = "CLUSTERING ORDER BY (cl1 ASC)\n    AND additional_write_policy = 'ALWAYS'\n    AND bloom_filter_fp_chance = 1.0\n    AND caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'}\n    AND cdc = false\n    AND comment = 'comment'\n    AND compaction = {'class': 'org.apache.cassandra.db.compaction.LeveledCompactionStrategy', 'max_threshold': '32', 'min_threshold': '4', 'sstable_size_in_mb': '1'}\n    AND compression = {'chunk_length_in_kb': '64', 'class': 'org.apache.cassandra.io.compress.LZ4Compressor', 'min_compress_ratio': '2.0'}\n    AND memtable = 'default'\n    AND crc_check_chance = 0.3\n    AND default_time_to_live = 4\n    AND extensions = {'ext1': 0x76616c31}\n    AND gc_grace_seconds = 5\n    AND max_index_interval = 7\n    AND memtable_flush_period_in_ms = 8\n    AND min_index_interval = 6\n    AND read_repair = 'BLOCKING'\n    AND speculative_retry = 'ALWAYS';";
    let text = statements(&cat, "DESCRIBE TABLE test.test_table_options", None);
    assert!(text[0].ends_with(golden), "{}", text[0]);
}
