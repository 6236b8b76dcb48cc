//! The server's one error type. Each variant decides what the client sees: the mapping to
//! CQL error codes lives in [`Error::to_body`] and nowhere else (design §13).

use bytes::Bytes;
use thiserror::Error;

use crate::protocol::{Consistency, ErrorBody, ErrorCode, ErrorExtra, ProtocolError};

/// A request failure, as the client will see it.
#[derive(Debug, Clone, Error)]
pub enum Error {
    /// Malformed frame or message; the connection is closed after the reply.
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    /// The statement text does not parse.
    #[error("{0}")]
    Syntax(String),
    /// The statement parses but cannot be executed as asked.
    #[error("{0}")]
    Invalid(String),
    /// The keyspace, table or type being created exists.
    #[error("{message}")]
    AlreadyExists {
        keyspace: String,
        table: String,
        message: String,
    },
    /// A configuration-level refusal (bad replication strategy, ...).
    #[error("{0}")]
    Config(String),
    /// The operation is not allowed (e.g. modifying a system keyspace).
    #[error("{0}")]
    Unauthorized(String),
    /// EXECUTE of a statement id this server does not hold.
    #[error("Prepared query with ID {} not found (either the query was not prepared on this host (maybe the host has been restarted?) or you have prepared too many queries and it has been evicted from the internal cache)", hex(.0))]
    Unprepared(Bytes),
    /// Fewer replicas are alive than the consistency level needs.
    #[error("Cannot achieve consistency level {}", .consistency.name())]
    Unavailable {
        consistency: Consistency,
        required: i32,
        alive: i32,
    },
    /// A metadata change (DDL) found no majority of the cluster's voting members; the
    /// message says how many answered.
    #[error("{message}")]
    NoQuorum {
        required: i32,
        alive: i32,
        message: String,
    },
    /// A replica failed the read (too many tombstones, corrupt data): nobody answered.
    #[error("Operation failed - received 0 responses and {failures} failures: {reason}")]
    ReadFailure {
        consistency: Consistency,
        block_for: i32,
        failures: i32,
        reason: String,
    },
    /// Replicas failed the write so that the level can no longer be met.
    #[error("Operation failed - received {received} responses and {failures} failures: {reason}")]
    WriteFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        failures: i32,
        write_type: &'static str,
        reason: String,
    },
    /// Too few replicas acknowledged a write within `write_request_timeout_ms`.
    #[error("Operation timed out - received only {received} responses.")]
    WriteTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        /// SIMPLE, BATCH, UNLOGGED_BATCH, BATCH_LOG, CAS.
        write_type: &'static str,
    },
    /// Too few replicas answered a read within `read_request_timeout_ms`.
    #[error("Operation timed out - received only {received} responses.")]
    ReadTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        /// Whether the replica asked for the data answered.
        data_present: bool,
    },
    /// TRUNCATE could not reach or complete on every replica.
    #[error("Error during truncate: {0}")]
    Truncate(String),
    /// An error another node answered for this request (a lightweight transaction run on
    /// its partition's replica), passed on as it was.
    #[error("{}", .0.message)]
    Forwarded(ErrorBody),
    /// Internal: a write's binding needs a stored list not read from the replicas yet; the
    /// coordinator reads it and binds again (never sent to a client).
    #[error("a stored list was needed but not read")]
    ListNeeded(Box<crate::coordinator::ListKey>),
    /// The node refuses work to protect itself.
    #[error("{0}")]
    Overloaded(String),
    /// A bug or an internal failure; the connection stays open.
    #[error("{0}")]
    Server(String),
}

