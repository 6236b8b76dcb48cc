//! SELECT on user tables: a [`ReadPlan`] run against the partitions' replica, fragments
//! resolved into rows, rows cut into pages.
//!
//! The read walks partitions in the plan's order — the named ones in their key values' order,
//! or a token range in storage order through
//! the replica's partition index — and asks the replica for each partition's slice with a
//! live-row budget: what is left of the page, the LIMIT and the PER PARTITION LIMIT. Rows
//! come back as fragments; each row's live cells are visited in place
//! (`storage::partition::visit_live_cells`, Cassandra's read-time rules) and assembled into
//! column values: partition key parts from the key, clustering values from the encoded
//! clustering, cells by column name, non-frozen collections joined from their element
//! cells. This is the hot path of a cache hit, so nothing is built per cell but the value's
//! reference. A page ends with a [`PagingState`] naming the last row returned, so the
//! next page resumes from storage position, not by re-reading and skipping.
//!
//! The clustering encoding is canonical by value, as Cassandra's comparators are: decimal
//! 1.5 and 1.50 are one row. Decoding it cannot give back the scale the client wrote, yet
//! Cassandra returns clustering bytes as written, so a write whose values do not survive
//! encode-then-decode also stores them in a hidden cell, [`WRITTEN_CLUSTERING`]; a live
//! row shows those values instead of the decoded ones. The cell is reconciled like any
//! other (the latest write's form wins) and never makes a row live by itself
//! (`resolve_row`).

use std::ops::Bound;

use bytes::{BufMut, Bytes, BytesMut};

use super::paging::PagingState;
use super::plan::EncodedRows;
use super::replication::{ReadFailed, ReadTarget, Replication};
use super::restrict::{PartitionSelection, ReadPlan};
use crate::cache::{Caching, Rendering, Served};
use crate::cql::types::CqlType;
use crate::error::{Error, Result};
use crate::protocol::{Consistency, QueryParameters};
use crate::replica::LocalReplica;
use crate::schema::{ColumnKind, KeyspaceDef, TableDef};
use crate::storage::cell::Cell;
use crate::storage::cell::CellKind;
use crate::storage::comparable::{self, full_range};
use crate::storage::partition::{
    visit_live_cells, visit_live_cells_where, ColumnFragment, PartitionFragment, PartitionId,
    PartitionStart, ReadError, RowFragment, TableLayout,
};

/// The hidden column holding a row's clustering values as the client wrote them, when
/// they differ from what decoding the encoded clustering gives. A CQL identifier cannot
/// contain NUL, so no table column can have this name. The value is the list of
/// components, each a big-endian i32 length and that many bytes (-1 for null), as a
/// serialized tuple is.
pub(super) const WRITTEN_CLUSTERING: &str = "\u{0}clustering";

/// The [`WRITTEN_CLUSTERING`] cell value of `values`.
pub(super) fn encode_written_clustering(values: &[Option<&[u8]>]) -> Bytes {
    let mut buf = BytesMut::new();
    for value in values {
        match value.and_then(|v| i32::try_from(v.len()).ok().map(|len| (v, len))) {
            Some((v, len)) => {
                buf.put_i32(len);
                buf.put_slice(v);
            }
            None => buf.put_i32(-1),
        }
    }
    buf.freeze()
}

/// The components of a [`WRITTEN_CLUSTERING`] value; None unless it is well-formed.
fn decode_written_clustering(value: &Bytes) -> Option<Vec<Option<Bytes>>> {
    let mut values = Vec::new();
    let mut pos = 0;
    while pos < value.len() {
        let len = i32::from_be_bytes(value.get(pos..pos + 4)?.try_into().ok()?);
        pos += 4;
        match usize::try_from(len) {
            Ok(len) => {
                let part = value.get(pos..pos.checked_add(len)?)?;
                values.push(Some(value.slice_ref(part)));
                pos += len;
            }
            Err(_) => values.push(None),
        }
    }
    Some(values)
}

/// Where a read's partitions come from.
#[derive(Clone, Copy)]
pub(super) enum ReadPath<'a> {
    /// The partition's replicas at the read's consistency level (a SELECT, or a Paxos
    /// round's read).
    Replicas {
        replication: &'a Replication,
        keyspace: &'a KeyspaceDef,
        /// Replicas (host ids) asked before the closest: a Paxos round's promisers, known to
        /// be answering.
        prefer: &'a [uuid::Uuid],
    },
    /// This node's replica alone (a lightweight transaction, run on its partition's only
    /// replica).
    Local(&'a LocalReplica),
}

