//! The system keyspaces, built in code on every start and never persisted.
//!
//! Column sets follow Cassandra 4.1 (SystemKeyspace, SchemaKeyspace, AuthKeyspace,
//! TraceKeyspace, SystemDistributedKeyspace, VirtualSchemaKeyspace) because drivers and
//! cqlsh read these tables by column name and some of them check types strictly.

use std::collections::BTreeMap;

use super::catalog::{
    name_uuid_from_bytes, ClusteringOrder, ColumnDef, ColumnKind, KeyspaceDef, KeyspaceKind,
    TableDef,
};
use super::options::{string_map, TableOptions};
use crate::cql::CqlType;

/// `system`: node-local tables.
pub const SYSTEM: &str = "system";
/// `system_schema`: the schema tables.
pub const SYSTEM_SCHEMA: &str = "system_schema";
/// `system_auth`: roles and permissions.
pub const SYSTEM_AUTH: &str = "system_auth";
/// `system_distributed`: repair history and view build status.
pub const SYSTEM_DISTRIBUTED: &str = "system_distributed";
/// `system_traces`: query tracing.
pub const SYSTEM_TRACES: &str = "system_traces";
/// `system_virtual_schema`: describes the virtual keyspaces.
pub const SYSTEM_VIRTUAL_SCHEMA: &str = "system_virtual_schema";
/// `system_views`: virtual tables of node state.
pub const SYSTEM_VIEWS: &str = "system_views";

/// A table as written below: name, comment, columns (name, type string), partition key
/// and clustering columns.
struct Spec<'a> {
    name: &'a str,
    comment: &'a str,
    columns: &'a [(&'a str, &'a str)],
    pk: &'a [&'a str],
    ck: &'a [&'a str],
    /// Whether the table-parameter columns of `system_schema.tables` follow `columns`.
    params: bool,
}

/// Every system keyspace with its tables.
pub(crate) fn system_keyspaces() -> Vec<KeyspaceDef> {
    let local = string_map(&[("class", "org.apache.cassandra.locator.LocalStrategy")]);
    let simple = |rf: &str| {
        string_map(&[
            ("class", "org.apache.cassandra.locator.SimpleStrategy"),
            ("replication_factor", rf),
        ])
    };
    vec![
        keyspace(
            SYSTEM,
            local.clone(),
            KeyspaceKind::LocalSystem,
            system_tables(),
        ),
        keyspace(
            SYSTEM_SCHEMA,
            local.clone(),
            KeyspaceKind::LocalSystem,
            schema_tables(),
        ),
        keyspace(
            SYSTEM_AUTH,
            simple("1"),
            KeyspaceKind::ReplicatedSystem,
            auth_tables(),
        ),
        keyspace(
            SYSTEM_DISTRIBUTED,
            simple("3"),
            KeyspaceKind::ReplicatedSystem,
            distributed_tables(),
        ),
        keyspace(
            SYSTEM_TRACES,
            simple("2"),
            KeyspaceKind::ReplicatedSystem,
            trace_tables(),
        ),
        keyspace(
            SYSTEM_VIRTUAL_SCHEMA,
            local.clone(),
            KeyspaceKind::Virtual,
            virtual_schema_tables(),
        ),
        keyspace(SYSTEM_VIEWS, local, KeyspaceKind::Virtual, views_tables()),
    ]
}

fn keyspace(
    name: &str,
    replication: BTreeMap<String, String>,
    kind: KeyspaceKind,
    specs: Vec<Spec<'_>>,
) -> KeyspaceDef {
    let tables = specs
        .iter()
        .map(|s| (s.name.to_string(), build_table(name, s, kind)))
        .collect();
    KeyspaceDef {
        name: name.into(),
        replication,
        durable_writes: true,
        tables,
        types: BTreeMap::new(),
        tablets: None,
        kind,
    }
}

