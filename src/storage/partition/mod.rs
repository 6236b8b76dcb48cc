//! Partitions over an [`Engine`]: the write and read units a replica works in.
//!
//! A write is a list of [`PartitionUpdate`]s — partition deletion, static cells, rows with
//! their marker, deletion and cells — turned into one engine batch, so every partition's
//! mutations (and a whole BATCH's) are applied atomically. Every piece is a merge operand;
//! the engine's reconciliation keeps the winner (`reconcile.rs`).
//!
//! A read returns *fragments*: what the replica stores for the rows it passed — markers,
//! row deletions, cells with their timestamps and TTLs, tombstones included — plus the
//! partition deletion, so a coordinator can later merge the answers of several replicas
//! before deciding what is live (design §5) and a cache can keep them with the
//! timestamps `writetime()`, `ttl()` and digests need (design §6). What is live is decided
//! by [`resolve_row`], the one place Cassandra's read-time rules live. The row limit of a
//! read counts live rows, as a Cassandra replica does, so a page of tombstones does not end
//! a read early; tombstones passed are counted for the tombstone thresholds.

use std::cmp::Ordering;
use std::ops::Bound;

use bytes::Bytes;
use uuid::Uuid;

use super::cell::{Cell, CodecError, DeletionTime, RowMarker, StoredValue};
use super::comparable::{ClusteringRange, Column, KeyError, Order};
use super::engine::{prefix_successor, Direction, Engine, KeyRange, StorageError, WriteBatch};
use super::keys::{parse_key, token_bytes, CellName, PartitionKey, Slot};
use super::reconcile::merge_deletion;
use crate::cql::types::CqlType;
use ranges::OpenRanges;

/// What the key layout needs to know about a table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableLayout {
    /// The table id (the first 16 bytes of every key).
    pub id: Uuid,
    /// Clustering columns' types (user types resolved to their field tuples) and orders.
    pub clustering: Vec<(CqlType, Order)>,
}

/// A partition's identity: its token and serialized key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PartitionId {
    /// The Murmur3 token of `key`.
    pub token: i64,
    /// The serialized partition key (composite form for compound keys).
    pub key: Bytes,
}

impl PartitionId {
    /// A well-spread 64-bit hash of this partition of `table`, for choosing among fixed
    /// sets of stripes (cache versions, partition locks): the token is already a Murmur3
    /// hash of the key, and the table id separates tables that share partition keys.
    pub fn spread(&self, table: &Uuid) -> u64 {
        let (hi, lo) = table.as_u64_pair();
        let mixed = (self.token as u64) ^ hi.rotate_left(17) ^ lo;
        mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// The storage order of partitions: by token, then (for colliding tokens) by key length
    /// and bytes, as the key layout sorts them.
    pub fn storage_cmp(&self, other: &PartitionId) -> Ordering {
        self.token
            .cmp(&other.token)
            .then(self.key.len().cmp(&other.key.len()))
            .then_with(|| self.key.cmp(&other.key))
    }
}

/// A write to one column of a row (or of the static row).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ColumnWrite {
    /// A cell: a value, an expiring value or a tombstone. `path` is the encoded element key
    /// of a non-frozen collection element (`comparable::encode_value`), None otherwise.
    Cell {
        column: String,
        path: Option<Bytes>,
        cell: Cell,
    },
    /// Deletes every element of a non-frozen collection written at or before the
    /// deletion's timestamp (a whole-collection overwrite or DELETE of the column).
    CollectionDeletion {
        column: String,
        deletion: DeletionTime,
    },
}

/// The writes to one clustered row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowUpdate {
    /// The encoded clustering key (`comparable::encode_clustering`, ending in END).
    pub clustering: Bytes,
    /// Set by INSERT: makes the row exist even with every column null.
    pub marker: Option<RowMarker>,
    /// Set by DELETE of the whole row.
    pub deletion: Option<DeletionTime>,
    /// Column writes.
    pub columns: Vec<ColumnWrite>,
}

