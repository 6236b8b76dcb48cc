//! Literal and bind marker tests: markers inside collection, tuple and user type literals
//! (named and typed as Cassandra's prepared metadata names them), Cassandra's messages for
//! literals of the wrong kind, and the refusals of keys, timestamps, conditions and batches
//! Cassandra refuses.

use bytes::Bytes;

use super::tests::{catalog, err, int, ok, only_row, run, StoredList};
use super::*;
use crate::cql::parse_statement;
use crate::protocol::Value;
use crate::storage::partition::ColumnWrite;

fn slots(cql: &str) -> Vec<Slot> {
    let statement = parse_statement(cql).unwrap_or_else(|e| panic!("{cql}: {e}"));
    write_slots(&statement, catalog(), Some("ks")).unwrap_or_else(|e| panic!("{cql}: {e}"))
}

fn slot_err(cql: &str) -> String {
    let statement = parse_statement(cql).unwrap_or_else(|e| panic!("{cql}: {e}"));
    match write_slots(&statement, catalog(), Some("ks")) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{cql}: expected a refusal"),
    }
}

fn text(s: &str) -> Value {
    Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
}

fn v(i: i32) -> Value {
    Value::Bytes(int(i))
}

/// The value written to `column` of the only row.
fn written(updates: &[crate::storage::partition::PartitionUpdate], column: &str) -> Option<Bytes> {
    only_row(updates).columns.iter().find_map(|c| match c {
        ColumnWrite::Cell {
            column: name, cell, ..
        } if name == column => cell.value().cloned(),
        _ => None,
    })
}

/// `<i32 len><bytes>` per component, -1 for null.
fn tuple(parts: &[Option<&[u8]>]) -> Bytes {
    let mut out = Vec::new();
    for part in parts {
        match part {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    Bytes::from(out)
}

#[test]
fn markers_inside_literals_are_named_and_typed_as_cassandra_prepares_them() {
    let insert = slots(
        "INSERT INTO t (k, c, l, st, m, fa) VALUES (?, ?, [?, ?], {?}, {?: ?}, {street: ?, zip: :z})",
    );
    let names: Vec<&str> = insert.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "k",
            "c",
            "value(l)",
            "value(l)",
            "value(st)",
            "key(m)",
            "value(m)",
            "fa.street",
            "z"
        ]
    );
    let types: Vec<String> = insert.iter().map(|s| s.ty.to_string()).collect();
    assert_eq!(
        types,
        ["int", "int", "int", "int", "text", "text", "int", "text", "int"]
    );
    assert_eq!(insert[0].partition_key, Some(0));
    assert!(insert[2..].iter().all(|s| s.partition_key.is_none()));
    let update = slots("UPDATE t SET m = m + {'a': ?}, l = [?] + l WHERE k = 1 AND c = 1");
    let names: Vec<&str> = update.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["value(m)", "value(l)"]);
}

