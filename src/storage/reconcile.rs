//! Last-write-wins with Cassandra 4.x's exact tie-breaks (design §18.3), and the
//! RocksDB merge that applies it inside the engine.
//!
//! A RocksDB `Put` wins by sequence number, so a write arriving late with an older timestamp
//! (USING TIMESTAMP, hints, repair) would overwrite newer data (design §3). The engine instead
//! writes every cell, marker and deletion as a merge operand; [`merge_values`] decodes the
//! stored value and the operands, keeps the winner by the rules below, and re-encodes it.
//! Because the winner is chosen by a total order over the values, the merge is commutative
//! and associative: operands can be combined in any grouping (a partial merge) and the result
//! is the same as applying them one by one.
//!
//! Tombstones are data here; deciding which data a partition, range or row tombstone hides is
//! a read-time (and compaction-time) question answered by [`effective_deletion`] and
//! [`surviving`]. When a tombstone may be dropped is [`purgeable`]'s half of the answer; the
//! other half (no older copy of the covered data remains anywhere the tombstone does not
//! reach) is the compaction's job.

use std::cmp::Ordering;

use thiserror::Error;

use super::cell::{
    Cell, CellKind, CodecError, DeletionTime, RangeTombstone, RowMarker, StoredValue,
};

/// Why a merge could not produce a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MergeError {
    /// The stored value or an operand is not a valid encoding.
    #[error("undecodable merge input: {0}")]
    Codec(#[from] CodecError),
    /// Values of different kinds met under one key, which the key layout never produces.
    #[error("cannot merge a {0} with a {1}")]
    MixedKinds(&'static str, &'static str),
    /// No existing value and no operands.
    #[error("nothing to merge")]
    Empty,
}

/// Cassandra 4.x `Cells.resolveRegular`: which of two versions of the same cell wins.
///
/// 1. The higher timestamp wins.
/// 2. At equal timestamps, a tombstone-or-expiring cell beats a live one (CASSANDRA-14592:
///    expiring cells count as tombstones so the outcome does not depend on the clock).
/// 3. Both tombstone-or-expiring: a pure tombstone beats an expiring cell; of the same kind,
///    the larger local deletion time wins.
/// 4. Otherwise the larger value by unsigned byte compare wins (Cassandra's
///    `compareValues(left, right) >= 0 ? left : right`).
///
/// Cassandra returns its left argument when all of that ties; the only cells that can still
/// differ then are two expiring cells with different ttls (same expiry, same value). We pick
/// the smaller ttl, which was written later (Scylla's rule), so the result never depends on
/// argument order.
pub fn reconcile<'a>(left: &'a Cell, right: &'a Cell) -> &'a Cell {
    match compare(left, right) {
        Ordering::Less => right,
        Ordering::Equal | Ordering::Greater => left,
    }
}

/// The order [`reconcile`] keeps the maximum of; `Equal` only for identical cells.
fn compare(left: &Cell, right: &Cell) -> Ordering {
    left.timestamp
        .cmp(&right.timestamp)
        .then_with(|| compare_at_equal_timestamp(left, right))
}

fn compare_at_equal_timestamp(left: &Cell, right: &Cell) -> Ordering {
    let (left_ldt, right_ldt) = (left.local_deletion_time(), right.local_deletion_time());
    if left_ldt.is_some() || right_ldt.is_some() {
        if left_ldt.is_some() != right_ldt.is_some() {
            return left_ldt.is_some().cmp(&right_ldt.is_some());
        }
        let (left_tomb, right_tomb) = (is_tombstone(left), is_tombstone(right));
        if left_tomb != right_tomb {
            return left_tomb.cmp(&right_tomb);
        }
        if left_ldt != right_ldt {
            return left_ldt.cmp(&right_ldt);
        }
    }
    // A tombstone's value is empty, as in Cassandra. `[u8]` compares lexicographically as
    // unsigned bytes, as Cassandra 4.x's ValueAccessor does (3.x compared signed bytes).
    value_bytes(left)
        .cmp(value_bytes(right))
        .then_with(|| ttl(right).cmp(&ttl(left)))
}

