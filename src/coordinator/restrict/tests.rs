//! Read plans against Cassandra 4.1's rules: which partitions, which clustering rows (checked
//! by encoding sample rows and asking which fall inside the plan's ranges), which relations
//! are left to filtering, and every refusal with its message.

use bytes::Bytes;

use super::*;
use crate::coordinator::bind::{bind_select, select_slots, Bound as BoundValue, BoundRelation};
use crate::cql::ast::Statement;
use crate::cql::parser::parse_statement;
use crate::cql::types::{CqlType, NativeType};
use crate::error::Error;
use crate::protocol::Value;
use crate::ring::{serialize_partition_key, Murmur3Partitioner};
use crate::storage::comparable::encode_clustering;

const TABLES: &[&str] = &[
    "CREATE TABLE t1 (k int, c1 int, c2 int, c3 int, v int, s int static, PRIMARY KEY (k, c1, c2, c3))",
    "CREATE TABLE t2 (a int, b text, c int, v int, PRIMARY KEY ((a, b), c))",
    "CREATE TABLE t3 (k int, c1 int, c2 int, v int, PRIMARY KEY (k, c1, c2)) WITH CLUSTERING ORDER BY (c1 ASC, c2 DESC)",
    "CREATE TABLE t4 (k int PRIMARY KEY, v int, l frozen<list<int>>)",
    "CREATE TABLE t5 (k text PRIMARY KEY, v int)",
];

fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    let ks = "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}";
    catalog
        .apply(&parse_statement(ks).expect("parse"), None)
        .expect("keyspace");
    for ddl in TABLES {
        catalog
            .apply(&parse_statement(ddl).expect("parse"), Some("ks"))
            .expect("table");
    }
    catalog
}

fn select(cql: &str) -> Select {
    match parse_statement(cql).expect("parse") {
        Statement::Select(select) => select,
        other => panic!("not a SELECT: {other:?}"),
    }
}

fn plan_with(cql: &str, values: &[Value]) -> Result<ReadPlan> {
    let catalog = catalog();
    let select = select(cql);
    let table = catalog.table("ks", &select.table.name).expect("table");
    let layout = layout(table, &catalog);
    let bound = bind_select(&select, table, &catalog, values)?;
    plan_read(&select, table, &layout, &bound)
}

fn plan(cql: &str) -> ReadPlan {
    plan_with(cql, &[]).unwrap_or_else(|e| panic!("{cql}: {e}"))
}

fn error_with(cql: &str, values: &[Value]) -> String {
    match plan_with(cql, values) {
        Err(Error::Invalid(message)) => message,
        other => panic!("{cql}: expected Invalid, got {other:?}"),
    }
}

fn error(cql: &str) -> String {
    error_with(cql, &[])
}

fn int(v: i32) -> Value {
    Value::Bytes(Bytes::copy_from_slice(&v.to_be_bytes()))
}

