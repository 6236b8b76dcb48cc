//! CQL types as written in DDL and stored in `system_schema.columns.type`.

/// The native (non-parameterised) CQL types. `varchar` parses as `Text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NativeType {
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Date,
    Decimal,
    Double,
    Duration,
    Float,
    Inet,
    Int,
    Smallint,
    Text,
    Time,
    Timestamp,
    Timeuuid,
    Tinyint,
    Uuid,
    Varint,
}

/// A CQL type. User types are referenced by name and resolved against the schema
/// catalog when their fields are needed (protocol metadata, value encoding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CqlType {
    Native(NativeType),
    List(Box<CqlType>),
    Set(Box<CqlType>),
    Map(Box<CqlType>, Box<CqlType>),
    Tuple(Vec<CqlType>),
    /// A user-defined type by name; `keyspace` is None when written unqualified.
    UserType { keyspace: Option<String>, name: String },
    Frozen(Box<CqlType>),
    /// `'org.apache.cassandra.db.marshal.SomeType'` custom types.
    Custom(String),
}