fn value_bytes(cell: &Cell) -> &[u8] {
    cell.value().map_or(&[][..], |v| v.as_ref())
}

fn is_tombstone(cell: &Cell) -> bool {
    matches!(cell.kind, CellKind::Tombstone { .. })
}

fn ttl(cell: &Cell) -> u32 {
    match cell.kind {
        CellKind::Expiring { ttl, .. } => ttl,
        _ => 0,
    }
}

/// Cassandra's `LivenessInfo.supersedes` for row markers: the higher timestamp wins; at
/// equal timestamps an expiring marker beats a non-expiring one, and of two expiring markers
/// the later expiry wins. (Cassandra's "expired liveness" marker exists only for materialized
/// views, which ringcache does not have.)
pub fn marker_supersedes(this: &RowMarker, other: &RowMarker) -> bool {
    if this.timestamp != other.timestamp {
        return this.timestamp > other.timestamp;
    }
    match (this.expiry, other.expiry) {
        (Some(a), Some(b)) => a.local_expiration_time > b.local_expiration_time,
        (this_expiry, other_expiry) => this_expiry.is_some() && other_expiry.is_none(),
    }
}

/// The winner of two row markers by [`marker_supersedes`]. Where neither supersedes the
/// other and they still differ (same expiry, different ttls) the smaller ttl wins, as for
/// cells, so the merge is commutative.
pub fn merge_liveness(a: RowMarker, b: RowMarker) -> RowMarker {
    if marker_supersedes(&a, &b) {
        return a;
    }
    if marker_supersedes(&b, &a) {
        return b;
    }
    match (a.expiry, b.expiry) {
        (Some(ea), Some(eb)) if eb.ttl < ea.ttl => b,
        _ => a,
    }
}

/// The winner of two deletions by [`DeletionTime::supersedes`] (ties are identical values).
pub fn merge_deletion(a: DeletionTime, b: DeletionTime) -> DeletionTime {
    if b.supersedes(&a) {
        b
    } else {
        a
    }
}

/// The deletion in force from a set of ancestors (partition, covering range tombstones,
/// row): the one that supersedes all others, or [`DeletionTime::LIVE`] if there are none.
pub fn effective_deletion<'a>(levels: impl IntoIterator<Item = &'a DeletionTime>) -> DeletionTime {
    levels
        .into_iter()
        .copied()
        .fold(DeletionTime::LIVE, merge_deletion)
}

/// The deletion in force for the row with encoded clustering `clustering`: the partition
/// deletion, every range tombstone covering the row, and the row's own deletion.
pub fn row_deletion(
    partition: &DeletionTime,
    ranges: &[RangeTombstone],
    clustering: &[u8],
    row: &DeletionTime,
) -> DeletionTime {
    let covering = ranges
        .iter()
        .filter(|rt| rt.covers(clustering))
        .map(|rt| &rt.deletion);
    effective_deletion([partition, row].into_iter().chain(covering))
}

/// The cell if it survives the deletion in force: only data strictly newer than the
/// tombstone does (a tombstone covers data at or below its timestamp).
pub fn surviving<'a>(cell: &'a Cell, effective: &DeletionTime) -> Option<&'a Cell> {
    (!cell.shadowed_by(effective)).then_some(cell)
}

/// Whether a tombstone deleted at `local_deletion_time` may be purged at `now_secs` as far as
/// time goes: `local_deletion_time + gc_grace_seconds < now_secs` (Cassandra's
/// `localDeletionTime < gcBefore`). The compaction must also know that no data it covers
/// survives elsewhere (the overlap rule, design §18.4); that is not decided here.
pub fn purgeable(local_deletion_time: u32, now_secs: u32, gc_grace_seconds: u32) -> bool {
    u64::from(local_deletion_time) + u64::from(gc_grace_seconds) < u64::from(now_secs)
}

/// [`purgeable`] for a [`DeletionTime`]; `LIVE` deletes nothing and is never stored.
pub fn deletion_purgeable(deletion: &DeletionTime, now_secs: u32, gc_grace_seconds: u32) -> bool {
    !deletion.is_live() && purgeable(deletion.local_deletion_time, now_secs, gc_grace_seconds)
}

