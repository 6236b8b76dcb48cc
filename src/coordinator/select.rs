//! SELECT execution over rows from a [`Source`]: restrictions, ordering, limits,
//! projection and paging. System tables are answered here from rows computed in memory;
//! user tables share the plan cache, binding and projection, and read their rows from the
//! replica (`table_select.rs`).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::bind::{bind_select, Bound, BoundSelect};
use super::plan::{EncodedColumns, EncodedRows, PlanSlot, PlannedRows, SelectPlan};
use super::projection::{counted_columns, eval, Counts, Expr, Projection, RowView};
use super::source::{Cell, Row, Source};
use crate::cql::ast::{Operator, Order, Select};
use crate::cql::types::{CqlType, NativeType};
use crate::cql::value::CqlValue;
use crate::error::{Error, Result};
use crate::protocol::{ColumnSpec, DataType, QueryParameters, ResultMetadata, Rows};
use crate::ring::Murmur3Partitioner;
use crate::schema::{Catalog, ColumnKind, DescribeResult, TableDef};

/// Runs `select` and returns one page of rows. The statement's plan is taken from
/// `plans` when it was made for this keyspace and schema version, and made otherwise.
pub(super) async fn execute(
    select: &Select,
    params: &QueryParameters,
    session_keyspace: Option<&str>,
    source: &Source<'_>,
    max_unpaged_rows: usize,
    plans: &PlanSlot,
) -> Result<PlannedRows> {
    let keyspace = select
        .table
        .keyspace
        .as_deref()
        .or(session_keyspace)
        .ok_or_else(no_keyspace)?;
    let table = source.table(keyspace, &select.table.name)?;
    refuse_unsupported(select)?;
    let cached = plans.get(keyspace, source.schema_version);
    if cached.is_none() && !source.is_user_table(table) {
        // A cached plan has passed this check against the same schema. User tables' rules
        // are the read planner's (`restrict/`), with Cassandra's more specific messages.
        check_restrictions(select, table)?;
    }
    let bound = bind_select(select, table, source.catalog, &params.values.values)?;
    let plan = match cached {
        Some(plan) => plan,
        None => {
            let plan = Arc::new(plan_select(select, table, source)?);
            plans.set(plan.clone());
            plan
        }
    };
    if source.is_user_table(table) {
        return super::table_select::execute(select, params, table, source, &plan, &bound).await;
    }
    let mut rows: Vec<Row> = source
        .rows(table)
        .into_iter()
        .filter(|r| matches(&bound, table, r))
        .collect();
    order_rows(select, table, &mut rows)?;
    let rows = apply_limits(rows, &bound, table);
    let output = project(&plan.exprs, rows, select.distinct, table)?;
    if params.page_size.is_none() && output.len() > max_unpaged_rows {
        return Err(Error::invalid(format!(
            "Unpaged query would return more than {max_unpaged_rows} rows; use paging (a page size) or a LIMIT"
        )));
    }
    let (rows, paging_state) = page(output, params)?;
    Ok(PlannedRows {
        columns: plan.columns.clone(),
        paging_state,
        no_metadata: params.skip_metadata,
        rows: EncodedRows::from_cells(&rows),
    })
}

/// Clauses this build parses but does not execute: refused, never silently ignored.
fn refuse_unsupported(select: &Select) -> Result<()> {
    if select.json {
        return Err(Error::not_supported("SELECT JSON", None));
    }
    if !select.group_by.is_empty() {
        return Err(Error::not_supported("GROUP BY", None));
    }
    Ok(())
}

/// Resolves the select clause of `select` against `table`.
fn plan_select(select: &Select, table: &TableDef, source: &Source) -> Result<SelectPlan> {
    let projection = Projection::new(&select.items, table, source.catalog)?;
    Ok(SelectPlan {
        id: super::plan::next_plan_id(),
        schema_version: source.schema_version,
        keyspace: table.keyspace.clone(),
        columns: Arc::new(EncodedColumns::new(&projection.metadata)),
        exprs: projection.exprs,
        user_table: std::sync::OnceLock::new(),
    })
}

/// Wraps a DESCRIBE result as a (paged) Rows result.
pub(super) fn describe_rows(result: DescribeResult, params: &QueryParameters) -> Result<Rows> {
    let columns = result
        .columns
        .iter()
        .map(|(name, ty)| ColumnSpec {
            keyspace: "system".into(),
            table: "describe".into(),
            name: name.clone(),
            data_type: native_data_type(ty),
        })
        .collect::<Vec<_>>();
    let rows = result
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| v.as_ref().map(CqlValue::to_bytes))
                .collect()
        })
        .collect();
    let (rows, paging_state) = page(rows, params)?;
    let metadata = ResultMetadata {
        column_count: columns.len(),
        columns,
        paging_state,
        no_metadata: params.skip_metadata,
    };
    Ok(Rows { metadata, rows })
}