fn build_table(keyspace: &str, spec: &Spec<'_>, kind: KeyspaceKind) -> TableDef {
    let extra: &[(&str, &str)] = if spec.params { TABLE_PARAMS } else { &[] };
    let columns = spec
        .columns
        .iter()
        .chain(extra)
        .map(|(name, ty)| {
            let (kind, position, order) = if let Some(i) = spec.pk.iter().position(|c| c == name) {
                (ColumnKind::PartitionKey, i as i32, ClusteringOrder::None)
            } else if let Some(i) = spec.ck.iter().position(|c| c == name) {
                (ColumnKind::Clustering, i as i32, ClusteringOrder::Asc)
            } else {
                (ColumnKind::Regular, -1, ClusteringOrder::None)
            };
            ColumnDef {
                name: name.to_string(),
                // The type strings below are constants; a typo would show up as a
                // custom type in tests rather than as a panic.
                ty: CqlType::parse(ty)
                    .map(|t| t.canonical())
                    .unwrap_or_else(|_| CqlType::Custom(ty.to_string())),
                kind,
                position,
                order,
            }
        })
        .collect();
    let options = TableOptions {
        comment: spec.comment.into(),
        ..TableOptions::default()
    };
    let mut table = TableDef {
        keyspace: keyspace.into(),
        name: spec.name.into(),
        // Cassandra's TableId.forSystemTable: nameUUIDFromBytes(keyspace + table).
        id: name_uuid_from_bytes(format!("{keyspace}{}", spec.name).as_bytes()),
        columns,
        options,
        dropped: BTreeMap::new(),
        is_virtual: kind == KeyspaceKind::Virtual,
    };
    table.sort_columns();
    table
}

fn system_tables() -> Vec<Spec<'static>> {
    vec![
        Spec {
            name: "local",
            comment: "information about the local node",
            columns: &[
                ("key", "text"),
                ("bootstrapped", "text"),
                ("broadcast_address", "inet"),
                ("broadcast_port", "int"),
                ("cluster_name", "text"),
                ("cql_version", "text"),
                ("data_center", "text"),
                ("gossip_generation", "int"),
                ("host_id", "uuid"),
                ("listen_address", "inet"),
                ("listen_port", "int"),
                ("native_protocol_version", "text"),
                ("partitioner", "text"),
                ("rack", "text"),
                ("release_version", "text"),
                ("rpc_address", "inet"),
                ("rpc_port", "int"),
                ("schema_version", "uuid"),
                ("tokens", "set<text>"),
                ("truncated_at", "map<uuid, blob>"),
            ],
            pk: &["key"],
            ck: &[],
            params: false,
        },
        Spec {
            name: "peers",
            comment: "information about known peers in the cluster",
            columns: &[
                ("peer", "inet"),
                ("data_center", "text"),
                ("host_id", "uuid"),
                ("preferred_ip", "inet"),
                ("rack", "text"),
                ("release_version", "text"),
                ("rpc_address", "inet"),
                ("schema_version", "uuid"),
                ("tokens", "set<text>"),
            ],
            pk: &["peer"],
            ck: &[],
            params: false,
        },
        Spec {
            name: "peers_v2",
            comment: "information about known peers in the cluster",
            columns: &[
                ("peer", "inet"),
                ("peer_port", "int"),
                ("data_center", "text"),
                ("host_id", "uuid"),
                ("preferred_ip", "inet"),
                ("preferred_port", "int"),
                ("rack", "text"),
                ("release_version", "text"),
                ("native_address", "inet"),
                ("native_port", "int"),
                ("schema_version", "uuid"),
                ("tokens", "set<text>"),
            ],
            pk: &["peer"],
            ck: &["peer_port"],
            params: false,
        },
        Spec {
            name: "size_estimates",
            comment: "per-table primary range size estimates, table is deprecated in favor of table_estimates",
            columns: &[
                ("keyspace_name", "text"),
                ("table_name", "text"),
                ("range_start", "text"),
                ("range_end", "text"),
                ("mean_partition_size", "bigint"),
                ("partitions_count", "bigint"),
            ],
            pk: &["keyspace_name"],
            ck: &["table_name", "range_start", "range_end"],
            params: false,
        },
    ]
}

/// Table-parameter columns shared by `system_schema.tables` and `views`.
const TABLE_PARAMS: &[(&str, &str)] = &[
    ("bloom_filter_fp_chance", "double"),
    ("caching", "frozen<map<text, text>>"),
    ("comment", "text"),
    ("compaction", "frozen<map<text, text>>"),
    ("compression", "frozen<map<text, text>>"),
    ("memtable", "text"),
    ("crc_check_chance", "double"),
    ("dclocal_read_repair_chance", "double"),
    ("default_time_to_live", "int"),
    ("extensions", "frozen<map<text, blob>>"),
    ("gc_grace_seconds", "int"),
    ("id", "uuid"),
    ("max_index_interval", "int"),
    ("memtable_flush_period_in_ms", "int"),
    ("min_index_interval", "int"),
    ("read_repair_chance", "double"),
    ("speculative_retry", "text"),
    ("additional_write_policy", "text"),
    ("cdc", "boolean"),
    ("read_repair", "text"),
];

