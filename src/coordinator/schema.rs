//! The schema a node serves, and the one way it changes: as an entry of the metadata log
//! (design §16).
//!
//! A DDL statement is not applied where it arrives. The coordinator checks it against its
//! current schema (so a mistake is reported at once, even without a majority), then proposes
//! a [`SchemaCommand`] — the statement's text with everything its outcome depends on from
//! outside the statement fixed by the proposer: the session keyspace, a fresh table id, the
//! time of a column drop, the known data centres. Every node applies the committed commands
//! in log order through [`SchemaService`] (the log's state machine), so every node computes
//! the same schema: one id per table, `IF NOT EXISTS` decided once, the same content hash as
//! `schema_version`. The proposer's call returns once the entry is applied on its own node,
//! with the outcome every node computed.
//!
//! Applying a change persists the schema with the entry's index (`schema.json`), then swaps
//! the served snapshot, reclaims dropped tables' data, evicts prepared statements it changes,
//! publishes the new version (gossip advertises it) and tells this node's clients
//! (SCHEMA_CHANGE). Failed and no-op entries change nothing and need no save: applied again
//! after a restart they fail or do nothing again, identically.
//!
//! The log carries one other kind of command, [`MovementCommand`]: the cluster's one range
//! movement at a time (a node joining or leaving), claimed and released through the log so
//! two nodes never move ranges at once (Cassandra refuses a second bootstrap while one runs;
//! here the second waits its turn). It is kept in the catalog beside the schema, persisted
//! and snapshotted with it, and changes no `schema_version`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::prepared::PreparedCache;
use crate::protocol::{Event, SchemaChange};
use crate::replica::LocalReplica;
use crate::schema::{
    ApplyContext, Catalog, DataCenters, RangeMovement, SchemaError, SchemaStore, StoreError,
};

/// The schema a statement runs against: an immutable catalog and its content hash,
/// computed once per change (every `system.local` read reports it).
#[derive(Clone)]
pub struct Schema {
    pub catalog: Arc<Catalog>,
    pub version: Uuid,
}

/// One schema change, as the metadata log carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaCommand {
    /// The DDL statement's text.
    pub statement: String,
    /// The session keyspace it was issued in.
    pub keyspace: Option<String>,
    /// The data centres `replication_factor` expands into and replication may name.
    pub data_centers: Vec<String>,
    /// The id a created table gets.
    pub table_id: Uuid,
    /// "Now" for a column drop without `USING TIMESTAMP` (µs).
    pub now_micros: i64,
}

/// What applying a command gave: the change to report (None: nothing changed), or why not.
pub type Outcome = Result<Option<SchemaChange>, SchemaError>;

/// The first byte of a [`MovementCommand`] in the log. A [`SchemaCommand`] starts with its
/// statement's length (postcard's varint), never 0: an empty statement is never proposed.
const MOVEMENT_COMMAND: u8 = 0;

/// A claim to, or the end of, the cluster's one range movement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MovementCommand {
    Claim(RangeMovement),
    Release { host_id: Uuid },
}

impl MovementCommand {
    /// The command as the log carries it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![MOVEMENT_COMMAND];
        out.extend(postcard::to_stdvec(self).expect("a command serializes"));
        out
    }
}

/// What a movement command gave: done (claimed, held already, or released), or the node
/// that holds the movement; Err when the command was malformed.
pub type MovementOutcome = Result<Result<(), RangeMovement>, String>;

/// Decodes the outcome a movement proposal returned.
pub fn decode_movement_outcome(bytes: &[u8]) -> MovementOutcome {
    postcard::from_bytes(bytes).unwrap_or_else(|e| Err(format!("malformed movement outcome: {e}")))
}

/// The node's schema: served snapshot, persistence, and the log's state machine.
pub struct SchemaService {
    state: RwLock<Schema>,
    store: SchemaStore,
    /// The last log entry the persisted schema reflects.
    applied: Mutex<Option<u64>>,
    replica: Arc<LocalReplica>,
    prepared: PreparedCache,
    events: broadcast::Sender<Event>,
    published: watch::Sender<Uuid>,
}

impl SchemaService {
    /// Loads the persisted schema from `data_dir`.
    pub fn open(
        data_dir: &std::path::Path,
        replica: Arc<LocalReplica>,
        prepared: PreparedCache,
        events: broadcast::Sender<Event>,
        published: watch::Sender<Uuid>,
    ) -> Result<SchemaService, StoreError> {
        let (store, catalog, applied) = SchemaStore::open_at(data_dir)?;
        let version = catalog.schema_version();
        published.send_replace(version);
        Ok(SchemaService {
            state: RwLock::new(Schema {
                catalog: Arc::new(catalog),
                version,
            }),
            store,
            applied: Mutex::new(applied),
            replica,
            prepared,
            events,
            published,
        })
    }

