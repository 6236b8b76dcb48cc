//! The build: a walked [`Write`] turned into partition updates with Cassandra's write
//! semantics, and the merging of updates to the same partition (BATCH).

use std::collections::HashMap;

use bytes::Bytes;
use uuid::Uuid;

use super::literal::next_timeuuid;
use super::terms::Val;
use super::walk::{KeyRestriction, KeyValues, Kind, Op, Write};
use super::WriteInput;
use crate::coordinator::read::{encode_written_clustering, WRITTEN_CLUSTERING};
use crate::cql::serialized::{split_collection, validate};
use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};
use crate::ring::{serialize_partition_key, Murmur3Partitioner};
use crate::schema::{ClusteringOrder, ColumnDef, ColumnKind, TableDef};
use crate::storage::cell::{Cell, DeletionTime, RowMarker};
use crate::storage::comparable::{
    decode_clustering, encode_clustering, encode_value, intersect_ranges, prefix_range,
    slice_ranges, ClusteringRange, Column, KeyError, Order, SliceOp,
};
use crate::storage::partition::{ColumnWrite, PartitionId, PartitionUpdate, RowUpdate};
use crate::storage::reconcile::{merge_deletion, merge_liveness};

mod lists;

/// Cassandra's `Attributes.MAX_TTL`: 20 years in seconds.
const MAX_TTL: i32 = 630_720_000;

/// A `USING TIMESTAMP` value, if one was given (unset means none).
pub(super) fn timestamp(val: Option<&Val>) -> Result<Option<i64>> {
    match val {
        None | Some(Val::Unset) => Ok(None),
        Some(Val::Null) => Err(Error::invalid("Invalid null value of timestamp")),
        Some(Val::Bytes(b)) => <[u8; 8]>::try_from(b.as_ref())
            .map(|b| Some(i64::from_be_bytes(b)))
            .map_err(|_| Error::invalid("Invalid timestamp value: expected an 8-byte bigint")),
    }
}

/// The TTL in seconds (0 = none): USING TTL, else the table's `default_time_to_live`. An
/// explicit 0 (or null) means no TTL even when the table has a default.
fn ttl(val: Option<&Val>, table: &TableDef) -> Result<u32> {
    let default = u32::try_from(table.options.default_time_to_live).unwrap_or(0);
    let bytes = match val {
        None | Some(Val::Unset) => return Ok(default),
        Some(Val::Null) => return Ok(0),
        Some(Val::Bytes(b)) => b,
    };
    let ttl = <[u8; 4]>::try_from(bytes.as_ref())
        .map(i32::from_be_bytes)
        .map_err(|_| Error::invalid("Invalid TTL value: expected a 4-byte int"))?;
    if ttl < 0 {
        return Err(Error::invalid(format!(
            "A TTL must be greater or equal to 0, but was {ttl}"
        )));
    }
    if ttl > MAX_TTL {
        return Err(Error::invalid(format!(
            "ttl is too large. requested ({ttl}) maximum ({MAX_TTL})"
        )));
    }
    Ok(ttl.unsigned_abs())
}

/// What one statement's writes are made with.
struct Params<'a> {
    input: &'a WriteInput<'a>,
    keyspace: &'a str,
    timestamp: i64,
    ttl: u32,
}

impl Params<'_> {
    fn resolve(&self, ty: &CqlType) -> CqlType {
        self.input.catalog.resolve_user_types(self.keyspace, ty)
    }

    fn cell(&self, value: Bytes) -> Cell {
        if self.ttl > 0 {
            Cell::expiring(self.timestamp, value, self.ttl, self.input.now_secs)
        } else {
            Cell::live(self.timestamp, value)
        }
    }

    fn tombstone(&self) -> Cell {
        Cell::tombstone(self.timestamp, self.input.now_secs)
    }

    fn deletion(&self, timestamp: i64) -> DeletionTime {
        DeletionTime::new(timestamp, self.input.now_secs)
    }

    fn marker(&self) -> RowMarker {
        if self.ttl > 0 {
            RowMarker::expiring(self.timestamp, self.ttl, self.input.now_secs)
        } else {
            RowMarker::live(self.timestamp)
        }
    }
}

