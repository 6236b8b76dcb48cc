//! Schema errors and the CQL error codes they travel as.

/// Why a DDL statement or a DESCRIBE was refused. Each variant maps to one CQL error code
/// (see [`SchemaError::code`]); messages follow Cassandra's wording so that tools that
/// match on them (and people who search for them) find what they expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum SchemaError {
    /// Invalid request (0x2200): unknown keyspace/table, bad column definitions, ...
    #[error("{0}")]
    Invalid(String),
    /// The keyspace (table empty) or table already exists (0x2400).
    #[error("{}", already_exists_message(.keyspace, .table))]
    AlreadyExists {
        /// Keyspace that was being created, or that holds the table.
        keyspace: String,
        /// Table that was being created; empty for a keyspace.
        table: String,
    },
    /// Configuration error (0x2300): bad replication or table parameters.
    #[error("{0}")]
    ConfigError(String),
    /// Unauthorized (0x2100): system keyspaces are not user-modifiable.
    #[error("{0}")]
    Unauthorized(String),
    /// Syntax error (0x2000): Cassandra reports unknown or malformed `WITH` properties
    /// as syntax errors because its property parser raises them.
    #[error("{0}")]
    Syntax(String),
    /// A valid option asking for something this build does not do (Invalid, 0x2200, with
    /// the message every unbuilt feature gets: `Error::not_supported`).
    #[error("{what} is not supported yet by this ringcache build{}", .why.as_deref().unwrap_or(""))]
    NotSupported {
        /// What was asked for.
        what: String,
        /// Why, starting with its own separator (": ..."), if said.
        why: Option<String>,
    },
}

fn already_exists_message(keyspace: &str, table: &str) -> String {
    if table.is_empty() {
        format!("Cannot add existing keyspace \"{keyspace}\"")
    } else {
        format!("Cannot add already existing table \"{table}\" to keyspace \"{keyspace}\"")
    }
}

impl SchemaError {
    /// The CQL native-protocol error code of this error.
    pub fn code(&self) -> i32 {
        match self {
            SchemaError::Invalid(_) | SchemaError::NotSupported { .. } => 0x2200,
            SchemaError::AlreadyExists { .. } => 0x2400,
            SchemaError::ConfigError(_) => 0x2300,
            SchemaError::Unauthorized(_) => 0x2100,
            SchemaError::Syntax(_) => 0x2000,
        }
    }
}

/// Shorthand for an Invalid error with a formatted message.
pub(crate) fn invalid(message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid(message.into())
}

/// Shorthand for a ConfigError with a formatted message.
pub(crate) fn config(message: impl Into<String>) -> SchemaError {
    SchemaError::ConfigError(message.into())
}

/// Shorthand for a Syntax error with a formatted message.
pub(crate) fn syntax(message: impl Into<String>) -> SchemaError {
    SchemaError::Syntax(message.into())
}
