//! The storage engine's families, refreshed at each scrape from its [`EngineStats`]: what
//! it did (write batches, WAL syncs, reads) and the state of its background work — the
//! compaction debt writes leave behind, files per level, memtables, write stalls — which
//! decides how fast the next writes go and is what a benchmark waits on between phases.

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

use super::replica::{counter, follow, gauge};
use crate::storage::engine::EngineStats;

/// The storage engine's families.
pub struct StorageMetrics {
    write_batches: IntCounter,
    wal_syncs: IntCounter,
    reads: IntCounter,
    pending_compaction: IntGauge,
    running_compactions: IntGauge,
    running_flushes: IntGauge,
    live_sst: IntGauge,
    memtables: IntGauge,
    sst_files: IntGaugeVec,
    writes_stopped: IntGauge,
    delayed_write_rate: IntGauge,
}

impl StorageMetrics {
    /// The families, registered in `registry`.
    pub fn new(registry: &Registry) -> StorageMetrics {
        let m = StorageMetrics {
            write_batches: counter(
                "ringcache_storage_write_batches_total",
                "Write batches the storage engine applied",
            ),
            wal_syncs: counter(
                "ringcache_storage_wal_syncs_total",
                "Times the storage engine synced its write-ahead log",
            ),
            reads: counter(
                "ringcache_storage_reads_total",
                "Point reads and scans the storage engine started",
            ),
            pending_compaction: gauge(
                "ringcache_storage_pending_compaction_bytes",
                "Bytes compaction estimates it must still rewrite to bring every level within its target size",
            ),
            running_compactions: gauge(
                "ringcache_storage_running_compactions",
                "Compactions running now",
            ),
            running_flushes: gauge(
                "ringcache_storage_running_flushes",
                "Memtable flushes running now",
            ),
            live_sst: gauge(
                "ringcache_storage_live_sst_bytes",
                "Bytes of the storage engine's live sorted files",
            ),
            memtables: gauge(
                "ringcache_storage_memtable_bytes",
                "Bytes of the storage engine's memtables, active and immutable",
            ),
            sst_files: IntGaugeVec::new(
                Opts::new(
                    "ringcache_storage_sst_files",
                    "Sorted files of the storage engine, per level",
                ),
                &["level"],
            )
            .expect("static metric definition"),
            writes_stopped: gauge(
                "ringcache_storage_writes_stopped",
                "1 while the storage engine stops writes until compaction catches up",
            ),
            delayed_write_rate: gauge(
                "ringcache_storage_delayed_write_rate_bytes",
                "The rate writes are slowed to while compaction catches up, bytes/s (0: not slowed)",
            ),
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 11] = [
            Box::new(m.write_batches.clone()),
            Box::new(m.wal_syncs.clone()),
            Box::new(m.reads.clone()),
            Box::new(m.pending_compaction.clone()),
            Box::new(m.running_compactions.clone()),
            Box::new(m.running_flushes.clone()),
            Box::new(m.live_sst.clone()),
            Box::new(m.memtables.clone()),
            Box::new(m.sst_files.clone()),
            Box::new(m.writes_stopped.clone()),
            Box::new(m.delayed_write_rate.clone()),
        ];
        for c in collectors {
            // Only duplicate names fail, and the registry is fresh.
            let _ = registry.register(c);
        }
        m
    }

    /// Copies `stats` into the families.
    pub fn update(&self, stats: &EngineStats) {
        follow(&self.write_batches, stats.batches);
        follow(&self.wal_syncs, stats.wal_syncs);
        follow(&self.reads, stats.reads);
        let set = |g: &IntGauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        set(&self.pending_compaction, stats.pending_compaction_bytes);
        set(&self.running_compactions, stats.running_compactions);
        set(&self.running_flushes, stats.running_flushes);
        set(&self.live_sst, stats.live_sst_bytes);
        set(&self.memtables, stats.memtable_bytes);
        for (level, files) in stats.sst_files.iter().enumerate() {
            set(
                &self.sst_files.with_label_values(&[&level.to_string()]),
                *files,
            );
        }
        set(&self.writes_stopped, u64::from(stats.writes_stopped));
        set(&self.delayed_write_rate, stats.delayed_write_rate);
    }
}
