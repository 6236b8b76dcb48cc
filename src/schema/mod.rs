//! The schema catalog: keyspaces, tables, columns and user types.
//!
//! The [`Catalog`] is the single source of truth for schema. DDL is applied to it
//! ([`Catalog::apply`]), and everything clients learn about schema is generated from it:
//! the rows of `system_schema.*` and `system_virtual_schema.*`
//! ([`Catalog::schema_table_rows`]) and server-side DESCRIBE ([`Catalog::describe`]).
//! Keeping one model and deriving every view means a driver's metadata, cqlsh's DESCRIBE
//! and the executor can never disagree about a table. The system keyspaces are built in
//! code on every start (system.rs) rather than stored, so a new build can change their
//! columns without a migration, and so they always exist, even on an empty data dir.
//!
//! The schema version ([`Catalog::schema_version`]) is a name-based UUID of the
//! canonical serialisation of the user schema, like Cassandra's digest of its schema
//! tables. A content hash needs no coordination: two nodes that applied the same DDL
//! agree on the version, drivers waiting for schema agreement see agreement, and any
//! change at all yields a different version. (Table ids are part of the content, so two
//! nodes agree only if they share ids: schema must be propagated, not re-executed.)
//!
//! Persistence ([`SchemaStore`]) writes the user schema as one JSON file by
//! write-temp, fsync, rename, fsync-directory: after a crash at any instant the file is
//! either the old schema or the new one, never a mix, and a file with an unknown format
//! version stops the node instead of being misread.
//!
//! Error messages follow Cassandra 4.1's wording and codes ([`SchemaError::code`]);
//! DESCRIBE output matches Cassandra's byte for byte (see describe_tests.rs).

mod catalog;
mod ddl;
mod ddl_table;
mod describe;
mod error;
mod options;
mod replication;
mod rows;
mod scylla;
mod store;
pub mod system;
mod typecheck;

pub use catalog::{
    collect_udt_names, name_uuid_from_bytes, Catalog, ClusteringOrder, ColumnDef, ColumnKind,
    DroppedColumn, KeyspaceDef, KeyspaceKind, RangeMovement, TableDef, UserTypeDef,
};
pub use ddl::ApplyContext;
pub use describe::{keyspace_cql, table_cql, type_cql, ClusterInfo, DescribeResult};
pub use error::SchemaError;
pub use options::{java_double, TableOptions};
pub use replication::DataCenters;
pub use rows::Row;
pub use scylla::{ScyllaTableOptions, Tablets};
pub use store::{SchemaStore, StoreError, FORMAT_VERSION};
pub mod snapshot {
    //! The schema as the metadata log snapshots it: the stored file's bytes.
    pub use super::store::{decode_at, encode};
}

#[cfg(test)]
mod describe_tests;
#[cfg(test)]
mod tests;
