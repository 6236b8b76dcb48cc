//! The partition layer against real engines: what a read returns after writes, deletions
//! and expiry, in both directions, across engine chunks and page resumes.

use super::*;
use crate::cql::types::NativeType;
use crate::storage::cell::Cell;
use crate::storage::comparable::{encode_clustering, full_range};
use crate::storage::memory::MemoryEngine;

const TABLE: Uuid = Uuid::from_u128(0xfeed_0000_0000_0000_0000_0000_0000_0001);
const NOW: u32 = 1_700_000_000;

fn int() -> CqlType {
    CqlType::Native(NativeType::Int)
}

fn layout() -> TableLayout {
    TableLayout {
        id: TABLE,
        clustering: vec![(int(), Order::Asc)],
    }
}

fn ck(c: i32) -> Bytes {
    let ty = int();
    let bytes = c.to_be_bytes();
    let mut out = Vec::new();
    encode_clustering(&[(&ty, Order::Asc, Some(&bytes[..]))], &mut out).expect("encode");
    Bytes::from(out)
}

fn pid(n: i64) -> PartitionId {
    PartitionId {
        token: n * 1000,
        key: Bytes::copy_from_slice(&n.to_be_bytes()),
    }
}

fn cell(column: &str, cell: Cell) -> ColumnWrite {
    ColumnWrite::Cell {
        column: column.into(),
        path: None,
        cell,
    }
}

fn live(ts: i64, v: &str) -> Cell {
    Cell::live(ts, Bytes::copy_from_slice(v.as_bytes()))
}

fn row(c: i32, marker: Option<RowMarker>, columns: Vec<ColumnWrite>) -> RowUpdate {
    RowUpdate {
        clustering: ck(c),
        marker,
        deletion: None,
        columns,
    }
}

fn update(p: i64, rows: Vec<RowUpdate>) -> PartitionUpdate {
    PartitionUpdate {
        table: TABLE,
        partition: pid(p),
        deletion: None,
        static_columns: Vec::new(),
        rows,
        range_deletions: Vec::new(),
    }
}

fn engine() -> MemoryEngine {
    MemoryEngine::new(crate::storage::cql_merge)
}

fn write(engine: &dyn Engine, updates: &[PartitionUpdate]) {
    engine
        .write(write_batch(updates).expect("batch"))
        .expect("write");
}

fn limits(live_rows: usize) -> ReadLimits {
    ReadLimits {
        live_rows,
        now_secs: NOW,
        tombstone_failure: 100_000,
        read_static: true,
    }
}

fn all(reversed: bool) -> Slice {
    Slice {
        ranges: vec![full_range()],
        reversed,
    }
}

