//! Catalog tests: DDL rules, system tables, schema version, rows and persistence.
//! DESCRIBE golden strings live in `describe_tests.rs`.

use super::*;
use crate::cql::parse_statement;
use crate::cql::value::CqlValue;
use crate::cql::CqlType;
use crate::protocol::response::{ChangeType, SchemaChange, SchemaTarget};

/// The data centres of the cluster these tests apply DDL in.
pub(super) fn data_centers() -> DataCenters {
    DataCenters::new(["datacenter1", "dc1", "dc2"])
}

/// Parses and applies `cql`, returning the schema change or the error.
pub(super) fn run(
    cat: &mut Catalog,
    cql: &str,
    ks: Option<&str>,
) -> Result<Option<SchemaChange>, SchemaError> {
    let stmt = parse_statement(cql).unwrap_or_else(|e| panic!("parse {cql}: {e}"));
    let dcs = data_centers();
    cat.apply_with(&stmt, ks, &context(&dcs))
}

/// What a test's schema changes take from outside their statements.
fn context(data_centers: &DataCenters) -> crate::schema::ApplyContext<'_> {
    crate::schema::ApplyContext {
        data_centers,
        table_id: uuid::Uuid::new_v4(),
        now_micros: crate::clock::now_micros(),
    }
}

/// Applies every statement, panicking on failure (test setup).
pub(super) fn setup(cql: &[&str]) -> Catalog {
    let mut cat = Catalog::new();
    for stmt in cql {
        if let Err(e) = run(&mut cat, stmt, None) {
            panic!("{stmt}: {e}");
        }
    }
    cat
}

fn err(cat: &mut Catalog, cql: &str, ks: Option<&str>) -> SchemaError {
    match run(cat, cql, ks) {
        Err(e) => e,
        Ok(c) => panic!("{cql} succeeded: {c:?}"),
    }
}

const KS: &str =
    "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}";

#[test]
fn system_keyspaces_are_built_in() {
    let cat = Catalog::new();
    for ks in [
        "system",
        "system_schema",
        "system_auth",
        "system_distributed",
        "system_traces",
        "system_virtual_schema",
        "system_views",
    ] {
        assert!(cat.keyspace(ks).is_some(), "{ks}");
    }
    let local = cat.table("system", "local").expect("system.local");
    let names: Vec<&str> = local.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"key"));
    let mut rest = names[1..].to_vec();
    rest.sort_unstable();
    assert_eq!(rest, names[1..].to_vec(), "regular columns alphabetical");
    let host = local.column("host_id").map(|c| c.ty.to_string());
    assert_eq!(host.as_deref(), Some("uuid"));
    assert_eq!(
        local.column("tokens").map(|c| c.ty.to_string()).as_deref(),
        Some("set<text>")
    );
    let peers = cat.table("system", "peers_v2").expect("peers_v2");
    assert_eq!(
        peers.clustering().first().map(|c| c.name.as_str()),
        Some("peer_port")
    );
    assert!(cat
        .table("system_schema", "tables")
        .and_then(|t| t.column("flags"))
        .is_some());
    assert!(cat.keyspace("system_views").is_some_and(|k| k.is_virtual()));
    assert_eq!(
        cat.keyspace("system_auth")
            .and_then(|k| k.replication.get("class"))
            .map(String::as_str),
        Some("org.apache.cassandra.locator.SimpleStrategy")
    );
}

