//! The chat application ringcache serves out of the box: its schema, its access patterns,
//! and a load generator that proves them.
//!
//! The seed of this project is a chat app (Astra Loom, shared reference chat-schemas.md):
//! people post to threads named by `#hashtags`, read a thread's history newest first, scroll
//! back, catch up after a reconnect, and follow, hide and unfollow threads. Loom kept its
//! history in one ever-growing partition per thread and its users as JSON documents; this
//! subsystem keeps the same access patterns on a schema a CQL node can serve for years:
//! messages are partitioned by (thread, UTC day) as Discord partitions by (channel, 10 days),
//! so no partition grows past a day of one thread, and a small per-thread index of non-empty
//! days lets a reader skip quiet days instead of probing them. `config/chat.cql` says why
//! each table looks the way it does; the `ringcache serve` command hands it to the node as a start-up script (`[chat] create_schema`).
//!
//! Every access pattern is one prepared statement in [`statements`], used by one method of
//! [`ChatClient`], which is a client of the node through the `scylla` driver like any other
//! application. That is deliberate: `ringcache chat`, the load generator, the tests and the
//! latte workload (`bench/chat.rn`) all exercise the node through the wire protocol, so what
//! they measure and verify is what an application gets.
//!
//! A post is written once per thread it names, under one timeuuid made by the poster, so the
//! copies are the same message (Loom's `other_threads` fan-out). The bucket comes from that
//! id, so a post lands in the same day of every thread, and the day's index row is written
//! before the message: a reader that sees a message can always find its bucket again.

mod client;
mod history;
pub mod load;
mod model;
pub mod statements;
pub mod timeuuid;

use thiserror::Error;

pub use client::ChatClient;
pub use model::{hashtags, utc_time, FollowedThread, Login, Message, Thread, User};

/// The chat schema (`config/chat.cql`), built into the binary so a node needs no files.
pub const SCHEMA: &str = include_str!("../../config/chat.cql");

/// The keyspace every chat statement names.
pub const KEYSPACE: &str = "chat";

/// Why a chat operation failed.
#[derive(Debug, Error)]
pub enum ChatError {
    /// No node could be reached at the contact point.
    #[error("cannot connect: {0}")]
    Connect(Box<scylla::errors::NewSessionError>),
    /// A statement could not be prepared (is the chat schema there?).
    #[error("cannot prepare a chat statement: {0}")]
    Prepare(Box<scylla::errors::PrepareError>),
    /// The node refused or failed a statement.
    #[error("{0}")]
    Execution(Box<scylla::errors::ExecutionError>),
    /// The node refused or failed a paged read.
    #[error("{0}")]
    Paged(String),
    /// The node answered with something the chat schema cannot hold.
    #[error("unexpected result: {0}")]
    Result(String),
    /// The request itself makes no sense (a post naming no thread, say).
    #[error("{0}")]
    Invalid(String),
}

/// The driver's result-shape errors all mean the same thing here: the answer does not fit
/// the chat schema.
macro_rules! result_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for ChatError {
            fn from(e: $t) -> Self {
                ChatError::Result(e.to_string())
            }
        }
    )*};
}

result_errors!(
    scylla::errors::IntoRowsResultError,
    scylla::errors::RowsError,
    scylla::errors::DeserializationError,
    scylla::errors::TypeCheckError,
    scylla::errors::NextRowError
);

/// The driver's errors are large; boxed, a `Result` of ours stays small on the hot path.
macro_rules! boxed_errors {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<$t> for ChatError {
            fn from(e: $t) -> Self {
                ChatError::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_errors!(
    scylla::errors::NewSessionError => Connect,
    scylla::errors::PrepareError => Prepare,
    scylla::errors::ExecutionError => Execution
);

impl From<scylla::errors::PagerExecutionError> for ChatError {
    fn from(e: scylla::errors::PagerExecutionError) -> Self {
        ChatError::Paged(e.to_string())
    }
}
