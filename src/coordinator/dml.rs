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

mod build;
mod literal;
mod terms;
#[cfg(test)]
mod tests;
mod walk;

use crate::cql::ast::{Batch, BatchKind, IfClause, Statement};
use crate::error::{Error, Result};
use crate::schema::{Catalog, TableDef};
use crate::storage::partition::PartitionUpdate;

use super::bind::Slot;
use terms::{Binder, SlotSink};

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
            walk::using_terms(&batch.using, catalog, "", &mut sink)?;
            for statement in &batch.statements {
                let table = writable_table(statement, catalog, keyspace)?;
                walk::walk(statement, table, catalog, &mut sink)?;
            }
        }
        _ => {
            let table = writable_table(statement, catalog, keyspace)?;
            walk::walk(statement, table, catalog, &mut sink)?;
        }
    }
    Ok(sink.slots)
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
    if let Some(clause) = if_clause(statement) {
        let what = match clause {
            IfClause::NotExists => "IF NOT EXISTS",
            IfClause::Exists => "IF EXISTS",
            IfClause::Conditions(_) => "IF conditions",
        };
        return Err(Error::invalid(format!(
            "Conditional updates ({what}) are not supported yet by this ringcache build: they arrive with lightweight transactions"
        )));
    }
    Ok(table)
}

fn if_clause(statement: &Statement) -> Option<IfClause> {
    match statement {
        Statement::Insert(s) if s.if_not_exists => Some(IfClause::NotExists),
        Statement::Update(s) => s.if_clause.clone(),
        Statement::Delete(s) => s.if_clause.clone(),
        _ => None,
    }
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
    Error::invalid(
        "Counter tables are not supported yet by this ringcache build: they need a real design (Cassandra's counters are not last-write-wins)",
    )
}