/// The writes to one partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionUpdate {
    /// The table's id.
    pub table: Uuid,
    /// Which partition.
    pub partition: PartitionId,
    /// Set by DELETE of the whole partition.
    pub deletion: Option<DeletionTime>,
    /// Static column writes.
    pub static_columns: Vec<ColumnWrite>,
    /// Clustered row writes (for a table without clustering columns, one row whose
    /// clustering is the empty clustering, i.e. just END).
    pub rows: Vec<RowUpdate>,
    /// Range deletions (DELETE with a clustering slice or prefix): every row whose
    /// clustering lies in the range (`comparable::bounds`; start inclusive, end exclusive)
    /// is deleted at the deletion's timestamp. Static rows are never covered. Empty ranges
    /// are ignored.
    pub range_deletions: Vec<(ClusteringRange, DeletionTime)>,
}

impl PartitionUpdate {
    /// Drops every write of this update made at or before `at` (µs since the epoch) —
    /// cells, collection and row deletions, row markers, range and partition deletions —
    /// and rows left with nothing: what remains is only what is newer than a TRUNCATE at
    /// `at`. Whether anything remains.
    pub fn drop_written_before(&mut self, at: i64) -> bool {
        let newer = |d: &Option<DeletionTime>| d.filter(|d| d.marked_for_delete_at > at);
        let keep_column = |w: &ColumnWrite| match w {
            ColumnWrite::Cell { cell, .. } => cell.timestamp > at,
            ColumnWrite::CollectionDeletion { deletion, .. } => deletion.marked_for_delete_at > at,
        };
        self.deletion = newer(&self.deletion);
        self.static_columns.retain(keep_column);
        for row in &mut self.rows {
            row.marker = row.marker.filter(|m| m.timestamp > at);
            row.deletion = newer(&row.deletion);
            row.columns.retain(keep_column);
        }
        self.rows
            .retain(|r| r.marker.is_some() || r.deletion.is_some() || !r.columns.is_empty());
        self.range_deletions
            .retain(|(_, d)| d.marked_for_delete_at > at);
        self.deletion.is_some()
            || !self.static_columns.is_empty()
            || !self.rows.is_empty()
            || !self.range_deletions.is_empty()
    }
}

/// What one stored column slot holds, as a read returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CellFragment {
    /// A cell (possibly a tombstone or an expired value).
    Cell(Cell),
    /// A non-frozen collection's deletion.
    CollectionDeletion(DeletionTime),
}

/// One stored column slot of a row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnFragment {
    /// The column name (UTF-8 bytes, as in the key).
    pub column: Bytes,
    /// The encoded collection element key, for collection element cells.
    pub path: Option<Bytes>,
    /// The stored value.
    pub value: CellFragment,
}

/// What a replica stores for one row (or the static row).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowFragment {
    /// The encoded clustering key (ends in END); empty for the static row.
    pub clustering: Bytes,
    /// The row marker, if one is stored.
    pub marker: Option<RowMarker>,
    /// The deletion in force for the row on this replica, [`DeletionTime::LIVE`] if none:
    /// the row's own deletion merged with every range tombstone covering it (never the
    /// partition deletion, which the fragment carries once). Always LIVE for the static row.
    pub deletion: DeletionTime,
    /// Column slots in key order (column name, then element path).
    pub columns: Vec<ColumnFragment>,
}

/// What a replica returns for one partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionFragment {
    /// Which partition.
    pub partition: PartitionId,
    /// The partition deletion, [`DeletionTime::LIVE`] if none.
    pub deletion: DeletionTime,
    /// The static row, when the table has static columns and any are stored.
    pub static_row: Option<RowFragment>,
    /// Rows in read order (reversed for reversed reads), dead ones included.
    pub rows: Vec<RowFragment>,
    /// The range deletions the read met: every range tombstone overlapping the part of the
    /// partition it scanned, already applied to `rows`' deletions. A coordinator merging
    /// several replicas' answers applies each one's ranges to the others' rows, so a row one
    /// replica deleted by range — and therefore does not return at all — cannot come back
    /// from a replica that missed the deletion.
    pub range_deletions: Vec<crate::storage::cell::RangeTombstone>,
    /// Whether the read reached the end of the requested slices (no live row follows).
    pub exhausted: bool,
}

/// Which rows of a partition a read wants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Slice {
    /// Sorted, disjoint clustering ranges (`comparable::bounds`); `[full_range()]` for all.
    pub ranges: Vec<ClusteringRange>,
    /// Whether rows come in reverse clustering order (ORDER BY against the table's order).
    pub reversed: bool,
}

