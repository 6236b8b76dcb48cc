//! What a node is: its persistent identity and the facts it reports about itself.
//!
//! A node chooses its `host_id` and tokens at first boot and keeps them in
//! `<data_dir>/node.json` ([`NodeIdentity`]), so drivers see the same node, and the ring the
//! same ownership, after every restart. [`NodeInfo`] gathers those with the configured
//! names (cluster, data centre, rack) and ports: the facts `system.local` reports and the
//! cluster advertises. Everything above this module (the coordinator, the server, the
//! cluster layer) reads these facts from here; nothing here depends on them.

pub mod alive;
pub mod bootstrap;
mod identity;
pub mod replace;

use uuid::Uuid;

pub use identity::{next_generation, IdentityError, NodeIdentity};

/// The Cassandra release whose behaviour clients should expect (≥ 4 so cqlsh uses
/// server-side DESCRIBE and drivers read the v4 schema tables).
pub const RELEASE_VERSION: &str = "4.1.5";

/// Static facts about this node that system tables report.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// `cluster_name` from the configuration.
    pub cluster_name: String,
    /// The data centre and rack this node reports (`system.local`, placement).
    pub data_center: String,
    pub rack: String,
    /// The identity chosen at first boot.
    pub host_id: Uuid,
    /// The node's tokens as `system.local.tokens` lists them: decimal strings in the byte
    /// order of a `set<text>`, not numerically.
    pub tokens: Vec<String>,
    /// The CQL port clients connect to.
    pub cql_port: u16,
    /// This life's gossip generation: seconds since the epoch at start, and always above
    /// the previous life's (persisted), reported as `gossip_generation`.
    pub generation: i32,
    /// The dead node this one replaced or is replacing (`replace_address`), advertised so
    /// every node counts that one gone ([`replace`]).
    pub replaces: Option<Uuid>,
}

impl NodeInfo {
    /// The facts of a node with `identity`, configured by `config`, in its life
    /// `generation` ([`next_generation`]).
    pub fn new(
        config: &crate::config::Config,
        identity: NodeIdentity,
        generation: i32,
    ) -> NodeInfo {
        let mut tokens = identity.tokens;
        tokens.sort();
        NodeInfo {
            cluster_name: config.cluster_name.clone(),
            data_center: config.data_center.clone(),
            rack: config.rack.clone(),
            host_id: identity.host_id,
            tokens,
            cql_port: config.cql_port,
            generation,
            replaces: None,
        }
    }
}