/// Convenience alias for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for `Error::Invalid(format!(...))` call sites.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid(message.into())
    }

    /// The refusal of a feature this build parses but does not execute yet, said plainly
    /// (never answered with an empty success): "`what` is not supported yet by this
    /// ringcache build", with `why` appended when given. Every such feature is listed in
    /// the README and docs/architecture.md §1.
    pub fn not_supported(what: impl std::fmt::Display, why: Option<&str>) -> Error {
        Error::refused(what, "is", why)
    }

    /// [`Error::not_supported`] for a plural subject ("Counter tables are …").
    pub fn not_supported_plural(what: impl std::fmt::Display, why: Option<&str>) -> Error {
        Error::refused(what, "are", why)
    }

    fn refused(what: impl std::fmt::Display, verb: &str, why: Option<&str>) -> Error {
        let why = why.unwrap_or("");
        Error::Invalid(format!(
            "{what} {verb} not supported yet by this ringcache build{why}"
        ))
    }

    /// The CQL error code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Protocol(_) => ErrorCode::ProtocolError,
            Error::Syntax(_) => ErrorCode::SyntaxError,
            Error::Invalid(_) => ErrorCode::Invalid,
            Error::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Error::Config(_) => ErrorCode::ConfigError,
            Error::Unauthorized(_) => ErrorCode::Unauthorized,
            Error::Unprepared(_) => ErrorCode::Unprepared,
            Error::Unavailable { .. } | Error::NoQuorum { .. } => ErrorCode::Unavailable,
            Error::ReadFailure { .. } => ErrorCode::ReadFailure,
            Error::WriteFailure { .. } => ErrorCode::WriteFailure,
            Error::Truncate(_) => ErrorCode::TruncateError,
            Error::Forwarded(body) => body.code,
            Error::ListNeeded(_) => ErrorCode::ServerError,
            Error::WriteTimeout { .. } => ErrorCode::WriteTimeout,
            Error::ReadTimeout { .. } => ErrorCode::ReadTimeout,
            Error::Overloaded(_) => ErrorCode::Overloaded,
            Error::Server(_) => ErrorCode::ServerError,
        }
    }

    /// Whether the connection must be closed after this error is sent.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Protocol(_))
    }

    /// The ERROR message body for the wire.
    pub fn to_body(&self) -> ErrorBody {
        if let Error::Forwarded(body) = self {
            return body.clone();
        }
        let extra = match self {
            Error::AlreadyExists {
                keyspace, table, ..
            } => ErrorExtra::AlreadyExists {
                keyspace: keyspace.clone(),
                table: table.clone(),
            },
            Error::Unprepared(id) => ErrorExtra::Unprepared { id: id.clone() },
            Error::Unavailable {
                consistency,
                required,
                alive,
            } => ErrorExtra::Unavailable {
                consistency: *consistency,
                required: *required,
                alive: *alive,
            },
            Error::ReadFailure {
                consistency,
                block_for,
                failures,
                ..
            } => ErrorExtra::ReadFailure {
                consistency: *consistency,
                received: 0,
                block_for: *block_for,
                num_failures: *failures,
                data_present: false,
            },
            Error::NoQuorum {
                required, alive, ..
            } => ErrorExtra::Unavailable {
                consistency: Consistency::Quorum,
                required: *required,
                alive: *alive,
            },
            Error::WriteTimeout {
                consistency,
                received,
                block_for,
                write_type,
            } => ErrorExtra::WriteTimeout {
                consistency: *consistency,
                received: *received,
                block_for: *block_for,
                write_type: (*write_type).to_owned(),
            },
            Error::ReadTimeout {
                consistency,
                received,
                block_for,
                data_present,
            } => ErrorExtra::ReadTimeout {
                consistency: *consistency,
                received: *received,
                block_for: *block_for,
                data_present: *data_present,
            },
            Error::WriteFailure {
                consistency,
                received,
                block_for,
                failures,
                write_type,
                ..
            } => ErrorExtra::WriteFailure {
                consistency: *consistency,
                received: *received,
                block_for: *block_for,
                num_failures: *failures,
                write_type: (*write_type).to_owned(),
            },
            _ => ErrorExtra::None,
        };
        ErrorBody {
            code: self.code(),
            message: self.to_string(),
            extra,
        }
    }
}

fn hex(bytes: &Bytes) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<crate::cql::ParseError> for Error {
    fn from(e: crate::cql::ParseError) -> Error {
        Error::Syntax(e.to_string())
    }
}

impl From<crate::schema::SchemaError> for Error {
    fn from(e: crate::schema::SchemaError) -> Error {
        use crate::schema::SchemaError as S;
        match e {
            S::Invalid(m) => Error::Invalid(m),
            S::ConfigError(m) => Error::Config(m),
            S::Unauthorized(m) => Error::Unauthorized(m),
            S::Syntax(m) => Error::Syntax(m),
            S::NotSupported { what, why } => Error::not_supported(what, why.as_deref()),
            S::AlreadyExists { keyspace, table } => {
                let message = S::AlreadyExists {
                    keyspace: keyspace.clone(),
                    table: table.clone(),
                }
                .to_string();
                Error::AlreadyExists {
                    keyspace,
                    table,
                    message,
                }
            }
        }
    }
}