/// A serialized tuple (or list) of ints, `None` for null.
fn ints(values: &[Option<i32>], list: bool) -> Bytes {
    let mut out = Vec::new();
    if list {
        out.extend_from_slice(&(values.len() as i32).to_be_bytes());
    }
    for v in values {
        match v {
            Some(v) => {
                out.extend_from_slice(&4i32.to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    Bytes::from(out)
}

fn list_of(items: &[Bytes]) -> Value {
    let mut out = (items.len() as i32).to_be_bytes().to_vec();
    for item in items {
        out.extend_from_slice(&(item.len() as i32).to_be_bytes());
        out.extend_from_slice(item);
    }
    Value::Bytes(Bytes::from(out))
}

/// Encodes an int clustering key of `table` (orders from its layout).
fn row_key(table: &str, values: &[i32]) -> Vec<u8> {
    let catalog = catalog();
    let layout = layout(catalog.table("ks", table).expect("table"), &catalog);
    let bytes: Vec<[u8; 4]> = values.iter().map(|v| v.to_be_bytes()).collect();
    let components: Vec<comparable::Component<'_>> = layout
        .clustering
        .iter()
        .zip(&bytes)
        .map(|((ty, order), b)| (ty, *order, Some(&b[..])))
        .collect();
    let mut out = Vec::new();
    encode_clustering(&components, &mut out).expect("encode");
    out
}

/// Which of `rows` the plan's ranges select.
fn selected(plan: &ReadPlan, table: &str, rows: &[&[i32]]) -> Vec<Vec<i32>> {
    rows.iter()
        .filter(|row| {
            let key = row_key(table, row);
            plan.slice
                .ranges
                .iter()
                .any(|r| r.start.as_slice() <= key.as_slice() && key.as_slice() < r.end.as_slice())
        })
        .map(|row| row.to_vec())
        .collect()
}

/// Every (c1, c2) in 0..4 × 0..4, with c3 = 0 for t1.
fn grid(c3: bool) -> Vec<Vec<i32>> {
    let mut rows = Vec::new();
    for c1 in 0..4 {
        for c2 in 0..4 {
            rows.push(if c3 { vec![c1, c2, 0] } else { vec![c1, c2] });
        }
    }
    rows
}

fn select_grid(cql: &str, values: &[Value], table: &str) -> Vec<Vec<i32>> {
    let plan = plan_with(cql, values).unwrap_or_else(|e| panic!("{cql}: {e}"));
    let rows = grid(table == "t1");
    let refs: Vec<&[i32]> = rows.iter().map(Vec::as_slice).collect();
    let mut out = selected(&plan, table, &refs);
    out.iter_mut().for_each(|r| r.truncate(2));
    out.sort();
    out
}

fn pid(parts: &[&[u8]]) -> PartitionId {
    let key = serialize_partition_key(parts).expect("key");
    PartitionId {
        token: Murmur3Partitioner::token(&key).0,
        key: Bytes::from(key),
    }
}

fn keys(plan: &ReadPlan) -> Vec<PartitionId> {
    match &plan.partitions {
        PartitionSelection::Keys(keys) => keys.clone(),
        other => panic!("expected keys, got {other:?}"),
    }
}

fn full_scan() -> PartitionSelection {
    PartitionSelection::Range {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    }
}

#[test]
fn partition_keys_are_a_deduplicated_product_in_value_order() {
    let p = plan("SELECT * FROM ks.t2 WHERE a IN (1, 2, 1) AND b IN ('x', 'y')");
    // In the order of the key values (Cassandra's IN order), not of their tokens.
    let mut expected = Vec::new();
    for a in [1i32, 2] {
        for b in ["x", "y"] {
            expected.push(pid(&[&a.to_be_bytes(), b.as_bytes()]));
        }
    }
    assert_eq!(keys(&p), expected);
    let mut by_token = expected.clone();
    by_token.sort_by(PartitionId::storage_cmp);
    assert_ne!(
        by_token, expected,
        "the example must tell the two orders apart"
    );
    assert_eq!(p.slice.ranges, vec![comparable::full_range()]);
    assert!(!p.slice.reversed);
    assert!(p.residual.is_empty());

    let p = plan("SELECT * FROM ks.t4 WHERE k = 7");
    assert_eq!(keys(&p), vec![pid(&[&7i32.to_be_bytes()])]);
    assert_eq!(keys(&plan("SELECT * FROM ks.t4 WHERE k IN ()")), vec![]);
}

#[test]
fn in_partitions_come_in_the_order_of_their_values_under_the_key_type() {
    // Signed ints: -1 serializes as 0xffffffff, last by bytes, first by value.
    let p = plan("SELECT * FROM ks.t4 WHERE k IN (3, -1, 0, 2, 3, -7)");
    let want: Vec<PartitionId> = [-7i32, -1, 0, 2, 3]
        .iter()
        .map(|k| pid(&[&k.to_be_bytes()]))
        .collect();
    assert_eq!(keys(&p), want);
}

#[test]
fn partition_key_values_come_from_markers() {
    let list = list_of(&[
        Bytes::copy_from_slice(&3i32.to_be_bytes()),
        Bytes::copy_from_slice(&3i32.to_be_bytes()),
    ]);
    let p = plan_with("SELECT * FROM ks.t4 WHERE k IN ?", &[list]).expect("plan");
    assert_eq!(keys(&p), vec![pid(&[&3i32.to_be_bytes()])]);
    let p = plan_with("SELECT * FROM ks.t4 WHERE k = :key", &[int(4)]).expect("plan");
    assert_eq!(keys(&p), vec![pid(&[&4i32.to_be_bytes()])]);
}

#[test]
fn token_relations_make_ranges() {
    let range = |cql: &str| plan(cql).partitions;
    assert_eq!(range("SELECT * FROM ks.t4"), full_scan());
    assert_eq!(
        range("SELECT * FROM ks.t4 WHERE token(k) > 5 AND token(k) <= 10"),
        PartitionSelection::Range {
            start: Bound::Excluded(5),
            end: Bound::Included(10)
        }
    );
    assert_eq!(
        range("SELECT * FROM ks.t4 WHERE token(k) = -3"),
        PartitionSelection::Range {
            start: Bound::Included(-3),
            end: Bound::Included(-3)
        }
    );
    assert_eq!(
        range("SELECT * FROM ks.t4 WHERE token(k) < 0"),
        PartitionSelection::Range {
            start: Bound::Unbounded,
            end: Bound::Excluded(0)
        }
    );
    let p = plan_with(
        "SELECT * FROM ks.t2 WHERE token(a, b) >= ?",
        &[Value::Bytes(Bytes::copy_from_slice(&9i64.to_be_bytes()))],
    )
    .expect("plan");
    assert_eq!(
        p.partitions,
        PartitionSelection::Range {
            start: Bound::Included(9),
            end: Bound::Unbounded
        }
    );
}

#[test]
fn empty_token_ranges_select_nothing_unless_a_side_is_the_minimum_token() {
    let empty = PartitionSelection::Keys(Vec::new());
    for cql in [
        "SELECT * FROM ks.t4 WHERE token(k) > 10 AND token(k) < 5",
        "SELECT * FROM ks.t4 WHERE token(k) >= 5 AND token(k) < 5",
        "SELECT * FROM ks.t4 WHERE token(k) > 5 AND token(k) <= 5",
    ] {
        assert_eq!(plan(cql).partitions, empty, "{cql}");
    }
    // An exclusive end at the minimum token is the end of the ring.
    assert_eq!(
        plan("SELECT * FROM ks.t4 WHERE token(k) > 5 AND token(k) < -9223372036854775808")
            .partitions,
        PartitionSelection::Range {
            start: Bound::Excluded(5),
            end: Bound::Unbounded
        }
    );
    assert_eq!(
        plan("SELECT * FROM ks.t4 WHERE token(k) < -9223372036854775808").partitions,
        full_scan()
    );
}

#[test]
fn token_and_full_key_keep_the_keys_inside_the_range() {
    let token = pid(&[&1i32.to_be_bytes()]).token;
    let cql = |op: &str, t: i64| format!("SELECT * FROM ks.t4 WHERE k = 1 AND token(k) {op} {t}");
    assert_eq!(keys(&plan(&cql(">=", token))).len(), 1);
    assert_eq!(keys(&plan(&cql(">", token))).len(), 0);
    assert_eq!(keys(&plan(&cql("<", token))).len(), 0);
    assert_eq!(keys(&plan(&cql("=", token))).len(), 1);
}

#[test]
fn partial_and_sliced_partition_keys_filter_a_full_scan() {
    let p = plan("SELECT * FROM ks.t2 WHERE a = 1 ALLOW FILTERING");
    assert_eq!(p.partitions, full_scan());
    assert_eq!(p.residual, vec![0]);
    let p = plan("SELECT * FROM ks.t4 WHERE k > 1 AND v = 2 ALLOW FILTERING");
    assert_eq!(p.partitions, full_scan());
    assert_eq!(p.residual, vec![0, 1]);
    let p = plan("SELECT * FROM ks.t2 WHERE token(a, b) > 0 AND a = 1 ALLOW FILTERING");
    assert_eq!(
        p.partitions,
        PartitionSelection::Range {
            start: Bound::Excluded(0),
            end: Bound::Unbounded
        }
    );
    assert_eq!(p.residual, vec![1]);
}

#[test]
fn clustering_prefixes_and_slices() {
    let rows = |cql: &str| select_grid(cql, &[], "t1");
    assert_eq!(
        rows("SELECT * FROM ks.t1 WHERE k = 0 AND c1 = 1 AND c2 = 2"),
        vec![vec![1, 2]]
    );
    assert_eq!(
        rows("SELECT * FROM ks.t1 WHERE k = 0 AND c1 = 1 AND c2 > 1 AND c2 <= 3"),
        vec![vec![1, 2], vec![1, 3]]
    );
    assert_eq!(
        rows("SELECT * FROM ks.t1 WHERE k = 0 AND c1 IN (3, 1, 3) AND c2 < 1"),
        vec![vec![1, 0], vec![3, 0]]
    );
    assert_eq!(
        rows("SELECT * FROM ks.t1 WHERE k = 0 AND c1 >= 3"),
        vec![vec![3, 0], vec![3, 1], vec![3, 2], vec![3, 3]]
    );
    let p = plan("SELECT * FROM ks.t1 WHERE k = 0 AND c1 IN (3, 1, 3)");
    assert_eq!(p.slice.ranges.len(), 2, "IN values deduplicated");
    assert!(p.slice.ranges[0].start < p.slice.ranges[1].start, "sorted");
}

#[test]
fn slices_follow_value_order_on_descending_columns() {
    let rows = |cql: &str| select_grid(cql, &[], "t3");
    assert_eq!(
        rows("SELECT * FROM ks.t3 WHERE k = 0 AND c1 = 2 AND c2 > 1"),
        vec![vec![2, 2], vec![2, 3]]
    );
    // (c1, c2) > (2, 1) compares values: c1 > 2, or c1 = 2 and c2 > 1.
    let got = rows("SELECT * FROM ks.t3 WHERE k = 0 AND (c1, c2) > (2, 1)");
    assert_eq!(
        got,
        vec![
            vec![2, 2],
            vec![2, 3],
            vec![3, 0],
            vec![3, 1],
            vec![3, 2],
            vec![3, 3]
        ]
    );
    let p = plan("SELECT * FROM ks.t3 WHERE k = 0 AND (c1, c2) > (2, 1)");
    assert!(
        p.slice.ranges.windows(2).all(|w| w[0].end <= w[1].start),
        "disjoint, sorted"
    );
    assert_eq!(
        rows("SELECT * FROM ks.t3 WHERE k = 0 AND (c1, c2) >= (1, 2) AND (c1, c2) < (2, 1)"),
        vec![vec![1, 2], vec![1, 3], vec![2, 0]]
    );
    // A single-column slice merges with a tuple slice starting at the same column.
    assert_eq!(
        rows("SELECT * FROM ks.t3 WHERE k = 0 AND (c1, c2) > (2, 2) AND c1 < 3"),
        vec![vec![2, 3]]
    );
}

#[test]
fn multi_column_equalities_and_in() {
    let rows = |cql: &str, values: &[Value]| select_grid(cql, values, "t1");
    assert_eq!(
        rows("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) = (1, 2)", &[]),
        vec![vec![1, 2]]
    );
    assert_eq!(
        rows(
            "SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) IN ((3, 0), (1, 2), (3, 0))",
            &[]
        ),
        vec![vec![1, 2], vec![3, 0]]
    );
    assert_eq!(
        rows(
            "SELECT * FROM ks.t1 WHERE k = 0 AND c1 = 1 AND (c2) IN ((0), (3))",
            &[]
        ),
        vec![vec![1, 0], vec![1, 3]]
    );
    let tuple = |a, b| Value::Bytes(ints(&[Some(a), Some(b)], false));
    assert_eq!(
        rows(
            "SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) = ?",
            &[tuple(2, 2)]
        ),
        vec![vec![2, 2]]
    );
    assert_eq!(
        rows(
            "SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) = (?, ?)",
            &[int(0), int(3)]
        ),
        vec![vec![0, 3]]
    );
    let list = list_of(&[
        ints(&[Some(3), Some(3)], false),
        ints(&[Some(0), Some(1)], false),
    ]);
    assert_eq!(
        rows("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) IN ?", &[list]),
        vec![vec![0, 1], vec![3, 3]]
    );
    assert_eq!(
        rows(
            "SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) > ? AND (c1) < (2)",
            &[tuple(1, 2)]
        ),
        vec![vec![1, 3]]
    );
}

#[test]
fn order_by_reverses_against_the_declared_order() {
    assert!(!plan("SELECT * FROM ks.t1 WHERE k = 0").slice.reversed);
    assert!(
        plan("SELECT * FROM ks.t1 WHERE k = 0 ORDER BY c1 DESC")
            .slice
            .reversed
    );
    assert!(
        !plan("SELECT * FROM ks.t1 WHERE k = 0 ORDER BY c1 ASC, c2 ASC")
            .slice
            .reversed
    );
    assert!(
        plan("SELECT * FROM ks.t3 WHERE k = 0 ORDER BY c1 DESC, c2 ASC")
            .slice
            .reversed
    );
    assert!(
        !plan("SELECT * FROM ks.t3 WHERE k = 0 ORDER BY c1 ASC, c2 DESC")
            .slice
            .reversed
    );
    // A column fixed by `=` may be skipped.
    assert!(
        plan("SELECT * FROM ks.t1 WHERE k = 0 AND c1 = 1 ORDER BY c2 DESC")
            .slice
            .reversed
    );
    let p = plan("SELECT * FROM ks.t1 WHERE k IN (0, 1) ORDER BY c1 DESC");
    assert!(p.slice.reversed && p.order_across_partitions);
    assert!(!plan("SELECT * FROM ks.t1 WHERE k IN (0, 1)").order_across_partitions);
    // Ranges stay in storage order when reversed.
    let p = plan("SELECT * FROM ks.t1 WHERE k = 0 AND c1 IN (2, 1) ORDER BY c1 DESC");
    assert!(p.slice.ranges[0].start < p.slice.ranges[1].start);
}

#[test]
fn filtering_leaves_residual_relations() {
    let p = plan("SELECT * FROM ks.t1 WHERE k = 0 AND c2 = 1 ALLOW FILTERING");
    assert_eq!(
        (p.slice.ranges.clone(), p.residual),
        (vec![comparable::full_range()], vec![1])
    );
    let p = plan("SELECT * FROM ks.t1 WHERE k = 0 AND c1 > 1 AND c2 = 1 AND v = 3 ALLOW FILTERING");
    assert_eq!(p.residual, vec![2, 3]);
    assert_eq!(
        select_grid(
            "SELECT * FROM ks.t1 WHERE k = 0 AND c1 > 1 AND c2 = 1 ALLOW FILTERING",
            &[],
            "t1"
        )
        .len(),
        8
    );
    let p = plan("SELECT * FROM ks.t1 WHERE c1 = 1 ALLOW FILTERING");
    assert_eq!(p.partitions, full_scan());
    assert!(
        p.residual.is_empty(),
        "the slice applies to every partition"
    );
    assert_eq!(p.slice.ranges.len(), 1);
    let p = plan("SELECT * FROM ks.t1 WHERE k = 0 AND s = 1 ALLOW FILTERING");
    assert_eq!(p.residual, vec![1]);
    let p = plan("SELECT * FROM ks.t4 WHERE k = 0 AND l CONTAINS 1 ALLOW FILTERING");
    assert_eq!(p.residual, vec![1]);
}

#[test]
fn refusals_use_cassandras_messages() {
    let filtering = REQUIRES_ALLOW_FILTERING;
    let cases: &[(&str, &str)] = &[
        ("SELECT * FROM ks.t2 WHERE a = 1", filtering),
        ("SELECT * FROM ks.t4 WHERE k > 1", filtering),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND v = 1", filtering),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND s = 1", filtering),
        ("SELECT * FROM ks.t1 WHERE c1 = 1", filtering),
        ("SELECT * FROM ks.t1 WHERE token(k) > 0 AND c1 = 1", filtering),
        ("SELECT * FROM ks.t2 WHERE token(a, b) > 0 AND a = 1", filtering),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c2 = 1", "PRIMARY KEY column \"c2\" cannot be restricted as preceding column \"c1\" is not restricted"),
        ("SELECT * FROM ks.t1 WHERE c3 = 1", "PRIMARY KEY column \"c3\" cannot be restricted as preceding column \"c1\" is not restricted"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND (c2, c3) = (1, 2)", "PRIMARY KEY column \"c2\" cannot be restricted as preceding column \"c1\" is not restricted"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c1 > 1 AND c2 = 1", "Clustering column \"c2\" cannot be restricted (preceding column \"c1\" is restricted by a non-EQ relation)"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c1 > 1 AND (c2, c3) > (1, 1)", "Clustering column \"c2\" cannot be restricted (preceding column \"c1\" is restricted by a non-EQ relation)"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c2 = 1 AND c1 > 0", "PRIMARY KEY column \"c2\" cannot be restricted (preceding column \"c1\" is restricted by a non-EQ relation)"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c1 = 1 AND c1 = 2", "c1 cannot be restricted by more than one relation if it includes an Equal"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c1 IN (1) AND c1 = 2", "c1 cannot be restricted by more than one relation if it includes a IN"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c1 > 1 AND c1 = 2", "Column \"c1\" cannot be restricted by both an equality and an inequality relation"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c1 > 1 AND c1 >= 2", "More than one restriction was found for the start bound on c1"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c1 < 1 AND (c1, c2) <= (2, 2)", "More than one restriction was found for the end bound on c1"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) > (1, 2) AND c2 < 3", "Column \"c2\" cannot be restricted by two inequalities not starting with the same column"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c1 = 1 AND (c1, c2) = (1, 2)", "c1 cannot be restricted by more than one relation if it includes an Equal"),
        ("SELECT * FROM ks.t4 WHERE k = 1 AND k = 2", "k cannot be restricted by more than one relation if it includes an Equal"),
        ("SELECT * FROM ks.t4 WHERE k > 1 AND k = 2 ALLOW FILTERING", "Column \"k\" cannot be restricted by both an equality and an inequality relation"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c3) = (1, 2)", "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: (c1, c3) = (1, 2)"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND (c2, c1) > (1, 2)", "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: (c2, c1) > (1, 2)"),
        ("SELECT * FROM ks.t1 WHERE (k, c1) = (1, 2)", "Multi-column relations can only be applied to clustering columns but was applied to: k"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) = (1, 2, 3)", "Expected 2 elements in value tuple, but got 3: (1, 2, 3)"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) IN ((1, 2), (3))", "Expected 2 elements in value tuple, but got 1: (3)"),
        ("SELECT * FROM ks.t1 WHERE token(c1) > 0", "The token() function must be applied to all partition key components or none of them"),
        ("SELECT * FROM ks.t2 WHERE token(a) > 0", "The token() function must be applied to all partition key components or none of them"),
        ("SELECT * FROM ks.t2 WHERE token(b, a) > 0", "The token function arguments must be in the partition key order: a, b"),
        ("SELECT * FROM ks.t2 WHERE token(a, a, b) > 0", "The token() function contains duplicate partition key components"),
        ("SELECT * FROM ks.t2 WHERE token(a, b, c) > 0", "The token() function must contains only partition key components"),
        ("SELECT * FROM ks.t4 WHERE token(k) IN (1, 2)", "IN cannot be used with the token function"),
        ("SELECT * FROM ks.t4 WHERE token(k) = 1 AND token(k) > 0", "k cannot be restricted by more than one relation if it includes an Equal"),
        ("SELECT * FROM ks.t4 WHERE token(k) > 1 AND token(k) = 0", "Columns \"k\" cannot be restricted by both an equality and an inequality relation"),
        ("SELECT * FROM ks.t4 WHERE token(k) > 1 AND token(k) >= 0", "More than one restriction was found for the start bound on k"),
        ("SELECT * FROM ks.t4 WHERE token(x) > 1", "Undefined column name x"),
        ("SELECT * FROM ks.t1 ORDER BY c1 DESC", "ORDER BY is only supported when the partition key is restricted by an EQ or an IN."),
        ("SELECT * FROM ks.t2 WHERE a = 1 ORDER BY c DESC ALLOW FILTERING", "ORDER BY is only supported when the partition key is restricted by an EQ or an IN."),
        ("SELECT * FROM ks.t1 WHERE k = 0 ORDER BY v DESC", "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got v"),
        ("SELECT * FROM ks.t1 WHERE k = 0 ORDER BY c2 DESC", "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY"),
        ("SELECT * FROM ks.t1 WHERE k = 0 ORDER BY c2 DESC, c1 DESC", "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY"),
        ("SELECT * FROM ks.t1 WHERE k = 0 ORDER BY c1 ASC, c2 DESC", "Unsupported order by relation"),
        ("SELECT * FROM ks.t1 WHERE k = 0 ORDER BY nope", "Undefined column name nope"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND v != 1", "Unsupported \"!=\" relation: v != 1"),
        ("SELECT * FROM ks.t1 WHERE k = 0 AND c1 CONTAINS 1", "Clustering columns can only be restricted with CONTAINS with a secondary index or filtering"),
        ("SELECT DISTINCT k FROM ks.t1 WHERE k = 0 AND c1 = 1", "SELECT DISTINCT with WHERE clause only supports restriction by partition key and/or static columns."),
        ("SELECT * FROM ks.t5 WHERE k = ''", "Key may not be empty"),
    ];
    for (cql, message) in cases {
        assert_eq!(error(cql), *message, "{cql}");
    }
}

