//! The storage engine contract: an ordered key-value store whose writes *merge*.
//!
//! Every CQL write reaches an engine as a merge operand, never as a plain put: the engine
//! combines it with what is stored using the reconciliation function it was opened with
//! (Cassandra's last-write-wins rules, `storage::reconcile`), so a write that arrives late
//! with an older timestamp — `USING TIMESTAMP`, a hint, a repair stream — can never
//! overwrite newer data, whatever order the engine sees writes in (design §3). CQL
//! tombstones are merge operands too; a physical delete exists only for purging data that
//! compaction has proven dead.
//!
//! The trait is deliberately small — batch write, point get, ordered scan, stats — so the
//! partition logic above it (key layout, rows, tombstones, paging) is written once and runs
//! unchanged on RocksDB in production and on [`super::memory::MemoryEngine`] in tests. One
//! conformance suite ([`super::conformance`]) holds every engine to the same behaviour.

use std::ops::Bound;

use bytes::Bytes;
use thiserror::Error;

/// Combines a stored value with merge operands, oldest operand first. Returns the value to
/// store. Must be associative — `f(f(x, [a]), [b]) == f(x, [a, b])` — because engines may
/// merge operands in several steps (RocksDB partial merges, compactions).
pub type MergeFn =
    fn(key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Result<Vec<u8>, MergeRefused>;

/// A merge function's refusal of a stored value or operand it cannot decode: corruption,
/// or a malformed write caught before it is applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct MergeRefused(pub String);

/// Why a storage operation failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum StorageError {
    /// The engine's files or I/O failed; the write was not applied.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// Stored bytes could not be merged or decoded: a bug or on-disk corruption.
    #[error("corrupt stored value under key {key}: {message}")]
    Corrupt { key: String, message: String },
}

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Merge `value` into whatever `key` holds.
    Merge { key: Bytes, value: Bytes },
    /// Physically remove `key` (purging only; CQL deletes are merges of tombstones).
    Purge { key: Bytes },
    /// Physically remove every key in `[start, end)` (TRUNCATE, dropped tables): one
    /// operation however many keys, instead of a scan and a removal per key.
    PurgeRange { start: Bytes, end: Bytes },
}

/// Operations applied atomically: after a crash either all of them are visible or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds a merge of `value` into `key`.
    pub fn merge(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> &mut WriteBatch {
        self.ops.push(WriteOp::Merge {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a physical removal of `key`.
    pub fn purge(&mut self, key: impl Into<Bytes>) -> &mut WriteBatch {
        self.ops.push(WriteOp::Purge { key: key.into() });
        self
    }

    /// Adds a physical removal of every key in `[start, end)`.
    pub fn purge_range(
        &mut self,
        start: impl Into<Bytes>,
        end: impl Into<Bytes>,
    ) -> &mut WriteBatch {
        self.ops.push(WriteOp::PurgeRange {
            start: start.into(),
            end: end.into(),
        });
        self
    }

    /// The operations in the order they were added.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes of keys and values, for accounting.
    pub fn size(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                WriteOp::Merge { key, value } => key.len() + value.len(),
                WriteOp::Purge { key } => key.len(),
                WriteOp::PurgeRange { start, end } => start.len() + end.len(),
            })
            .sum()
    }
}

/// A key range for scans, in engine byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Bound<Bytes>,
    pub end: Bound<Bytes>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> KeyRange {
        let start = Bound::Included(Bytes::copy_from_slice(prefix));
        let end = match prefix_successor(prefix) {
            Some(next) => Bound::Excluded(Bytes::from(next)),
            None => Bound::Unbounded,
        };
        KeyRange { start, end }
    }

    /// `[start, end)`.
    pub fn half_open(start: &[u8], end: &[u8]) -> KeyRange {
        KeyRange {
            start: Bound::Included(Bytes::copy_from_slice(start)),
            end: Bound::Excluded(Bytes::copy_from_slice(end)),
        }
    }

    /// Whether `key` lies inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(s) => key >= &s[..],
            Bound::Excluded(s) => key > &s[..],
            Bound::Unbounded => true,
        };
        let before_end = match &self.end {
            Bound::Included(e) => key <= &e[..],
            Bound::Excluded(e) => key < &e[..],
            Bound::Unbounded => true,
        };
        after_start && before_end
    }
}

/// The smallest byte string greater than every string that starts with `prefix`, or None
/// when there is none (the prefix is empty or all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < 0xFF {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// Scan direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// Counters an engine keeps about itself (tests assert durability through them), and the
/// state of its background work (zero for an engine without any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Write batches applied.
    pub batches: u64,
    /// Times the write-ahead log was synced to stable storage.
    pub wal_syncs: u64,
    /// Point reads and scans started.
    pub reads: u64,
    /// Bytes compaction estimates it must still rewrite to bring every level within its
    /// target size (RocksDB's `estimate-pending-compaction-bytes`): the debt writes leave.
    pub pending_compaction_bytes: u64,
    /// Compactions running now.
    pub running_compactions: u64,
    /// Memtable flushes running now.
    pub running_flushes: u64,
    /// Bytes of the live sorted files on disk.
    pub live_sst_bytes: u64,
    /// Bytes of every memtable, active and immutable.
    pub memtable_bytes: u64,
    /// Sorted files per level, 0 to 6.
    pub sst_files: [u64; 7],
    /// Whether writes are stopped (too many level-0 files or too much compaction debt).
    pub writes_stopped: bool,
    /// The rate writes are slowed to while compaction catches up, bytes/s (0: not slowed).
    pub delayed_write_rate: u64,
}

/// A key and its merged value, as a scan yields them.
pub type Entry = (Bytes, Bytes);

/// An ordered, merging key-value store. See the module essay.
pub trait Engine: Send + Sync + 'static {
    /// Applies `batch` atomically. Returns once the batch is as durable as the engine's sync
    /// policy promises (with `batch` durability: synced to stable storage).
    fn write(&self, batch: WriteBatch) -> Result<(), StorageError>;

    /// The merged value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError>;

    /// Entries in `range` in key order (or reverse), each value fully merged. At most
    /// `limit` entries: scans are bounded by their callers, never by memory.
    fn scan(
        &self,
        range: &KeyRange,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError>;

    /// Counters for tests and metrics.
    fn stats(&self) -> EngineStats;

    /// Bytes the store holds (on disk and in memory tables), as `ringcache status` and
    /// gossip report a node's load; an estimate, cheap to ask.
    fn size_bytes(&self) -> u64 {
        0
    }

    /// Writes the memory tables out to disk and waits until they are (Cassandra's
    /// `nodetool flush`); nothing for an engine without them.
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
