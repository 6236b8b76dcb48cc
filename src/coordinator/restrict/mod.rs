//! How a SELECT on a user table reads storage: its WHERE clause and ORDER BY become a
//! [`ReadPlan`] — which partitions, which clustering ranges of each, in which direction —
//! and the relations the plan cannot enforce are handed back for row-by-row filtering.
//!
//! The rules are Cassandra 4.1's (`StatementRestrictions`, `ClusteringColumnRestrictions`,
//! the single- and multi-column restriction merges, `SelectStatement`'s ORDER BY and
//! filtering checks), with its messages, checked in its order: relations are merged one by
//! one in WHERE order (a conflict is reported against the restriction already there), then
//! the partition key is judged, then the clustering columns, then the other columns, then
//! ORDER BY, then whether a range scan filters. Planning is split in two so the same checks
//! can run at PREPARE, before any value is known: [`analyze`] looks only at the statement,
//! and [`plan_read`] turns the analysis and the bound values into keys and byte ranges.

mod analysis;
mod ranges;

use std::ops::Bound;

use super::bind::BoundSelect;
use crate::cql::ast::{Operator, Relation, Select, Term};
use crate::error::Result;
use crate::schema::{Catalog, ClusteringOrder, TableDef};
use crate::storage::comparable;
use crate::storage::partition::{PartitionId, Slice, TableLayout};

use analysis::analyze;
use ranges::{clustering_ranges, partition_keys, token_bounds, Values};

/// Cassandra's `REQUIRES_ALLOW_FILTERING_MESSAGE`.
pub(super) const REQUIRES_ALLOW_FILTERING: &str = "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

/// How a SELECT on a user table reads storage.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ReadPlan {
    /// Which partitions to read, in storage order.
    pub partitions: PartitionSelection,
    /// Clustering ranges in storage order, and whether rows come back reversed.
    pub slice: Slice,
    /// Indexes (into `select.where_clause`) of relations the plan does not enforce and the
    /// executor must filter rows by (only with ALLOW FILTERING; may be empty).
    pub residual: Vec<usize>,
    /// IN on the partition key with ORDER BY: rows of different partitions must be merged
    /// in the ORDER BY order (Cassandra sorts them in memory, and refuses to page them).
    pub order_across_partitions: bool,
}

/// Which partitions a read visits.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PartitionSelection {
    /// Named partitions (pk `=`/`IN` on every component; cartesian product for compound
    /// keys), in the order of their key values under the key's types (Cassandra's order
    /// for `IN`), deduplicated. Empty when nothing can
    /// match (an empty IN, or a token range that excludes every key).
    Keys(Vec<PartitionId>),
    /// A token range scan: every partition with start < / <= token <= / < end.
    /// Unbounded sides = full scan.
    Range { start: Bound<i64>, end: Bound<i64> },
}

/// The TableLayout of a table: its id and resolved clustering types/orders.
pub(super) fn layout(table: &TableDef, catalog: &Catalog) -> TableLayout {
    let clustering = table
        .clustering()
        .iter()
        .map(|c| {
            let order = match c.order {
                ClusteringOrder::Desc => comparable::Order::Desc,
                ClusteringOrder::Asc | ClusteringOrder::None => comparable::Order::Asc,
            };
            (catalog.resolve_user_types(&table.keyspace, &c.ty), order)
        })
        .collect();
    TableLayout {
        id: table.id,
        clustering,
    }
}

/// Checks a SELECT's restrictions and ORDER BY without values, so PREPARE of a user-table
/// SELECT fails as Cassandra's does.
pub(super) fn check_select(select: &Select, table: &TableDef) -> Result<()> {
    analyze(select, table).map(|_| ())
}

/// What planning reads of one SELECT on a table needs before its values are known: the
/// analysis of its restrictions and the table's layout. Worked out once per statement and
/// schema version (`plan::SelectPlan`), not on every execution.
pub(super) struct Analyzed {
    shape: analysis::Shape,
    pub layout: TableLayout,
}