impl ReadPath<'_> {
    fn local(&self) -> &LocalReplica {
        match self {
            ReadPath::Replicas { replication, .. } => replication.local(),
            ReadPath::Local(replica) => replica,
        }
    }
}

/// Partitions fetched per step of a token-range scan.
const SCAN_BATCH: usize = 64;

/// A user table and the replica holding it, for one read.
pub(super) struct TableRead<'a> {
    pub path: ReadPath<'a>,
    /// Whether this read may be answered from (and kept in) the replica cache.
    pub caching: Caching,
    pub table: &'a TableDef,
    pub layout: &'a TableLayout,
    /// Column types in table order, user types resolved to their field tuples.
    pub types: &'a [CqlType],
    pub now_secs: u32,
    pub max_unpaged_rows: usize,
    pub consistency: Consistency,
}

/// What a statement asks of the rows.
pub(super) struct Query<'a> {
    pub plan: &'a ReadPlan,
    pub limit: Option<usize>,
    pub per_partition_limit: Option<usize>,
    /// Count rows instead of returning them (an aggregate): no paging, no row budget.
    pub count_only: bool,
    /// The columns whose non-null values are counted too (`count(v)`), as table indexes.
    pub counted: &'a [usize],
    /// Residual restrictions (ALLOW FILTERING) a row must pass.
    pub filter: &'a (dyn Fn(&StoredRow) -> bool + Sync),
    /// Projects each row straight into its wire form ([`Output::encoded`]) instead of
    /// returning it; None returns rows ([`Output::rows`]).
    pub render: Option<Render<'a>>,
}

/// How a query puts rows in their wire form.
#[derive(Clone, Copy)]
pub(super) struct Render<'a> {
    /// Appends one row's output cells.
    pub project: &'a (dyn Fn(&StoredRow, &mut EncodedRows) -> Result<()> + Sync),
    /// The projection's identity when its rows depend only on the rows read (not on
    /// "now", and no residual filter decides which rows are kept): the rows it made of a
    /// cache entry are then kept with the entry and copied by later reads
    /// ([`crate::cache::Rendering`]).
    pub keep: Option<u64>,
}

/// A row as the projection sees it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredRow {
    /// The partition's token.
    pub token: i64,
    /// The encoded clustering (storage order); empty for a static-only row.
    pub clustering: Bytes,
    /// One serialized value per table column (None: null).
    pub values: Vec<Option<Bytes>>,
    /// Per column holding a single cell: its write timestamp and remaining TTL.
    pub meta: Vec<Option<(i64, Option<i32>)>>,
    /// The same for each field of a non-frozen user type (`writetime(u.f)`); empty for
    /// tables without one.
    pub field_meta: Vec<FieldMeta>,
}

/// The write timestamp and remaining TTL of one field cell of a non-frozen user type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct FieldMeta {
    /// The table column.
    pub column: usize,
    /// The field's index in the type.
    pub field: u16,
    pub timestamp: i64,
    pub ttl: Option<i32>,
}

/// The rows of a page (or, for an aggregate, all rows counted).
pub(super) struct Output {
    pub rows: Vec<StoredRow>,
    /// The rows in wire form, when the query renders them ([`Query::render`]).
    pub encoded: EncodedRows,
    /// Rows emitted (for an aggregate, counted).
    pub count: i64,
    /// For each of `Query::counted`, the rows where that column is not null.
    pub column_counts: Vec<i64>,
    pub paging_state: Option<Bytes>,
}

/// Where a partition's scan stopped.
struct PartitionScan {
    emitted: usize,
    /// The last row returned (None if none, or a static-only row).
    last: Option<Bytes>,
}

