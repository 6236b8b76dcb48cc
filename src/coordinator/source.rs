//! Where the rows of a table come from. The node's own system tables are computed here;
//! `system_schema` and `system_virtual_schema` are views of the catalog. User tables have no
//! rows until the storage engine arrives (issue 3) — and until then no statement can write
//! one, so an empty scan is the truth, not a stand-in.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{NodeInfo, RequestContext, CQL_VERSION, RELEASE_VERSION};
use crate::cql::value::CqlValue;
use crate::error::{Error, Result};
use crate::schema::{Catalog, TableDef};

/// A row: one value per column of the table, in the table's column order.
pub(super) type Row = Vec<Option<CqlValue>>;

/// Read access to every table for one statement.
pub(super) struct Source<'a> {
    pub node: &'a NodeInfo,
    pub catalog: &'a Catalog,
    pub ctx: &'a RequestContext,
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

    /// The single `system.local` row, keyed by column name so the table's column order
    /// (owned by the catalog) is the only order there is.
    fn local_row(&self, table: &TableDef) -> Row {
        let node = self.node;
        let address: IpAddr = self.ctx.local_addr.ip();
        let text = |s: &str| Some(CqlValue::Text(s.to_owned()));
        // A set<text> is ordered by its elements' bytes, not numerically.
        let mut tokens: Vec<CqlValue> = node
            .tokens
            .iter()
            .map(|t| CqlValue::Text(t.clone()))
            .collect();
        tokens.sort_by_key(CqlValue::to_bytes);
        let values: HashMap<&str, Option<CqlValue>> = HashMap::from([
            ("key", text("local")),
            ("bootstrapped", text("COMPLETED")),
            ("broadcast_address", Some(CqlValue::Inet(address))),
            ("broadcast_port", Some(CqlValue::Int(7000))),
            ("cluster_name", text(&node.cluster_name)),
            ("cql_version", text(CQL_VERSION)),
            ("data_center", text(&node.data_center)),
            ("gossip_generation", Some(CqlValue::Int(node.generation))),
            ("host_id", Some(CqlValue::Uuid(node.host_id))),
            ("listen_address", Some(CqlValue::Inet(address))),
            ("listen_port", Some(CqlValue::Int(7000))),
            ("native_protocol_version", text("4")),
            (
                "partitioner",
                text(crate::ring::Murmur3Partitioner::CLASS_NAME),
            ),
            ("rack", text(&node.rack)),
            ("release_version", text(RELEASE_VERSION)),
            ("rpc_address", Some(CqlValue::Inet(address))),
            (
                "rpc_port",
                Some(CqlValue::Int(i32::from(self.ctx.local_addr.port()))),
            ),
            (
                "schema_version",
                Some(CqlValue::Uuid(self.catalog.schema_version())),
            ),
            ("tokens", Some(CqlValue::Set(tokens))),
            ("truncated_at", None),
        ]);
        table
            .columns
            .iter()
            .map(|c| values.get(c.name.as_str()).cloned().flatten())
            .collect()
    }
}
