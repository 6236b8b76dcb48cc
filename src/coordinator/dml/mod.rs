//! INSERT, UPDATE, DELETE and BATCH turned into the [`PartitionUpdate`]s a replica applies.
//!
//! Binding happens in two passes. The *walk* ([`walk`]) reads a statement in text order —
//! the order Cassandra numbers bind markers in — and resolves every term to a value (a
//! literal converted, or the next bound value), producing a small description of the write:
//! key restrictions and column operations. PREPARE runs the same walk with a marker sink that
//! records each marker's name and type instead of consuming values, so the prepared metadata
//! and execution can never disagree on marker order. The *build* ([`build`]) then applies
//! Cassandra's write semantics to that description: which partitions and rows it touches,
//! row markers for INSERT, tombstones for null and DELETE, TTLs, static rows, non-frozen
//! collections as one cell per element. Checks that depend only on the statement (unknown
//! columns, primary key columns in SET) fail in the walk, so PREPARE reports them too.
//!
//! Everything a write can refuse is refused before a single update is returned: a batch
//! is bound completely or not at all.

mod batch_size;
mod build;
mod literal;
mod terms;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_literals;
mod walk;

use bytes::Bytes;

use crate::cql::ast::{Batch, BatchKind, IfClause, Operator, Statement};
use crate::cql::types::CqlType;
use crate::error::{Error, Result};
use crate::schema::{Catalog, TableDef};
use crate::storage::partition::{PartitionId, PartitionUpdate};

use super::bind::Slot;
use super::lwt;
use terms::{Binder, SlotSink, Val};

pub(super) use batch_size::{check as check_batch_size, BatchLimits};
pub(super) use build::merge_updates;
/// A literal's serialized value as a `ty` (also what SELECT's WHERE and selectors use).
pub(super) use literal::bytes as literal_bytes;

/// What a write is bound with.
pub(super) struct WriteInput<'a> {
    /// The schema the statement is checked against.
    pub catalog: &'a Catalog,
    /// The session's (or the prepared statement's) keyspace.
    pub keyspace: Option<&'a str>,
    /// Bound values in marker order (names already resolved to positions).
    pub values: &'a [crate::protocol::Value],
    /// The write timestamp in µs: the client's default timestamp or the coordinator's clock.
    pub timestamp: i64,
    /// "Now" in seconds since the epoch, for TTL expiry and local deletion times.
    pub now_secs: u32,
    /// Reads a stored list, for the list operations that need it (`l[i] = v`, `DELETE
    /// l[i]`, `l = l - v`).
    pub lists: &'a dyn ListReader,
}

/// The live elements of a non-frozen list as stored, for list operations by index or value.
pub(super) trait ListReader {
    /// The elements of `column` in `partition` of `table`, in the row `clustering` (the
    /// static row when None), in list order: each element's cell path and value.
    fn elements(
        &self,
        table: &crate::schema::TableDef,
        partition: &crate::storage::partition::PartitionId,
        clustering: Option<&bytes::Bytes>,
        column: &str,
    ) -> Result<Vec<(bytes::Bytes, bytes::Bytes)>>;
}

/// The (keyspace, table) a DML statement writes.
pub(super) fn target(statement: &Statement, keyspace: Option<&str>) -> Result<(String, String)> {
    let name = match statement {
        Statement::Insert(s) => &s.table,
        Statement::Update(s) => &s.table,
        Statement::Delete(s) => &s.table,
        _ => {
            return Err(Error::invalid(
                "Only INSERT, UPDATE and DELETE statements write a table",
            ))
        }
    };
    let ks = name.keyspace.as_deref().or(keyspace).ok_or_else(|| {
        Error::invalid(
            "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename",
        )
    })?;
    Ok((ks.to_owned(), name.name.clone()))
}

/// Binds one INSERT/UPDATE/DELETE: one update per partition it touches (IN on the
/// partition key gives several).
pub(super) fn bind_write(
    statement: &Statement,
    input: &WriteInput,
) -> Result<Vec<PartitionUpdate>> {
    let mut binder = Binder::new(input.values);
    let updates = bind_one(statement, input, &mut binder, None)?;
    binder.finish()?;
    Ok(updates)
}

