//! Server-side DESCRIBE (Cassandra 4's DescribeStatement) and the CQL text of schema
//! elements (KeyspaceMetadata / TableMetadata / UserType `toCqlString`).
//!
//! The text must match Cassandra byte for byte: cqlsh prints it, people diff it, and
//! tools replay it. Layout rules (4-space indents, `  AND durable_writes`, option order,
//! Java's double formatting, sorted maps) are taken from Cassandra's CqlBuilder,
//! TableParams.appendCqlTo and DescribeStatementTest.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::catalog::{Catalog, ColumnDef, ColumnKind, KeyspaceDef, TableDef, UserTypeDef};
use super::error::{invalid, SchemaError};
use super::options::{java_double, TableOptions};
use crate::cql::ast::{Describe, DescribeTarget, QualifiedName};
use crate::cql::types::maybe_quote;
use crate::cql::value::CqlValue;
use crate::cql::{CqlType, NativeType};

/// Cluster facts DESCRIBE CLUSTER reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterInfo {
    /// `cluster_name` from configuration.
    pub cluster_name: String,
    /// Partitioner class, e.g. `org.apache.cassandra.dht.Murmur3Partitioner`.
    pub partitioner: String,
    /// Snitch class, e.g. `org.apache.cassandra.locator.SimpleSnitch`.
    pub snitch: String,
    /// Token → endpoints of the session keyspace, shown when a user keyspace is in use.
    pub range_ownership: Option<BTreeMap<String, Vec<String>>>,
}

/// A DESCRIBE result: column names with types, then rows (`system.describe`).
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeResult {
    /// Result columns, in order.
    pub columns: Vec<(String, CqlType)>,
    /// Rows of values in column order.
    pub rows: Vec<Vec<Option<CqlValue>>>,
}

