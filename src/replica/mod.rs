//! The local replica: this node's share of the data, behind the calls a coordinator makes.
//!
//! Every statement reaches storage through the coordinator, which works out the replicas of
//! each partition from the ring and calls them (DESIGN §3.5). On one node every partition's
//! only replica is this one, called directly — no serialization, no extra task — so adding
//! nodes later adds remote replicas beside it rather than a second code path. The replica
//! speaks in the storage layer's units: it applies [`PartitionUpdate`]s atomically and
//! answers reads with fragments (cells with their timestamps, tombstones included), which
//! the coordinator resolves into rows; the cache (issue 6) will sit here, in front of the
//! engine, because every write to a partition passes through its replicas.
//!
//! Engine calls are synchronous and made on the calling task: RocksDB reads that hit the
//! memtable or block cache take microseconds, less than a hop to a blocking pool would.

use std::ops::Bound;
use std::sync::Arc;

use uuid::Uuid;

use crate::config::{Config, DurabilityMode, EngineKind};
use crate::error::{Error, Result};
use crate::storage::engine::{prefix_successor, Engine, EngineStats, StorageError, WriteBatch};
use crate::storage::memory::MemoryEngine;
use crate::storage::partition::{
    self, PartitionFragment, PartitionId, PartitionStart, PartitionUpdate, ReadError, ReadLimits,
    ReadStats, Slice, TableLayout,
};
use crate::storage::rocks::{Durability, RocksEngine};

/// This node's replica of every table.
pub struct LocalReplica {
    engine: Arc<dyn Engine>,
    tombstone_warn: usize,
    tombstone_failure: usize,
    /// Writes wait for a WAL sync (`batch` durability on a persistent engine).
    synced_writes: bool,
}

impl LocalReplica {
    /// Opens the engine the configuration names (RocksDB in `<data_dir>/data` by default).
    pub fn open(config: &Config) -> std::result::Result<LocalReplica, String> {
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
                let engine = RocksEngine::open(&path, crate::storage::cql_merge, durability)
                    .map_err(|e| {
                        format!("cannot open the RocksDB store in {}: {e}", path.display())
                    })?;
                Arc::new(engine)
            }
        };
        let mut replica = LocalReplica::with_engine(
            engine,
            storage.tombstone_warn_threshold,
            storage.tombstone_failure_threshold,
        );
        replica.synced_writes =
            storage.engine == EngineKind::Rocksdb && storage.durability == DurabilityMode::Batch;
        Ok(replica)
    }

    /// A replica on `engine` with the given tombstone thresholds.
    pub fn with_engine(engine: Arc<dyn Engine>, warn: usize, failure: usize) -> LocalReplica {
        LocalReplica {
            engine,
            tombstone_warn: warn,
            tombstone_failure: failure,
            synced_writes: false,
        }
    }

    /// Applies `updates` atomically; returns once they are as durable as configured. A
    /// write that waits for a WAL sync runs on the blocking pool, so the sync never stalls
    /// the async worker serving other connections; others complete inline (a memtable
    /// insert and a buffered log append).
    pub async fn write(&self, updates: Vec<PartitionUpdate>) -> Result<()> {
        let batch = partition::write_batch(&updates)
            .map_err(|e| Error::invalid(format!("Invalid key: {e}")))?;
        if !self.synced_writes {
            return self.engine.write(batch).map_err(storage_error);
        }
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.write(batch))
            .await
            .map_err(|e| Error::Server(format!("storage write task failed: {e}")))?
            .map_err(storage_error)
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

    /// Reads one partition's slice: fragments for the coordinator to resolve.
    pub fn read(
        &self,
        layout: &TableLayout,
        partition: &PartitionId,
        slice: &Slice,
        after: Option<&[u8]>,
        limits: &ReadLimits,
    ) -> std::result::Result<(PartitionFragment, ReadStats), ReadError> {
        let read =
            partition::read_partition(&*self.engine, layout, partition, slice, after, limits)?;
        if read.1.tombstones > self.tombstone_warn {
            tracing::warn!(
                table = %layout.id,
                tombstones = read.1.tombstones,
                live_rows = read.1.live_rows,
                "read passed more tombstones than tombstone_warn_threshold"
            );
        }
        Ok(read)
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
    pub fn truncate(&self, table: Uuid) -> Result<()> {
        let start = table.as_bytes().to_vec();
        // A table id of all 0xFF bytes has no successor; nothing sorts after 17 such bytes.
        let end = prefix_successor(&start).unwrap_or_else(|| vec![0xFF; 17]);
        let mut batch = WriteBatch::new();
        batch.purge_range(start, end);
        self.engine.write(batch).map_err(storage_error)
    }

    /// The engine's counters.
    pub fn stats(&self) -> EngineStats {
        self.engine.stats()
    }
}

fn storage_error(e: StorageError) -> Error {
    Error::Server(format!("storage failure: {e}"))
}