#[test]
fn keyspace_ddl() {
    let mut cat = Catalog::new();
    let change = run(&mut cat, KS, None).expect("create");
    assert_eq!(
        change,
        Some(SchemaChange {
            change: ChangeType::Created,
            target: SchemaTarget::Keyspace("ks".into())
        })
    );
    let ks = cat.keyspace("ks").expect("ks");
    assert_eq!(
        ks.replication.get("replication_factor").map(String::as_str),
        Some("1")
    );
    let e = err(&mut cat, KS, None);
    assert_eq!(e.code(), 0x2400);
    assert_eq!(e.to_string(), "Cannot add existing keyspace \"ks\"");
    let again = KS.replace("KEYSPACE ks", "KEYSPACE IF NOT EXISTS ks");
    assert_eq!(run(&mut cat, &again, None), Ok(None));
    let e = err(
        &mut cat,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'SimpleStrategy'}",
        None,
    );
    assert_eq!(
        e,
        SchemaError::ConfigError(
            "SimpleStrategy requires a replication_factor strategy option.".into()
        )
    );
    let e = err(
        &mut cat,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'Bogus'}",
        None,
    );
    assert_eq!(e.code(), 0x2300);
    let e = err(
        &mut cat,
        "CREATE KEYSPACE k2 WITH durable_writes = true",
        None,
    );
    assert_eq!(
        e,
        SchemaError::Invalid("Missing mandatory option 'replication'".into())
    );
    let altered = run(
        &mut cat,
        "ALTER KEYSPACE ks WITH durable_writes = false",
        None,
    )
    .expect("alter");
    assert_eq!(altered.map(|c| c.change), Some(ChangeType::Updated));
    let e = err(&mut cat, "DROP KEYSPACE nope", None);
    assert_eq!(
        e,
        SchemaError::Invalid("Keyspace 'nope' doesn't exist".into())
    );
    assert_eq!(
        run(&mut cat, "DROP KEYSPACE IF EXISTS nope", None),
        Ok(None)
    );
    let dropped = run(&mut cat, "DROP KEYSPACE ks", None).expect("drop");
    assert_eq!(dropped.map(|c| c.change), Some(ChangeType::Dropped));
}

#[test]
fn system_keyspaces_are_protected() {
    let mut cat = Catalog::new();
    let e = err(&mut cat, "DROP KEYSPACE system", None);
    assert_eq!(
        e,
        SchemaError::Unauthorized("system keyspace is not user-modifiable.".into())
    );
    let e = err(
        &mut cat,
        "CREATE TABLE system_schema.x (a int PRIMARY KEY)",
        None,
    );
    assert_eq!(e.code(), 0x2100);
    let e = err(&mut cat, "DROP TABLE system_auth.roles", None);
    assert_eq!(
        e,
        SchemaError::Unauthorized("Cannot DROP <table system_auth.roles>".into())
    );
    let ok = run(
        &mut cat,
        "ALTER KEYSPACE system_auth WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
        None,
    );
    assert!(ok.is_ok_and(|c| c.is_some()));
    let e = err(&mut cat, "CREATE KEYSPACE system WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}", None);
    assert_eq!(e.code(), 0x2400);
}

#[test]
fn table_ddl_and_column_order() {
    let mut cat = setup(&[KS]);
    let change = run(
        &mut cat,
        "CREATE TABLE ks.t (pk1 text, pk2 int, c int, s decimal static, v2 int, v1 text, l list<int>, PRIMARY KEY ((pk1, pk2), c)) WITH CLUSTERING ORDER BY (c DESC) AND comment = 'hi'",
        None,
    )
    .expect("create");
    assert_eq!(
        change.map(|c| c.target),
        Some(SchemaTarget::Table {
            keyspace: "ks".into(),
            name: "t".into()
        })
    );
    let t = cat.table("ks", "t").expect("t");
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["pk1", "pk2", "c", "s", "l", "v1", "v2"]);
    assert_eq!(t.partition_key().len(), 2);
    assert_eq!(
        t.clustering().first().map(|c| c.order),
        Some(ClusteringOrder::Desc)
    );
    assert_eq!(t.column("s").map(|c| c.kind), Some(ColumnKind::Static));
    assert_eq!(t.column("v1").map(|c| c.position), Some(-1));
    assert_eq!(t.options.comment, "hi");
    assert_eq!(t.flags(), ["compound"]);
    let e = err(&mut cat, "CREATE TABLE ks.t (a int PRIMARY KEY)", None);
    assert_eq!(
        e.to_string(),
        "Cannot add already existing table \"t\" to keyspace \"ks\""
    );
    assert_eq!(
        run(
            &mut cat,
            "CREATE TABLE IF NOT EXISTS ks.t (a int PRIMARY KEY)",
            None
        ),
        Ok(None)
    );
    let created = run(&mut cat, "CREATE TABLE u (a int PRIMARY KEY)", Some("ks"));
    assert!(created.is_ok_and(|c| c.is_some()));
}

