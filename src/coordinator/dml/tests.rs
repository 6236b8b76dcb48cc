//! DML binding tests: one per write rule, with Cassandra's messages.

use bytes::Bytes;

use super::*;
use crate::cql::parse_statement;
use crate::cql::types::{CqlType, NativeType};
use crate::error::Error;
use crate::protocol::Value;
use crate::ring::Murmur3Partitioner;
use crate::storage::cell::{Cell, DeletionTime, RowMarker};
use crate::storage::comparable::{
    encode_clustering, encode_value, intersect_ranges, prefix_range, slice_ranges, ClusteringRange,
    Column, Order, SliceOp,
};
use crate::storage::partition::{ColumnWrite, PartitionUpdate, RowUpdate};

const TS: i64 = 1_000_000;
const NOW: u32 = 1_700_000_000;

/// One catalog for every test, so table ids agree between statements.
pub(super) fn catalog() -> &'static Catalog {
    static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(build_catalog)
}

fn build_catalog() -> Catalog {
    let mut cat = Catalog::new();
    for cql in [
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TYPE ks.addr (street text, zip int)",
        "CREATE TABLE ks.t (k int, c int, v text, s int static, l list<int>, st set<text>, \
         m map<text, int>, a addr, fa frozen<addr>, PRIMARY KEY (k, c))",
        "CREATE TABLE ks.kv (k int PRIMARY KEY, v int) WITH default_time_to_live = 100",
        "CREATE TABLE ks.cp (a int, b text, c1 int, c2 int, v int, PRIMARY KEY ((a, b), c1, c2)) \
         WITH CLUSTERING ORDER BY (c1 DESC, c2 ASC)",
        "CREATE TABLE ks.counts (k int PRIMARY KEY, n counter)",
        "CREATE TABLE ks.dec (k int, c decimal, v int, PRIMARY KEY (k, c))",
    ] {
        let statement = parse_statement(cql).unwrap_or_else(|e| panic!("{cql}: {e}"));
        cat.apply(&statement, None)
            .unwrap_or_else(|e| panic!("{cql}: {e}"));
    }
    cat
}

/// A stored list for the list operations that read one: `l` holds these elements (paths
/// 1, 2, 3... as one-byte paths) in every row.
pub(super) struct StoredList(pub(super) Vec<i32>);

impl ListReader for StoredList {
    fn elements(
        &self,
        _table: &crate::schema::TableDef,
        _partition: &crate::storage::partition::PartitionId,
        _clustering: Option<&Bytes>,
        _column: &str,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        Ok(self
            .0
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    Bytes::from(vec![i as u8 + 1]),
                    Bytes::copy_from_slice(&v.to_be_bytes()),
                )
            })
            .collect())
    }
}

pub(super) fn run(cql: &str, values: &[Value]) -> Result<Vec<PartitionUpdate>> {
    run_with(cql, values, &StoredList(Vec::new()))
}

pub(super) fn run_with(
    cql: &str,
    values: &[Value],
    lists: &dyn ListReader,
) -> Result<Vec<PartitionUpdate>> {
    let catalog = catalog();
    let statement = parse_statement(cql).unwrap_or_else(|e| panic!("{cql}: {e}"));
    let input = WriteInput {
        catalog,
        keyspace: Some("ks"),
        values,
        timestamp: TS,
        now_secs: NOW,
        lists,
    };
    match &statement {
        Statement::Batch(batch) => bind_batch(batch, &input),
        other => bind_write(other, &input),
    }
}

pub(super) fn ok(cql: &str) -> Vec<PartitionUpdate> {
    run(cql, &[]).unwrap_or_else(|e| panic!("{cql}: {e}"))
}

pub(super) fn err(cql: &str, values: &[Value]) -> String {
    match run(cql, values) {
        Err(Error::Invalid(message)) => message,
        other => panic!("{cql}: expected Invalid, got {other:?}"),
    }
}

pub(super) fn int(v: i32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

pub(super) fn native(n: NativeType) -> CqlType {
    CqlType::Native(n)
}

fn clustering(values: &[(NativeType, Order, Bytes)]) -> Bytes {
    let types: Vec<CqlType> = values.iter().map(|(n, _, _)| native(*n)).collect();
    let components: Vec<_> = values
        .iter()
        .zip(&types)
        .map(|((_, order, v), ty)| (ty, *order, Some(v.as_ref())))
        .collect();
    let mut out = Vec::new();
    encode_clustering(&components, &mut out).expect("encode");
    out.into()
}

fn path(ty: NativeType, key: &[u8]) -> Bytes {
    let mut out = Vec::new();
    encode_value(&native(ty), key, &mut out).expect("encode");
    out.into()
}

fn cell(column: &str, path: Option<Bytes>, cell: Cell) -> ColumnWrite {
    ColumnWrite::Cell {
        column: column.into(),
        path,
        cell,
    }
}

pub(super) fn only_row(updates: &[PartitionUpdate]) -> &RowUpdate {
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].rows.len(), 1, "{updates:?}");
    &updates[0].rows[0]
}