/// Column sets of the nine (plus dropped_columns) `system_schema` tables, Cassandra 4.1.
fn schema_tables() -> Vec<Spec<'static>> {
    vec![
        Spec {
            name: "keyspaces",
            comment: "keyspace definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("durable_writes", "boolean"),
                ("replication", "frozen<map<text, text>>"),
            ],
            pk: &["keyspace_name"],
            ck: &[],
            params: false,
        },
        Spec {
            name: "tables",
            comment: "table definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("table_name", "text"),
                ("flags", "frozen<set<text>>"),
            ],
            pk: &["keyspace_name"],
            ck: &["table_name"],
            params: true,
        },
        Spec {
            name: "columns",
            comment: "column definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("table_name", "text"),
                ("column_name", "text"),
                ("clustering_order", "text"),
                ("column_name_bytes", "blob"),
                ("kind", "text"),
                ("position", "int"),
                ("type", "text"),
            ],
            pk: &["keyspace_name"],
            ck: &["table_name", "column_name"],
            params: false,
        },
        Spec {
            name: "dropped_columns",
            comment: "dropped column registry",
            columns: &[
                ("keyspace_name", "text"),
                ("table_name", "text"),
                ("column_name", "text"),
                ("dropped_time", "timestamp"),
                ("kind", "text"),
                ("type", "text"),
            ],
            pk: &["keyspace_name"],
            ck: &["table_name", "column_name"],
            params: false,
        },
        Spec {
            name: "triggers",
            comment: "trigger definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("table_name", "text"),
                ("trigger_name", "text"),
                ("options", "frozen<map<text, text>>"),
            ],
            pk: &["keyspace_name"],
            ck: &["table_name", "trigger_name"],
            params: false,
        },
        Spec {
            name: "views",
            comment: "view definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("view_name", "text"),
                ("base_table_id", "uuid"),
                ("base_table_name", "text"),
                ("where_clause", "text"),
                ("include_all_columns", "boolean"),
            ],
            pk: &["keyspace_name"],
            ck: &["view_name"],
            params: true,
        },
        Spec {
            name: "indexes",
            comment: "secondary index definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("table_name", "text"),
                ("index_name", "text"),
                ("kind", "text"),
                ("options", "frozen<map<text, text>>"),
            ],
            pk: &["keyspace_name"],
            ck: &["table_name", "index_name"],
            params: false,
        },
        Spec {
            name: "types",
            comment: "user defined type definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("type_name", "text"),
                ("field_names", "frozen<list<text>>"),
                ("field_types", "frozen<list<text>>"),
            ],
            pk: &["keyspace_name"],
            ck: &["type_name"],
            params: false,
        },
        Spec {
            name: "functions",
            comment: "user defined function definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("function_name", "text"),
                ("argument_types", "frozen<list<text>>"),
                ("argument_names", "frozen<list<text>>"),
                ("body", "text"),
                ("language", "text"),
                ("return_type", "text"),
                ("called_on_null_input", "boolean"),
            ],
            pk: &["keyspace_name"],
            ck: &["function_name", "argument_types"],
            params: false,
        },
        Spec {
            name: "aggregates",
            comment: "user defined aggregate definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("aggregate_name", "text"),
                ("argument_types", "frozen<list<text>>"),
                ("final_func", "text"),
                ("initcond", "text"),
                ("return_type", "text"),
                ("state_func", "text"),
                ("state_type", "text"),
            ],
            pk: &["keyspace_name"],
            ck: &["aggregate_name", "argument_types"],
            params: false,
        },
    ]
}

fn auth_tables() -> Vec<Spec<'static>> {
    vec![
        Spec {
            name: "roles",
            comment: "role definitions",
            columns: &[
                ("role", "text"),
                ("can_login", "boolean"),
                ("is_superuser", "boolean"),
                ("member_of", "set<text>"),
                ("salted_hash", "text"),
            ],
            pk: &["role"],
            ck: &[],
            params: false,
        },
        Spec {
            name: "role_members",
            comment: "role memberships lookup table",
            columns: &[("role", "text"), ("member", "text")],
            pk: &["role"],
            ck: &["member"],
            params: false,
        },
        Spec {
            name: "role_permissions",
            comment: "permissions granted to db roles",
            columns: &[
                ("role", "text"),
                ("resource", "text"),
                ("permissions", "set<text>"),
            ],
            pk: &["role"],
            ck: &["resource"],
            params: false,
        },
        Spec {
            name: "resource_role_permissons_index",
            comment: "index of db roles with permissions granted on a resource",
            columns: &[("resource", "text"), ("role", "text")],
            pk: &["resource"],
            ck: &["role"],
            params: false,
        },
        Spec {
            name: "network_permissions",
            comment: "user network permissions",
            columns: &[("role", "text"), ("dcs", "frozen<set<text>>")],
            pk: &["role"],
            ck: &[],
            params: false,
        },
    ]
}