#[test]
fn null_and_unset_values_are_refused() {
    let null = Value::Null;
    let cases: &[(&str, Vec<Value>, &str)] = &[
        (
            "SELECT * FROM ks.t4 WHERE k = ?",
            vec![null.clone()],
            "Invalid null value in condition for column k",
        ),
        (
            "SELECT * FROM ks.t4 WHERE k IN (1, ?)",
            vec![null.clone()],
            "Invalid null value in condition for column k",
        ),
        (
            "SELECT * FROM ks.t1 WHERE k = 0 AND c1 = ?",
            vec![null.clone()],
            "Invalid null value in condition for column c1",
        ),
        (
            "SELECT * FROM ks.t1 WHERE k = 0 AND c1 > ?",
            vec![null.clone()],
            "Invalid null value in condition for column c1",
        ),
        (
            "SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) > (1, ?)",
            vec![null.clone()],
            "Invalid null value in condition for column c2",
        ),
        (
            "SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) = ?",
            vec![Value::Bytes(ints(&[Some(1), None], false))],
            "Invalid null value in condition for column c2",
        ),
        (
            "SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) IN ((1, ?))",
            vec![null.clone()],
            "Invalid null value in condition for columns: [c1, c2]",
        ),
        (
            "SELECT * FROM ks.t4 WHERE token(k) > ?",
            vec![null.clone()],
            "Invalid null token value",
        ),
        (
            "SELECT * FROM ks.t1 WHERE k = 0 AND c1 = ?",
            vec![Value::Unset],
            "Invalid unset value for column c1",
        ),
        (
            "SELECT * FROM ks.t4 WHERE k = ?",
            vec![Value::Unset],
            "Invalid unset value for column k",
        ),
        (
            "SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) > ?",
            vec![Value::Unset],
            "Invalid unset value for column (c1,c2)",
        ),
    ];
    for (cql, values, message) in cases {
        assert_eq!(error_with(cql, values), *message, "{cql}");
    }
}