/// What compaction keeps of a cell at `now_secs`: nothing for a purgeable tombstone, a
/// tombstone in place of an expired cell (it no longer needs its value), the cell otherwise.
/// An expired cell's tombstone counts gc_grace from its write time (expiry − ttl), as
/// Cassandra's `AbstractCell.purge` does, since the TTL'd data replicated from that moment.
pub fn compact_cell(cell: &Cell, now_secs: u32, gc_grace_seconds: u32) -> Option<Cell> {
    match &cell.kind {
        CellKind::Live { .. } => Some(cell.clone()),
        CellKind::Expiring { .. } if cell.is_live(now_secs) => Some(cell.clone()),
        CellKind::Expiring {
            ttl,
            local_deletion_time,
            ..
        } => {
            let written = local_deletion_time.saturating_sub(*ttl);
            let tombstone = Cell::tombstone(cell.timestamp, written);
            compact_cell(&tombstone, now_secs, gc_grace_seconds)
        }
        CellKind::Tombstone {
            local_deletion_time,
        } => (!purgeable(*local_deletion_time, now_secs, gc_grace_seconds)).then(|| cell.clone()),
    }
}

/// A RocksDB full merge (with `existing`) or partial merge (without) of encoded cells: the
/// [`reconcile`] winner among all inputs, re-encoded. Fails on any undecodable input or on a
/// non-cell value.
pub fn merge_cell_values<'a>(
    existing: Option<&'a [u8]>,
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, MergeError> {
    let mut winner: Option<Cell> = None;
    for bytes in existing.into_iter().chain(operands) {
        let cell = Cell::decode(bytes)?;
        winner = Some(match winner {
            Some(best) if compare(&best, &cell) == Ordering::Less => cell,
            Some(best) => best,
            None => cell,
        });
    }
    winner.map(|cell| cell.encode()).ok_or(MergeError::Empty)
}

/// The merge for a column family holding every kind of [`StoredValue`]: each key holds one
/// kind, merged by [`reconcile`], [`merge_liveness`] or [`merge_deletion`]. Works as a full
/// merge (with `existing`) and a partial merge (without).
pub fn merge_values<'a>(
    existing: Option<&'a [u8]>,
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, MergeError> {
    let mut winner: Option<StoredValue> = None;
    for bytes in existing.into_iter().chain(operands) {
        let value = StoredValue::decode(bytes)?;
        winner = Some(match winner {
            Some(best) => merge_stored(best, value)?,
            None => value,
        });
    }
    winner.map(|value| value.encode()).ok_or(MergeError::Empty)
}