/// One describable schema element.
#[derive(Clone, Copy)]
enum Element<'a> {
    Keyspace(&'a KeyspaceDef),
    Type(&'a UserTypeDef),
    Table(&'a TableDef),
}

impl Element<'_> {
    fn keyspace(&self) -> &str {
        match self {
            Element::Keyspace(k) => &k.name,
            Element::Type(t) => &t.keyspace,
            Element::Table(t) => &t.keyspace,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Element::Keyspace(_) => "keyspace",
            Element::Type(_) => "type",
            Element::Table(_) => "table",
        }
    }

    fn name(&self) -> &str {
        match self {
            Element::Keyspace(k) => &k.name,
            Element::Type(t) => &t.name,
            Element::Table(t) => &t.name,
        }
    }

    fn cql(&self, with_internals: bool) -> String {
        match self {
            Element::Keyspace(k) => keyspace_cql(k),
            Element::Type(t) => type_cql(t),
            Element::Table(t) => table_cql(t, with_internals),
        }
    }
}

fn text(s: &str) -> Option<CqlValue> {
    Some(CqlValue::Text(s.to_string()))
}

fn text_columns(names: &[&str]) -> Vec<(String, CqlType)> {
    names
        .iter()
        .map(|n| (n.to_string(), CqlType::Native(NativeType::Text)))
        .collect()
}

/// Sorts as Cassandra's SchemaElement.NAME_COMPARATOR (case-insensitive, stable).
fn sort_by_name(elements: &mut [Element<'_>]) {
    elements.sort_by_key(|e| e.name().to_lowercase());
}

impl Catalog {
    /// Executes a DESCRIBE statement against the catalog.
    pub fn describe(
        &self,
        stmt: &Describe,
        session_keyspace: Option<&str>,
        cluster: &ClusterInfo,
    ) -> Result<DescribeResult, SchemaError> {
        let listing = |elements: Vec<Element<'_>>| listing_result(&elements);
        let full = |elements: Vec<Element<'_>>| element_result(&elements, stmt.with_internals);
        match &stmt.target {
            DescribeTarget::Cluster => Ok(self.describe_cluster(session_keyspace, cluster)),
            DescribeTarget::Keyspaces => {
                let mut all: Vec<Element<'_>> = self.keyspaces().map(Element::Keyspace).collect();
                sort_by_name(&mut all);
                Ok(listing(all))
            }
            DescribeTarget::Keyspace { name, only } => {
                let name = name
                    .as_deref()
                    .or(session_keyspace)
                    .ok_or_else(no_keyspace)?;
                Ok(full(keyspace_elements(self.find_keyspace(name)?, *only)))
            }
            DescribeTarget::Schema {
                full: include_system,
            } => {
                let mut keyspaces: Vec<Element<'_>> = self
                    .keyspaces()
                    .filter(|k| *include_system || !k.is_system())
                    .map(Element::Keyspace)
                    .collect();
                sort_by_name(&mut keyspaces);
                let elements = keyspaces
                    .into_iter()
                    .flat_map(|e| match e {
                        Element::Keyspace(k) => keyspace_elements(k, false),
                        _ => Vec::new(),
                    })
                    .collect();
                Ok(full(elements))
            }
            DescribeTarget::Tables => Ok(listing(self.list(session_keyspace, |k| {
                k.tables.values().map(Element::Table).collect()
            })?)),
            DescribeTarget::Types => Ok(listing(self.list(session_keyspace, |k| {
                k.types.values().map(Element::Type).collect()
            })?)),
            DescribeTarget::Functions | DescribeTarget::Aggregates => Ok(listing(Vec::new())),
            DescribeTarget::Table(name) => Ok(full(vec![self.find_table(name, session_keyspace)?])),
            DescribeTarget::Type(name) => Ok(full(vec![self.find_type(name, session_keyspace)?])),
            DescribeTarget::Name(name) => Ok(full(self.find_generic(name, session_keyspace)?)),
        }
    }

    fn describe_cluster(
        &self,
        session_keyspace: Option<&str>,
        cluster: &ClusterInfo,
    ) -> DescribeResult {
        let mut columns = text_columns(&["cluster", "partitioner", "snitch"]);
        let mut row = vec![
            text(&cluster.cluster_name),
            text(trim(&cluster.partitioner, "org.apache.cassandra.dht.")),
            text(trim(&cluster.snitch, "org.apache.cassandra.locator.")),
        ];
        let user_ks = session_keyspace
            .and_then(|k| self.keyspace(k))
            .is_some_and(|k| !k.is_system());
        if let (true, Some(ranges)) = (user_ks, &cluster.range_ownership) {
            let text_ty = CqlType::Native(NativeType::Text);
            columns.push((
                "range_ownership".into(),
                CqlType::map(text_ty.clone(), CqlType::list(text_ty)),
            ));
            let entries = ranges
                .iter()
                .map(|(token, eps)| {
                    let list = eps.iter().map(|e| CqlValue::Text(e.clone())).collect();
                    (CqlValue::Text(token.clone()), CqlValue::List(list))
                })
                .collect();
            row.push(Some(CqlValue::Map(entries)));
        }
        DescribeResult {
            columns,
            rows: vec![row],
        }
    }

    /// The listing forms: the session keyspace's elements, or every keyspace's.
    fn list<'a>(
        &'a self,
        session_keyspace: Option<&str>,
        of: impl Fn(&'a KeyspaceDef) -> Vec<Element<'a>>,
    ) -> Result<Vec<Element<'a>>, SchemaError> {
        let mut keyspaces: Vec<&KeyspaceDef> = match session_keyspace {
            Some(ks) => vec![self.find_keyspace(ks)?],
            None => self.keyspaces().collect(),
        };
        keyspaces.sort_by_key(|k| k.name.to_lowercase());
        Ok(keyspaces
            .into_iter()
            .flat_map(|k| {
                let mut elements = of(k);
                sort_by_name(&mut elements);
                elements
            })
            .collect())
    }

    fn find_keyspace(&self, name: &str) -> Result<&KeyspaceDef, SchemaError> {
        self.keyspace(name)
            .ok_or_else(|| invalid(format!("'{name}' not found in keyspaces")))
    }

    /// The keyspace a possibly unqualified name lives in: its own, else the session's.
    fn named_keyspace(
        &self,
        name: &QualifiedName,
        session: Option<&str>,
    ) -> Result<&KeyspaceDef, SchemaError> {
        let ks = name
            .keyspace
            .as_deref()
            .or(session)
            .ok_or_else(no_keyspace)?;
        self.find_keyspace(ks)
    }

    fn find_table(
        &self,
        name: &QualifiedName,
        session: Option<&str>,
    ) -> Result<Element<'_>, SchemaError> {
        let keyspace = self.named_keyspace(name, session)?;
        let ks = &keyspace.name;
        keyspace
            .tables
            .get(&name.name)
            .map(Element::Table)
            .ok_or_else(|| {
                invalid(format!(
                    "Table '{}' not found in keyspace '{ks}'",
                    name.name
                ))
            })
    }

    fn find_type(
        &self,
        name: &QualifiedName,
        session: Option<&str>,
    ) -> Result<Element<'_>, SchemaError> {
        let keyspace = self.named_keyspace(name, session)?;
        let ks = &keyspace.name;
        keyspace
            .types
            .get(&name.name)
            .map(Element::Type)
            .ok_or_else(|| {
                invalid(format!(
                    "User defined type '{}' not found in '{ks}'",
                    name.name
                ))
            })
    }

    /// `DESCRIBE name`: a keyspace, else a table of the session keyspace (or of the
    /// keyspace named `name` when there is none), as DescribeStatement.generic.
    fn find_generic(
        &self,
        name: &QualifiedName,
        session: Option<&str>,
    ) -> Result<Vec<Element<'_>>, SchemaError> {
        let ks = match &name.keyspace {
            Some(ks) => ks.as_str(),
            None => {
                if let Some(k) = self.keyspace(&name.name) {
                    return Ok(keyspace_elements(k, false));
                }
                session.unwrap_or(&name.name)
            }
        };
        let keyspace = self.find_keyspace(ks)?;
        match keyspace.tables.get(&name.name) {
            Some(t) => Ok(vec![Element::Table(t)]),
            None => Err(invalid(format!(
                "'{}' not found in keyspace '{ks}'",
                name.name
            ))),
        }
    }
}

