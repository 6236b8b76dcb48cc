//! Statement plans: what a SELECT resolves to against the schema — its table, the
//! expression each output column computes, and the result metadata — worked out once and
//! reused until the schema changes.
//!
//! Resolving a projection builds a `ColumnSpec` (three owned strings and a converted type)
//! per output column; for `SELECT *` on a wide table that was most of the work of a read.
//! A plan is keyed by the parsed statement (it lives beside it, in the parse cache or the
//! prepared statement) and by what else it depends on: the keyspace the statement resolved
//! to and the schema version. Any DDL changes the version, so a stale plan is never used.
//!
//! The metadata is kept *encoded*: the column specs' wire bytes are produced once by the
//! protocol's own encoder and each reply copies them, so no per-request `ResultMetadata`
//! is ever built or cloned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::projection::Expr;
use super::table_select::UserTable;
use crate::protocol::{wire, ResultMetadata};

/// RESULT kind of a Rows body (spec §4.2.5).
const KIND_ROWS: i32 = 0x0002;
/// Rows metadata flags (spec §4.2.5.2).
const GLOBAL_TABLES_SPEC: i32 = 0x0001;
const HAS_MORE_PAGES: i32 = 0x0002;
const NO_METADATA: i32 = 0x0004;

/// A SELECT resolved against one schema version.
pub(super) struct SelectPlan {
    /// Tells this plan from every other made by this process: the identity of its
    /// projection's rows kept in the cache ([`crate::cache::Rendering`]).
    pub id: u64,
    /// The schema version it was resolved against.
    pub schema_version: Uuid,
    /// The keyspace the statement resolved to (its own, or the session's).
    pub keyspace: String,
    /// What each output column computes.
    pub exprs: Vec<Expr>,
    /// The result metadata's column specs, encoded.
    pub columns: Arc<EncodedColumns>,
    /// For a user table: what reading it needs before values are known, worked out by the
    /// first execution (a statement that fails its checks keeps failing them, unkept).
    pub user_table: OnceLock<UserTable>,
}

/// A new [`SelectPlan::id`].
pub(super) fn next_plan_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The slot a statement keeps its latest plan in.
#[derive(Default)]
pub(super) struct PlanSlot(RwLock<Option<Arc<SelectPlan>>>);

impl PlanSlot {
    /// The cached plan, if it was made for `keyspace` at `version`.
    pub fn get(&self, keyspace: &str, version: Uuid) -> Option<Arc<SelectPlan>> {
        let slot = self.0.read().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|p| p.schema_version == version && p.keyspace == keyspace)
            .cloned()
    }

    /// Replaces the cached plan (the newest resolution wins).
    pub fn set(&self, plan: Arc<SelectPlan>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(plan);
    }
}

/// Column specs as they appear on the wire after `<flags><columns_count>[<paging_state>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedColumns {
    count: usize,
    global: bool,
    specs: Bytes,
}

impl EncodedColumns {
    /// Encodes `metadata`'s column specs with the protocol's encoder.
    pub(super) fn new(metadata: &ResultMetadata) -> EncodedColumns {
        let complete = ResultMetadata {
            paging_state: None,
            no_metadata: false,
            ..metadata.clone()
        };
        let mut buf = BytesMut::new();
        complete.encode(&mut buf);
        let buf_len = buf.len();
        let flags = buf
            .get(..4)
            .map_or(0, |f| i32::from_be_bytes(f.try_into().unwrap_or_default()));
        // Without paging state or No_metadata, the specs follow the two leading ints.
        let specs = buf.freeze().split_off(LEADING_INTS.min(buf_len));
        EncodedColumns {
            count: metadata.columns.len(),
            global: flags & GLOBAL_TABLES_SPEC != 0,
            specs,
        }
    }
}

/// `<flags><columns_count>`: the bytes before the specs of complete metadata.
const LEADING_INTS: usize = 8;

/// A page of rows whose metadata comes from a plan: encodes to exactly the bytes the
/// equivalent [`crate::protocol::Rows`] would.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRows {
    /// The shared, encoded column specs.
    pub columns: Arc<EncodedColumns>,
    /// Set when more rows follow.
    pub paging_state: Option<Bytes>,
    /// Omit the specs (skip_metadata was requested).
    pub no_metadata: bool,
    /// The page's rows, already in their wire form.
    pub rows: EncodedRows,
}

/// Rows in their wire form, each cell a `[bytes]`: a read writes its values straight into
/// the reply's layout, without a vector per row and a reference count per cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodedRows {
    count: usize,
    bytes: BytesMut,
}