#[test]
fn malformed_values_name_their_column() {
    let short = Value::Bytes(Bytes::from_static(&[0, 1, 2]));
    let message = error_with(
        "SELECT * FROM ks.t1 WHERE k = 0 AND c1 = ?",
        std::slice::from_ref(&short),
    );
    assert!(message.contains("column c1"), "{message}");
    let message = error_with("SELECT * FROM ks.t4 WHERE k = ?", &[short]);
    assert!(message.contains("column k"), "{message}");
}

#[test]
fn check_select_runs_without_values() {
    let catalog = catalog();
    let table = catalog.table("ks", "t1").expect("table");
    assert!(check_select(&select("SELECT * FROM ks.t1 WHERE k = ? AND c1 > ?"), table).is_ok());
    let err = check_select(&select("SELECT * FROM ks.t1 WHERE k = ? AND c2 = ?"), table);
    assert!(matches!(err, Err(Error::Invalid(m)) if m.starts_with("PRIMARY KEY column \"c2\"")));
}

#[test]
fn prepared_metadata_names_multi_column_markers() {
    let catalog = catalog();
    let table = catalog.table("ks", "t1").expect("table");
    let int = CqlType::Native(NativeType::Int);
    let tuple = CqlType::Tuple(vec![int.clone(), int.clone()]);
    let slots = |cql: &str| -> Vec<(String, CqlType)> {
        select_slots(&select(cql), table)
            .expect("slots")
            .into_iter()
            .map(|s| (s.name, s.ty))
            .collect()
    };
    assert_eq!(
        slots("SELECT * FROM ks.t1 WHERE k = ? AND (c1, c2) > ?"),
        vec![("k".into(), int.clone()), ("(c1,c2)".into(), tuple.clone())]
    );
    assert_eq!(
        slots("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) IN ?"),
        vec![("in(c1,c2)".into(), CqlType::List(Box::new(tuple.clone())))]
    );
    assert_eq!(
        slots("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) = (?, :two)"),
        vec![("c1".into(), int.clone()), ("two".into(), int.clone())]
    );
    assert_eq!(
        slots("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) IN ((?, ?), ?)"),
        vec![
            ("c1".into(), int.clone()),
            ("c2".into(), int),
            ("(c1,c2)".into(), tuple)
        ]
    );
}

