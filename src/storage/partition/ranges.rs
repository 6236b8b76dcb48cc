//! Range tombstones in the partition layer: how a range deletion is written and how a scan
//! knows, at every row, the newest deletion among the ranges covering it.
//!
//! A range deletion is three merge operands carrying the same [`DeletionTime`] (the key
//! layout is in `keys.rs`): a *start key* and an *end key* in the clustered slot, each
//! followed by the range's other bound, and a *range index* entry ahead of the rows. Each
//! distinct range therefore has keys of its own; the merge only ever meets two deletions of
//! the very same range, and keeping the newer one is then right. Overlapping or nested
//! ranges with different timestamps stay separate keys and are combined at read time.
//!
//! A forward scan opens a range at its start key (which names the end) and a reverse scan at
//! its end key (which names the start); [`OpenRanges`] keeps the ranges met, drops those the
//! scan has left, and gives each row the newest deletion among those covering it
//! ([`reconcile::row_deletion`]). A scan that begins inside a range — a slice starting
//! mid-range, a page resuming in one, a reverse scan below a range's end — never meets
//! that range's opening key, so it first reads the range index for ranges starting before
//! its first position. That read costs one seek when no range starts earlier, and grows
//! with the number of ranges starting earlier in the partition.

use std::ops::Bound;

use bytes::Bytes;

use super::{corrupt_key, corrupt_value, ReadError};
use crate::storage::cell::{DeletionTime, RangeTombstone};
use crate::storage::comparable::{ClusteringRange, Column, KeyError, BEFORE};
use crate::storage::engine::{Direction, Engine, KeyRange, WriteBatch};
use crate::storage::keys::{parse_key, BoundSide, PartitionKey, Slot, BOUND_END};
use crate::storage::reconcile;

/// Entries fetched per range index scan.
const INDEX_CHUNK: usize = 256;

/// Adds the three operands of a range deletion to `batch`; an empty range writes nothing.
pub(super) fn add_range(
    batch: &mut WriteBatch,
    pk: &PartitionKey<'_>,
    range: &ClusteringRange,
    deletion: &DeletionTime,
) -> Result<(), KeyError> {
    if range.start >= range.end {
        return Ok(());
    }
    let value = deletion.encode();
    batch.merge(pk.bound_key(range, BoundSide::Start)?, value.clone());
    batch.merge(pk.bound_key(range, BoundSide::End)?, value.clone());
    batch.merge(pk.range_index_key(range)?, value);
    Ok(())
}

/// The range tombstones a scan is inside of, or has met and may still enter.
#[derive(Debug, Default)]
pub(super) struct OpenRanges {
    reversed: bool,
    open: Vec<RangeTombstone>,
}

impl OpenRanges {
    /// The ranges open where a scan of `keys` (clustered-slot keys of `pk`) begins: those
    /// starting before its first position that the scan will not meet the opening key of.
    /// Also returns the index entries read.
    pub(super) fn at_scan_start(
        engine: &dyn Engine,
        pk: &PartitionKey<'_>,
        columns: &[Column<'_>],
        keys: &KeyRange,
        reversed: bool,
    ) -> Result<(OpenRanges, usize), ReadError> {
        let mut ranges = OpenRanges {
            reversed,
            open: Vec::new(),
        };
        let base = pk.clustered_base().map_err(corrupt_key)?;
        let first = match reversed {
            false => &keys.start,
            true => &keys.end,
        };
        let position = match first {
            Bound::Included(k) | Bound::Excluded(k) => k.strip_prefix(&base[..]),
            Bound::Unbounded => None,
        };
        // Nothing starts before the first position of the clustered slot.
        let Some(position) = position.filter(|p| reversed || *p > &[BEFORE][..]) else {
            return Ok((ranges, 0));
        };
        let scanned = ranges.load_index(engine, pk, columns, position)?;
        Ok((ranges, scanned))
    }

    /// Reads the index entries of ranges starting before `position` and keeps those the
    /// scan needs: forward, the ones still open at `position`; reverse, the ones whose end
    /// key is at or after `position`, which the scan never meets.
    fn load_index(
        &mut self,
        engine: &dyn Engine,
        pk: &PartitionKey<'_>,
        columns: &[Column<'_>],
        position: &[u8],
    ) -> Result<usize, ReadError> {
        let mut keys = pk.range_index_before(position).map_err(corrupt_key)?;
        let mut scanned = 0;
        loop {
            let entries = engine.scan(&keys, Direction::Forward, INDEX_CHUNK)?;
            scanned += entries.len();
            for (key, value) in &entries {
                let parsed = parse_key(key, columns).map_err(corrupt_key)?;
                let Slot::RangeIndex { start, end } = parsed.slot else {
                    continue;
                };
                let needed = match self.reversed {
                    false => end > position,
                    true => [end, &[BOUND_END], start].concat()[..] >= *position,
                };
                if needed {
                    self.open.push(tombstone(start, end, value)?);
                }
            }
            match entries.last() {
                Some((last, _)) if entries.len() == INDEX_CHUNK => {
                    keys.start = Bound::Excluded(last.clone());
                }
                _ => return Ok(scanned),
            }
        }
    }

    /// How many ranges are held.
    pub(super) fn len(&self) -> usize {
        self.open.len()
    }

    /// The ranges held.
    pub(super) fn ranges(&self) -> &[RangeTombstone] {
        &self.open
    }

    /// A bound key the scan met: opens its range when the scan enters the range there (a
    /// start key going forward, an end key in reverse). True when a range was opened.
    pub(super) fn meet(
        &mut self,
        bound: &[u8],
        side: BoundSide,
        other: &[u8],
        value: &Bytes,
    ) -> Result<bool, ReadError> {
        let (start, end) = match (side, self.reversed) {
            (BoundSide::Start, false) => (bound, other),
            (BoundSide::End, true) => (other, bound),
            _ => return Ok(false),
        };
        self.open.push(tombstone(start, end, value)?);
        Ok(true)
    }

    /// The deletion in force at the row `clustering` whose own deletion is `row`: the newest
    /// of it and every open range covering the row. Rows come in scan order, so ranges the
    /// scan has left behind are dropped for good.
    pub(super) fn deletion_at(&mut self, clustering: &[u8], row: DeletionTime) -> DeletionTime {
        if self.open.is_empty() {
            return row;
        }
        match self.reversed {
            false => self.open.retain(|rt| !rt.ends_before(clustering)),
            true => self.open.retain(|rt| !rt.starts_after(clustering)),
        }
        reconcile::row_deletion(&DeletionTime::LIVE, &self.open, clustering, &row)
    }
}

fn tombstone(start: &[u8], end: &[u8], value: &Bytes) -> Result<RangeTombstone, ReadError> {
    let deletion = DeletionTime::decode(value).map_err(|e| corrupt_value(value, e))?;
    RangeTombstone::from_bounds(start, end, deletion)
        .ok_or_else(|| corrupt_key(KeyError::Corrupt("range tombstone bounds".into())))
}
