//! Prepared statements: one bounded, server-wide cache (moka) keyed by Cassandra's id,
//! MD5(keyspace + query text), so the id is the same on every connection and after a
//! re-prepare — drivers compare them (design §7). Entries that read a table are
//! evicted when it is altered or dropped: result metadata a driver caches under
//! skip_metadata must never go stale silently.

use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use moka::sync::Cache;

use super::bind::{select_slots, Slot};
use super::plan::PlanSlot;
use super::select::data_type;
use super::Reply;
use crate::cql::ast::{
    Assignment, ColumnTarget, IfClause, InsertValues, Relation, Statement, Term, Using,
};
use crate::error::{Error, Result};
use crate::protocol::{
    ColumnSpec, PreparedMetadata, PreparedResult, QueryParameters, ResultBody, ResultMetadata,
    SchemaChange,
};
use crate::schema::Catalog;

/// A prepared statement and what the driver was told about it.
pub(super) struct Prepared {
    pub statement: Statement,
    /// The statement's text (a prepared DDL statement is proposed to the metadata log as
    /// text).
    pub text: String,
    /// The keyspace in effect when it was prepared.
    pub keyspace: Option<String>,
    /// The (keyspace, table)s it reads or writes, for invalidation.
    reads: Vec<(String, String)>,
    slots: Vec<Slot>,
    result: PreparedResult,
    /// The plan its executions share.
    pub plan: PlanSlot,
}

impl Prepared {
    /// Parses metadata for `statement` as prepared in `keyspace`.
    pub fn new(
        query: &str,
        statement: Statement,
        keyspace: Option<&str>,
        catalog: &Catalog,
    ) -> Result<Prepared> {
        check_functions(&statement)?;
        let id = statement_id(query, keyspace);
        let (reads, slots, bind_columns, result_metadata) = match &statement {
            Statement::Select(select) => {
                let ks = select.table.keyspace.as_deref().or(keyspace).ok_or_else(|| {
                    Error::invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
                })?;
                let table = catalog.table(ks, &select.table.name).ok_or_else(|| {
                    Error::invalid(format!("unconfigured table {}", select.table.name))
                })?;
                if !catalog.keyspace(ks).is_some_and(|k| k.is_system()) {
                    super::restrict::check_select(select, table)?;
                }
                let slots = select_slots(select, table)?;
                let spec = |name: &str, ty: &crate::cql::types::CqlType| ColumnSpec {
                    keyspace: ks.to_owned(),
                    table: table.name.clone(),
                    name: name.to_owned(),
                    data_type: data_type(ty, ks, catalog),
                };
                let binds: Vec<ColumnSpec> = slots.iter().map(|s| spec(&s.name, &s.ty)).collect();
                let result = super::select::result_metadata(select, table, catalog)?;
                (
                    vec![(ks.to_owned(), table.name.clone())],
                    slots,
                    binds,
                    result,
                )
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let (ks, name) = super::dml::target(&statement, keyspace)?;
                let slots = super::dml::write_slots(&statement, catalog, keyspace)?;
                let binds = bind_specs(&slots, &ks, &name, catalog);
                (vec![(ks, name)], slots, binds, ResultMetadata::default())
            }
            Statement::Batch(_) => {
                let slots = super::dml::write_slots(&statement, catalog, keyspace)?;
                let (ks, name) = batch_table(&statement, keyspace);
                let binds = bind_specs(&slots, &ks, &name, catalog);
                (
                    batch_tables(&statement, keyspace),
                    slots,
                    binds,
                    ResultMetadata::default(),
                )
            }
            Statement::Truncate(_) => {
                return Err(Error::invalid(
                    "TRUNCATE cannot be prepared by this ringcache build; send it as a query",
                ))
            }
            Statement::Unsupported { what } => return Err(Error::not_supported(what, None)),
            _ => (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                ResultMetadata::default(),
            ),
        };
        let pk_indexes = partition_key_indexes(&slots, count_pk(&statement, catalog, keyspace));
        let result = PreparedResult {
            id,
            metadata: PreparedMetadata {
                pk_indexes,
                columns: bind_columns,
            },
            result_metadata,
        };
        Ok(Prepared {
            statement,
            text: query.to_owned(),
            keyspace: keyspace.map(str::to_owned),
            reads,
            slots,
            result,
            plan: PlanSlot::default(),
        })
    }

