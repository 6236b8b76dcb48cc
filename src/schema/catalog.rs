//! The schema model: keyspaces, tables, columns and user types, and lookups over them.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::options::TableOptions;
use super::system;
use crate::cql::CqlType;

/// Which family a keyspace belongs to; decides where it is described, whether DDL may
/// touch it and whether it is persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum KeyspaceKind {
    /// Created by users; persisted and part of the schema version.
    #[default]
    User,
    /// `system`, `system_schema`: built in code, never modifiable.
    LocalSystem,
    /// `system_auth`, `system_distributed`, `system_traces`: built in code, only their
    /// replication may be altered.
    ReplicatedSystem,
    /// `system_views`, `system_virtual_schema`: described in `system_virtual_schema`.
    Virtual,
}

/// A keyspace and everything defined in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyspaceDef {
    /// Keyspace name (case preserved; quoted on output when needed).
    pub name: String,
    /// Replication map; always holds `class` with the full strategy class name.
    pub replication: BTreeMap<String, String>,
    /// `durable_writes` (stored and echoed; the engine always writes durably).
    pub durable_writes: bool,
    /// Tables by name.
    pub tables: BTreeMap<String, TableDef>,
    /// User-defined types by name.
    pub types: BTreeMap<String, UserTypeDef>,
    /// ScyllaDB's `tablets` option, when given (stored and echoed; no effect here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablets: Option<super::scylla::Tablets>,
    /// Which family the keyspace belongs to (not persisted: only user keyspaces are).
    #[serde(skip)]
    pub kind: KeyspaceKind,
}

impl KeyspaceDef {
    /// True for every keyspace that is not a user keyspace.
    pub fn is_system(&self) -> bool {
        self.kind != KeyspaceKind::User
    }

    /// True for virtual keyspaces.
    pub fn is_virtual(&self) -> bool {
        self.kind == KeyspaceKind::Virtual
    }
}

/// The role a column plays in its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ColumnKind {
    /// Part of the partition key.
    PartitionKey,
    /// A clustering column.
    Clustering,
    /// An ordinary column.
    Regular,
    /// A static column (one value per partition).
    Static,
}

impl ColumnKind {
    /// The lower-case name stored in `system_schema.columns.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::PartitionKey => "partition_key",
            ColumnKind::Clustering => "clustering",
            ColumnKind::Regular => "regular",
            ColumnKind::Static => "static",
        }
    }

    /// True for partition key and clustering columns.
    pub fn is_primary_key(self) -> bool {
        matches!(self, ColumnKind::PartitionKey | ColumnKind::Clustering)
    }
}

/// Clustering order of a column; `None` for non-clustering columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusteringOrder {
    /// Ascending (the default for clustering columns).
    Asc,
    /// Descending (`WITH CLUSTERING ORDER BY (c DESC)`).
    Desc,
    /// Not a clustering column.
    None,
}

impl ClusteringOrder {
    /// The lower-case name stored in `system_schema.columns.clustering_order`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusteringOrder::Asc => "asc",
            ClusteringOrder::Desc => "desc",
            ClusteringOrder::None => "none",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Column type in canonical form (nested values frozen, UDTs unqualified).
    #[serde(with = "type_string")]
    pub ty: CqlType,
    /// Partition key, clustering, regular or static.
    pub kind: ColumnKind,
    /// Index within the partition key or clustering key; -1 for regular and static.
    pub position: i32,
    /// Clustering order; `None` unless the column is a clustering column.
    pub order: ClusteringOrder,
}

/// A column removed by `ALTER TABLE DROP`; kept so DESCRIBE WITH INTERNALS can replay it
/// and so storage can ignore cells older than the drop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedColumn {
    /// Type the column had.
    #[serde(with = "type_string")]
    pub ty: CqlType,
    /// Regular or static.
    pub kind: ColumnKind,
    /// When it was dropped, microseconds since the epoch.
    pub dropped_at_micros: i64,
}

