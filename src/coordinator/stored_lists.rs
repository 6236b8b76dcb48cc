//! The stored lists a write reads before it writes (list operations by index or value).
//!
//! Binding is synchronous, and reading a list from a partition's replicas is not. So a
//! write's binding asks [`ReplicaLists`] for each list it needs; a list not fetched yet
//! fails the binding with [`Error::ListNeeded`], the coordinator reads that list from the
//! partition's replicas at the statement's consistency level (merged like any read) into
//! the request's [`FetchedLists`], and binds again — a write that names no such list binds
//! once, as before. Like Cassandra's, the read is not isolated from concurrent writes.
//!
//! A lightweight transaction on a partition's only replica runs under the partition's lock,
//! so it reads its lists straight from this node's engine ([`LocalLists`]), uncached; one
//! run through Paxos reads them from the replicas within its round (`paxos/`), and
//! [`TransactionLists`] picks between the two when a transaction is first bound.

use std::collections::HashMap;

use bytes::Bytes;

use super::dml::ListReader;
use super::lwt::exact_ranges;
use super::restrict;
use crate::error::{Error, Result};
use crate::replica::LocalReplica;
use crate::schema::{Catalog, TableDef};
use crate::storage::partition::{resolve_row, PartitionId, Slice};

/// A list one write reads: table, partition, row (None: the static row) and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub table: uuid::Uuid,
    pub partition: PartitionId,
    pub clustering: Option<Bytes>,
    pub column: String,
}

/// A list's elements as `(path, value)` pairs.
type Elements = Vec<(Bytes, Bytes)>;

/// The lists a request's write has read from replicas so far (per request).
#[derive(Debug, Clone, Default)]
pub struct FetchedLists {
    lists: std::sync::Arc<std::sync::Mutex<HashMap<ListKey, Elements>>>,
}

impl FetchedLists {
    /// Records the elements read for `key`.
    pub fn insert(&self, key: ListKey, elements: Vec<(Bytes, Bytes)>) {
        self.lists.lock().expect("lists").insert(key, elements);
    }

    fn get(&self, key: &ListKey) -> Option<Vec<(Bytes, Bytes)>> {
        self.lists.lock().expect("lists").get(key).cloned()
    }
}

/// A write's lists, as fetched from the replicas; a missing one asks to be fetched.
pub(super) struct ReplicaLists<'a> {
    pub fetched: &'a FetchedLists,
}

impl ListReader for ReplicaLists<'_> {
    fn elements(
        &self,
        table: &TableDef,
        partition: &PartitionId,
        clustering: Option<&Bytes>,
        column: &str,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let key = ListKey {
            table: table.id,
            partition: partition.clone(),
            clustering: clustering.cloned(),
            column: column.to_owned(),
        };
        self.fetched
            .get(&key)
            .ok_or_else(|| Error::ListNeeded(Box::new(key)))
    }
}

/// The elements of `column` of `table` in a fragment's row (`clustering`; None: the static
/// row), as `(path, value)` pairs, live at `now_secs`. A column dropped and added again
/// shows only what was written after the drop.
pub(super) fn list_elements(
    fragment: &crate::storage::partition::PartitionFragment,
    table: &TableDef,
    clustering: Option<&Bytes>,
    column: &str,
    now_secs: u32,
) -> Vec<(Bytes, Bytes)> {
    let dropped_at = table.dropped.get(column).map(|d| d.dropped_at_micros);
    let row = match clustering {
        Some(_) => fragment.rows.first(),
        None => fragment.static_row.as_ref(),
    };
    let Some(live) = row.and_then(|r| resolve_row(r, &fragment.deletion, now_secs)) else {
        return Vec::new();
    };
    live.cells
        .into_iter()
        .filter(|c| c.column == column.as_bytes())
        .filter(|c| dropped_at.is_none_or(|at| c.cell.timestamp > at))
        .filter_map(|c| Some((c.path?, c.cell.value()?.clone())))
        .collect()
}

/// The slice reading one list's row.
pub(super) fn list_slice(clustering: Option<&Bytes>) -> Result<Slice> {
    Ok(Slice {
        ranges: exact_ranges(clustering.into_iter())?,
        reversed: false,
    })
}

/// Reads lists from this node's engine with the table layouts of `catalog` (lightweight
/// transactions, on their partition's replica).
pub(super) struct LocalLists<'a> {
    pub replica: &'a LocalReplica,
    pub catalog: &'a Catalog,
    pub now_secs: u32,
}

impl ListReader for LocalLists<'_> {
    fn elements(
        &self,
        table: &TableDef,
        partition: &PartitionId,
        clustering: Option<&Bytes>,
        column: &str,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let layout = restrict::layout(table, self.catalog);
        let slice = list_slice(clustering)?;
        let limits = self
            .replica
            .limits(usize::MAX, self.now_secs, clustering.is_none());
        let (fragment, _) = self
            .replica
            .read_stored(&layout, partition, &slice, &limits)
            .map_err(|e| Error::Server(format!("reading a list before writing it: {e}")))?;
        Ok(list_elements(
            &fragment,
            table,
            clustering,
            column,
            self.now_secs,
        ))
    }
}

/// A transaction's lists when it is first bound (checked, not yet run): from this node's
/// engine for a keyspace with one replica, as the transaction will read them; from the
/// replicas otherwise.
pub(super) struct TransactionLists<'a> {
    pub local: LocalLists<'a>,
    pub fetched: ReplicaLists<'a>,
}

impl ListReader for TransactionLists<'_> {
    fn elements(
        &self,
        table: &TableDef,
        partition: &PartitionId,
        clustering: Option<&Bytes>,
        column: &str,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let single = self
            .local
            .catalog
            .keyspace(&table.keyspace)
            .is_some_and(super::lwt::single_replica);
        match single {
            true => self.local.elements(table, partition, clustering, column),
            false => self.fetched.elements(table, partition, clustering, column),
        }
    }
}