#[test]
fn table_validation_messages() {
    let mut cat = setup(&[KS]);
    let cases = [
        ("CREATE TABLE t (a int PRIMARY KEY)", None, "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename"),
        ("CREATE TABLE nope.t (a int PRIMARY KEY)", None, "Keyspace 'nope' doesn't exist"),
        ("CREATE TABLE ks.t (a int, PRIMARY KEY (b))", None, "Unknown column 'b' referenced in PRIMARY KEY for table 't'"),
        ("CREATE TABLE ks.t (a list<int>, PRIMARY KEY (a))", None, "Invalid non-frozen collection type list<int> for PRIMARY KEY column 'a'"),
        ("CREATE TABLE ks.t (a int PRIMARY KEY, b counter, c int)", None, "Cannot mix counter and non counter columns in the same table"),
        ("CREATE TABLE ks.t (a int PRIMARY KEY, s int static)", None, "Static columns are only useful (and thus allowed) if the table has at least one clustering column"),
        ("CREATE TABLE ks.t (a int PRIMARY KEY, b frozen<nope>)", None, "Unknown type ks.nope"),
        ("CREATE TABLE ks.t (a int PRIMARY KEY, b list<list<int>>)", None, "Non-frozen collections are not allowed inside collections: list<frozen<list<int>>>"),
        ("CREATE TABLE ks.t (a int, b int, PRIMARY KEY (a, b)) WITH CLUSTERING ORDER BY (a DESC)", None, "Missing CLUSTERING ORDER for column b"),
        ("CREATE TABLE ks.t (a counter PRIMARY KEY)", None, "counter type is not supported for PRIMARY KEY column 'a'"),
        ("ALTER TABLE ks.nope ADD x int", None, "Table 'ks.nope' doesn't exist"),
    ];
    for (cql, ks, want) in cases {
        let e = err(&mut cat, cql, ks);
        assert_eq!(e.to_string(), want, "{cql}");
        assert_eq!(e.code(), 0x2200, "{cql}");
    }
    let e = err(
        &mut cat,
        "CREATE TABLE ks.t (a int PRIMARY KEY) WITH nope = 1",
        None,
    );
    assert_eq!(e, SchemaError::Syntax("Unknown property 'nope'".into()));
    let e = err(
        &mut cat,
        "CREATE TABLE ks.t (a int PRIMARY KEY) WITH gc_grace_seconds = -1",
        None,
    );
    assert_eq!(e.code(), 0x2300);
    assert!(
        cat.keyspace("ks").is_some_and(|k| k.tables.is_empty()),
        "failed DDL changed nothing"
    );
}

#[test]
fn alter_table() {
    let mut cat = setup(&[
        KS,
        "CREATE TABLE ks.t (k int, c int, v text, PRIMARY KEY (k, c))",
    ]);
    let cases = [
        ("ALTER TABLE ks.t ADD v int", "Column with name 'v' already exists"),
        ("ALTER TABLE ks.t DROP k", "Cannot drop PRIMARY KEY column k"),
        ("ALTER TABLE ks.t DROP zz", "Column zz was not found in table 'ks.t'"),
        ("ALTER TABLE ks.t RENAME v TO w", "Cannot rename non PRIMARY KEY column v"),
        ("ALTER TABLE ks.t RENAME c TO v", "Cannot rename column c to v in table 'ks.t'; another column with that name already exists"),
    ];
    for (cql, want) in cases {
        assert_eq!(err(&mut cat, cql, None).to_string(), want, "{cql}");
    }
    run(&mut cat, "ALTER TABLE ks.t ADD (a int, b set<text>)", None).expect("add");
    run(&mut cat, "ALTER TABLE ks.t RENAME c TO c2", None).expect("rename");
    run(&mut cat, "ALTER TABLE ks.t DROP v", None).expect("drop");
    run(
        &mut cat,
        "ALTER TABLE ks.t WITH gc_grace_seconds = 5 AND caching = {'keys': 'NONE'}",
        None,
    )
    .expect("with");
    let t = cat.table("ks", "t").expect("t");
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["k", "c2", "a", "b"]);
    assert!(t.dropped.contains_key("v"));
    assert_eq!(t.options.gc_grace_seconds, 5);
    assert_eq!(
        t.options.caching.get("keys").map(String::as_str),
        Some("NONE")
    );
    let e = err(&mut cat, "ALTER TABLE ks.t ADD v int", None);
    assert!(
        e.to_string()
            .starts_with("Cannot re-add previously dropped column 'v'"),
        "{e}"
    );
    assert_eq!(
        run(&mut cat, "ALTER TABLE ks.t ADD IF NOT EXISTS a int", None),
        Ok(None)
    );
    let dropped = run(&mut cat, "DROP TABLE ks.t", None).expect("drop table");
    assert_eq!(dropped.map(|c| c.change), Some(ChangeType::Dropped));
}

