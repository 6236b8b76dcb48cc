//! ringcache: a Cassandra-protocol-compatible caching and routing tier.
//!
//! See `docs/architecture.md` for a request's walk through these modules.

pub mod backend;
pub mod bench;
pub mod cache;
pub mod chat;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod cql;
pub mod error;
pub mod metadata;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod replica;
pub mod ring;
pub mod schema;
pub mod server;
pub mod storage;