#[test]
fn insert_writes_a_marker_and_a_cell_per_column() {
    let updates = ok("INSERT INTO t (k, c, v) VALUES (1, 2, 'x')");
    let table = catalog().table("ks", "t").expect("t").id;
    assert_eq!(updates[0].table, table);
    assert_eq!(updates[0].partition.key, int(1));
    assert_eq!(
        updates[0].partition.token,
        Murmur3Partitioner::token(&int(1)).value()
    );
    let row = only_row(&updates);
    assert_eq!(
        row.clustering,
        clustering(&[(NativeType::Int, Order::Asc, int(2))])
    );
    assert_eq!(row.marker, Some(RowMarker::live(TS)));
    assert_eq!(row.deletion, None);
    assert_eq!(row.columns, vec![cell("v", None, Cell::live(TS, "x"))]);
}

#[test]
fn using_ttl_and_timestamp_apply_to_marker_and_cells() {
    let updates = ok("INSERT INTO t (k, c, v) VALUES (1, 2, 'x') USING TTL 10 AND TIMESTAMP 5");
    let row = only_row(&updates);
    assert_eq!(row.marker, Some(RowMarker::expiring(5, 10, NOW)));
    assert_eq!(
        row.columns,
        vec![cell("v", None, Cell::expiring(5, "x", 10, NOW))]
    );
}

#[test]
fn the_default_ttl_applies_unless_a_ttl_is_given() {
    let row = ok("INSERT INTO kv (k, v) VALUES (1, 2)");
    assert_eq!(
        only_row(&row).marker,
        Some(RowMarker::expiring(TS, 100, NOW))
    );
    let row = ok("INSERT INTO kv (k, v) VALUES (1, 2) USING TTL 0");
    assert_eq!(only_row(&row).marker, Some(RowMarker::live(TS)));
    let unset = run(
        "UPDATE kv USING TTL ? SET v = 3 WHERE k = 1",
        &[Value::Unset],
    )
    .expect("unset ttl");
    assert_eq!(
        only_row(&unset).columns,
        vec![cell("v", None, Cell::expiring(TS, int(3), 100, NOW))]
    );
}

#[test]
fn ttls_out_of_range_are_refused() {
    assert_eq!(
        err(
            "INSERT INTO kv (k, v) VALUES (1, 2) USING TTL ?",
            &[Value::Bytes(int(-1))]
        ),
        "A TTL must be greater or equal to 0, but was -1"
    );
    assert_eq!(
        err(
            "INSERT INTO kv (k, v) VALUES (1, 2) USING TTL 630720001",
            &[]
        ),
        "ttl is too large. requested (630720001) maximum (630720000)"
    );
    assert_eq!(
        err("DELETE FROM kv USING TTL 5 WHERE k = 1", &[]),
        "TTL attribute is not allowed for DELETE statements"
    );
}

#[test]
fn null_writes_a_tombstone_and_unset_writes_nothing() {
    let updates = run(
        "INSERT INTO kv (k, v) VALUES (?, ?)",
        &[Value::Bytes(int(1)), Value::Null],
    )
    .expect("null");
    assert_eq!(
        only_row(&updates).columns,
        vec![cell("v", None, Cell::tombstone(TS, NOW))]
    );
    let updates = run(
        "UPDATE kv SET v = ? WHERE k = ?",
        &[Value::Unset, Value::Bytes(int(1))],
    )
    .expect("unset");
    assert!(updates.is_empty(), "{updates:?}");
}

#[test]
fn missing_key_parts_are_named() {
    assert_eq!(
        err("INSERT INTO t (c, v) VALUES (1, 'x')", &[]),
        "Some partition key parts are missing: k"
    );
    assert_eq!(
        err("UPDATE cp SET v = 1 WHERE c1 = 1 AND c2 = 2", &[]),
        "Some partition key parts are missing: a, b"
    );
    assert_eq!(
        err("INSERT INTO t (k, v) VALUES (1, 'x')", &[]),
        "Some clustering keys are missing: c"
    );
    assert_eq!(
        err(
            "UPDATE cp SET v = 1 WHERE a = 1 AND b = 'x' AND c1 = 1",
            &[]
        ),
        "Some clustering keys are missing: c2"
    );
    assert_eq!(
        err("UPDATE cp SET v = 1 WHERE a = 1 AND b = 'x' AND c2 = 1", &[]),
        "PRIMARY KEY column \"c2\" cannot be restricted as preceding column \"c1\" is not restricted"
    );
}

#[test]
fn null_and_unset_keys_are_refused() {
    let values = |k: Value| [k, Value::Bytes(int(2))];
    assert_eq!(
        err("INSERT INTO kv (k, v) VALUES (?, ?)", &values(Value::Null)),
        "Invalid null value in condition for column k"
    );
    assert_eq!(
        err("INSERT INTO kv (k, v) VALUES (?, ?)", &values(Value::Unset)),
        "Invalid unset value for column k"
    );
    assert_eq!(
        err("INSERT INTO t (k, c, v) VALUES ('a', 1, 'x')", &[]),
        "Invalid STRING constant (a) for \"k\" of type int"
    );
}

