//! A transaction's view of its partition: the rows its conditions name, read through the
//! SELECT path; the newest timestamp among them (dead data included); the conditions
//! evaluated with Cassandra's rules; and the rows a failure shows.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::plan::{CasPlan, RowCondition};
use super::{ColumnCondition, Part};
use crate::cache::Caching;
use crate::coordinator::read::{Query, ReadPath, StoredRow, TableRead};
use crate::coordinator::restrict::{self, PartitionSelection, ReadPlan};
use crate::cql::ast::Operator;
use crate::cql::types::CqlType;
use crate::error::{Error, Result};
use crate::protocol::{Consistency, QueryParameters};
use crate::replica::LocalReplica;
use crate::schema::{Catalog, ColumnKind, TableDef};
use crate::storage::comparable::{self, ClusteringRange};
use crate::storage::partition::{CellFragment, PartitionFragment, PartitionId, RowFragment, Slice};

/// Reads a transaction's partition: on its only replica (under the partition's lock), or
/// from its replicas at the Paxos level's quorum (within a Paxos round).
pub(super) struct Reader<'a> {
    table: &'a TableDef,
    path: ReadPath<'a>,
    /// QUORUM or LOCAL_QUORUM through replicas; SERIAL (unused) on the one replica.
    consistency: Consistency,
    layout: crate::storage::partition::TableLayout,
    /// Column types in table order, user types resolved.
    pub types: Vec<CqlType>,
    now_secs: u32,
    max_unpaged_rows: usize,
}

/// What the read found.
pub(super) struct Current {
    /// Live rows among the conditioned ones, in storage order (static values merged in).
    rows: Vec<StoredRow>,
    /// The partition's first live row, or its static-only row (when statics matter).
    first: Option<StoredRow>,
}

impl<'a> Reader<'a> {
    pub fn new(
        table: &'a TableDef,
        catalog: &Catalog,
        path: ReadPath<'a>,
        consistency: Consistency,
        max_unpaged_rows: usize,
    ) -> Reader<'a> {
        Reader {
            table,
            path,
            consistency,
            layout: restrict::layout(table, catalog),
            types: table
                .columns
                .iter()
                .map(|c| catalog.resolve_user_types(&table.keyspace, &c.ty))
                .collect(),
            now_secs: crate::clock::now_secs(),
            max_unpaged_rows,
        }
    }

    pub async fn current(&self, plan: &CasPlan) -> Result<Current> {
        let rows = match plan.rows.is_empty() {
            true => Vec::new(),
            false => {
                let ranges = exact_ranges(plan.rows.keys())?;
                self.rows(&plan.partition, ranges, None).await?
            }
        };
        let wants_first = plan.statics.is_some()
            || plan.partition_exists.is_some()
            || (plan.read_statics && rows.is_empty());
        let first = match wants_first {
            true => self
                .rows(&plan.partition, vec![comparable::full_range()], Some(1))
                .await?
                .into_iter()
                .next(),
            false => None,
        };
        Ok(Current { rows, first })
    }

    async fn rows(
        &self,
        partition: &PartitionId,
        ranges: Vec<ClusteringRange>,
        limit: Option<usize>,
    ) -> Result<Vec<StoredRow>> {
        let plan = ReadPlan {
            partitions: PartitionSelection::Keys(vec![partition.clone()]),
            slice: Slice {
                ranges,
                reversed: false,
            },
            residual: Vec::new(),
            order_across_partitions: false,
        };
        let query = Query {
            plan: &plan,
            limit,
            per_partition_limit: None,
            count_only: false,
            counted: &[],
            filter: &|_| true,
            render: None,
        };
        // A transaction reads storage, never the cache: the newest data, with no entry
        // filled on its behalf.
        let read = TableRead {
            path: self.path,
            caching: Caching::Off,
            table: self.table,
            layout: &self.layout,
            types: &self.types,
            now_secs: self.now_secs,
            max_unpaged_rows: self.max_unpaged_rows,
            consistency: self.consistency,
        };
        Ok(read.run(&query, &QueryParameters::default()).await?.rows)
    }

    /// The newest timestamp stored on this node's replica for what the transaction reads or
    /// writes: the partition deletion, the static row, and the named rows (dead data
    /// included).
    pub async fn newest_timestamp(&self, replica: &LocalReplica, plan: &CasPlan) -> Result<i64> {
        let named: BTreeSet<&Bytes> = plan.rows.keys().chain(&plan.written).collect();
        let slice = Slice {
            ranges: exact_ranges(named.into_iter())?,
            reversed: false,
        };
        let limits = replica.limits(usize::MAX, self.now_secs, self.table.has_static());
        let served = replica
            .read(
                &self.layout,
                Caching::Off,
                &plan.partition,
                &slice,
                None,
                &limits,
            )
            .await
            .map_err(|e| Error::Server(format!("storage failure: {e}")))?;
        Ok(newest(&served.fragment()))
    }
}