/// Analyzes `select` on `table`.
pub(super) fn analyze_select(
    select: &Select,
    table: &TableDef,
    catalog: &Catalog,
) -> Result<Analyzed> {
    Ok(Analyzed {
        shape: analyze(select, table)?,
        layout: layout(table, catalog),
    })
}

/// Plans the read of `select` on `table` with the statement's bound values.
#[cfg(test)]
pub(super) fn plan_read(
    select: &Select,
    table: &TableDef,
    layout: &TableLayout,
    bound: &BoundSelect,
) -> Result<ReadPlan> {
    let analyzed = Analyzed {
        shape: analyze(select, table)?,
        layout: layout.clone(),
    };
    plan_analyzed(&analyzed, table, bound)
}

/// Plans a read of the statement `analyzed` came from, with its bound values.
pub(super) fn plan_analyzed(
    analyzed: &Analyzed,
    table: &TableDef,
    bound: &BoundSelect,
) -> Result<ReadPlan> {
    let (shape, layout) = (&analyzed.shape, &analyzed.layout);
    let values = Values { bound, table };
    let partitions = if shape.key_range {
        match token_bounds(shape.token.as_ref(), &values)? {
            Some((start, end)) => PartitionSelection::Range { start, end },
            None => PartitionSelection::Keys(Vec::new()),
        }
    } else {
        PartitionSelection::Keys(partition_keys(shape, &values)?)
    };
    let ranges = clustering_ranges(&shape.used, layout, &values)?;
    Ok(ReadPlan {
        partitions,
        slice: Slice {
            ranges,
            reversed: shape.reversed,
        },
        residual: shape.residual.clone(),
        order_across_partitions: shape.order_across_partitions,
    })
}

// Relations as CQL text, for error messages.

/// A relation as Cassandra prints it in messages.
pub(super) fn relation_text(relation: &Relation) -> String {
    match relation {
        Relation::Column { column, op, value } => {
            format!("{column} {} {}", operator_text(*op), term_text(value))
        }
        Relation::MultiColumn { columns, op, value } => format!(
            "({}) {} {}",
            columns.join(", "),
            operator_text(*op),
            term_text(value)
        ),
        Relation::Token { columns, op, value } => format!(
            "token({}) {} {}",
            columns.join(", "),
            operator_text(*op),
            term_text(value)
        ),
    }
}

pub(super) fn operator_text(op: Operator) -> &'static str {
    match op {
        Operator::Eq => "=",
        Operator::Lt => "<",
        Operator::Le => "<=",
        Operator::Gt => ">",
        Operator::Ge => ">=",
        Operator::Ne => "!=",
        Operator::In => "IN",
        Operator::Contains => "CONTAINS",
        Operator::ContainsKey => "CONTAINS KEY",
        Operator::Like => "LIKE",
        Operator::IsNot => "IS NOT",
    }
}

/// A term as CQL text.
pub(super) fn term_text(term: &Term) -> String {
    let list = |items: &[Term]| items.iter().map(term_text).collect::<Vec<_>>().join(", ");
    match term {
        Term::String(s) => format!("'{}'", s.replace('\'', "''")),
        Term::Integer(s) | Term::Float(s) | Term::Uuid(s) | Term::Duration(s) => s.clone(),
        Term::Boolean(b) => b.to_string(),
        Term::Blob(hex) => format!("0x{hex}"),
        Term::Null => "null".to_owned(),
        Term::BindMarker(None) => "?".to_owned(),
        Term::BindMarker(Some(name)) => format!(":{name}"),
        Term::List(items) => format!("[{}]", list(items)),
        Term::Set(items) => format!("{{{}}}", list(items)),
        Term::Tuple(items) => format!("({})", list(items)),
        Term::Map(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", term_text(k), term_text(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Term::UserType(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(f, v)| format!("{f}: {}", term_text(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Term::FunctionCall { name, args } => format!("{name}({})", list(args)),
        Term::Cast { ty, term } => format!("({ty}){}", term_text(term)),
    }
}

#[cfg(test)]
mod tests;