/// The bind markers of a DML statement (or a BATCH of them) in text order, for PREPARE.
pub(super) fn write_slots(
    statement: &Statement,
    catalog: &Catalog,
    keyspace: Option<&str>,
) -> Result<Vec<Slot>> {
    let mut sink = SlotSink::default();
    match statement {
        Statement::Batch(batch) => {
            check_batch(batch)?;
            check_conditional_batch(batch, keyspace)?;
            walk::using_terms(&batch.using, catalog, "", &mut sink)?;
            for statement in &batch.statements {
                let table = writable_table(statement, catalog, keyspace)?;
                let write = walk::walk(statement, table, catalog, &mut sink)?;
                condition_slots(statement, &write, catalog, &mut sink)?;
            }
        }
        _ => {
            let table = writable_table(statement, catalog, keyspace)?;
            let write = walk::walk(statement, table, catalog, &mut sink)?;
            condition_slots(statement, &write, catalog, &mut sink)?;
        }
    }
    Ok(sink.slots)
}

/// Records the markers of a statement's IF conditions, after its own.
fn condition_slots(
    statement: &Statement,
    write: &walk::Write,
    catalog: &Catalog,
    sink: &mut SlotSink,
) -> Result<()> {
    let clause = if_clause(statement);
    if clause.is_some() && write.using.timestamp.is_some() {
        return Err(conditional_timestamp());
    }
    if let Some(IfClause::Conditions(conditions)) = clause {
        walk::condition_terms(&conditions, write.table, catalog, sink)?;
    }
    Ok(())
}

/// A CQL-text BATCH: its statements bound in order with the batch's USING TIMESTAMP,
/// mutations of the same partition merged into one update.
pub(super) fn bind_batch(batch: &Batch, input: &WriteInput) -> Result<Vec<PartitionUpdate>> {
    check_batch(batch)?;
    let mut binder = Binder::new(input.values);
    let using = walk::using_terms(&batch.using, input.catalog, "", &mut binder)?;
    let batch_timestamp = build::timestamp(using.timestamp.as_ref())?;
    let mut updates = Vec::new();
    for statement in &batch.statements {
        if batch_timestamp.is_some() && has_own_timestamp(statement) {
            return Err(Error::invalid(
                "Timestamp must be set either on BATCH or individual statements",
            ));
        }
        updates.extend(bind_one(statement, input, &mut binder, batch_timestamp)?);
    }
    binder.finish()?;
    Ok(merge_updates(updates))
}

fn bind_one(
    statement: &Statement,
    input: &WriteInput,
    binder: &mut Binder,
    batch_timestamp: Option<i64>,
) -> Result<Vec<PartitionUpdate>> {
    if if_clause(statement).is_some() {
        // Conditional writes are bound by `bind_conditional`, under their partition's lock;
        // binding one here would drop its condition.
        return Err(Error::invalid(
            "Conditional writes run as lightweight transactions, not as plain writes",
        ));
    }
    let table = writable_table(statement, input.catalog, input.keyspace)?;
    let write = walk::walk(statement, table, input.catalog, binder)?;
    build::build(&write, input, batch_timestamp)
}

/// The table a write goes to, refusing what this build cannot write.
fn writable_table<'c>(
    statement: &Statement,
    catalog: &'c Catalog,
    keyspace: Option<&str>,
) -> Result<&'c TableDef> {
    let (ks, name) = target(statement, keyspace)?;
    let keyspace = catalog
        .keyspace(&ks)
        .ok_or_else(|| Error::invalid(format!("Keyspace {ks} does not exist")))?;
    let table = keyspace
        .tables
        .get(&name)
        .ok_or_else(|| Error::invalid(format!("unconfigured table {name}")))?;
    if keyspace.is_system() {
        // System tables are answered from the node's state, never from storage.
        return Err(Error::Unauthorized(format!(
            "{ks} keyspace is not user-modifiable."
        )));
    }
    if table.is_counter() {
        return Err(counters_unsupported());
    }
    Ok(table)
}

/// The IF clause of a write, if it has one.
pub(super) fn if_clause(statement: &Statement) -> Option<IfClause> {
    match statement {
        Statement::Insert(s) if s.if_not_exists => Some(IfClause::NotExists),
        Statement::Update(s) => s.if_clause.clone(),
        Statement::Delete(s) => s.if_clause.clone(),
        _ => None,
    }
}

