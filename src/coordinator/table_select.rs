//! SELECT on a user table: the statement's restrictions become a read plan
//! (`restrict.rs`), the plan runs against the replica (`read.rs`), and the select clause is
//! evaluated over the rows that come back. System tables take the in-memory path of
//! `select.rs`; both share the plan cache, the projection and the result encoding.

use bytes::Bytes;

use super::bind::{Bound, BoundSelect};
use super::consistency::{self, Access, Topology};
use super::plan::{PlannedRows, SelectPlan};
use super::read::{Query, StoredRow, TableRead};
use super::restrict;
use super::select::{call, Expr};
use super::source::Source;
use crate::cql::ast::{Operator, Select, Selector};
use crate::cql::types::CqlType;
use crate::error::{Error, Result};
use crate::protocol::QueryParameters;
use crate::schema::{ColumnKind, TableDef};
use crate::storage::comparable;

/// Runs `select` on the user table `table`.
pub(super) fn execute(
    select: &Select,
    params: &QueryParameters,
    table: &TableDef,
    source: &Source,
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
    check_selectors(select, table)?;
    let layout = restrict::layout(table, catalog);
    let types: Vec<CqlType> = table
        .columns
        .iter()
        .map(|c| catalog.resolve_user_types(&table.keyspace, &c.ty))
        .collect();
    let read_plan = restrict::plan_read(select, table, &layout, bound)?;
    let filters = residual_filters(bound, table, &types)?;
    let filter = |row: &StoredRow| filters.iter().all(|f| f.matches(row));
    let count_only = plan.exprs.iter().any(|e| matches!(e, Expr::Count));
    let query = Query {
        plan: &read_plan,
        // An aggregate's LIMIT applies to its one output row, not to the rows counted.
        limit: bound.limit.filter(|_| !count_only),
        per_partition_limit: if select.distinct {
            Some(1)
        } else {
            bound.per_partition_limit
        },
        count_only,
        filter: &filter,
    };
    let read = TableRead {
        replica: source.replica,
        table,
        layout: &layout,
        types: &types,
        now_secs: now_secs(),
        max_unpaged_rows: source.max_unpaged_rows,
        consistency: params.consistency,
    };
    let out = read.run(&query, params)?;
    let rows = if count_only {
        let first = out.rows.first();
        vec![plan
            .exprs
            .iter()
            .map(|e| eval(e, first, out.count))
            .collect()]
    } else {
        out.rows
            .iter()
            .map(|r| plan.exprs.iter().map(|e| eval(e, Some(r), 0)).collect())
            .collect()
    };
    Ok(PlannedRows {
        columns: plan.columns.clone(),
        paging_state: out.paging_state,
        no_metadata: params.skip_metadata,
        rows,
    })
}

/// Seconds since the epoch, for TTL expiry.
pub(super) fn now_secs() -> u32 {
    (super::functions::now_micros() / 1_000_000).clamp(0, i64::from(u32::MAX)) as u32
}

fn eval(expr: &Expr, row: Option<&StoredRow>, count: i64) -> Option<Bytes> {
    let meta = |i: usize| row.and_then(|r| r.meta.get(i).copied().flatten());
    match expr {
        Expr::Column(i) => row.and_then(|r| r.values.get(*i).cloned().flatten()),
        Expr::Token => row.map(|r| Bytes::copy_from_slice(&r.token.to_be_bytes())),
        Expr::Count => Some(Bytes::copy_from_slice(&count.to_be_bytes())),
        Expr::WriteTime(i) => meta(*i).map(|(ts, _)| Bytes::copy_from_slice(&ts.to_be_bytes())),
        Expr::Ttl(i) => meta(*i)
            .and_then(|(_, ttl)| ttl)
            .map(|t| Bytes::copy_from_slice(&t.to_be_bytes())),
        Expr::Call(function, arg) => {
            let value = arg.as_ref().map(|(e, ty)| (eval(e, row, count), ty));
            call(*function, value)
        }
        // Refused by check_selectors.
        Expr::ToJson(_) => None,
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
    let Selector::Function { name, args } = selector else {
        return Ok(());
    };
    match (name.as_str(), args.as_slice()) {
        ("tojson", _) => Err(Error::invalid(
            "toJson() on user tables is not supported yet by this ringcache build",
        )),
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

/// A restriction on a regular or static column, checked row by row (ALLOW FILTERING).
struct Filter {
    index: usize,
    op: Operator,
    /// The values, each in the byte-comparable encoding for ordered operators.
    values: Vec<Option<Bytes>>,
    ty: CqlType,
}

impl Filter {
    fn matches(&self, row: &StoredRow) -> bool {
        let Some(Some(value)) = row.values.get(self.index) else {
            return false;
        };
        match self.op {
            Operator::Eq => self
                .values
                .first()
                .is_some_and(|v| v.as_ref() == Some(value)),
            Operator::In => self.values.iter().any(|v| v.as_ref() == Some(value)),
            op => {
                let Some(Some(wanted)) = self.values.first() else {
                    return false;
                };
                let mut encoded = Vec::new();
                if comparable::encode_value(&self.ty, value, &mut encoded).is_err() {
                    return false;
                }
                let ordering = encoded.as_slice().cmp(wanted.as_ref());
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
}

fn residual_filters(
    bound: &BoundSelect,
    table: &TableDef,
    types: &[CqlType],
) -> Result<Vec<Filter>> {
    let mut filters = Vec::new();
    for relation in &bound.relations {
        let Bound::Column { index, op, values } = relation else {
            continue;
        };
        if !matches!(
            table.columns[*index].kind,
            ColumnKind::Regular | ColumnKind::Static
        ) {
            continue;
        }
        let ty = types[*index].clone();
        let values = match op {
            Operator::Eq | Operator::In => values.clone(),
            Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
                let mut encoded = Vec::new();
                let value = values.first().cloned().flatten().ok_or_else(|| {
                    Error::invalid(format!(
                        "Invalid null value for {}",
                        table.columns[*index].name
                    ))
                })?;
                comparable::encode_value(&ty, &value, &mut encoded).map_err(|e| {
                    Error::invalid(format!("{e} (column {})", table.columns[*index].name))
                })?;
                vec![Some(Bytes::from(encoded))]
            }
            other => {
                return Err(Error::invalid(format!(
                    "Filtering with {other:?} is not supported yet by this ringcache build"
                )))
            }
        };
        filters.push(Filter {
            index: *index,
            op: *op,
            values,
            ty,
        });
    }
    Ok(filters)
}
