//! Merging several replicas' answers to one read into the answer a single, fully repaired
//! replica would give: last-write-wins per cell, the newest of every deletion (design §18.3).
//!
//! Each answer is the same read (same partition, slice and direction) as one replica saw it.
//! Rows are matched by their encoded clustering, which sorts in CQL order. For each row the
//! newer marker, the newest row deletion, and per column slot the cell reconciliation wins;
//! every replica's range deletions are applied to every row, so a row that one replica
//! deleted by range, and therefore did not return, cannot come back through another that
//! missed the deletion. Rows are kept with their deletions — the caller decides what is
//! live, as for a single replica.
//!
//! A replica that stopped early (it reached the read's live-row budget) says nothing about
//! the rows after its last one: rows beyond the earliest such stopping point are dropped,
//! and the merged answer is exhausted only if every answer was. The reader then continues
//! after the merged answer's last row — Cassandra's short-read protection, in one rule: a
//! read never returns fewer live rows than exist because one replica's rows were shadowed
//! by another's tombstones. (`partition/tests/merged.rs` holds this to a model: replicas that
//! each saw part of the writes, merged, read exactly as one replica that saw them all.)

use std::cmp::Ordering;

use super::cell::DeletionTime;
use super::partition::{
    CellFragment, ColumnFragment, ColumnWrite, PartitionFragment, PartitionUpdate, RowFragment,
    RowUpdate,
};
use super::reconcile::{merge_deletion, merge_liveness, reconcile, row_deletion};

/// Merges answers to one read of one partition (`reversed`: rows in reverse clustering
/// order). Panics on an empty list.
pub fn merge_fragments(answers: Vec<PartitionFragment>, reversed: bool) -> PartitionFragment {
    let mut answers = answers.into_iter();
    let first = answers.next().expect("at least one answer");
    let order = |a: &[u8], b: &[u8]| if reversed { b.cmp(a) } else { a.cmp(b) };
    let mut cut: Option<bytes::Bytes> = stop(&first);
    let mut merged = first;
    for answer in answers {
        if let Some(at) = stop(&answer) {
            cut = Some(match cut {
                Some(c) if order(&c, &at) != Ordering::Greater => c,
                _ => at,
            });
        }
        merged = merge_two(merged, answer, &order);
    }
    if let Some(cut) = cut {
        merged
            .rows
            .retain(|r| order(&r.clustering, &cut) != Ordering::Greater);
        merged.exhausted = false;
    }
    let ranges = merged.range_deletions.clone();
    for row in &mut merged.rows {
        row.deletion = row_deletion(&DeletionTime::LIVE, &ranges, &row.clustering, &row.deletion);
    }
    merged
}

/// Where an answer stopped short of its slice's end: its last row, if it is not exhausted.
fn stop(answer: &PartitionFragment) -> Option<bytes::Bytes> {
    match answer.exhausted {
        true => None,
        false => answer.rows.last().map(|r| r.clustering.clone()),
    }
}

fn merge_two(
    a: PartitionFragment,
    b: PartitionFragment,
    order: &impl Fn(&[u8], &[u8]) -> Ordering,
) -> PartitionFragment {
    let mut ranges = a.range_deletions;
    for range in b.range_deletions {
        if !ranges.contains(&range) {
            ranges.push(range);
        }
    }
    let static_row = match (a.static_row, b.static_row) {
        (Some(x), Some(y)) => Some(merge_rows(x, y)),
        (x, y) => x.or(y),
    };
    PartitionFragment {
        partition: a.partition,
        deletion: merge_deletion(a.deletion, b.deletion),
        static_row,
        rows: merge_sorted(
            a.rows,
            b.rows,
            |x, y| order(&x.clustering, &y.clustering),
            merge_rows,
        ),
        exhausted: a.exhausted && b.exhausted,
        range_deletions: ranges,
    }
}

fn merge_rows(a: RowFragment, b: RowFragment) -> RowFragment {
    let marker = match (a.marker, b.marker) {
        (Some(x), Some(y)) => Some(merge_liveness(x, y)),
        (x, y) => x.or(y),
    };
    let columns = merge_sorted(a.columns, b.columns, slot_order, merge_slot);
    RowFragment {
        clustering: a.clustering,
        marker,
        deletion: merge_deletion(a.deletion, b.deletion),
        columns,
    }
}

/// The storage order of a row's column slots (`keys.rs`): by the column name's length,
/// then its bytes, then the element path — a collection's deletion (no path) first.
fn slot_order(a: &ColumnFragment, b: &ColumnFragment) -> Ordering {
    (a.column.len(), &a.column, &a.path).cmp(&(b.column.len(), &b.column, &b.path))
}

