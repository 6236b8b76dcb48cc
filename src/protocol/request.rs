//! Request messages (client → server), spec §4.1.

use bytes::Bytes;

use super::consistency::Consistency;

/// A decoded request body. The opcode comes from the frame header.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// STARTUP: the options map (`CQL_VERSION` required, `COMPRESSION` optional).
    Startup(Vec<(String, String)>),
    /// OPTIONS: asks for SUPPORTED; legal before and after STARTUP.
    Options,
    /// QUERY: a CQL string with its parameters.
    Query { query: String, params: QueryParameters },
    /// PREPARE: a CQL string to prepare.
    Prepare { query: String },
    /// EXECUTE: a prepared statement id with its parameters.
    Execute { id: Bytes, params: QueryParameters },
    /// REGISTER: the event types to push on this connection.
    Register { events: Vec<String> },
    /// BATCH: several statements applied together.
    Batch(Batch),
    /// AUTH_RESPONSE: a SASL token (null allowed).
    AuthResponse { token: Option<Bytes> },
}

/// A bound value as sent on the wire: `[value]` distinguishes null (-1) and unset (-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Unset,
    Bytes(Bytes),
}

/// Bound values of a QUERY/EXECUTE/BATCH statement, positional or named (flag 0x40).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    pub values: Vec<Value>,
    /// `Some` when the client sent names with the values; same length as `values`.
    pub names: Option<Vec<String>>,
}

/// `<query_parameters>` of QUERY and EXECUTE (spec §4.1.4).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParameters {
    pub consistency: Consistency,
    pub values: Values,
    /// Flag 0x02: the client already has the result metadata.
    pub skip_metadata: bool,
    /// Flag 0x04: rows per page; `None` means unpaged.
    pub page_size: Option<i32>,
    /// Flag 0x08: the opaque state returned with the previous page.
    pub paging_state: Option<Bytes>,
    /// Flag 0x10.
    pub serial_consistency: Option<Consistency>,
    /// Flag 0x20: the client's write timestamp in microseconds.
    pub timestamp: Option<i64>,
}

impl Default for QueryParameters {
    fn default() -> Self {
        QueryParameters {
            consistency: Consistency::One,
            values: Values::default(),
            skip_metadata: false,
            page_size: None,
            paging_state: None,
            serial_consistency: None,
            timestamp: None,
        }
    }
}

/// BATCH type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BatchKind {
    Logged = 0,
    Unlogged = 1,
    Counter = 2,
}

/// One statement of a batch: a query string or a prepared id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchQuery {
    Text(String),
    Prepared(Bytes),
}

/// A statement inside a BATCH with its own values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatement {
    pub query: BatchQuery,
    pub values: Values,
}

/// BATCH body (spec §4.1.7).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub kind: BatchKind,
    pub statements: Vec<BatchStatement>,
    pub consistency: Consistency,
    pub serial_consistency: Option<Consistency>,
    pub timestamp: Option<i64>,
}