fn no_keyspace() -> Error {
    Error::invalid(
        "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename",
    )
}

/// Cassandra's rules for which restrictions need ALLOW FILTERING.
fn check_restrictions(select: &Select, table: &TableDef) -> Result<()> {
    if select.allow_filtering {
        return Ok(());
    }
    let restricted = |kind: ColumnKind| {
        select.where_clause.iter().any(|r| match r {
            crate::cql::ast::Relation::Column { column, .. } => {
                table.column(column).is_some_and(|c| c.kind == kind)
            }
            _ => false,
        })
    };
    let pk_complete = table.partition_key().iter().all(|pk| {
        select.where_clause.iter().any(|r| {
            matches!(r, crate::cql::ast::Relation::Column { column, op: Operator::Eq | Operator::In, .. } if *column == pk.name)
        })
    });
    let filters_regular = restricted(ColumnKind::Regular) || restricted(ColumnKind::Static);
    let filters_clustering = restricted(ColumnKind::Clustering) && !pk_complete;
    if filters_regular || filters_clustering {
        return Err(Error::invalid(
            "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING",
        ));
    }
    Ok(())
}

fn matches(bound: &BoundSelect, table: &TableDef, row: &Row) -> bool {
    bound.relations.iter().all(|relation| match relation {
        Bound::Column { index, op, values } => {
            let ty = &table.columns[*index].ty;
            column_matches(row.get(*index).and_then(Option::as_ref), ty, *op, values)
        }
        Bound::Token { op, value } => {
            let token = row_token(table, row);
            compare_op(*op, token.cmp(value))
        }
    })
}

fn column_matches(
    cell: Option<&Cell>,
    ty: &CqlType,
    op: Operator,
    values: &[Option<Bytes>],
) -> bool {
    let Some(cell) = cell else { return false };
    match op {
        Operator::Eq => values
            .first()
            .and_then(Option::as_deref)
            .is_some_and(|v| cell.serializes_to(v)),
        Operator::In => values
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| cell.serializes_to(v))),
        Operator::Contains | Operator::ContainsKey => {
            let wanted = values.first().and_then(Option::as_deref);
            contains(cell.value(), op, wanted)
        }
        op => {
            let Some(Some(value)) = values.first() else {
                return false;
            };
            match decode_native(ty, value) {
                Some(v) => cell.value().compare(&v).is_some_and(|o| compare_op(op, o)),
                None => false,
            }
        }
    }
}

fn contains(cell: &CqlValue, op: Operator, wanted: Option<&[u8]>) -> bool {
    let Some(wanted) = wanted else { return false };
    let eq = |v: &CqlValue| v.to_bytes()[..] == *wanted;
    match (cell, op) {
        (CqlValue::List(items) | CqlValue::Set(items), Operator::Contains) => items.iter().any(eq),
        (CqlValue::Map(entries), Operator::Contains) => entries.iter().any(|(_, v)| eq(v)),
        (CqlValue::Map(entries), Operator::ContainsKey) => entries.iter().any(|(k, _)| eq(k)),
        _ => false,
    }
}

fn compare_op(op: Operator, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Operator::Lt => ordering == Less,
        Operator::Le => ordering != Greater,
        Operator::Gt => ordering == Greater,
        Operator::Ge => ordering != Less,
        Operator::Eq => ordering == Equal,
        Operator::Ne | Operator::IsNot => ordering != Equal,
        _ => false,
    }
}

/// Decodes a serialized native value for ordered comparisons.
fn decode_native(ty: &CqlType, bytes: &[u8]) -> Option<CqlValue> {
    let CqlType::Native(native) = ty else {
        return None;
    };
    let arr8 = || <[u8; 8]>::try_from(bytes).ok();
    let arr4 = || <[u8; 4]>::try_from(bytes).ok();
    Some(match native {
        NativeType::Text => CqlValue::Text(String::from_utf8(bytes.to_vec()).ok()?),
        NativeType::Ascii => CqlValue::Ascii(String::from_utf8(bytes.to_vec()).ok()?),
        NativeType::Int => CqlValue::Int(i32::from_be_bytes(arr4()?)),
        NativeType::Bigint | NativeType::Counter => CqlValue::Bigint(i64::from_be_bytes(arr8()?)),
        NativeType::Timestamp => CqlValue::Timestamp(i64::from_be_bytes(arr8()?)),
        NativeType::Double => CqlValue::Double(f64::from_be_bytes(arr8()?)),
        NativeType::Float => CqlValue::Float(f32::from_be_bytes(arr4()?)),
        _ => return None,
    })
}

