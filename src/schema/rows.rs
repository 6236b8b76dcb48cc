//! Rows of `system_schema.*` and `system_virtual_schema.*`, generated from the catalog.
//!
//! Each row is built as a name → value map and then laid out in the column order of the
//! system table's own [`TableDef`], so the order is defined in one place (system.rs) and
//! the executor can project by column name.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::catalog::{Catalog, ColumnDef, KeyspaceDef, TableDef};
use super::system::{SYSTEM_SCHEMA, SYSTEM_VIRTUAL_SCHEMA};
use crate::cql::value::CqlValue;

/// One row: values in the system table's column order (`None` = null).
pub type Row = Vec<Option<CqlValue>>;

type Values = BTreeMap<&'static str, CqlValue>;

impl Catalog {
    /// The rows of `keyspace.table` when it is one of the schema tables generated from
    /// the catalog (`system_schema.*`, `system_virtual_schema.*`), sorted by primary key;
    /// None for any other table.
    pub fn schema_table_rows(&self, keyspace: &str, table: &str) -> Option<Vec<Row>> {
        let def = self.table(keyspace, table)?;
        let values: Vec<Values> = match (keyspace, table) {
            (SYSTEM_SCHEMA, "keyspaces") => self.described(false).map(keyspace_values).collect(),
            (SYSTEM_SCHEMA, "tables") => self.tables_of(false).map(table_values).collect(),
            (SYSTEM_SCHEMA, "columns") => self.tables_of(false).flat_map(column_rows).collect(),
            (SYSTEM_SCHEMA, "dropped_columns") => {
                self.tables_of(false).flat_map(dropped_rows).collect()
            }
            (SYSTEM_SCHEMA, "types") => self.described(false).flat_map(type_rows).collect(),
            (SYSTEM_SCHEMA, "functions" | "aggregates" | "triggers" | "indexes" | "views") => {
                Vec::new()
            }
            (SYSTEM_VIRTUAL_SCHEMA, "keyspaces") => self
                .described(true)
                .map(|k| BTreeMap::from([("keyspace_name", text(&k.name))]))
                .collect(),
            (SYSTEM_VIRTUAL_SCHEMA, "tables") => {
                self.tables_of(true).map(virtual_table_values).collect()
            }
            (SYSTEM_VIRTUAL_SCHEMA, "columns") => {
                self.tables_of(true).flat_map(column_rows).collect()
            }
            _ => return None,
        };
        Some(values.iter().map(|v| project(def, v)).collect())
    }

    /// Keyspaces described in system_schema (`virtual` false) or in
    /// system_virtual_schema (`virtual` true), by name.
    fn described(&self, virtual_ks: bool) -> impl Iterator<Item = &KeyspaceDef> {
        self.keyspaces()
            .filter(move |k| k.is_virtual() == virtual_ks)
    }

    fn tables_of(&self, virtual_ks: bool) -> impl Iterator<Item = &TableDef> {
        self.described(virtual_ks).flat_map(|k| k.tables.values())
    }
}

fn project(def: &TableDef, values: &Values) -> Row {
    def.columns
        .iter()
        .map(|c| values.get(c.name.as_str()).cloned())
        .collect()
}

fn text(s: &str) -> CqlValue {
    CqlValue::Text(s.to_string())
}

fn text_map(map: &BTreeMap<String, String>) -> CqlValue {
    CqlValue::Map(map.iter().map(|(k, v)| (text(k), text(v))).collect())
}

fn keyspace_values(ks: &KeyspaceDef) -> Values {
    BTreeMap::from([
        ("keyspace_name", text(&ks.name)),
        ("durable_writes", CqlValue::Boolean(ks.durable_writes)),
        ("replication", text_map(&ks.replication)),
    ])
}