/// Read bounds a caller sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadLimits {
    /// Stop after this many live rows.
    pub live_rows: usize,
    /// "Now" for TTL expiry, in seconds since the Unix epoch.
    pub now_secs: u32,
    /// Fail the read after passing this many tombstones (Cassandra's
    /// `tombstone_failure_threshold`).
    pub tombstone_failure: usize,
    /// Whether to read the static row (the table has static columns the query needs).
    pub read_static: bool,
}

/// What a read passed, for thresholds and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadStats {
    /// Tombstones passed: deleted or expired cells, row, collection and range deletions
    /// (a range counts once per read, however many rows it covers).
    pub tombstones: usize,
    /// Live rows found.
    pub live_rows: usize,
    /// Engine entries read.
    pub entries: usize,
}

/// Why a partition read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The engine failed or holds undecodable data.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// More tombstones than the failure threshold (Cassandra's
    /// TombstoneOverwhelmingException).
    #[error("Scanned over {tombstones} tombstones during query; query aborted")]
    TombstoneOverwhelming {
        /// Tombstones passed before giving up.
        tombstones: usize,
    },
}

/// A live cell of a resolved row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCell {
    /// The column name (UTF-8 bytes).
    pub column: Bytes,
    /// The encoded collection element key, for collection elements.
    pub path: Option<Bytes>,
    /// The cell (live at the resolution's "now"), with its timestamp and TTL.
    pub cell: Cell,
}

/// A row as a query sees it: only what is live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRow {
    /// The encoded clustering key; empty for the static row.
    pub clustering: Bytes,
    /// Live cells in key order (column name, then element path).
    pub cells: Vec<LiveCell>,
}

/// Cassandra's read-time rules for one row: the deletion in force is the later of the
/// partition's and the row's; a marker or cell survives if it is newer than that deletion
/// and not expired; a collection element must also be newer than its collection's
/// deletion. The row is live if its marker or any cell is (an UPDATE-made row has no
/// marker and lives through its cells). Returns None for a dead row.
///
/// Cells of a column whose name starts with a NUL byte are hidden bookkeeping of the
/// coordinator (no CQL identifier can contain NUL), such as the written form of a row's
/// clustering values: they come back with a live row but never make a row live, or a
/// deleted or expired row would come back through them.
pub fn resolve_row(row: &RowFragment, partition: &DeletionTime, now_secs: u32) -> Option<LiveRow> {
    let mut cells = Vec::new();
    let live = visit_live_cells(row, partition, now_secs, |fragment, cell| {
        cells.push(LiveCell {
            column: fragment.column.clone(),
            path: fragment.path.clone(),
            cell: cell.clone(),
        })
    });
    live.then(|| LiveRow {
        clustering: row.clustering.clone(),
        cells,
    })
}

/// [`resolve_row`] without building the row: calls `live` with each live cell, in key
/// order, and returns whether the row is live. The read path assembles column values
/// straight from the fragment this way, without copying or counting references to them.
pub fn visit_live_cells<'r>(
    row: &'r RowFragment,
    partition: &DeletionTime,
    now_secs: u32,
    live: impl FnMut(&'r ColumnFragment, &'r Cell),
) -> bool {
    visit_live_cells_where(row, partition, now_secs, |_, _| true, live)
}

/// [`visit_live_cells`] over the cells `keep` accepts: a cell it refuses is treated as
/// absent, so it neither shows nor makes the row live. The coordinator refuses the cells
/// of a column dropped at or after their write (Cassandra's `dropped_columns` rule): a row
/// that lived only through them is gone, one with a live marker stays.
pub fn visit_live_cells_where<'r>(
    row: &'r RowFragment,
    partition: &DeletionTime,
    now_secs: u32,
    keep: impl Fn(&ColumnFragment, &Cell) -> bool,
    mut live: impl FnMut(&'r ColumnFragment, &'r Cell),
) -> bool {
    let effective = merge_deletion(*partition, row.deletion);
    let marker_live = row
        .marker
        .is_some_and(|m| m.is_live(now_secs) && !m.shadowed_by(&effective));
    let mut cell_live = false;
    // A collection's deletion slot sorts just before its elements.
    let mut collection: Option<(&Bytes, DeletionTime)> = None;
    for fragment in &row.columns {
        match &fragment.value {
            CellFragment::CollectionDeletion(deletion) => {
                collection = Some((&fragment.column, merge_deletion(effective, *deletion)));
            }
            CellFragment::Cell(cell) => {
                let in_force = match collection {
                    Some((column, deletion)) if *column == fragment.column => deletion,
                    _ => effective,
                };
                if cell.is_live(now_secs) && !cell.shadowed_by(&in_force) && keep(fragment, cell) {
                    cell_live |= fragment.column.first() != Some(&0);
                    live(fragment, cell);
                }
            }
        }
    }
    marker_live || cell_live
}

