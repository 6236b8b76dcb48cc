//! Response messages (server → client), spec §4.2.

use std::net::SocketAddr;

use bytes::Bytes;

use super::consistency::Consistency;
use super::error::ErrorCode;
use super::types::DataType;

/// A response body. The opcode is implied by the variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Error(ErrorBody),
    Ready,
    /// AUTHENTICATE with the authenticator's class name.
    Authenticate(String),
    /// SUPPORTED: a string multimap, in the order given.
    Supported(Vec<(String, Vec<String>)>),
    Result(ResultBody),
    Event(Event),
    AuthChallenge(Option<Bytes>),
    AuthSuccess(Option<Bytes>),
}

/// ERROR body: code, message and the code-specific extra fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub extra: ErrorExtra,
}

/// Extra fields some error codes carry (spec §8).
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorExtra {
    None,
    Unavailable { consistency: Consistency, required: i32, alive: i32 },
    WriteTimeout { consistency: Consistency, received: i32, block_for: i32, write_type: String },
    ReadTimeout { consistency: Consistency, received: i32, block_for: i32, data_present: bool },
    ReadFailure { consistency: Consistency, received: i32, block_for: i32, num_failures: i32, data_present: bool },
    FunctionFailure { keyspace: String, function: String, arg_types: Vec<String> },
    WriteFailure { consistency: Consistency, received: i32, block_for: i32, num_failures: i32, write_type: String },
    /// `table` is empty when a keyspace already exists.
    AlreadyExists { keyspace: String, table: String },
    Unprepared { id: Bytes },
}

/// RESULT bodies (spec §4.2.5).
#[derive(Debug, Clone, PartialEq)]
pub enum ResultBody {
    Void,
    Rows(Rows),
    SetKeyspace(String),
    Prepared(PreparedResult),
    SchemaChange(SchemaChange),
}

/// A column of result or bind metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub keyspace: String,
    pub table: String,
    pub name: String,
    pub data_type: DataType,
}

/// Rows metadata. The encoder uses the global table spec whenever every column shares
/// one keyspace and table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultMetadata {
    /// Column count; equals `columns.len()` unless `no_metadata` is set.
    pub column_count: usize,
    pub columns: Vec<ColumnSpec>,
    /// Set (Has_more_pages) when more rows follow.
    pub paging_state: Option<Bytes>,
    /// No_metadata flag: the column specs are omitted (skip_metadata was requested).
    pub no_metadata: bool,
}

/// Rows result: metadata, then `rows` of `column_count` cells each (`None` = null).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    pub metadata: ResultMetadata,
    pub rows: Vec<Vec<Option<Bytes>>>,
}

/// Bind-marker metadata of a Prepared result (v4 layout with `pk_index`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PreparedMetadata {
    /// For each partition-key column in key order, the index of its bind marker.
    pub pk_indexes: Vec<u16>,
    pub columns: Vec<ColumnSpec>,
}

/// Prepared result: statement id, bind metadata, result metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedResult {
    pub id: Bytes,
    pub metadata: PreparedMetadata,
    pub result_metadata: ResultMetadata,
}

/// CREATED / UPDATED / DROPPED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Created,
    Updated,
    Dropped,
}

/// What a schema change touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaTarget {
    Keyspace(String),
    Table { keyspace: String, name: String },
    Type { keyspace: String, name: String },
    Function { keyspace: String, name: String, arg_types: Vec<String> },
    Aggregate { keyspace: String, name: String, arg_types: Vec<String> },
}

/// Schema_change result body, also the body of a SCHEMA_CHANGE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    pub change: ChangeType,
    pub target: SchemaTarget,
}

/// EVENT bodies, pushed on stream -1 to connections that registered for them.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `change` is NEW_NODE, REMOVED_NODE or MOVED_NODE.
    TopologyChange { change: String, address: SocketAddr },
    /// `status` is UP or DOWN.
    StatusChange { status: String, address: SocketAddr },
    SchemaChange(SchemaChange),
}