fn merge_slot(a: ColumnFragment, b: ColumnFragment) -> ColumnFragment {
    let value = match (&a.value, &b.value) {
        (CellFragment::Cell(x), CellFragment::Cell(y)) => {
            CellFragment::Cell(reconcile(x, y).clone())
        }
        (CellFragment::CollectionDeletion(x), CellFragment::CollectionDeletion(y)) => {
            CellFragment::CollectionDeletion(merge_deletion(*x, *y))
        }
        _ => a.value.clone(),
    };
    ColumnFragment { value, ..a }
}

/// Merges two lists sorted by `cmp`, combining equal items with `both`.
fn merge_sorted<T>(
    a: Vec<T>,
    b: Vec<T>,
    cmp: impl Fn(&T, &T) -> Ordering,
    both: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match cmp(x, y) {
                Ordering::Less => a.next(),
                Ordering::Greater => b.next(),
                Ordering::Equal => {
                    let (x, y) = (a.next().expect("peeked"), b.next().expect("peeked"));
                    Some(both(x, y))
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

/// What `replica`'s answer lacks of `merged` (the reconciled answer it took part in), as a
/// write that brings it level: the newer partition deletion, the range deletions it did not
/// have, and per row the newer marker, deletion and cells (read repair sends each replica
/// its difference, not the whole partition). None when it lacks nothing. `merged` must be
/// the merge of answers including `replica`'s, so everything in it is at least as new.
pub fn repair_for(
    merged: &PartitionFragment,
    replica: &PartitionFragment,
    table: uuid::Uuid,
) -> Option<PartitionUpdate> {
    let mut update = PartitionUpdate {
        table,
        partition: merged.partition.clone(),
        deletion: (merged.deletion != replica.deletion && !merged.deletion.is_live())
            .then_some(merged.deletion),
        static_columns: Vec::new(),
        rows: Vec::new(),
        range_deletions: merged
            .range_deletions
            .iter()
            .filter(|r| !replica.range_deletions.contains(r))
            .filter_map(|r| Some((range_of(r)?, r.deletion)))
            .collect(),
    };
    if let Some(statics) = &merged.static_row {
        let theirs = replica.static_row.as_ref();
        update.static_columns = missing_columns(&statics.columns, theirs.map(|r| &r.columns[..]));
    }
    for row in &merged.rows {
        let theirs = replica.rows.iter().find(|r| r.clustering == row.clustering);
        if let Some(repair) = row_repair(row, theirs) {
            update.rows.push(repair);
        }
    }
    let empty = update.deletion.is_none()
        && update.static_columns.is_empty()
        && update.rows.is_empty()
        && update.range_deletions.is_empty();
    (!empty).then_some(update)
}

fn row_repair(row: &RowFragment, theirs: Option<&RowFragment>) -> Option<RowUpdate> {
    let marker = row
        .marker
        .filter(|m| theirs.and_then(|t| t.marker) != Some(*m));
    let deletion = (!row.deletion.is_live() && theirs.map(|t| t.deletion) != Some(row.deletion))
        .then_some(row.deletion);
    let columns = missing_columns(&row.columns, theirs.map(|t| &t.columns[..]));
    if marker.is_none() && deletion.is_none() && columns.is_empty() {
        return None;
    }
    Some(RowUpdate {
        clustering: row.clustering.clone(),
        marker,
        deletion,
        columns,
    })
}

/// The column slots of `ours` that `theirs` lacks or holds differently, as writes.
fn missing_columns(ours: &[ColumnFragment], theirs: Option<&[ColumnFragment]>) -> Vec<ColumnWrite> {
    ours.iter()
        .filter(|c| !theirs.is_some_and(|t| t.contains(c)))
        .map(|c| {
            let column = String::from_utf8_lossy(&c.column).into_owned();
            match &c.value {
                CellFragment::Cell(cell) => ColumnWrite::Cell {
                    column,
                    path: c.path.clone(),
                    cell: cell.clone(),
                },
                CellFragment::CollectionDeletion(deletion) => ColumnWrite::CollectionDeletion {
                    column,
                    deletion: *deletion,
                },
            }
        })
        .collect()
}

/// The clustering range a range tombstone covers, in the write form (start inclusive, end
/// exclusive, each bound with its terminator byte).
fn range_of(
    range: &crate::storage::cell::RangeTombstone,
) -> Option<crate::storage::comparable::ClusteringRange> {
    use crate::storage::comparable::{AFTER, BEFORE};
    let bound = |key: &[u8], tag: u8| [key, &[tag]].concat();
    Some(crate::storage::comparable::ClusteringRange {
        start: bound(
            &range.start.key,
            if range.start.inclusive { BEFORE } else { AFTER },
        ),
        end: bound(
            &range.end.key,
            if range.end.inclusive { AFTER } else { BEFORE },
        ),
    })
}
