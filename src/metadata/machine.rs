//! The state machine: the trait a user of the log implements, and its adapter to openraft.
//!
//! The user's state machine persists its own state together with the index it reflects
//! ([`StateMachine::last_applied`]); the adapter never applies an index at or below it, so a
//! restart that replays the committed tail of the log never applies anything twice. Blank
//! entries (a new leader's first) and membership entries are the log's own: the adapter
//! applies them itself, so the user sees only its commands, with gaps in the indexes.
//!
//! The latest snapshot (the user's whole state, with the log position and membership it
//! covers) is kept in the metadata store. At start, a user state older than that snapshot
//! is restored from it first — the log before the snapshot may be purged — so a state
//! machine that keeps nothing on disk works too: it is rebuilt from the snapshot and log.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::store::MetaDb;
use super::types::{Entry, LogId, MetaTypes, SnapshotMeta, StorageError, StoredMembership};

/// What the log drives: every node applies the same commands in the same order.
///
/// Calls come one at a time, from the log's own task, and should be quick (no network).
pub trait StateMachine: Send + Sync + 'static {
    /// Applies the command at log `index` and returns what the proposer gets back (the
    /// state machine decides success or failure, e.g. "already exists"). `index` is above
    /// [`StateMachine::last_applied`]; the state machine records it with its state.
    fn apply(&self, index: u64, command: &[u8]) -> Vec<u8>;
    /// The whole state, to send to a member that lags behind the purged log.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with `snapshot`, which reflects the log up to `index`.
    fn restore(&self, index: u64, snapshot: &[u8]) -> Result<(), String>;
    /// The index of the last command the persisted state reflects; None when empty.
    fn last_applied(&self) -> Option<u64>;
}

/// A snapshot as the metadata store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// openraft's state machine: the user's, plus the log position and membership applied.
pub struct MachineStore {
    user: Arc<dyn StateMachine>,
    db: MetaDb,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// The index of the last entry applied, for proposers waiting on their own write.
    applied_tx: Arc<watch::Sender<Option<u64>>>,
    snapshots_built: Arc<AtomicU64>,
}

impl MachineStore {
    /// The adapter over `user`, positioned where the user's state is: restored from the
    /// kept snapshot first when the state is older than it.
    pub fn open(
        user: Arc<dyn StateMachine>,
        db: MetaDb,
        applied_tx: Arc<watch::Sender<Option<u64>>>,
    ) -> Result<MachineStore, String> {
        let snapshot: Option<StoredSnapshot> = db.snapshot()?;
        let snapshot_index = snapshot
            .as_ref()
            .and_then(|s| s.meta.last_log_id.map(|id| id.index));
        if let Some(s) = &snapshot {
            if user.last_applied() < snapshot_index {
                let index = snapshot_index.unwrap_or_default();
                tracing::info!(
                    index,
                    "restoring the metadata state machine from its snapshot"
                );
                user.restore(index, &s.data)?;
            }
        }
        let (applied, membership) = position(&db, &user, snapshot.as_ref())?;
        applied_tx.send_replace(applied.map(|id| id.index));
        Ok(MachineStore {
            user,
            db,
            applied,
            membership,
            applied_tx,
            snapshots_built: Arc::default(),
        })
    }

    fn apply_one(&mut self, entry: Entry) -> Bytes {
        let index = entry.log_id.index;
        let reply = match entry.payload {
            EntryPayload::Normal(command) if Some(index) > self.user.last_applied() => {
                Bytes::from(self.user.apply(index, &command))
            }
            EntryPayload::Normal(_) | EntryPayload::Blank => Bytes::new(),
            EntryPayload::Membership(m) => {
                self.membership = StoredMembership::new(Some(entry.log_id), m);
                Bytes::new()
            }
        };
        self.applied = Some(entry.log_id);
        reply
    }
}

/// The log position and membership the user's state reflects: its last applied index,
/// found in the snapshot or the log, and the last membership entry at or before it.
fn position(
    db: &MetaDb,
    user: &Arc<dyn StateMachine>,
    snapshot: Option<&StoredSnapshot>,
) -> Result<(Option<LogId>, StoredMembership), String> {
    let Some(index) = user.last_applied() else {
        return Ok((None, StoredMembership::default()));
    };
    let (floor, mut membership, mut applied) = match snapshot {
        Some(s) => {
            let at = s.meta.last_log_id;
            let same = at.map(|id| id.index) == Some(index);
            (
                at.map_or(0, |id| id.index + 1),
                s.meta.last_membership.clone(),
                if same { at } else { None },
            )
        }
        None => (0, StoredMembership::default(), None),
    };
    for entry in db.entries(floor..=index)? {
        if let EntryPayload::Membership(m) = &entry.payload {
            membership = StoredMembership::new(Some(entry.log_id), m.clone());
        }
        if entry.log_id.index == index {
            applied = Some(entry.log_id);
        }
    }
    match applied {
        Some(_) => Ok((applied, membership)),
        None => Err(format!(
            "the state machine reflects log index {index}, which neither the metadata log nor its snapshot holds"
        )),
    }
}

fn sm_error(e: String) -> StorageError {
    StorageIOError::write_state_machine(AnyError::error(e)).into()
}

impl RaftStateMachine<MetaTypes> for MachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Bytes>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let replies: Vec<Bytes> = entries.into_iter().map(|e| self.apply_one(e)).collect();
        self.applied_tx
            .send_replace(self.applied.map(|id| id.index));
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // Taken here, on the log's task, so no apply runs between the state and its position.
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{}-{n}", self.applied.map_or(0, |id| id.index)),
        };
        SnapshotBuilder {
            db: self.db.clone(),
            snapshot: Some(StoredSnapshot {
                meta,
                data: self.user.snapshot(),
            }),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        // Kept first: should the restore not finish, the next start restores again.
        self.db.put_snapshot(&stored).map_err(sm_error)?;
        let index = meta.last_log_id.map_or(0, |id| id.index);
        self.user.restore(index, &stored.data).map_err(sm_error)?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.applied_tx
            .send_replace(self.applied.map(|id| id.index));
        tracing::info!(index, "metadata state installed from a snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<MetaTypes>>, StorageError> {
        let stored: Option<StoredSnapshot> = self.db.snapshot().map_err(sm_error)?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// A snapshot taken, written to the store when openraft asks for it.
pub struct SnapshotBuilder {
    db: MetaDb,
    snapshot: Option<StoredSnapshot>,
}

impl RaftSnapshotBuilder<MetaTypes> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetaTypes>, StorageError> {
        let stored = self
            .snapshot
            .take()
            .ok_or_else(|| sm_error("snapshot builder used twice".into()))?;
        self.db.put_snapshot(&stored).map_err(sm_error)?;
        tracing::debug!(snapshot = %stored.meta, "metadata snapshot kept");
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}
