//! Purging changes no read: every case and a property test compare what a partition reads
//! as before and after, and check which keys went.

use bytes::Bytes;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::cql::types::{CqlType, NativeType};
use crate::storage::comparable::{encode_clustering, full_range, ClusteringRange, Order};
use crate::storage::memory::MemoryEngine;
use crate::storage::partition::{
    read_partition, resolve_row, write_batch, ColumnWrite, PartitionUpdate, ReadLimits, RowUpdate,
    Slice,
};

const TABLE: Uuid = Uuid::from_u128(0x9a11);
const NOW: u32 = 1_700_000_000;

fn layout() -> TableLayout {
    TableLayout {
        id: TABLE,
        clustering: vec![(CqlType::Native(NativeType::Int), Order::Asc)],
    }
}

fn ck(c: i32) -> Bytes {
    let ty = CqlType::Native(NativeType::Int);
    let bytes = c.to_be_bytes();
    let mut out = Vec::new();
    encode_clustering(&[(&ty, Order::Asc, Some(&bytes[..]))], &mut out).expect("encode");
    Bytes::from(out)
}

/// Rows `lo..hi` as a clustering range (start inclusive, end exclusive).
fn rows_between(lo: i32, hi: i32) -> ClusteringRange {
    let bound = |c: i32, tag: u8| {
        let mut b = ck(c)[..].to_vec();
        *b.last_mut().expect("terminator") = tag;
        b
    };
    ClusteringRange {
        start: bound(lo, crate::storage::comparable::BEFORE),
        end: bound(hi, crate::storage::comparable::BEFORE),
    }
}

fn partition() -> PartitionId {
    PartitionId {
        token: 7,
        key: Bytes::from_static(b"p"),
    }
}

fn update() -> PartitionUpdate {
    PartitionUpdate {
        table: TABLE,
        partition: partition(),
        deletion: None,
        static_columns: Vec::new(),
        rows: Vec::new(),
        range_deletions: Vec::new(),
    }
}

fn cell(column: &str, path: Option<&'static [u8]>, cell: Cell) -> ColumnWrite {
    ColumnWrite::Cell {
        column: column.into(),
        path: path.map(Bytes::from_static),
        cell,
    }
}

fn row(c: i32, ts: i64, columns: Vec<ColumnWrite>) -> RowUpdate {
    RowUpdate {
        clustering: ck(c),
        marker: Some(RowMarker::live(ts)),
        deletion: None,
        columns,
    }
}

fn deleted_at(ts: i64, ago: u32) -> DeletionTime {
    DeletionTime {
        marked_for_delete_at: ts,
        local_deletion_time: NOW - ago,
    }
}

fn write(engine: &dyn Engine, update: PartitionUpdate) {
    engine
        .write(write_batch(&[update]).expect("batch"))
        .expect("write");
}

/// A live row as a read sees it: its clustering and each live cell (column, path, cell).
type ReadRow = (Bytes, Vec<(Bytes, Option<Bytes>, Cell)>);

/// What the partition reads as at `NOW`: static and rows, each live cell with its write
/// time and expiry.
fn reads(engine: &dyn Engine) -> Vec<ReadRow> {
    let limits = ReadLimits {
        live_rows: usize::MAX,
        now_secs: NOW,
        tombstone_failure: usize::MAX,
        read_static: true,
    };
    let slice = Slice {
        ranges: vec![full_range()],
        reversed: false,
    };
    let (fragment, _) =
        read_partition(engine, &layout(), &partition(), &slice, None, &limits).expect("read");
    fragment
        .static_row
        .iter()
        .chain(&fragment.rows)
        .filter_map(|r| resolve_row(r, &fragment.deletion, NOW))
        .map(|r| {
            let cells = r.cells.into_iter().map(|c| (c.column, c.path, c.cell));
            (r.clustering, cells.collect())
        })
        .collect()
}