/// The engine batch that applies `updates` atomically.
pub fn write_batch(updates: &[PartitionUpdate]) -> Result<WriteBatch, KeyError> {
    let mut batch = WriteBatch::new();
    for update in updates {
        let pk = PartitionKey {
            table: update.table,
            token: update.partition.token,
            key: &update.partition.key,
        };
        if let Some(deletion) = update.deletion {
            batch.merge(pk.header_key()?, deletion.encode());
        }
        for column in &update.static_columns {
            let (name, value) = column_write(column);
            batch.merge(pk.static_key(Some(name))?, value);
        }
        for row in &update.rows {
            add_row(&mut batch, &pk, row)?;
        }
        for (range, deletion) in &update.range_deletions {
            ranges::add_range(&mut batch, &pk, range, deletion)?;
        }
    }
    Ok(batch)
}

fn add_row(batch: &mut WriteBatch, pk: &PartitionKey<'_>, row: &RowUpdate) -> Result<(), KeyError> {
    if let Some(marker) = row.marker {
        batch.merge(pk.row_key(&row.clustering, None)?, marker.encode());
    }
    if let Some(deletion) = row.deletion {
        batch.merge(pk.row_deletion_key(&row.clustering)?, deletion.encode());
    }
    for column in &row.columns {
        let (name, value) = column_write(column);
        batch.merge(pk.row_key(&row.clustering, Some(name))?, value);
    }
    Ok(())
}

fn column_write(write: &ColumnWrite) -> (CellName<'_>, Vec<u8>) {
    match write {
        ColumnWrite::Cell { column, path, cell } => {
            let name = CellName {
                column,
                path: path.as_deref(),
            };
            (name, cell.encode())
        }
        ColumnWrite::CollectionDeletion { column, deletion } => {
            let name = CellName { column, path: None };
            (name, deletion.encode())
        }
    }
}

/// Where a partition scan starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PartitionStart {
    /// At (`Included`) or after (`Excluded`) a token, or from the ring's start.
    Token(Bound<i64>),
    /// Just after this partition (a page's resume point).
    After(PartitionId),
}

/// The first partition of `table` at or after `start` whose token is within `end`, in
/// storage order; dead partitions (tombstones only) are returned too — a read of them
/// simply finds no live row.
pub fn next_partition(
    engine: &dyn Engine,
    table: Uuid,
    start: &PartitionStart,
    end: Bound<i64>,
) -> Result<Option<PartitionId>, ReadError> {
    let at_token = |t: i64| [table.as_bytes().as_slice(), &token_bytes(t)].concat();
    let start_key = match start {
        PartitionStart::Token(Bound::Unbounded) => table.as_bytes().to_vec(),
        PartitionStart::Token(Bound::Included(t)) => at_token(*t),
        PartitionStart::Token(Bound::Excluded(t)) => match prefix_successor(&at_token(*t)) {
            Some(next) => next,
            None => return Ok(None),
        },
        PartitionStart::After(id) => {
            let pk = PartitionKey {
                table,
                token: id.token,
                key: &id.key,
            };
            match prefix_successor(&pk.prefix().map_err(corrupt_key)?) {
                Some(next) => next,
                None => return Ok(None),
            }
        }
    };
    let end_key = match end {
        Bound::Unbounded => prefix_successor(table.as_bytes()),
        Bound::Included(t) => prefix_successor(&at_token(t)),
        Bound::Excluded(t) => Some(at_token(t)),
    };
    let range = KeyRange {
        start: Bound::Included(Bytes::from(start_key)),
        end: end_key.map_or(Bound::Unbounded, |e| Bound::Excluded(Bytes::from(e))),
    };
    let found = engine.scan(&range, Direction::Forward, 1)?;
    found.first().map(|(key, _)| partition_of(key)).transpose()
}