/// The live rows of partition `p`: (clustering int, [(column, value)]).
fn live_rows(
    engine: &dyn Engine,
    p: i64,
    slice: &Slice,
    after: Option<i32>,
    n: usize,
) -> Vec<(i32, Vec<(String, String)>)> {
    let after = after.map(ck);
    let (fragment, _) = read_partition(
        engine,
        &layout(),
        &pid(p),
        slice,
        after.as_deref(),
        &limits(n),
    )
    .expect("read");
    fragment
        .rows
        .iter()
        .filter_map(|r| resolve_row(r, &fragment.deletion, NOW))
        .map(|r| {
            let ty = int();
            let decoded =
                crate::storage::comparable::decode_clustering(&[(&ty, Order::Asc)], &r.clustering)
                    .expect("decode");
            let value = decoded.values[0].clone().expect("not null");
            let c = i32::from_be_bytes(value[..].try_into().expect("int"));
            let cells = r
                .cells
                .iter()
                .map(|c| {
                    let column = String::from_utf8(c.column.to_vec()).expect("utf8");
                    let value = c.cell.value().map(|v| v.to_vec()).unwrap_or_default();
                    (column, String::from_utf8(value).expect("utf8"))
                })
                .collect();
            (c, cells)
        })
        .collect()
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn an_inserted_row_reads_back_with_its_cells() {
    let e = engine();
    let cells = vec![cell("a", live(10, "x")), cell("b", live(10, "y"))];
    write(
        &e,
        &[update(1, vec![row(5, Some(RowMarker::live(10)), cells)])],
    );
    assert_eq!(
        live_rows(&e, 1, &all(false), None, 10),
        vec![(5, kv(&[("a", "x"), ("b", "y")]))]
    );
}

#[test]
fn a_row_deletion_hides_older_data_and_a_newer_insert_shows_again() {
    let e = engine();
    write(
        &e,
        &[update(
            1,
            vec![row(
                1,
                Some(RowMarker::live(10)),
                vec![cell("a", live(10, "x"))],
            )],
        )],
    );
    let mut delete = row(1, None, Vec::new());
    delete.deletion = Some(DeletionTime::new(20, NOW));
    write(&e, &[update(1, vec![delete])]);
    assert!(live_rows(&e, 1, &all(false), None, 10).is_empty());
    // A write at the deletion's timestamp is still covered; one after it is not.
    write(
        &e,
        &[update(
            1,
            vec![row(1, None, vec![cell("a", live(20, "tie"))])],
        )],
    );
    assert!(live_rows(&e, 1, &all(false), None, 10).is_empty());
    write(
        &e,
        &[update(
            1,
            vec![row(1, None, vec![cell("b", live(21, "new"))])],
        )],
    );
    assert_eq!(
        live_rows(&e, 1, &all(false), None, 10),
        vec![(1, kv(&[("b", "new")]))]
    );
}

#[test]
fn a_partition_deletion_hides_every_older_row_and_static_cell() {
    let e = engine();
    let mut first = update(
        1,
        vec![
            row(1, Some(RowMarker::live(10)), vec![]),
            row(2, Some(RowMarker::live(30)), vec![]),
        ],
    );
    first.static_columns = vec![cell("s", live(10, "old"))];
    write(&e, &[first]);
    let mut delete = update(1, Vec::new());
    delete.deletion = Some(DeletionTime::new(20, NOW));
    write(&e, &[delete]);
    let (fragment, _) =
        read_partition(&e, &layout(), &pid(1), &all(false), None, &limits(10)).expect("read");
    assert_eq!(fragment.deletion, DeletionTime::new(20, NOW));
    let static_row = fragment.static_row.as_ref().expect("static stored");
    assert!(resolve_row(static_row, &fragment.deletion, NOW).is_none());
    assert_eq!(live_rows(&e, 1, &all(false), None, 10), vec![(2, vec![])]);
}

#[test]
fn an_update_made_row_lives_through_its_cells_only() {
    let e = engine();
    write(
        &e,
        &[update(
            1,
            vec![row(1, None, vec![cell("a", live(10, "x"))])],
        )],
    );
    assert_eq!(live_rows(&e, 1, &all(false), None, 10).len(), 1);
    write(
        &e,
        &[update(
            1,
            vec![row(1, None, vec![cell("a", Cell::tombstone(11, NOW))])],
        )],
    );
    assert!(live_rows(&e, 1, &all(false), None, 10).is_empty());
    // An inserted row whose cells are all null still exists.
    write(
        &e,
        &[update(
            1,
            vec![row(
                2,
                Some(RowMarker::live(10)),
                vec![cell("a", Cell::tombstone(10, NOW))],
            )],
        )],
    );
    assert_eq!(live_rows(&e, 1, &all(false), None, 10), vec![(2, vec![])]);
}

#[test]
fn a_hidden_cell_comes_back_with_a_live_row_but_never_makes_one_live() {
    let e = engine();
    let hidden = || cell("\u{0}clustering", live(10, "w"));
    write(
        &e,
        &[update(
            1,
            vec![
                row(1, None, vec![hidden(), cell("a", live(10, "x"))]),
                row(2, None, vec![hidden()]),
            ],
        )],
    );
    assert_eq!(
        live_rows(&e, 1, &all(false), None, 10),
        vec![(1, kv(&[("a", "x"), ("\u{0}clustering", "w")]))]
    );
    // The row limit counts live rows only: row 2 does not use up a LIMIT 1.
    let (fragment, stats) =
        read_partition(&e, &layout(), &pid(1), &all(true), None, &limits(1)).expect("read");
    assert_eq!((stats.live_rows, fragment.rows.len()), (1, 2));
    // Once the row's last real cell is deleted, the hidden cell does not keep it alive.
    write(
        &e,
        &[update(
            1,
            vec![row(1, None, vec![cell("a", Cell::tombstone(11, NOW))])],
        )],
    );
    assert!(live_rows(&e, 1, &all(false), None, 10).is_empty());
}

#[test]
fn expired_cells_and_markers_disappear() {
    let e = engine();
    let ttl_cell = Cell::expiring(10, Bytes::from_static(b"x"), 5, NOW - 10);
    write(
        &e,
        &[update(
            1,
            vec![row(
                1,
                Some(RowMarker::expiring(10, 5, NOW - 10)),
                vec![cell("a", ttl_cell)],
            )],
        )],
    );
    let still = Cell::expiring(10, Bytes::from_static(b"y"), 100, NOW - 10);
    write(
        &e,
        &[update(
            1,
            vec![row(
                2,
                Some(RowMarker::expiring(10, 100, NOW - 10)),
                vec![cell("a", still)],
            )],
        )],
    );
    assert_eq!(
        live_rows(&e, 1, &all(false), None, 10),
        vec![(2, kv(&[("a", "y")]))]
    );
    let (_, stats) =
        read_partition(&e, &layout(), &pid(1), &all(false), None, &limits(10)).expect("read");
    assert_eq!(
        stats.tombstones, 1,
        "the expired cell counts as a tombstone"
    );
}

#[test]
fn a_collection_deletion_hides_only_older_elements() {
    let e = engine();
    let element = |path: &'static [u8], ts: i64| ColumnWrite::Cell {
        column: "tags".into(),
        path: Some(Bytes::from_static(path)),
        cell: Cell::live(ts, Bytes::new()),
    };
    write(
        &e,
        &[update(
            1,
            vec![row(
                1,
                Some(RowMarker::live(10)),
                vec![element(b"a", 10), element(b"b", 10)],
            )],
        )],
    );
    let overwrite = vec![
        ColumnWrite::CollectionDeletion {
            column: "tags".into(),
            deletion: DeletionTime::new(19, NOW),
        },
        element(b"c", 20),
    ];
    write(&e, &[update(1, vec![row(1, None, overwrite)])]);
    let (fragment, _) =
        read_partition(&e, &layout(), &pid(1), &all(false), None, &limits(10)).expect("read");
    let live = resolve_row(&fragment.rows[0], &fragment.deletion, NOW).expect("live");
    let paths: Vec<_> = live.cells.iter().map(|c| c.path.clone()).collect();
    assert_eq!(paths, vec![Some(Bytes::from_static(b"c"))]);
}

