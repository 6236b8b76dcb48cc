//! The token ring: which node owns a partition.
//!
//! Every partition key maps to a 64-bit token, and every node holds some tokens on a ring;
//! a key belongs to the node holding the first token at or after its own, wrapping around
//! (token `T` owns `(previous, T]`). Replicas are found by walking on clockwise from there.
//!
//! **Why Murmur3, and why exactly Cassandra's.** Token-aware drivers (the scylla crate, the
//! DataStax drivers, gocql) compute tokens *on the client* with Cassandra's
//! `Murmur3Partitioner` and send each request straight to a node that, by the ring we
//! advertise in `system.local`/`system.peers`, owns it. If our token for a key differs by a
//! single bit, every such request lands on the wrong node and pays an extra hop, and a
//! `token(pk)` query or a `WHERE token(pk) > ?` scan disagrees with the client. So the hash is
//! not ours to choose: it is MurmurHash3 x64_128 with seed 0, token = first half as `i64`,
//! including Cassandra's historical bug of sign-extending tail bytes (see `murmur3.rs`), the
//! `i64::MIN → i64::MAX` normalisation, the empty key's `MIN` token, and the composite key
//! layout (`u16` length, bytes, `0x00` per component) for multi-column partition keys. No
//! crate offers that as a library function (the scylla driver has it, but only inside its
//! routing code), so we keep our own ~100 lines and test them against the driver.
//!
//! **Why not `hashring`.** Generic consistent-hashing crates hash *node names* onto the
//! ring with their own hash and place keys with their own ordering and range convention.
//! Nothing about that reproduces Cassandra's token ownership: clients could not route by
//! it, and tokens we persist and gossip would mean nothing to them. The ring here is instead
//! an explicit sorted list of the very tokens we advertise.
//!
//! **vnodes.** Each node holds `num_tokens` tokens (chosen at random at first boot by
//! [`random_tokens`] and persisted), so its load is spread over many small ranges and a
//! joining node takes a little from everyone. `TokenRing` is therefore keyed by token, not by
//! node, and placement walks it skipping nodes already chosen.

mod murmur3;
mod partitioner;
pub mod placement;
mod token;
mod token_ring;

pub use murmur3::{murmur3_x64_128, murmur3_x64_128_h1};
pub use partitioner::{serialize_partition_key, KeyTooLong, Murmur3Partitioner};
pub use placement::{Location, Placement, Strategy};
pub use token::Token;
pub use token_ring::{random_tokens, TokenRing};

#[cfg(test)]
mod scylla_oracle_tests;