impl TableRead<'_> {
    /// Runs `query`, resuming from the client's paging state.
    pub async fn run(&self, query: &Query<'_>, params: &QueryParameters) -> Result<Output> {
        let state = match (&params.paging_state, query.count_only) {
            (Some(bytes), false) => Some(PagingState::decode(bytes, self.table.id)?),
            _ => None,
        };
        // A page is bounded like an unpaged read: a larger page size gets pages of the
        // bound, each with its paging state (drivers follow has_more_pages, not the size).
        let page_size = params
            .page_size
            .filter(|n| *n > 0 && !query.count_only)
            .map(|n| (n as usize).min(self.max_unpaged_rows.max(1)));
        let budget = match (page_size, query.count_only) {
            (Some(n), _) => n,
            (None, true) => usize::MAX,
            (None, false) => self.max_unpaged_rows.saturating_add(1),
        };
        let mut remaining = state
            .as_ref()
            .map_or(query.limit, |s| s.remaining.map(|r| r as usize));
        let mut out = Output {
            rows: Vec::new(),
            encoded: EncodedRows::default(),
            count: 0,
            column_counts: vec![0; query.counted.len()],
            paging_state: None,
        };
        if let Some(state) = &state {
            self.check_state(state, &query.plan.partitions)?;
        }
        let mut cursor = Cursor::new(&query.plan.partitions, state.as_ref());
        let reading = Reading {
            query,
            shape: Shape::new(self.table, self.layout),
        };
        while let Some(partition) = cursor.next(self).await? {
            let (after, already) = match &state {
                Some(s) if s.partition == partition && s.clustering.is_some() => {
                    (s.clustering.clone(), s.partition_rows as usize)
                }
                _ => (None, 0),
            };
            let room = (budget - out.emitted().min(budget)).min(remaining.unwrap_or(usize::MAX));
            let scan = self
                .scan_partition(&reading, &partition, after, already, room, &mut out)
                .await?;
            if let Some(r) = remaining.as_mut() {
                *r -= scan.emitted.min(*r);
            }
            if remaining == Some(0) {
                break;
            }
            if !query.count_only && out.emitted() >= budget {
                if page_size.is_some() {
                    out.paging_state = Some(
                        PagingState {
                            table: self.table.id,
                            partition,
                            clustering: scan.last,
                            remaining: remaining.map(|r| r.min(u32::MAX as usize) as u32),
                            partition_rows: (already + scan.emitted) as u32,
                        }
                        .encode(),
                    );
                }
                break;
            }
        }
        if page_size.is_none() && !query.count_only && out.emitted() > self.max_unpaged_rows {
            return Err(Error::invalid(format!(
                "Unpaged query would return more than {} rows; use paging (a page size) or a LIMIT",
                self.max_unpaged_rows
            )));
        }
        Ok(out)
    }

    /// Emits the live rows of one partition into `out`, at most `room` of them.
    async fn scan_partition(
        &self,
        reading: &Reading<'_, '_>,
        partition: &PartitionId,
        mut after: Option<Bytes>,
        already: usize,
        room: usize,
        out: &mut Output,
    ) -> Result<PartitionScan> {
        let (query, shape) = (reading.query, &reading.shape);
        let per_partition = query.per_partition_limit.unwrap_or(usize::MAX);
        let want_total = room.min(per_partition.saturating_sub(already));
        let mut scan = PartitionScan {
            emitted: 0,
            last: None,
        };
        if want_total == 0 {
            return Ok(scan);
        }
        let from_start = after.is_none();
        let mut saw_live = false;
        let keys = split_partition_key(&partition.key, shape.pk.len())
            .ok_or_else(|| Error::Server("stored partition key is malformed".into()))?;
        // The rows of the first read are kept with its cache entry when the projection
        // allows it, and copied from there by later reads of the same entry.
        let mut first_read = true;
        loop {
            let limits = self.path.local().limits(
                want_total - scan.emitted,
                self.now_secs,
                self.table.has_static(),
            );
            let served = self
                .read_partition(partition, &query.plan.slice, after.as_deref(), &limits)
                .await?;
            let mut keeping = None;
            if let (true, Some(projection), Served::Cached(entry)) = (
                std::mem::take(&mut first_read),
                query.render.and_then(|r| r.keep),
                &served,
            ) {
                if let Some(kept) = entry.reuse(projection) {
                    out.encoded.extend(&kept.rows, kept.count);
                    out.count += kept.count as i64;
                    scan.emitted = kept.count;
                    scan.last = kept.last.clone();
                    return Ok(scan);
                }
                keeping = Some((entry.clone(), projection, out.encoded.mark()));
            }
            let keep = |scan: &PartitionScan, out: &Output| {
                if let Some((entry, projection, mark)) = &keeping {
                    let (rows, count) = out.encoded.since(*mark);
                    entry.keep_rendering(Rendering {
                        projection: *projection,
                        rows,
                        count,
                        last: scan.last.clone(),
                    });
                }
            };
            let fragment = served.fragment();
            let fragment = &*fragment;
            let statics = match &fragment.static_row {
                Some(row) => self.assemble(shape, partition, &keys, fragment, row, None)?,
                None => None,
            };
            for row in &fragment.rows {
                after = Some(row.clustering.clone());
                let assembled =
                    self.assemble(shape, partition, &keys, fragment, row, statics.as_ref())?;
                let Some(stored) = assembled else {
                    continue;
                };
                saw_live = true;
                if (query.filter)(&stored) {
                    emit(out, stored, query)?;
                    scan.emitted += 1;
                    scan.last = Some(row.clustering.clone());
                    if scan.emitted == want_total {
                        keep(&scan, out);
                        return Ok(scan);
                    }
                }
            }
            if fragment.exhausted || fragment.rows.is_empty() {
                // A partition with live static cells and no live row in an unrestricted
                // slice still shows as one row, its clustering columns null (Cassandra).
                let whole = query.plan.slice.ranges == [full_range()];
                if let (true, false, true, Some(stored)) = (from_start, saw_live, whole, statics) {
                    if (query.filter)(&stored) {
                        emit(out, stored, query)?;
                        scan.emitted += 1;
                    }
                }
                keep(&scan, out);
                return Ok(scan);
            }
        }
    }

    /// A paging state must name a partition this query reads and, if any, a whole
    /// clustering of this table: a state from another query (or forged with a valid check
    /// word) is refused instead of resuming outside the query.
    fn check_state(&self, state: &PagingState, selection: &PartitionSelection) -> Result<()> {
        let invalid = || {
            Error::invalid("Invalid value for the paging state: it does not belong to this query")
        };
        let selected = match selection {
            PartitionSelection::Keys(keys) => keys.contains(&state.partition),
            PartitionSelection::Range { start, end } => {
                let t = state.partition.token;
                let after_start = match start {
                    Bound::Included(s) => t >= *s,
                    Bound::Excluded(s) => t > *s,
                    Bound::Unbounded => true,
                };
                let before_end = match end {
                    Bound::Included(e) => t <= *e,
                    Bound::Excluded(e) => t < *e,
                    Bound::Unbounded => true,
                };
                after_start && before_end
            }
        };
        if !selected {
            return Err(invalid());
        }
        if let Some(clustering) = &state.clustering {
            let columns: Vec<comparable::Column<'_>> = self
                .layout
                .clustering
                .iter()
                .map(|(t, o)| (t, *o))
                .collect();
            let whole = comparable::decode_clustering(&columns, clustering).is_ok_and(|d| {
                d.terminator == comparable::Terminator::End && d.len == clustering.len()
            });
            if !whole {
                return Err(invalid());
            }
        }
        Ok(())
    }

    /// One partition's slice through the read's path.
    async fn read_partition(
        &self,
        partition: &PartitionId,
        slice: &crate::storage::partition::Slice,
        after: Option<&[u8]>,
        limits: &crate::storage::partition::ReadLimits,
    ) -> Result<Served> {
        match &self.path {
            ReadPath::Local(replica) => replica
                .read(self.layout, self.caching, partition, slice, after, limits)
                .await
                .map_err(|e| self.read_error(e)),
            ReadPath::Replicas {
                replication,
                keyspace,
                prefer,
            } => {
                let target = ReadTarget {
                    prefer,
                    keyspace,
                    layout: self.layout,
                    caching: self.caching,
                    partition,
                    slice,
                    after,
                    limits,
                    read_repair: self.table.options.read_repair != "NONE",
                };
                match replication.read(&target, self.consistency).await {
                    Ok(served) => Ok(served),
                    Err(ReadFailed::Replica(e)) => Err(self.read_error(e)),
                    Err(ReadFailed::Coordination(e)) => Err(e),
                }
            }
        }
    }

    /// The next partitions of a token range through the read's path.
    async fn scan(&self, start: &PartitionStart, end: Bound<i64>) -> Result<Vec<PartitionId>> {
        match &self.path {
            ReadPath::Local(replica) => {
                let next = replica
                    .next_partition(self.table.id, start, end)
                    .map_err(|e| self.read_error(e))?;
                Ok(next.into_iter().collect())
            }
            ReadPath::Replicas {
                replication,
                keyspace,
                ..
            } => {
                replication
                    .scan(
                        keyspace,
                        self.table.id,
                        start,
                        end,
                        SCAN_BATCH,
                        self.consistency,
                    )
                    .await
            }
        }
    }

    fn read_error(&self, e: ReadError) -> Error {
        match e {
            ReadError::TombstoneOverwhelming { tombstones } => {
                tracing::error!(
                    keyspace = %self.table.keyspace,
                    table = %self.table.name,
                    tombstones,
                    "read aborted: more tombstones than tombstone_failure_threshold"
                );
                Error::ReadFailure {
                    consistency: self.consistency,
                    block_for: 1,
                    failures: 1,
                    reason: format!(
                        "scanned over {tombstones} tombstones in {}.{}; query aborted",
                        self.table.keyspace, self.table.name
                    ),
                }
            }
            ReadError::Storage(e) => Error::Server(format!("storage failure: {e}")),
        }
    }

    /// The row `row` of `fragment` as the projection sees it, None if it is not live. With
    /// `statics` (the partition's static row, assembled), its values come first; `row` the
    /// static row itself gives a static-only row. Values are taken from the fragment's live
    /// cells as they are visited, without building an intermediate live row.
    fn assemble(
        &self,
        shape: &Shape<'_>,
        partition: &PartitionId,
        keys: &[Bytes],
        fragment: &PartitionFragment,
        row: &RowFragment,
        statics: Option<&StoredRow>,
    ) -> Result<Option<StoredRow>> {
        let mut cells: Vec<LiveRef<'_>> = Vec::with_capacity(row.columns.len());
        let push = |f, c| cells.push((f, c));
        let live = if shape.dropped.is_empty() {
            visit_live_cells(row, &fragment.deletion, self.now_secs, push)
        } else {
            let keep = |f: &ColumnFragment, c: &Cell| shape.shows(&f.column, c.timestamp);
            visit_live_cells_where(row, &fragment.deletion, self.now_secs, keep, push)
        };
        if !live {
            return Ok(None);
        }
        let mut stored = match statics {
            Some(statics) => statics.clone(),
            None => {
                let n = self.table.columns.len();
                let mut stored = StoredRow {
                    token: partition.token,
                    clustering: Bytes::new(),
                    values: vec![None; n],
                    meta: vec![None; n],
                    field_meta: Vec::new(),
                };
                for (&i, part) in shape.pk.iter().zip(keys) {
                    stored.values[i] = Some(part.clone());
                }
                stored
            }
        };
        if !row.clustering.is_empty() {
            stored.clustering = row.clustering.clone();
            self.clustering_values(shape, &row.clustering, &cells, &mut stored)?;
        }
        self.cell_values(shape, &cells, &mut stored)?;
        Ok(Some(stored))
    }

    /// Clustering column values: as written (the [`WRITTEN_CLUSTERING`] cell) when they
    /// differ from what decoding gives, else decoded from the encoded clustering.
    fn clustering_values(
        &self,
        shape: &Shape<'_>,
        clustering: &Bytes,
        cells: &[LiveRef<'_>],
        stored: &mut StoredRow,
    ) -> Result<()> {
        let values = match written_clustering(&shape.clustering, clustering, cells) {
            Some(values) => values,
            None => comparable::decode_clustering(&shape.clustering, clustering)
                .map_err(|e| Error::Server(format!("stored clustering is malformed: {e}")))?
                .values
                .into_iter()
                .map(|v| v.map(Bytes::from))
                .collect(),
        };
        for (&i, value) in shape.ck.iter().zip(values) {
            stored.values[i] = value;
        }
        Ok(())
    }

    /// Fills regular or static values from live cells (sorted by column, then path).
    fn cell_values(
        &self,
        shape: &Shape<'_>,
        cells: &[LiveRef<'_>],
        stored: &mut StoredRow,
    ) -> Result<()> {
        let mut start = 0;
        while start < cells.len() {
            let column = &cells[start].0.column;
            let end = start
                + cells[start..]
                    .iter()
                    .take_while(|(f, _)| f.column == *column)
                    .count();
            let run = &cells[start..end];
            start = end;
            let Some(index) = shape.index_of(column) else {
                continue;
            };
            if self.table.columns[index].ty.is_multicell() {
                stored.values[index] = Some(join_cells(&self.types[index], run)?);
                if matches!(self.types[index], CqlType::Tuple(_)) {
                    self.field_meta(index, run, stored);
                }
            } else if let Some((_, cell)) = run.last() {
                stored.values[index] = cell.value().cloned();
                stored.meta[index] = Some((cell.timestamp, self.ttl_of(cell)));
            }
        }
        Ok(())
    }

    /// The remaining TTL of an expiring cell, in seconds.
    fn ttl_of(&self, cell: &Cell) -> Option<i32> {
        match cell.kind {
            CellKind::Expiring {
                local_deletion_time,
                ..
            } => Some(local_deletion_time.saturating_sub(self.now_secs) as i32),
            _ => None,
        }
    }

    /// Records the timestamp and TTL of each field cell of a non-frozen user type.
    fn field_meta(&self, column: usize, cells: &[LiveRef<'_>], stored: &mut StoredRow) {
        for (fragment, cell) in cells {
            let field = fragment
                .path
                .as_ref()
                .and_then(|p| comparable::decode_value(&smallint(), p).ok())
                .and_then(|b| <[u8; 2]>::try_from(&b[..]).ok())
                .map(u16::from_be_bytes);
            if let Some(field) = field {
                stored.field_meta.push(FieldMeta {
                    column,
                    field,
                    timestamp: cell.timestamp,
                    ttl: self.ttl_of(cell),
                });
            }
        }
    }
}

/// A live cell as the fragment holds it: its slot and the cell.
type LiveRef<'r> = (&'r ColumnFragment, &'r Cell);

/// One query's read: what it asks and the table's row shape, worked out once for all the
/// partitions it reads.
struct Reading<'q, 'a> {
    query: &'q Query<'a>,
    shape: Shape<'a>,
}

/// What assembling rows needs of the table, worked out once per query.
struct Shape<'a> {
    /// The clustering columns' types and orders.
    clustering: Vec<comparable::Column<'a>>,
    /// Table indexes of the partition key and clustering columns, in key order.
    pk: Vec<usize>,
    ck: Vec<usize>,
    /// Column names (UTF-8 bytes, as stored in cell keys) and their table index, by name.
    by_name: Vec<(&'a [u8], usize)>,
    /// Dropped columns by name: when they were dropped (µs) and whether a column of that
    /// name exists again. Empty for a table that never dropped one (the common case,
    /// which then skips the check).
    dropped: Vec<(&'a [u8], i64, bool)>,
}

impl<'a> Shape<'a> {
    fn new(table: &'a TableDef, layout: &'a TableLayout) -> Shape<'a> {
        let indexes = |kind: ColumnKind| -> Vec<usize> {
            (0..table.columns.len())
                .filter(|i| table.columns[*i].kind == kind)
                .collect()
        };
        let mut by_name: Vec<(&[u8], usize)> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_bytes(), i))
            .collect();
        by_name.sort_unstable();
        // BTreeMap order is the byte order of the names, which `shows` searches by.
        let dropped = table
            .dropped
            .iter()
            .map(|(name, d)| {
                let exists = table.column(name).is_some();
                (name.as_bytes(), d.dropped_at_micros, exists)
            })
            .collect();
        Shape {
            clustering: layout.clustering.iter().map(|(t, o)| (t, *o)).collect(),
            pk: indexes(ColumnKind::PartitionKey),
            ck: indexes(ColumnKind::Clustering),
            by_name,
            dropped,
        }
    }

    /// Whether a cell of column `name` written at `timestamp` is part of the table as it
    /// is now. Cassandra's rule for `dropped_columns`: a cell of a dropped column written at
    /// or before the drop is gone; after the column is added again, newer cells show. A
    /// column dropped and not added again shows nothing (no CQL column to show it in).
    /// Hidden bookkeeping columns (NUL-prefixed) are never dropped.
    fn shows(&self, name: &[u8], timestamp: i64) -> bool {
        match self.dropped.binary_search_by(|(n, _, _)| (*n).cmp(name)) {
            Ok(at) => {
                let (_, dropped_at, exists) = self.dropped[at];
                exists && timestamp > dropped_at
            }
            Err(_) => true,
        }
    }

    fn index_of(&self, name: &[u8]) -> Option<usize> {
        self.by_name
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|at| self.by_name[at].1)
    }
}