    /// Reorders named values (flag 0x40) into marker order.
    pub fn name_values(&self, params: &QueryParameters) -> Result<QueryParameters> {
        let Some(names) = &params.values.names else {
            if params.values.values.len() != self.slots.len() {
                return Err(Error::invalid(format!(
                    "There were {} markers(?) in CQL but {} bound variables",
                    self.slots.len(),
                    params.values.values.len()
                )));
            }
            return Ok(params.clone());
        };
        let mut ordered = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let position = names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&slot.name));
            let value = position.and_then(|i| params.values.values.get(i)).cloned();
            ordered.push(value.ok_or_else(|| {
                Error::invalid(format!("Missing value for bind variable {}", slot.name))
            })?);
        }
        let mut params = params.clone();
        params.values.values = ordered;
        params.values.names = None;
        Ok(params)
    }

    /// Drops the column specs from a Rows result when the client asked to skip them.
    pub fn shape_result(&self, result: Reply, skip_metadata: bool) -> Reply {
        match result {
            Reply::Rows(mut rows) if skip_metadata => {
                rows.no_metadata = true;
                Reply::Rows(rows)
            }
            Reply::Result(ResultBody::Rows(mut rows)) if skip_metadata => {
                rows.metadata.no_metadata = true;
                Reply::Result(ResultBody::Rows(rows))
            }
            other => other,
        }
    }
}

/// The bind markers' column specs, named and typed as the driver binds them.
fn bind_specs(slots: &[Slot], keyspace: &str, table: &str, catalog: &Catalog) -> Vec<ColumnSpec> {
    slots
        .iter()
        .map(|s| ColumnSpec {
            keyspace: keyspace.to_owned(),
            table: table.to_owned(),
            name: s.name.clone(),
            data_type: data_type(&s.ty, keyspace, catalog),
        })
        .collect()
}

