//! The `[option]` column type notation of spec §4.2.5.2.

/// A column type as it travels in result and prepared metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataType {
    Custom(String),
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Decimal,
    Double,
    Float,
    Int,
    Timestamp,
    Uuid,
    Varchar,
    Varint,
    Timeuuid,
    Inet,
    Date,
    Time,
    Smallint,
    Tinyint,
    Duration,
    List(Box<DataType>),
    Map(Box<DataType>, Box<DataType>),
    Set(Box<DataType>),
    Udt { keyspace: String, name: String, fields: Vec<(String, DataType)> },
    Tuple(Vec<DataType>),
}