/// A table definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Keyspace that holds the table.
    pub keyspace: String,
    /// Table name.
    pub name: String,
    /// Table id: random at CREATE (name-based for system tables), so DROP + CREATE
    /// never sees the old table's data.
    pub id: Uuid,
    /// Columns in `SELECT *` order: partition key, clustering, static columns by name,
    /// regular columns by name.
    pub columns: Vec<ColumnDef>,
    /// Table parameters (`WITH ...`).
    pub options: TableOptions,
    /// Columns dropped by ALTER TABLE, by name.
    #[serde(default)]
    pub dropped: BTreeMap<String, DroppedColumn>,
    /// True for tables of virtual keyspaces (not persisted).
    #[serde(skip)]
    pub is_virtual: bool,
}

impl TableDef {
    /// Partition key columns in key order.
    pub fn partition_key(&self) -> Vec<&ColumnDef> {
        self.key_columns(ColumnKind::PartitionKey)
    }

    /// Clustering columns in key order.
    pub fn clustering(&self) -> Vec<&ColumnDef> {
        self.key_columns(ColumnKind::Clustering)
    }

    fn key_columns(&self, kind: ColumnKind) -> Vec<&ColumnDef> {
        let mut cols: Vec<&ColumnDef> = self.columns.iter().filter(|c| c.kind == kind).collect();
        cols.sort_by_key(|c| c.position);
        cols
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Columns in the order `SELECT *` returns them.
    pub fn select_star_columns(&self) -> &[ColumnDef] {
        &self.columns
    }

    /// True when the table has static columns.
    pub fn has_static(&self) -> bool {
        self.columns.iter().any(|c| c.kind == ColumnKind::Static)
    }

    /// True for a counter table (its non-key columns are counters).
    pub fn is_counter(&self) -> bool {
        self.columns
            .iter()
            .any(|c| !c.kind.is_primary_key() && c.ty.is_counter())
    }

    /// `system_schema.tables.flags`: every CQL table is `compound`; counter tables
    /// are also `counter`.
    pub fn flags(&self) -> Vec<&'static str> {
        if self.is_counter() {
            vec!["compound", "counter"]
        } else {
            vec!["compound"]
        }
    }

    /// Restores the `SELECT *` column order after columns were added or renamed.
    pub(crate) fn sort_columns(&mut self) {
        self.columns.sort_by(|a, b| {
            let rank = |c: &ColumnDef| match c.kind {
                ColumnKind::PartitionKey => 0,
                ColumnKind::Clustering => 1,
                ColumnKind::Static => 2,
                ColumnKind::Regular => 3,
            };
            let key = |c: &ColumnDef| match c.kind {
                ColumnKind::PartitionKey | ColumnKind::Clustering => c.position,
                _ => 0,
            };
            (rank(a), key(a), a.name.as_bytes()).cmp(&(rank(b), key(b), b.name.as_bytes()))
        });
    }
}

/// A user-defined type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserTypeDef {
    /// Keyspace that holds the type.
    pub keyspace: String,
    /// Type name.
    pub name: String,
    /// Fields in declaration order, types in canonical form.
    #[serde(with = "field_list")]
    pub fields: Vec<(String, CqlType)>,
}

impl UserTypeDef {
    /// Names of the user types this type's fields refer to.
    pub fn referenced_types(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, ty) in &self.fields {
            collect_udt_names(ty, &mut out);
        }
        out
    }
}