#[test]
fn user_types() {
    let mut cat = setup(&[
        KS,
        "CREATE TYPE ks.addr (street text, zip int)",
        "CREATE TYPE ks.person (name text, home frozen<addr>)",
        "CREATE TABLE ks.t (k int PRIMARY KEY, p frozen<person>, a addr)",
    ]);
    let p = cat.user_type("ks", "person").expect("person");
    assert_eq!(
        p.fields.get(1).map(|(_, t)| t.to_string()).as_deref(),
        Some("frozen<addr>")
    );
    let col = cat.table("ks", "t").and_then(|t| t.column("p")).expect("p");
    assert_eq!(
        cat.resolve_udt("ks", &col.ty).map(|u| u.name.as_str()),
        Some("person")
    );
    let e = err(&mut cat, "DROP TYPE ks.addr", None);
    assert_eq!(
        e.to_string(),
        "Cannot drop user type 'ks.addr' as it is still used by user type ks.person, table ks.t"
    );
    let e = err(&mut cat, "CREATE TYPE ks.addr (x int)", None);
    assert_eq!(e.to_string(), "A user type with name 'addr' already exists");
    let e = err(&mut cat, "CREATE TYPE ks.bad (x addr)", None);
    assert_eq!(e.to_string(), "A user type cannot contain non-frozen UDTs");
    run(&mut cat, "ALTER TYPE ks.addr ADD city text", None).expect("alter add");
    run(&mut cat, "ALTER TYPE ks.addr RENAME zip TO postcode", None).expect("rename");
    let fields: Vec<&str> = cat
        .user_type("ks", "addr")
        .map(|t| t.fields.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["street", "postcode", "city"]);
    let e = err(
        &mut cat,
        "CREATE TABLE ks.u (k int PRIMARY KEY, l list<addr>)",
        None,
    );
    assert_eq!(
        e.to_string(),
        "Non-frozen UDTs are not allowed inside collections: list<frozen<addr>>"
    );
    run(&mut cat, "DROP TABLE ks.t", None).expect("drop t");
    run(&mut cat, "DROP TYPE ks.person", None).expect("drop person");
    let dropped = run(&mut cat, "DROP TYPE ks.addr", None).expect("drop addr");
    assert_eq!(dropped.map(|c| c.change), Some(ChangeType::Dropped));
}

#[test]
fn schema_version_is_a_content_hash() {
    let empty = Catalog::new();
    assert_eq!(empty.schema_version(), Catalog::new().schema_version());
    assert_eq!(empty.schema_version().get_version_num(), 3);
    let mut a = setup(&[KS]);
    let b = setup(&[KS]);
    assert_eq!(a.schema_version(), b.schema_version());
    assert_ne!(a.schema_version(), empty.schema_version());
    let before = a.schema_version();
    run(
        &mut a,
        "CREATE TABLE ks.t (k int PRIMARY KEY) WITH ID = '5a1c395e-b41f-11e5-9f22-ba0be0483c18'",
        None,
    )
    .expect("t");
    let after = a.schema_version();
    assert_ne!(before, after);
    let mut c = setup(&[KS]);
    run(
        &mut c,
        "CREATE TABLE ks.t (k int PRIMARY KEY) WITH ID = '5a1c395e-b41f-11e5-9f22-ba0be0483c18'",
        None,
    )
    .expect("t");
    assert_eq!(c.schema_version(), after, "same content, same version");
    run(&mut a, "ALTER TABLE ks.t WITH comment = 'x'", None).expect("alter");
    assert_ne!(a.schema_version(), after);
}

