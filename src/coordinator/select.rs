//! SELECT execution over rows from a [`Source`]: restrictions, ordering, limits,
//! projection and paging. System tables are answered here from rows computed in memory;
//! user tables share the plan cache, binding and projection, and read their rows from the
//! replica (`table_select.rs`).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::bind::{bind_select, Bound, BoundSelect};
use super::functions::Function;
use super::plan::{EncodedColumns, EncodedRows, PlanSlot, PlannedRows, SelectPlan};
use super::source::{Cell, Row, Source};
use crate::cql::ast::{Operator, Order, Select, Selector};
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
    let output = project(&plan.exprs, rows, select.distinct, table);
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
    let projection = Projection::new(select, table, source.catalog)?;
    Ok(SelectPlan {
        schema_version: source.schema_version,
        keyspace: table.keyspace.clone(),
        columns: Arc::new(EncodedColumns::new(&projection.metadata)),
        exprs: projection.exprs,
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

/// What each output column computes.
pub(super) enum Expr {
    Column(usize),
    ToJson(usize),
    Token,
    /// `count(*)`: the rows counted.
    Count,
    /// `count(column)`: the counted rows where the column (a table index) is not null.
    CountColumn(usize),
    /// `writetime(column)`: the cell's write timestamp (µs).
    WriteTime(usize),
    /// `ttl(column)`: the cell's remaining TTL in seconds, null without one.
    Ttl(usize),
    /// A native function of at most one argument (with the argument's type).
    Call(Function, Option<(Box<Expr>, CqlType)>),
    /// A value computed when the statement was planned.
    Literal(Bytes),
}

impl Expr {
    /// Whether the expression is an aggregate, which makes the query return one row.
    pub(super) fn is_aggregate(&self) -> bool {
        matches!(self, Expr::Count | Expr::CountColumn(_))
    }
}

/// What an aggregate row counted: every row, and each `count(column)`'s non-null values.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub rows: i64,
    /// (table column index, rows where it is not null).
    pub columns: Vec<(usize, i64)>,
}

impl Counts {
    /// The serialized bigint an aggregate expression yields; None for other expressions.
    pub(super) fn value(&self, expr: &Expr) -> Option<Bytes> {
        let count = match expr {
            Expr::Count => self.rows,
            Expr::CountColumn(i) => self
                .columns
                .iter()
                .find(|(c, _)| c == i)
                .map_or(0, |(_, n)| *n),
            _ => return None,
        };
        Some(Bytes::copy_from_slice(&count.to_be_bytes()))
    }
}

/// The table columns the `count(column)` expressions of `exprs` count.
pub(super) fn counted_columns(exprs: &[Expr]) -> Vec<usize> {
    let mut columns: Vec<usize> = exprs
        .iter()
        .filter_map(|e| match e {
            Expr::CountColumn(i) => Some(*i),
            _ => None,
        })
        .collect();
    columns.dedup();
    columns
}

/// The select clause, resolved against a table.
struct Projection {
    exprs: Vec<Expr>,
    metadata: ResultMetadata,
}

impl Projection {
    fn new(select: &Select, table: &TableDef, catalog: &Catalog) -> Result<Projection> {
        let index = |name: &str| {
            table
                .columns
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| Error::invalid(format!("Undefined column name {name}")))
        };
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        let mut push = |expr: Expr, name: String, ty: CqlType| {
            exprs.push(expr);
            columns.push(ColumnSpec {
                keyspace: table.keyspace.clone(),
                table: table.name.clone(),
                name,
                data_type: data_type(&ty, &table.keyspace, catalog),
            });
        };
        if select.items.is_empty() {
            for (i, c) in table.columns.iter().enumerate() {
                push(Expr::Column(i), c.name.clone(), c.ty.clone());
            }
        }
        for item in &select.items {
            let (expr, default_name, ty) = match &item.selector {
                Selector::Column(name) => {
                    let i = index(name)?;
                    (Expr::Column(i), name.clone(), table.columns[i].ty.clone())
                }
                Selector::CountStar => (
                    Expr::Count,
                    "count".to_owned(),
                    CqlType::Native(NativeType::Bigint),
                ),
                Selector::Function { name, args } => {
                    function_expr(name, args, &index, &|i| table.columns[i].ty.clone())?
                }
                other => {
                    return Err(Error::invalid(format!(
                        "Selector {other:?} is not supported yet by this ringcache build"
                    )))
                }
            };
            push(expr, item.alias.clone().unwrap_or(default_name), ty);
        }
        let metadata = ResultMetadata {
            column_count: columns.len(),
            columns,
            ..Default::default()
        };
        Ok(Projection { exprs, metadata })
    }
}

/// The result metadata `select` produces on `table` (what PREPARE announces).
pub(super) fn result_metadata(
    select: &Select,
    table: &TableDef,
    catalog: &Catalog,
) -> Result<ResultMetadata> {
    Projection::new(select, table, catalog).map(|p| p.metadata)
}

/// Computes the output cells of `rows`.
fn project(
    exprs: &[Expr],
    rows: Vec<Row>,
    distinct: bool,
    table: &TableDef,
) -> Vec<Vec<Option<Bytes>>> {
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
        let first = rows.first();
        return vec![exprs
            .iter()
            .map(|e| eval(e, first, &counts, table))
            .collect()];
    }
    let none = Counts::default();
    let mut out: Vec<Vec<Option<Bytes>>> = rows
        .iter()
        .map(|row| {
            exprs
                .iter()
                .map(|e| eval(e, Some(row), &none, table))
                .collect()
        })
        .collect();
    if distinct {
        out.dedup();
    }
    out
}