/// Appends the names of every user type mentioned in `ty`, inner ones first.
pub fn collect_udt_names(ty: &CqlType, out: &mut Vec<String>) {
    match ty {
        CqlType::UserType { name, .. } => {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        CqlType::List(e) | CqlType::Set(e) | CqlType::Frozen(e) => collect_udt_names(e, out),
        CqlType::Map(k, v) => {
            collect_udt_names(k, out);
            collect_udt_names(v, out);
        }
        CqlType::Tuple(items) => items.iter().for_each(|t| collect_udt_names(t, out)),
        CqlType::Native(_) | CqlType::Custom(_) => {}
    }
}

/// The whole schema: system keyspaces (built in code) and user keyspaces — and, beside it,
/// the one range movement in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub(crate) keyspaces: BTreeMap<String, KeyspaceDef>,
    /// The node joining or leaving now, as the metadata log decided it: one movement at a
    /// time in the whole cluster. Not schema (no `schema_version` counts it), kept here
    /// because the catalog is what the metadata log's state machine persists with the log
    /// index and snapshots.
    pub(crate) movement: Option<RangeMovement>,
}

/// A node's claim to move token ranges (join or leave), granted by the metadata log to one
/// node at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeMovement {
    pub host_id: Uuid,
    /// `bootstrap` or `decommission`.
    pub kind: String,
    /// When it was granted (µs since the epoch, the proposer's clock).
    pub since_micros: i64,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new()
    }
}

impl Catalog {
    /// A catalog holding only the system keyspaces.
    pub fn new() -> Catalog {
        let keyspaces = system::system_keyspaces()
            .into_iter()
            .map(|ks| (ks.name.clone(), ks))
            .collect();
        Catalog {
            keyspaces,
            movement: None,
        }
    }

    /// The range movement in progress, if a node holds one.
    pub fn movement(&self) -> Option<&RangeMovement> {
        self.movement.as_ref()
    }

    /// Grants `movement` if no other node holds one: true if it changed anything. A node
    /// that holds it already (a restart mid-move) keeps it; Err names the holder.
    pub fn claim_movement(&mut self, movement: RangeMovement) -> Result<bool, RangeMovement> {
        match &self.movement {
            Some(held) if held.host_id != movement.host_id => Err(held.clone()),
            Some(_) => Ok(false),
            None => {
                self.movement = Some(movement);
                Ok(true)
            }
        }
    }

    /// Ends `host_id`'s movement, if it holds one: true if it did.
    pub fn release_movement(&mut self, host_id: Uuid) -> bool {
        let held = self.movement.as_ref().is_some_and(|m| m.host_id == host_id);
        if held {
            self.movement = None;
        }
        held
    }

    /// The keyspace called `name`.
    pub fn keyspace(&self, name: &str) -> Option<&KeyspaceDef> {
        self.keyspaces.get(name)
    }

    /// Every keyspace, by name.
    pub fn keyspaces(&self) -> impl Iterator<Item = &KeyspaceDef> {
        self.keyspaces.values()
    }

    /// User (non-system) keyspaces, by name.
    pub fn user_keyspaces(&self) -> impl Iterator<Item = &KeyspaceDef> {
        self.keyspaces.values().filter(|k| !k.is_system())
    }

    /// The table `keyspace.name` (system tables included).
    pub fn table(&self, keyspace: &str, name: &str) -> Option<&TableDef> {
        self.keyspaces.get(keyspace)?.tables.get(name)
    }

    /// The table with id `id`.
    pub fn table_by_id(&self, id: Uuid) -> Option<&TableDef> {
        self.keyspaces
            .values()
            .flat_map(|k| k.tables.values())
            .find(|t| t.id == id)
    }

    /// The user type `keyspace.name`.
    pub fn user_type(&self, keyspace: &str, name: &str) -> Option<&UserTypeDef> {
        self.keyspaces.get(keyspace)?.types.get(name)
    }

    /// Resolves a `UserType` reference (possibly wrapped in `frozen<>`) used in
    /// `keyspace` to its definition; None for other types or unknown names.
    pub fn resolve_udt(&self, keyspace: &str, ty: &CqlType) -> Option<&UserTypeDef> {
        match ty.unfrozen() {
            CqlType::UserType { keyspace: ks, name } => {
                self.user_type(ks.as_deref().unwrap_or(keyspace), name)
            }
            _ => None,
        }
    }