/// 300 rows of 2 cells: more than one engine chunk in either direction.
fn wide(e: &dyn Engine) {
    let rows = (0..300)
        .map(|c| {
            let cells = vec![
                cell("a", live(10, &c.to_string())),
                cell("b", live(10, "b")),
            ];
            row(c, Some(RowMarker::live(10)), cells)
        })
        .collect();
    write(e, &[update(1, rows)]);
}

#[test]
fn reads_cross_engine_chunks_in_both_directions_and_resume_after_a_row() {
    let e = engine();
    wide(&e);
    let forward: Vec<i32> = live_rows(&e, 1, &all(false), None, 1000)
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(forward, (0..300).collect::<Vec<_>>());
    let reverse: Vec<i32> = live_rows(&e, 1, &all(true), None, 1000)
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(reverse, (0..300).rev().collect::<Vec<_>>());
    let rows = live_rows(&e, 1, &all(true), None, 1000);
    assert_eq!(
        rows[0].1,
        kv(&[("a", "299"), ("b", "b")]),
        "cells in key order"
    );
    // Pages of 7 in each direction, resuming after the last row of the previous page.
    for reversed in [false, true] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = live_rows(&e, 1, &all(reversed), after, 7);
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 7);
            after = page.last().map(|r| r.0);
            seen.extend(page.iter().map(|r| r.0));
        }
        let mut expected: Vec<i32> = (0..300).collect();
        if reversed {
            expected.reverse();
        }
        assert_eq!(seen, expected);
    }
}