/// The Murmur3 token of a row's partition key.
fn row_token(table: &TableDef, row: &Row) -> i64 {
    let parts: Vec<Bytes> = table
        .columns
        .iter()
        .zip(row)
        .filter(|(c, _)| c.kind == ColumnKind::PartitionKey)
        .map(|(_, v)| v.as_ref().map(Cell::to_bytes).unwrap_or_default())
        .collect();
    let refs: Vec<&[u8]> = parts.iter().map(|b| b.as_ref()).collect();
    Murmur3Partitioner::token_for_components(&refs).map_or(i64::MIN, |t| t.0)
}

/// Rows come from the source in clustering order; ORDER BY may only reverse it.
fn order_rows(select: &Select, table: &TableDef, rows: &mut [Row]) -> Result<()> {
    let Some((first, order)) = select.order_by.first() else {
        return Ok(());
    };
    let clustering = table.clustering();
    let Some(column) = clustering.first() else {
        return Err(Error::invalid(
            "Order by is currently only supported on the clustered columns of the PRIMARY KEY",
        ));
    };
    for (i, (name, _)) in select.order_by.iter().enumerate() {
        if clustering.get(i).map(|c| &c.name) != Some(name) {
            return Err(Error::invalid(format!(
                "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY (got {name})"
            )));
        }
    }
    let natural = if column.order == crate::schema::ClusteringOrder::Desc {
        Order::Desc
    } else {
        Order::Asc
    };
    if *order != natural && *first == column.name {
        rows.reverse();
    }
    Ok(())
}

/// PER PARTITION LIMIT then LIMIT.
fn apply_limits(rows: Vec<Row>, bound: &BoundSelect, table: &TableDef) -> Vec<Row> {
    let rows: Vec<Row> = match bound.per_partition_limit {
        None => rows,
        Some(per) => {
            let key = |r: &Row| -> Vec<Option<Bytes>> {
                table
                    .columns
                    .iter()
                    .zip(r)
                    .filter(|(c, _)| c.kind == ColumnKind::PartitionKey)
                    .map(|(_, v)| v.as_ref().map(Cell::to_bytes))
                    .collect()
            };
            let mut out: Vec<Row> = Vec::with_capacity(rows.len());
            let mut current: Option<(Vec<Option<Bytes>>, usize)> = None;
            for row in rows {
                let k = key(&row);
                let seen = match &mut current {
                    Some((ck, n)) if *ck == k => {
                        *n += 1;
                        *n
                    }
                    _ => {
                        current = Some((k, 1));
                        1
                    }
                };
                if seen <= per {
                    out.push(row);
                }
            }
            out
        }
    };
    match bound.limit {
        Some(limit) => rows.into_iter().take(limit).collect(),
        None => rows,
    }
}

/// The result metadata `select` produces on `table` (what PREPARE announces).
pub(super) fn result_metadata(
    select: &Select,
    table: &TableDef,
    catalog: &Catalog,
) -> Result<ResultMetadata> {
    Projection::new(&select.items, table, catalog).map(|p| p.metadata)
}

/// A system table's row as expressions read it.
struct SystemRow<'a> {
    row: &'a Row,
    table: &'a TableDef,
}

impl RowView for SystemRow<'_> {
    fn value(&self, i: usize) -> Option<Bytes> {
        self.row.get(i)?.as_ref().map(Cell::to_bytes)
    }

    fn token(&self) -> i64 {
        row_token(self.table, self.row)
    }

    // System tables' values are computed, not written: they have no cell metadata.
    fn meta(&self, _i: usize) -> Option<(i64, Option<i32>)> {
        None
    }

    fn field_meta(&self, _i: usize, _field: usize) -> Option<(i64, Option<i32>)> {
        None
    }

    fn json(&self, i: usize) -> Option<String> {
        self.row.get(i)?.as_ref().map(|c| c.value().to_json())
    }
}

/// Computes the output cells of `rows`.
fn project(
    exprs: &[Expr],
    rows: Vec<Row>,
    distinct: bool,
    table: &TableDef,
) -> Result<Vec<Vec<Option<Bytes>>>> {
    let eval_row = |row: Option<&Row>, counts: &Counts| {
        let view = row.map(|row| SystemRow { row, table });
        exprs
            .iter()
            .map(|e| eval(e, view.as_ref().map(|v| v as &dyn RowView), counts))
            .collect::<Result<Vec<_>>>()
    };
    if exprs.iter().any(Expr::is_aggregate) {
        let counts = Counts {
            rows: rows.len() as i64,
            columns: counted_columns(exprs)
                .into_iter()
                .map(|c| {
                    let present = rows
                        .iter()
                        .filter(|r| r.get(c).is_some_and(Option::is_some));
                    (c, present.count() as i64)
                })
                .collect(),
        };
        return Ok(vec![eval_row(rows.first(), &counts)?]);
    }
    let none = Counts::default();
    let mut out = rows
        .iter()
        .map(|row| eval_row(Some(row), &none))
        .collect::<Result<Vec<_>>>()?;
    if distinct {
        out.dedup();
    }
    Ok(out)
}