fn no_keyspace() -> SchemaError {
    invalid("No keyspace specified and no current keyspace")
}

fn trim<'a>(s: &'a str, prefix: &str) -> &'a str {
    s.strip_prefix(prefix).unwrap_or(s)
}

fn listing_result(elements: &[Element<'_>]) -> DescribeResult {
    DescribeResult {
        columns: text_columns(&["keyspace_name", "type", "name"]),
        rows: elements
            .iter()
            .map(|e| {
                vec![
                    text(&maybe_quote(e.keyspace())),
                    text(e.kind()),
                    text(&maybe_quote(e.name())),
                ]
            })
            .collect(),
    }
}

fn element_result(elements: &[Element<'_>], with_internals: bool) -> DescribeResult {
    DescribeResult {
        columns: text_columns(&["keyspace_name", "type", "name", "create_statement"]),
        rows: elements
            .iter()
            .map(|e| {
                vec![
                    text(&maybe_quote(e.keyspace())),
                    text(e.kind()),
                    text(&maybe_quote(e.name())),
                    text(&e.cql(with_internals)),
                ]
            })
            .collect(),
    }
}

/// A keyspace, then (unless `only`) its types in dependency order and its tables.
fn keyspace_elements(ks: &KeyspaceDef, only: bool) -> Vec<Element<'_>> {
    let mut out = vec![Element::Keyspace(ks)];
    if only {
        return out;
    }
    out.extend(types_in_dependency_order(ks).into_iter().map(Element::Type));
    let mut tables: Vec<Element<'_>> = ks.tables.values().map(Element::Table).collect();
    sort_by_name(&mut tables);
    out.extend(tables);
    out
}

/// Types ordered so that every type comes after the types it uses (Types.sortedStream).
fn types_in_dependency_order(ks: &KeyspaceDef) -> Vec<&UserTypeDef> {
    fn visit<'a>(
        ks: &'a KeyspaceDef,
        t: &'a UserTypeDef,
        out: &mut Vec<&'a UserTypeDef>,
        depth: usize,
    ) {
        if depth > ks.types.len() || out.iter().any(|o| o.name == t.name) {
            return;
        }
        for dep in t.referenced_types() {
            if let Some(d) = ks.types.get(&dep) {
                visit(ks, d, out, depth + 1);
            }
        }
        if !out.iter().any(|o| o.name == t.name) {
            out.push(t);
        }
    }
    let mut out = Vec::new();
    for t in ks.types.values() {
        visit(ks, t, &mut out, 0);
    }
    out
}

/// `CREATE KEYSPACE` text (KeyspaceMetadata.toCqlString).
pub fn keyspace_cql(ks: &KeyspaceDef) -> String {
    let name = maybe_quote(&ks.name);
    if ks.is_virtual() {
        return format!(
            "/*\nWarning: Keyspace {name} is a virtual keyspace and cannot be recreated with CQL.\nStructure, for reference:\nVIRTUAL KEYSPACE {name};\n*/"
        );
    }
    let mut out = format!("CREATE KEYSPACE {name} WITH replication = {{'class': ");
    out.push_str(&single_quoted(strategy_cql_name(
        ks.replication.get("class").map_or("", String::as_str),
    )));
    for (k, v) in ks.replication.iter().filter(|(k, _)| *k != "class") {
        let _ = write!(out, ", {}: {}", single_quoted(k), single_quoted(v));
    }
    let _ = write!(out, "}}  AND durable_writes = {}", ks.durable_writes);
    // ScyllaDB's keyspace option, where ScyllaDB prints it (scylla.rs).
    if let Some(tablets) = ks.tablets {
        out.push_str(&tablets.cql_suffix());
    }
    out.push(';');
    out
}