impl EncodedRows {
    /// Rows encoded from their cells.
    pub fn from_cells(rows: &[Vec<Option<Bytes>>]) -> EncodedRows {
        let mut out = EncodedRows::default();
        for row in rows {
            for cell in row {
                out.cell(cell.as_deref());
            }
            out.end_row();
        }
        out
    }

    /// Appends one cell of the current row (None: null).
    pub fn cell(&mut self, value: Option<&[u8]>) {
        wire::put_bytes(&mut self.bytes, value);
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.count += 1;
    }

    /// Where the next row will start, for [`EncodedRows::since`].
    pub fn mark(&self) -> (usize, usize) {
        (self.count, self.bytes.len())
    }

    /// The rows appended since `mark`, as bytes and a count.
    pub fn since(&self, mark: (usize, usize)) -> (Bytes, usize) {
        let bytes = Bytes::copy_from_slice(&self.bytes[mark.1..]);
        (bytes, self.count - mark.0)
    }

    /// Appends `count` rows already in wire form.
    pub fn extend(&mut self, rows: &[u8], count: usize) {
        self.bytes.extend_from_slice(rows);
        self.count += count;
    }

    /// Rows encoded.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no row was encoded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl PlannedRows {
    /// Appends the RESULT body: `<kind=Rows><metadata><rows_count><rows>`.
    pub fn encode(&self, buf: &mut BytesMut) {
        let mut flags = 0;
        if self.columns.global && !self.no_metadata {
            flags |= GLOBAL_TABLES_SPEC;
        }
        if self.paging_state.is_some() {
            flags |= HAS_MORE_PAGES;
        }
        if self.no_metadata {
            flags |= NO_METADATA;
        }
        buf.reserve(16 + self.columns.specs.len() + self.rows.bytes.len());
        wire::put_i32(buf, KIND_ROWS);
        wire::put_i32(buf, flags);
        wire::put_i32(buf, len_i32(self.columns.count));
        if let Some(state) = &self.paging_state {
            wire::put_bytes(buf, Some(state));
        }
        if !self.no_metadata {
            buf.put_slice(&self.columns.specs);
        }
        wire::put_i32(buf, len_i32(self.rows.count));
        buf.put_slice(&self.rows.bytes);
    }
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ColumnSpec, DataType, ResultBody, Rows};

    fn spec(ks: &str, table: &str, name: &str, data_type: DataType) -> ColumnSpec {
        ColumnSpec {
            keyspace: ks.into(),
            table: table.into(),
            name: name.into(),
            data_type,
        }
    }

    fn same_bytes(columns: Vec<ColumnSpec>, paging: Option<Bytes>, no_metadata: bool) {
        let rows = vec![
            vec![Some(Bytes::from_static(b"a")), None],
            vec![Some(Bytes::new()), Some(Bytes::from_static(b"xyz"))],
        ];
        let metadata = ResultMetadata::new(columns);
        let planned = PlannedRows {
            columns: Arc::new(EncodedColumns::new(&metadata)),
            paging_state: paging.clone(),
            no_metadata,
            rows: EncodedRows::from_cells(&rows),
        };
        let expected = ResultBody::Rows(Rows {
            metadata: ResultMetadata {
                paging_state: paging,
                no_metadata,
                ..metadata
            },
            rows,
        });
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        planned.encode(&mut a);
        expected.encode(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn planned_rows_encode_exactly_as_protocol_rows() {
        let set = DataType::Set(Box::new(DataType::Varchar));
        let global = || {
            vec![
                spec("system", "local", "key", DataType::Varchar),
                spec("system", "local", "tokens", set.clone()),
            ]
        };
        let mixed = vec![
            spec("ks", "a", "x", DataType::Int),
            spec("ks", "b", "y", DataType::Uuid),
        ];
        for paging in [None, Some(Bytes::from_static(b"\x01state"))] {
            for no_metadata in [false, true] {
                same_bytes(global(), paging.clone(), no_metadata);
                same_bytes(mixed.clone(), paging.clone(), no_metadata);
                same_bytes(Vec::new(), paging.clone(), no_metadata);
            }
        }
    }

    #[test]
    fn a_plan_is_used_only_for_its_keyspace_and_schema_version() {
        let (v1, v2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let slot = PlanSlot::default();
        assert!(slot.get("ks", v1).is_none());
        slot.set(Arc::new(SelectPlan {
            id: next_plan_id(),
            schema_version: v1,
            keyspace: "ks".into(),
            exprs: Vec::new(),
            columns: Arc::new(EncodedColumns::new(&ResultMetadata::default())),
            user_table: OnceLock::new(),
        }));
        assert!(slot.get("ks", v1).is_some());
        assert!(slot.get("ks", v2).is_none());
        assert!(slot.get("other", v1).is_none());
    }
}
