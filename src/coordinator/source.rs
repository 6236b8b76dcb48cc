//! What a read sees of the node: the catalog, the replica holding user tables, and the
//! computed system tables. The node's own system tables are computed here;
//! `system_schema` and `system_virtual_schema` are views of the catalog. User tables are
//! read from the replica (`read.rs`); [`Source::is_user_table`] tells the two apart.
//!
//! A cell is usually a value built for the read. Facts that are fixed for the life of the
//! node (its name, data centre, tokens, versions) are instead built and serialized once at
//! start ([`NodeFacts`]) and shared by every read, so serving them costs a reference count,
//! not a string copy and a serialization per read. Facts that can change — the schema
//! version, and the addresses that depend on the connection — are still read per request.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::{RequestContext, CQL_VERSION, RELEASE_VERSION};
use crate::cql::value::CqlValue;
use crate::error::{Error, Result};
use crate::node::NodeInfo;
use crate::schema::{Catalog, TableDef};

/// A row: one value per column of the table, in the table's column order.
pub(super) type Row = Vec<Option<Cell>>;

/// One value of a row.
#[derive(Debug, Clone)]
pub(super) enum Cell {
    /// Built for this read.
    Owned(CqlValue),
    /// Built once and shared, with its serialized form.
    Shared(Arc<(CqlValue, Bytes)>),
}

impl Cell {
    /// A shared cell of `value`, serialized now.
    pub fn shared(value: CqlValue) -> Cell {
        let bytes = value.to_bytes();
        Cell::Shared(Arc::new((value, bytes)))
    }

    /// The typed value.
    pub fn value(&self) -> &CqlValue {
        match self {
            Cell::Owned(v) => v,
            Cell::Shared(shared) => &shared.0,
        }
    }

    /// The serialized cell content.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Cell::Owned(v) => v.to_bytes(),
            Cell::Shared(shared) => shared.1.clone(),
        }
    }

    /// Whether the serialized content equals `wanted`, without serializing where the
    /// value's bytes are at hand.
    pub fn serializes_to(&self, wanted: &[u8]) -> bool {
        match self {
            Cell::Shared(shared) => shared.1 == wanted,
            Cell::Owned(CqlValue::Text(s) | CqlValue::Ascii(s)) => s.as_bytes() == wanted,
            Cell::Owned(CqlValue::Blob(b)) => b[..] == *wanted,
            Cell::Owned(v) => v.to_bytes()[..] == *wanted,
        }
    }
}

/// The node's fixed `system.local` facts, serialized once at start.
#[derive(Debug, Default)]
pub(super) struct NodeFacts {
    cells: Vec<(&'static str, Cell)>,
}

impl NodeFacts {
    /// The facts of `node` that never change while it runs.
    pub fn new(node: &NodeInfo) -> NodeFacts {
        let text = |s: &str| Cell::shared(CqlValue::Text(s.to_owned()));
        let tokens = node.tokens.iter().map(|t| CqlValue::Text(t.clone()));
        let cells = vec![
            ("key", text("local")),
            ("bootstrapped", text("COMPLETED")),
            ("cluster_name", text(&node.cluster_name)),
            ("cql_version", text(CQL_VERSION)),
            ("data_center", text(&node.data_center)),
            (
                "gossip_generation",
                Cell::shared(CqlValue::Int(node.generation)),
            ),
            ("host_id", Cell::shared(CqlValue::Uuid(node.host_id))),
            ("native_protocol_version", text("4")),
            (
                "partitioner",
                text(crate::ring::Murmur3Partitioner::CLASS_NAME),
            ),
            ("rack", text(&node.rack)),
            ("release_version", text(RELEASE_VERSION)),
            // Already in set<text> order (by bytes), sorted once at start.
            ("tokens", Cell::shared(CqlValue::Set(tokens.collect()))),
        ];
        NodeFacts { cells }
    }

    fn get(&self, column: &str) -> Option<Cell> {
        self.cells
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, cell)| cell.clone())
    }
}