/// A write of a lightweight transaction, bound: its updates, what its read-before-write
/// looks at, and its condition (`lwt/`).
pub(super) struct Conditional<'c> {
    pub table: &'c TableDef,
    /// "updates" or "deletions", as Cassandra's messages name the statement.
    pub what: &'static str,
    /// The partitions it names (one, unless IN was used).
    pub partitions: Vec<PartitionId>,
    /// The encoded clusterings of the rows it names; None when it writes static columns
    /// or deletes the partition.
    pub rows: Option<Vec<Bytes>>,
    pub updates: Vec<PartitionUpdate>,
    /// None for an unconditional statement of a conditional batch.
    pub clause: Option<lwt::Clause>,
}

/// Binds one statement of a lightweight transaction with its own values (a conditional
/// statement, or an item of a protocol BATCH that has conditions), IF markers last.
pub(super) fn bind_conditional<'c>(
    statement: &Statement,
    input: &WriteInput<'c>,
    in_batch: bool,
) -> Result<Conditional<'c>> {
    let mut binder = Binder::new(input.values);
    let bound = conditional_one(statement, input, &mut binder, in_batch)?;
    binder.finish()?;
    Ok(bound)
}

/// Binds a CQL-text BATCH that has conditions: every statement, conditional or not.
pub(super) fn bind_conditional_batch<'c>(
    batch: &Batch,
    input: &WriteInput<'c>,
) -> Result<Vec<Conditional<'c>>> {
    check_batch(batch)?;
    check_conditional_batch(batch, input.keyspace)?;
    let mut binder = Binder::new(input.values);
    walk::using_terms(&batch.using, input.catalog, "", &mut binder)?;
    let bound = batch
        .statements
        .iter()
        .map(|s| conditional_one(s, input, &mut binder, true))
        .collect::<Result<Vec<_>>>()?;
    binder.finish()?;
    Ok(bound)
}

/// Whether a CQL-text BATCH holds a conditional statement.
pub(super) fn batch_has_conditions(batch: &Batch) -> bool {
    batch.statements.iter().any(|s| if_clause(s).is_some())
}

fn conditional_one<'c>(
    statement: &Statement,
    input: &WriteInput<'c>,
    binder: &mut Binder,
    in_batch: bool,
) -> Result<Conditional<'c>> {
    let table = writable_table(statement, input.catalog, input.keyspace)?;
    let write = walk::walk(statement, table, input.catalog, binder)?;
    let clause = if_clause(statement);
    if write.using.timestamp.is_some() && (in_batch || clause.is_some()) {
        return Err(if in_batch {
            conditional_batch_timestamp()
        } else {
            conditional_timestamp()
        });
    }
    let clause = match clause {
        None => None,
        Some(IfClause::Exists) => Some(lwt::Clause::Exists),
        Some(IfClause::NotExists) => Some(lwt::Clause::NotExists),
        Some(IfClause::Conditions(conditions)) => {
            let terms = walk::condition_terms(&conditions, table, input.catalog, binder)?;
            let bound = terms
                .into_iter()
                .map(|t| bound_condition(t, table))
                .collect::<Result<_>>()?;
            Some(lwt::Clause::Columns(bound))
        }
    };
    let (partitions, rows) = build::named_keys(&write, input)?;
    let updates = build::build(&write, input, None)?;
    let what = match write.kind {
        walk::Kind::Delete => "deletions",
        _ => "updates",
    };
    Ok(Conditional {
        table,
        what,
        partitions,
        rows,
        updates,
        clause,
    })
}

