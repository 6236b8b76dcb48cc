//! SELECT on a user table: the statement's restrictions become a read plan
//! (`restrict/`), the plan runs against the replica (`read.rs`), and the select clause is
//! evaluated over the rows that come back. System tables take the in-memory path of
//! `select.rs`; both share the plan cache, the projection and the result encoding.

use bytes::Bytes;

use super::bind::{Bound, BoundRelation, BoundSelect};
use super::consistency::{self, Access, Topology};
use super::plan::{EncodedRows, PlannedRows, SelectPlan};
use super::projection::{counted_columns, eval, Counts, Expr, RowView};
use super::read::{Query, ReadPath, Render, StoredRow, TableRead};
use super::restrict;
use super::source::Source;
use crate::cache::Caching;
use crate::cql::ast::{Operator, Select, Selector};
use crate::cql::types::CqlType;
use crate::error::{Error, Result};
use crate::protocol::QueryParameters;
use crate::schema::{ColumnKind, TableDef};
use crate::storage::comparable;

/// Runs `select` on the user table `table`.
pub(super) async fn execute(
    select: &Select,
    params: &QueryParameters,
    table: &TableDef,
    source: &Source<'_>,
    plan: &SelectPlan,
    bound: &BoundSelect,
) -> Result<PlannedRows> {
    let catalog = source.catalog;
    let keyspace = catalog
        .keyspace(&table.keyspace)
        .ok_or_else(|| Error::invalid(format!("Keyspace {} does not exist", table.keyspace)))?;
    let topology = Topology {
        live_nodes: source.live_nodes,
        local_dc: source.local_dc,
    };
    consistency::check(params.consistency, Access::Read, keyspace, &topology)?;
    let user_table = match plan.user_table.get() {
        Some(known) => known,
        None => {
            let known = UserTable::new(select, table, catalog, &plan.exprs)?;
            plan.user_table.get_or_init(|| known)
        }
    };
    let (layout, types) = (&user_table.analyzed.layout, &user_table.types);
    let read_plan = restrict::plan_analyzed(&user_table.analyzed, table, bound)?;
    let filters = residual_filters(&read_plan.residual, bound, table, types)?;
    let filter = |row: &StoredRow| filters.iter().all(|f| f.matches(row));
    let (count_only, counted) = (user_table.count_only, &user_table.counted);
    // Rows of several partitions in ORDER BY order are sorted after the read, so that read
    // is unpaged and its LIMIT applies after the sort (Cassandra's post-query ordering).
    let post_order = read_plan.order_across_partitions && !count_only;
    let unpaged;
    let params = if post_order {
        check_post_order_paging(params, bound.limit)?;
        unpaged = QueryParameters {
            page_size: None,
            paging_state: None,
            ..params.clone()
        };
        &unpaged
    } else {
        params
    };
    // Rows are put in their wire form as they are read, unless they are sorted or counted
    // first; and kept with their cache entry when only the rows read decide them.
    let project_row = |row: &StoredRow, rows: &mut EncodedRows| {
        project(&plan.exprs, Some(row), &Counts::default(), rows)
    };
    let render = (!count_only && !post_order).then(|| Render {
        project: &project_row,
        keep: (filters.is_empty() && user_table.rows_alone).then_some(plan.id),
    });
    let query = Query {
        plan: &read_plan,
        // An aggregate's LIMIT applies to its one output row, not to the rows counted.
        limit: bound.limit.filter(|_| !count_only && !post_order),
        per_partition_limit: if select.distinct {
            Some(1)
        } else {
            bound.per_partition_limit
        },
        count_only,
        counted,
        filter: &filter,
        render,
    };
    let caching = match source.ctx.tracing {
        true => Caching::Off,
        false => source.replica.caching(&table.options),
    };
    let keyspace = source
        .catalog
        .keyspace(&table.keyspace)
        .ok_or_else(|| Error::invalid(format!("Keyspace {} does not exist", table.keyspace)))?;
    // SERIAL: the partition's Paxos rounds in progress are finished first, then it is read
    // at the level's quorum (`paxos/`).
    let (level, promisers) = source
        .paxos
        .before_serial_read(
            source.replication,
            keyspace,
            table.id,
            &read_plan,
            params.consistency,
        )
        .await?;
    let read = TableRead {
        path: ReadPath::Replicas {
            replication: source.replication,
            keyspace,
            prefer: &promisers,
        },
        caching,
        table,
        layout,
        types,
        now_secs: crate::clock::now_secs(),
        max_unpaged_rows: source.max_unpaged_rows,
        consistency: level,
    };
    let mut out = read.run(&query, params).await?;
    if post_order {
        out.rows.sort_by(|a, b| a.clustering.cmp(&b.clustering));
        if read_plan.slice.reversed {
            out.rows.reverse();
        }
        out.rows.truncate(bound.limit.unwrap_or(usize::MAX));
    }
    let rows = if count_only {
        let counts = Counts {
            rows: out.count,
            columns: counted.iter().copied().zip(out.column_counts).collect(),
        };
        let mut rows = EncodedRows::default();
        project(&plan.exprs, out.rows.first(), &counts, &mut rows)?;
        rows
    } else if post_order {
        let mut rows = EncodedRows::default();
        for row in &out.rows {
            project(&plan.exprs, Some(row), &Counts::default(), &mut rows)?;
        }
        rows
    } else {
        out.encoded
    };
    Ok(PlannedRows {
        columns: plan.columns.clone(),
        paging_state: out.paging_state,
        no_metadata: params.skip_metadata,
        rows,
    })
}

