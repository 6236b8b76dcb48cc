//! Parser tests: driver and cqlsh query strings, DDL for every type, errors.

use super::*;
use crate::cql::ast::*;
use crate::cql::types::{CqlType, NativeType};

fn parse(text: &str) -> Statement {
    match parse_statement(text) {
        Ok(s) => s,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn select(text: &str) -> Select {
    match parse(text) {
        Statement::Select(s) => s,
        other => panic!("{text}: not a select: {other:?}"),
    }
}

fn error(text: &str) -> ParseError {
    match parse_statement(text) {
        Ok(s) => panic!("{text}: parsed as {s:?}"),
        Err(e) => e,
    }
}

fn qn(keyspace: Option<&str>, name: &str) -> QualifiedName {
    QualifiedName {
        keyspace: keyspace.map(str::to_string),
        name: name.to_string(),
    }
}

fn col(name: &str) -> SelectItem {
    SelectItem {
        selector: Selector::Column(name.into()),
        alias: None,
    }
}

fn eq(column: &str, value: Term) -> Relation {
    Relation::Column {
        column: column.into(),
        op: Operator::Eq,
        value,
    }
}

fn s(text: &str) -> Term {
    Term::String(text.into())
}

fn native(n: NativeType) -> CqlType {
    CqlType::Native(n)
}

/// Every query string the drivers and cqlsh send on connect, for schema metadata and for
/// DESCRIBE (design §18.5), as they send it.
const DRIVER_QUERIES: &[&str] = &[
    "SELECT * FROM system.peers",
    "SELECT host_id, peer, data_center, rack, rpc_address, native_transport_address, release_version, schema_version FROM system.peers",
    "SELECT * FROM system.local WHERE key='local'",
    "SELECT host_id, cluster_name, data_center, rack, partitioner, release_version, schema_version FROM system.local WHERE key='local'",
    "SELECT rpc_address FROM system.local WHERE key='local'",
    "SELECT peer, host_id, rpc_address, schema_version FROM system.peers",
    "SELECT schema_version FROM system.local WHERE key='local'",
    "SELECT * FROM system.peers_v2",
    "SELECT host_id, peer, peer_port, data_center, rack, native_address, native_port, release_version, schema_version FROM system.peers_v2",
    "SELECT host_id, peer, peer_port, native_address, native_port, schema_version FROM system.peers_v2",
    "SELECT cluster_name FROM system.local",
    "SELECT * FROM system.local",
    "SELECT * FROM system.peers_v2 WHERE peer = :address and peer_port = :port",
    "SELECT * FROM system.peers WHERE peer = :address",
    "SELECT * FROM system_schema.keyspaces",
    "SELECT durable_writes, replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
    "SELECT host_id, rpc_address, data_center, rack, tokens FROM system.peers",
    "SELECT host_id, rpc_address, data_center, rack, tokens, cluster_name FROM system.local WHERE key='local'",
    "SELECT host_id, rpc_address, data_center, rack, tokens, cluster_name FROM system.local WHERE key='local' USING TIMEOUT 30000ms",
    "SELECT keyspace_name, toJson(replication) AS replication FROM system_schema.keyspaces",
    "SELECT keyspace_name, toJson(replication) AS replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
    "SELECT * FROM system_schema.tables",
    "SELECT * FROM system_schema.columns",
    "SELECT * FROM system_schema.types",
    "SELECT * FROM system_schema.functions",
    "SELECT * FROM system_schema.aggregates",
    "SELECT * FROM system_schema.triggers",
    "SELECT * FROM system_schema.indexes",
    "SELECT * FROM system_schema.views",
    "SELECT * from system_virtual_schema.keyspaces",
    "SELECT * from system_virtual_schema.tables",
    "SELECT * from system_virtual_schema.columns",
    "SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'ks'",
    "SELECT * FROM system_schema.tables   WHERE keyspace_name = 'ks' AND table_name = 't'",
    "SELECT * FROM system_schema.columns  WHERE keyspace_name = 'ks' AND table_name = 't'",
    "SELECT * FROM system_schema.indexes  WHERE keyspace_name = 'ks' AND table_name = 't'",
    "SELECT * FROM system_schema.triggers WHERE keyspace_name = 'ks' AND table_name = 't'",
    "SELECT * FROM system_schema.views    WHERE keyspace_name = 'ks' AND view_name = 't'",
    "SELECT * FROM system_schema.types    WHERE keyspace_name = 'ks' AND type_name = 'ty'",
    "SELECT * FROM system_schema.functions WHERE keyspace_name = 'ks' AND function_name = 'f' AND argument_types = ['int', 'text']",
    "SELECT * FROM system_schema.aggregates WHERE keyspace_name = 'ks' AND aggregate_name = 'a' AND argument_types = []",
    "SELECT * FROM system_schema.keyspaces WHERE keyspace_name IN ('a', 'b')",
    "SELECT keyspace_name, replication, durable_writes FROM system_schema.keyspaces",
    "SELECT keyspace_name, type_name, field_names, field_types FROM system_schema.types",
    "SELECT keyspace_name, table_name FROM system_schema.tables",
    "SELECT keyspace_name, view_name, base_table_name FROM system_schema.views",
    "SELECT keyspace_name, table_name, column_name, kind, position, type FROM system_schema.columns",
    "SELECT keyspace_name, table_name, partitioner FROM system_schema.scylla_tables",
    "SELECT keyspace_name, initial_tablets FROM system_schema.scylla_keyspaces",
    "SELECT keyspace_name, table_name, column_name, kind, position, type FROM system_schema.columns where keyspace_name in ?",
    "select * from system.local where key = 'local'",
    "USE ks",
    "USE \"ks\"",
    "DESCRIBE KEYSPACES",
    "DESC TABLES",
];

#[test]
fn every_driver_query_parses() {
    for query in DRIVER_QUERIES {
        parse(query);
        parse(&format!("{query};"));
    }
}

#[test]
fn system_local_forms() {
    let want = Select {
        table: qn(Some("system"), "local"),
        distinct: false,
        json: false,
        items: Vec::new(),
        where_clause: vec![eq("key", s("local"))],
        group_by: Vec::new(),
        order_by: Vec::new(),
        per_partition_limit: None,
        limit: None,
        allow_filtering: false,
    };
    assert_eq!(select("SELECT * FROM system.local WHERE key='local'"), want);
    assert_eq!(
        select("select * from system.local where key = 'local'"),
        want
    );
    assert_eq!(
        select("SELECT * FROM system.local WHERE key='local' USING TIMEOUT 30000ms"),
        want
    );
}

#[test]
fn projections_aliases_and_functions() {
    let sel = select(
        "SELECT keyspace_name, toJson(replication) AS replication FROM system_schema.keyspaces",
    );
    assert_eq!(sel.table, qn(Some("system_schema"), "keyspaces"));
    assert_eq!(
        sel.items,
        vec![
            col("keyspace_name"),
            SelectItem {
                selector: Selector::Function {
                    name: "tojson".into(),
                    args: vec![Selector::Column("replication".into())]
                },
                alias: Some("replication".into()),
            }
        ]
    );
    let sel = select(
        "SELECT count(*), COUNT(1), writetime(v), TTL(v), token(k1, k2), now(), uuid(), \
         toTimestamp(now()), minTimeuuid(?), CAST(v AS text), 42, 'x' FROM t",
    );
    let selectors: Vec<Selector> = sel.items.into_iter().map(|i| i.selector).collect();
    let func = |name: &str, args: Vec<Selector>| Selector::Function {
        name: name.into(),
        args,
    };
    let column = |name: &str| Selector::Column(name.into());
    assert_eq!(
        selectors,
        vec![
            Selector::CountStar,
            Selector::CountStar,
            func("writetime", vec![column("v")]),
            func("ttl", vec![column("v")]),
            func("token", vec![column("k1"), column("k2")]),
            func("now", vec![]),
            func("uuid", vec![]),
            func("totimestamp", vec![func("now", vec![])]),
            func("mintimeuuid", vec![Selector::Term(Term::BindMarker(None))]),
            Selector::Cast {
                selector: Box::new(column("v")),
                ty: native(NativeType::Text)
            },
            Selector::Term(Term::Integer("42".into())),
            Selector::Term(s("x")),
        ]
    );
}

#[test]
fn keywords_as_column_names() {
    let sel = select(
        "SELECT key, type, name, value, ttl, writetime, count, filtering, keys, json FROM t",
    );
    let names: Vec<String> = sel
        .items
        .into_iter()
        .map(|i| match i.selector {
            Selector::Column(c) => c,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "key",
            "type",
            "name",
            "value",
            "ttl",
            "writetime",
            "count",
            "filtering",
            "keys",
            "json"
        ]
    );
    let sel = select("SELECT JSON DISTINCT k FROM t");
    assert!(sel.json && sel.distinct);
    assert_eq!(sel.items, vec![col("k")]);
    let sel = select("SELECT DISTINCT, json FROM t");
    assert!(!sel.json && !sel.distinct);
    error("SELECT select FROM t");
    assert_eq!(
        select("SELECT \"select\" FROM t").items,
        vec![col("select")]
    );
}

#[test]
fn identifier_case_rules() {
    let sel = select("SELECT MyCol, \"MyCol\", \"a\"\"b\" FROM MyKs.\"MyTable\" WHERE Key = 1");
    assert_eq!(sel.items, vec![col("mycol"), col("MyCol"), col("a\"b")]);
    assert_eq!(sel.table, qn(Some("myks"), "MyTable"));
    assert_eq!(sel.where_clause, vec![eq("key", Term::Integer("1".into()))]);
    assert_eq!(parse("USE \"Ks\""), Statement::Use("Ks".into()));
    assert_eq!(parse("use Ks;"), Statement::Use("ks".into()));
}

#[test]
fn relations() {
    let sel = select(
        "SELECT * FROM t WHERE a = 1 AND b < 2 AND c <= 3 AND d > 4 AND e >= 5 AND f != 6 \
         AND g IN (1, 2) AND h IN ? AND (i, j) > (1, 'x') AND (k, l) IN ((1, 2), (3, 4)) \
         AND token(a, b) > -9223372036854775808 AND m CONTAINS 'v' AND n CONTAINS KEY 'k' \
         AND o LIKE 'ab%' AND p IS NOT NULL",
    );
    let int = |n: &str| Term::Integer(n.into());
    let rel = |c: &str, op, value| Relation::Column {
        column: c.into(),
        op,
        value,
    };
    let names = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    assert_eq!(
        sel.where_clause,
        vec![
            rel("a", Operator::Eq, int("1")),
            rel("b", Operator::Lt, int("2")),
            rel("c", Operator::Le, int("3")),
            rel("d", Operator::Gt, int("4")),
            rel("e", Operator::Ge, int("5")),
            rel("f", Operator::Ne, int("6")),
            rel("g", Operator::In, Term::Tuple(vec![int("1"), int("2")])),
            rel("h", Operator::In, Term::BindMarker(None)),
            Relation::MultiColumn {
                columns: names(&["i", "j"]),
                op: Operator::Gt,
                value: Term::Tuple(vec![int("1"), s("x")]),
            },
            Relation::MultiColumn {
                columns: names(&["k", "l"]),
                op: Operator::In,
                value: Term::Tuple(vec![
                    Term::Tuple(vec![int("1"), int("2")]),
                    Term::Tuple(vec![int("3"), int("4")]),
                ]),
            },
            Relation::Token {
                columns: names(&["a", "b"]),
                op: Operator::Gt,
                value: int("-9223372036854775808"),
            },
            rel("m", Operator::Contains, s("v")),
            rel("n", Operator::ContainsKey, s("k")),
            rel("o", Operator::Like, s("ab%")),
            rel("p", Operator::IsNot, Term::Null),
        ]
    );
}

#[test]
fn select_clauses() {
    let sel = select(
        "SELECT * FROM ks.t WHERE k = ? GROUP BY k, c ORDER BY c DESC, d ASC, e \
         PER PARTITION LIMIT 2 LIMIT ? ALLOW FILTERING",
    );
    assert_eq!(sel.group_by, vec!["k".to_string(), "c".to_string()]);
    assert_eq!(
        sel.order_by,
        vec![
            ("c".into(), Order::Desc),
            ("d".into(), Order::Asc),
            ("e".into(), Order::Asc)
        ]
    );
    assert_eq!(sel.per_partition_limit, Some(Term::Integer("2".into())));
    assert_eq!(sel.limit, Some(Term::BindMarker(None)));
    assert!(sel.allow_filtering);
}

#[test]
fn terms() {
    let sel = select(
        "SELECT * FROM t WHERE a = [1, 2] AND b = {'x': 1, 'y': 2} AND c = {1, 2} AND d = {} \
         AND e = (1, 'a') AND f = {street: 'x', \"Zip\": 1} AND g = 0xCAFE AND h = true \
         AND i = 550e8400-e29b-41d4-a716-446655440000 AND j = -1.5e3 AND k = NaN AND l = -Infinity \
         AND m = 1h30m AND n = null AND o = (int) 5 AND p = now() AND q = :named AND r = $$x$$",
    );
    let values: Vec<Term> = sel
        .where_clause
        .into_iter()
        .map(|r| match r {
            Relation::Column { value, .. } => value,
            other => panic!("{other:?}"),
        })
        .collect();
    let int = |n: &str| Term::Integer(n.into());
    assert_eq!(
        values,
        vec![
            Term::List(vec![int("1"), int("2")]),
            Term::Map(vec![(s("x"), int("1")), (s("y"), int("2"))]),
            Term::Set(vec![int("1"), int("2")]),
            Term::Map(vec![]),
            Term::Tuple(vec![int("1"), s("a")]),
            Term::UserType(vec![("street".into(), s("x")), ("Zip".into(), int("1"))]),
            Term::Blob("CAFE".into()),
            Term::Boolean(true),
            Term::Uuid("550e8400-e29b-41d4-a716-446655440000".into()),
            Term::Float("-1.5e3".into()),
            Term::Float("NaN".into()),
            Term::Float("-Infinity".into()),
            Term::Duration("1h30m".into()),
            Term::Null,
            Term::Cast {
                ty: native(NativeType::Int),
                term: Box::new(int("5"))
            },
            Term::FunctionCall {
                name: "now".into(),
                args: vec![]
            },
            Term::BindMarker(Some("named".into())),
            s("x"),
        ]
    );
}

#[test]
fn keyspace_ddl() {
    let stmt = parse(
        "CREATE KEYSPACE IF NOT EXISTS chat WITH replication = {'class': 'SimpleStrategy', \
         'replication_factor': 3} AND durable_writes = false",
    );
    let replication = OptionValue::Map(vec![
        ("class".into(), "SimpleStrategy".into()),
        ("replication_factor".into(), "3".into()),
    ]);
    assert_eq!(
        stmt,
        Statement::CreateKeyspace(CreateKeyspace {
            name: "chat".into(),
            if_not_exists: true,
            options: vec![
                ("replication".into(), replication),
                ("durable_writes".into(), OptionValue::Boolean(false)),
            ],
        })
    );
    let stmt = parse(
        "ALTER KEYSPACE \"Ks\" WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': '3'}",
    );
    assert!(
        matches!(stmt, Statement::AlterKeyspace(AlterKeyspace { ref name, if_exists: false, .. }) if name == "Ks")
    );
    assert_eq!(
        parse("DROP KEYSPACE IF EXISTS ks"),
        Statement::DropKeyspace {
            name: "ks".into(),
            if_exists: true
        }
    );
    assert_eq!(
        parse("DROP KEYSPACE ks"),
        Statement::DropKeyspace {
            name: "ks".into(),
            if_exists: false
        }
    );
}

#[test]
fn type_ddl() {
    let stmt = parse(
        "CREATE TYPE IF NOT EXISTS ks.address (street text, \"Zip\" int, tags frozen<set<text>>)",
    );
    assert_eq!(
        stmt,
        Statement::CreateType(CreateType {
            name: qn(Some("ks"), "address"),
            if_not_exists: true,
            fields: vec![
                ("street".into(), native(NativeType::Text)),
                ("Zip".into(), native(NativeType::Int)),
                (
                    "tags".into(),
                    CqlType::frozen(CqlType::set(native(NativeType::Text)))
                ),
            ],
        })
    );
    assert_eq!(
        parse("ALTER TYPE address ADD country varchar"),
        Statement::AlterType(AlterType {
            name: qn(None, "address"),
            if_exists: false,
            op: AlterTypeOp::Add {
                field: "country".into(),
                ty: native(NativeType::Text)
            },
        })
    );
    assert_eq!(
        parse("ALTER TYPE IF EXISTS address RENAME a TO b AND c TO d"),
        Statement::AlterType(AlterType {
            name: qn(None, "address"),
            if_exists: true,
            op: AlterTypeOp::Rename(vec![("a".into(), "b".into()), ("c".into(), "d".into())]),
        })
    );
    assert_eq!(
        parse("DROP TYPE IF EXISTS ks.address"),
        Statement::DropType {
            name: qn(Some("ks"), "address"),
            if_exists: true
        }
    );
}

fn create_table(text: &str) -> CreateTable {
    match parse(text) {
        Statement::CreateTable(t) => t,
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_type_in_a_table() {
    let mut columns: Vec<String> = NativeType::ALL
        .iter()
        .map(|n| format!("c_{} {}", n.name(), n.name()))
        .collect();
    let complex = [
        "list<int>",
        "set<text>",
        "map<text, int>",
        "frozen<list<int>>",
        "tuple<int, text>",
        "frozen<tuple<int, frozen<list<text>>>>",
        "address",
        "frozen<address>",
        "frozen<ks.address>",
        "map<text, frozen<map<int, frozen<set<uuid>>>>>",
        "list<frozen<address>>",
        "varchar",
        "'org.apache.cassandra.db.marshal.BytesType'",
    ];
    columns.extend(complex.iter().enumerate().map(|(i, t)| format!("x{i} {t}")));
    let text = format!("CREATE TABLE t (k int PRIMARY KEY, {})", columns.join(", "));
    let table = create_table(&text);
    assert_eq!(table.partition_key, vec!["k".to_string()]);
    for (def, column) in columns.iter().zip(&table.columns[1..]) {
        let written = def.split_once(' ').map_or("", |(_, t)| t);
        let want = CqlType::parse(written).expect(written);
        assert_eq!(column.ty, want, "{def}");
    }
}

#[test]
fn table_keys_static_and_options() {
    let table = create_table(
        "CREATE TABLE IF NOT EXISTS chat.messages_by_thread ( thread_id uuid, bucket int, \
         message_id timeuuid, author text, body text, thread_title text STATIC, \
         PRIMARY KEY ((thread_id, bucket), message_id, author) ) WITH CLUSTERING ORDER BY \
         (message_id DESC, author ASC) AND comment = 'msgs' AND gc_grace_seconds = 864000 \
         AND compaction = {'class': 'SizeTieredCompactionStrategy', 'max_threshold': '32'} \
         AND COMPACT STORAGE;",
    );
    assert!(table.if_not_exists);
    assert_eq!(table.name, qn(Some("chat"), "messages_by_thread"));
    assert_eq!(
        table.partition_key,
        vec!["thread_id".to_string(), "bucket".to_string()]
    );
    assert_eq!(
        table.clustering_key,
        vec!["message_id".to_string(), "author".to_string()]
    );
    assert_eq!(
        table.clustering_order,
        vec![
            ("message_id".into(), Order::Desc),
            ("author".into(), Order::Asc)
        ]
    );
    assert!(table.compact_storage);
    assert!(table
        .columns
        .iter()
        .any(|c| c.name == "thread_title" && c.is_static));
    assert_eq!(table.options.len(), 3);
    assert_eq!(
        table.options[0],
        ("comment".into(), OptionValue::String("msgs".into()))
    );
    assert_eq!(
        table.options[1],
        (
            "gc_grace_seconds".into(),
            OptionValue::Number("864000".into())
        )
    );

    let table = create_table("CREATE COLUMNFAMILY t (a int, b int, PRIMARY KEY (a, b),)");
    assert_eq!(
        (table.partition_key, table.clustering_key),
        (vec!["a".into()], vec!["b".into()])
    );
    let table = create_table("create table t (a int, b text, primary key (a))");
    assert!(table.clustering_key.is_empty());
    let err = error("CREATE TABLE t (a int PRIMARY KEY, b int, PRIMARY KEY (b))");
    assert!(err.message.starts_with("Multiple PRIMARY KEYs"), "{err}");
    assert_eq!((err.line, err.column), (1, 42));
}

/// Cassandra's grammar lets a comma trail, or repeat, in CREATE TABLE and CREATE TYPE
/// (`( ',' element? )*`), but the list may not start empty.
#[test]
fn column_lists_take_trailing_and_repeated_commas() {
    let table = create_table("CREATE TABLE t (a int, b int,, PRIMARY KEY (a),)");
    assert_eq!(table.columns.len(), 2);
    assert_eq!(table.partition_key, ["a"]);
    let Statement::CreateType(t) = parse("CREATE TYPE ks.pt (x int, y int,)") else {
        panic!("not a CREATE TYPE");
    };
    assert_eq!(t.fields.len(), 2);
    let Statement::CreateType(t) = parse("CREATE TYPE pt (x int,, y int)") else {
        panic!("not a CREATE TYPE");
    };
    assert_eq!(t.fields.len(), 2);
    for text in [
        "CREATE TABLE t ()",
        "CREATE TABLE t (, a int PRIMARY KEY)",
        "CREATE TYPE pt ()",
        "CREATE TYPE pt (, x int)",
    ] {
        assert!(crate::cql::parse_statement(text).is_err(), "{text}");
    }
}

/// `DESCRIBE ... WITH INTERNALS` prints the table id as a bare UUID constant; Cassandra's
/// `propertyValue` accepts any constant, so CREATE TABLE must take it back.
#[test]
fn create_table_with_bare_uuid_id() {
    let uuid = "5a1c395e-b41f-11e5-9f22-ba0be0483c18";
    let table = create_table(&format!(
        "CREATE TABLE t (k int PRIMARY KEY) WITH ID = {uuid} AND comment = 'c'"
    ));
    assert_eq!(
        table.options,
        vec![
            ("id".into(), OptionValue::String(uuid.into())),
            ("comment".into(), OptionValue::String("c".into())),
        ]
    );
    let quoted = create_table(&format!(
        "CREATE TABLE t (k int PRIMARY KEY) WITH ID = '{uuid}'"
    ));
    assert_eq!(quoted.options, table.options[..1]);
}

#[test]
fn alter_and_drop_table() {
    let alter = |text: &str| match parse(text) {
        Statement::AlterTable(a) => a,
        other => panic!("{other:?}"),
    };
    let def = |name: &str, ty: CqlType, is_static| ColumnDefinition {
        name: name.into(),
        ty,
        is_static,
    };
    let a = alter("ALTER TABLE IF EXISTS ks.t ADD IF NOT EXISTS c list<int> static");
    assert!(a.if_exists);
    assert_eq!(
        a.op,
        AlterTableOp::Add {
            columns: vec![def("c", CqlType::list(native(NativeType::Int)), true)],
            if_not_exists: true
        }
    );
    let a = alter("ALTER TABLE t ADD (c int, d text)");
    assert!(
        matches!(a.op, AlterTableOp::Add { ref columns, if_not_exists: false } if columns.len() == 2)
    );
    let a = alter("ALTER TABLE t DROP IF EXISTS c");
    assert_eq!(
        a.op,
        AlterTableOp::Drop {
            columns: vec!["c".into()],
            if_exists: true,
            timestamp: None
        }
    );
    let a = alter("ALTER TABLE t DROP (c, d) USING TIMESTAMP 123");
    assert_eq!(
        a.op,
        AlterTableOp::Drop {
            columns: vec!["c".into(), "d".into()],
            if_exists: false,
            timestamp: Some(123)
        }
    );
    for text in [
        "ALTER TABLE t DROP c USING TIMESTAMP ?",
        "ALTER TABLE t DROP c USING TIMESTAMP 'x'",
        "ALTER TABLE t DROP c USING TIMESTAMP 99999999999999999999",
    ] {
        assert!(crate::cql::parse_statement(text).is_err(), "{text}");
    }
    let a = alter("ALTER TABLE t RENAME a TO b AND c TO d");
    assert_eq!(
        a.op,
        AlterTableOp::Rename(vec![("a".into(), "b".into()), ("c".into(), "d".into())])
    );
    let a = alter("ALTER COLUMNFAMILY t WITH comment = 'x' AND default_time_to_live = 10");
    assert!(matches!(a.op, AlterTableOp::With(ref o) if o.len() == 2));
    assert_eq!(
        parse("DROP TABLE IF EXISTS ks.t"),
        Statement::DropTable {
            name: qn(Some("ks"), "t"),
            if_exists: true
        }
    );
    assert_eq!(
        parse("DROP COLUMNFAMILY t"),
        Statement::DropTable {
            name: qn(None, "t"),
            if_exists: false
        }
    );
}

#[test]
fn describe_forms() {
    let d = |text: &str| match parse(text) {
        Statement::Describe(d) => (d.target, d.with_internals),
        other => panic!("{other:?}"),
    };
    use DescribeTarget::*;
    assert_eq!(d("DESCRIBE CLUSTER"), (Cluster, false));
    assert_eq!(d("DESC KEYSPACES"), (Keyspaces, false));
    assert_eq!(
        d("describe keyspace"),
        (
            Keyspace {
                name: None,
                only: false
            },
            false
        )
    );
    assert_eq!(
        d("DESCRIBE ONLY KEYSPACE \"Ks\""),
        (
            Keyspace {
                name: Some("Ks".into()),
                only: true
            },
            false
        )
    );
    assert_eq!(
        d("DESCRIBE KEYSPACE ks WITH INTERNALS"),
        (
            Keyspace {
                name: Some("ks".into()),
                only: false
            },
            true
        )
    );
    assert_eq!(d("DESCRIBE FULL SCHEMA"), (Schema { full: true }, false));
    assert_eq!(d("DESCRIBE SCHEMA;"), (Schema { full: false }, false));
    assert_eq!(d("DESCRIBE TABLES"), (Tables, false));
    assert_eq!(
        d("DESCRIBE TABLE ks.t"),
        (Table(qn(Some("ks"), "t")), false)
    );
    assert_eq!(d("DESCRIBE COLUMNFAMILY t"), (Table(qn(None, "t")), false));
    assert_eq!(d("DESCRIBE TYPES"), (Types, false));
    assert_eq!(
        d("DESCRIBE TYPE ks.address"),
        (Type(qn(Some("ks"), "address")), false)
    );
    assert_eq!(d("DESCRIBE FUNCTIONS"), (Functions, false));
    assert_eq!(d("DESCRIBE AGGREGATES"), (Aggregates, false));
    assert_eq!(d("DESCRIBE users"), (Name(qn(None, "users")), false));
    assert_eq!(
        d("DESC chat.users WITH INTERNALS"),
        (Name(qn(Some("chat"), "users")), true)
    );
    assert_eq!(
        d("DESCRIBE MATERIALIZED VIEW ks.v"),
        (Name(qn(Some("ks"), "v")), false)
    );
}

#[test]
fn unsupported_statements_are_named() {
    let cases = [
        ("CREATE INDEX ON t (a)", "CREATE INDEX"),
        ("CREATE CUSTOM INDEX i ON t (a) USING 'x'", "CREATE INDEX"),
        ("DROP INDEX i", "DROP INDEX"),
        (
            "CREATE MATERIALIZED VIEW v AS SELECT * FROM t",
            "CREATE MATERIALIZED VIEW",
        ),
        ("DROP MATERIALIZED VIEW v", "DROP MATERIALIZED VIEW"),
        (
            "CREATE OR REPLACE FUNCTION f() RETURNS NULL ON NULL INPUT",
            "CREATE FUNCTION",
        ),
        ("CREATE AGGREGATE a", "CREATE AGGREGATE"),
        ("DROP FUNCTION f", "DROP FUNCTION"),
        ("CREATE TRIGGER tr ON t USING 'c'", "CREATE TRIGGER"),
        ("CREATE ROLE r WITH PASSWORD = 'p'", "CREATE ROLE"),
        ("ALTER USER u WITH PASSWORD 'p'", "ALTER USER"),
        ("DROP USER u", "DROP USER"),
        ("GRANT SELECT ON ALL KEYSPACES TO r", "GRANT"),
        ("REVOKE SELECT ON ALL KEYSPACES FROM r", "REVOKE"),
        ("LIST ROLES", "LIST"),
    ];
    for (text, what) in cases {
        assert_eq!(
            parse(text),
            Statement::Unsupported { what: what.into() },
            "{text}"
        );
    }
}

#[test]
fn syntax_errors_say_where() {
    let err = error("SELECT * FRM system.local");
    assert_eq!((err.line, err.column), (1, 9));
    assert_eq!(
        err.to_string(),
        "line 1:9 mismatched input 'FRM' expecting K_FROM (SELECT * [FRM] system....)"
    );
    let err = error("SELECT a b FROM t");
    assert_eq!((err.line, err.column), (1, 9));
    let err = error("SELECT *\nFROM t\nWHERE a = = 1");
    assert_eq!((err.line, err.column), (3, 10));
    assert!(
        err.message
            .starts_with("no viable alternative at input '='"),
        "{err}"
    );
    let err = error("SELECT * FROM");
    assert_eq!((err.line, err.column), (1, 13));
    assert_eq!(err.message, "no viable alternative at input '<EOF>'");
    let err = error("FOO BAR");
    assert_eq!((err.line, err.column), (1, 0));
    let err = error("SELECT * FROM t LIMIT 1 garbage");
    assert_eq!((err.line, err.column), (1, 24));
    assert!(
        err.message
            .starts_with("mismatched input 'garbage' expecting EOF"),
        "{err}"
    );
    let err = error("CREATE TABLE t (a list<int, b int)");
    assert_eq!((err.line, err.column), (1, 26));
    assert_eq!(
        error("").to_string(),
        "line 1:0 no viable alternative at input '<EOF>'"
    );
    assert_eq!(error("SELECT 'x").line, 1);
}

#[test]
fn hostile_input_does_not_overflow() {
    let deep = format!(
        "SELECT * FROM t WHERE a = {}1{}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(error(&deep).message.contains("nested too deeply"));
    let deep = format!("SELECT {}a{} FROM t", "f(".repeat(5000), ")".repeat(5000));
    assert!(error(&deep).message.contains("nested too deeply"));
    let deep = format!(
        "CREATE TABLE t (a {}int{})",
        "list<".repeat(5000),
        ">".repeat(5000)
    );
    assert!(error(&deep).message.contains("nested too deeply"));
    for text in [
        "(",
        ")",
        "{",
        "SELECT (",
        "SELECT * FROM t WHERE (",
        "DESCRIBE",
        "CREATE",
        ";",
        "USE",
    ] {
        error(text);
    }
}

#[test]
fn chat_schema_with_comments() {
    let table = create_table(
        "-- Message history: time-bucketed, newest first\n\
         CREATE TABLE IF NOT EXISTS chat.messages_by_thread (\n\
             thread_id      text,\n\
             bucket         int,   -- floor(x / 10); 10-day buckets\n\
             message_id     timeuuid, /* time-ordered; unique */\n\
             other_threads  frozen<set<text>>,\n\
             user           text,\n\
             PRIMARY KEY ((thread_id, bucket), message_id)\n\
         ) WITH CLUSTERING ORDER BY (message_id DESC);",
    );
    assert_eq!(table.partition_key, ["thread_id", "bucket"]);
    assert_eq!(
        table.clustering_order,
        vec![("message_id".into(), Order::Desc)]
    );
    assert_eq!(table.columns.len(), 5);
}