fn distributed_tables() -> Vec<Spec<'static>> {
    vec![
        Spec {
            name: "repair_history",
            comment: "Repair history",
            columns: &[
                ("keyspace_name", "text"),
                ("columnfamily_name", "text"),
                ("id", "timeuuid"),
                ("parent_id", "timeuuid"),
                ("range_begin", "text"),
                ("range_end", "text"),
                ("coordinator", "inet"),
                ("coordinator_port", "int"),
                ("participants", "set<inet>"),
                ("participants_v2", "set<text>"),
                ("exception_message", "text"),
                ("exception_stacktrace", "text"),
                ("status", "text"),
                ("started_at", "timestamp"),
                ("finished_at", "timestamp"),
            ],
            pk: &["keyspace_name", "columnfamily_name"],
            ck: &["id"],
            params: false,
        },
        Spec {
            name: "parent_repair_history",
            comment: "Repair history",
            columns: &[
                ("parent_id", "timeuuid"),
                ("keyspace_name", "text"),
                ("columnfamily_names", "set<text>"),
                ("started_at", "timestamp"),
                ("finished_at", "timestamp"),
                ("exception_message", "text"),
                ("exception_stacktrace", "text"),
                ("requested_ranges", "set<text>"),
                ("successful_ranges", "set<text>"),
                ("options", "map<text, text>"),
            ],
            pk: &["parent_id"],
            ck: &[],
            params: false,
        },
        Spec {
            name: "view_build_status",
            comment: "Materialized View build status",
            columns: &[
                ("keyspace_name", "text"),
                ("view_name", "text"),
                ("host_id", "uuid"),
                ("status", "text"),
            ],
            pk: &["keyspace_name", "view_name"],
            ck: &["host_id"],
            params: false,
        },
    ]
}

fn trace_tables() -> Vec<Spec<'static>> {
    vec![
        Spec {
            name: "sessions",
            comment: "tracing sessions",
            columns: &[
                ("session_id", "uuid"),
                ("client", "inet"),
                ("command", "text"),
                ("coordinator", "inet"),
                ("coordinator_port", "int"),
                ("duration", "int"),
                ("parameters", "map<text, text>"),
                ("request", "text"),
                ("started_at", "timestamp"),
            ],
            pk: &["session_id"],
            ck: &[],
            params: false,
        },
        Spec {
            name: "events",
            comment: "tracing events",
            columns: &[
                ("session_id", "uuid"),
                ("event_id", "timeuuid"),
                ("activity", "text"),
                ("source", "inet"),
                ("source_elapsed", "int"),
                ("source_port", "int"),
                ("thread", "text"),
            ],
            pk: &["session_id"],
            ck: &["event_id"],
            params: false,
        },
    ]
}

fn virtual_schema_tables() -> Vec<Spec<'static>> {
    vec![
        Spec {
            name: "keyspaces",
            comment: "virtual keyspace definitions",
            columns: &[("keyspace_name", "text")],
            pk: &["keyspace_name"],
            ck: &[],
            params: false,
        },
        Spec {
            name: "tables",
            comment: "virtual table definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("table_name", "text"),
                ("comment", "text"),
            ],
            pk: &["keyspace_name"],
            ck: &["table_name"],
            params: false,
        },
        Spec {
            name: "columns",
            comment: "virtual column definitions",
            columns: &[
                ("keyspace_name", "text"),
                ("table_name", "text"),
                ("column_name", "text"),
                ("clustering_order", "text"),
                ("column_name_bytes", "blob"),
                ("kind", "text"),
                ("position", "int"),
                ("type", "text"),
            ],
            pk: &["keyspace_name"],
            ck: &["table_name", "column_name"],
            params: false,
        },
    ]
}

fn views_tables() -> Vec<Spec<'static>> {
    vec![
        Spec {
            name: "clients",
            comment: "currently connected clients",
            columns: &[
                ("address", "inet"),
                ("port", "int"),
                ("client_options", "frozen<map<text, text>>"),
                ("connection_stage", "text"),
                ("driver_name", "text"),
                ("driver_version", "text"),
                ("hostname", "text"),
                ("protocol_version", "int"),
                ("request_count", "bigint"),
                ("ssl_cipher_suite", "text"),
                ("ssl_enabled", "boolean"),
                ("ssl_protocol", "text"),
                ("username", "text"),
            ],
            pk: &["address"],
            ck: &["port"],
            params: false,
        },
        Spec {
            name: "settings",
            comment: "current settings",
            columns: &[("name", "text"), ("value", "text")],
            pk: &["name"],
            ck: &[],
            params: false,
        },
    ]
}