/// One row a statement names.
struct RowKey {
    /// The encoded clustering key.
    clustering: Bytes,
    /// The [`WRITTEN_CLUSTERING`] cell value, when decoding `clustering` would not give
    /// back the values as written (a decimal's scale: 1.50 and 1.5 are one row).
    written: Option<Bytes>,
}

/// Which rows a statement's clustering restrictions select.
enum Rows {
    /// Every clustering column given: these rows.
    Full(Vec<RowKey>),
    /// A prefix of the columns (maybe none), or a slice: not a set of whole rows.
    Partial(Partial),
}

/// Clustering restrictions that name a range of rows: values for the first columns, then
/// maybe slice bounds on the next one.
struct Partial {
    /// The values of each column of the prefix, checked.
    prefix: Vec<Vec<Bytes>>,
    /// Bounds on the column after the prefix (none, one, or one per side), checked.
    slice: Vec<(SliceOp, Bytes)>,
}

impl Partial {
    /// Whether no clustering column is restricted at all.
    fn is_empty(&self) -> bool {
        self.prefix.is_empty() && self.slice.is_empty()
    }
}

/// Applies Cassandra's write semantics to `write`: one update per partition it touches.
pub(super) fn build(
    write: &Write,
    input: &WriteInput,
    batch_timestamp: Option<i64>,
) -> Result<Vec<PartitionUpdate>> {
    let table = write.table;
    let timestamp = timestamp(write.using.timestamp.as_ref())?
        .or(batch_timestamp)
        .unwrap_or(input.timestamp);
    // Cassandra keeps i64::MIN to mean "no timestamp", so no write may carry it.
    if timestamp == i64::MIN {
        return Err(Error::invalid(format!(
            "Out of bound timestamp, must be in [{}, {}]",
            i64::MIN + 1,
            i64::MAX
        )));
    }
    let ttl = match write.kind {
        Kind::Delete => 0,
        _ => ttl(write.using.ttl.as_ref(), table)?,
    };
    let p = Params {
        input,
        keyspace: &table.keyspace,
        timestamp,
        ttl,
    };
    let partitions = partitions(write, &p)?;
    let rows = rows(write, &p)?;
    if let Rows::Full(keys) = &rows {
        // Each partition gets every row: bound the product, not only each side.
        check_combinations(partitions.len().saturating_mul(keys.len()))?;
    }
    let template = shape(write, &p, rows)?;
    check_combinations(
        partitions
            .len()
            .saturating_mul(template.range_deletions.len()),
    )?;
    let mut updates: Vec<PartitionUpdate> = partitions
        .into_iter()
        .map(|partition| PartitionUpdate {
            table: table.id,
            partition,
            ..template.clone()
        })
        .collect();
    lists::resolve(write, &p, &mut updates)?;
    updates.retain(|u| {
        u.deletion.is_some()
            || !u.static_columns.is_empty()
            || u.rows
                .iter()
                .any(|r| r.marker.is_some() || r.deletion.is_some() || !r.columns.is_empty())
            || !u.range_deletions.is_empty()
    });
    Ok(updates)
}

/// What a statement does to each partition it touches.
enum Target {
    /// DELETE of the whole partition.
    Partition,
    /// Only static columns are written.
    StaticOnly,
    /// These rows.
    Rows(Vec<RowKey>),
    /// DELETE of the rows in clustering ranges.
    Ranges(Partial),
}