    /// The schema served now.
    pub fn current(&self) -> Schema {
        // A panic while holding the write lock cannot leave a half-applied schema (it is
        // replaced whole), so a poisoned lock is still consistent.
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies one committed command (log entry `index`).
    fn apply_command(&self, index: u64, command: &SchemaCommand) -> Outcome {
        let statement = crate::cql::parse_statement(&command.statement)
            .map_err(|e| SchemaError::Syntax(e.to_string()))?;
        let current = self.current();
        let mut next = Catalog::clone(&current.catalog);
        let data_centers = DataCenters::new(command.data_centers.iter().cloned());
        let context = ApplyContext {
            data_centers: &data_centers,
            table_id: command.table_id,
            now_micros: command.now_micros,
        };
        let Some(change) = next.apply_with(&statement, command.keyspace.as_deref(), &context)?
        else {
            return Ok(None);
        };
        self.persist(&next, index);
        self.install(next, &current.catalog);
        self.prepared.invalidate_for(&change);
        let _ = self.events.send(Event::SchemaChange(change.clone()));
        tracing::info!(?change, index, "schema changed");
        Ok(Some(change))
    }

    /// Applies one committed movement command (log entry `index`).
    fn apply_movement(&self, index: u64, command: &MovementCommand) -> Result<(), RangeMovement> {
        let current = self.current();
        let mut next = Catalog::clone(&current.catalog);
        let changed = match command {
            MovementCommand::Claim(movement) => next.claim_movement(movement.clone())?,
            MovementCommand::Release { host_id } => next.release_movement(*host_id),
        };
        if changed {
            self.persist(&next, index);
            self.install(next, &current.catalog);
            tracing::info!(?command, index, "range movement");
        }
        Ok(())
    }

    /// Persists `next` as the state at log entry `index`. A node that cannot would serve a
    /// state the others do not have: it stops instead (Cassandra's disk failure policy
    /// "stop"); restarted, it applies the entry again from the log.
    fn persist(&self, next: &Catalog, index: u64) {
        if let Err(error) = self.store.save_at(next, Some(index)) {
            tracing::error!(index, %error, "cannot persist a committed metadata change; stopping");
            std::process::abort();
        }
        *self.applied.lock().expect("applied") = Some(index);
    }

    /// Serves `next` in place of `previous`, reclaiming the data of tables it dropped.
    fn install(&self, next: Catalog, previous: &Catalog) {
        let version = next.schema_version();
        let dropped: Vec<Uuid> = table_ids(previous)
            .difference(&table_ids(&next))
            .copied()
            .collect();
        // Catalog and version are swapped as one, so a reader never plans with one catalog
        // and caches the plan under another's version.
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Schema {
            catalog: Arc::new(next),
            version,
        };
        self.published.send_if_modified(|published| {
            let changed = *published != version;
            *published = version;
            changed
        });
        // A dropped table's id is never reused, so its rows are unreachable; reclaim them.
        for id in dropped {
            if let Err(e) = self.replica.drop_table(id) {
                tracing::warn!(table = %id, error = %e, "could not remove a dropped table's data");
            }
        }
    }
}

impl crate::metadata::StateMachine for SchemaService {
    fn apply(&self, index: u64, command: &[u8]) -> Vec<u8> {
        if let Some((&MOVEMENT_COMMAND, movement)) = command.split_first() {
            let outcome: MovementOutcome = postcard::from_bytes::<MovementCommand>(movement)
                .map(|command| self.apply_movement(index, &command))
                .map_err(|e| format!("malformed movement command: {e}"));
            return postcard::to_stdvec(&outcome).expect("an outcome serializes");
        }
        let outcome = match postcard::from_bytes::<SchemaCommand>(command) {
            Ok(command) => self.apply_command(index, &command),
            Err(e) => Err(SchemaError::Invalid(format!(
                "malformed schema command: {e}"
            ))),
        };
        postcard::to_stdvec(&outcome).expect("an outcome serializes")
    }

    fn snapshot(&self) -> Vec<u8> {
        let applied = *self.applied.lock().expect("applied");
        crate::schema::snapshot::encode(&self.current().catalog, applied)
    }

    fn restore(&self, index: u64, snapshot: &[u8]) -> Result<(), String> {
        let path = self.store.path();
        let (catalog, _) =
            crate::schema::snapshot::decode_at(&path, snapshot).map_err(|e| e.to_string())?;
        self.store
            .save_at(&catalog, Some(index))
            .map_err(|e| e.to_string())?;
        *self.applied.lock().expect("applied") = Some(index);
        let previous = self.current().catalog;
        self.install(catalog, &previous);
        self.prepared.invalidate_all();
        tracing::info!(index, "schema restored from a metadata log snapshot");
        Ok(())
    }

    fn last_applied(&self) -> Option<u64> {
        *self.applied.lock().expect("applied")
    }
}

/// Decodes the outcome a proposal returned.
pub fn decode_outcome(bytes: &[u8]) -> Outcome {
    postcard::from_bytes(bytes).unwrap_or_else(|e| {
        Err(SchemaError::Invalid(format!(
            "malformed schema outcome: {e}"
        )))
    })
}

/// Ids of every user table.
fn table_ids(catalog: &Catalog) -> BTreeSet<Uuid> {
    catalog
        .user_keyspaces()
        .flat_map(|k| k.tables.values().map(|t| t.id))
        .collect()
}