fn text_at(row: &[Option<CqlValue>], def: &TableDef, col: &str) -> Option<CqlValue> {
    let idx = def.columns.iter().position(|c| c.name == col)?;
    row.get(idx).cloned().flatten()
}

#[test]
fn schema_table_rows() {
    let cat = setup(&[KS, "CREATE TABLE ks.t (k int, c text, v list<int>, PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC)"]);
    let def = cat
        .table("system_schema", "keyspaces")
        .expect("def")
        .clone();
    let rows = cat
        .schema_table_rows("system_schema", "keyspaces")
        .expect("rows");
    let names: Vec<Option<CqlValue>> = rows
        .iter()
        .map(|r| text_at(r, &def, "keyspace_name"))
        .collect();
    assert!(names.contains(&Some(CqlValue::Text("ks".into()))));
    assert!(names.contains(&Some(CqlValue::Text("system".into()))));
    assert!(
        !names.contains(&Some(CqlValue::Text("system_views".into()))),
        "virtual keyspaces live in system_virtual_schema"
    );
    let def = cat.table("system_schema", "columns").expect("def").clone();
    let rows = cat
        .schema_table_rows("system_schema", "columns")
        .expect("rows");
    let ours: Vec<&Vec<Option<CqlValue>>> = rows
        .iter()
        .filter(|r| text_at(r, &def, "keyspace_name") == Some(CqlValue::Text("ks".into())))
        .collect();
    let cols: Vec<Option<CqlValue>> = ours
        .iter()
        .map(|r| text_at(r, &def, "column_name"))
        .collect();
    let t = |s: &str| Some(CqlValue::Text(s.into()));
    assert_eq!(cols, [t("c"), t("k"), t("v")]);
    let c_row = ours.first().expect("c row");
    assert_eq!(text_at(c_row, &def, "clustering_order"), t("desc"));
    assert_eq!(text_at(c_row, &def, "kind"), t("clustering"));
    assert_eq!(text_at(c_row, &def, "position"), Some(CqlValue::Int(0)));
    assert_eq!(text_at(ours[2], &def, "type"), t("list<int>"));
    assert_eq!(text_at(ours[2], &def, "position"), Some(CqlValue::Int(-1)));
    assert!(rows
        .iter()
        .any(|r| text_at(r, &def, "table_name") == t("local")));
    let def = cat.table("system_schema", "tables").expect("def").clone();
    let rows = cat
        .schema_table_rows("system_schema", "tables")
        .expect("rows");
    let row = rows
        .iter()
        .find(|r| text_at(r, &def, "table_name") == t("t"))
        .expect("t row");
    assert_eq!(
        text_at(row, &def, "flags"),
        Some(CqlValue::Set(vec![CqlValue::Text("compound".into())]))
    );
    assert_eq!(
        text_at(row, &def, "id"),
        cat.table("ks", "t").map(|t| CqlValue::Uuid(t.id))
    );
    assert!(row.len() == def.columns.len());
    let vrows = cat
        .schema_table_rows("system_virtual_schema", "tables")
        .expect("virtual");
    assert!(!vrows.is_empty());
    for table in [
        "functions",
        "aggregates",
        "triggers",
        "indexes",
        "views",
        "types",
    ] {
        assert!(
            cat.schema_table_rows("system_schema", table).is_some(),
            "{table}"
        );
    }
    assert!(cat.schema_table_rows("system", "local").is_none());
}