#[test]
fn update_writes_cells_without_a_marker_and_in_fans_out() {
    let updates = ok("UPDATE kv USING TTL 0 SET v = 7 WHERE k IN (1, 2, 1)");
    assert_eq!(updates.len(), 2);
    for (update, key) in updates.iter().zip([1, 2]) {
        assert_eq!(update.partition.key, int(key));
        assert_eq!(update.rows.len(), 1);
        assert_eq!(update.rows[0].marker, None);
        assert_eq!(
            update.rows[0].columns,
            vec![cell("v", None, Cell::live(TS, int(7)))]
        );
    }
    let list = crate::cql::value::CqlValue::List(vec![
        crate::cql::value::CqlValue::Int(3),
        crate::cql::value::CqlValue::Int(4),
    ]);
    let updates = run(
        "UPDATE t SET v = 'y' WHERE k = 1 AND c IN ?",
        &[Value::Bytes(list.to_bytes())],
    )
    .expect("in ?");
    assert_eq!(updates[0].rows.len(), 2);
}

#[test]
fn static_columns_go_to_the_static_row() {
    let updates = ok("UPDATE t SET s = 5 WHERE k = 1");
    assert_eq!(updates[0].rows, vec![]);
    assert_eq!(
        updates[0].static_columns,
        vec![cell("s", None, Cell::live(TS, int(5)))]
    );
    let updates = ok("INSERT INTO t (k, s) VALUES (1, 5)");
    assert_eq!(updates[0].rows, vec![]);
    assert_eq!(updates[0].static_columns.len(), 1);
    let updates = ok("INSERT INTO t (k, c, s, v) VALUES (1, 2, 5, 'x')");
    assert_eq!(updates[0].static_columns.len(), 1);
    assert_eq!(only_row(&updates).columns.len(), 1);
    assert_eq!(only_row(&updates).marker, Some(RowMarker::live(TS)));
    assert_eq!(
        err("UPDATE t SET s = 5 WHERE k = 1 AND c = 2", &[]),
        "Invalid restrictions on clustering columns since the UPDATE statement modifies only static columns"
    );
}

#[test]
fn deletes_of_rows_partitions_and_columns() {
    let row = ok("DELETE FROM t USING TIMESTAMP 9 WHERE k = 1 AND c = 2");
    assert_eq!(only_row(&row).deletion, Some(DeletionTime::new(9, NOW)));
    let no_clustering = ok("DELETE FROM kv WHERE k = 1");
    assert_eq!(no_clustering[0].deletion, Some(DeletionTime::new(TS, NOW)));
    assert!(no_clustering[0].rows.is_empty());
    let partition = ok("DELETE FROM t WHERE k = 1");
    assert_eq!(partition[0].deletion, Some(DeletionTime::new(TS, NOW)));
    assert!(partition[0].rows.is_empty());
    let columns = ok("DELETE v, l FROM t WHERE k = 1 AND c = 2");
    assert_eq!(
        only_row(&columns).columns,
        vec![
            cell("v", None, Cell::tombstone(TS, NOW)),
            ColumnWrite::CollectionDeletion {
                column: "l".into(),
                deletion: DeletionTime::new(TS, NOW)
            }
        ]
    );
    assert_eq!(only_row(&columns).deletion, None);
    let statics = ok("DELETE s FROM t WHERE k = 1");
    assert_eq!(
        statics[0].static_columns,
        vec![cell("s", None, Cell::tombstone(TS, NOW))]
    );
    assert_eq!(
        err("DELETE s FROM t WHERE k = 1 AND c = 1", &[]),
        "Invalid restrictions on clustering columns since the DELETE statement modifies only static columns"
    );
}

fn int_ty() -> CqlType {
    native(NativeType::Int)
}

/// The one partition's range deletions, each checked to be at `ts`.
fn range_deletions(updates: &[PartitionUpdate], ts: i64) -> Vec<ClusteringRange> {
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(updates[0].rows.is_empty() && updates[0].deletion.is_none());
    updates[0]
        .range_deletions
        .iter()
        .map(|(range, deletion)| {
            assert_eq!(*deletion, DeletionTime::new(ts, NOW));
            range.clone()
        })
        .collect()
}