/// The wire type of a column type, with user types resolved from the catalog.
pub(super) fn data_type(ty: &CqlType, keyspace: &str, catalog: &Catalog) -> DataType {
    let rec = |t: &CqlType| Box::new(data_type(t, keyspace, catalog));
    match ty {
        CqlType::Native(n) => native(*n),
        CqlType::List(e) => DataType::List(rec(e)),
        CqlType::Set(e) => DataType::Set(rec(e)),
        CqlType::Map(k, v) => DataType::Map(rec(k), rec(v)),
        CqlType::Tuple(items) => DataType::Tuple(
            items
                .iter()
                .map(|t| data_type(t, keyspace, catalog))
                .collect(),
        ),
        CqlType::Frozen(inner) => data_type(inner, keyspace, catalog),
        CqlType::Custom(class) => DataType::Custom(class.clone()),
        CqlType::UserType { keyspace: ks, name } => {
            let ks = ks.as_deref().unwrap_or(keyspace);
            let fields = catalog
                .user_type(ks, name)
                .map(|udt| {
                    udt.fields
                        .iter()
                        .map(|(f, t)| (f.clone(), data_type(t, ks, catalog)))
                        .collect()
                })
                .unwrap_or_default();
            DataType::Udt {
                keyspace: ks.to_owned(),
                name: name.clone(),
                fields,
            }
        }
    }
}

fn native_data_type(ty: &CqlType) -> DataType {
    match ty {
        CqlType::Native(n) => native(*n),
        _ => DataType::Varchar,
    }
}

fn native(n: NativeType) -> DataType {
    use NativeType as N;
    match n {
        N::Ascii => DataType::Ascii,
        N::Bigint => DataType::Bigint,
        N::Blob => DataType::Blob,
        N::Boolean => DataType::Boolean,
        N::Counter => DataType::Counter,
        N::Date => DataType::Date,
        N::Decimal => DataType::Decimal,
        N::Double => DataType::Double,
        N::Duration => DataType::Duration,
        N::Float => DataType::Float,
        N::Inet => DataType::Inet,
        N::Int => DataType::Int,
        N::Smallint => DataType::Smallint,
        N::Text => DataType::Varchar,
        N::Time => DataType::Time,
        N::Timestamp => DataType::Timestamp,
        N::Timeuuid => DataType::Timeuuid,
        N::Tinyint => DataType::Tinyint,
        N::Uuid => DataType::Uuid,
        N::Varint => DataType::Varint,
    }
}

/// Paging state format, version 1: `0x01 | offset: u64 BE | check: u32 BE` where `check`
/// ties the state to the row count it was cut from, so a forged or foreign state is
/// refused rather than trusted. User tables page by storage position instead (`paging.rs`).
const PAGING_STATE_VERSION: u8 = 1;

/// Output rows: serialized cells, `None` for null.
type OutputRows = Vec<Vec<Option<Bytes>>>;

/// Cuts one page from `rows`, with the paging state of the next when more remain.
fn page(rows: OutputRows, params: &QueryParameters) -> Result<(OutputRows, Option<Bytes>)> {
    let total = rows.len();
    let start = match &params.paging_state {
        None => 0,
        Some(state) => decode_paging_state(state, total)?,
    };
    let page_size = match params.page_size {
        Some(n) if n > 0 => n as usize,
        _ => usize::MAX,
    };
    let end = start.saturating_add(page_size).min(total);
    let paging_state = (end < total).then(|| encode_paging_state(end, total));
    let rows = if start == 0 && end == total {
        rows
    } else {
        rows.into_iter().skip(start).take(end - start).collect()
    };
    Ok((rows, paging_state))
}

fn check_word(offset: usize, total: usize) -> u32 {
    let mixed =
        (offset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (total as u64).rotate_left(29);
    (mixed >> 16) as u32
}

fn encode_paging_state(offset: usize, total: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(13);
    buf.put_u8(PAGING_STATE_VERSION);
    buf.put_u64(offset as u64);
    buf.put_u32(check_word(offset, total));
    buf.freeze()
}

fn decode_paging_state(state: &[u8], total: usize) -> Result<usize> {
    let invalid = || Error::invalid("Invalid value for the paging state");
    if state.len() != 13 || state[0] != PAGING_STATE_VERSION {
        return Err(invalid());
    }
    let offset = u64::from_be_bytes(state[1..9].try_into().map_err(|_| invalid())?) as usize;
    let check = u32::from_be_bytes(state[9..13].try_into().map_err(|_| invalid())?);
    if offset > total || check != check_word(offset, total) {
        return Err(invalid());
    }
    Ok(offset)
}