/// A condition's resolved terms as the evaluation wants them: values checked, `IN ?` split.
fn bound_condition(terms: walk::ConditionTerms, table: &TableDef) -> Result<lwt::ColumnCondition> {
    let column = table
        .columns
        .iter()
        .position(|c| c.name == terms.column.name)
        .ok_or_else(|| Error::Server(format!("column {} vanished", terms.column.name)))?;
    let unset = || Error::invalid("Invalid 'unset' value in condition");
    let part = match terms.part {
        walk::ConditionPart::Whole => lwt::Part::Whole,
        walk::ConditionPart::Field(index) => lwt::Part::Field(index),
        walk::ConditionPart::Element(Val::Bytes(key)) => lwt::Part::Element(key),
        walk::ConditionPart::Element(Val::Unset) => return Err(unset()),
        walk::ConditionPart::Element(Val::Null) => {
            let what = match terms.column.ty.unfrozen() {
                CqlType::List(_) => "list",
                _ => "map",
            };
            return Err(Error::invalid(format!(
                "Invalid null value for {what} element access"
            )));
        }
    };
    if let lwt::Part::Element(index) = &part {
        if let (CqlType::List(_), Ok(bytes)) = (
            terms.column.ty.unfrozen(),
            <[u8; 4]>::try_from(index.as_ref()),
        ) {
            let index = i32::from_be_bytes(bytes);
            if index < 0 {
                return Err(Error::invalid(format!(
                    "Invalid negative list index {index}"
                )));
            }
        }
    }
    let mut values = Vec::with_capacity(terms.values.len());
    for value in terms.values {
        values.push(match value {
            Val::Bytes(b) => Some(b),
            Val::Null => None,
            // Cassandra drops unset values from an IN list, and a CONTAINS of an unset
            // value holds for no row (it keeps no value to compare).
            Val::Unset if terms.op == Operator::In && !terms.in_list => continue,
            Val::Unset if matches!(terms.op, Operator::Contains | Operator::ContainsKey) => {
                return Ok(lwt::ColumnCondition {
                    column,
                    part,
                    op: terms.op,
                    values: Vec::new(),
                })
            }
            Val::Unset => return Err(unset()),
        });
    }
    if terms.in_list {
        let list = values
            .pop()
            .flatten()
            .ok_or_else(|| Error::invalid("Invalid null list in IN condition"))?;
        let any_list = CqlType::List(Box::new(CqlType::Native(
            crate::cql::types::NativeType::Blob,
        )));
        values = crate::cql::serialized::split_collection(&any_list, &list)
            .map_err(|e| Error::invalid(format!("Invalid list in IN condition: {e}")))?
            .into_iter()
            .map(|(_, element)| Some(element))
            .collect();
    }
    Ok(lwt::ColumnCondition {
        column,
        part,
        op: terms.op,
        values,
    })
}

/// Cassandra's refusals for a BATCH with conditions that depend only on its text.
fn check_conditional_batch(batch: &Batch, keyspace: Option<&str>) -> Result<()> {
    if !batch_has_conditions(batch) {
        return Ok(());
    }
    if batch.using.timestamp.is_some() || batch.statements.iter().any(has_own_timestamp) {
        return Err(conditional_batch_timestamp());
    }
    let mut tables = batch.statements.iter().map(|s| target(s, keyspace));
    if let Some(first) = tables.next().transpose()? {
        for other in tables {
            if other? != first {
                return Err(Error::invalid(
                    "Batch with conditions cannot span multiple tables",
                ));
            }
        }
    }
    Ok(())
}

fn conditional_timestamp() -> Error {
    Error::invalid("Cannot provide custom timestamp for conditional updates")
}

fn conditional_batch_timestamp() -> Error {
    Error::invalid("Cannot provide custom timestamp for conditional BATCH")
}

fn check_batch(batch: &Batch) -> Result<()> {
    if batch.kind == BatchKind::Counter {
        return Err(counters_unsupported());
    }
    if batch.using.ttl.is_some() {
        return Err(Error::invalid(
            "Global TTL on the BATCH statement is not supported.",
        ));
    }
    let writes_only = batch.statements.iter().all(|s| {
        matches!(
            s,
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
        )
    });
    if !writes_only {
        return Err(Error::invalid(
            "Only INSERT, UPDATE and DELETE statements are allowed in a BATCH",
        ));
    }
    if batch.using.timestamp.is_some() && batch.statements.iter().any(has_own_timestamp) {
        return Err(Error::invalid(
            "Timestamp must be set either on BATCH or individual statements",
        ));
    }
    Ok(())
}

fn has_own_timestamp(statement: &Statement) -> bool {
    let using = match statement {
        Statement::Insert(s) => &s.using,
        Statement::Update(s) => &s.using,
        Statement::Delete(s) => &s.using,
        _ => return false,
    };
    using.timestamp.is_some()
}

fn counters_unsupported() -> Error {
    Error::not_supported_plural(
        "Counter tables",
        Some(": they need a real design (Cassandra's counters are not last-write-wins)"),
    )
}