fn table_values(t: &TableDef) -> Values {
    let o = &t.options;
    let extensions = o
        .extensions
        .iter()
        .map(|(k, v)| (text(k), CqlValue::Blob(Bytes::from(v.clone()))))
        .collect();
    BTreeMap::from([
        ("keyspace_name", text(&t.keyspace)),
        ("table_name", text(&t.name)),
        (
            "flags",
            CqlValue::Set(t.flags().into_iter().map(text).collect()),
        ),
        (
            "bloom_filter_fp_chance",
            CqlValue::Double(o.bloom_filter_fp_chance),
        ),
        ("caching", text_map(&o.caching)),
        ("comment", text(&o.comment)),
        ("compaction", text_map(&o.compaction)),
        ("compression", text_map(&o.compression)),
        ("memtable", text(&o.memtable)),
        ("crc_check_chance", CqlValue::Double(o.crc_check_chance)),
        // No longer used by Cassandra, still written for drivers that read it.
        ("dclocal_read_repair_chance", CqlValue::Double(0.0)),
        (
            "default_time_to_live",
            CqlValue::Int(o.default_time_to_live),
        ),
        ("extensions", CqlValue::Map(extensions)),
        ("gc_grace_seconds", CqlValue::Int(o.gc_grace_seconds)),
        ("id", CqlValue::Uuid(t.id)),
        ("max_index_interval", CqlValue::Int(o.max_index_interval)),
        (
            "memtable_flush_period_in_ms",
            CqlValue::Int(o.memtable_flush_period_in_ms),
        ),
        ("min_index_interval", CqlValue::Int(o.min_index_interval)),
        ("read_repair_chance", CqlValue::Double(0.0)),
        ("speculative_retry", text(&o.speculative_retry)),
        ("additional_write_policy", text(&o.additional_write_policy)),
        ("cdc", CqlValue::Boolean(o.cdc)),
        ("read_repair", text(&o.read_repair)),
    ])
}

fn virtual_table_values(t: &TableDef) -> Values {
    BTreeMap::from([
        ("keyspace_name", text(&t.keyspace)),
        ("table_name", text(&t.name)),
        ("comment", text(&t.options.comment)),
    ])
}

/// One row per column, ordered by column name (the clustering key).
fn column_rows(t: &TableDef) -> Vec<Values> {
    let mut cols: Vec<&ColumnDef> = t.columns.iter().collect();
    cols.sort_by(|a, b| a.name.cmp(&b.name));
    cols.into_iter()
        .map(|c| {
            BTreeMap::from([
                ("keyspace_name", text(&t.keyspace)),
                ("table_name", text(&t.name)),
                ("column_name", text(&c.name)),
                ("clustering_order", text(c.order.as_str())),
                (
                    "column_name_bytes",
                    CqlValue::Blob(Bytes::from(c.name.clone().into_bytes())),
                ),
                ("kind", text(c.kind.as_str())),
                ("position", CqlValue::Int(c.position)),
                ("type", text(&c.ty.to_string())),
            ])
        })
        .collect()
}

fn dropped_rows(t: &TableDef) -> Vec<Values> {
    t.dropped
        .iter()
        .map(|(name, d)| {
            BTreeMap::from([
                ("keyspace_name", text(&t.keyspace)),
                ("table_name", text(&t.name)),
                ("column_name", text(name)),
                (
                    "dropped_time",
                    CqlValue::Timestamp(d.dropped_at_micros / 1000),
                ),
                ("kind", text(d.kind.as_str())),
                ("type", text(&d.ty.to_string())),
            ])
        })
        .collect()
}

fn type_rows(ks: &KeyspaceDef) -> Vec<Values> {
    ks.types
        .values()
        .map(|t| {
            let names = t.fields.iter().map(|(n, _)| text(n)).collect();
            let types = t
                .fields
                .iter()
                .map(|(_, ty)| text(&ty.to_string()))
                .collect();
            BTreeMap::from([
                ("keyspace_name", text(&t.keyspace)),
                ("type_name", text(&t.name)),
                ("field_names", CqlValue::List(names)),
                ("field_types", CqlValue::List(types)),
            ])
        })
        .collect()
}