/// The strategy class as DESCRIBE prints it. ReplicationParams.appendCqlTo uses the
/// simple name for classes in package `org.apache.cassandra.locator` and the full name
/// for any other, while `asMap` (what system_schema.keyspaces stores) always keeps the
/// full name; so only this text is shortened (Cassandra 4.1's DescribeStatementTest
/// expects `'class': 'SimpleStrategy'`).
fn strategy_cql_name(class: &str) -> &str {
    match class.strip_prefix("org.apache.cassandra.locator.") {
        Some(simple) if !simple.contains('.') => simple,
        _ => class,
    }
}

/// `CREATE TYPE` text (UserType.toCqlString).
pub fn type_cql(t: &UserTypeDef) -> String {
    let mut out = format!(
        "CREATE TYPE {}.{} (\n",
        maybe_quote(&t.keyspace),
        maybe_quote(&t.name)
    );
    for (i, (name, ty)) in t.fields.iter().enumerate() {
        let comma = if i + 1 < t.fields.len() { "," } else { "" };
        let _ = writeln!(out, "    {} {ty}{comma}", maybe_quote(name));
    }
    out.push_str(");");
    out
}

/// `'text'` with inner quotes doubled, as CqlBuilder.appendWithSingleQuotes.
fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `{'k': 'v', ...}` with keys sorted, as CqlBuilder.append(Map).
fn cql_map(map: &BTreeMap<String, String>) -> String {
    let body: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}: {}", single_quoted(k), single_quoted(v)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// Columns in CREATE order: partition key, clustering, then static and regular columns,
/// each group with single-cell columns before multi-cell ones, by name (Columns order).
fn create_order(t: &TableDef) -> Vec<&ColumnDef> {
    let mut out: Vec<&ColumnDef> = t.partition_key();
    out.extend(t.clustering());
    for kind in [ColumnKind::Static, ColumnKind::Regular] {
        let mut group: Vec<&ColumnDef> = t.columns.iter().filter(|c| c.kind == kind).collect();
        group.sort_by(|a, b| (a.ty.is_multicell(), &a.name).cmp(&(b.ty.is_multicell(), &b.name)));
        out.extend(group);
    }
    out
}

fn column_cql(name: &str, ty: &CqlType, is_static: bool) -> String {
    let st = if is_static { " static" } else { "" };
    format!("{} {ty}{st}", maybe_quote(name))
}

/// `CREATE TABLE` text (TableMetadata.toCqlString); WITH INTERNALS adds the table id
/// and replays dropped columns.
pub fn table_cql(t: &TableDef, with_internals: bool) -> String {
    let full_name = format!("{}.{}", maybe_quote(&t.keyspace), maybe_quote(&t.name));
    let mut out = String::new();
    let keyword = if t.is_virtual {
        let _ = write!(
            out,
            "/*\nWarning: Table {full_name} is a virtual table and cannot be recreated with CQL.\nStructure, for reference:\n"
        );
        "VIRTUAL"
    } else {
        "CREATE"
    };
    let _ = writeln!(out, "{keyword} TABLE {full_name} (");
    let pk = t.partition_key();
    let ck = t.clustering();
    let single_pk = pk.len() == 1 && ck.is_empty();
    append_columns(&mut out, t, single_pk, with_internals);
    if !single_pk {
        let pk_names: Vec<String> = pk
            .iter()
            .map(|c| maybe_quote(&c.name).into_owned())
            .collect();
        let pk_text = if pk_names.len() > 1 {
            format!("({})", pk_names.join(", "))
        } else {
            pk_names.join("")
        };
        let ck_text: String = ck
            .iter()
            .map(|c| format!(", {}", maybe_quote(&c.name)))
            .collect();
        let _ = writeln!(out, "    PRIMARY KEY ({pk_text}{ck_text})");
    }
    out.push_str(") WITH ");
    let mut clauses = Vec::new();
    if with_internals {
        clauses.push(format!("ID = {}", t.id));
    }
    if !ck.is_empty() {
        let orders: Vec<String> = ck
            .iter()
            .map(|c| {
                let dir = if c.order == super::catalog::ClusteringOrder::Desc {
                    "DESC"
                } else {
                    "ASC"
                };
                format!("{} {dir}", maybe_quote(&c.name))
            })
            .collect();
        clauses.push(format!("CLUSTERING ORDER BY ({})", orders.join(", ")));
    }
    if t.is_virtual {
        clauses.push(format!("comment = {}", single_quoted(&t.options.comment)));
    } else {
        clauses.extend(option_clauses(&t.options));
    }
    out.push_str(&clauses.join("\n    AND "));
    out.push(';');
    if t.is_virtual {
        out.push_str("\n*/");
    }
    if with_internals {
        append_dropped(&mut out, t, &full_name);
    }
    out
}