/// Keys stored for the partition.
fn keys(engine: &dyn Engine) -> usize {
    let range = crate::storage::keys::partition_range(TABLE, 7, b"p").expect("range");
    engine
        .scan(&range, Direction::Forward, usize::MAX)
        .expect("scan")
        .len()
}

/// Purges at `NOW` with `gc_grace` and checks that nothing a read sees changed; returns
/// the purge.
fn purge(engine: &dyn Engine, gc_grace_seconds: u32) -> Purge {
    let before = reads(engine);
    let horizon = Horizon {
        now_secs: NOW,
        gc_grace_seconds,
    };
    let purge = purge_partition(engine, &layout(), &partition(), horizon).expect("purge");
    engine.write(purge.data.clone()).expect("data");
    engine.write(purge.deletions.clone()).expect("deletions");
    assert_eq!(
        reads(engine),
        before,
        "a purge changed what the partition reads as"
    );
    purge
}

fn engine() -> MemoryEngine {
    MemoryEngine::new(crate::storage::cql_merge)
}

#[test]
fn shadowed_rows_go_at_once_and_the_partition_deletion_after_grace() {
    let engine = engine();
    let mut u = update();
    u.rows = (1..=3)
        .map(|c| row(c, 10, vec![cell("v", None, Cell::live(10, &b"x"[..]))]))
        .collect();
    write(&engine, u);
    let mut d = update();
    d.deletion = Some(deleted_at(20, 100));
    write(&engine, d);
    let first = purge(&engine, 1000);
    assert_eq!(
        (first.data.ops().len(), first.deletions.ops().len()),
        (6, 0)
    );
    assert_eq!(keys(&engine), 1, "only the partition deletion is left");
    let second = purge(&engine, 50);
    assert_eq!(second.deletions.ops().len(), 1);
    assert_eq!(keys(&engine), 0);
}

#[test]
fn a_range_tombstone_goes_only_with_the_rows_it_covers() {
    let engine = engine();
    let mut u = update();
    u.rows = (1..=5)
        .map(|c| row(c, 10, vec![cell("v", None, Cell::live(10, &b"x"[..]))]))
        .collect();
    write(&engine, u);
    let mut d = update();
    d.range_deletions = vec![(rows_between(2, 4), deleted_at(20, 100))];
    write(&engine, d);
    let purge = purge(&engine, 10);
    // Rows 2 and 3 (marker and cell each), then the range's start, end and index keys.
    assert_eq!(purge.data.ops().len(), 4);
    assert_eq!(purge.deletions.ops().len(), 3);
    assert_eq!(keys(&engine), 6);
    let rows: Vec<Bytes> = reads(&engine).into_iter().map(|r| r.0).collect();
    assert_eq!(rows, vec![ck(1), ck(4), ck(5)]);
}

#[test]
fn newer_data_outlives_an_older_row_deletion() {
    let engine = engine();
    let mut u = update();
    u.rows = vec![row(
        1,
        10,
        vec![cell("v", None, Cell::live(10, &b"old"[..]))],
    )];
    write(&engine, u);
    let mut d = update();
    d.rows = vec![RowUpdate {
        clustering: ck(1),
        marker: None,
        deletion: Some(deleted_at(20, 100)),
        columns: Vec::new(),
    }];
    write(&engine, d);
    let mut again = update();
    again.rows = vec![row(
        1,
        30,
        vec![cell("v", None, Cell::live(30, &b"new"[..]))],
    )];
    write(&engine, again);
    // The merged marker and cell are the newer ones: only the deletion can go.
    let purge = purge(&engine, 10);
    assert_eq!(
        (purge.data.ops().len(), purge.deletions.ops().len()),
        (0, 1)
    );
    assert_eq!(reads(&engine).len(), 1);
}