/// Read access to every table for one statement.
pub(super) struct Source<'a> {
    /// The node's fixed facts, serialized.
    pub facts: &'a NodeFacts,
    pub catalog: &'a Catalog,
    pub ctx: &'a RequestContext,
    /// The catalog's current content hash.
    pub schema_version: uuid::Uuid,
    /// This node's replica of user tables.
    pub replica: &'a crate::replica::LocalReplica,
    /// Every replica, for reads at a consistency level.
    pub replication: &'a super::replication::Replication,
    /// Paxos, which a SERIAL read of a replicated partition runs first.
    pub paxos: &'a super::paxos::Paxos,
    /// The cluster as this node sees it (`system.peers`).
    pub cluster: &'a crate::cluster::membership::View,
    /// Live nodes per data centre, for consistency checks.
    pub live_nodes: &'a std::collections::BTreeMap<String, usize>,
    /// This node's data centre.
    pub local_dc: &'a str,
    /// Rows an unpaged read may return.
    pub max_unpaged_rows: usize,
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

    /// Whether `table` keeps its rows in storage (a user table) rather than being computed.
    pub fn is_user_table(&self, table: &TableDef) -> bool {
        self.catalog
            .keyspace(&table.keyspace)
            .is_some_and(|k| !k.is_system())
    }

    /// Every row of `table`, in clustering order.
    pub fn rows(&self, table: &TableDef) -> Vec<Row> {
        match (table.keyspace.as_str(), table.name.as_str()) {
            ("system", "local") => vec![self.local_row(table)],
            ("system", "peers" | "peers_v2") => self.peer_rows(table),
            (ks, name) => self
                .catalog
                .schema_table_rows(ks, name)
                .unwrap_or_default()
                .into_iter()
                .map(|row| row.into_iter().map(|v| v.map(Cell::Owned)).collect())
                .collect(),
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

    /// One row per other node that owns ranges (as in Cassandra, a joining node appears
    /// once it is NORMAL, when drivers also get NEW_NODE, and a node that left is gone),
    /// each column from what the node advertises; `peers_v2` adds the ports.
    fn peer_rows(&self, table: &TableDef) -> Vec<Row> {
        self.cluster
            .peers()
            .filter(|n| n.status.owns_ranges())
            .map(|node| {
                table
                    .columns
                    .iter()
                    .map(|c| peer_value(node, &c.name))
                    .collect()
            })
            .collect()
    }

    fn local_value(&self, column: &str) -> Option<Cell> {
        let address: IpAddr = self.ctx.local_addr.ip();
        let owned = |v: CqlValue| Some(Cell::Owned(v));
        let listen = self.cluster.local().internode;
        match column {
            "broadcast_address" | "listen_address" => owned(CqlValue::Inet(listen.ip())),
            "broadcast_port" | "listen_port" => owned(CqlValue::Int(i32::from(listen.port()))),
            "rpc_address" => owned(CqlValue::Inet(address)),
            "rpc_port" => owned(CqlValue::Int(i32::from(self.ctx.local_addr.port()))),
            "schema_version" => owned(CqlValue::Uuid(self.schema_version)),
            fixed => self.facts.get(fixed),
        }
    }
}

/// The value of `column` in a peer's `system.peers` / `system.peers_v2` row.
fn peer_value(node: &crate::cluster::membership::NodeView, column: &str) -> Option<Cell> {
    let owned = |v: CqlValue| Some(Cell::Owned(v));
    let text = |s: &str| owned(CqlValue::Text(s.to_owned()));
    match column {
        "peer" => owned(CqlValue::Inet(node.internode.ip())),
        "peer_port" => owned(CqlValue::Int(i32::from(node.internode.port()))),
        "data_center" => text(&node.data_center),
        "rack" => text(&node.rack),
        "host_id" => owned(CqlValue::Uuid(node.host_id)),
        "release_version" => node.release_version.as_deref().and_then(text),
        "schema_version" => node.schema_version.map(CqlValue::Uuid).and_then(owned),
        "rpc_address" | "native_address" => {
            node.cql.map(|a| CqlValue::Inet(a.ip())).and_then(owned)
        }
        "native_port" => node
            .cql
            .map(|a| CqlValue::Int(i32::from(a.port())))
            .and_then(owned),
        "tokens" => {
            let mut tokens: Vec<String> = node.tokens.iter().map(|t| t.to_string()).collect();
            tokens.sort();
            owned(CqlValue::Set(
                tokens.into_iter().map(CqlValue::Text).collect(),
            ))
        }
        _ => None,
    }
}