fn slice(cols: &[Column<'_>], prefix: &[i32], bounds: &[(SliceOp, i32)]) -> Vec<ClusteringRange> {
    let prefix: Vec<Bytes> = prefix.iter().map(|v| int(*v)).collect();
    let values: Vec<Option<&[u8]>> = prefix.iter().map(|v| Some(v.as_ref())).collect();
    let mut ranges = vec![prefix_range(cols, &values).expect("prefix")];
    for (op, bound) in bounds {
        let b = int(*bound);
        let piece = slice_ranges(cols, &values, *op, &[Some(b.as_ref())]).expect("slice");
        ranges = intersect_ranges(&ranges, &piece);
    }
    ranges
}

#[test]
fn a_clustering_slice_deletes_one_range() {
    let ty = int_ty();
    let cols = [(&ty, Order::Asc)];
    let updates = ok("DELETE FROM t WHERE k = 1 AND c > 1 AND c <= 5");
    let expected = slice(&cols, &[], &[(SliceOp::Gt, 1), (SliceOp::Le, 5)]);
    assert_eq!(range_deletions(&updates, TS), expected);
    // (1, 5]: after every row of 1, up to after every row of 5.
    let mut after_one = vec![0x40];
    after_one.extend_from_slice(&[0x80, 0, 0, 1, 0x60]);
    assert_eq!(expected[0].start, after_one);
    let updates = ok("DELETE FROM t USING TIMESTAMP 7 WHERE k = 1 AND c < 3");
    assert_eq!(
        range_deletions(&updates, 7),
        slice(&cols, &[], &[(SliceOp::Lt, 3)])
    );
}

#[test]
fn a_clustering_prefix_deletes_its_rows_and_in_gives_one_range_per_value() {
    let ty = int_ty();
    let cols = [(&ty, Order::Desc), (&ty, Order::Asc)];
    let updates = ok("DELETE FROM cp WHERE a = 1 AND b = 'x' AND c1 = 1");
    assert_eq!(range_deletions(&updates, TS), slice(&cols, &[1], &[]));
    let updates = ok("DELETE FROM cp WHERE a = 1 AND b = 'x' AND c1 IN (1, 2, 1)");
    let expected = [slice(&cols, &[1], &[]), slice(&cols, &[2], &[])].concat();
    assert_eq!(range_deletions(&updates, TS), expected);
    let updates = ok("DELETE FROM cp WHERE a = 1 AND b = 'x' AND c1 IN (1, 2) AND c2 >= 3");
    let expected = [
        slice(&cols, &[1], &[(SliceOp::Ge, 3)]),
        slice(&cols, &[2], &[(SliceOp::Ge, 3)]),
    ]
    .concat();
    assert_eq!(range_deletions(&updates, TS), expected);
    // A slice on a DESC column is still one range in storage order.
    let updates = ok("DELETE FROM cp WHERE a = 1 AND b = 'x' AND c1 > 1 AND c1 < 9");
    let expected = slice(&cols, &[], &[(SliceOp::Gt, 1), (SliceOp::Lt, 9)]);
    assert_eq!(expected.len(), 1);
    assert_eq!(range_deletions(&updates, TS), expected);
}

#[test]
fn range_deletions_bind_markers_in_order_and_merge_in_batches() {
    let values = [
        Value::Bytes(int(1)),
        Value::Bytes(int(2)),
        Value::Bytes(int(8)),
    ];
    let updates = run("DELETE FROM t WHERE k = ? AND c >= ? AND c < ?", &values).expect("bind");
    let ty = int_ty();
    let cols = [(&ty, Order::Asc)];
    let expected = slice(&cols, &[], &[(SliceOp::Ge, 2), (SliceOp::Lt, 8)]);
    assert_eq!(range_deletions(&updates, TS), expected);
    let updates = ok("BEGIN BATCH DELETE FROM t WHERE k = 1 AND c > 5; \
         DELETE FROM t WHERE k = 1 AND c < 2; INSERT INTO t (k, c) VALUES (1, 3); APPLY BATCH");
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].range_deletions.len(), 2);
    assert_eq!(updates[0].rows.len(), 1);
    // An empty slice deletes nothing, so it writes nothing.
    assert!(ok("DELETE FROM t WHERE k = 1 AND c > 5 AND c < 3").is_empty());
    let updates = ok("DELETE FROM t WHERE k IN (1, 2) AND c > 5");
    assert_eq!(updates.len(), 2);
    assert!(updates.iter().all(|u| u.range_deletions.len() == 1));
}

#[test]
fn range_deletions_refuse_what_cassandra_refuses() {
    let cases = [
        (
            "DELETE v FROM t WHERE k = 1 AND c > 1",
            "Range deletions are not supported for specific columns",
        ),
        (
            "DELETE v FROM t WHERE k = 1",
            "Range deletions are not supported for specific columns",
        ),
        (
            "UPDATE t SET v = 'x' WHERE k = 1 AND c > 1",
            "Slice restrictions are not supported on the clustering columns in UPDATE statements",
        ),
        (
            "DELETE FROM t WHERE k = 1 AND c > 1 AND c >= 2",
            "More than one restriction was found for the start bound on c",
        ),
        (
            "DELETE FROM t WHERE k = 1 AND c < 1 AND c <= 2",
            "More than one restriction was found for the end bound on c",
        ),
        (
            "DELETE FROM t WHERE k = 1 AND c = 1 AND c > 0",
            "c cannot be restricted by more than one relation if it includes an Equal",
        ),
        (
            "DELETE FROM cp WHERE a = 1 AND b = 'x' AND c1 > 1 AND c2 = 2",
            "Clustering column \"c2\" cannot be restricted (preceding column is restricted by a non-EQ relation)",
        ),
        (
            "DELETE FROM cp WHERE a = 1 AND b = 'x' AND c1 > 1 AND c2 > 2",
            "Clustering column \"c2\" cannot be restricted (preceding column is restricted by a non-EQ relation)",
        ),
        (
            "DELETE FROM cp WHERE a = 1 AND b = 'x' AND c2 > 2",
            "PRIMARY KEY column \"c2\" cannot be restricted as preceding column \"c1\" is not restricted",
        ),
        (
            "DELETE FROM t WHERE k = 1 AND c > null",
            "Invalid null value in condition for column c",
        ),
    ];
    for (cql, message) in cases {
        assert_eq!(err(cql, &[]), message, "{cql}");
    }
    let unset = [Value::Bytes(int(1)), Value::Unset];
    assert_eq!(
        err("DELETE FROM t WHERE k = ? AND c > ?", &unset),
        "Invalid unset value for column c"
    );
}