    /// `ty` with every user type replaced by the tuple of its field types, recursively.
    /// A UDT's serialized form and its ordering are those of that tuple, so storage keys
    /// (which must compare values) encode the resolved type. Unknown user types are left
    /// as they are; the key encoder refuses them.
    pub fn resolve_user_types(&self, keyspace: &str, ty: &CqlType) -> CqlType {
        let rec = |t: &CqlType| Box::new(self.resolve_user_types(keyspace, t));
        match ty {
            CqlType::UserType { keyspace: ks, name } => {
                let ks = ks.as_deref().unwrap_or(keyspace);
                match self.user_type(ks, name) {
                    Some(udt) => CqlType::Tuple(
                        udt.fields
                            .iter()
                            .map(|(_, t)| self.resolve_user_types(ks, t))
                            .collect(),
                    ),
                    None => ty.clone(),
                }
            }
            CqlType::Frozen(inner) => CqlType::Frozen(rec(inner)),
            CqlType::List(e) => CqlType::List(rec(e)),
            CqlType::Set(e) => CqlType::Set(rec(e)),
            CqlType::Map(k, v) => CqlType::Map(rec(k), rec(v)),
            CqlType::Tuple(items) => CqlType::Tuple(
                items
                    .iter()
                    .map(|t| self.resolve_user_types(keyspace, t))
                    .collect(),
            ),
            CqlType::Native(_) | CqlType::Custom(_) => ty.clone(),
        }
    }

    /// The schema version: a name-based (MD5, version 3) UUID of the canonical JSON of
    /// every user keyspace and the replication of the replicated system keyspaces. Equal
    /// content gives an equal version on every node; any change gives a new one.
    pub fn schema_version(&self) -> Uuid {
        let mut hasher = Md5::new();
        for ks in self.keyspaces.values() {
            let bytes = match ks.kind {
                KeyspaceKind::User => serde_json::to_vec(ks),
                KeyspaceKind::ReplicatedSystem => serde_json::to_vec(&(&ks.name, &ks.replication)),
                _ => continue,
            };
            // Serialising plain data into memory cannot fail; an empty slice keeps the
            // function total anyway.
            hasher.update(bytes.unwrap_or_default());
            hasher.update([0u8]);
        }
        name_uuid(hasher.finalize().into())
    }

    /// Mutable access for DDL application.
    pub(crate) fn keyspace_mut(&mut self, name: &str) -> Option<&mut KeyspaceDef> {
        self.keyspaces.get_mut(name)
    }
}

/// Java's `UUID.nameUUIDFromBytes` layout: an MD5 digest with version 3 and the IETF
/// variant stamped in.
pub fn name_uuid(mut digest: [u8; 16]) -> Uuid {
    digest[6] = (digest[6] & 0x0f) | 0x30;
    digest[8] = (digest[8] & 0x3f) | 0x80;
    Uuid::from_bytes(digest)
}

/// `UUID.nameUUIDFromBytes(bytes)`.
pub fn name_uuid_from_bytes(bytes: &[u8]) -> Uuid {
    name_uuid(Md5::digest(bytes).into())
}

/// Serde for a `CqlType` as its Cassandra type string.
mod type_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::cql::CqlType;

    pub fn serialize<S: Serializer>(ty: &CqlType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ty.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CqlType, D::Error> {
        let text = String::deserialize(d)?;
        CqlType::parse(&text)
            .map(|t| t.canonical())
            .map_err(serde::de::Error::custom)
    }
}

/// Serde for UDT fields as `[[name, type string], ...]`.
mod field_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::cql::CqlType;

    pub fn serialize<S: Serializer>(fields: &[(String, CqlType)], s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(&str, String)> = fields
            .iter()
            .map(|(n, t)| (n.as_str(), t.to_string()))
            .collect();
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, CqlType)>, D::Error> {
        let pairs = Vec::<(String, String)>::deserialize(d)?;
        pairs
            .into_iter()
            .map(|(n, t)| {
                CqlType::parse(&t)
                    .map(|ty| (n, ty.canonical()))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}