#[test]
fn the_row_limit_counts_live_rows_and_tombstones_are_counted() {
    let e = engine();
    wide(&e);
    let deletions: Vec<RowUpdate> = (0..100)
        .map(|c| {
            let mut r = row(c, None, Vec::new());
            r.deletion = Some(DeletionTime::new(11, NOW));
            r
        })
        .collect();
    write(&e, &[update(1, deletions)]);
    let (fragment, stats) =
        read_partition(&e, &layout(), &pid(1), &all(false), None, &limits(3)).expect("read");
    assert_eq!(stats.live_rows, 3);
    assert_eq!(stats.tombstones, 100);
    assert_eq!(
        fragment.rows.len(),
        103,
        "dead rows are returned as fragments"
    );
    assert!(!fragment.exhausted);
    let mut strict = limits(3);
    strict.tombstone_failure = 50;
    let failed = read_partition(&e, &layout(), &pid(1), &all(false), None, &strict);
    assert!(matches!(
        failed,
        Err(ReadError::TombstoneOverwhelming { tombstones: 51 })
    ));
}

#[test]
fn slices_select_their_rows_in_order() {
    use crate::storage::comparable::{slice_ranges, SliceOp};
    let e = engine();
    wide(&e);
    let ty = int();
    let ten = 10i32.to_be_bytes();
    let twenty = 20i32.to_be_bytes();
    let above =
        slice_ranges(&[(&ty, Order::Asc)], &[], SliceOp::Gt, &[Some(&ten[..])]).expect("gt");
    let below =
        slice_ranges(&[(&ty, Order::Asc)], &[], SliceOp::Le, &[Some(&twenty[..])]).expect("le");
    let ranges = crate::storage::comparable::intersect_ranges(&above, &below);
    let slice = Slice {
        ranges,
        reversed: false,
    };
    let got: Vec<i32> = live_rows(&e, 1, &slice, None, 100)
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(got, (11..=20).collect::<Vec<_>>());
    let slice = Slice {
        reversed: true,
        ..slice
    };
    let got: Vec<i32> = live_rows(&e, 1, &slice, Some(15), 100)
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(got, (11..15).rev().collect::<Vec<_>>());
}

#[test]
fn partitions_are_found_in_token_order_within_token_bounds() {
    let e = engine();
    for p in [3, -2, 7, 1] {
        write(
            &e,
            &[update(p, vec![row(1, Some(RowMarker::live(1)), vec![])])],
        );
    }
    let mut found = Vec::new();
    let mut start = PartitionStart::Token(Bound::Unbounded);
    while let Some(p) = next_partition(&e, TABLE, &start, Bound::Unbounded).expect("scan") {
        found.push(p.token);
        start = PartitionStart::After(p);
    }
    assert_eq!(found, vec![-2000, 1000, 3000, 7000]);
    let first = |start, end| {
        next_partition(&e, TABLE, &start, end)
            .expect("scan")
            .map(|p| p.token)
    };
    assert_eq!(
        first(
            PartitionStart::Token(Bound::Excluded(1000)),
            Bound::Unbounded
        ),
        Some(3000)
    );
    assert_eq!(
        first(
            PartitionStart::Token(Bound::Included(1000)),
            Bound::Unbounded
        ),
        Some(1000)
    );
    assert_eq!(
        first(
            PartitionStart::Token(Bound::Excluded(3000)),
            Bound::Excluded(7000)
        ),
        None
    );
    assert_eq!(
        first(
            PartitionStart::Token(Bound::Excluded(3000)),
            Bound::Included(7000)
        ),
        Some(7000)
    );
    // Another table's partitions are never returned.
    let other = Uuid::from_u128(TABLE.as_u128() + 1);
    assert_eq!(
        next_partition(
            &e,
            other,
            &PartitionStart::Token(Bound::Unbounded),
            Bound::Unbounded
        )
        .expect("scan"),
        None
    );
}