#[test]
fn markers_inside_literals_bind_like_literals() {
    let frozen = "INSERT INTO t (k, c, fa, st) VALUES (1, 1, {street: ?, zip: ?}, {?, ?, ?})";
    let values = [text("main"), v(7), text("b"), text("a"), text("b")];
    let updates = run(frozen, &values).expect("bound");
    let expected = tuple(&[Some(b"main"), Some(&7i32.to_be_bytes())]);
    assert_eq!(written(&updates, "fa"), Some(expected));
    // A bound null field is a null field.
    let updates = run(
        frozen,
        &[text("main"), Value::Null, text("a"), text("b"), text("c")],
    )
    .expect("bound");
    assert_eq!(written(&updates, "fa"), Some(tuple(&[Some(b"main"), None])));
    // The same statement unprepared, as literals, writes the same value.
    let literal = ok("INSERT INTO t (k, c, fa) VALUES (1, 1, {street: 'main', zip: 7})");
    let updates = run(frozen, &values).expect("bound");
    assert_eq!(written(&literal, "fa"), written(&updates, "fa"));
    // A set's elements are stored sorted and once each (one cell per element).
    let set_cells: Vec<Bytes> = only_row(&updates)
        .columns
        .iter()
        .filter_map(|c| match c {
            ColumnWrite::Cell { column, path, .. } if column == "st" => path.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(set_cells.len(), 2);
}

#[test]
fn unset_and_null_inside_literals_follow_cassandra() {
    let list = "INSERT INTO t (k, c, l) VALUES (1, 1, [?, ?])";
    assert_eq!(
        err(list, &[v(1), Value::Null]),
        "null is not supported inside collections"
    );
    // An unset element leaves the whole list unset: nothing is written to it.
    let updates = run(list, &[v(1), Value::Unset]).expect("bound");
    assert!(only_row(&updates)
        .columns
        .iter()
        .all(|c| !matches!(c, ColumnWrite::Cell { column, .. } if column == "l")));
    assert_eq!(
        err(
            "INSERT INTO t (k, c, m) VALUES (1, 1, {?: 1})",
            &[Value::Unset]
        ),
        "unset value is not supported for map keys"
    );
    assert_eq!(
        err(
            "INSERT INTO t (k, c, fa) VALUES (1, 1, {street: ?, zip: ?})",
            &[text("x"), Value::Unset]
        ),
        "Invalid unset value for field 'zip' of user defined type addr"
    );
}

#[test]
fn literals_of_the_wrong_kind_get_cassandras_messages() {
    let cases = [
        (
            "INSERT INTO t (k, c, v) VALUES (1, 1, 2)",
            "Invalid INTEGER constant (2) for \"v\" of type text",
        ),
        (
            "INSERT INTO t (k, c, l) VALUES (1, 1, [1, 'x'])",
            "Invalid STRING constant (x) for \"value(l)\" of type int",
        ),
        (
            "INSERT INTO t (k, c, m) VALUES (1, 1, {'a': 'b'})",
            "Invalid STRING constant (b) for \"value(m)\" of type int",
        ),
        (
            "INSERT INTO t (k, c, fa) VALUES (1, 1, {1: 2})",
            "Invalid map literal for fa of type frozen<addr>",
        ),
        (
            "INSERT INTO t (k, c, fa) VALUES (1, 1, {street: 'a', zip: 'b'})",
            "Invalid STRING constant (b) for \"fa.zip\" of type int",
        ),
        (
            "INSERT INTO t (k, c, fa) VALUES (1, 1, {street: 'a', floor: 2})",
            "Unknown field 'floor' in value of user defined type addr",
        ),
        (
            "INSERT INTO t (k, c, l) VALUES (1, 1, [1, null])",
            "null is not supported inside collections",
        ),
        (
            "INSERT INTO t (k, c, l) VALUES (1, 1, 3)",
            "Invalid INTEGER constant (3) for \"l\" of type list<int>",
        ),
        (
            "INSERT INTO t (k, c, s) VALUES (1, 99999999999, 1)",
            "Unable to make int from '99999999999'",
        ),
    ];
    for (cql, message) in cases {
        assert_eq!(err(cql, &[]), message, "{cql}");
    }
}

#[test]
fn keys_longer_than_an_unsigned_short_are_refused() {
    let long = "x".repeat(70_000);
    let clustering = Value::Bytes(Bytes::copy_from_slice(long.as_bytes()));
    // ks.cp's partition key is (a int, b text): b alone is short enough, a 65,535-byte b
    // makes the composite key (2-byte length, value, end byte per component) too long.
    let b = Value::Bytes(Bytes::from(vec![b'y'; 65_530]));
    assert_eq!(
        err(
            "INSERT INTO cp (a, b, c1, c2, v) VALUES (1, ?, 1, 1, 1)",
            &[b]
        ),
        "Key length of 65540 is longer than maximum of 65535"
    );
    let statement =
        parse_statement("CREATE TABLE ks.tk (k int, c text, v int, PRIMARY KEY (k, c))")
            .expect("parse");
    let mut cat = catalog().clone();
    cat.apply(&statement, None).expect("create");
    let input = WriteInput {
        catalog: &cat,
        keyspace: Some("ks"),
        values: std::slice::from_ref(&clustering),
        timestamp: 1,
        now_secs: 1,
        lists: &StoredList(Vec::new()),
    };
    let insert = parse_statement("INSERT INTO tk (k, c, v) VALUES (1, ?, 1)").expect("parse");
    assert_eq!(
        bind_write(&insert, &input).unwrap_err().to_string(),
        "Key length of 70000 is longer than maximum of 65535"
    );
}

#[test]
fn the_reserved_minimum_timestamp_is_refused() {
    let message = "Out of bound timestamp, must be in [-9223372036854775807, 9223372036854775807]";
    assert_eq!(
        err(
            "INSERT INTO kv (k, v) VALUES (1, 1) USING TIMESTAMP -9223372036854775808",
            &[]
        ),
        message
    );
    assert_eq!(
        err(
            "INSERT INTO kv (k, v) VALUES (1, 1) USING TIMESTAMP ?",
            &[Value::Bytes(Bytes::copy_from_slice(
                &i64::MIN.to_be_bytes()
            ))]
        ),
        message
    );
    // One above is a timestamp like any other.
    let updates = ok("INSERT INTO kv (k, v) VALUES (1, 1) USING TIMESTAMP -9223372036854775807");
    assert_eq!(
        only_row(&updates).marker.map(|m| m.timestamp),
        Some(i64::MIN + 1)
    );
}

#[test]
fn durations_and_timestamps_in_every_cassandra_form_are_written() {
    let duration = |literal: &str| {
        let cql = format!("INSERT INTO du (k, d) VALUES (1, {literal})");
        run_on_du(&cql)
    };
    assert_eq!(duration("P1Y2M"), duration("1y2mo"));
    assert_eq!(duration("P0001-02-03T04:05:06"), duration("1y2mo3d4h5m6s"));
    assert_eq!(duration("-P1W"), duration("-7d"));
    assert_eq!(
        run_on_du_err("INSERT INTO du (k, d) VALUES (1, 1h1h)"),
        "Invalid duration. The hours are specified multiple times"
    );
    let at = |literal: &str| run_on_du(&format!("INSERT INTO du (k, ts) VALUES (1, {literal})"));
    assert_eq!(at("'2011-02-03 04:05:00 UTC'"), at("1296705900000"));
    assert_eq!(at("'2011-02-03T05:05:00.000+01:00'"), at("'1296705900000'"));
    let day = |literal: &str| run_on_du(&format!("INSERT INTO du (k, dt) VALUES (1, {literal})"));
    assert_eq!(day("'1970-01-01'"), day("'2147483648'"));
}

fn du_catalog() -> Catalog {
    let mut cat = catalog().clone();
    let create = "CREATE TABLE ks.du (k int PRIMARY KEY, d duration, ts timestamp, dt date)";
    cat.apply(&parse_statement(create).expect("parse"), None)
        .expect("create");
    cat
}

fn du_run(cql: &str) -> Result<Vec<crate::storage::partition::PartitionUpdate>> {
    let cat = du_catalog();
    let input = WriteInput {
        catalog: &cat,
        keyspace: Some("ks"),
        values: &[],
        timestamp: 1,
        now_secs: 1,
        lists: &StoredList(Vec::new()),
    };
    bind_write(&parse_statement(cql).expect("parse"), &input)
}

fn run_on_du(cql: &str) -> Vec<ColumnWrite> {
    let updates = du_run(cql).unwrap_or_else(|e| panic!("{cql}: {e}"));
    only_row(&updates).columns.clone()
}

fn run_on_du_err(cql: &str) -> String {
    du_run(cql).unwrap_err().to_string()
}

fn conditional_err(cql: &str, values: &[Value]) -> String {
    let input = WriteInput {
        catalog: catalog(),
        keyspace: Some("ks"),
        values,
        timestamp: 1,
        now_secs: 1,
        lists: &StoredList(Vec::new()),
    };
    let statement = parse_statement(cql).unwrap_or_else(|e| panic!("{cql}: {e}"));
    match bind_conditional(&statement, &input, false) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{cql}: expected a refusal"),
    }
}

#[test]
fn conditions_accept_and_refuse_what_cassandra_does() {
    let contains = slots("UPDATE t SET v = 'a' WHERE k = 1 AND c = 1 IF l CONTAINS ? AND m CONTAINS KEY ? AND m CONTAINS ?");
    let named: Vec<(String, String)> = contains
        .iter()
        .map(|s| (s.name.clone(), s.ty.to_string()))
        .collect();
    let expected = [("value(l)", "int"), ("key(m)", "text"), ("value(m)", "int")];
    assert_eq!(
        named,
        expected.map(|(n, t)| (n.to_owned(), t.to_owned())).to_vec()
    );
    assert_eq!(
        slot_err("UPDATE t SET v = 'a' WHERE k = 1 AND c = 1 IF v CONTAINS 'a'"),
        "Cannot use CONTAINS on non-collection column v"
    );
    assert_eq!(
        slot_err("UPDATE t SET v = 'a' WHERE k = 1 AND c = 1 IF l CONTAINS KEY 1"),
        "Cannot use CONTAINS KEY on non-map column l"
    );
    assert_eq!(
        slot_err("UPDATE t SET v = 'a' WHERE k = 1 AND c = 1 IF fa CONTAINS 1"),
        "Cannot use CONTAINS on non-collection column fa"
    );
    let element = "DELETE FROM t WHERE k = 1 AND c = 1 IF l[?] = ?";
    assert_eq!(
        conditional_err(element, &[Value::Null, v(1)]),
        "Invalid null value for list element access"
    );
    assert_eq!(
        conditional_err(element, &[v(-2), v(1)]),
        "Invalid negative list index -2"
    );
    assert_eq!(
        conditional_err(
            "DELETE FROM t WHERE k = 1 AND c = 1 IF m[?] = ?",
            &[Value::Null, v(1)]
        ),
        "Invalid null value for map element access"
    );
    assert_eq!(
        conditional_err(
            "DELETE FROM t WHERE k = 1 AND c = 1 IF s IN ?",
            &[Value::Unset]
        ),
        "Invalid 'unset' value in condition"
    );
}

#[test]
fn unset_values_leave_in_lists_and_empty_contains() {
    let lists = StoredList(Vec::new());
    let bound = |cql: &str, values: &'static [Value]| {
        let input = WriteInput {
            catalog: catalog(),
            keyspace: Some("ks"),
            values,
            timestamp: 1,
            now_secs: 1,
            lists: &lists,
        };
        let statement = parse_statement(cql).expect("parse");
        let conditional = bind_conditional(&statement, &input, false).expect("bound");
        match conditional.clause {
            Some(lwt::Clause::Columns(mut c)) => c.remove(0),
            _ => panic!("no column condition"),
        }
    };
    static IN_VALUES: [Value; 3] = [Value::Unset, Value::Null, Value::Unset];
    let condition = bound(
        "DELETE FROM t WHERE k = 1 AND c = 1 IF s IN (?, ?, ?)",
        &IN_VALUES,
    );
    assert_eq!(condition.values, vec![None]);
    static CONTAINS: [Value; 1] = [Value::Unset];
    let condition = bound(
        "DELETE FROM t WHERE k = 1 AND c = 1 IF l CONTAINS ?",
        &CONTAINS,
    );
    assert!(condition.values.is_empty());
}