/// The newest timestamp in a fragment.
pub(super) fn newest(fragment: &PartitionFragment) -> i64 {
    let row_newest = |row: &RowFragment| {
        let cells = row.columns.iter().map(|c| match &c.value {
            CellFragment::Cell(cell) => cell.timestamp,
            CellFragment::CollectionDeletion(d) => d.marked_for_delete_at,
        });
        cells
            .chain(row.marker.map(|m| m.timestamp))
            .chain([row.deletion.marked_for_delete_at])
            .max()
            .unwrap_or(i64::MIN)
    };
    fragment
        .static_row
        .iter()
        .chain(&fragment.rows)
        .map(row_newest)
        .chain([fragment.deletion.marked_for_delete_at])
        .max()
        .unwrap_or(i64::MIN)
}

/// One range per encoded clustering (sorted), covering exactly that row.
pub(in crate::coordinator) fn exact_ranges<'b>(
    clusterings: impl Iterator<Item = &'b Bytes>,
) -> Result<Vec<ClusteringRange>> {
    clusterings
        .map(|c| {
            let prefix = c
                .strip_suffix(&[comparable::END])
                .ok_or_else(|| Error::Server("an encoded clustering lacks its end byte".into()))?;
            let with = |last: u8| [prefix, &[last]].concat();
            Ok(ClusteringRange {
                start: with(comparable::BEFORE),
                end: with(comparable::AFTER),
            })
        })
        .collect()
}

impl Current {
    pub fn applies(&self, plan: &CasPlan, table: &TableDef, types: &[CqlType]) -> Result<bool> {
        if let Some(must_exist) = plan.partition_exists {
            if self.first.is_some() != must_exist {
                return Ok(false);
            }
        }
        if let Some(condition) = &plan.statics {
            let statics = self.first.as_ref().or(self.rows.first());
            // The static row has no marker: it exists through its live cells.
            let exists = statics.is_some_and(|r| static_values(table, r).any(|v| v.is_some()));
            if !holds(condition, statics.filter(|_| exists), types)? {
                return Ok(false);
            }
        }
        for (clustering, condition) in &plan.rows {
            let row = self.rows.iter().find(|r| r.clustering == *clustering);
            if !holds(condition, row, types)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The rows a failed transaction shows, masked to what was read, before selection.
    pub fn failure_rows(self, plan: &CasPlan, table: &TableDef) -> Vec<StoredRow> {
        let mut rows = match plan.rows.is_empty() {
            true => self.first.into_iter().collect(),
            false if !self.rows.is_empty() => self.rows,
            // A named row is missing: a live static row still shows, clustering null.
            false => self
                .first
                .filter(|_| plan.read_statics)
                .map(|r| static_only(r, table))
                .filter(|r| static_values(table, r).any(|v| v.is_some()))
                .into_iter()
                .collect(),
        };
        for row in &mut rows {
            for (value, column) in row.values.iter_mut().zip(&table.columns) {
                let read = match column.kind {
                    ColumnKind::Regular => plan.read_regulars,
                    ColumnKind::Static => plan.read_statics,
                    _ => true,
                };
                if !read {
                    *value = None;
                }
            }
        }
        rows
    }
}

/// `row` reduced to its partition key and static values.
fn static_only(mut row: StoredRow, table: &TableDef) -> StoredRow {
    for (value, column) in row.values.iter_mut().zip(&table.columns) {
        if matches!(column.kind, ColumnKind::Clustering | ColumnKind::Regular) {
            *value = None;
        }
    }
    row.clustering = Bytes::new();
    row
}

fn static_values<'r>(
    table: &'r TableDef,
    row: &'r StoredRow,
) -> impl Iterator<Item = &'r Option<Bytes>> {
    row.values
        .iter()
        .zip(&table.columns)
        .filter(|(_, c)| c.kind == ColumnKind::Static)
        .map(|(v, _)| v)
}