#[test]
fn bound_relations_are_found_by_where_position() {
    let catalog = catalog();
    let table = catalog.table("ks", "t1").expect("table");
    let s =
        select("SELECT * FROM ks.t1 WHERE k = 0 AND (c1, c2) = (1, 2) AND v = 3 ALLOW FILTERING");
    let bound = bind_select(&s, table, &catalog, &[]).expect("bind");
    assert!(matches!(
        bound.relation_at(0),
        Some(BoundRelation::Single(_))
    ));
    assert!(
        matches!(bound.relation_at(1), Some(BoundRelation::Multi(m)) if m.indexes == vec![1, 2])
    );
    assert!(matches!(
        bound.relation_at(2),
        Some(BoundRelation::Single(BoundValue::Column { index: 5, .. }))
    ));
    assert!(bound.relation_at(3).is_none());
}

#[test]
fn limits_bind_an_unset_marker_as_no_limit_and_refuse_a_null_one() {
    let catalog = catalog();
    let sel = select("SELECT * FROM ks.t4 PER PARTITION LIMIT ? LIMIT ?");
    let table = catalog.table("ks", "t4").expect("table");
    let bind = |values: &[Value]| bind_select(&sel, table, &catalog, values);
    let bound = bind(&[Value::Unset, int(3)]).expect("bind");
    assert_eq!((bound.per_partition_limit, bound.limit), (None, Some(3)));
    let bound = bind(&[int(2), Value::Unset]).expect("bind");
    assert_eq!((bound.per_partition_limit, bound.limit), (Some(2), None));
    for values in [[int(2), Value::Null], [Value::Null, int(2)]] {
        let err = bind(&values).expect_err("null limit");
        assert_eq!(err.to_string(), "Invalid null value of limit");
    }
    let err = bind(&[int(0), int(1)]).expect_err("zero");
    assert_eq!(err.to_string(), "LIMIT must be strictly positive");
}

