//! Lightweight transactions on one node: `IF NOT EXISTS`, `IF EXISTS` and `IF col op v`.
//!
//! Cassandra runs a conditional write as a Paxos round among the partition's replicas: read
//! the current row, evaluate the conditions, and commit the write only if they hold, with
//! no other conditional write to the partition in between. With one replica the same
//! guarantee needs only mutual exclusion, so a transaction holds its partition's lock from
//! the read to the end of the write: [`CasLocks`] is a fixed array of async mutexes a
//! partition hashes into (bounded memory, whatever the number of partitions; unrelated
//! partitions may share a shard, which only serialises them). Unconditional writes do not
//! take the lock, as in Cassandra, where mixing LWT and non-LWT writes on the same data is
//! not linearizable either.
//!
//! A statement is bound twice. The first bind, before the lock, checks it and finds its
//! partition, rows and conditions; the second, after the read, binds the writes with a
//! timestamp strictly above every timestamp the read saw (cells, markers, deletions), so
//! an applied write can never lose to what it was conditioned on — not even to a plain
//! write whose client clock ran ahead. Cassandra likewise ignores the client's timestamp
//! for conditional writes (the ballot's is used) and refuses `USING TIMESTAMP`.
//!
//! The answer is Cassandra's: one row whose first column is `[applied]`; on failure the
//! rows read, with the condition columns (all columns for `IF [NOT] EXISTS`, the primary
//! key first in a batch), values that were not read shown as null. A keyspace with more
//! than one replica is refused outright: without Paxos the guarantee cannot hold, and a
//! silent downgrade would be worse than an error.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use uuid::Uuid;

use super::consistency::{self, Access, Topology};
use super::dml::{self, Conditional, WriteInput};
use super::read::{Query, StoredRow, TableRead};
use super::restrict::{self, PartitionSelection, ReadPlan};
use crate::cql::ast::{Batch, Operator, Statement};
use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};
use crate::protocol::{
    ColumnSpec, Consistency, QueryParameters, ResultBody, ResultMetadata, Rows, Value,
};
use crate::replica::LocalReplica;
use crate::schema::{Catalog, ColumnKind, KeyspaceDef, TableDef};
use crate::storage::comparable::{self, ClusteringRange};
use crate::storage::partition::{CellFragment, PartitionFragment, PartitionId, PartitionUpdate};
use crate::storage::partition::{RowFragment, Slice};

/// Lock shards: enough that unrelated hot partitions rarely share one.
const LOCK_SHARDS: usize = 1024;

/// Cassandra's name of the result column.
const APPLIED: &str = "[applied]";

/// The refusal of LWT where Paxos would be needed.
const NEEDS_PAXOS: &str = "Lightweight transactions need Paxos, which this ringcache build does not have: use a keyspace with replication_factor 1";

/// A statement's `IF` clause, bound.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Clause {
    Exists,
    NotExists,
    Columns(Vec<ColumnCondition>),
}

/// One `IF` condition, bound.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ColumnCondition {
    /// The column's index in the table's columns.
    pub column: usize,
    pub part: Part,
    pub op: Operator,
    /// The compared values (null = None): one, or each of an IN list.
    pub values: Vec<Option<Bytes>>,
}

/// What of its column a condition compares.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    Whole,
    /// A list index (int) or map key.
    Element(Bytes),
    /// A user type field's position.
    Field(usize),
}

/// Per-partition locks for lightweight transactions.
pub(super) struct CasLocks {
    shards: Vec<tokio::sync::Mutex<()>>,
}