/// Every (keyspace, table) a batch writes.
fn batch_tables(statement: &Statement, keyspace: Option<&str>) -> Vec<(String, String)> {
    match statement {
        Statement::Batch(batch) => batch
            .statements
            .iter()
            .filter_map(|s| super::dml::target(s, keyspace).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// The keyspace and table a batch's first statement writes (what its bind specs name).
fn batch_table(statement: &Statement, keyspace: Option<&str>) -> (String, String) {
    let Statement::Batch(batch) = statement else {
        return Default::default();
    };
    batch
        .statements
        .first()
        .and_then(|s| super::dml::target(s, keyspace).ok())
        .unwrap_or_default()
}

fn count_pk(statement: &Statement, catalog: &Catalog, keyspace: Option<&str>) -> usize {
    let name = match statement {
        Statement::Select(select) => &select.table,
        Statement::Insert(s) => &s.table,
        Statement::Update(s) => &s.table,
        Statement::Delete(s) => &s.table,
        _ => return 0,
    };
    let ks = name.keyspace.as_deref().or(keyspace).unwrap_or_default();
    catalog
        .table(ks, &name.name)
        .map_or(0, |t| t.partition_key().len())
}

/// `pk_index`: for each partition-key column, the marker that sets it — only when every
/// key column has one, since a driver can route only with the whole key.
fn partition_key_indexes(slots: &[Slot], key_columns: usize) -> Vec<u16> {
    let indexes: Vec<u16> = (0..key_columns)
        .filter_map(|k| {
            slots
                .iter()
                .position(|s| s.partition_key == Some(k))
                .map(|i| i as u16)
        })
        .collect();
    if indexes.len() == key_columns {
        indexes
    } else {
        Vec::new()
    }
}

/// Cassandra's statement id: MD5 of the keyspace (if any) followed by the query text.
fn statement_id(query: &str, keyspace: Option<&str>) -> Bytes {
    let mut md5 = Md5::new();
    if let Some(ks) = keyspace {
        md5.update(ks.as_bytes());
    }
    md5.update(query.as_bytes());
    Bytes::copy_from_slice(&md5.finalize())
}

/// The server-wide prepared statement cache (a handle: clones share it).
#[derive(Clone)]
pub struct PreparedCache {
    cache: Cache<Bytes, Arc<Prepared>>,
}

impl PreparedCache {
    /// A cache holding at most `capacity` statements.
    pub fn new(capacity: u64) -> PreparedCache {
        PreparedCache {
            cache: Cache::builder()
                .max_capacity(capacity)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// Keeps `prepared`; a statement prepared again unchanged (drivers prepare on every
    /// connection, and again after a reconnect) keeps the one already kept, with its plan
    /// and so the rows its plan made of cache entries.
    pub(super) fn insert(&self, prepared: Prepared) -> PreparedResult {
        let result = prepared.result.clone();
        if let Some(kept) = self.cache.get(&result.id) {
            if kept.text == prepared.text
                && kept.keyspace == prepared.keyspace
                && kept.result == result
            {
                return result;
            }
        }
        self.cache.insert(result.id.clone(), Arc::new(prepared));
        result
    }

    pub(super) fn get(&self, id: &Bytes) -> Option<Arc<Prepared>> {
        self.cache.get(id)
    }

    /// Evicts statements that read what `change` altered or dropped.
    pub(super) fn invalidate_for(&self, change: &SchemaChange) {
        let change = change.clone();
        let _ = self.cache.invalidate_entries_if(move |_, p| {
            p.reads.iter().any(|(ks, t)| super::touches(&change, ks, t))
        });
    }

    /// Evicts every statement (the whole schema was replaced from a snapshot).
    pub(super) fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

/// Refuses a statement that calls a function Cassandra would not find, with its message,
/// at PREPARE (selectors are resolved with the result metadata, which refuses them too).
fn check_functions(statement: &Statement) -> Result<()> {
    let mut terms = Vec::new();
    statement_terms(statement, &mut terms);
    // A SELECT's WHERE values bind markers in calls (`bind::call_slots`); a write's walk
    // numbers markers without looking inside calls, so executing would refuse them, and
    // PREPARE must not announce fewer markers instead.
    let markers = matches!(statement, Statement::Select(_));
    terms.into_iter().try_for_each(|t| check_term(t, markers))
}

fn check_term(term: &Term, markers: bool) -> Result<()> {
    let check = |t: &Term| check_term(t, markers);
    match term {
        Term::FunctionCall { name, args } => {
            if !super::functions::is_known(name) {
                return Err(Error::invalid(format!("Unknown function {name} called")));
            }
            if !markers && args.iter().any(|a| matches!(a, Term::BindMarker(_))) {
                return Err(Error::not_supported_plural(
                    "Bind markers in function arguments",
                    Some(" (only in a SELECT's WHERE values)"),
                ));
            }
            args.iter().try_for_each(check)
        }
        Term::List(items) | Term::Set(items) | Term::Tuple(items) => {
            items.iter().try_for_each(check)
        }
        Term::Map(entries) => entries
            .iter()
            .try_for_each(|(k, v)| check(k).and_then(|()| check(v))),
        Term::UserType(fields) => fields.iter().try_for_each(|(_, v)| check(v)),
        Term::Cast { term, .. } => check(term),
        _ => Ok(()),
    }
}

/// Every term a statement holds outside its select clause.
fn statement_terms<'s>(statement: &'s Statement, out: &mut Vec<&'s Term>) {
    let relations = |relations: &'s [Relation], out: &mut Vec<&'s Term>| {
        for relation in relations {
            match relation {
                // `token(k) > token(?)`: the token of bound key values, which binding serves.
                Relation::Token {
                    value: Term::FunctionCall { name, args },
                    ..
                } if name == "token" || name == "system.token" => out.extend(args),
                Relation::Column { value, .. }
                | Relation::MultiColumn { value, .. }
                | Relation::Token { value, .. } => out.push(value),
            }
        }
    };
    let using = |using: &'s Using, out: &mut Vec<&'s Term>| {
        out.extend(using.ttl.iter().chain(using.timestamp.iter()));
    };
    match statement {
        Statement::Select(select) => {
            relations(&select.where_clause, out);
            out.extend(select.limit.iter().chain(select.per_partition_limit.iter()));
        }
        Statement::Insert(insert) => {
            match &insert.values {
                InsertValues::Values { values, .. } => out.extend(values),
                InsertValues::Json { value, .. } => out.push(value),
            }
            using(&insert.using, out);
        }
        Statement::Update(update) => {
            for assignment in &update.assignments {
                match assignment {
                    Assignment::Set { target, value } => {
                        target_terms(target, out);
                        out.push(value);
                    }
                    Assignment::Add { value, .. }
                    | Assignment::Subtract { value, .. }
                    | Assignment::Prepend { value, .. } => out.push(value),
                }
            }
            relations(&update.where_clause, out);
            if_terms(update.if_clause.as_ref(), out);
            using(&update.using, out);
        }
        Statement::Delete(delete) => {
            delete.targets.iter().for_each(|t| target_terms(t, out));
            relations(&delete.where_clause, out);
            if_terms(delete.if_clause.as_ref(), out);
            using(&delete.using, out);
        }
        Statement::Batch(batch) => {
            using(&batch.using, out);
            batch
                .statements
                .iter()
                .for_each(|s| statement_terms(s, out));
        }
        _ => {}
    }
}

fn target_terms<'s>(target: &'s ColumnTarget, out: &mut Vec<&'s Term>) {
    if let ColumnTarget::Element { key, .. } = target {
        out.push(key);
    }
}

fn if_terms<'s>(clause: Option<&'s IfClause>, out: &mut Vec<&'s Term>) {
    if let Some(IfClause::Conditions(conditions)) = clause {
        for condition in conditions {
            target_terms(&condition.target, out);
            out.push(&condition.value);
        }
    }
}