#[test]
fn token_of_literal_values_bounds_the_range_at_that_keys_token() {
    let token_of = |parts: &[&[u8]]| {
        Murmur3Partitioner::token(&serialize_partition_key(parts).expect("key")).0
    };
    let t = token_of(&[&32i32.to_be_bytes()]);
    let range = |start, end| PartitionSelection::Range { start, end };
    let p = plan("SELECT * FROM ks.t4 WHERE token(k) >= token(32)");
    assert_eq!(p.partitions, range(Bound::Included(t), Bound::Unbounded));
    let p = plan_with("SELECT * FROM ks.t4 WHERE token(k) < token(?)", &[int(32)]).expect("plan");
    assert_eq!(p.partitions, range(Bound::Unbounded, Bound::Excluded(t)));
    let t = token_of(&[&1i32.to_be_bytes(), b"x"]);
    let p = plan("SELECT * FROM ks.t2 WHERE token(a, b) > token(1, 'x')");
    assert_eq!(p.partitions, range(Bound::Excluded(t), Bound::Unbounded));
    assert_eq!(
        error("SELECT * FROM ks.t2 WHERE token(a, b) > token(1)"),
        "Invalid number of arguments in call to function system.token: 2 required but 1 provided"
    );
    let slots = select_slots(
        &select("SELECT * FROM ks.t4 WHERE token(k) > token(?)"),
        catalog().table("ks", "t4").expect("table"),
    )
    .expect("slots");
    assert_eq!(slots[0].name, "arg0(system.token)");
    assert_eq!(slots[0].ty, CqlType::Native(NativeType::Int));
}