#[test]
fn descending_clustering_columns_encode_descending() {
    let updates = ok("INSERT INTO cp (a, b, c1, c2, v) VALUES (1, 'x', 2, 3, 4)");
    let key = crate::ring::serialize_partition_key(&[&int(1), b"x"]).expect("key");
    assert_eq!(updates[0].partition.key, Bytes::from(key));
    assert_eq!(
        only_row(&updates).clustering,
        clustering(&[
            (NativeType::Int, Order::Desc, int(2)),
            (NativeType::Int, Order::Asc, int(3))
        ])
    );
}

#[test]
fn whole_collection_writes_delete_at_ts_minus_one_then_add_elements() {
    let updates = ok(
        "INSERT INTO t (k, c, l, st, m, a) VALUES (1, 2, [7, 8], {'b', 'a'}, {'k': 1}, {zip: 9})",
    );
    let columns = &only_row(&updates).columns;
    let deletion = |column: &str| ColumnWrite::CollectionDeletion {
        column: column.into(),
        deletion: DeletionTime::new(TS - 1, NOW),
    };
    assert_eq!(columns[0], deletion("l"));
    let list_paths: Vec<Bytes> = columns[1..3]
        .iter()
        .map(|w| match w {
            ColumnWrite::Cell {
                path: Some(p),
                cell,
                ..
            } => {
                assert!(cell.value().is_some());
                p.clone()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(list_paths[0] < list_paths[1], "list paths increase");
    assert_eq!(columns[3], deletion("st"));
    assert_eq!(
        columns[4],
        cell("st", Some(path(NativeType::Text, b"a")), Cell::live(TS, ""))
    );
    assert_eq!(
        columns[5],
        cell("st", Some(path(NativeType::Text, b"b")), Cell::live(TS, ""))
    );
    assert_eq!(columns[6], deletion("m"));
    assert_eq!(
        columns[7],
        cell(
            "m",
            Some(path(NativeType::Text, b"k")),
            Cell::live(TS, int(1))
        )
    );
    assert_eq!(columns[8], deletion("a"));
    // The null street is skipped; zip is field 1.
    assert_eq!(
        columns[9],
        cell(
            "a",
            Some(path(NativeType::Smallint, &1i16.to_be_bytes())),
            Cell::live(TS, int(9))
        )
    );
    assert_eq!(columns.len(), 10);
    let frozen = ok("UPDATE t SET fa = {street: 'x'} WHERE k = 1 AND c = 2");
    let mut udt = bytes::BytesMut::new();
    bytes::BufMut::put_i32(&mut udt, 1);
    bytes::BufMut::put_slice(&mut udt, b"x");
    bytes::BufMut::put_i32(&mut udt, -1);
    assert_eq!(
        only_row(&frozen).columns,
        vec![cell("fa", None, Cell::live(TS, udt.freeze()))]
    );
    let null = ok("UPDATE t SET m = null WHERE k = 1 AND c = 2");
    assert_eq!(only_row(&null).columns, vec![deletion("m")]);
}

#[test]
fn element_operations_without_reads_are_written() {
    let add =
        ok("UPDATE t SET st = st + {'z'}, m['q'] = 3, a.street = 'main' WHERE k = 1 AND c = 2");
    assert_eq!(
        only_row(&add).columns,
        vec![
            cell("st", Some(path(NativeType::Text, b"z")), Cell::live(TS, "")),
            cell(
                "m",
                Some(path(NativeType::Text, b"q")),
                Cell::live(TS, int(3))
            ),
            cell(
                "a",
                Some(path(NativeType::Smallint, &0i16.to_be_bytes())),
                Cell::live(TS, "main")
            ),
        ]
    );
    let remove = ok("UPDATE t SET st = st - {'z'}, m = m - {'q'} WHERE k = 1 AND c = 2");
    assert_eq!(
        only_row(&remove).columns,
        vec![
            cell(
                "st",
                Some(path(NativeType::Text, b"z")),
                Cell::tombstone(TS, NOW)
            ),
            cell(
                "m",
                Some(path(NativeType::Text, b"q")),
                Cell::tombstone(TS, NOW)
            ),
        ]
    );
    let append = ok("UPDATE t SET l = l + [5] WHERE k = 1 AND c = 2");
    assert_eq!(only_row(&append).columns.len(), 1);
    let delete = ok("DELETE m['q'], a.zip FROM t WHERE k = 1 AND c = 2");
    assert_eq!(only_row(&delete).columns.len(), 2);
    assert_eq!(
        err("UPDATE t SET v = v + 'a' WHERE k = 1 AND c = 2", &[]),
        "Invalid operation (v = v + ?) for non counter column v"
    );
}

#[test]
fn refusals_use_cassandras_messages() {
    assert!(err("INSERT INTO counts (k, n) VALUES (1, 1)", &[])
        .starts_with("Counter tables are not supported yet by this ringcache build"));
    assert!(
        err("INSERT INTO kv (k, v) VALUES (1, 1) IF NOT EXISTS", &[])
            .contains("lightweight transactions")
    );
    assert!(err("UPDATE kv SET v = 1 WHERE k = 1 IF v = 2", &[]).contains("lightweight"));
    assert_eq!(
        err("UPDATE kv SET k = 1 WHERE k = 1", &[]),
        "PRIMARY KEY part k found in SET part"
    );
    assert_eq!(
        err("INSERT INTO kv (k, nope) VALUES (1, 1)", &[]),
        "Undefined column name nope"
    );
    assert_eq!(
        err("INSERT INTO kv (k, v, v) VALUES (1, 1, 1)", &[]),
        "The column names contains duplicates"
    );
    assert_eq!(
        err("INSERT INTO nope.kv (k) VALUES (1)", &[]),
        "Keyspace nope does not exist"
    );
    assert_eq!(
        err("INSERT INTO nope (k) VALUES (1)", &[]),
        "unconfigured table nope"
    );
    assert_eq!(
        err("UPDATE kv SET v = 1 WHERE k = 1 AND v = 2", &[]),
        "Non PRIMARY KEY columns found in where clause: v"
    );
    assert_eq!(
        err("DELETE k FROM kv WHERE k = 1", &[]),
        "Invalid identifier k for deletion (should not be a PRIMARY KEY part)"
    );
    match run("INSERT INTO system.local (key) VALUES ('x')", &[]) {
        Err(Error::Unauthorized(m)) => assert_eq!(m, "system keyspace is not user-modifiable."),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bound_values_are_validated_against_the_column_type() {
    assert_eq!(
        err(
            "INSERT INTO kv (k, v) VALUES (1, ?)",
            &[Value::Bytes(Bytes::from_static(&[1, 2, 3]))]
        ),
        "Invalid value for column v: Expected 4 or 0 byte int (3)"
    );
    assert_eq!(
        err(
            "INSERT INTO t (k, c, v) VALUES (1, 2, ?)",
            &[Value::Bytes(Bytes::from_static(&[0xC3]))]
        ),
        "Invalid value for column v: String didn't validate."
    );
    assert_eq!(
        err("INSERT INTO kv (k, v) VALUES (?, ?)", &[Value::Null]),
        "There were fewer values than bind markers"
    );
    assert_eq!(
        err("INSERT INTO kv (k, v) VALUES (1, 2)", &[Value::Null]),
        "There were more values than bind markers"
    );
    assert_eq!(
        err(
            "INSERT INTO kv (k, v) VALUES (?, 1)",
            &[Value::Bytes(Bytes::new())]
        ),
        "Key may not be empty"
    );
}

#[test]
fn prepared_slots_come_in_text_order_with_partition_key_positions() {
    let catalog = catalog();
    let slots = |cql: &str| {
        let statement = parse_statement(cql).expect("parse");
        write_slots(&statement, catalog, Some("ks")).expect("slots")
    };
    let insert = slots("INSERT INTO cp (v, b, c1, c2, a) VALUES (?, ?, ?, ?, ?) USING TTL ?");
    let names: Vec<&str> = insert.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["v", "b", "c1", "c2", "a", "[ttl]"]);
    let pks: Vec<Option<usize>> = insert.iter().map(|s| s.partition_key).collect();
    assert_eq!(pks, [None, Some(1), None, None, Some(0), None]);
    assert_eq!(insert[5].ty, native(NativeType::Int));
    let update = slots("UPDATE t USING TIMESTAMP ? SET m[?] = ?, v = :val WHERE k = ? AND c IN ?");
    let names: Vec<&str> = update.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["[timestamp]", "key(m)", "value(m)", "val", "k", "in(c)"]
    );
    assert_eq!(update[0].ty, native(NativeType::Bigint));
    assert_eq!(update[4].partition_key, Some(0));
    assert_eq!(update[5].ty, CqlType::list(native(NativeType::Int)));
    let batch = slots(
        "BEGIN BATCH USING TIMESTAMP ? INSERT INTO kv (k, v) VALUES (?, ?); \
         DELETE FROM t WHERE k = ? AND c = ? APPLY BATCH",
    );
    let names: Vec<&str> = batch.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["[timestamp]", "k", "v", "k", "c"]);
}

#[test]
fn batches_merge_writes_per_partition() {
    let updates = ok("BEGIN BATCH USING TIMESTAMP 42 \
         INSERT INTO t (k, c, v) VALUES (1, 1, 'a'); \
         INSERT INTO t (k, c, v) VALUES (1, 2, 'b'); \
         UPDATE t SET v = 'c' WHERE k = 1 AND c = 1; \
         UPDATE t SET s = 3 WHERE k = 1; \
         INSERT INTO kv (k, v) VALUES (1, 1) USING TTL 0; \
         APPLY BATCH");
    assert_eq!(updates.len(), 2);
    let t = &updates[0];
    assert_eq!(t.rows.len(), 2);
    assert_eq!(t.rows[0].marker, Some(RowMarker::live(42)));
    assert_eq!(
        t.rows[0].columns,
        vec![
            cell("v", None, Cell::live(42, "a")),
            cell("v", None, Cell::live(42, "c"))
        ]
    );
    assert_eq!(t.static_columns.len(), 1);
    assert_eq!(updates[1].rows[0].marker, Some(RowMarker::live(42)));
    assert_eq!(
        err(
            "BEGIN BATCH USING TIMESTAMP 1 INSERT INTO kv (k, v) VALUES (1, 1) USING TIMESTAMP 2; APPLY BATCH",
            &[]
        ),
        "Timestamp must be set either on BATCH or individual statements"
    );
    assert_eq!(
        err(
            "BEGIN BATCH USING TTL 1 INSERT INTO kv (k, v) VALUES (1, 1); APPLY BATCH",
            &[]
        ),
        "Global TTL on the BATCH statement is not supported."
    );
    assert!(err(
        "BEGIN COUNTER BATCH UPDATE counts SET n = n + 1 WHERE k = 1; APPLY BATCH",
        &[]
    )
    .starts_with("Counter tables"));
}

#[test]
fn merge_updates_reconciles_markers_and_deletions() {
    let mut all = ok("INSERT INTO kv (k, v) VALUES (1, 1) USING TIMESTAMP 5");
    all.extend(ok("INSERT INTO kv (k, v) VALUES (1, 2) USING TIMESTAMP 7"));
    all.extend(ok("DELETE FROM kv USING TIMESTAMP 3 WHERE k = 1"));
    all.extend(ok("DELETE FROM kv USING TIMESTAMP 4 WHERE k = 1"));
    all.extend(ok("INSERT INTO kv (k, v) VALUES (2, 2)"));
    let merged = merge_updates(all);
    assert_eq!(merged.len(), 2);
    let first = &merged[0];
    assert_eq!(first.deletion, Some(DeletionTime::new(4, NOW)));
    assert_eq!(first.rows.len(), 1);
    assert_eq!(first.rows[0].marker, Some(RowMarker::expiring(7, 100, NOW)));
    assert_eq!(first.rows[0].columns.len(), 2);
}

#[test]
fn target_names_the_written_table() {
    let statement = parse_statement("UPDATE other.x SET v = 1 WHERE k = 1").expect("parse");
    assert_eq!(
        target(&statement, Some("ks")).expect("target"),
        ("other".to_owned(), "x".to_owned())
    );
    let statement = parse_statement("DELETE FROM x WHERE k = 1").expect("parse");
    assert_eq!(
        target(&statement, Some("ks")).expect("target"),
        ("ks".to_owned(), "x".to_owned())
    );
    assert!(target(&statement, None).is_err());
}

#[test]
fn literals_of_every_native_type_convert() {
    let catalog = {
        let mut cat = build_catalog();
        let cql = "CREATE TABLE ks.types (k int PRIMARY KEY, d date, ti time, ts timestamp, \
                   vi varint, de decimal, du duration, u uuid, tu timeuuid, i inet, b blob, \
                   f float, db double, bo boolean, ti8 tinyint, s16 smallint, bi bigint, a ascii)";
        cat.apply(&parse_statement(cql).expect("parse"), None)
            .expect("create");
        cat
    };
    let cql = "INSERT INTO types (k, d, ti, ts, vi, de, du, u, tu, i, b, f, db, bo, ti8, s16, bi, a) \
               VALUES (1, '2024-02-29', '13:45:01.5', '2024-02-29 13:45:01.250+0100', \
               -129, 1.50, 1h30m, uuid(), now(), '127.0.0.1', 0xCAFE, 1.5, 2.5, true, 1, 2, 3, 'x')";
    let statement = parse_statement(cql).expect("parse");
    let input = WriteInput {
        catalog: &catalog,
        keyspace: Some("ks"),
        values: &[],
        timestamp: TS,
        now_secs: NOW,
        lists: &StoredList(Vec::new()),
    };
    let updates = bind_write(&statement, &input).expect("bind");
    let value = |name: &str| {
        only_row(&updates)
            .columns
            .iter()
            .find_map(|w| match w {
                ColumnWrite::Cell { column, cell, .. } if column == name => cell.value().cloned(),
                _ => None,
            })
            .expect(name)
    };
    let days_2024_02_29 = 19_782u32 + (1 << 31);
    assert_eq!(
        value("d"),
        Bytes::copy_from_slice(&days_2024_02_29.to_be_bytes())
    );
    let nanos = ((13 * 60 + 45) * 60 + 1) * 1_000_000_000i64 + 500_000_000;
    assert_eq!(value("ti"), Bytes::copy_from_slice(&nanos.to_be_bytes()));
    let millis = 19_782i64 * 86_400_000 + ((12 * 60 + 45) * 60 + 1) * 1000 + 250;
    assert_eq!(value("ts"), Bytes::copy_from_slice(&millis.to_be_bytes()));
    assert_eq!(value("vi"), Bytes::from_static(&[0xFF, 0x7F]));
    assert_eq!(value("de"), Bytes::from_static(&[0, 0, 0, 2, 0, 150]));
    let duration = crate::cql::value::CqlValue::Duration {
        months: 0,
        days: 0,
        nanos: 5_400_000_000_000,
    };
    assert_eq!(value("du"), duration.to_bytes());
    assert_eq!(value("tu").get(6).map(|b| b & 0xF0), Some(0x10));
}

/// The hidden cell holding a row's clustering values as written, if the row has one.
fn written_clustering(row: &RowUpdate) -> Option<Bytes> {
    row.columns.iter().find_map(|w| match w {
        ColumnWrite::Cell { column, path, cell } if column == "\u{0}clustering" => {
            assert_eq!(*path, None);
            assert_eq!(
                cell.timestamp, TS,
                "a plain live cell at the write's timestamp"
            );
            assert!(matches!(
                cell.kind,
                crate::storage::cell::CellKind::Live { .. }
            ));
            cell.value().cloned()
        }
        _ => None,
    })
}

#[test]
fn clustering_values_that_do_not_decode_as_written_are_kept_in_a_hidden_cell() {
    // 1.50 (unscaled 150, scale 2) encodes as 1.5 does: it is kept as written.
    let scaled = ok("INSERT INTO dec (k, c, v) VALUES (1, 1.50, 2) USING TTL 10");
    let row = only_row(&scaled);
    let decimal = [0, 0, 0, 2, 0, 150];
    let mut expected = (decimal.len() as i32).to_be_bytes().to_vec();
    expected.extend_from_slice(&decimal);
    assert_eq!(written_clustering(row), Some(Bytes::from(expected)));
    assert_eq!(row.columns.len(), 2, "{row:?}");
    let plain = ok("INSERT INTO dec (k, c, v) VALUES (1, 1.5, 2)");
    assert_eq!(only_row(&plain).clustering, row.clustering, "the same row");
    assert_eq!(written_clustering(only_row(&plain)), None);
    // An UPDATE writes it too; a DELETE, which writes no values, does not.
    let update = ok("UPDATE dec SET v = 3 WHERE k = 1 AND c = 1.50");
    assert!(written_clustering(only_row(&update)).is_some());
    for cql in [
        "DELETE FROM dec WHERE k = 1 AND c = 1.50",
        "DELETE v FROM dec WHERE k = 1 AND c = 1.50",
    ] {
        assert_eq!(written_clustering(only_row(&ok(cql))), None, "{cql}");
    }
    // Ints decode as written: no hidden cell.
    let int_row = ok("INSERT INTO t (k, c, v) VALUES (1, 2, 'x')");
    assert_eq!(written_clustering(only_row(&int_row)), None);
}

/// The (path, cell) writes of column `l` in the only row of `updates`.
fn list_writes(updates: &[PartitionUpdate]) -> Vec<(Bytes, Cell)> {
    only_row(updates)
        .columns
        .iter()
        .filter_map(|w| match w {
            ColumnWrite::Cell {
                column,
                path: Some(path),
                cell,
            } if column == "l" => Some((path.clone(), cell.clone())),
            _ => None,
        })
        .collect()
}

fn int_cell(v: i32) -> Cell {
    Cell::live(TS, Bytes::copy_from_slice(&v.to_be_bytes()))
}

#[test]
fn a_prepend_goes_ahead_of_every_element_in_its_own_order() {
    let first = list_writes(&ok("UPDATE t SET l = [1, 2, 3] + l WHERE k = 1 AND c = 2"));
    let later = list_writes(&ok("UPDATE t SET l = [0] + l WHERE k = 1 AND c = 2"));
    let append = list_writes(&ok("UPDATE t SET l = l + [9] WHERE k = 1 AND c = 2"));
    let values: Vec<Cell> = first.iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(values, vec![int_cell(1), int_cell(2), int_cell(3)]);
    // Paths are comparable timeuuids: list order is path order.
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "{first:?}");
    assert!(later[0].0 < first[0].0, "a later prepend sorts first");
    assert!(first[2].0 < append[0].0, "a prepend sorts before an append");
}

#[test]
fn index_and_value_operations_use_the_stored_list() {
    let stored = StoredList(vec![10, 20, 30, 20]);
    let set = run_with("UPDATE t SET l[1] = 7 WHERE k = 1 AND c = 2", &[], &stored).expect("set");
    assert_eq!(
        list_writes(&set),
        vec![(Bytes::from_static(&[2]), int_cell(7))]
    );
    let delete =
        run_with("DELETE l[3] FROM t WHERE k = 1 AND c = 2", &[], &stored).expect("delete");
    assert_eq!(
        list_writes(&delete),
        vec![(Bytes::from_static(&[4]), Cell::tombstone(TS, NOW))]
    );
    let remove = run_with(
        "UPDATE t SET l = l - [20, 99] WHERE k = 1 AND c = 2",
        &[],
        &stored,
    )
    .expect("remove");
    let removed: Vec<Bytes> = list_writes(&remove).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        removed,
        vec![Bytes::from_static(&[2]), Bytes::from_static(&[4])]
    );
    let out_of_bound = run_with("UPDATE t SET l[4] = 1 WHERE k = 1 AND c = 2", &[], &stored);
    assert!(
        matches!(&out_of_bound, Err(Error::Invalid(m)) if m == "List index 4 out of bound, list has size 4"),
        "{out_of_bound:?}"
    );
    assert_eq!(
        err("UPDATE t SET l[0] = 1 WHERE k = 1 AND c = 2", &[]),
        "Attempted to set an element on a list which is null"
    );
    assert_eq!(
        err("DELETE l[0] FROM t WHERE k = 1 AND c = 2", &[]),
        "Attempted to delete an element from a list which is null"
    );
    // Removing from a list that holds nothing writes nothing.
    assert!(ok("UPDATE t SET l = l - [1] WHERE k = 1 AND c = 2").is_empty());
}
