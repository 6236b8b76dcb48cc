//! Integration tests: real ringcache processes on loopback, driven by real clients.
//!
//! One test binary (docs/design.md §1); each module covers one client or concern and every test
//! starts its own node through [`node::TestNode`], which stops it when dropped.

mod cache;
mod cdrs;
mod chat;
mod cluster;
mod cluster_ops;
mod data_path;
mod durability;
mod lwt;
mod node;
mod purge;
mod raw_protocol;
mod restart;
mod schema;
mod scylla_driver;