#[test]
fn expired_cells_go_once_grace_has_passed_since_they_were_written() {
    let written = NOW - 100;
    let expiring = Cell::expiring(5, &b"ttl"[..], 10, written);
    for (gc_grace, removed) in [(50, 1), (200, 0)] {
        let engine = engine();
        let mut u = update();
        u.rows = vec![row(1, 5, vec![cell("v", None, expiring.clone())])];
        write(&engine, u);
        let purge = purge(&engine, gc_grace);
        assert_eq!(purge.data.ops().len(), removed, "gc_grace {gc_grace}");
    }
}

#[test]
fn collection_elements_under_its_deletion_go_and_newer_ones_stay() {
    let engine = engine();
    let mut u = update();
    u.rows = vec![row(
        1,
        10,
        vec![
            cell("tags", Some(b"a"), Cell::live(10, Bytes::new())),
            cell("tags", Some(b"b"), Cell::live(10, Bytes::new())),
        ],
    )];
    write(&engine, u);
    let mut overwrite = update();
    overwrite.rows = vec![RowUpdate {
        clustering: ck(1),
        marker: None,
        deletion: None,
        columns: vec![
            ColumnWrite::CollectionDeletion {
                column: "tags".into(),
                deletion: deleted_at(19, 100),
            },
            cell("tags", Some(b"c"), Cell::live(20, Bytes::new())),
        ],
    }];
    write(&engine, overwrite);
    let within_grace = purge(&engine, 1000);
    assert_eq!(within_grace.data.ops().len(), 2, "elements a and b");
    assert_eq!(within_grace.deletions.ops().len(), 0);
    let past_grace = purge(&engine, 10);
    assert_eq!(
        past_grace.deletions.ops().len(),
        1,
        "the collection deletion"
    );
}

#[test]
fn cell_tombstones_and_static_cells_follow_the_same_rules() {
    let engine = engine();
    let mut u = update();
    u.static_columns = vec![cell("s", None, Cell::live(10, &b"s"[..]))];
    u.rows = vec![row(
        1,
        10,
        vec![cell("v", None, Cell::tombstone(10, NOW - 100))],
    )];
    write(&engine, u);
    let mut d = update();
    d.deletion = Some(deleted_at(15, 5));
    write(&engine, d);
    // Within grace for the partition deletion: the static cell and the row it shadows go,
    // and the cell tombstone (past its own grace) with them.
    let purge = purge(&engine, 50);
    assert_eq!(purge.data.ops().len(), 3);
    assert_eq!(purge.deletions.ops().len(), 0);
}