#[test]
fn multi_partition_batches_past_the_thresholds_are_refused() {
    let value = "x".repeat(2_000);
    let batch = |partitions: usize| {
        let inserts: String = (0..partitions)
            .map(|k| format!("INSERT INTO t (k, c, v) VALUES ({k}, 1, '{value}');"))
            .collect();
        ok(&format!("BEGIN UNLOGGED BATCH {inserts} APPLY BATCH"))
    };
    let limits = BatchLimits::from_kib(1, 4);
    // Two partitions of about 2 KiB each: past the warning, under the failure threshold.
    assert!(check_batch_size(&batch(2), limits, "ks.t").is_ok());
    assert_eq!(
        check_batch_size(&batch(3), limits, "ks.t")
            .unwrap_err()
            .to_string(),
        "Batch too large"
    );
    // One partition is one mutation, whatever its size.
    let one = ok(&format!(
        "BEGIN BATCH INSERT INTO t (k, c, v) VALUES (1, 1, '{value}'); \
         INSERT INTO t (k, c, v) VALUES (1, 2, '{value}'); \
         INSERT INTO t (k, c, v) VALUES (1, 3, '{value}'); APPLY BATCH"
    ));
    assert_eq!(one.len(), 1);
    assert!(check_batch_size(&one, limits, "ks.t").is_ok());
}