#[test]
fn the_rocksdb_engine_reads_what_the_memory_engine_reads() {
    use crate::storage::rocks::{Durability, RocksEngine};
    let dir = tempfile::tempdir().expect("tempdir");
    let rocks =
        RocksEngine::open(dir.path(), crate::storage::cql_merge, Durability::Batch).expect("open");
    let memory = engine();
    for e in [&rocks as &dyn Engine, &memory] {
        wide(e);
        let mut delete = row(5, None, Vec::new());
        delete.deletion = Some(DeletionTime::new(11, NOW));
        write(e, &[update(1, vec![delete])]);
    }
    for reversed in [false, true] {
        assert_eq!(
            live_rows(&rocks, 1, &all(reversed), Some(100), 50),
            live_rows(&memory, 1, &all(reversed), Some(100), 50)
        );
    }
}

/// A cell `keep` refuses counts as absent: a row that lived only through it is dead, a row
/// with a live marker stays live, and the other cells still show.
#[test]
fn refused_cells_neither_show_nor_keep_a_row_alive() {
    let e = engine();
    write(
        &e,
        &[update(
            1,
            vec![
                row(1, None, vec![cell("x", live(10, "a"))]),
                row(2, Some(RowMarker::live(10)), vec![cell("x", live(10, "b"))]),
                row(
                    3,
                    None,
                    vec![cell("x", live(10, "c")), cell("y", live(10, "d"))],
                ),
            ],
        )],
    );
    let (fragment, _) =
        read_partition(&e, &layout(), &pid(1), &all(false), None, &limits(10)).expect("read");
    let not_x = |f: &ColumnFragment, _: &Cell| f.column.as_ref() != b"x";
    let shown: Vec<(bool, Vec<Bytes>)> = fragment
        .rows
        .iter()
        .map(|r| {
            let mut columns = Vec::new();
            let live = visit_live_cells_where(r, &fragment.deletion, NOW, not_x, |f, _| {
                columns.push(f.column.clone())
            });
            (live, columns)
        })
        .collect();
    assert_eq!(
        shown,
        [
            (false, vec![]),
            (true, vec![]),
            (true, vec![Bytes::from_static(b"y")])
        ]
    );
    // Accepting every cell is visit_live_cells.
    assert!(fragment
        .rows
        .iter()
        .all(|r| visit_live_cells(r, &fragment.deletion, NOW, |_, _| {})));
}

mod merged;
mod ranges;

#[test]
fn an_update_keeps_only_what_is_newer_than_a_truncation() {
    let old = 100;
    let new = 300;
    let deletion = |at| DeletionTime {
        marked_for_delete_at: at,
        local_deletion_time: NOW,
    };
    let cell = |column: &str, at| ColumnWrite::Cell {
        column: column.into(),
        path: None,
        cell: Cell::live(at, Bytes::from_static(b"v")),
    };
    let row = |c, at, columns| RowUpdate {
        clustering: ck(c),
        marker: Some(RowMarker {
            timestamp: at,
            expiry: None,
        }),
        deletion: None,
        columns,
    };
    let mut update = PartitionUpdate {
        table: TABLE,
        partition: pid(1),
        deletion: Some(deletion(old)),
        static_columns: vec![cell("s", old), cell("t", new)],
        rows: vec![
            row(1, old, vec![cell("v", old)]),
            row(2, old, vec![cell("v", new)]),
            row(3, new, vec![]),
        ],
        range_deletions: vec![(full_range(), deletion(old)), (full_range(), deletion(new))],
    };
    assert!(update.drop_written_before(200));
    assert_eq!(update.deletion, None);
    assert_eq!(update.static_columns, vec![cell("t", new)]);
    let rows: Vec<_> = update
        .rows
        .iter()
        .map(|r| (r.clustering.clone(), r.marker.is_some(), r.columns.len()))
        .collect();
    assert_eq!(rows, vec![(ck(2), false, 1), (ck(3), true, 0)]);
    assert_eq!(update.range_deletions.len(), 1);
    assert!(
        !update.drop_written_before(300),
        "nothing is newer than 300"
    );
}
