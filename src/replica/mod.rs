//! The local replica: this node's share of the data, behind the calls a coordinator makes.
//!
//! Every statement reaches storage through the coordinator, which works out the replicas of
//! each partition from the ring and calls them (design §5). On one node every partition's
//! only replica is this one, called directly — no serialization, no extra task — so adding
//! nodes later adds remote replicas beside it rather than a second code path. The replica
//! speaks in the storage layer's units: it applies [`PartitionUpdate`]s atomically and
//! answers reads with fragments (cells with their timestamps, tombstones included), which
//! the coordinator resolves into rows. The cache sits here, in front of the engine
//! ([`crate::cache`]), because every write to a partition passes through its replicas: a
//! write bumps its partitions' versions after the engine applied it and before it returns,
//! and a read takes its partition's stamp before it looks at the cache or the engine.
//!
//! Engine calls are synchronous and made on the calling task: RocksDB reads that hit the
//! memtable or block cache take microseconds, less than a hop to a blocking pool would.
//!
//! The purge pass ([`LocalReplica::purge_table`]) removes what no read can see any more
//! (`storage::purge`). Its removals are physical, and a physical removal hides every older
//! version of a key, so a write landing between the pass's read of a partition and its
//! removals would be removed too. Writes therefore hold their partitions' stripes of
//! [`PartitionLocks`] shared, and the pass holds one partition's stripe exclusively while it
//! reads and removes.
//!
//! Besides the tables, the replica keeps node-local records under reserved key spaces: the
//! batchlog (`batchlog.rs`), each partition's Paxos state (`paxos.rs`), the hints it holds
//! for other replicas (`hints.rs`) and when it last truncated each table (`truncations.rs`).
//!
//! Tests inject faults into the reads that reach storage (`faults.rs`, `[faults]`).

mod batchlog;
mod faults;
mod hints;
mod merkle;
mod paxos;
#[cfg(test)]
mod tests;
mod truncations;

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use uuid::Uuid;

pub use batchlog::{LoggedBatch, BATCHLOG};
pub use hints::{Hint, HintLedger, HINTS};
pub use merkle::{repair_limits, whole_partition};
pub use paxos::{Ballot, PaxosState, Promise, Proposal, PAXOS};
pub use truncations::{REPAIRS, TRUNCATIONS};

use crate::cache::{Caching, ReplicaCache, Served, SliceKey};
use crate::config::{Config, DurabilityMode, EngineKind};
use crate::error::{Error, Result};
use crate::storage::engine::{prefix_successor, Engine, EngineStats, StorageError, WriteBatch};
use crate::storage::memory::MemoryEngine;
use crate::storage::partition::{
    self, PartitionFragment, PartitionId, PartitionStart, PartitionUpdate, ReadError, ReadLimits,
    ReadStats, Slice, TableLayout,
};
use crate::storage::purge::{self, Horizon};
use crate::storage::rocks::{Durability, RocksEngine};
use faults::ReadFaults;

/// Why the replica's store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot read the stored hints: {0}")]
    Hints(String),
    #[error("cannot open the RocksDB store in {path}: {source}")]
    Store {
        path: std::path::PathBuf,
        source: StorageError,
    },
}

/// This node's replica of every table.
pub struct LocalReplica {
    engine: Arc<dyn Engine>,
    tombstone_warn: usize,
    tombstone_failure: usize,
    /// Writes wait for a WAL sync (`batch` durability on a persistent engine).
    synced_writes: bool,
    /// Partition reads kept in front of the engine.
    cache: ReplicaCache,
    /// Faults for tests that every partition read reaching the engine passes first.
    faults: ReadFaults,
    /// Partition reads sent to the engine (cache misses and uncached reads), counted as
    /// they start, so a read a fault holds is counted while it waits.
    partition_reads: AtomicU64,
    /// Keeps writes out of a partition while the purge pass works on it.
    locks: PartitionLocks,
    /// Purge passes finished, and keys they removed.
    purge_passes: AtomicU64,
    purged_keys: AtomicU64,
    /// Hints pending per target (the store's own counts).
    hints: HintLedger,
    /// One Paxos step of a partition at a time (`paxos.rs`).
    paxos_locks: paxos::PaxosLocks,
    /// When each table was last truncated here, and last repaired everywhere
    /// (`truncations.rs`).
    truncations: truncations::Truncations,
    repairs: truncations::Truncations,
}

