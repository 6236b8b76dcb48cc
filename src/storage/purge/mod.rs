//! Purging: what compaction may physically remove from a partition without changing any
//! read, and without resurrecting anything.
//!
//! Every CQL write is a merge operand and every CQL delete a tombstone kept as data
//! (`reconcile.rs`), so without purging a partition only grows. Cassandra's compaction
//! drops three kinds of garbage, and so does [`purge_partition`]:
//!
//! - **Shadowed data**: a cell, row marker or collection deletion at or below the deletion
//!   in force at its row (the partition deletion, the covering range tombstones, the row's
//!   own deletion, and for collection elements the collection's deletion). It can never be
//!   read again, whatever the time.
//! - **Expired data** past grace: an expired TTL'd cell or marker is a tombstone written at
//!   its write time (expiry − ttl, as Cassandra's `AbstractCell.purge` counts it).
//! - **Tombstones past grace**: cell tombstones, row, range, collection and partition
//!   deletions whose local deletion time is more than `gc_grace_seconds` ago.
//!
//! The rule that keeps purging from resurrecting data: a deletion may only be dropped once
//! nothing it shadows can remain. Here that holds by construction. The pass reads the whole
//! partition as the engine merges it — every level of the store, so no older copy hides
//! elsewhere — and whatever a purgeable deletion shadows is shadowed data, dropped by the
//! same pass. The removals are written in two batches, the shadowed and expired data first
//! and the deletions last, so a crash between them leaves only garbage removed. A physical
//! removal hides every older version of its key, so the caller must keep writes to the
//! partition out while it reads and removes (`replica::LocalReplica::purge`), or a write
//! landing in between would be removed with the garbage.
//!
//! What is not done: a purge does not rewrite an expired cell into a bare tombstone within
//! grace (it waits until the whole cell can go), and it holds one partition in memory a
//! row at a time, never the whole partition.

use std::ops::Bound;

use bytes::Bytes;

use super::cell::{Cell, DeletionTime, RangeTombstone, RowMarker, StoredValue};
use super::comparable::Column;
use super::engine::{Direction, Engine, KeyRange, WriteBatch};
use super::keys::{parse_key, BoundSide, PartitionKey, Slot};
use super::partition::{corrupt_key, corrupt_value, PartitionId, ReadError, TableLayout};
use super::reconcile::{self, compact_cell, deletion_purgeable, merge_deletion, purgeable};

/// Entries read per engine scan.
const CHUNK: usize = 1024;

/// What a purge of one partition removes: data first, then deletions.
#[derive(Debug, Default)]
pub struct Purge {
    /// Shadowed and expired cells and markers, and shadowed collection deletions.
    pub data: WriteBatch,
    /// Tombstones past grace: cell-level ones are data, these are the deletions that
    /// shadow other keys (partition, range, row and collection deletions).
    pub deletions: WriteBatch,
}

impl Purge {
    /// Keys the purge removes.
    pub fn removed(&self) -> usize {
        self.data.ops().len() + self.deletions.ops().len()
    }
}

/// When a purge runs and how long tombstones are kept.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    /// "Now", seconds since the epoch.
    pub now_secs: u32,
    /// The table's `gc_grace_seconds`.
    pub gc_grace_seconds: u32,
}

impl Horizon {
    fn deletion(&self, deletion: &DeletionTime) -> bool {
        deletion_purgeable(deletion, self.now_secs, self.gc_grace_seconds)
    }

    fn cell(&self, cell: &Cell) -> bool {
        compact_cell(cell, self.now_secs, self.gc_grace_seconds).is_none()
    }

    /// An expired marker is a tombstone from its write time, as an expired cell is.
    fn marker(&self, marker: &RowMarker) -> bool {
        marker.expiry.is_some_and(|e| {
            !marker.is_live(self.now_secs)
                && purgeable(
                    e.local_expiration_time.saturating_sub(e.ttl),
                    self.now_secs,
                    self.gc_grace_seconds,
                )
        })
    }
}

/// The removals that purge `partition` at `horizon`. Reads only; the caller writes
/// [`Purge::data`], then [`Purge::deletions`].
pub fn purge_partition(
    engine: &dyn Engine,
    layout: &TableLayout,
    partition: &PartitionId,
    horizon: Horizon,
) -> Result<Purge, ReadError> {
    let pk = PartitionKey {
        table: layout.id,
        token: partition.token,
        key: &partition.key,
    };
    let columns: Vec<Column<'_>> = layout.clustering.iter().map(|(t, o)| (t, *o)).collect();
    let mut pass = Pass {
        horizon,
        columns: &columns,
        partition: DeletionTime::LIVE,
        ranges: Vec::new(),
        row: Vec::new(),
        out: Purge::default(),
    };
    let mut keys = pk.range().map_err(corrupt_key)?;
    loop {
        let entries = engine.scan(&keys, Direction::Forward, CHUNK)?;
        for (key, value) in &entries {
            pass.entry(key, value)?;
        }
        match entries.last() {
            Some((last, _)) if entries.len() == CHUNK => {
                keys = KeyRange {
                    start: Bound::Excluded(last.clone()),
                    end: keys.end,
                };
            }
            _ => break,
        }
    }
    pass.finish_row()?;
    Ok(pass.out)
}

/// One entry of the row being read: its key, what the key addresses, its value.
struct RowEntry {
    key: Bytes,
    kind: EntryKind,
    value: Bytes,
}