/// Decides the target from the clustering restrictions, with Cassandra's refusals.
fn target(write: &Write, rows: Rows) -> Result<Target> {
    let kind = write.kind;
    let statics_only = !write.ops.is_empty()
        && write
            .ops
            .iter()
            .all(|op| op.column().kind == ColumnKind::Static);
    let no_clustering = write.table.clustering().is_empty();
    let whole_delete = kind == Kind::Delete && write.ops.is_empty();
    match rows {
        // Without clustering columns a whole-row DELETE deletes the partition, as in
        // Cassandra (the row's clustering is empty).
        Rows::Full(_) if no_clustering && whole_delete => Ok(Target::Partition),
        Rows::Full(_) if statics_only && kind != Kind::Insert && !no_clustering => {
            Err(Error::invalid(format!(
                "Invalid restrictions on clustering columns since the {} statement modifies only static columns",
                kind.name()
            )))
        }
        Rows::Full(keys) => Ok(Target::Rows(keys)),
        Rows::Partial(partial) if partial.is_empty() && statics_only => Ok(Target::StaticOnly),
        Rows::Partial(partial) if partial.is_empty() && whole_delete => Ok(Target::Partition),
        Rows::Partial(_) if kind == Kind::Delete && !whole_delete => Err(Error::invalid(
            "Range deletions are not supported for specific columns",
        )),
        Rows::Partial(partial) if kind == Kind::Delete => Ok(Target::Ranges(partial)),
        Rows::Partial(partial) if !partial.slice.is_empty() => Err(Error::invalid(format!(
            "Slice restrictions are not supported on the clustering columns in {} statements",
            kind.name()
        ))),
        Rows::Partial(_) => Err(Error::invalid(format!(
            "Some clustering keys are missing: {}",
            names(&write.table.clustering(), write)
        ))),
    }
}

/// The update every partition of the statement gets (all but the partition itself).
fn shape(write: &Write, p: &Params, rows: Rows) -> Result<PartitionUpdate> {
    let target = target(write, rows)?;
    let is_static = |op: &&Op| op.column().kind == ColumnKind::Static;
    let (statics, regulars): (Vec<&Op>, Vec<&Op>) = write.ops.iter().partition(is_static);
    let mut update = PartitionUpdate {
        table: write.table.id,
        partition: PartitionId {
            token: 0,
            key: Bytes::new(),
        },
        deletion: None,
        static_columns: writes(&statics, p)?,
        rows: Vec::new(),
        range_deletions: Vec::new(),
    };
    let keys = match target {
        Target::Partition => {
            update.deletion = Some(p.deletion(p.timestamp));
            return Ok(update);
        }
        Target::StaticOnly => return Ok(update),
        Target::Ranges(partial) => {
            let deletion = p.deletion(p.timestamp);
            update.range_deletions = ranges(write, p, &partial)?
                .into_iter()
                .map(|range| (range, deletion))
                .collect();
            return Ok(update);
        }
        Target::Rows(keys) => keys,
    };
    let columns = writes(&regulars, p)?;
    let marker = (write.kind == Kind::Insert).then(|| p.marker());
    let deletion =
        (write.kind == Kind::Delete && write.ops.is_empty()).then(|| p.deletion(p.timestamp));
    let reads_lists = regulars.iter().any(|op| lists::reads_list(op));
    if marker.is_some() || deletion.is_some() || !columns.is_empty() || reads_lists {
        update.rows = keys
            .into_iter()
            .map(|key| {
                let mut row_columns = columns.clone();
                // A DELETE writes no values, so it keeps whatever form the row has.
                if let (Some(written), false) = (key.written, write.kind == Kind::Delete) {
                    row_columns.push(ColumnWrite::Cell {
                        column: WRITTEN_CLUSTERING.into(),
                        path: None,
                        // Live, never expiring: it shows only while the row lives anyway.
                        cell: Cell::live(p.timestamp, written),
                    });
                }
                RowUpdate {
                    clustering: key.clustering,
                    marker,
                    deletion,
                    columns: row_columns,
                }
            })
            .collect();
    }
    Ok(update)
}

/// The names of the key columns `write` leaves unrestricted, comma-separated.
fn names(columns: &[&ColumnDef], write: &Write) -> String {
    columns
        .iter()
        .filter(|c| !write.keys.iter().any(|k| k.column.name == c.name))
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn restriction<'w>(write: &'w Write, column: &ColumnDef) -> Option<&'w KeyRestriction<'w>> {
    write.keys.iter().find(|k| k.column.name == column.name)
}