/// Appends the output row `exprs` make of `row` (None: an aggregate over no rows).
fn project(
    exprs: &[Expr],
    row: Option<&StoredRow>,
    counts: &Counts,
    rows: &mut EncodedRows,
) -> Result<()> {
    for expr in exprs {
        match expr {
            // The common case copies the value straight from the row.
            Expr::Column(i) => rows.cell(row.and_then(|r| r.values.get(*i)?.as_deref())),
            other => {
                let value = eval(other, row.map(|r| r as &dyn RowView), counts)?;
                rows.cell(value.as_deref())
            }
        }
    }
    rows.end_row();
    Ok(())
}

/// What reading a user table for one statement needs before its values are known.
pub(super) struct UserTable {
    analyzed: restrict::Analyzed,
    /// Column types in table order, user types resolved to their field tuples.
    types: Vec<CqlType>,
    /// Whether the select clause aggregates (the rows are counted, not returned).
    count_only: bool,
    /// The columns `count(column)` counts, as table indexes.
    counted: Vec<usize>,
    /// Whether every selector depends on the row alone (not on "now" or other rows), so
    /// the rows a read made of a cache entry can be kept with it.
    rows_alone: bool,
}

impl UserTable {
    /// Checks `select`'s selectors and restrictions on `table` and analyzes them.
    fn new(
        select: &Select,
        table: &TableDef,
        catalog: &crate::schema::Catalog,
        exprs: &[Expr],
    ) -> Result<Self> {
        check_selectors(select, table)?;
        Ok(UserTable {
            count_only: exprs.iter().any(Expr::is_aggregate),
            counted: counted_columns(exprs),
            rows_alone: exprs.iter().all(Expr::depends_only_on_row),
            analyzed: restrict::analyze_select(select, table, catalog)?,
            types: table
                .columns
                .iter()
                .map(|c| catalog.resolve_user_types(&table.keyspace, &c.ty))
                .collect(),
        })
    }
}