/// The winner of two stored values of the same kind.
pub fn merge_stored(a: StoredValue, b: StoredValue) -> Result<StoredValue, MergeError> {
    match (a, b) {
        (StoredValue::Cell(a), StoredValue::Cell(b)) => {
            let keep_a = compare(&a, &b) != Ordering::Less;
            Ok(StoredValue::Cell(if keep_a { a } else { b }))
        }
        (StoredValue::Marker(a), StoredValue::Marker(b)) => {
            Ok(StoredValue::Marker(merge_liveness(a, b)))
        }
        (StoredValue::Deletion(a), StoredValue::Deletion(b)) => {
            Ok(StoredValue::Deletion(merge_deletion(a, b)))
        }
        (a, b) => Err(MergeError::MixedKinds(a.kind_name(), b.kind_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::cell::{arb_cell, ClusteringBound, Expiry};
    use bytes::Bytes;
    use proptest::prelude::*;

    fn live(ts: i64, v: &[u8]) -> Cell {
        Cell::live(ts, Bytes::copy_from_slice(v))
    }

    fn expiring(ts: i64, v: &[u8], ttl: u32, ldt: u32) -> Cell {
        let value = Bytes::copy_from_slice(v);
        let kind = CellKind::Expiring {
            value,
            ttl,
            local_deletion_time: ldt,
        };
        Cell {
            timestamp: ts,
            kind,
        }
    }

    /// Asserts `winner` wins in both argument orders.
    fn assert_wins(winner: &Cell, loser: &Cell) {
        assert_eq!(reconcile(winner, loser), winner);
        assert_eq!(reconcile(loser, winner), winner);
    }

    // One test per tie-break rule of design §18.3 (Cells.resolveRegular).

    #[test]
    fn rule_1_higher_timestamp_wins() {
        assert_wins(&live(2, b"a"), &live(1, b"z"));
        assert_wins(&live(2, b"a"), &Cell::tombstone(1, 100));
        assert_wins(&Cell::tombstone(2, 1), &live(1, b"z"));
        assert_wins(&live(2, b""), &expiring(1, b"z", 5, 100));
    }

    #[test]
    fn rule_2_equal_timestamps_tombstone_beats_live() {
        assert_wins(&Cell::tombstone(5, 0), &live(5, b"\xff\xff"));
    }

    #[test]
    fn rule_2_equal_timestamps_expiring_beats_live() {
        // CASSANDRA-14592: the expiring cell wins even with a smaller value, expired or not.
        assert_wins(&expiring(5, b"\x00", 1, 1), &live(5, b"\xff"));
    }

    #[test]
    fn rule_3_equal_timestamps_pure_tombstone_beats_expiring() {
        // Even when the expiring cell's local deletion time is later.
        assert_wins(&Cell::tombstone(5, 10), &expiring(5, b"v", 100, 1000));
    }

    #[test]
    fn rule_3_both_tombstones_larger_local_deletion_time_wins() {
        assert_wins(&Cell::tombstone(5, 11), &Cell::tombstone(5, 10));
    }

    #[test]
    fn rule_3_both_expiring_larger_local_deletion_time_wins() {
        // The later expiry wins before any value is looked at.
        assert_wins(
            &expiring(5, b"\x00", 10, 200),
            &expiring(5, b"\xff", 10, 199),
        );
    }

    #[test]
    fn rule_4_equal_everything_larger_value_wins_unsigned() {
        // 0x80 is negative as a Java signed byte; Cassandra 4.x compares unsigned.
        assert_wins(&live(5, b"\x80"), &live(5, b"\x7f"));
        // A longer value with an equal prefix is larger.
        assert_wins(&live(5, b"ab"), &live(5, b"a"));
    }

    #[test]
    fn rule_4_both_expiring_same_expiry_larger_value_wins() {
        assert_wins(&expiring(5, b"b", 10, 100), &expiring(5, b"a", 10, 100));
    }

    #[test]
    fn full_tie_of_expiring_cells_prefers_smaller_ttl_in_any_order() {
        // Cassandra keeps its left argument here; the smaller ttl was written later.
        assert_wins(&expiring(5, b"v", 10, 100), &expiring(5, b"v", 20, 100));
    }

    #[test]
    fn late_older_write_loses_through_the_merge() {
        let newer = live(200, b"new").encode();
        let late_older = live(100, b"old").encode();
        let merged = merge_cell_values(Some(&newer), [&late_older[..]]).unwrap();
        assert_eq!(Cell::decode(&merged).unwrap(), live(200, b"new"));
        // A delete at an older timestamp arriving late does not delete either.
        let old_delete = Cell::tombstone(150, 9).encode();
        let merged = merge_cell_values(Some(&merged), [&old_delete[..]]).unwrap();
        assert_eq!(Cell::decode(&merged).unwrap(), live(200, b"new"));
    }

    #[test]
    fn partial_merge_then_full_merge_equals_one_full_merge() {
        let ops: Vec<Vec<u8>> = [
            live(3, b"a"),
            Cell::tombstone(3, 1),
            live(9, b"b"),
            live(1, b"c"),
        ]
        .iter()
        .map(Cell::encode)
        .collect();
        let existing = live(5, b"x").encode();
        let all = merge_cell_values(Some(&existing), ops.iter().map(Vec::as_slice)).unwrap();
        let partial = merge_cell_values(None, ops[..2].iter().map(Vec::as_slice)).unwrap();
        let rest = [&partial[..]]
            .into_iter()
            .chain(ops[2..].iter().map(Vec::as_slice));
        assert_eq!(merge_cell_values(Some(&existing), rest).unwrap(), all);
        assert_eq!(Cell::decode(&all).unwrap(), live(9, b"b"));
    }

    #[test]
    fn merge_rejects_malformed_and_mixed_input() {
        let cell = live(1, b"v").encode();
        assert_eq!(
            merge_cell_values(None, [&b"\x10\x00"[..]]),
            Err(MergeError::Codec(CodecError::Truncated("timestamp")))
        );
        assert_eq!(
            merge_cell_values(Some(&b""[..]), [&cell[..]]),
            Err(MergeError::Codec(CodecError::Empty))
        );
        assert_eq!(
            merge_cell_values(None, std::iter::empty()),
            Err(MergeError::Empty)
        );
        let marker = RowMarker::live(1).encode();
        assert_eq!(
            merge_values(Some(&cell), [&marker[..]]),
            Err(MergeError::MixedKinds("cell", "row marker"))
        );
        assert!(matches!(
            merge_cell_values(None, [&marker[..]]),
            Err(MergeError::Codec(CodecError::WrongKind { .. }))
        ));
    }

    #[test]
    fn merge_values_merges_markers_and_deletions() {
        let a = RowMarker::live(10).encode();
        let b = RowMarker::expiring(10, 5, 100).encode();
        let merged = merge_values(Some(&a), [&b[..]]).unwrap();
        assert_eq!(
            RowMarker::decode(&merged).unwrap(),
            RowMarker::expiring(10, 5, 100)
        );
        let d1 = DeletionTime::new(7, 1).encode();
        let d2 = DeletionTime::new(7, 2).encode();
        let d3 = DeletionTime::new(6, 99).encode();
        let merged = merge_values(None, [&d1[..], &d3[..], &d2[..]]).unwrap();
        assert_eq!(
            DeletionTime::decode(&merged).unwrap(),
            DeletionTime::new(7, 2)
        );
    }

    /// A marker with an explicit expiry, not one computed from a write time.
    fn marker(ts: i64, ttl: u32, local_expiration_time: u32) -> RowMarker {
        let expiry = Some(Expiry {
            ttl,
            local_expiration_time,
        });
        RowMarker {
            timestamp: ts,
            expiry,
        }
    }

    #[test]
    fn liveness_supersedes_follows_cassandra() {
        let plain = RowMarker::live(10);
        assert!(marker_supersedes(&RowMarker::live(11), &marker(10, 5, 100)));
        // Equal timestamps: an expiring marker supersedes a plain one, never the reverse.
        assert!(marker_supersedes(&marker(10, 5, 100), &plain));
        assert!(!marker_supersedes(&plain, &marker(10, 5, 100)));
        // Both expiring: the later expiry, whatever the ttls.
        assert!(marker_supersedes(&marker(10, 5, 101), &marker(10, 50, 100)));
        // Identical markers: neither supersedes.
        assert!(!marker_supersedes(&plain, &plain));
        // Same expiry, different ttls: Cassandra has no winner; the smaller ttl, in any order.
        let (short, long) = (marker(10, 5, 100), marker(10, 9, 100));
        assert_eq!(merge_liveness(short, long), short);
        assert_eq!(merge_liveness(long, short), short);
    }

    #[test]
    fn deletion_supersedes_by_timestamp_then_local_deletion_time() {
        assert!(DeletionTime::new(2, 0).supersedes(&DeletionTime::new(1, 99)));
        assert!(DeletionTime::new(2, 5).supersedes(&DeletionTime::new(2, 4)));
        assert!(!DeletionTime::new(2, 5).supersedes(&DeletionTime::new(2, 5)));
        assert!(DeletionTime::new(i64::MIN + 1, 0).supersedes(&DeletionTime::LIVE));
    }

    #[test]
    fn effective_tombstone_is_the_max_over_ancestors() {
        let partition = DeletionTime::new(10, 1);
        let row = DeletionTime::new(20, 1);
        let range = RangeTombstone {
            start: ClusteringBound {
                key: Bytes::from_static(b"b"),
                inclusive: true,
            },
            end: ClusteringBound {
                key: Bytes::from_static(b"c"),
                inclusive: true,
            },
            deletion: DeletionTime::new(30, 1),
        };
        let ranges = std::slice::from_ref(&range);
        assert_eq!(
            row_deletion(&partition, ranges, b"b1", &row),
            range.deletion
        );
        assert_eq!(row_deletion(&partition, ranges, b"d", &row), row);
        assert_eq!(
            row_deletion(&partition, ranges, b"d", &DeletionTime::LIVE),
            partition
        );
        assert_eq!(effective_deletion([]), DeletionTime::LIVE);
        let effective = row_deletion(&partition, ranges, b"b1", &row);
        // A cell survives iff its timestamp is strictly above the effective tombstone's.
        assert!(surviving(&live(30, b"v"), &effective).is_none());
        assert!(surviving(&live(31, b"v"), &effective).is_some());
        assert!(surviving(
            &live(15, b"v"),
            &row_deletion(&partition, ranges, b"z", &DeletionTime::LIVE)
        )
        .is_some());
    }

    #[test]
    fn purge_rule_is_strictly_after_gc_grace() {
        assert!(!purgeable(100, 110, 10));
        assert!(purgeable(100, 111, 10));
        assert!(!purgeable(u32::MAX, u32::MAX, u32::MAX));
        assert!(!deletion_purgeable(&DeletionTime::LIVE, u32::MAX, 0));
        assert!(deletion_purgeable(&DeletionTime::new(5, 100), 111, 10));
    }

    #[test]
    fn compaction_turns_expired_cells_into_tombstones_from_write_time() {
        let cell = expiring(7, b"v", 10, 110); // written at 100, expires at 110
        assert_eq!(compact_cell(&cell, 109, 50), Some(cell.clone()));
        assert_eq!(compact_cell(&cell, 110, 50), Some(Cell::tombstone(7, 100)));
        assert_eq!(compact_cell(&cell, 151, 50), None);
        assert_eq!(
            compact_cell(&Cell::tombstone(7, 100), 150, 50),
            Some(Cell::tombstone(7, 100))
        );
        assert_eq!(
            compact_cell(&live(7, b"v"), u32::MAX, 0),
            Some(live(7, b"v"))
        );
    }

    proptest! {
        #[test]
        fn reconcile_is_commutative(a in arb_cell(), b in arb_cell()) {
            prop_assert_eq!(reconcile(&a, &b), reconcile(&b, &a));
        }

        #[test]
        fn reconcile_is_associative(a in arb_cell(), b in arb_cell(), c in arb_cell()) {
            let left = reconcile(reconcile(&a, &b), &c);
            let right = reconcile(&a, reconcile(&b, &c));
            prop_assert_eq!(left, right);
        }

        #[test]
        fn merge_is_order_and_grouping_independent(
            cells in proptest::collection::vec(arb_cell(), 1..6),
            split in 0..6usize,
        ) {
            let encoded: Vec<Vec<u8>> = cells.iter().map(Cell::encode).collect();
            let forward = merge_cell_values(None, encoded.iter().map(Vec::as_slice)).unwrap();
            let backward = merge_cell_values(None, encoded.iter().rev().map(Vec::as_slice)).unwrap();
            prop_assert_eq!(&forward, &backward);
            let split = split.min(encoded.len() - 1);
            let (head, tail) = encoded.split_at(split);
            let existing = merge_cell_values(None, tail.iter().map(Vec::as_slice)).unwrap();
            let grouped = merge_cell_values(Some(&existing), head.iter().map(Vec::as_slice)).unwrap();
            prop_assert_eq!(&forward, &grouped);
            // The winner is never older than any input.
            let winner = Cell::decode(&forward).unwrap();
            prop_assert!(cells.iter().all(|c| c.timestamp <= winner.timestamp));
        }

        #[test]
        fn marker_merge_is_commutative(
            t1 in 0..2i64, t2 in 0..2i64, e1 in proptest::option::of((1..3u32, 0..3u32)),
            e2 in proptest::option::of((1..3u32, 0..3u32)),
        ) {
            let mk = |t, e: Option<(u32, u32)>| match e {
                Some((ttl, at)) => marker(t, ttl, at),
                None => RowMarker::live(t),
            };
            let (a, b) = (mk(t1, e1), mk(t2, e2));
            prop_assert_eq!(merge_liveness(a, b), merge_liveness(b, a));
        }
    }
}
