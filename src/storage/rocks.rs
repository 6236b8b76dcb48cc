//! The RocksDB engine: the production [`Engine`].
//!
//! Writes are RocksDB merges whose operator is the engine's [`MergeFn`] (Cassandra's
//! reconciliation for CQL data), applied by RocksDB itself on reads and compactions, so no
//! read-modify-write happens on the write path. Because RocksDB merges lazily, a batch's
//! operands are validated with the merge function before the batch is written: a malformed
//! operand fails the whole batch up front instead of poisoning the key for later reads.
//!
//! Durability follows Cassandra's commitlog modes: `Batch` syncs the WAL before a write is
//! acknowledged; `Periodic` acknowledges after the write reaches the WAL in the OS page
//! cache and a background thread syncs it every period.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rocksdb::{
    DBCompressionType, IteratorMode, MergeOperands, Options, ReadOptions, WriteOptions, DB,
};

use super::engine::{
    Direction, Engine, EngineStats, Entry, KeyRange, MergeFn, StorageError, WriteBatch, WriteOp,
};

/// When acknowledged writes reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Each write batch is synced before it is acknowledged.
    Batch,
    /// The WAL is synced every period; a crash may lose up to one period of writes.
    Periodic(Duration),
}

/// An [`Engine`] on a RocksDB database directory.
pub struct RocksEngine {
    db: Arc<DB>,
    merge: MergeFn,
    durability: Durability,
    counters: Arc<Counters>,
    syncer: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    wal_syncs: AtomicU64,
    reads: AtomicU64,
    stop: AtomicBool,
}

/// How RocksDB's tables are read (`[storage]` `bloom_filter_bits_per_key`,
/// `block_cache_bytes`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Bits of whole-key Bloom filter per key in each table file; 0: no filter. A read's
    /// point lookup of its partition's deletion mostly asks for a key no file holds, and
    /// the filter lets RocksDB skip each file's index and data blocks for it.
    pub bloom_bits_per_key: f64,
    /// The uncompressed block cache's capacity; 0: RocksDB's default (32 MiB).
    pub block_cache_bytes: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            bloom_bits_per_key: 10.0,
            block_cache_bytes: 0,
        }
    }
}

impl RocksEngine {
    /// Opens (or creates) the database in `path`, merging with `merge`, with the default
    /// [`Tuning`].
    pub fn open(
        path: &Path,
        merge: MergeFn,
        durability: Durability,
    ) -> Result<RocksEngine, StorageError> {
        RocksEngine::open_tuned(path, merge, durability, Tuning::default())
    }

    /// Opens (or creates) the database in `path`, merging with `merge`, tuned by `tuning`.
    pub fn open_tuned(
        path: &Path,
        merge: MergeFn,
        durability: Durability,
        tuning: Tuning,
    ) -> Result<RocksEngine, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        let mut tables = rocksdb::BlockBasedOptions::default();
        if tuning.bloom_bits_per_key > 0.0 {
            tables.set_bloom_filter(tuning.bloom_bits_per_key, false);
        }
        if tuning.block_cache_bytes > 0 {
            let bytes = usize::try_from(tuning.block_cache_bytes).unwrap_or(usize::MAX);
            tables.set_block_cache(&rocksdb::Cache::new_lru_cache(bytes));
        }
        opts.set_block_based_table_factory(&tables);
        let full = move |key: &[u8],
                         existing: Option<&[u8]>,
                         operands: &MergeOperands|
              -> Option<Vec<u8>> {
            let ops: Vec<&[u8]> = operands.iter().collect();
            match merge(key, existing, &ops) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::error!(error = %e, "merge failed: stored data is corrupt");
                    None
                }
            }
        };
        opts.set_merge_operator("ringcache_cql_lww", full, full);
        let db = Arc::new(DB::open(&opts, path).map_err(io)?);
        let counters = Arc::new(Counters::default());
        let syncer = match durability {
            Durability::Batch => None,
            Durability::Periodic(period) => {
                Some(spawn_syncer(db.clone(), counters.clone(), period))
            }
        };
        Ok(RocksEngine {
            db,
            merge,
            durability,
            counters,
            syncer,
        })
    }

    /// An integer property of the database, 0 if RocksDB does not know it.
    fn property(&self, name: &str) -> u64 {
        self.db.property_int_value(name).ok().flatten().unwrap_or(0)
    }

    fn validate(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        for op in batch.ops() {
            if let WriteOp::Merge { key, value } = op {
                (self.merge)(key, None, &[value]).map_err(|refused| StorageError::Corrupt {
                    key: hex(key),
                    message: refused.0,
                })?;
            }
        }
        Ok(())
    }
}

