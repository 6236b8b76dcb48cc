//! Where the rows of a table come from. The node's own system tables are computed here;
//! `system_schema` and `system_virtual_schema` are views of the catalog. User tables have no
//! rows until the storage engine arrives (issue 3) — and until then no statement can write
//! one, so an empty scan is the truth, not a stand-in.

use std::net::IpAddr;

use super::{NodeInfo, RequestContext, CQL_VERSION, RELEASE_VERSION};
use crate::cql::value::CqlValue;
use crate::error::{Error, Result};
use crate::schema::{Catalog, TableDef};

/// The internode port reported to drivers (Cassandra's default; no internode traffic yet).
const STORAGE_PORT: i32 = 7000;

/// A row: one value per column of the table, in the table's column order.
pub(super) type Row = Vec<Option<CqlValue>>;

/// Read access to every table for one statement.
pub(super) struct Source<'a> {
    pub node: &'a NodeInfo,
    pub catalog: &'a Catalog,
    pub ctx: &'a RequestContext,
    /// The catalog's current content hash.
    pub schema_version: uuid::Uuid,
}

impl Source<'_> {
    /// The definition of `keyspace.table`, or Cassandra's errors for unknown names.
    pub fn table(&self, keyspace: &str, table: &str) -> Result<&TableDef> {
        if self.catalog.keyspace(keyspace).is_none() {
            return Err(Error::invalid(format!(
                "Keyspace {keyspace} does not exist"
            )));
        }
        self.catalog
            .table(keyspace, table)
            .ok_or_else(|| Error::invalid(format!("unconfigured table {table}")))
    }

    /// Every row of `table`, in clustering order.
    pub fn rows(&self, table: &TableDef) -> Vec<Row> {
        match (table.keyspace.as_str(), table.name.as_str()) {
            ("system", "local") => vec![self.local_row(table)],
            (ks, name) => self.catalog.schema_table_rows(ks, name).unwrap_or_default(),
        }
    }

    /// The single `system.local` row, produced column by column in the table's order
    /// (the catalog owns the column list; this only knows each column's value).
    fn local_row(&self, table: &TableDef) -> Row {
        table
            .columns
            .iter()
            .map(|c| self.local_value(&c.name))
            .collect()
    }

    fn local_value(&self, column: &str) -> Option<CqlValue> {
        let node = self.node;
        let address: IpAddr = self.ctx.local_addr.ip();
        let text = |s: &str| Some(CqlValue::Text(s.to_owned()));
        match column {
            "key" => text("local"),
            "bootstrapped" => text("COMPLETED"),
            "broadcast_address" | "listen_address" | "rpc_address" => Some(CqlValue::Inet(address)),
            "broadcast_port" | "listen_port" => Some(CqlValue::Int(STORAGE_PORT)),
            "cluster_name" => text(&node.cluster_name),
            "cql_version" => text(CQL_VERSION),
            "data_center" => text(&node.data_center),
            "gossip_generation" => Some(CqlValue::Int(node.generation)),
            "host_id" => Some(CqlValue::Uuid(node.host_id)),
            "native_protocol_version" => text("4"),
            "partitioner" => text(crate::ring::Murmur3Partitioner::CLASS_NAME),
            "rack" => text(&node.rack),
            "release_version" => text(RELEASE_VERSION),
            "rpc_port" => Some(CqlValue::Int(i32::from(self.ctx.local_addr.port()))),
            "schema_version" => Some(CqlValue::Uuid(self.schema_version)),
            // Already in set<text> order (by bytes), sorted once at start.
            "tokens" => Some(CqlValue::Set(
                node.tokens
                    .iter()
                    .map(|t| CqlValue::Text(t.clone()))
                    .collect(),
            )),
            _ => None,
        }
    }
}