/// The longest partition key, and clustering value, Cassandra stores: their lengths are
/// written as unsigned shorts.
const MAX_KEY_LENGTH: usize = 65_535;

fn key_too_long(len: usize) -> Error {
    Error::invalid(format!(
        "Key length of {len} is longer than maximum of {MAX_KEY_LENGTH}"
    ))
}

/// Every partition the statement touches, each once.
fn partitions(write: &Write, p: &Params) -> Result<Vec<PartitionId>> {
    let columns = write.table.partition_key();
    let mut per_column = Vec::with_capacity(columns.len());
    for column in &columns {
        let Some(r) = restriction(write, column) else {
            return Err(Error::invalid(format!(
                "Some partition key parts are missing: {}",
                names(&columns, write)
            )));
        };
        per_column.push(key_values(r, p)?);
    }
    let mut ids: Vec<PartitionId> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for components in product(&per_column)? {
        let parts: Vec<&[u8]> = components.iter().map(|b| b.as_ref()).collect();
        if let [single] = parts.as_slice() {
            if single.is_empty() {
                return Err(Error::invalid("Key may not be empty"));
            }
        }
        let too_long = |e: crate::ring::KeyTooLong| key_too_long(e.len);
        let key = serialize_partition_key(&parts).map_err(too_long)?;
        // A composite key is stored with a u16 length too, so its whole length is bounded.
        if key.len() > MAX_KEY_LENGTH {
            return Err(key_too_long(key.len()));
        }
        let token = Murmur3Partitioner::token(&key).value();
        let id = PartitionId {
            token,
            key: key.into(),
        };
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The partitions `write` names and, when it names whole rows, their encoded clusterings:
/// what a conditional write's read-before-write looks at (`coordinator/lwt/`).
pub(super) fn named_keys(
    write: &Write,
    input: &WriteInput,
) -> Result<(Vec<PartitionId>, Option<Vec<Bytes>>)> {
    let p = Params {
        input,
        keyspace: &write.table.keyspace,
        timestamp: input.timestamp,
        ttl: 0,
    };
    let rows = match rows(write, &p)? {
        Rows::Full(keys) => Some(keys.into_iter().map(|k| k.clustering).collect()),
        Rows::Partial(_) => None,
    };
    Ok((partitions(write, &p)?, rows))
}

/// The rows the clustering restrictions select.
fn rows(write: &Write, p: &Params) -> Result<Rows> {
    let columns = write.table.clustering();
    let mut per_column = Vec::new();
    let mut slice: Option<Vec<(SliceOp, Bytes)>> = None;
    let mut unrestricted: Option<&ColumnDef> = None;
    for column in &columns {
        let Some(r) = restriction(write, column) else {
            unrestricted = unrestricted.or(Some(column));
            continue;
        };
        if let Some(before) = unrestricted {
            return Err(Error::invalid(format!(
                "PRIMARY KEY column \"{}\" cannot be restricted as preceding column \"{}\" is not restricted",
                column.name, before.name
            )));
        }
        if slice.is_some() {
            return Err(Error::invalid(format!(
                "Clustering column \"{}\" cannot be restricted (preceding column is restricted by a non-EQ relation)",
                column.name
            )));
        }
        match &r.values {
            KeyValues::Slice(bounds) => slice = Some(slice_bounds(r, bounds, p)?),
            _ => per_column.push(key_values(r, p)?),
        }
    }
    if slice.is_some() || per_column.len() < columns.len() {
        return Ok(Rows::Partial(Partial {
            prefix: per_column,
            slice: slice.unwrap_or_default(),
        }));
    }
    let types = clustering_types(write, p);
    let mut keys: Vec<RowKey> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for values in product(&per_column)? {
        let key = row_key(&types, &values)?;
        if seen.insert(key.clustering.clone()) {
            keys.push(key);
        }
    }
    Ok(Rows::Full(keys))
}

/// The clustering columns' types (user types resolved) and orders.
fn clustering_types(write: &Write, p: &Params) -> Vec<(CqlType, Order)> {
    write
        .table
        .clustering()
        .iter()
        .map(|c| {
            let order = match c.order {
                ClusteringOrder::Desc => Order::Desc,
                _ => Order::Asc,
            };
            (p.resolve(&c.ty), order)
        })
        .collect()
}

/// A slice restriction's bounds, each value checked.
fn slice_bounds(
    r: &KeyRestriction,
    bounds: &[(SliceOp, Val)],
    p: &Params,
) -> Result<Vec<(SliceOp, Bytes)>> {
    let def = r.column;
    let ty = p.resolve(&def.ty);
    bounds
        .iter()
        .map(|(op, value)| match value {
            Val::Null => Err(Error::invalid(format!(
                "Invalid null value in condition for column {}",
                def.name
            ))),
            Val::Unset => Err(unset(def)),
            Val::Bytes(b) => Ok((*op, checked(&ty, b, def)?)),
        })
        .collect()
}

/// The clustering ranges a range deletion covers: for each combination of prefix values,
/// the prefix's rows narrowed by every slice bound. Empty ranges (`c > 5 AND c < 3`) are
/// dropped; duplicates from repeated IN values are written once.
fn ranges(write: &Write, p: &Params, partial: &Partial) -> Result<Vec<ClusteringRange>> {
    let types = clustering_types(write, p);
    let columns: Vec<Column<'_>> = types.iter().map(|(ty, order)| (ty, *order)).collect();
    let invalid = |e: KeyError| Error::invalid(format!("Invalid clustering key: {e}"));
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for prefix in product(&partial.prefix)? {
        let values: Vec<Option<&[u8]>> = prefix.iter().map(|v| Some(v.as_ref())).collect();
        let mut pieces = vec![prefix_range(&columns, &values).map_err(invalid)?];
        for (op, bound) in &partial.slice {
            let slice =
                slice_ranges(&columns, &values, *op, &[Some(bound.as_ref())]).map_err(invalid)?;
            pieces = intersect_ranges(&pieces, &slice);
        }
        out.extend(pieces.into_iter().filter(|r| seen.insert(r.clone())));
    }
    Ok(out)
}

/// The row of one combination of clustering values: its encoded key, and the values as
/// written when decoding the key would not give them back.
fn row_key(types: &[(CqlType, Order)], values: &[Bytes]) -> Result<RowKey> {
    let components: Vec<_> = types
        .iter()
        .zip(values)
        .map(|((ty, order), v)| (ty, *order, Some(v.as_ref())))
        .collect();
    let mut out = Vec::new();
    encode_clustering(&components, &mut out)
        .map_err(|e| Error::invalid(format!("Invalid clustering key: {e}")))?;
    let columns: Vec<Column<'_>> = types.iter().map(|(ty, order)| (ty, *order)).collect();
    // Compared generically: any type whose encoding is canonical by value qualifies.
    let round_trips = decode_clustering(&columns, &out).is_ok_and(|decoded| {
        decoded.values.len() == values.len()
            && decoded
                .values
                .iter()
                .zip(values)
                .all(|(d, v)| d.as_deref() == Some(v.as_ref()))
    });
    let written = (!round_trips).then(|| {
        let parts: Vec<Option<&[u8]>> = values.iter().map(|v| Some(v.as_ref())).collect();
        encode_written_clustering(&parts)
    });
    Ok(RowKey {
        clustering: Bytes::from(out),
        written,
    })
}

/// The values a key restriction gives its column, each checked.
fn key_values(r: &KeyRestriction, p: &Params) -> Result<Vec<Bytes>> {
    let def = r.column;
    let ty = p.resolve(&def.ty);
    let one = |v: &Val| -> Result<Bytes> {
        match v {
            Val::Null => Err(Error::invalid(format!(
                "Invalid null value in condition for column {}",
                def.name
            ))),
            Val::Unset => Err(unset(def)),
            Val::Bytes(b) if b.len() > MAX_KEY_LENGTH => Err(key_too_long(b.len())),
            Val::Bytes(b) => checked(&ty, b, def),
        }
    };
    match &r.values {
        KeyValues::Eq(v) => Ok(vec![one(v)?]),
        KeyValues::In(values) => values.iter().map(one).collect(),
        KeyValues::InList(Val::Bytes(list)) => {
            let list_ty = CqlType::List(Box::new(ty.clone()));
            checked(&list_ty, list, def)?;
            let elements =
                split_collection(&list_ty, list).map_err(|e| invalid_value(def, &e.0))?;
            elements
                .into_iter()
                .map(|(_, v)| one(&Val::Bytes(v)))
                .collect()
        }
        KeyValues::InList(Val::Null) => {
            Err(Error::invalid("Invalid null value for IN restriction"))
        }
        KeyValues::InList(Val::Unset) => Err(unset(def)),
        KeyValues::Slice(_) => Ok(Vec::new()),
    }
}

/// Most partitions or rows one statement's IN restrictions may name (the read planner's
/// bound too): past it the statement is refused rather than allowed to build a huge batch.
const MAX_COMBINATIONS: usize = 100_000;

fn check_combinations(total: usize) -> Result<()> {
    if total > MAX_COMBINATIONS {
        return Err(Error::invalid(format!(
            "IN restrictions select {total} combinations, more than the {MAX_COMBINATIONS} allowed"
        )));
    }
    Ok(())
}

/// Every combination of one value per column, in order.
fn product(per_column: &[Vec<Bytes>]) -> Result<Vec<Vec<Bytes>>> {
    let total = per_column
        .iter()
        .try_fold(1usize, |n, values| n.checked_mul(values.len()))
        .unwrap_or(usize::MAX);
    check_combinations(total)?;
    Ok(per_column.iter().fold(vec![Vec::new()], |acc, values| {
        acc.iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect()
    }))
}

/// The column writes of `ops`, in order.
fn writes(ops: &[&Op], p: &Params) -> Result<Vec<ColumnWrite>> {
    let mut out = Vec::new();
    for op in ops {
        op_writes(op, p, &mut out)?;
    }
    Ok(out)
}

fn op_writes(op: &Op, p: &Params, out: &mut Vec<ColumnWrite>) -> Result<()> {
    let def = op.column();
    let ty = p.resolve(&def.ty);
    let whole = |cell: Cell| ColumnWrite::Cell {
        column: def.name.clone(),
        path: None,
        cell,
    };
    let collection_deletion = |timestamp: i64| ColumnWrite::CollectionDeletion {
        column: def.name.clone(),
        deletion: p.deletion(timestamp),
    };
    match op {
        Op::Set(_, Val::Unset) | Op::Add(_, Val::Unset | Val::Null) => {}
        Op::Set(_, value) if def.ty.is_multicell() => {
            // ts - 1 so the new elements, written at ts, survive the overwrite.
            out.push(collection_deletion(p.timestamp.saturating_sub(1)));
            if let Val::Bytes(b) = value {
                let b = checked(&ty, b, def)?;
                element_cells(def, &ty, &b, p, out)?;
            }
        }
        Op::Set(_, Val::Null) => out.push(whole(p.tombstone())),
        Op::Set(_, Val::Bytes(b)) => {
            let b = checked(&ty, b, def)?;
            out.push(whole(p.cell(b)));
        }
        Op::Add(_, Val::Bytes(b)) => {
            let b = checked(&ty, b, def)?;
            element_cells(def, &ty, &b, p, out)?;
        }
        Op::Prepend(_, Val::Bytes(b)) => {
            let b = checked(&ty, b, def)?;
            lists::prepend_cells(def, &ty, &b, p, out)?;
        }
        Op::Prepend(..) => {}
        Op::Delete(_) if def.ty.is_multicell() => out.push(collection_deletion(p.timestamp)),
        Op::Delete(_) => out.push(whole(p.tombstone())),
        _ => element_op_writes(op, &ty, p, out)?,
    }
    Ok(())
}

/// The writes of an operation on single elements: cells or tombstones at element paths.
fn element_op_writes(op: &Op, ty: &CqlType, p: &Params, out: &mut Vec<ColumnWrite>) -> Result<()> {
    if lists::reads_list(op) {
        // Written once the stored list is read (`lists::resolve`).
        return Ok(());
    }
    let def = op.column();
    let mut put = |path: Bytes, value: &Val, value_ty: &CqlType| -> Result<()> {
        let cell = match value {
            Val::Unset => return Ok(()),
            Val::Null => p.tombstone(),
            Val::Bytes(v) => p.cell(checked(value_ty, v, def)?),
        };
        out.push(ColumnWrite::Cell {
            column: def.name.clone(),
            path: Some(path),
            cell,
        });
        Ok(())
    };
    let (key_ty, value_ty) = match ty {
        CqlType::Map(k, v) => (Some(k.as_ref()), Some(v.as_ref())),
        CqlType::Set(e) => (Some(e.as_ref()), None),
        _ => (None, None),
    };
    let list_refused = || Error::not_supported("Addressing list elements by index or value", None);
    match op {
        Op::Remove(_, Val::Unset | Val::Null) => {}
        Op::Remove(_, Val::Bytes(b)) => {
            let key_ty = key_ty.ok_or_else(list_refused)?;
            let set = CqlType::Set(Box::new(key_ty.clone()));
            let b = checked(&set, b, def)?;
            for (element, _) in split_collection(&set, &b).map_err(|e| invalid_value(def, &e.0))? {
                put(path(key_ty, &element, def)?, &Val::Null, key_ty)?;
            }
        }
        Op::SetElement(_, key, value) => {
            let (key_ty, value_ty) = key_ty.zip(value_ty).ok_or_else(list_refused)?;
            let key = element_key(key, key_ty, def)?;
            put(path(key_ty, &key, def)?, value, value_ty)?;
        }
        Op::DeleteElement(_, key) => {
            let key_ty = key_ty.ok_or_else(list_refused)?;
            let key = element_key(key, key_ty, def)?;
            put(path(key_ty, &key, def)?, &Val::Null, key_ty)?;
        }
        Op::SetField(_, index, value) => {
            let field_ty = match ty {
                CqlType::Tuple(fields) => fields.get(*index),
                _ => None,
            };
            let field_ty = field_ty.ok_or_else(|| Error::invalid("Unknown user type field"))?;
            put(field_path(*index)?, value, field_ty)?;
        }
        Op::DeleteField(_, index) => put(field_path(*index)?, &Val::Null, ty)?,
        Op::Set(..) | Op::Add(..) | Op::Prepend(..) | Op::Delete(_) => {}
    }
    Ok(())
}

/// One cell per element of a non-frozen collection or user type value.
fn element_cells(
    def: &ColumnDef,
    ty: &CqlType,
    bytes: &Bytes,
    p: &Params,
    out: &mut Vec<ColumnWrite>,
) -> Result<()> {
    let mut push = |path: Bytes, value: Bytes| {
        out.push(ColumnWrite::Cell {
            column: def.name.clone(),
            path: Some(path),
            cell: p.cell(value),
        })
    };
    let timeuuid = CqlType::Native(NativeType::Timeuuid);
    match ty {
        CqlType::List(_) => {
            for (_, value) in split_collection(ty, bytes).map_err(|e| invalid_value(def, &e.0))? {
                push(path(&timeuuid, &next_timeuuid(), def)?, value);
            }
        }
        CqlType::Set(e) | CqlType::Map(e, _) => {
            for (key, value) in split_collection(ty, bytes).map_err(|e| invalid_value(def, &e.0))? {
                push(path(e, &key, def)?, value);
            }
        }
        CqlType::Tuple(_) => {
            for (index, field) in tuple_fields(bytes).into_iter().enumerate() {
                if let Some(field) = field {
                    push(field_path(index)?, field);
                }
            }
        }
        _ => return Err(invalid_value(def, "not a collection or user type")),
    }
    Ok(())
}

/// The fields of a validated tuple value (None for null fields).
fn tuple_fields(bytes: &Bytes) -> Vec<Option<Bytes>> {
    let mut fields = Vec::new();
    let mut rest = bytes.clone();
    while rest.len() >= 4 {
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let _ = rest.split_to(4);
        match usize::try_from(len) {
            Ok(len) if len <= rest.len() => fields.push(Some(rest.split_to(len))),
            Ok(_) => break,
            Err(_) => fields.push(None),
        }
    }
    fields
}

/// The cell path of a collection element: its key in the byte-comparable encoding.
fn path(ty: &CqlType, key: &[u8], def: &ColumnDef) -> Result<Bytes> {
    let mut out = Vec::new();
    encode_value(ty, key, &mut out).map_err(|e| invalid_value(def, &e.to_string()))?;
    Ok(out.into())
}

/// The cell path of a non-frozen user type field: its position as a smallint.
fn field_path(index: usize) -> Result<Bytes> {
    let position = i16::try_from(index).map_err(|_| Error::invalid("Too many user type fields"))?;
    let mut out = Vec::new();
    encode_value(
        &CqlType::Native(NativeType::Smallint),
        &position.to_be_bytes(),
        &mut out,
    )
    .map_err(|e| Error::Server(e.to_string()))?;
    Ok(out.into())
}

fn element_key(key: &Val, ty: &CqlType, def: &ColumnDef) -> Result<Bytes> {
    match key {
        Val::Null => Err(Error::invalid(format!(
            "Invalid null key for collection column {}",
            def.name
        ))),
        Val::Unset => Err(Error::invalid(format!(
            "Invalid unset key for collection column {}",
            def.name
        ))),
        Val::Bytes(b) => checked(ty, b, def),
    }
}

/// `bytes` validated as a `ty` and in the form Cassandra stores (sets and maps sorted,
/// `serialized::normalize`).
fn checked(ty: &CqlType, bytes: &Bytes, def: &ColumnDef) -> Result<Bytes> {
    validate(ty, bytes).map_err(|e| invalid_value(def, &e.0))?;
    crate::cql::serialized::normalize(ty, bytes).map_err(|e| invalid_value(def, &e.0))
}

fn invalid_value(def: &ColumnDef, reason: &str) -> Error {
    Error::invalid(format!("Invalid value for column {}: {reason}", def.name))
}

fn unset(def: &ColumnDef) -> Error {
    Error::invalid(format!("Invalid unset value for column {}", def.name))
}

/// Merges updates of the same (table, partition) into one, keeping every write: rows with
/// the same clustering become one row (markers and deletions reconciled, column writes
/// appended), so each partition's mutations apply as one atomic unit.
pub(crate) fn merge_updates(updates: Vec<PartitionUpdate>) -> Vec<PartitionUpdate> {
    let mut merged: Vec<PartitionUpdate> = Vec::with_capacity(updates.len());
    let mut index: HashMap<(Uuid, PartitionId), usize> = HashMap::new();
    for update in updates {
        let key = (update.table, update.partition.clone());
        match index.get(&key).and_then(|&i| merged.get_mut(i)) {
            Some(into) => merge_into(into, update),
            None => {
                index.insert(key, merged.len());
                merged.push(update);
            }
        }
    }
    merged
}

fn merge_into(into: &mut PartitionUpdate, from: PartitionUpdate) {
    into.deletion = merge_option(into.deletion, from.deletion, merge_deletion);
    into.static_columns.extend(from.static_columns);
    // Two deletions of one range become two operands of one key, which keeps the newer.
    into.range_deletions.extend(from.range_deletions);
    for row in from.rows {
        match into
            .rows
            .iter_mut()
            .find(|r| r.clustering == row.clustering)
        {
            Some(existing) => {
                existing.marker = merge_option(existing.marker, row.marker, merge_liveness);
                existing.deletion = merge_option(existing.deletion, row.deletion, merge_deletion);
                existing.columns.extend(row.columns);
            }
            None => into.rows.push(row),
        }
    }
}

fn merge_option<T: Copy>(a: Option<T>, b: Option<T>, merge: fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(merge(a, b)),
        (a, b) => a.or(b),
    }
}