/// How often the periodic syncer checks whether it should stop, so closing an engine never
/// waits a whole (possibly long) period.
const STOP_CHECK: Duration = Duration::from_millis(20);

fn spawn_syncer(
    db: Arc<DB>,
    counters: Arc<Counters>,
    period: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || loop {
        let mut slept = Duration::ZERO;
        while slept < period {
            if counters.stop.load(Ordering::Relaxed) {
                return;
            }
            let step = STOP_CHECK.min(period - slept);
            std::thread::sleep(step);
            slept += step;
        }
        match db.flush_wal(true) {
            Ok(()) => {
                counters.wal_syncs.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "periodic WAL sync failed"),
        }
    })
}

impl Engine for RocksEngine {
    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.validate(&batch)?;
        let mut rb = rocksdb::WriteBatch::default();
        for op in batch.ops() {
            match op {
                WriteOp::Merge { key, value } => rb.merge(key, value),
                WriteOp::Purge { key } => rb.delete(key),
                WriteOp::PurgeRange { start, end } => rb.delete_range(start, end),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.durability == Durability::Batch);
        self.db.write_opt(rb, &wo).map_err(io)?;
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        if self.durability == Durability::Batch {
            self.counters.wal_syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .db
            .get_pinned(key)
            .map_err(io)?
            .map(|v| Bytes::copy_from_slice(&v)))
    }

    fn scan(
        &self,
        range: &KeyRange,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        use std::ops::Bound;
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut ro = ReadOptions::default();
        // RocksDB bounds are [lower, upper); excluded starts and included ends are applied
        // by filtering the (at most one) boundary key.
        if let Bound::Included(s) | Bound::Excluded(s) = &range.start {
            ro.set_iterate_lower_bound(s.to_vec());
        }
        match &range.end {
            Bound::Excluded(e) => ro.set_iterate_upper_bound(e.to_vec()),
            Bound::Included(e) => {
                let mut after = e.to_vec();
                after.push(0);
                ro.set_iterate_upper_bound(after);
            }
            Bound::Unbounded => {}
        }
        let mode = match direction {
            Direction::Forward => IteratorMode::Start,
            Direction::Reverse => IteratorMode::End,
        };
        let mut out = Vec::new();
        for item in self.db.iterator_opt(mode, ro) {
            let (k, v) = item.map_err(io)?;
            if !range.contains(&k) {
                continue;
            }
            out.push((Bytes::from(k.into_vec()), Bytes::from(v.into_vec())));
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    fn stats(&self) -> EngineStats {
        let property = |name: &str| self.property(name);
        EngineStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            wal_syncs: self.counters.wal_syncs.load(Ordering::Relaxed),
            reads: self.counters.reads.load(Ordering::Relaxed),
            pending_compaction_bytes: property("rocksdb.estimate-pending-compaction-bytes"),
            running_compactions: property("rocksdb.num-running-compactions"),
            running_flushes: property("rocksdb.num-running-flushes"),
            live_sst_bytes: property("rocksdb.live-sst-files-size"),
            memtable_bytes: property("rocksdb.cur-size-all-mem-tables"),
            // A string property (RocksDB has no integer form of it).
            sst_files: std::array::from_fn(|level| {
                self.db
                    .property_value(format!("rocksdb.num-files-at-level{level}").as_str())
                    .ok()
                    .flatten()
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0)
            }),
            writes_stopped: property("rocksdb.is-write-stopped") != 0,
            delayed_write_rate: property("rocksdb.actual-delayed-write-rate"),
        }
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map_err(io)
    }