/// What one purge pass over a table did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeStats {
    /// Partitions examined.
    pub partitions: u64,
    /// Keys removed.
    pub keys: u64,
}

/// Striped read-write locks over partitions: writes share them, a purge takes one alone.
/// Stripes, not a lock per partition, so the set is fixed in size; partitions sharing a
/// stripe only wait for each other's purge.
pub struct PartitionLocks {
    stripes: Box<[tokio::sync::RwLock<()>]>,
}

impl PartitionLocks {
    const STRIPES: usize = 1024;

    fn new() -> PartitionLocks {
        PartitionLocks {
            stripes: (0..Self::STRIPES)
                .map(|_| tokio::sync::RwLock::new(()))
                .collect(),
        }
    }

    fn stripe(&self, table: &Uuid, partition: &PartitionId) -> usize {
        (partition.spread(table) >> 32) as usize % Self::STRIPES
    }

    /// Shared holds on the stripes of every partition `updates` writes, taken in stripe
    /// order so two writers never wait on each other in a cycle.
    async fn for_write(
        &self,
        updates: &[PartitionUpdate],
    ) -> Vec<tokio::sync::RwLockReadGuard<'_, ()>> {
        let mut stripes: Vec<usize> = updates
            .iter()
            .map(|u| self.stripe(&u.table, &u.partition))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.stripes[stripe].read().await);
        }
        guards
    }

    /// The exclusive hold a purge of `partition` takes; blocks, so call it off the runtime.
    fn for_purge(
        &self,
        table: &Uuid,
        partition: &PartitionId,
    ) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.stripes[self.stripe(table, partition)].blocking_write()
    }
}

impl LocalReplica {
    /// Opens the engine the configuration names (RocksDB in `<data_dir>/data` by default).
    pub fn open(config: &Config) -> std::result::Result<LocalReplica, OpenError> {
        let storage = &config.storage;
        let engine: Arc<dyn Engine> = match storage.engine {
            EngineKind::Memory => Arc::new(MemoryEngine::new(crate::storage::cql_merge)),
            EngineKind::Rocksdb => {
                let durability = match storage.durability {
                    DurabilityMode::Batch => Durability::Batch,
                    DurabilityMode::Periodic => Durability::Periodic(
                        std::time::Duration::from_millis(storage.sync_period_ms),
                    ),
                };
                let path = config.data_dir.join("data");
                let tuning = crate::storage::rocks::Tuning {
                    bloom_bits_per_key: storage.bloom_filter_bits_per_key,
                    block_cache_bytes: storage.block_cache_bytes,
                };
                let engine =
                    RocksEngine::open_tuned(&path, crate::storage::cql_merge, durability, tuning)
                        .map_err(|source| OpenError::Store { path, source })?;
                Arc::new(engine)
            }
        };
        let mut replica = LocalReplica::with_engine(
            engine,
            storage.tombstone_warn_threshold,
            storage.tombstone_failure_threshold,
            ReplicaCache::new(&config.cache, &config.faults),
        );
        replica.synced_writes =
            storage.engine == EngineKind::Rocksdb && storage.durability == DurabilityMode::Batch;
        replica.faults = ReadFaults::new(&config.faults);
        replica
            .load_hint_ledger()
            .map_err(|e| OpenError::Hints(e.to_string()))?;
        replica
            .load_truncations()
            .map_err(|e| OpenError::Hints(e.to_string()))?;
        Ok(replica)
    }

    /// A replica on `engine` with the given tombstone thresholds and cache.
    pub fn with_engine(
        engine: Arc<dyn Engine>,
        warn: usize,
        failure: usize,
        cache: ReplicaCache,
    ) -> LocalReplica {
        LocalReplica {
            engine,
            tombstone_warn: warn,
            tombstone_failure: failure,
            synced_writes: false,
            cache,
            faults: ReadFaults::default(),
            partition_reads: AtomicU64::new(0),
            locks: PartitionLocks::new(),
            purge_passes: AtomicU64::new(0),
            purged_keys: AtomicU64::new(0),
            hints: HintLedger::default(),
            paxos_locks: paxos::PaxosLocks::new(),
            truncations: truncations::Truncations::default(),
            repairs: truncations::Truncations::default(),
        }
    }