#[test]
fn store_round_trips_and_ignores_torn_temp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, empty) = SchemaStore::open(dir.path()).expect("open empty");
    assert_eq!(empty, Catalog::new());
    let mut cat = setup(&[
        KS,
        "CREATE TYPE ks.addr (street text, zip int)",
        "CREATE TABLE ks.t (k int, c text, a frozen<addr>, m map<text, frozen<list<int>>>, PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC) AND compaction = {'class': 'LeveledCompactionStrategy'}",
        "ALTER TABLE ks.t DROP m",
        "ALTER KEYSPACE system_auth WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}",
    ]);
    store.save(&cat).expect("save");
    let (_, loaded) = SchemaStore::open(dir.path()).expect("reopen");
    assert_eq!(loaded, cat);
    assert_eq!(loaded.schema_version(), cat.schema_version());
    std::fs::write(
        dir.path().join("schema.json.tmp"),
        b"{\"format_version\": 1, \"keysp",
    )
    .expect("torn");
    let (store, loaded) = SchemaStore::open(dir.path()).expect("reopen with torn temp");
    assert_eq!(loaded, cat);
    assert!(!dir.path().join("schema.json.tmp").exists());
    run(&mut cat, "DROP KEYSPACE ks", None).expect("drop");
    store.save(&cat).expect("save again");
    let (_, loaded) = SchemaStore::open(dir.path()).expect("reopen");
    assert!(loaded.keyspace("ks").is_none());
}

#[test]
fn store_refuses_unknown_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("schema.json"),
        b"{\"format_version\": 99, \"whatever\": []}",
    )
    .expect("write");
    let e = SchemaStore::open(dir.path()).err();
    assert!(
        matches!(e, Some(StoreError::UnknownVersion { found: 99, .. })),
        "{e:?}"
    );
    std::fs::write(dir.path().join("schema.json"), b"not json").expect("write");
    assert!(matches!(
        SchemaStore::open(dir.path()).err(),
        Some(StoreError::Corrupt { .. })
    ));
}

#[test]
fn user_types_resolve_to_tuples_for_key_encoding() {
    let cat = setup(&[
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TYPE ks.point (x double, y double)",
        "CREATE TYPE ks.segment (a frozen<point>, b frozen<point>, tags frozen<set<text>>)",
    ]);
    let ty: CqlType = "frozen<list<frozen<segment>>>".parse().expect("type");
    let resolved = cat.resolve_user_types("ks", &ty);
    let point = "frozen<tuple<double, double>>";
    let expected = format!("frozen<list<frozen<tuple<{point}, {point}, frozen<set<text>>>>>>");
    assert_eq!(resolved.to_string(), expected);
    let unknown: CqlType = "frozen<nope>".parse().expect("type");
    assert_eq!(cat.resolve_user_types("ks", &unknown), unknown);
}

/// The form most drivers' examples use: `replication_factor` under NetworkTopologyStrategy
/// is stored (and so shown in system_schema and DESCRIBE) as one entry per known data
/// centre, on CREATE and on ALTER; a data centre the cluster does not know is refused.
#[test]
fn network_topology_replication_factor_is_expanded() {
    let only_dc1 = DataCenters::new(["datacenter1"]);
    let mut cat = Catalog::new();
    let apply = |cat: &mut Catalog, cql: &str| {
        let stmt = parse_statement(cql).expect("parse");
        cat.apply_with(&stmt, None, &context(&only_dc1))
    };
    apply(
        &mut cat,
        "CREATE KEYSPACE n WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 1}",
    )
    .expect("create");
    let nts = "org.apache.cassandra.locator.NetworkTopologyStrategy";
    let want = |rf: &str| {
        std::collections::BTreeMap::from([
            ("class".to_string(), nts.to_string()),
            ("datacenter1".to_string(), rf.to_string()),
        ])
    };
    assert_eq!(cat.keyspace("n").map(|k| &k.replication), Some(&want("1")));
    let def = cat
        .table("system_schema", "keyspaces")
        .expect("def")
        .clone();
    let rows = cat
        .schema_table_rows("system_schema", "keyspaces")
        .expect("rows");
    let row = rows
        .iter()
        .find(|r| text_at(r, &def, "keyspace_name") == Some(CqlValue::Text("n".into())))
        .expect("row of n");
    let shown = CqlValue::Map(
        want("1")
            .into_iter()
            .map(|(k, v)| (CqlValue::Text(k), CqlValue::Text(v)))
            .collect(),
    );
    assert_eq!(text_at(row, &def, "replication"), Some(shown));
    assert_eq!(
        keyspace_cql(cat.keyspace("n").expect("n")),
        "CREATE KEYSPACE n WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': '1'}  AND durable_writes = true;"
    );
    // ALTER with the shorthand keeps an existing data centre's factor; naming it changes it.
    let alter = "ALTER KEYSPACE n WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 3}";
    apply(&mut cat, alter).expect("alter");
    assert_eq!(cat.keyspace("n").map(|k| &k.replication), Some(&want("1")));
    apply(
        &mut cat,
        "ALTER KEYSPACE n WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 3, 'datacenter1': 2}",
    )
    .expect("alter");
    assert_eq!(cat.keyspace("n").map(|k| &k.replication), Some(&want("2")));
    for cql in [
        "CREATE KEYSPACE m WITH replication = {'class': 'NetworkTopologyStrategy', 'dc9': 1}",
        "ALTER KEYSPACE n WITH replication = {'class': 'NetworkTopologyStrategy', 'dc9': 1}",
    ] {
        let e = apply(&mut cat, cql).expect_err(cql);
        assert_eq!(e.code(), 0x2300);
        let ks = if cql.starts_with("CREATE") { "m" } else { "n" };
        assert_eq!(
            e.to_string(),
            format!("Unrecognized strategy option {{dc9}} passed to NetworkTopologyStrategy for keyspace {ks}")
        );
    }
    assert!(cat.keyspace("m").is_none());
    assert_eq!(cat.keyspace("n").map(|k| &k.replication), Some(&want("2")));
}