enum EntryKind {
    Marker,
    RowDeletion,
    /// A cell or collection deletion of `column` (a static one when `clustering` is None).
    Cell {
        column: Bytes,
    },
}

/// The state of a pass through one partition, in key order: the partition deletion comes
/// first, every range tombstone's start before the rows it covers.
struct Pass<'a> {
    horizon: Horizon,
    columns: &'a [Column<'a>],
    partition: DeletionTime,
    /// Every range met so far (a forward pass meets a range's start before its rows).
    ranges: Vec<RangeTombstone>,
    /// The current row's entries; its clustering is in each key (empty for statics).
    row: Vec<(Option<Bytes>, RowEntry)>,
    out: Purge,
}

impl Pass<'_> {
    fn entry(&mut self, key: &Bytes, value: &Bytes) -> Result<(), ReadError> {
        let parsed = parse_key(key, self.columns).map_err(corrupt_key)?;
        let (clustering, kind) = match parsed.slot {
            Slot::PartitionHeader => {
                self.partition = decode_deletion(value)?;
                if self.horizon.deletion(&self.partition) {
                    self.out.deletions.purge(key.clone());
                }
                return Ok(());
            }
            Slot::RangeIndex { .. } => return self.range_key(key, value),
            Slot::RangeTombstoneBound { bound, side, other } => {
                if side == BoundSide::Start {
                    let deletion = decode_deletion(value)?;
                    if let Some(range) = RangeTombstone::from_bounds(bound, other, deletion) {
                        self.ranges.push(range);
                    }
                }
                return self.range_key(key, value);
            }
            Slot::Static(None) => return Ok(()),
            Slot::Static(Some(cell)) => (None, column(key, cell.column)),
            Slot::Row { clustering, cell } => {
                let kind = match cell {
                    None => EntryKind::Marker,
                    Some(cell) => column(key, cell.column),
                };
                (Some(key.slice_ref(clustering)), kind)
            }
            Slot::RowDeletion { clustering } => {
                (Some(key.slice_ref(clustering)), EntryKind::RowDeletion)
            }
        };
        if self.row.first().is_some_and(|(c, _)| *c != clustering) {
            self.finish_row()?;
        }
        let entry = RowEntry {
            key: key.clone(),
            kind,
            value: value.clone(),
        };
        self.row.push((clustering, entry));
        Ok(())
    }

    /// A range tombstone's start, end or index key: removed once its deletion is past grace
    /// (all three keys of a range hold the same deletion, so they go together).
    fn range_key(&mut self, key: &Bytes, value: &Bytes) -> Result<(), ReadError> {
        if self.horizon.deletion(&decode_deletion(value)?) {
            self.out.deletions.purge(key.clone());
        }
        Ok(())
    }

    /// Decides every entry of the row read so far.
    fn finish_row(&mut self) -> Result<(), ReadError> {
        let row = std::mem::take(&mut self.row);
        let Some((clustering, _)) = row.first() else {
            return Ok(());
        };
        let own = row
            .iter()
            .filter(|(_, e)| matches!(e.kind, EntryKind::RowDeletion))
            .map(|(_, e)| decode_deletion(&e.value))
            .next()
            .transpose()?
            .unwrap_or(DeletionTime::LIVE);
        let in_force = match clustering {
            Some(c) => reconcile::row_deletion(&self.partition, &self.ranges, c, &own),
            None => self.partition,
        };
        // A collection's deletion sorts just before its elements.
        let mut collection: Option<(Bytes, DeletionTime)> = None;
        for (_, entry) in &row {
            let remove = match &entry.kind {
                EntryKind::RowDeletion => {
                    self.decide_deletion(&entry.key, &own);
                    false
                }
                EntryKind::Marker => {
                    let marker = RowMarker::decode(&entry.value)
                        .map_err(|e| corrupt_value(&entry.value, e))?;
                    marker.shadowed_by(&in_force) || self.horizon.marker(&marker)
                }
                EntryKind::Cell { column } => {
                    match StoredValue::decode(&entry.value)
                        .map_err(|e| corrupt_value(&entry.value, e))?
                    {
                        StoredValue::Cell(cell) => {
                            let deletion = match &collection {
                                Some((name, d)) if name == column => *d,
                                _ => in_force,
                            };
                            cell.shadowed_by(&deletion) || self.horizon.cell(&cell)
                        }
                        StoredValue::Deletion(deletion) => {
                            collection = Some((column.clone(), merge_deletion(in_force, deletion)));
                            if deletion.marked_for_delete_at <= in_force.marked_for_delete_at {
                                true
                            } else {
                                self.decide_deletion(&entry.key, &deletion);
                                false
                            }
                        }
                        StoredValue::Marker(_) => false,
                    }
                }
            };
            if remove {
                self.out.data.purge(entry.key.clone());
            }
        }
        Ok(())
    }

    /// A deletion that shadows other keys: removed last, once past grace.
    fn decide_deletion(&mut self, key: &Bytes, deletion: &DeletionTime) {
        if self.horizon.deletion(deletion) {
            self.out.deletions.purge(key.clone());
        }
    }
}

fn column(key: &Bytes, name: &str) -> EntryKind {
    EntryKind::Cell {
        column: key.slice_ref(name.as_bytes()),
    }
}

fn decode_deletion(value: &Bytes) -> Result<DeletionTime, ReadError> {
    DeletionTime::decode(value).map_err(|e| corrupt_value(value, e))
}

#[cfg(test)]
mod tests;
