//! A transaction's plan, from its first bind: the partition, the conditions per row (and
//! on the static row), what the read must fetch, and which columns a failure shows —
//! with Cassandra's refusals of what one transaction cannot express.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use uuid::Uuid;

use super::{Clause, ColumnCondition};
use crate::coordinator::dml::Conditional;
use crate::error::{Error, Result};
use crate::schema::{ColumnKind, TableDef};
use crate::storage::partition::PartitionId;

/// The condition on one row (or the static row).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RowCondition {
    Exists,
    NotExists,
    Columns(Vec<ColumnCondition>),
}

/// What a transaction reads and checks, from its first bind.
#[derive(Debug)]
pub(super) struct CasPlan {
    pub table: Uuid,
    pub keyspace: String,
    pub table_name: String,
    pub partition: PartitionId,
    /// Conditions per row, by encoded clustering (storage order).
    pub rows: BTreeMap<Bytes, RowCondition>,
    /// Conditions on the static row.
    pub statics: Option<RowCondition>,
    /// `IF [NOT] EXISTS` of a whole-partition DELETE: whether live data must exist.
    pub partition_exists: Option<bool>,
    /// Rows the writes touch (their timestamps are read too).
    pub written: BTreeSet<Bytes>,
    /// Whether regular rows / static columns are read (else shown as null).
    pub read_regulars: bool,
    pub read_statics: bool,
    /// Columns of the failure rows; None for every column.
    pub selection: Option<Vec<usize>>,
}

impl CasPlan {
    pub fn new(bound: &[Conditional], is_batch: bool) -> Result<CasPlan> {
        let first = bound
            .first()
            .ok_or_else(|| Error::invalid("A conditional BATCH needs at least one statement"))?;
        let table = first.table;
        let mut plan = CasPlan {
            table: table.id,
            keyspace: table.keyspace.clone(),
            table_name: table.name.clone(),
            partition: single_partition(first, is_batch)?.clone(),
            rows: BTreeMap::new(),
            statics: None,
            partition_exists: None,
            written: BTreeSet::new(),
            read_regulars: false,
            read_statics: false,
            selection: Some(match is_batch {
                true => primary_key(table),
                false => Vec::new(),
            }),
        };
        for statement in bound {
            plan.add(statement, is_batch)?;
        }
        Ok(plan)
    }

    fn add(&mut self, statement: &Conditional, is_batch: bool) -> Result<()> {
        if statement.table.id != self.table {
            return Err(Error::invalid(
                "Batch with conditions cannot span multiple tables",
            ));
        }
        if *single_partition(statement, is_batch)? != self.partition {
            return Err(Error::invalid(
                "Batch with conditions cannot span multiple partitions",
            ));
        }
        let row = match statement.rows.as_deref() {
            None => None,
            Some([one]) => Some(one.clone()),
            Some(_) => {
                return Err(Error::invalid(format!(
                    "IN on the clustering key columns is not supported with conditional {}",
                    statement.what
                )))
            }
        };
        if let Some(row) = &row {
            self.read_regulars = true;
            self.written.insert(row.clone());
        }
        if statement
            .updates
            .iter()
            .any(|u| !u.static_columns.is_empty())
        {
            self.read_statics = true;
        }
        match &statement.clause {
            None => Ok(()),
            Some(Clause::Exists) => self.add_exists(statement, row, RowCondition::Exists),
            Some(Clause::NotExists) => self.add_exists(statement, row, RowCondition::NotExists),
            Some(Clause::Columns(conditions)) => self.add_columns(statement, row, conditions),
        }
    }

    fn add_exists(
        &mut self,
        statement: &Conditional,
        row: Option<Bytes>,
        condition: RowCondition,
    ) -> Result<()> {
        self.selection = None;
        let deletes_partition = statement.updates.iter().any(|u| u.deletion.is_some());
        match row {
            Some(row) => {
                merge_condition(self.rows.entry(row).or_insert(condition.clone()), condition)
            }
            None if deletes_partition => {
                let exists = condition == RowCondition::Exists;
                match self.partition_exists.replace(exists) {
                    Some(before) if before != exists => Err(mixed_exists()),
                    _ => Ok(()),
                }
            }
            None => {
                self.read_statics = true;
                merge_condition(self.statics.get_or_insert(condition.clone()), condition)
            }
        }
    }