/// The partition a key belongs to.
fn partition_of(key: &Bytes) -> Result<PartitionId, ReadError> {
    let bad = || corrupt_key(KeyError::Corrupt("partition prefix".into()));
    let token = key
        .get(16..24)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(|b| (u64::from_be_bytes(b) ^ (1 << 63)) as i64)
        .ok_or_else(bad)?;
    let len = key
        .get(24..26)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(bad)?;
    if key.len() < 26 + len {
        return Err(bad());
    }
    Ok(PartitionId {
        token,
        key: key.slice(26..26 + len),
    })
}

pub(crate) fn corrupt_key(e: KeyError) -> ReadError {
    ReadError::Storage(StorageError::Corrupt {
        key: String::new(),
        message: e.to_string(),
    })
}

/// Most entries fetched per engine scan. A read starts with a chunk sized to its row budget
/// (a LIMIT 1 read of a wide partition pulls a few entries, not hundreds) and doubles it up
/// to this while the rows it finds are dead or wide.
const CHUNK: usize = 256;
/// Fewest entries fetched per engine scan.
const MIN_CHUNK: usize = 8;
/// Entries a row usually spans (marker and a few cells), for sizing the first chunk.
const ENTRIES_PER_ROW: usize = 4;

/// Reads `partition`'s rows in `slice` — after the row `after` (an encoded clustering, in
/// read order) when resuming a page — until `limits.live_rows` live rows are found or the
/// slice ends. Returns the fragments and what the read passed.
pub fn read_partition(
    engine: &dyn Engine,
    layout: &TableLayout,
    partition: &PartitionId,
    slice: &Slice,
    after: Option<&[u8]>,
    limits: &ReadLimits,
) -> Result<(PartitionFragment, ReadStats), ReadError> {
    let pk = PartitionKey {
        table: layout.id,
        token: partition.token,
        key: &partition.key,
    };
    let deletion = match engine.get(&pk.header_key().map_err(corrupt_key)?)? {
        Some(v) => DeletionTime::decode(&v).map_err(|e| corrupt_value(&v, e))?,
        None => DeletionTime::LIVE,
    };
    let mut reader = RowReader {
        engine,
        pk,
        open: OpenRanges::default(),
        columns: layout.clustering.iter().map(|(t, o)| (t, *o)).collect(),
        limits,
        deletion,
        stats: ReadStats::default(),
        rows: Vec::new(),
        met: Vec::new(),
        chunk: limits
            .live_rows
            .saturating_mul(ENTRIES_PER_ROW)
            .clamp(MIN_CHUNK, CHUNK),
    };
    let static_row = match limits.read_static {
        true => reader.read_static(&pk)?,
        false => None,
    };
    let mut exhausted = true;
    let ranges: Vec<&ClusteringRange> = match slice.reversed {
        false => slice.ranges.iter().collect(),
        true => slice.ranges.iter().rev().collect(),
    };
    for range in ranges {
        let keys = pk.clustering_range(range).map_err(corrupt_key)?;
        let Some(keys) = resume(keys, &pk, after, slice.reversed)? else {
            continue;
        };
        if !reader.scan_rows(keys, slice.reversed)? {
            exhausted = false;
            break;
        }
    }
    let fragment = PartitionFragment {
        partition: partition.clone(),
        deletion,
        static_row,
        rows: reader.rows,
        exhausted,
        range_deletions: reader.met,
    };
    Ok((fragment, reader.stats))
}

/// Narrows `keys` to what follows the row `after` in read order; None if nothing does.
fn resume(
    mut keys: KeyRange,
    pk: &PartitionKey<'_>,
    after: Option<&[u8]>,
    reversed: bool,
) -> Result<Option<KeyRange>, ReadError> {
    let Some(after) = after else {
        return Ok(Some(keys));
    };
    let row = pk.row_key(after, None).map_err(corrupt_key)?;
    if reversed {
        // Every key of the row starts with `row`, so ending before `row` excludes them all.
        let earlier = match &keys.end {
            Bound::Excluded(e) | Bound::Included(e) => row[..] < e[..],
            Bound::Unbounded => true,
        };
        if earlier {
            keys.end = Bound::Excluded(Bytes::from(row));
        }
    } else {
        let Some(next) = prefix_successor(&row) else {
            return Ok(None);
        };
        let later = match &keys.start {
            Bound::Included(s) | Bound::Excluded(s) => next[..] > s[..],
            Bound::Unbounded => true,
        };
        if later {
            keys.start = Bound::Included(Bytes::from(next));
        }
    }
    let empty = match (&keys.start, &keys.end) {
        (Bound::Included(s), Bound::Excluded(e)) => s >= e,
        _ => false,
    };
    Ok((!empty).then_some(keys))
}