impl CasLocks {
    pub fn new() -> CasLocks {
        CasLocks {
            shards: (0..LOCK_SHARDS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Waits for the lock of `partition` of `table`.
    pub async fn lock(
        &self,
        table: Uuid,
        partition: &PartitionId,
    ) -> tokio::sync::MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        (table, partition.token, &partition.key).hash(&mut hasher);
        let shard = (hasher.finish() % self.shards.len() as u64) as usize;
        // `shard` < len by construction, and `new` makes the vector non-empty.
        self.shards[shard].lock().await
    }
}

/// What a transaction binds: kept so the writes can be bound again under the lock with
/// their final timestamp.
pub(super) enum Source {
    /// One conditional INSERT, UPDATE or DELETE.
    Statement {
        statement: Statement,
        keyspace: Option<String>,
        values: Vec<Value>,
    },
    /// A CQL-text BATCH with conditions, bound with one list of values.
    TextBatch {
        batch: Batch,
        keyspace: Option<String>,
        values: Vec<Value>,
    },
    /// A protocol BATCH with conditions: each statement with its keyspace and values.
    Items(Vec<(Statement, Option<String>, Vec<Value>)>),
}

impl Source {
    fn is_batch(&self) -> bool {
        !matches!(self, Source::Statement { .. })
    }

    fn bind<'c>(&'c self, catalog: &'c Catalog, timestamp: i64) -> Result<Vec<Conditional<'c>>> {
        let now_secs = super::table_select::now_secs();
        let input = |keyspace: &'c Option<String>, values: &'c [Value]| WriteInput {
            catalog,
            keyspace: keyspace.as_deref(),
            values,
            timestamp,
            now_secs,
        };
        match self {
            Source::Statement {
                statement,
                keyspace,
                values,
            } => Ok(vec![dml::bind_conditional(
                statement,
                &input(keyspace, values),
                false,
            )?]),
            Source::TextBatch {
                batch,
                keyspace,
                values,
            } => dml::bind_conditional_batch(batch, &input(keyspace, values)),
            Source::Items(items) => items
                .iter()
                .map(|(s, ks, values)| dml::bind_conditional(s, &input(ks, values), true))
                .collect(),
        }
    }
}

/// The levels a transaction runs at: Paxos's (serial) and the commit's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Levels {
    /// `serial_consistency` of the request (SERIAL when absent).
    pub serial: Option<Consistency>,
    pub commit: Consistency,
}

/// A checked transaction, ready to run under its partition's lock.
pub(super) struct CasRequest {
    source: Source,
    plan: CasPlan,
}

impl CasRequest {
    /// Binds `source` once: every refusal happens here, before any lock is taken.
    pub fn new(
        source: Source,
        catalog: &Catalog,
        levels: Levels,
        topology: &Topology<'_>,
    ) -> Result<CasRequest> {
        let bound = source.bind(catalog, 0)?;
        let plan = CasPlan::new(&bound, source.is_batch())?;
        let keyspace = catalog
            .keyspace(&plan.keyspace)
            .ok_or_else(|| Error::invalid(format!("Keyspace {} does not exist", plan.keyspace)))?;
        check_levels(keyspace, levels, topology)?;
        Ok(CasRequest { source, plan })
    }

    /// The table and partition whose lock the transaction holds.
    pub fn lock_key(&self) -> (Uuid, &PartitionId) {
        (self.plan.table, &self.plan.partition)
    }
}

/// What a transaction decided.
pub(super) enum Outcome {
    /// The conditions failed: the answer, with the current values.
    NotApplied(ResultBody),
    /// The conditions hold: apply these writes, then answer `reply`.
    Apply {
        updates: Vec<PartitionUpdate>,
        reply: ResultBody,
    },
}

/// Reads the partition, evaluates the conditions and, when they hold, binds the writes
/// with a timestamp from `timestamp_above` (given the newest timestamp read). Must run
/// under the partition's lock.
pub(super) fn decide(
    request: &CasRequest,
    catalog: &Catalog,
    replica: &LocalReplica,
    max_unpaged_rows: usize,
    timestamp_above: impl FnOnce(i64) -> i64,
) -> Result<Outcome> {
    let plan = &request.plan;
    let table = catalog
        .table(&plan.keyspace, &plan.table_name)
        .filter(|t| t.id == plan.table)
        .ok_or_else(|| Error::invalid(format!("unconfigured table {}", plan.table_name)))?;
    let reader = Reader::new(table, catalog, replica, max_unpaged_rows);
    let state = reader.current(plan)?;
    if !state.applies(plan, table, &reader.types)? {
        let rows = state.failure_rows(plan, table);
        return Ok(Outcome::NotApplied(result(
            plan, table, catalog, false, rows,
        )));
    }
    let newest = reader.newest_timestamp(plan)?;
    let bound = request.source.bind(catalog, timestamp_above(newest))?;
    let updates = dml::merge_updates(bound.into_iter().flat_map(|b| b.updates).collect());
    Ok(Outcome::Apply {
        updates,
        reply: result(plan, table, catalog, true, Vec::new()),
    })
}

/// Cassandra's checks of a transaction's levels, and this build's refusal of RF > 1.
fn check_levels(keyspace: &KeyspaceDef, levels: Levels, topology: &Topology<'_>) -> Result<()> {
    let serial = levels.serial.unwrap_or(Consistency::Serial);
    if !matches!(serial, Consistency::Serial | Consistency::LocalSerial) {
        return Err(Error::invalid(
            "Invalid consistency for conditional update. Must be one of SERIAL or LOCAL_SERIAL",
        ));
    }
    if matches!(
        levels.commit,
        Consistency::Serial | Consistency::LocalSerial
    ) {
        return Err(Error::invalid(format!(
            "{} is not supported as conditional update commit consistency. Use ANY if you mean \"make sure it is accepted but I don't care how many replicas commit it for non-SERIAL reads\"",
            level_name(levels.commit)
        )));
    }
    if replicas(keyspace) > 1 {
        return Err(Error::invalid(NEEDS_PAXOS));
    }
    consistency::check(serial, Access::Read, keyspace, topology)?;
    consistency::check(levels.commit, Access::Write, keyspace, topology)
}

fn level_name(level: Consistency) -> &'static str {
    match level {
        Consistency::LocalSerial => "LOCAL_SERIAL",
        _ => "SERIAL",
    }
}

