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
//! before deciding what is live (DESIGN §3.5) and a cache can keep them with the
//! timestamps `writetime()`, `ttl()` and digests need (DESIGN §3.6). What is live is decided
//! by [`resolve_row`], the one place Cassandra's read-time rules live. The row limit of a
//! read counts live rows, as a Cassandra replica does, so a page of tombstones does not end
//! a read early; tombstones passed are counted for the tombstone thresholds.

use std::cmp::Ordering;

use bytes::Bytes;
use uuid::Uuid;

use super::cell::{Cell, DeletionTime, RowMarker};
use super::comparable::{ClusteringRange, Order};
use crate::cql::types::CqlType;

/// What the key layout needs to know about a table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLayout {
    /// The table id (the first 16 bytes of every key).
    pub id: Uuid,
    /// Clustering columns' types (user types resolved to their field tuples) and orders.
    pub clustering: Vec<(CqlType, Order)>,
}

/// A partition's identity: its token and serialized key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionId {
    /// The Murmur3 token of `key`.
    pub token: i64,
    /// The serialized partition key (composite form for compound keys).
    pub key: Bytes,
}

impl PartitionId {
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// What one stored column slot holds, as a read returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellFragment {
    /// A cell (possibly a tombstone or an expired value).
    Cell(Cell),
    /// A non-frozen collection's deletion.
    CollectionDeletion(DeletionTime),
}

/// One stored column slot of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnFragment {
    /// The column name (UTF-8 bytes, as in the key).
    pub column: Bytes,
    /// The encoded collection element key, for collection element cells.
    pub path: Option<Bytes>,
    /// The stored value.
    pub value: CellFragment,
}

/// What a replica stores for one row (or the static row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFragment {
    /// The encoded clustering key (ends in END); empty for the static row.
    pub clustering: Bytes,
    /// The row marker, if one is stored.
    pub marker: Option<RowMarker>,
    /// The row deletion, [`DeletionTime::LIVE`] if none.
    pub deletion: DeletionTime,
    /// Column slots in key order (column name, then element path).
    pub columns: Vec<ColumnFragment>,
}

/// What a replica returns for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFragment {
    /// Which partition.
    pub partition: PartitionId,
    /// The partition deletion, [`DeletionTime::LIVE`] if none.
    pub deletion: DeletionTime,
    /// The static row, when the table has static columns and any are stored.
    pub static_row: Option<RowFragment>,
    /// Rows in read order (reversed for reversed reads), dead ones included.
    pub rows: Vec<RowFragment>,
    /// Whether the read reached the end of the requested slices (no live row follows).
    pub exhausted: bool,
}

/// Which rows of a partition a read wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Sorted, disjoint clustering ranges (`comparable::bounds`); `[full_range()]` for all.
    pub ranges: Vec<ClusteringRange>,
    /// Whether rows come in reverse clustering order (ORDER BY against the table's order).
    pub reversed: bool,
}