    fn add_columns(
        &mut self,
        statement: &Conditional,
        row: Option<Bytes>,
        conditions: &[ColumnCondition],
    ) -> Result<()> {
        let is_static = |c: &&ColumnCondition| {
            statement
                .table
                .columns
                .get(c.column)
                .is_some_and(|d| d.kind == ColumnKind::Static)
        };
        let (statics, regulars): (Vec<&ColumnCondition>, Vec<&ColumnCondition>) =
            conditions.iter().partition(is_static);
        if !regulars.is_empty() {
            let Some(row) = row else {
                return Err(missing_clustering(statement));
            };
            self.read_regulars = true;
            let condition = RowCondition::Columns(regulars.iter().map(|c| (*c).clone()).collect());
            merge_condition(
                self.rows
                    .entry(row)
                    .or_insert(RowCondition::Columns(Vec::new())),
                condition,
            )?;
        }
        if !statics.is_empty() {
            self.read_statics = true;
            let condition = RowCondition::Columns(statics.iter().map(|c| (*c).clone()).collect());
            merge_condition(
                self.statics
                    .get_or_insert(RowCondition::Columns(Vec::new())),
                condition,
            )?;
        }
        // Cassandra lists the columns of regular conditions, then of static ones.
        if let Some(selection) = &mut self.selection {
            for c in regulars.iter().chain(&statics) {
                if !selection.contains(&c.column) {
                    selection.push(c.column);
                }
            }
        }
        Ok(())
    }
}

/// The one partition a statement of a transaction names.
fn single_partition<'a>(statement: &'a Conditional, is_batch: bool) -> Result<&'a PartitionId> {
    match statement.partitions.as_slice() {
        [one] => Ok(one),
        _ if is_batch => Err(Error::invalid(
            "Batch with conditions cannot span multiple partitions (you cannot use IN on the partition key)",
        )),
        _ => Err(Error::invalid(format!(
            "IN on the partition key is not supported with conditional {}",
            statement.what
        ))),
    }
}

/// Adds `new` to the conditions already on a row, with Cassandra's refusals of mixes.
pub(super) fn merge_condition(existing: &mut RowCondition, new: RowCondition) -> Result<()> {
    match (&mut *existing, new) {
        (RowCondition::Columns(all), RowCondition::Columns(more)) => {
            all.extend(more);
            Ok(())
        }
        (RowCondition::Exists, RowCondition::Exists)
        | (RowCondition::NotExists, RowCondition::NotExists) => Ok(()),
        (RowCondition::Exists, RowCondition::NotExists)
        | (RowCondition::NotExists, RowCondition::Exists) => Err(mixed_exists()),
        (RowCondition::Columns(_), RowCondition::Exists) => Err(Error::invalid(
            "Cannot mix IF conditions and IF EXISTS for the same row",
        )),
        _ => Err(Error::invalid(
            "Cannot mix IF conditions and IF NOT EXISTS for the same row",
        )),
    }
}

pub(super) fn mixed_exists() -> Error {
    Error::invalid("Cannot mix IF EXISTS and IF NOT EXISTS conditions for the same row")
}

fn missing_clustering(statement: &Conditional) -> Error {
    if statement.what == "deletions" {
        return Error::invalid(
            "DELETE statements must restrict all PRIMARY KEY columns with equality relations in order to use IF condition on non static columns",
        );
    }
    let names: Vec<&str> = statement
        .table
        .clustering()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    Error::invalid(format!(
        "Some clustering keys are missing: {}",
        names.join(", ")
    ))
}

/// Indexes of the primary key columns (partition key, then clustering), in key order.
fn primary_key(table: &TableDef) -> Vec<usize> {
    let index = |name: &str| table.columns.iter().position(|c| c.name == name);
    table
        .partition_key()
        .into_iter()
        .chain(table.clustering())
        .filter_map(|c| index(&c.name))
        .collect()
}