/// Groups a partition's entries into row fragments.
struct RowReader<'a> {
    engine: &'a dyn Engine,
    pk: PartitionKey<'a>,
    /// The range tombstones the current scan is inside of (or may still enter).
    open: OpenRanges,
    columns: Vec<Column<'a>>,
    limits: &'a ReadLimits,
    deletion: DeletionTime,
    stats: ReadStats,
    rows: Vec<RowFragment>,
    /// Every range tombstone the scans met, once each.
    met: Vec<crate::storage::cell::RangeTombstone>,
    /// Entries to fetch with the next engine scan.
    chunk: usize,
}

impl RowReader<'_> {
    /// Records the open ranges in the fragment's list of ranges met (each once).
    fn note_open_ranges(&mut self) {
        for range in self.open.ranges() {
            if !self.met.contains(range) {
                self.met.push(range.clone());
            }
        }
    }

    fn read_static(&mut self, pk: &PartitionKey<'_>) -> Result<Option<RowFragment>, ReadError> {
        let prefix = pk.static_key(None).map_err(corrupt_key)?;
        let mut keys = KeyRange::prefix(&prefix);
        let mut row = empty_row(Bytes::new());
        loop {
            let entries = self.engine.scan(&keys, Direction::Forward, CHUNK)?;
            self.stats.entries += entries.len();
            for (key, value) in &entries {
                let parsed = parse_key(key, &self.columns).map_err(corrupt_key)?;
                if let Slot::Static(Some(name)) = parsed.slot {
                    row.columns.push(column_fragment(key, name, value)?);
                }
            }
            match entries.last() {
                Some((last, _)) if entries.len() == CHUNK => {
                    keys.start = Bound::Excluded(last.clone());
                }
                _ => break,
            }
        }
        self.count_tombstones(&row)?;
        Ok((!row.columns.is_empty()).then_some(row))
    }

    /// Scans `keys` for rows; false when the live-row limit was reached.
    fn scan_rows(&mut self, mut keys: KeyRange, reversed: bool) -> Result<bool, ReadError> {
        let direction = match reversed {
            false => Direction::Forward,
            true => Direction::Reverse,
        };
        let (open, scanned) =
            OpenRanges::at_scan_start(self.engine, &self.pk, &self.columns, &keys, reversed)?;
        self.stats.entries += scanned;
        self.open = open;
        self.note_open_ranges();
        self.count_range_tombstones(self.open.len())?;
        let mut current: Option<RowFragment> = None;
        loop {
            let chunk = self.chunk;
            self.chunk = (chunk * 2).min(CHUNK);
            let entries = self.engine.scan(&keys, direction, chunk)?;
            self.stats.entries += entries.len();
            for (key, value) in &entries {
                if self.entry(&mut current, key, value, reversed)? {
                    return Ok(false);
                }
            }
            match entries.last() {
                Some((last, _)) if entries.len() == chunk => match direction {
                    Direction::Forward => keys.start = Bound::Excluded(last.clone()),
                    Direction::Reverse => keys.end = Bound::Excluded(last.clone()),
                },
                _ => break,
            }
        }
        match current {
            Some(row) => Ok(!self.finish(row, reversed)?),
            None => Ok(true),
        }
    }

    /// Adds one scanned entry to the row being read (finishing the previous row when a new
    /// one starts) or opens the range tombstone it bounds; true when the live-row limit was
    /// reached.
    fn entry(
        &mut self,
        current: &mut Option<RowFragment>,
        key: &Bytes,
        value: &Bytes,
        reversed: bool,
    ) -> Result<bool, ReadError> {
        let parsed = parse_key(key, &self.columns).map_err(corrupt_key)?;
        let clustering = match parsed.slot {
            Slot::Row { clustering, .. } | Slot::RowDeletion { clustering } => clustering,
            Slot::RangeTombstoneBound { bound, side, other } => {
                if self.open.meet(bound, side, other, value)? {
                    self.count_range_tombstones(1)?;
                    self.note_open_ranges();
                }
                return Ok(false);
            }
            // The header, range index and static row are read separately.
            _ => return Ok(false),
        };
        if current
            .as_ref()
            .is_some_and(|r| r.clustering[..] != *clustering)
        {
            if let Some(done) = current.take() {
                if self.finish(done, reversed)? {
                    return Ok(true);
                }
            }
        }
        let row = current.get_or_insert_with(|| empty_row(key.slice_ref(clustering)));
        add_entry(row, key, parsed.slot, value)?;
        Ok(false)
    }

    /// Records a complete row; true when the live-row limit is now reached.
    fn finish(&mut self, mut row: RowFragment, reversed: bool) -> Result<bool, ReadError> {
        if reversed {
            // A reverse scan meets a row's cells last-first; keep them in key order.
            row.columns.reverse();
        }
        self.count_tombstones(&row)?;
        // Counted above as the row's own deletion; the ranges were counted when opened.
        row.deletion = self.open.deletion_at(&row.clustering, row.deletion);
        if resolve_row(&row, &self.deletion, self.limits.now_secs).is_some() {
            self.stats.live_rows += 1;
        }
        self.rows.push(row);
        Ok(self.stats.live_rows >= self.limits.live_rows)
    }

    fn count_tombstones(&mut self, row: &RowFragment) -> Result<(), ReadError> {
        let now = self.limits.now_secs;
        let dead = row
            .columns
            .iter()
            .filter(|c| match &c.value {
                CellFragment::Cell(cell) => !cell.is_live(now),
                CellFragment::CollectionDeletion(_) => true,
            })
            .count();
        self.stats.tombstones += dead + usize::from(!row.deletion.is_live());
        self.check_tombstones()
    }

    fn count_range_tombstones(&mut self, ranges: usize) -> Result<(), ReadError> {
        self.stats.tombstones += ranges;
        self.check_tombstones()
    }

    fn check_tombstones(&self) -> Result<(), ReadError> {
        if self.stats.tombstones > self.limits.tombstone_failure {
            return Err(ReadError::TombstoneOverwhelming {
                tombstones: self.stats.tombstones,
            });
        }
        Ok(())
    }
}