/// Cassandra limits keyspace and table names to 48 characters (ConfigurationException,
/// the table's with TableMetadata's `ks.table: ` prefix); type, field and column names
/// have no limit.
#[test]
fn name_lengths_follow_cassandra() {
    let long = "a".repeat(49);
    let ok48 = "b".repeat(48);
    let mut cat = setup(&[KS]);
    let e = err(
        &mut cat,
        &format!("CREATE KEYSPACE {long} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
        None,
    );
    assert_eq!(e.code(), 0x2300);
    assert_eq!(
        e.to_string(),
        format!("Keyspace name must not be empty, more than 48 characters long, or contain non-alphanumeric-underscore characters (got \"{long}\")")
    );
    let e = err(
        &mut cat,
        &format!("CREATE TABLE ks.{long} (k int PRIMARY KEY)"),
        None,
    );
    assert_eq!(e.code(), 0x2300);
    assert_eq!(
        e.to_string(),
        format!("ks.{long}: Table name must not be empty, more than 48 characters long, or contain non-alphanumeric-underscore characters (got \"{long}\")")
    );
    for ok in [
        format!("CREATE KEYSPACE {ok48} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
        format!("CREATE TABLE ks.{ok48} (k int PRIMARY KEY, {long} int)"),
        format!("CREATE TYPE ks.{long} ({long} int)"),
        format!("ALTER TABLE ks.{ok48} ADD c{long} text"),
    ] {
        run(&mut cat, &ok, None).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

/// A trailing comma in CREATE TABLE and CREATE TYPE, as Cassandra's grammar allows.
#[test]
fn trailing_commas_create_the_same_schema() {
    let with = setup(&[
        KS,
        "CREATE TYPE ks.pt (x int, y int,)",
        "CREATE TABLE ks.t (k int, v frozen<pt>, PRIMARY KEY (k),)",
    ]);
    let without = setup(&[
        KS,
        "CREATE TYPE ks.pt (x int, y int)",
        "CREATE TABLE ks.t (k int, v frozen<pt>, PRIMARY KEY (k))",
    ]);
    assert_eq!(with.user_type("ks", "pt"), without.user_type("ks", "pt"));
    assert_eq!(
        with.table("ks", "t").map(|t| &t.columns),
        without.table("ks", "t").map(|t| &t.columns)
    );
}

/// `DROP c USING TIMESTAMP n` records n as the drop time (what reads compare cells
/// with); without it, the time of the statement.
#[test]
fn dropped_columns_record_the_drop_time() {
    let mut cat = setup(&[KS, "CREATE TABLE ks.t (k int PRIMARY KEY, x int, y int)"]);
    run(
        &mut cat,
        "ALTER TABLE ks.t DROP x USING TIMESTAMP 1589286942065000",
        None,
    )
    .expect("drop x");
    let before = crate::clock::now_micros();
    run(&mut cat, "ALTER TABLE ks.t DROP y", None).expect("drop y");
    let t = cat.table("ks", "t").expect("t");
    assert_eq!(
        t.dropped.get("x").map(|d| d.dropped_at_micros),
        Some(1_589_286_942_065_000)
    );
    assert!(t
        .dropped
        .get("y")
        .is_some_and(|d| d.dropped_at_micros >= before));
}

/// ScyllaDB options that ask for what this build cannot do are refused with the message
/// every unbuilt feature gets, instead of being stored and ignored; the others are
/// accepted on CREATE and ALTER and leave a schema without them hashing as before.
#[test]
fn scylla_options_are_stored_or_refused() {
    let mut cat = setup(&[KS, "CREATE TABLE ks.t (k int PRIMARY KEY)"]);
    let version = cat.schema_version();
    let e = err(
        &mut cat,
        "ALTER TABLE ks.t WITH cdc = {'enabled': true}",
        None,
    );
    assert_eq!(e.code(), 0x2200);
    assert_eq!(
        e.to_string(),
        "CDC (cdc = {'enabled': true}) is not supported yet by this ringcache build: it needs a CDC log table"
    );
    let e = err(
        &mut cat,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1} AND consistency = 'global'",
        None,
    );
    assert_eq!(
        e.to_string(),
        "Keyspace consistency 'global' is not supported yet by this ringcache build: only 'eventual' consistency is provided"
    );
    assert_eq!(cat.schema_version(), version, "refusals change nothing");
    run(
        &mut cat,
        "ALTER TABLE ks.t WITH tombstone_gc = {'mode': 'immediate'} AND cdc = {'enabled': 'false'}",
        None,
    )
    .expect("alter");
    let scylla = &cat.table("ks", "t").expect("t").options.scylla;
    assert_eq!(
        scylla
            .tombstone_gc
            .as_ref()
            .and_then(|m| m.get("mode"))
            .map(String::as_str),
        Some("immediate")
    );
    assert!(scylla.cdc.is_some());
    run(
        &mut cat,
        "ALTER KEYSPACE ks WITH tablets = {'enabled': false}",
        None,
    )
    .expect("alter keyspace");
    assert_eq!(
        cat.keyspace("ks").and_then(|k| k.tablets),
        Some(Tablets::Disabled)
    );
    let e = err(
        &mut cat,
        "ALTER TABLE ks.t WITH tombstone_gc = 'repair'",
        None,
    );
    assert_eq!(e.code(), 0x2000);
}

#[test]
fn one_range_movement_at_a_time_kept_beside_the_schema() {
    let movement = |n: u128, kind: &str| RangeMovement {
        host_id: uuid::Uuid::from_u128(n),
        kind: kind.to_owned(),
        since_micros: 7,
    };
    let mut cat = setup(&[KS]);
    let version = cat.schema_version();
    assert_eq!(cat.claim_movement(movement(1, "bootstrap")), Ok(true));
    // The holder claiming again (a restart mid-move) keeps it; another node is told who.
    assert_eq!(cat.claim_movement(movement(1, "bootstrap")), Ok(false));
    assert_eq!(
        cat.claim_movement(movement(2, "decommission")),
        Err(movement(1, "bootstrap"))
    );
    assert!(!cat.release_movement(uuid::Uuid::from_u128(2)));
    assert_eq!(cat.movement(), Some(&movement(1, "bootstrap")));
    // Not schema: no schema_version counts it.
    assert_eq!(cat.schema_version(), version);

    // Persisted, and in the log's snapshot, with the schema.
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = SchemaStore::open(dir.path()).expect("open empty");
    store.save_at(&cat, Some(9)).expect("save");
    let (_, loaded, applied) = SchemaStore::open_at(dir.path()).expect("reopen");
    assert_eq!((loaded.movement(), applied), (cat.movement(), Some(9)));
    let snapshot = snapshot::encode(&cat, Some(9));
    let (restored, _) = snapshot::decode_at(dir.path(), &snapshot).expect("snapshot");
    assert_eq!(restored, cat);

    assert!(cat.release_movement(uuid::Uuid::from_u128(1)));
    assert_eq!(cat.movement(), None);
    assert_eq!(cat.claim_movement(movement(2, "decommission")), Ok(true));
}