/// The keyspace's replication factor summed over data centres.
fn replicas(keyspace: &KeyspaceDef) -> usize {
    let parse = |v: &String| -> usize {
        v.split('/')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let simple = keyspace
        .replication
        .get("class")
        .is_some_and(|c| c.ends_with("SimpleStrategy"));
    keyspace
        .replication
        .iter()
        .filter(|(k, _)| match simple {
            true => k.as_str() == "replication_factor",
            false => k.as_str() != "class" && k.as_str() != "replication_factor",
        })
        .map(|(_, v)| parse(v))
        .sum()
}

/// The condition on one row (or the static row).
#[derive(Debug, Clone, PartialEq)]
enum RowCondition {
    Exists,
    NotExists,
    Columns(Vec<ColumnCondition>),
}

/// What a transaction reads and checks, from its first bind.
#[derive(Debug)]
struct CasPlan {
    table: Uuid,
    keyspace: String,
    table_name: String,
    partition: PartitionId,
    /// Conditions per row, by encoded clustering (storage order).
    rows: BTreeMap<Bytes, RowCondition>,
    /// Conditions on the static row.
    statics: Option<RowCondition>,
    /// `IF [NOT] EXISTS` of a whole-partition DELETE: whether live data must exist.
    partition_exists: Option<bool>,
    /// Rows the writes touch (their timestamps are read too).
    written: BTreeSet<Bytes>,
    /// Whether regular rows / static columns are read (else shown as null).
    read_regulars: bool,
    read_statics: bool,
    /// Columns of the failure rows; None for every column.
    selection: Option<Vec<usize>>,
}

impl CasPlan {
    fn new(bound: &[Conditional], is_batch: bool) -> Result<CasPlan> {
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
fn merge_condition(existing: &mut RowCondition, new: RowCondition) -> Result<()> {
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

fn mixed_exists() -> Error {
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

/// Reads a transaction's partition.
struct Reader<'a> {
    table: &'a TableDef,
    replica: &'a LocalReplica,
    layout: crate::storage::partition::TableLayout,
    /// Column types in table order, user types resolved.
    types: Vec<CqlType>,
    now_secs: u32,
    max_unpaged_rows: usize,
}

/// What the read found.
struct Current {
    /// Live rows among the conditioned ones, in storage order (static values merged in).
    rows: Vec<StoredRow>,
    /// The partition's first live row, or its static-only row (when statics matter).
    first: Option<StoredRow>,
}

impl<'a> Reader<'a> {
    fn new(
        table: &'a TableDef,
        catalog: &Catalog,
        replica: &'a LocalReplica,
        max_unpaged_rows: usize,
    ) -> Reader<'a> {
        Reader {
            table,
            replica,
            layout: restrict::layout(table, catalog),
            types: table
                .columns
                .iter()
                .map(|c| catalog.resolve_user_types(&table.keyspace, &c.ty))
                .collect(),
            now_secs: super::table_select::now_secs(),
            max_unpaged_rows,
        }
    }

    fn current(&self, plan: &CasPlan) -> Result<Current> {
        let rows = match plan.rows.is_empty() {
            true => Vec::new(),
            false => self.rows(&plan.partition, exact_ranges(plan.rows.keys())?, None)?,
        };
        let wants_first = plan.statics.is_some()
            || plan.partition_exists.is_some()
            || (plan.read_statics && rows.is_empty());
        let first = match wants_first {
            true => self
                .rows(&plan.partition, vec![comparable::full_range()], Some(1))?
                .into_iter()
                .next(),
            false => None,
        };
        Ok(Current { rows, first })
    }

    fn rows(
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
            filter: &|_| true,
        };
        let read = TableRead {
            replica: self.replica,
            table: self.table,
            layout: &self.layout,
            types: &self.types,
            now_secs: self.now_secs,
            max_unpaged_rows: self.max_unpaged_rows,
            consistency: Consistency::Serial,
        };
        Ok(read.run(&query, &QueryParameters::default())?.rows)
    }

    /// The newest timestamp stored for what the transaction reads or writes: the
    /// partition deletion, the static row, and the named rows (dead data included).
    fn newest_timestamp(&self, plan: &CasPlan) -> Result<i64> {
        let named: BTreeSet<&Bytes> = plan.rows.keys().chain(&plan.written).collect();
        let slice = Slice {
            ranges: exact_ranges(named.into_iter())?,
            reversed: false,
        };
        let limits = self
            .replica
            .limits(usize::MAX, self.now_secs, self.table.has_static());
        let (fragment, _) = self
            .replica
            .read(&self.layout, &plan.partition, &slice, None, &limits)
            .map_err(|e| Error::Server(format!("storage failure: {e}")))?;
        Ok(newest(&fragment))
    }
}

/// The newest timestamp in a fragment.
fn newest(fragment: &PartitionFragment) -> i64 {
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
fn exact_ranges<'b>(clusterings: impl Iterator<Item = &'b Bytes>) -> Result<Vec<ClusteringRange>> {
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
    fn applies(&self, plan: &CasPlan, table: &TableDef, types: &[CqlType]) -> Result<bool> {
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
    fn failure_rows(self, plan: &CasPlan, table: &TableDef) -> Vec<StoredRow> {
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
fn column_holds(c: &ColumnCondition, row: Option<&StoredRow>, types: &[CqlType]) -> Result<bool> {
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
        op => compare(
            op,
            &value_ty,
            current.as_ref(),
            wanted.first().and_then(Option::as_ref),
        ),
    }
}

fn is_empty_collection(ty: &CqlType, value: Option<&Bytes>) -> bool {
    value.is_some_and(|v| {
        crate::cql::serialized::split_collection(ty, v).is_ok_and(|elements| elements.is_empty())
    })
}

/// `current op wanted`, with Cassandra's null rules: only `=` and `!=` compare with null.
fn compare(
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
fn element(ty: &CqlType, whole: Option<&Bytes>, key: &Bytes) -> Result<(Option<Bytes>, CqlType)> {
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
fn tuple_field(value: &Bytes, index: usize) -> Option<Bytes> {
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

/// The RESULT of a transaction: `[applied]`, then on failure the selected columns.
fn result(
    plan: &CasPlan,
    table: &TableDef,
    catalog: &Catalog,
    applied: bool,
    rows: Vec<StoredRow>,
) -> ResultBody {
    let spec = |name: &str, ty: &CqlType| ColumnSpec {
        keyspace: table.keyspace.clone(),
        table: table.name.clone(),
        name: name.to_owned(),
        data_type: super::select::data_type(ty, &table.keyspace, catalog),
    };
    let flag = Some(Bytes::from_static(if applied { &[1] } else { &[0] }));
    let mut columns = vec![spec(APPLIED, &CqlType::Native(NativeType::Boolean))];
    let mut out = vec![vec![flag.clone()]];
    if !rows.is_empty() {
        let selection: Vec<usize> = match &plan.selection {
            Some(columns) => columns.clone(),
            None => (0..table.columns.len()).collect(),
        };
        for &i in &selection {
            if let Some(c) = table.columns.get(i) {
                columns.push(spec(&c.name, &c.ty));
            }
        }
        out = rows
            .iter()
            .map(|row| {
                let values = selection
                    .iter()
                    .map(|&i| row.values.get(i).cloned().flatten());
                std::iter::once(flag.clone()).chain(values).collect()
            })
            .collect();
    }
    ResultBody::Rows(Rows {
        metadata: ResultMetadata {
            column_count: columns.len(),
            columns,
            paging_state: None,
            no_metadata: false,
        },
        rows: out,
    })
}