fn empty_row(clustering: Bytes) -> RowFragment {
    RowFragment {
        clustering,
        marker: None,
        deletion: DeletionTime::LIVE,
        columns: Vec::new(),
    }
}

fn add_entry(
    row: &mut RowFragment,
    key: &Bytes,
    slot: Slot<'_>,
    value: &Bytes,
) -> Result<(), ReadError> {
    match slot {
        Slot::Row { cell: None, .. } => {
            row.marker = Some(RowMarker::decode(value).map_err(|e| corrupt_value(value, e))?);
        }
        Slot::RowDeletion { .. } => {
            row.deletion = DeletionTime::decode(value).map_err(|e| corrupt_value(value, e))?;
        }
        Slot::Row {
            cell: Some(name), ..
        } => row.columns.push(column_fragment(key, name, value)?),
        _ => {}
    }
    Ok(())
}

fn column_fragment(
    key: &Bytes,
    name: CellName<'_>,
    value: &Bytes,
) -> Result<ColumnFragment, ReadError> {
    let stored = StoredValue::decode(value).map_err(|e| corrupt_value(value, e))?;
    let value = match stored {
        StoredValue::Cell(cell) => CellFragment::Cell(cell),
        StoredValue::Deletion(deletion) => CellFragment::CollectionDeletion(deletion),
        StoredValue::Marker(_) => {
            return Err(corrupt_value(
                value,
                CodecError::WrongKind {
                    expected: "cell",
                    found: "row marker",
                },
            ))
        }
    };
    Ok(ColumnFragment {
        column: key.slice_ref(name.column.as_bytes()),
        path: name.path.map(|p| key.slice_ref(p)),
        value,
    })
}

pub(crate) fn corrupt_value(value: &[u8], e: CodecError) -> ReadError {
    ReadError::Storage(StorageError::Corrupt {
        key: format!("value of {} bytes", value.len()),
        message: e.to_string(),
    })
}

mod ranges;

#[cfg(test)]
mod tests;
