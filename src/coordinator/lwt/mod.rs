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
//! key first in a batch), values that were not read shown as null. With more than one
//! replica the same decision runs inside a Paxos round among the replicas
//! (`coordinator/paxos/`): a partition lock on one node cannot isolate writes that other
//! coordinators send.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use uuid::Uuid;

use super::consistency::{self, Access, Topology};
use super::dml::{self, Conditional, WriteInput};
use super::read::{ReadPath, StoredRow};
use crate::cluster::message::{CasItem, CasKind, ForwardedCas};
use crate::cql::ast::{Batch, Operator, Statement};
use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};
use crate::protocol::{ColumnSpec, Consistency, ResultBody, ResultMetadata, Rows, Value};
use crate::replica::LocalReplica;
use crate::schema::{Catalog, KeyspaceDef, TableDef};
use crate::storage::partition::{PartitionId, PartitionUpdate};

mod plan;
mod state;
#[cfg(test)]
mod tests;

use plan::CasPlan;
pub(super) use state::exact_ranges;
use state::Reader;

/// Lock shards: enough that unrelated hot partitions rarely share one.
const LOCK_SHARDS: usize = 1024;

/// Cassandra's name of the result column.
const APPLIED: &str = "[applied]";

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
        text: String,
        keyspace: Option<String>,
        values: Vec<Value>,
    },
    /// A CQL-text BATCH with conditions, bound with one list of values.
    TextBatch {
        batch: Batch,
        text: String,
        keyspace: Option<String>,
        values: Vec<Value>,
    },
    /// A protocol BATCH with conditions: each statement with its text, keyspace and values.
    Items(Vec<(Statement, String, Option<String>, Vec<Value>)>),
}

impl Source {
    /// The transaction as its coordinator forwards it to the partition's replica.
    pub fn forwarded(&self) -> (CasKind, Vec<CasItem>) {
        let item = |text: &String, keyspace: &Option<String>, values: &Vec<Value>| CasItem {
            text: text.clone(),
            keyspace: keyspace.clone(),
            values: values.clone(),
        };
        match self {
            Source::Statement {
                text,
                keyspace,
                values,
                ..
            } => (CasKind::Statement, vec![item(text, keyspace, values)]),
            Source::TextBatch {
                text,
                keyspace,
                values,
                ..
            } => (CasKind::TextBatch, vec![item(text, keyspace, values)]),
            Source::Items(items) => (
                CasKind::Items,
                items.iter().map(|(_, t, ks, v)| item(t, ks, v)).collect(),
            ),
        }
    }

    /// A forwarded transaction, parsed again where it runs.
    pub fn from_forwarded(kind: CasKind, items: Vec<CasItem>) -> Result<Source> {
        let parse = |item: &CasItem| crate::cql::parse_statement(&item.text).map_err(Error::from);
        let one = |items: &[CasItem]| match items {
            [only] => Ok(only.clone()),
            _ => Err(Error::Server(
                "a forwarded transaction has the wrong shape".into(),
            )),
        };
        match kind {
            CasKind::Statement => {
                let item = one(&items)?;
                Ok(Source::Statement {
                    statement: parse(&item)?,
                    text: item.text,
                    keyspace: item.keyspace,
                    values: item.values,
                })
            }
            CasKind::TextBatch => {
                let item = one(&items)?;
                let Statement::Batch(batch) = parse(&item)? else {
                    return Err(Error::Server("a forwarded batch is not a batch".into()));
                };
                Ok(Source::TextBatch {
                    batch,
                    text: item.text,
                    keyspace: item.keyspace,
                    values: item.values,
                })
            }
            CasKind::Items => items
                .into_iter()
                .map(|item| Ok((parse(&item)?, item.text, item.keyspace, item.values)))
                .collect::<Result<Vec<_>>>()
                .map(Source::Items),
        }
    }

    fn is_batch(&self) -> bool {
        !matches!(self, Source::Statement { .. })
    }

    fn bind<'c>(
        &'c self,
        catalog: &'c Catalog,
        lists: &'c dyn dml::ListReader,
        timestamp: i64,
    ) -> Result<Vec<Conditional<'c>>> {
        let now_secs = crate::clock::now_secs();
        let input = |keyspace: &'c Option<String>, values: &'c [Value]| WriteInput {
            catalog,
            keyspace: keyspace.as_deref(),
            values,
            timestamp,
            now_secs,
            lists,
        };
        match self {
            Source::Statement {
                statement,
                keyspace,
                values,
                ..
            } => Ok(vec![dml::bind_conditional(
                statement,
                &input(keyspace, values),
                false,
            )?]),
            Source::TextBatch {
                batch,
                keyspace,
                values,
                ..
            } => dml::bind_conditional_batch(batch, &input(keyspace, values)),
            Source::Items(items) => items
                .iter()
                .map(|(s, _, ks, values)| dml::bind_conditional(s, &input(ks, values), true))
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
    levels: Levels,
}