fn holds(condition: &RowCondition, row: Option<&StoredRow>, types: &[CqlType]) -> Result<bool> {
    match condition {
        RowCondition::Exists => Ok(row.is_some()),
        RowCondition::NotExists => Ok(row.is_none()),
        RowCondition::Columns(conditions) => {
            for c in conditions {
                if !column_holds(c, row, types)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

/// Evaluates one condition on the current row (None: the row does not exist, so every
/// column is null).
pub(super) fn column_holds(
    c: &ColumnCondition,
    row: Option<&StoredRow>,
    types: &[CqlType],
) -> Result<bool> {
    let ty = types
        .get(c.column)
        .ok_or_else(|| Error::Server("a condition names a column the table lacks".into()))?;
    let whole = row.and_then(|r| r.values.get(c.column).cloned().flatten());
    let (current, value_ty) = match &c.part {
        Part::Whole => (whole, ty.clone()),
        Part::Element(key) => element(ty, whole.as_ref(), key)?,
        Part::Field(index) => field(ty, whole.as_ref(), *index)?,
    };
    // A non-frozen collection without elements is null, whichever side it is on.
    let multicell = matches!(c.part, Part::Whole) && ty.is_multicell() && ty.is_collection();
    let empty_as_null = |v: Option<Bytes>| match multicell && is_empty_collection(ty, v.as_ref()) {
        true => None,
        false => v,
    };
    let current = empty_as_null(current);
    if matches!(c.op, Operator::Contains | Operator::ContainsKey) {
        return contains(c, ty, current.as_ref());
    }
    let wanted: Vec<Option<Bytes>> = c
        .values
        .iter()
        .map(|v| {
            empty_as_null(v.as_ref().map(|b| {
                crate::cql::serialized::normalize(&value_ty, b).unwrap_or_else(|_| b.clone())
            }))
        })
        .collect();
    match c.op {
        Operator::In => {
            for w in &wanted {
                if compare(Operator::Eq, &value_ty, current.as_ref(), w.as_ref())? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        op => {
            let wanted = wanted.first().and_then(Option::as_ref);
            // To a slice, a non-frozen collection without elements is the empty collection,
            // which sorts before every other (Cassandra compares element by element).
            let empty = Bytes::from_static(&[0, 0, 0, 0]);
            let slice = matches!(
                op,
                Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge
            );
            let current = match (multicell && slice && wanted.is_some(), current.as_ref()) {
                (true, None) => Some(&empty),
                (_, current) => current,
            };
            compare(op, &value_ty, current, wanted)
        }
    }
}

/// `CONTAINS` (an element of a list or set, a value of a map) or `CONTAINS KEY`; a null
/// collection contains nothing, and no values (an unset one) match nothing.
fn contains(c: &ColumnCondition, ty: &CqlType, current: Option<&Bytes>) -> Result<bool> {
    let Some(wanted) = c.values.first() else {
        return Ok(false);
    };
    let Some(wanted) = wanted else {
        return Err(Error::invalid(format!(
            "Invalid comparison with null for operator \"{}\"",
            restrict::operator_text(c.op)
        )));
    };
    let Some(current) = current else {
        return Ok(false);
    };
    // A set splits into (element, empty), a list into (empty, element), a map into
    // (key, value).
    let (by_key, element_ty) = match (ty.unfrozen(), c.op) {
        (CqlType::Map(k, _), Operator::ContainsKey) | (CqlType::Set(k), _) => (true, &**k),
        (CqlType::List(e) | CqlType::Map(_, e), _) => (false, &**e),
        (other, _) => {
            return Err(Error::Server(format!(
                "CONTAINS reached a column of type {other}"
            )))
        }
    };
    let elements = crate::cql::serialized::split_collection(ty, current)
        .map_err(|e| Error::Server(format!("stored collection is malformed: {e}")))?;
    for (key, value) in elements {
        let candidate = if by_key { key } else { value };
        if compare(Operator::Eq, element_ty, Some(&candidate), Some(wanted))? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn is_empty_collection(ty: &CqlType, value: Option<&Bytes>) -> bool {
    value.is_some_and(|v| {
        crate::cql::serialized::split_collection(ty, v).is_ok_and(|elements| elements.is_empty())
    })
}

/// `current op wanted`, with Cassandra's null rules: only `=` and `!=` compare with null.
pub(super) fn compare(
    op: Operator,
    ty: &CqlType,
    current: Option<&Bytes>,
    wanted: Option<&Bytes>,
) -> Result<bool> {
    let (current, wanted) = match (current, wanted) {
        (current, None) => {
            return match op {
                Operator::Eq => Ok(current.is_none()),
                Operator::Ne => Ok(current.is_some()),
                _ => Err(Error::invalid(format!(
                    "Invalid comparison with null for operator \"{}\"",
                    restrict::operator_text(op)
                ))),
            }
        }
        (None, Some(_)) => return Ok(op == Operator::Ne),
        (Some(c), Some(w)) => (c, w),
    };
    let encode = |v: &Bytes| {
        let mut out = Vec::new();
        comparable::encode_value(ty, v, &mut out)
            .map(|_| out)
            .map_err(|e| Error::invalid(format!("Invalid value in condition: {e}")))
    };
    let ordering = encode(current)?.cmp(&encode(wanted)?);
    Ok(match op {
        Operator::Eq => ordering.is_eq(),
        Operator::Ne => ordering.is_ne(),
        Operator::Lt => ordering.is_lt(),
        Operator::Le => ordering.is_le(),
        Operator::Gt => ordering.is_gt(),
        Operator::Ge => ordering.is_ge(),
        other => {
            return Err(Error::invalid(format!(
                "Unsupported operator {} in an IF condition",
                restrict::operator_text(other)
            )))
        }
    })
}

/// `l[i]` or `m[k]` of the current value, and the element's type.
pub(super) fn element(
    ty: &CqlType,
    whole: Option<&Bytes>,
    key: &Bytes,
) -> Result<(Option<Bytes>, CqlType)> {
    let split = |v: &Bytes| {
        crate::cql::serialized::split_collection(ty, v)
            .map_err(|e| Error::Server(format!("stored collection is malformed: {e}")))
    };
    match ty.unfrozen() {
        CqlType::List(e) => {
            let index = <[u8; 4]>::try_from(key.as_ref())
                .map(i32::from_be_bytes)
                .map_err(|_| Error::invalid("Invalid list index: expected a 4-byte int"))?;
            let found = match (whole, usize::try_from(index)) {
                (Some(v), Ok(i)) => split(v)?.into_iter().nth(i).map(|(_, e)| e),
                _ => None,
            };
            Ok((found, (**e).clone()))
        }
        CqlType::Map(k, v) => {
            let mut found = None;
            if let Some(whole) = whole {
                for (entry_key, value) in split(whole)? {
                    if compare(Operator::Eq, k, Some(&entry_key), Some(key))? {
                        found = Some(value);
                        break;
                    }
                }
            }
            Ok((found, (**v).clone()))
        }
        other => Err(Error::invalid(format!(
            "Invalid element access syntax for non-collection column of type {other}"
        ))),
    }
}

/// Field `index` of a user type value (resolved: a tuple of its fields), and its type.
fn field(ty: &CqlType, whole: Option<&Bytes>, index: usize) -> Result<(Option<Bytes>, CqlType)> {
    let CqlType::Tuple(fields) = ty.unfrozen() else {
        return Err(Error::Server(format!("{ty} is not a resolved user type")));
    };
    let field_ty = fields
        .get(index)
        .cloned()
        .ok_or_else(|| Error::Server("a condition names a field the type lacks".into()))?;
    let value = whole.and_then(|v| tuple_field(v, index));
    Ok((value, field_ty))
}

/// Component `index` of a serialized tuple (`<i32 length><bytes>` each, -1 for null);
/// None when absent, null or malformed.
pub(super) fn tuple_field(value: &Bytes, index: usize) -> Option<Bytes> {
    let mut pos = 0usize;
    for i in 0..=index {
        let len = i32::from_be_bytes(value.get(pos..pos + 4)?.try_into().ok()?);
        pos += 4;
        let Ok(len) = usize::try_from(len) else {
            if i == index {
                return None;
            }
            continue;
        };
        let part = value.get(pos..pos.checked_add(len)?)?;
        if i == index {
            return Some(value.slice_ref(part));
        }
        pos += len;
    }
    None
}