/// Cassandra refuses to page a query whose rows must be sorted across partitions, unless
/// its LIMIT fits in one page.
fn check_post_order_paging(params: &QueryParameters, limit: Option<usize>) -> Result<()> {
    let page_size = params.page_size.filter(|n| *n > 0).map(|n| n as usize);
    match (page_size, limit) {
        (Some(page), limit) if limit.is_none_or(|l| l > page) => Err(Error::invalid(
            "Cannot page queries with both ORDER BY and a IN restriction on the partition key; you must either remove the ORDER BY or the IN and sort client side, or disable paging for this query",
        )),
        _ => Ok(()),
    }
}

impl RowView for StoredRow {
    fn value(&self, i: usize) -> Option<Bytes> {
        self.values.get(i).cloned().flatten()
    }

    fn token(&self) -> i64 {
        self.token
    }

    fn meta(&self, i: usize) -> Option<(i64, Option<i32>)> {
        self.meta.get(i).copied().flatten()
    }

    fn field_meta(&self, i: usize, field: usize) -> Option<(i64, Option<i32>)> {
        self.field_meta
            .iter()
            .find(|m| m.column == i && usize::from(m.field) == field)
            .map(|m| (m.timestamp, m.ttl))
    }
}

/// Selectors Cassandra refuses, or this build cannot serve yet, on user tables.
fn check_selectors(select: &Select, table: &TableDef) -> Result<()> {
    for item in &select.items {
        check_selector(&item.selector, table)?;
    }
    if select.distinct {
        for item in &select.items {
            if let Selector::Column(name) = &item.selector {
                let kind = table.column(name).map(|c| c.kind);
                if !matches!(kind, Some(ColumnKind::PartitionKey | ColumnKind::Static)) {
                    return Err(Error::invalid(format!(
                        "SELECT DISTINCT queries must only request partition key columns and/or static columns (not {name})"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn check_selector(selector: &Selector, table: &TableDef) -> Result<()> {
    let (name, args) = match selector {
        Selector::Function { name, args } => (name, args),
        Selector::Cast { selector, .. }
        | Selector::Field { selector, .. }
        | Selector::Element { selector, .. }
        | Selector::Slice { selector, .. } => return check_selector(selector, table),
        _ => return Ok(()),
    };
    match (name.as_str(), args.as_slice()) {
        ("tojson", _) => Err(Error::not_supported("toJson() on user tables", None)),
        ("writetime" | "ttl", [Selector::Column(column)]) => {
            let Some(def) = table.column(column) else {
                return Ok(());
            };
            let function = if name == "writetime" {
                "writetime"
            } else {
                "ttl"
            };
            if def.kind.is_primary_key() {
                return Err(Error::invalid(format!(
                    "Cannot use selection function {function} on PRIMARY KEY part {column}"
                )));
            }
            if def.ty.is_multicell() {
                return Err(Error::invalid(format!(
                    "Cannot use selection function {function} on non-frozen collection {column}"
                )));
            }
            Ok(())
        }
        _ => args.iter().try_for_each(|a| check_selector(a, table)),
    }
}

/// A restriction checked row by row (ALLOW FILTERING): one column, or a tuple of columns
/// compared as one value.
struct Filter {
    /// The columns compared, as table column indexes.
    columns: Vec<usize>,
    op: Operator,
    /// For `=`/`IN`: the wanted values (one per column, concatenated in the
    /// byte-comparable encoding); for slices, the bound likewise.
    values: Vec<Bytes>,
    /// For CONTAINS / CONTAINS KEY: the column type, to split the collection.
    collection: Option<CqlType>,
    /// Each compared column's type, to encode row values.
    types: Vec<CqlType>,
}

impl Filter {
    fn matches(&self, row: &StoredRow) -> bool {
        if let Some(ty) = &self.collection {
            return self.contains(ty, row);
        }
        let Some(encoded) = self.encode_row(row) else {
            return false;
        };
        match self.op {
            Operator::Eq | Operator::In => self.values.contains(&encoded),
            op => {
                let Some(wanted) = self.values.first() else {
                    return false;
                };
                let ordering = encoded.as_ref().cmp(wanted.as_ref());
                match op {
                    Operator::Lt => ordering.is_lt(),
                    Operator::Le => ordering.is_le(),
                    Operator::Gt => ordering.is_gt(),
                    Operator::Ge => ordering.is_ge(),
                    _ => false,
                }
            }
        }
    }

    /// The row's values of the compared columns, encoded so byte order is value order.
    fn encode_row(&self, row: &StoredRow) -> Option<Bytes> {
        let mut out = Vec::new();
        for (index, ty) in self.columns.iter().zip(&self.types) {
            let value = row.values.get(*index)?.as_ref()?;
            comparable::encode_value(ty, value, &mut out).ok()?;
        }
        Some(Bytes::from(out))
    }

    fn contains(&self, ty: &CqlType, row: &StoredRow) -> bool {
        let Some(Some(value)) = self.columns.first().and_then(|i| row.values.get(*i)) else {
            return false;
        };
        let Ok(elements) = crate::cql::serialized::split_collection(ty, value) else {
            return false;
        };
        let wanted = self.values.first();
        // split_collection gives sets as (element, empty), lists as (empty, element) and
        // maps as (key, value).
        let by_key = self.op == Operator::ContainsKey || matches!(ty.unfrozen(), CqlType::Set(_));
        elements
            .iter()
            .any(|(key, element)| wanted == Some(if by_key { key } else { element }))
    }
}

fn residual_filters(
    residual: &[usize],
    bound: &BoundSelect,
    table: &TableDef,
    types: &[CqlType],
) -> Result<Vec<Filter>> {
    residual
        .iter()
        .filter_map(|position| bound.relation_at(*position))
        .map(|relation| match relation {
            BoundRelation::Single(Bound::Column { index, op, values }) => {
                let tuples: Vec<Vec<Option<Bytes>>> =
                    values.iter().map(|v| vec![v.clone()]).collect();
                filter(vec![*index], *op, &tuples, table, types)
            }
            BoundRelation::Multi(multi) => {
                filter(multi.indexes.clone(), multi.op, &multi.values, table, types)
            }
            BoundRelation::Single(Bound::Token { .. }) => Err(Error::Server(
                "token restrictions are never filtered row by row".into(),
            )),
        })
        .collect()
}

fn filter(
    columns: Vec<usize>,
    op: Operator,
    tuples: &[Vec<Option<Bytes>>],
    table: &TableDef,
    types: &[CqlType],
) -> Result<Filter> {
    let names: Vec<&str> = columns
        .iter()
        .map(|i| table.columns[*i].name.as_str())
        .collect();
    let column_types: Vec<CqlType> = columns.iter().map(|i| types[*i].clone()).collect();
    let collection = matches!(op, Operator::Contains | Operator::ContainsKey)
        .then(|| column_types.first().cloned())
        .flatten();
    let mut values = Vec::with_capacity(tuples.len());
    for tuple in tuples {
        if collection.is_some() {
            values.extend(tuple.first().cloned().flatten());
            continue;
        }
        let mut out = Vec::new();
        for (value, ty) in tuple.iter().zip(&column_types) {
            let value = value.as_ref().ok_or_else(|| {
                Error::invalid(format!(
                    "Invalid null value in condition for column {}",
                    names.join(", ")
                ))
            })?;
            comparable::encode_value(ty, value, &mut out)
                .map_err(|e| Error::invalid(format!("{e} (column {})", names.join(", "))))?;
        }
        values.push(Bytes::from(out));
    }
    if !matches!(
        op,
        Operator::Eq
            | Operator::In
            | Operator::Lt
            | Operator::Le
            | Operator::Gt
            | Operator::Ge
            | Operator::Contains
            | Operator::ContainsKey
    ) {
        return Err(Error::invalid(format!(
            "Unsupported \"{}\" restriction on {}",
            restrict::operator_text(op),
            names.join(", ")
        )));
    }
    Ok(Filter {
        columns,
        op,
        values,
        collection,
        types: column_types,
    })
}