    fn size_bytes(&self) -> u64 {
        self.property("rocksdb.live-sst-files-size")
            + self.property("rocksdb.cur-size-all-mem-tables")
    }
}

impl Drop for RocksEngine {
    fn drop(&mut self) {
        self.counters.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.syncer.take() {
            let _ = handle.join();
        }
        let _ = self.db.flush_wal(true);
    }
}

fn io(e: rocksdb::Error) -> StorageError {
    StorageError::Io(e.into_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Durability, RocksEngine};
    use crate::storage::conformance::max_merge;
    use crate::storage::engine::{
        Direction, Engine, EngineStats, Entry, KeyRange, StorageError, WriteBatch,
    };

    /// A RocksDB engine in a temporary directory that lives as long as the engine.
    struct TempRocks {
        engine: RocksEngine,
        _dir: tempfile::TempDir,
    }

    impl Engine for TempRocks {
        fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
            self.engine.write(batch)
        }
        fn get(&self, key: &[u8]) -> Result<Option<bytes::Bytes>, StorageError> {
            self.engine.get(key)
        }
        fn scan(
            &self,
            range: &KeyRange,
            direction: Direction,
            limit: usize,
        ) -> Result<Vec<Entry>, StorageError> {
            self.engine.scan(range, direction, limit)
        }
        fn stats(&self) -> EngineStats {
            self.engine.stats()
        }
    }

    fn engine() -> TempRocks {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = RocksEngine::open(dir.path(), max_merge, Durability::Batch).expect("open");
        TempRocks { engine, _dir: dir }
    }

    crate::conformance_tests!(rocksdb, super::engine);

    #[test]
    fn merged_values_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let engine = RocksEngine::open(dir.path(), max_merge, Durability::Batch).expect("open");
            let mut batch = WriteBatch::new();
            batch
                .merge(&b"k"[..], 9u64.to_be_bytes().to_vec())
                .merge(&b"k"[..], 4u64.to_be_bytes().to_vec());
            engine.write(batch).expect("write");
        }
        let engine = RocksEngine::open(dir.path(), max_merge, Durability::Batch).expect("reopen");
        assert_eq!(
            engine.get(b"k").expect("get").as_deref(),
            Some(&9u64.to_be_bytes()[..])
        );
    }

    #[test]
    fn background_work_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let engine = RocksEngine::open(dir.path(), max_merge, Durability::Batch).expect("open");
            write_one(&engine);
            let stats = engine.stats();
            assert!(stats.memtable_bytes > 0, "{stats:?}");
            assert_eq!((stats.sst_files, stats.live_sst_bytes), ([0; 7], 0));
        }
        // Reopening replays the log into a memtable and flushes it to a level-0 file.
        let engine = RocksEngine::open(dir.path(), max_merge, Durability::Batch).expect("reopen");
        let stats = engine.stats();
        assert_eq!(stats.sst_files, [1, 0, 0, 0, 0, 0, 0], "{stats:?}");
        assert!(stats.live_sst_bytes > 0, "{stats:?}");
        assert!(!stats.writes_stopped, "{stats:?}");
    }

    fn write_one(engine: &RocksEngine) {
        let mut batch = WriteBatch::new();
        batch.merge(&b"k"[..], 1u64.to_be_bytes().to_vec());
        engine.write(batch).expect("write");
    }

    #[test]
    fn periodic_durability_does_not_sync_on_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hour = Durability::Periodic(Duration::from_secs(3600));
        let engine = RocksEngine::open(dir.path(), max_merge, hour).expect("open");
        write_one(&engine);
        write_one(&engine);
        assert_eq!(engine.stats().batches, 2);
        assert_eq!(engine.stats().wal_syncs, 0);
    }

    #[test]
    fn periodic_durability_syncs_in_the_background() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = RocksEngine::open(
            dir.path(),
            max_merge,
            Durability::Periodic(Duration::from_millis(10)),
        )
        .expect("open");
        write_one(&engine);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while engine.stats().wal_syncs == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no background sync within 5 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
