//! Persistence of the user schema in `data_dir/schema.json`.
//!
//! File format (JSON, one object):
//! ```text
//! { "format_version": 1,
//!   "keyspaces": [ KeyspaceDef... ],            // user keyspaces only
//!   "system_replication": { "system_auth": {"class": ..., ...}, ... },
//!   "applied_index": 42,                          // the metadata log entry it reflects
//!   "range_movement": { "host_id": ..., "kind": "bootstrap", "since_micros": ... } }
//!                                                 // absent when no node moves ranges
//! ```
//! Column and field types are stored as their Cassandra type strings. A save writes
//! `schema.json.tmp`, fsyncs it, renames it over `schema.json` and fsyncs the directory,
//! so a crash at any instant leaves either the old or the new file; a leftover temp file
//! is ignored (and removed) at open.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, KeyspaceDef, KeyspaceKind, RangeMovement};

/// The only format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

const FILE_NAME: &str = "schema.json";
const TEMP_NAME: &str = "schema.json.tmp";

/// Why the schema could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("schema store I/O error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file exists but is not a schema this build understands.
    #[error("schema file {path} is corrupt: {reason}")]
    Corrupt {
        /// The schema file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The file was written by a newer (or unknown) format version.
    #[error("schema file {path} has format version {found}; this build only reads version {FORMAT_VERSION}. Refusing to start rather than lose schema")]
    UnknownVersion {
        /// The schema file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
    },
}

#[derive(Serialize, Deserialize)]
struct SchemaFile {
    format_version: u32,
    keyspaces: Vec<KeyspaceDef>,
    #[serde(default)]
    system_replication: BTreeMap<String, BTreeMap<String, String>>,
    /// The index of the last metadata log entry this schema reflects (absent in files
    /// written before the log existed).
    #[serde(default)]
    applied_index: Option<u64>,
    /// The range movement in progress (absent when none, and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    range_movement: Option<RangeMovement>,
}

/// Version probe read before the full file, so an unknown version is reported as such
/// even when the rest of the layout changed.
#[derive(Deserialize)]
struct VersionOnly {
    format_version: u32,
}

/// Where the schema is persisted.
#[derive(Debug, Clone)]
pub struct SchemaStore {
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl SchemaStore {
    /// Opens (creating the directory if needed) and loads the schema; a missing file
    /// gives a catalog with only the system keyspaces.
    pub fn open(data_dir: &Path) -> Result<(SchemaStore, Catalog), StoreError> {
        let (store, catalog, _) = SchemaStore::open_at(data_dir)?;
        Ok((store, catalog))
    }

    /// [`SchemaStore::open`], with the index of the metadata log entry the schema reflects.
    pub fn open_at(data_dir: &Path) -> Result<(SchemaStore, Catalog, Option<u64>), StoreError> {
        fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        let store = SchemaStore {
            dir: data_dir.to_path_buf(),
        };
        let temp = store.dir.join(TEMP_NAME);
        if temp.exists() {
            // A temp file is a save that never reached its rename: not the schema.
            fs::remove_file(&temp).map_err(io_err(&temp))?;
        }
        let path = store.path();
        if !path.exists() {
            return Ok((store, Catalog::new(), None));
        }
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let (catalog, applied) = decode_at(&path, &bytes)?;
        Ok((store, catalog, applied))
    }

    /// The schema file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Atomically replaces the stored schema with `catalog`'s user schema.
    pub fn save(&self, catalog: &Catalog) -> Result<(), StoreError> {
        self.save_at(catalog, None)
    }

    /// [`SchemaStore::save`], recording the metadata log entry the schema reflects.
    pub fn save_at(&self, catalog: &Catalog, applied: Option<u64>) -> Result<(), StoreError> {
        let temp = self.dir.join(TEMP_NAME);
        let json = encode(catalog, applied);
        let mut out = File::create(&temp).map_err(io_err(&temp))?;
        out.write_all(&json).map_err(io_err(&temp))?;
        out.sync_all().map_err(io_err(&temp))?;
        drop(out);
        let path = self.path();
        fs::rename(&temp, &path).map_err(io_err(&path))?;
        // The rename is only durable once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir))
    }
}

/// The stored form of `catalog`'s user schema at log entry `applied` (also the metadata
/// log's snapshot of the schema).
pub fn encode(catalog: &Catalog, applied: Option<u64>) -> Vec<u8> {
    let file = SchemaFile {
        format_version: FORMAT_VERSION,
        keyspaces: catalog.user_keyspaces().cloned().collect(),
        system_replication: catalog
            .keyspaces()
            .filter(|k| k.kind == KeyspaceKind::ReplicatedSystem)
            .map(|k| (k.name.clone(), k.replication.clone()))
            .collect(),
        applied_index: applied,
        range_movement: catalog.movement.clone(),
    };
    serde_json::to_vec_pretty(&file).expect("a schema serializes")
}

/// The catalog and log entry [`encode`] wrote; `path` names the source in errors.
pub fn decode_at(path: &Path, bytes: &[u8]) -> Result<(Catalog, Option<u64>), StoreError> {
    let file = parse(path, bytes)?;
    let applied = file.applied_index;
    let mut catalog = Catalog::new();
    load_into(&mut catalog, file).map_err(|reason| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok((catalog, applied))
}

fn parse(path: &Path, bytes: &[u8]) -> Result<SchemaFile, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let version: VersionOnly = serde_json::from_slice(bytes).map_err(corrupt)?;
    if version.format_version != FORMAT_VERSION {
        return Err(StoreError::UnknownVersion {
            path: path.to_path_buf(),
            found: version.format_version,
        });
    }
    serde_json::from_slice(bytes).map_err(corrupt)
}

fn load_into(catalog: &mut Catalog, file: SchemaFile) -> Result<(), String> {
    catalog.movement = file.range_movement;
    for mut ks in file.keyspaces {
        if catalog.keyspaces.contains_key(&ks.name) {
            return Err(format!(
                "user keyspace '{}' clashes with a system keyspace",
                ks.name
            ));
        }
        ks.kind = KeyspaceKind::User;
        for (name, table) in &ks.tables {
            if *name != table.name || table.keyspace != ks.name {
                return Err(format!("table '{name}' is filed under the wrong name"));
            }
        }
        catalog.keyspaces.insert(ks.name.clone(), ks);
    }
    for (name, replication) in file.system_replication {
        if let Some(ks) = catalog.keyspace_mut(&name) {
            if ks.kind == KeyspaceKind::ReplicatedSystem {
                ks.replication = replication;
            }
        }
    }
    Ok(())
}