/// One write of the property test.
#[derive(Debug, Clone)]
enum Op {
    Row { c: i32, ts: i64, ttl: Option<u32> },
    DeleteCell { c: i32, ts: i64, ago: u32 },
    DeleteRow { c: i32, ts: i64, ago: u32 },
    DeleteRange { lo: i32, hi: i32, ts: i64, ago: u32 },
    DeletePartition { ts: i64, ago: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..8i32;
    let ts = 1..60i64;
    let ago = 1..3000u32;
    prop_oneof![
        4 => (c.clone(), ts.clone(), proptest::option::of(1..2000u32))
            .prop_map(|(c, ts, ttl)| Op::Row { c, ts, ttl }),
        2 => (c.clone(), ts.clone(), ago.clone()).prop_map(|(c, ts, ago)| Op::DeleteCell { c, ts, ago }),
        2 => (c.clone(), ts.clone(), ago.clone()).prop_map(|(c, ts, ago)| Op::DeleteRow { c, ts, ago }),
        2 => (c.clone(), 1..4i32, ts.clone(), ago.clone())
            .prop_map(|(lo, len, ts, ago)| Op::DeleteRange { lo, hi: lo + len, ts, ago }),
        1 => (ts, ago).prop_map(|(ts, ago)| Op::DeletePartition { ts, ago }),
    ]
}

fn apply(engine: &dyn Engine, op: &Op) {
    let mut u = update();
    match *op {
        Op::Row { c, ts, ttl } => {
            let value = Bytes::from(format!("{c}@{ts}"));
            let (marker, cell) = match ttl {
                Some(ttl) => (
                    RowMarker::expiring(ts, ttl, NOW - 1500),
                    Cell::expiring(ts, value, ttl, NOW - 1500),
                ),
                None => (RowMarker::live(ts), Cell::live(ts, value)),
            };
            u.rows = vec![RowUpdate {
                clustering: ck(c),
                marker: Some(marker),
                deletion: None,
                columns: vec![cell_write("v", cell)],
            }];
        }
        Op::DeleteCell { c, ts, ago } => {
            u.rows = vec![RowUpdate {
                clustering: ck(c),
                marker: None,
                deletion: None,
                columns: vec![cell_write("v", Cell::tombstone(ts, NOW - ago))],
            }];
        }
        Op::DeleteRow { c, ts, ago } => {
            u.rows = vec![RowUpdate {
                clustering: ck(c),
                marker: None,
                deletion: Some(deleted_at(ts, ago)),
                columns: Vec::new(),
            }];
        }
        Op::DeleteRange { lo, hi, ts, ago } => {
            u.range_deletions = vec![(rows_between(lo, hi), deleted_at(ts, ago))];
        }
        Op::DeletePartition { ts, ago } => u.deletion = Some(deleted_at(ts, ago)),
    }
    write(engine, u);
}

/// The key a deletion op writes and its deletion (cell tombstones aside: those may go with
/// the row a higher deletion shadows).
fn deletion_key(op: &Op) -> Option<(Vec<u8>, DeletionTime)> {
    let p = partition();
    let pk = PartitionKey {
        table: TABLE,
        token: p.token,
        key: &p.key,
    };
    let built = match *op {
        Op::DeleteRow { c, ts, ago } => (pk.row_deletion_key(&ck(c)), deleted_at(ts, ago)),
        Op::DeleteRange { lo, hi, ts, ago } => (
            pk.bound_key(&rows_between(lo, hi), BoundSide::Start),
            deleted_at(ts, ago),
        ),
        Op::DeletePartition { ts, ago } => (pk.header_key(), deleted_at(ts, ago)),
        _ => return None,
    };
    Some((built.0.expect("key"), built.1))
}

fn cell_write(column: &str, cell: Cell) -> ColumnWrite {
    ColumnWrite::Cell {
        column: column.into(),
        path: None,
        cell,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any history, any grace: a purge changes nothing a read sees, and with a grace of 0
    /// nothing dead is left behind.
    #[test]
    fn purging_never_changes_a_read(ops in proptest::collection::vec(op(), 1..25), grace in prop_oneof![Just(0u32), Just(500), Just(5000)]) {
        let engine = engine();
        for op in &ops {
            apply(&engine, op);
        }
        purge(&engine, grace);
        // Tombstones within grace are all still there: a late write older than one of
        // them (a hint, a repair) must still find it.
        // (Two deletions of one key merge into the newer, as in Cassandra: that one counts.)
        let mut winners: std::collections::BTreeMap<Vec<u8>, DeletionTime> = Default::default();
        for (key, deletion) in ops.iter().filter_map(deletion_key) {
            let winner = winners.entry(key).or_insert(DeletionTime::LIVE);
            *winner = merge_deletion(*winner, deletion);
        }
        for (key, deletion) in winners {
            if !reconcile::deletion_purgeable(&deletion, NOW, grace) {
                let kept = engine.get(&key).expect("get").map(|v| DeletionTime::decode(&v).expect("deletion"));
                prop_assert_eq!(kept, Some(deletion), "a deletion within grace was purged");
            }
        }
        // A second pass finds nothing more to remove.
        let again = purge_partition(&engine, &layout(), &partition(), Horizon { now_secs: NOW, gc_grace_seconds: grace }).expect("purge");
        prop_assert_eq!(again.removed(), 0);
        if grace == 0 {
            let live: usize = reads(&engine).iter().map(|r| 1 + r.1.len()).sum();
            prop_assert!(keys(&engine) <= live, "dead keys left after a purge with no grace");
        }
    }
}