fn eval(expr: &Expr, row: Option<&Row>, counts: &Counts, table: &TableDef) -> Option<Bytes> {
    let cell = |i: usize| row.and_then(|r| r.get(i)).and_then(Option::as_ref);
    match expr {
        Expr::Column(i) => cell(*i).map(Cell::to_bytes),
        Expr::ToJson(i) => Some(Bytes::from(
            cell(*i).map_or("null".to_owned(), |c| c.value().to_json()),
        )),
        Expr::Count | Expr::CountColumn(_) => counts.value(expr),
        Expr::Token => row.map(|r| Bytes::copy_from_slice(&row_token(table, r).to_be_bytes())),
        // System tables' values are computed, not written: they have no cell metadata.
        Expr::WriteTime(_) | Expr::Ttl(_) => None,
        Expr::Literal(value) => Some(value.clone()),
        Expr::Call(function, arg) => {
            let value = arg
                .as_ref()
                .map(|(e, ty)| (eval(e, row, counts, table), ty));
            call(*function, value)
        }
    }
}

/// Applies a native function; errors (a malformed argument) yield null, as a selector
/// cannot fail a whole read.
pub(super) fn call(function: Function, arg: Option<(Option<Bytes>, &CqlType)>) -> Option<Bytes> {
    let (value, ty) = match arg {
        Some((value, ty)) => (value, Some(ty)),
        None => (None, None),
    };
    function.call(value.as_deref(), ty).ok().flatten()
}

fn function_expr(
    name: &str,
    args: &[Selector],
    index: &dyn Fn(&str) -> Result<usize>,
    column_type: &dyn Fn(usize) -> CqlType,
) -> Result<(Expr, String, CqlType)> {
    match (name, args) {
        ("writetime" | "ttl", [Selector::Column(column)]) => {
            let i = index(column)?;
            let (expr, ty) = match name {
                "writetime" => (Expr::WriteTime(i), NativeType::Bigint),
                _ => (Expr::Ttl(i), NativeType::Int),
            };
            Ok((expr, format!("{name}({column})"), CqlType::Native(ty)))
        }
        ("tojson", [Selector::Column(column)]) => Ok((
            Expr::ToJson(index(column)?),
            format!("system.tojson({column})"),
            CqlType::Native(NativeType::Text),
        )),
        ("token", columns) if !columns.is_empty() => {
            let names: Vec<&str> = columns
                .iter()
                .map(|c| match c {
                    Selector::Column(name) => Ok(name.as_str()),
                    _ => Err(Error::invalid("token() takes the partition key columns")),
                })
                .collect::<Result<_>>()?;
            names.iter().try_for_each(|n| index(n).map(drop))?;
            Ok((
                Expr::Token,
                format!("system.token({})", names.join(", ")),
                CqlType::Native(NativeType::Bigint),
            ))
        }
        ("count", [Selector::Column(column)]) => Ok((
            Expr::CountColumn(index(column)?),
            format!("system.count({column})"),
            CqlType::Native(NativeType::Bigint),
        )),
        // The parser takes `count(1)` as `count(*)`; Cassandra's grammar refuses others.
        ("count", [Selector::Term(term)]) => Err(Error::Syntax(format!(
            "Only COUNT(1) is supported, got COUNT({})",
            super::restrict::term_text(term)
        ))),
        (name, []) => {
            let (function, ty) = Function::resolve(name, &[])?;
            Ok((Expr::Call(function, None), format!("system.{name}()"), ty))
        }
        (name, [arg]) => {
            let (inner, inner_name, inner_ty) = match arg {
                Selector::Column(column) => {
                    let i = index(column)?;
                    (Expr::Column(i), column.clone(), column_type(i))
                }
                Selector::Function { name, args } => {
                    function_expr(name, args, index, column_type)?
                }
                Selector::Term(term) if matches!(name, "mintimeuuid" | "maxtimeuuid") => {
                    // A constant: `minTimeuuid('2013-01-01 00:05+0000')`.
                    let call = crate::cql::ast::Term::FunctionCall {
                        name: name.to_owned(),
                        args: vec![term.clone()],
                    };
                    let ty = CqlType::Native(NativeType::Timeuuid);
                    let value = super::dml::literal_bytes(&call, &ty, &Catalog::new(), "")
                        .map_err(Error::invalid)?;
                    let label = format!("system.{name}({})", super::restrict::term_text(term));
                    return Ok((Expr::Literal(value), label, ty));
                }
                other => {
                    return Err(Error::invalid(format!(
                        "Argument {other:?} of function {name} is not supported yet by this ringcache build"
                    )))
                }
            };
            let (function, ty) = Function::resolve(name, std::slice::from_ref(&inner_ty))?;
            let label = format!("system.{name}({inner_name})");
            Ok((
                Expr::Call(function, Some((Box::new(inner), inner_ty))),
                label,
                ty,
            ))
        }
        _ => Err(Error::invalid(format!(
            "Function {name} is not supported yet by this ringcache build"
        ))),
    }
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
