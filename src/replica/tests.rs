//! The purge pass against concurrent writes, on RocksDB in a temporary directory: writers
//! insert, update and delete rows of the same two partitions while purge passes run back to
//! back, and every writer reads its rows back after each round. A purge that read a
//! partition before a write and removed keys after it would lose the write (its keys go
//! with the garbage) or bring deleted data back (a row deletion written in between goes
//! with the one the pass saw); the partition locks exist to make both impossible.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

use super::LocalReplica;
use crate::cache::ReplicaCache;
use crate::config::{Cache, Faults};
use crate::cql::types::{CqlType, NativeType};
use crate::storage::cell::{Cell, DeletionTime, RowMarker};
use crate::storage::comparable::{encode_clustering, full_range, Order};
use crate::storage::partition::{
    resolve_row, ColumnWrite, PartitionId, PartitionUpdate, RowUpdate, Slice, TableLayout,
};
use crate::storage::rocks::{Durability, RocksEngine};

const TABLE: Uuid = Uuid::from_u128(0x9e49e);
/// The writes' "now": the local deletion time of every deletion.
const NOW: u32 = 1_700_000_000;
/// The purge's "now", with `gc_grace_seconds` 0: every deletion is already past grace, so
/// each pass removes every deleted row and overwritten element it finds.
const PURGE_AT: u32 = NOW + 60;

const PARTITIONS: usize = 2;
const WRITERS: usize = 6;
const ROWS_PER_WRITER: usize = 4;
const ROUNDS: usize = 150;

fn layout() -> TableLayout {
    TableLayout {
        id: TABLE,
        clustering: vec![(CqlType::Native(NativeType::Int), Order::Asc)],
    }
}

fn partition(p: usize) -> PartitionId {
    PartitionId {
        token: 1000 * p as i64,
        key: Bytes::from(format!("p{p}")),
    }
}

fn clustering(row: i32) -> Bytes {
    let ty = CqlType::Native(NativeType::Int);
    let bytes = row.to_be_bytes();
    let mut out = Vec::new();
    encode_clustering(&[(&ty, Order::Asc, Some(&bytes[..]))], &mut out).expect("encode");
    Bytes::from(out)
}

/// What a row reads as, or should after a writer's last acknowledged operation on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Gone,
    /// `v` and the one element of `tags`, both written at this timestamp.
    Live(i64),
    /// Live, but not as any operation leaves a row (a lost cell, an element back).
    Mangled,
}

/// One writer's row: its partition and clustering value.
#[derive(Debug, Clone, Copy)]
struct RowId {
    partition: usize,
    row: i32,
}

/// The operation a writer applies to a row in a round: INSERT (marker, `v`, `tags`
/// overwritten), UPDATE (`v` and `tags` overwritten, no marker) or DELETE of the row.
/// Overwriting `tags` writes a collection deletion just below the new element, so the
/// elements before it become garbage, and so does everything a row deletion shadows.
fn operation(id: RowId, round: usize, ts: i64) -> (RowUpdate, State) {
    let clustering = clustering(id.row);
    // Rows start the cycle at different points, so every kind of operation is in flight.
    let phase = (round + id.row as usize) % 3;
    if phase == 2 {
        let deletion = Some(DeletionTime::new(ts, NOW));
        let update = RowUpdate {
            clustering,
            marker: None,
            deletion,
            columns: Vec::new(),
        };
        return (update, State::Gone);
    }
    let value = Bytes::copy_from_slice(&ts.to_be_bytes());
    let columns = vec![
        ColumnWrite::Cell {
            column: "v".into(),
            path: None,
            cell: Cell::live(ts, value.clone()),
        },
        ColumnWrite::CollectionDeletion {
            column: "tags".into(),
            deletion: DeletionTime::new(ts - 1, NOW),
        },
        ColumnWrite::Cell {
            column: "tags".into(),
            path: Some(value),
            cell: Cell::live(ts, Bytes::new()),
        },
    ];
    let update = RowUpdate {
        clustering,
        marker: (phase == 0).then(|| RowMarker::live(ts)),
        deletion: None,
        columns,
    };
    (update, State::Live(ts))
}

/// What every row of partition `p` reads as now, by clustering.
fn stored_rows(replica: &LocalReplica, p: usize) -> BTreeMap<Bytes, State> {
    let slice = Slice {
        ranges: vec![full_range()],
        reversed: false,
    };
    let limits = replica.limits(usize::MAX, NOW, false);
    let (fragment, _) = replica
        .read_stored(&layout(), &partition(p), &slice, &limits)
        .expect("read");
    let mut rows = BTreeMap::new();
    for row in &fragment.rows {
        let Some(live) = resolve_row(row, &fragment.deletion, NOW) else {
            continue;
        };
        let cell = |column: &str| {
            let mut cells = live.cells.iter().filter(|c| c.column == column.as_bytes());
            let found = cells
                .next()
                .map(|c| (c.path.clone(), c.cell.value().cloned()));
            (found, cells.count())
        };
        let state = match (cell("v"), cell("tags")) {
            ((Some((None, Some(v))), 0), (Some((Some(tag), _)), 0)) if v == tag => {
                State::Live(i64::from_be_bytes(v[..].try_into().expect("8 bytes")))
            }
            _ => State::Mangled,
        };
        rows.insert(live.clustering, state);
    }
    rows
}

