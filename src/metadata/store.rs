//! The durable half of the log: entries, vote, committed position, the latest snapshot and
//! whether this node has joined, in a small RocksDB instance at `<data_dir>/meta`.
//!
//! Every write is synced (`WriteOptions::set_sync`) before it is acknowledged: Raft's safety
//! rests on a vote or an entry never being forgotten once a peer was told about it. The
//! volume is small (metadata changes are rare), so the fsync per write costs nothing that
//! matters. Values are postcard-encoded openraft types; an entry's key is `l` then its index
//! big-endian, so the log is one ordered key range.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageIOError, Vote};
use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::types::{Entry, LogId, MetaError, MetaTypes, StorageError};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"purged";
const SNAPSHOT: &[u8] = b"snapshot";
const JOINED: &[u8] = b"joined";
const LOG_PREFIX: u8 = b'l';

/// The metadata log's RocksDB instance, shared by the log store and the state machine
/// adapter (which keeps the latest snapshot here).
#[derive(Clone)]
pub struct MetaDb {
    db: Arc<DB>,
}

impl MetaDb {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<MetaDb, MetaError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        // Metadata is tiny: keep RocksDB's footprint small.
        options.set_write_buffer_size(1 << 20);
        options.set_max_background_jobs(1);
        let db = DB::open(&options, dir)
            .map_err(|e| MetaError::Storage(format!("cannot open {}: {e}", dir.display())))?;
        Ok(MetaDb { db: Arc::new(db) })
    }

    /// The store's directory under a node's data directory.
    pub fn dir(data_dir: &Path) -> PathBuf {
        data_dir.join("meta")
    }

    /// The value at `key`, decoded.
    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, String> {
        match self.db.get_pinned(key).map_err(|e| e.to_string())? {
            Some(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| format!("undecodable {}: {e}", String::from_utf8_lossy(key))),
            None => Ok(None),
        }
    }

    /// Writes `value` at `key`, synced.
    pub fn put<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), String> {
        let mut batch = WriteBatch::default();
        batch.put(key, encode(value)?);
        self.write(batch)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), String> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db
            .write_opt(batch, &options)
            .map_err(|e| e.to_string())
    }

    /// The latest snapshot kept, as written by [`MetaDb::put_snapshot`].
    pub fn snapshot<T: DeserializeOwned>(&self) -> Result<Option<T>, String> {
        self.get(SNAPSHOT)
    }

    /// Replaces the snapshot kept.
    pub fn put_snapshot<T: Serialize>(&self, snapshot: &T) -> Result<(), String> {
        self.put(SNAPSHOT, snapshot)
    }

    /// Whether this node has been admitted to the group (founded it, or a join succeeded).
    pub fn joined(&self) -> Result<bool, String> {
        Ok(self.get::<bool>(JOINED)?.unwrap_or(false))
    }

    /// Records that this node is a member, so a restart never founds or joins again.
    pub fn set_joined(&self) -> Result<(), String> {
        self.put(JOINED, &true)
    }

    /// The entries whose indexes are in `range`, in order, stopping at the first gap.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>, String> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        let from = log_key(start);
        for item in self
            .db
            .iterator(IteratorMode::From(&from, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| e.to_string())?;
            let Some(index) = log_index(&key) else { break };
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = postcard::from_bytes(&value).map_err(|e| e.to_string())?;
            out.push(entry);
        }
        Ok(out)
    }

    /// The last entry's id, if the log holds any entry.
    fn last_entry_id(&self) -> Result<Option<LogId>, String> {
        let end = log_key(u64::MAX);
        let mut iter = self
            .db
            .iterator(IteratorMode::From(&end, Direction::Reverse));
        match iter.next() {
            Some(item) => {
                let (key, value) = item.map_err(|e| e.to_string())?;
                if log_index(&key).is_none() {
                    return Ok(None);
                }
                let entry: Entry = postcard::from_bytes(&value).map_err(|e| e.to_string())?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    /// The id of the last entry purged from the log.
    pub fn purged(&self) -> Result<Option<LogId>, String> {
        self.get(PURGED)
    }

    fn delete_entries(
        &self,
        from: u64,
        to_inclusive: u64,
        purged: Option<&LogId>,
    ) -> Result<(), String> {
        let mut batch = WriteBatch::default();
        if let Some(purged) = purged {
            batch.put(PURGED, encode(purged)?);
        }
        batch.delete_range(log_key(from), log_key(to_inclusive.saturating_add(1)));
        if to_inclusive == u64::MAX {
            batch.delete(log_key(u64::MAX));
        }
        self.write(batch)
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(value).map_err(|e| e.to_string())
}

fn log_key(index: u64) -> [u8; 9] {
    let mut key = [LOG_PREFIX; 9];
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

fn log_index(key: &[u8]) -> Option<u64> {
    match key {
        [LOG_PREFIX, rest @ ..] if rest.len() == 8 => {
            Some(u64::from_be_bytes(rest.try_into().ok()?))
        }
        _ => None,
    }
}

fn read_error(e: String) -> StorageError {
    StorageIOError::read_logs(AnyError::error(e)).into()
}

fn write_error(e: String) -> StorageError {
    StorageIOError::write_logs(AnyError::error(e)).into()
}

/// openraft's view of the log: a handle on [`MetaDb`].
#[derive(Clone)]
pub struct LogStore {
    db: MetaDb,
}

impl LogStore {
    /// The log kept in `db`.
    pub fn new(db: MetaDb) -> LogStore {
        LogStore { db }
    }
}

impl RaftLogReader<MetaTypes> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.db.entries(range).map_err(read_error)
    }
}

impl RaftLogStorage<MetaTypes> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<MetaTypes>, StorageError> {
        let last_purged_log_id = self.db.purged().map_err(read_error)?;
        let last = self.db.last_entry_id().map_err(read_error)?;
        Ok(LogState {
            last_log_id: last.or(last_purged_log_id),
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<Uuid>) -> Result<(), StorageError> {
        self.db
            .put(VOTE, vote)
            .map_err(|e| StorageIOError::write_vote(AnyError::error(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<Uuid>>, StorageError> {
        self.db
            .get(VOTE)
            .map_err(|e| StorageIOError::read_vote(AnyError::error(e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.db.put(COMMITTED, &committed).map_err(write_error)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.db.get(COMMITTED).map_err(read_error)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<MetaTypes>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put(
                log_key(entry.log_id.index),
                encode(&entry).map_err(write_error)?,
            );
        }
        let written = self.db.write(batch);
        let io = written.clone().map_err(std::io::Error::other);
        callback.log_io_completed(io);
        written.map_err(write_error)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.db
            .delete_entries(log_id.index, u64::MAX, None)
            .map_err(write_error)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.db
            .delete_entries(0, log_id.index, Some(&log_id))
            .map_err(write_error)
    }
}