/// The clustering values a row was written with, from its [`WRITTEN_CLUSTERING`] cell:
/// None without one, or when the values are malformed or do not encode to the row's
/// clustering (never show another row's key).
fn written_clustering(
    columns: &[comparable::Column<'_>],
    clustering: &Bytes,
    cells: &[LiveRef<'_>],
) -> Option<Vec<Option<Bytes>>> {
    let (_, cell) = cells
        .iter()
        .find(|(f, _)| f.column == WRITTEN_CLUSTERING.as_bytes() && f.path.is_none())?;
    let values = decode_written_clustering(cell.value()?)?;
    if values.len() != columns.len() {
        return None;
    }
    let components: Vec<comparable::Component<'_>> = columns
        .iter()
        .zip(&values)
        .map(|(&(ty, order), v)| (ty, order, v.as_deref()))
        .collect();
    let mut encoded = Vec::with_capacity(clustering.len());
    comparable::encode_clustering(&components, &mut encoded).ok()?;
    (encoded == clustering[..]).then_some(values)
}

impl Output {
    /// Rows emitted so far.
    fn emitted(&self) -> usize {
        self.count as usize
    }
}

fn emit(out: &mut Output, row: StoredRow, query: &Query<'_>) -> Result<()> {
    out.count += 1;
    for (count, &column) in out.column_counts.iter_mut().zip(query.counted) {
        if row.values.get(column).is_some_and(Option::is_some) {
            *count += 1;
        }
    }
    if let Some(render) = &query.render {
        return (render.project)(&row, &mut out.encoded);
    }
    if !query.count_only || out.rows.is_empty() {
        // An aggregate keeps its first row for the non-aggregate selectors.
        out.rows.push(row);
    }
    Ok(())
}

/// The components of a serialized partition key: the key itself for one column, else
/// Cassandra's composite form (`<u16 length><bytes><0x00>` per component).
fn split_partition_key(key: &Bytes, components: usize) -> Option<Vec<Bytes>> {
    if components <= 1 {
        return Some(vec![key.clone()]);
    }
    let mut parts = Vec::with_capacity(components);
    let mut pos = 0;
    while pos < key.len() {
        let len = usize::from(u16::from_be_bytes([*key.get(pos)?, *key.get(pos + 1)?]));
        let part = key.get(pos + 2..pos + 2 + len)?;
        parts.push(key.slice_ref(part));
        pos += 2 + len + 1;
    }
    (parts.len() == components).then_some(parts)
}

/// Joins a non-frozen collection's (or user type's) element cells into its serialized
/// value. `ty` is resolved: a user type appears as the tuple of its field types.
fn join_cells(ty: &CqlType, cells: &[LiveRef<'_>]) -> Result<Bytes> {
    let bad = |e: String| Error::Server(format!("stored collection element is malformed: {e}"));
    let key_type = match ty {
        CqlType::List(_) => None,
        CqlType::Set(k) | CqlType::Map(k, _) => Some(&**k),
        CqlType::Tuple(fields) => return Ok(join_fields(fields.len(), cells)),
        other => return Err(bad(format!("{other} is not a multi-cell type"))),
    };
    let mut elements = Vec::with_capacity(cells.len());
    for (fragment, cell) in cells {
        let key = match (key_type, &fragment.path) {
            (Some(kt), Some(path)) => {
                Bytes::from(comparable::decode_value(kt, path).map_err(|e| bad(e.to_string()))?)
            }
            _ => Bytes::new(),
        };
        elements.push((key, cell.value().cloned().unwrap_or_default()));
    }
    Ok(crate::cql::serialized::join_collection(ty, &elements))
}

/// A non-frozen user type's fields (cell path = the field's index as a big-endian u16,
/// in `encode_value(smallint)` form) as the serialized tuple, absent fields null.
fn join_fields(count: usize, cells: &[LiveRef<'_>]) -> Bytes {
    let mut fields: Vec<Option<&Bytes>> = vec![None; count];
    for (fragment, cell) in cells {
        let index = fragment
            .path
            .as_ref()
            .and_then(|p| comparable::decode_value(&smallint(), p).ok())
            .and_then(|b| <[u8; 2]>::try_from(&b[..]).ok())
            .map(|b| i16::from_be_bytes(b) as usize);
        if let Some(slot) = index.and_then(|i| fields.get_mut(i)) {
            *slot = cell.value();
        }
    }
    let mut buf = BytesMut::new();
    for field in fields {
        match field {
            Some(v) => {
                buf.put_i32(v.len() as i32);
                buf.put_slice(v);
            }
            None => buf.put_i32(-1),
        }
    }
    buf.freeze()
}

fn smallint() -> CqlType {
    CqlType::Native(crate::cql::types::NativeType::Smallint)
}

/// The partitions a plan reads, in the plan's order, resuming after a paging state.
struct Cursor<'a> {
    selection: &'a PartitionSelection,
    /// Index of the next named partition.
    next_key: usize,
    /// Where the next range lookup starts.
    start: Option<PartitionStart>,
    /// Partitions of the range fetched ahead, next first.
    ahead: std::collections::VecDeque<PartitionId>,
    /// The partition the paging state resumes inside, returned first.
    resume: Option<PartitionId>,
}

impl<'a> Cursor<'a> {
    fn new(selection: &'a PartitionSelection, state: Option<&PagingState>) -> Cursor<'a> {
        let resume = state
            .filter(|s| s.clustering.is_some())
            .map(|s| s.partition.clone());
        let (next_key, start) = match selection {
            // Named keys are read in their list's order (key values, not tokens): resume
            // after the state's partition, which `check_state` found in the list.
            PartitionSelection::Keys(keys) => {
                let skip = state.map_or(0, |s| {
                    keys.iter()
                        .position(|k| *k == s.partition)
                        .map_or(keys.len(), |at| at + 1)
                });
                (skip, None)
            }
            PartitionSelection::Range { start, .. } => {
                let from = match state {
                    Some(s) => PartitionStart::After(s.partition.clone()),
                    None => PartitionStart::Token(*start),
                };
                (0, Some(from))
            }
        };
        Cursor {
            selection,
            next_key,
            start,
            ahead: std::collections::VecDeque::new(),
            resume,
        }
    }

    async fn next(&mut self, read: &TableRead<'_>) -> Result<Option<PartitionId>> {
        if let Some(p) = self.resume.take() {
            return Ok(Some(p));
        }
        match self.selection {
            PartitionSelection::Keys(keys) => {
                let key = keys.get(self.next_key).cloned();
                self.next_key += 1;
                Ok(key)
            }
            PartitionSelection::Range { end, .. } => {
                if self.ahead.is_empty() {
                    let Some(start) = self.start.take() else {
                        return Ok(None);
                    };
                    self.ahead = read.scan(&start, *end).await?.into();
                    self.start = self.ahead.back().cloned().map(PartitionStart::After);
                }
                Ok(self.ahead.pop_front())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_partition_keys_split_into_their_components() {
        let key = Bytes::from_static(b"\x00\x01a\x00\x00\x02bc\x00");
        let parts = split_partition_key(&key, 2).expect("split");
        assert_eq!(
            parts,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")]
        );
        assert!(split_partition_key(&key, 3).is_none());
        assert!(split_partition_key(&Bytes::from_static(b"\x00\x05a"), 2).is_none());
    }

    #[test]
    fn written_clustering_values_round_trip_and_malformed_ones_are_refused() {
        let value = encode_written_clustering(&[Some(b"ab"), None, Some(b"")]);
        assert_eq!(
            &value[..],
            b"\x00\x00\x00\x02ab\xff\xff\xff\xff\x00\x00\x00\x00"
        );
        assert_eq!(
            decode_written_clustering(&value),
            Some(vec![
                Some(Bytes::from_static(b"ab")),
                None,
                Some(Bytes::new())
            ])
        );
        for bad in [
            &b"\x00\x00\x00"[..],
            b"\x00\x00\x00\x03ab",
            b"\x7f\xff\xff\xffa",
        ] {
            assert_eq!(decode_written_clustering(&Bytes::from_static(bad)), None);
        }
    }
}