/// Compares what `rows` read as with what their last operations left; returns the
/// differences.
fn check(replica: &LocalReplica, rows: &[(RowId, State)]) -> Vec<String> {
    let stored: Vec<_> = (0..PARTITIONS).map(|p| stored_rows(replica, p)).collect();
    rows.iter()
        .filter_map(|(id, expected)| {
            let key = clustering(id.row);
            let found = stored[id.partition]
                .get(&key)
                .copied()
                .unwrap_or(State::Gone);
            (found != *expected).then(|| format!("{id:?}: expected {expected:?}, read {found:?}"))
        })
        .collect()
}

/// A writer's rows and what each should read as.
type Rows = Vec<(RowId, State)>;

/// Writer `w`: `ROUNDS` rounds of one operation on each of its rows, each round read back.
/// Returns its rows and the differences found, if any (it stops at the first round with
/// any).
async fn writer(
    replica: Arc<LocalReplica>,
    w: usize,
    clock: Arc<AtomicI64>,
) -> (Rows, Vec<String>) {
    let mut rows: Rows = (0..ROWS_PER_WRITER)
        .map(|r| {
            let id = RowId {
                partition: r % PARTITIONS,
                row: (w * 100 + r) as i32,
            };
            (id, State::Gone)
        })
        .collect();
    for round in 0..ROUNDS {
        for (id, expected) in &mut rows {
            let ts = clock.fetch_add(2, Ordering::SeqCst);
            let (row, after) = operation(*id, round, ts);
            let update = PartitionUpdate {
                table: TABLE,
                partition: partition(id.partition),
                deletion: None,
                static_columns: Vec::new(),
                rows: vec![row],
                range_deletions: Vec::new(),
            };
            replica.write(vec![update]).await.expect("write");
            *expected = after;
        }
        let wrong = check(&replica, &rows);
        if !wrong.is_empty() {
            let wrong = wrong.into_iter().map(|e| format!("round {round}: {e}"));
            return (rows, wrong.collect());
        }
    }
    (rows, Vec::new())
}

#[test]
fn purge_passes_never_lose_an_acknowledged_write_or_bring_back_a_deleted_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hour = Durability::Periodic(std::time::Duration::from_secs(3600));
    let engine = RocksEngine::open(dir.path(), crate::storage::cql_merge, hour).expect("open");
    let cache = ReplicaCache::new(&Cache::default(), &Faults::default());
    let replica = Arc::new(LocalReplica::with_engine(
        Arc::new(engine),
        usize::MAX,
        usize::MAX,
        cache,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let purger = std::thread::spawn({
        let (replica, stop) = (replica.clone(), stop.clone());
        move || {
            let (mut passes, mut keys) = (0u64, 0u64);
            while !stop.load(Ordering::SeqCst) {
                keys += replica
                    .purge_table(&layout(), 0, PURGE_AT)
                    .expect("purge")
                    .keys;
                passes += 1;
            }
            (passes, keys)
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let clock = Arc::new(AtomicI64::new(1_000));
    let (rows, mut wrong) = runtime.block_on(async {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(replica.clone(), w, clock.clone())))
            .collect();
        let (mut rows, mut wrong) = (Vec::new(), Vec::new());
        for w in writers {
            let (mine, found) = w.await.expect("writer");
            rows.extend(mine);
            wrong.extend(found);
        }
        (rows, wrong)
    });
    stop.store(true, Ordering::SeqCst);
    let (passes, keys) = purger.join().expect("purger");
    // Once more with the writes over: a loss the last rounds' reads came too early for.
    replica.purge_table(&layout(), 0, PURGE_AT).expect("purge");
    wrong.extend(
        check(&replica, &rows)
            .into_iter()
            .map(|e| format!("at the end: {e}")),
    );
    println!(
        "{WRITERS} writers x {ROUNDS} rounds x {ROWS_PER_WRITER} rows against {passes} purge passes removing {keys} keys: {} wrong reads",
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "writes lost or deletions undone by a concurrent purge: {:?}",
        &wrong[..wrong.len().min(10)]
    );
    assert!(
        passes >= 2 && keys > 0,
        "the purge had no work during the writes: {passes} passes, {keys} keys"
    );
}

/// A replica on `engine` with the default cache and thresholds, for the record modules'
/// unit tests (batchlog, hints, Paxos state, truncations).
pub(super) fn memory_replica(engine: Arc<crate::storage::memory::MemoryEngine>) -> LocalReplica {
    let cache = ReplicaCache::new(&Cache::default(), &Faults::default());
    LocalReplica::with_engine(engine, 1000, 100_000, cache)
}

/// A fresh in-memory engine.
pub(super) fn memory_engine() -> Arc<crate::storage::memory::MemoryEngine> {
    Arc::new(crate::storage::memory::MemoryEngine::new(
        crate::storage::cql_merge,
    ))
}

/// An update of `table` deleting partition `n` (key `[n]`, token `n`).
pub(super) fn deletion_update(table: u128, n: u8) -> crate::storage::partition::PartitionUpdate {
    crate::storage::partition::PartitionUpdate {
        table: Uuid::from_u128(table),
        partition: PartitionId {
            token: i64::from(n),
            key: Bytes::from(vec![n]),
        },
        deletion: Some(DeletionTime::new(5, 9)),
        static_columns: Vec::new(),
        rows: Vec::new(),
        range_deletions: Vec::new(),
    }
}
