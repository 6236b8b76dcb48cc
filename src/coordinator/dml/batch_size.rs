//! Cassandra's bound on the size of a batch: a batch that writes more than one partition
//! logs a warning past `batch_size_warn_threshold_in_kb` and is refused past
//! `batch_size_fail_threshold_in_kb`. A batch of one partition is never checked, as in
//! Cassandra (it is one mutation, however large). The size is the data a batch writes: its
//! partition keys, clustering keys, cell values and paths, and the timestamps and TTLs they
//! carry, close to Cassandra's `PartitionUpdate.dataSize()`.

use crate::error::{Error, Result};
use crate::storage::cell::{Cell, CellKind};
use crate::storage::partition::{ColumnWrite, PartitionUpdate};

/// The two thresholds, in bytes.
#[derive(Debug, Clone, Copy)]
pub(in crate::coordinator) struct BatchLimits {
    pub warn_bytes: usize,
    pub fail_bytes: usize,
}

impl BatchLimits {
    /// From the configured thresholds in KiB.
    pub fn from_kib(warn: usize, fail: usize) -> BatchLimits {
        BatchLimits {
            warn_bytes: warn.saturating_mul(1024),
            fail_bytes: fail.saturating_mul(1024),
        }
    }
}

/// Refuses a multi-partition batch over the failure threshold ("Batch too large", as
/// Cassandra answers) and logs one over the warning threshold; `tables` names what it
/// writes, for the log.
pub(in crate::coordinator) fn check(
    updates: &[PartitionUpdate],
    limits: BatchLimits,
    tables: &str,
) -> Result<()> {
    if updates.len() <= 1 {
        return Ok(());
    }
    let size: usize = updates.iter().map(data_size).sum();
    let over = |threshold: usize| {
        format!(
            "Batch for [{tables}] is of size {}, exceeding specified threshold of {} by {}.",
            kib(size),
            kib(threshold),
            kib(size - threshold)
        )
    };
    if size > limits.fail_bytes {
        tracing::error!(
            "{} (see batch_size_fail_threshold_in_kb)",
            over(limits.fail_bytes)
        );
        return Err(Error::invalid("Batch too large"));
    }
    if size > limits.warn_bytes {
        tracing::warn!("{}", over(limits.warn_bytes));
    }
    Ok(())
}

fn kib(bytes: usize) -> String {
    format!("{:.3}KiB", bytes as f64 / 1024.0)
}

/// The bytes one partition's writes carry.
pub(super) fn data_size(update: &PartitionUpdate) -> usize {
    let deletion = 12 * usize::from(update.deletion.is_some());
    let statics: usize = update.static_columns.iter().map(write_size).sum();
    let rows: usize = update
        .rows
        .iter()
        .map(|row| {
            let marker = 8 * usize::from(row.marker.is_some());
            let deletion = 12 * usize::from(row.deletion.is_some());
            let cells: usize = row.columns.iter().map(write_size).sum();
            row.clustering.len() + marker + deletion + cells
        })
        .sum();
    let ranges: usize = update
        .range_deletions
        .iter()
        .map(|(range, _)| range.start.len() + range.end.len() + 12)
        .sum();
    update.partition.key.len() + deletion + statics + rows + ranges
}

fn write_size(write: &ColumnWrite) -> usize {
    match write {
        ColumnWrite::Cell { path, cell, .. } => {
            path.as_ref().map_or(0, |p| p.len()) + cell_size(cell)
        }
        ColumnWrite::CollectionDeletion { .. } => 12,
    }
}

fn cell_size(cell: &Cell) -> usize {
    8 + match &cell.kind {
        CellKind::Live { value } => value.len(),
        CellKind::Expiring { value, .. } => value.len() + 8,
        CellKind::Tombstone { .. } => 4,
    }
}