    /// Applies `updates` atomically; returns once they are as durable as configured and
    /// their partitions' cache versions are bumped. A write that waits for a WAL sync runs
    /// on the blocking pool, so the sync never stalls the async worker serving other
    /// connections; others complete inline (a memtable insert and a buffered log append).
    pub async fn write(&self, updates: Vec<PartitionUpdate>) -> Result<()> {
        let batch = partition::write_batch(&updates)
            .map_err(|e| Error::invalid(format!("Invalid key: {e}")))?;
        let _held = self.locks.for_write(&updates).await;
        let applied = self.engine_write(batch).await;
        // Bumped even when the engine reports a failure: whatever it may have applied must
        // not hide behind an older cache entry.
        self.cache.written(&updates);
        applied
    }

    /// Applies an engine batch as durably as configured (on the blocking pool when it
    /// waits for a WAL sync).
    async fn engine_write(&self, batch: WriteBatch) -> Result<()> {
        let applied = if self.synced_writes {
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.write(batch))
                .await
                .map_err(|e| Error::Server(format!("storage write task failed: {e}")))?
        } else {
            self.engine.write(batch)
        };
        applied.map_err(storage_error)
    }

    /// The read limits for `live_rows` rows at `now_secs`, with this replica's tombstone
    /// failure threshold.
    pub fn limits(&self, live_rows: usize, now_secs: u32, read_static: bool) -> ReadLimits {
        ReadLimits {
            live_rows,
            now_secs,
            tombstone_failure: self.tombstone_failure,
            read_static,
        }
    }

    /// The cache policy of a table with `options` (see [`Caching::of`]).
    pub fn caching(&self, options: &crate::schema::TableOptions) -> Caching {
        self.cache.caching(options)
    }

    /// Reads one partition's slice: fragments for the coordinator to resolve, from the
    /// cache when `caching` admits the read, else from the engine.
    pub async fn read(
        &self,
        layout: &TableLayout,
        caching: Caching,
        partition: &PartitionId,
        slice: &Slice,
        after: Option<&[u8]>,
        limits: &ReadLimits,
    ) -> std::result::Result<Served, ReadError> {
        // Taken before anything is read: see the cache's essay.
        let stamp = self.cache.stamp(&layout.id, partition);
        let key = SliceKey::new(layout.id, partition, slice, after, limits);
        let fetch = || self.read_storage(layout, partition, slice, after, limits);
        let (served, _) = self
            .cache
            .read(key, stamp, caching, limits, after, fetch)
            .await?;
        let stats = served.stats();
        if stats.tombstones > self.tombstone_warn {
            tracing::warn!(
                table = %layout.id,
                tombstones = stats.tombstones,
                live_rows = stats.live_rows,
                "read passed more tombstones than tombstone_warn_threshold"
            );
        }
        Ok(served)
    }

    /// Reads one partition's slice from the engine now, bypassing the cache: for a write
    /// that must see what is stored before it writes (list operations by index or value).
    pub fn read_stored(
        &self,
        layout: &TableLayout,
        partition: &PartitionId,
        slice: &Slice,
        limits: &ReadLimits,
    ) -> std::result::Result<(PartitionFragment, ReadStats), ReadError> {
        partition::read_partition(&*self.engine, layout, partition, slice, None, limits)
    }

    async fn read_storage(
        &self,
        layout: &TableLayout,
        partition: &PartitionId,
        slice: &Slice,
        after: Option<&[u8]>,
        limits: &ReadLimits,
    ) -> std::result::Result<(PartitionFragment, ReadStats), ReadError> {
        self.partition_reads.fetch_add(1, Ordering::Relaxed);
        self.faults.before_read().await;
        partition::read_partition(&*self.engine, layout, partition, slice, after, limits)
    }

    /// The next partition of `table` from `start` with a token within `end`.
    pub fn next_partition(
        &self,
        table: Uuid,
        start: &PartitionStart,
        end: Bound<i64>,
    ) -> std::result::Result<Option<PartitionId>, ReadError> {
        partition::next_partition(&*self.engine, table, start, end)
    }

    /// Removes every row of `table` physically (TRUNCATE): its data is gone, not shadowed.
    /// Records the time, in the same batch, so hints stored before it are not replayed.
    pub fn truncate(&self, table: Uuid) -> Result<()> {
        let start = table.as_bytes().to_vec();
        // A table id of all 0xFF bytes has no successor; nothing sorts after 17 such bytes.
        let end = prefix_successor(&start).unwrap_or_else(|| vec![0xFF; 17]);
        let at = crate::clock::now_micros();
        let mut batch = WriteBatch::new();
        batch.purge_range(start, end);
        truncations::record(&mut batch, table, at);
        let purged = self.engine.write(batch).map_err(storage_error);
        self.note_truncation(table, at);
        self.cache.truncated(table);
        purged
    }

    /// Removes a dropped table's data and entries, and forgets its cache counters.
    pub fn drop_table(&self, table: Uuid) -> Result<()> {
        let purged = self.truncate(table);
        self.cache.dropped(table);
        purged
    }

    /// The engine's counters.
    pub fn stats(&self) -> EngineStats {
        self.engine.stats()
    }

    /// Bytes the engine holds (this node's load).
    pub fn size_bytes(&self) -> u64 {
        self.engine.size_bytes()
    }

    /// Writes the engine's memory tables to disk (blocks until done).
    pub fn flush(&self) -> Result<()> {
        self.engine.flush().map_err(storage_error)
    }

    /// Removes from every partition of the table `layout` describes what no read can see
    /// any more at `now_secs`, keeping tombstones younger than `gc_grace_seconds`. Blocks:
    /// run it on a blocking thread. Each partition's writes wait while it is purged.
    pub fn purge_table(
        &self,
        layout: &TableLayout,
        gc_grace_seconds: u32,
        now_secs: u32,
    ) -> Result<PurgeStats> {
        let horizon = Horizon {
            now_secs,
            gc_grace_seconds,
        };
        let mut stats = PurgeStats::default();
        let mut start = PartitionStart::Token(Bound::Unbounded);
        while let Some(next) = self
            .next_partition(layout.id, &start, Bound::Unbounded)
            .map_err(|e| Error::Server(format!("purge: {e}")))?
        {
            stats.partitions += 1;
            stats.keys += self.purge_partition(layout, &next, horizon)? as u64;
            start = PartitionStart::After(next);
        }
        self.purge_passes.fetch_add(1, Ordering::Relaxed);
        self.purged_keys.fetch_add(stats.keys, Ordering::Relaxed);
        Ok(stats)
    }

    fn purge_partition(
        &self,
        layout: &TableLayout,
        partition: &PartitionId,
        horizon: Horizon,
    ) -> Result<usize> {
        let _held = self.locks.for_purge(&layout.id, partition);
        let found = purge::purge_partition(&*self.engine, layout, partition, horizon)
            .map_err(|e| Error::Server(format!("purge: {e}")))?;
        let removed = found.removed();
        // Data first: a crash in between has then removed only garbage.
        for batch in [found.data, found.deletions] {
            if !batch.is_empty() {
                self.engine.write(batch).map_err(storage_error)?;
            }
        }
        Ok(removed)
    }

    /// Purge passes finished and keys they removed, since start.
    pub fn purges(&self) -> (u64, u64) {
        (
            self.purge_passes.load(Ordering::Relaxed),
            self.purged_keys.load(Ordering::Relaxed),
        )
    }

    /// Partition reads sent to the engine since start (a read held by a fault included).
    pub fn partition_reads(&self) -> u64 {
        self.partition_reads.load(Ordering::Relaxed)
    }

    /// The cache in front of the engine.
    pub fn cache(&self) -> &ReplicaCache {
        &self.cache
    }
}

fn storage_error(e: StorageError) -> Error {
    Error::Server(format!("storage failure: {e}"))
}
