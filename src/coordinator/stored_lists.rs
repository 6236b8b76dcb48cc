//! The stored lists a write reads before it writes (list operations by index or value):
//! the row's current cells straight from the replica's engine, uncached, resolved at "now".

use bytes::Bytes;

use super::dml::ListReader;
use super::lwt::exact_ranges;
use super::restrict;
use crate::error::{Error, Result};
use crate::replica::LocalReplica;
use crate::schema::{Catalog, TableDef};
use crate::storage::partition::{resolve_row, PartitionId, Slice};

/// Reads lists from `replica` with the table layouts of `catalog`.
pub(super) struct StoredLists<'a> {
    pub replica: &'a LocalReplica,
    pub catalog: &'a Catalog,
    pub now_secs: u32,
}

impl ListReader for StoredLists<'_> {
    fn elements(
        &self,
        table: &TableDef,
        partition: &PartitionId,
        clustering: Option<&Bytes>,
        column: &str,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let layout = restrict::layout(table, self.catalog);
        let slice = Slice {
            ranges: exact_ranges(clustering.into_iter())?,
            reversed: false,
        };
        let limits = self
            .replica
            .limits(usize::MAX, self.now_secs, clustering.is_none());
        let (fragment, _) = self
            .replica
            .read_stored(&layout, partition, &slice, &limits)
            .map_err(|e| Error::Server(format!("reading a list before writing it: {e}")))?;
        let row = match clustering {
            Some(_) => fragment.rows.first(),
            None => fragment.static_row.as_ref(),
        };
        let Some(live) = row.and_then(|r| resolve_row(r, &fragment.deletion, self.now_secs)) else {
            return Ok(Vec::new());
        };
        // A column dropped and added again shows only what was written after the drop.
        let dropped_at = table.dropped.get(column).map(|d| d.dropped_at_micros);
        Ok(live
            .cells
            .into_iter()
            .filter(|c| c.column == column.as_bytes())
            .filter(|c| dropped_at.is_none_or(|at| c.cell.timestamp > at))
            .filter_map(|c| Some((c.path?, c.cell.value()?.clone())))
            .collect())
    }
}