/// Column lines, mirroring TableMetadata.appendColumnDefinitions (including its comma
/// rules when dropped columns are replayed).
fn append_columns(out: &mut String, t: &TableDef, single_pk: bool, with_dropped: bool) {
    let columns = create_order(t);
    let has_dropped = with_dropped && !t.dropped.is_empty();
    for (i, c) in columns.iter().enumerate() {
        if with_dropped && t.dropped.contains_key(&c.name) {
            continue;
        }
        out.push_str("    ");
        out.push_str(&column_cql(&c.name, &c.ty, c.kind == ColumnKind::Static));
        if single_pk && c.kind == ColumnKind::PartitionKey {
            out.push_str(" PRIMARY KEY");
        }
        if !single_pk || has_dropped || i + 1 < columns.len() {
            out.push(',');
        }
        out.push('\n');
    }
    if !with_dropped {
        return;
    }
    let count = t.dropped.len();
    for (i, (name, d)) in t.dropped.iter().enumerate() {
        out.push_str("    ");
        out.push_str(&column_cql(name, &d.ty, d.kind == ColumnKind::Static));
        if !single_pk || i + 1 < count {
            out.push(',');
        }
        out.push('\n');
    }
}

fn append_dropped(out: &mut String, t: &TableDef, full_name: &str) {
    for (name, d) in &t.dropped {
        let _ = write!(
            out,
            "\nALTER TABLE {full_name} DROP {} USING TIMESTAMP {};",
            maybe_quote(name),
            d.dropped_at_micros
        );
        if let Some(c) = t.column(name) {
            let _ = write!(
                out,
                "\nALTER TABLE {full_name} ADD {};",
                column_cql(&c.name, &c.ty, c.kind == ColumnKind::Static)
            );
        }
    }
}

/// Table parameters in TableParams.appendCqlTo order (Cassandra 4.1), then the ScyllaDB
/// options the table set, where ScyllaDB prints them (`scylla.rs`). A ScyllaDB `cdc` map
/// replaces Cassandra's `cdc` flag, so the text names each option once.
fn option_clauses(o: &TableOptions) -> Vec<String> {
    let extensions: Vec<String> = o
        .extensions
        .iter()
        .map(|(k, v)| {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}: 0x{hex}", single_quoted(k))
        })
        .collect();
    vec![
        format!(
            "additional_write_policy = {}",
            single_quoted(&o.additional_write_policy)
        ),
        format!(
            "bloom_filter_fp_chance = {}",
            java_double(o.bloom_filter_fp_chance)
        ),
        format!("caching = {}", cql_map(&o.caching)),
        format!("cdc = {}", o.cdc),
        format!("comment = {}", single_quoted(&o.comment)),
        format!("compaction = {}", cql_map(&o.compaction)),
        format!("compression = {}", cql_map(&o.compression)),
        format!("memtable = {}", single_quoted(&o.memtable)),
        format!("crc_check_chance = {}", java_double(o.crc_check_chance)),
        format!("default_time_to_live = {}", o.default_time_to_live),
        format!("extensions = {{{}}}", extensions.join(", ")),
        format!("gc_grace_seconds = {}", o.gc_grace_seconds),
        format!("max_index_interval = {}", o.max_index_interval),
        format!(
            "memtable_flush_period_in_ms = {}",
            o.memtable_flush_period_in_ms
        ),
        format!("min_index_interval = {}", o.min_index_interval),
        format!("read_repair = {}", single_quoted(&o.read_repair)),
        format!(
            "speculative_retry = {}",
            single_quoted(&o.speculative_retry)
        ),
    ]
    .into_iter()
    .filter(|clause| o.scylla.cdc.is_none() || !clause.starts_with("cdc = "))
    .chain(o.scylla.cql_clauses())
    .collect()
}