impl CasRequest {
    /// Binds `source` once: every refusal happens here, before any lock is taken.
    pub fn new(
        source: Source,
        catalog: &Catalog,
        lists: &dyn dml::ListReader,
        levels: Levels,
        topology: &Topology<'_>,
    ) -> Result<CasRequest> {
        let bound = source.bind(catalog, lists, 0)?;
        let plan = CasPlan::new(&bound, source.is_batch())?;
        let keyspace = catalog
            .keyspace(&plan.keyspace)
            .ok_or_else(|| Error::invalid(format!("Keyspace {} does not exist", plan.keyspace)))?;
        check_levels(keyspace, levels, topology)?;
        Ok(CasRequest {
            source,
            plan,
            levels,
        })
    }

    /// The table and partition whose lock the transaction holds.
    pub fn lock_key(&self) -> (Uuid, &PartitionId) {
        (self.plan.table, &self.plan.partition)
    }

    /// The keyspace the transaction's partition belongs to.
    pub fn keyspace(&self) -> &str {
        &self.plan.keyspace
    }

    /// The levels the transaction runs at.
    pub fn levels(&self) -> Levels {
        self.levels
    }

    /// The transaction as forwarded to its partition's replica.
    pub fn forwarded(&self) -> ForwardedCas {
        let (kind, items) = self.source.forwarded();
        ForwardedCas {
            kind,
            items,
            serial: self.levels.serial,
            commit: self.levels.commit,
        }
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

/// How a transaction's writes are timestamped.
pub(super) enum Stamp<'a> {
    /// Strictly above the newest timestamp stored on this node's replica for what the
    /// transaction reads or writes (the one-replica path): the function is given that newest
    /// timestamp and returns the one to use.
    Above(&'a LocalReplica, &'a (dyn Fn(i64) -> i64 + Sync)),
    /// Exactly this one: the Paxos ballot's time.
    Exactly(i64),
}

/// Where and how [`decide`] reads, binds and timestamps.
pub(super) struct Decide<'a> {
    pub catalog: &'a Catalog,
    /// This node's replica (the one-replica path) or the partition's replicas (Paxos).
    pub path: ReadPath<'a>,
    /// The level the read runs at through replicas (the Paxos level's quorum).
    pub read_level: Consistency,
    /// The stored lists the writes read (list operations by index or value).
    pub lists: &'a (dyn dml::ListReader + Sync),
    pub max_unpaged_rows: usize,
    pub stamp: Stamp<'a>,
}

/// Reads the partition, evaluates the conditions and, when they hold, binds the writes
/// with their final timestamp. Must run under the partition's lock (one replica) or within
/// a Paxos round holding a promise.
pub(super) async fn decide(request: &CasRequest, with: &Decide<'_>) -> Result<Outcome> {
    let (plan, catalog) = (&request.plan, with.catalog);
    let table = catalog
        .table(&plan.keyspace, &plan.table_name)
        .filter(|t| t.id == plan.table)
        .ok_or_else(|| Error::invalid(format!("unconfigured table {}", plan.table_name)))?;
    let reader = Reader::new(
        table,
        catalog,
        with.path,
        with.read_level,
        with.max_unpaged_rows,
    );
    let state = reader.current(plan).await?;
    if !state.applies(plan, table, &reader.types)? {
        let rows = state.failure_rows(plan, table);
        return Ok(Outcome::NotApplied(result(
            plan, table, catalog, false, rows,
        )));
    }
    let timestamp = match &with.stamp {
        Stamp::Above(replica, above) => above(reader.newest_timestamp(replica, plan).await?),
        Stamp::Exactly(timestamp) => *timestamp,
    };
    let bound = request.source.bind(catalog, with.lists, timestamp)?;
    let updates = dml::merge_updates(bound.into_iter().flat_map(|b| b.updates).collect());
    Ok(Outcome::Apply {
        updates,
        reply: result(plan, table, catalog, true, Vec::new()),
    })
}

/// Cassandra's checks of a transaction's levels.
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
    consistency::check(serial, Access::Read, keyspace, topology)?;
    consistency::check(levels.commit, Access::Write, keyspace, topology)
}

fn level_name(level: Consistency) -> &'static str {
    match level {
        Consistency::LocalSerial => "LOCAL_SERIAL",
        _ => "SERIAL",
    }
}

/// Whether the keyspace keeps one replica of each partition: its transactions run on that
/// replica under the partition's lock instead of through Paxos.
pub(super) fn single_replica(keyspace: &KeyspaceDef) -> bool {
    replicas(keyspace) == 1
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
