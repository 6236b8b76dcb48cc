//! The replica's families — its cache, the partition reads and purges that reach its
//! store — and the process's memory, refreshed at each scrape from a [`Report`] the node
//! builds.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::cache::TableCounts;

/// What the node reports of its replica at a scrape.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Bytes held as the weigher counts them.
    pub bytes: u64,
    /// Entries held.
    pub entries: u64,
    /// The configured capacity in bytes.
    pub capacity: u64,
    /// Entries evicted to stay within capacity.
    pub evictions: u64,
    /// Entries removed by TRUNCATE or DROP (or replaced by a read too large to keep).
    pub invalidations: u64,
    /// Partition reads sent to the storage engine (counted as they start).
    pub storage_partition_reads: u64,
    /// Per table: keyspace, table, counters.
    pub tables: Vec<(String, String, TableCounts)>,
    /// Purge passes over a table finished, and the keys they removed.
    pub purge_passes: u64,
    pub purged_keys: u64,
}

/// Reads the node's replica report.
pub type ReplicaSource = Box<dyn Fn() -> Report + Send + Sync>;

/// The replica's families.
pub struct ReplicaMetrics {
    hits: IntCounterVec,
    misses: IntCounterVec,
    coalesced: IntCounterVec,
    bypassed: IntCounterVec,
    stale: IntCounterVec,
    oversized: IntCounterVec,
    reused: IntCounterVec,
    evictions: IntCounter,
    invalidations: IntCounter,
    bytes: IntGauge,
    entries: IntGauge,
    capacity: IntGauge,
    partition_reads: IntCounter,
    heap: IntGauge,
    resident: IntGauge,
    cpu: prometheus::Counter,
    purge_passes: IntCounter,
    purged_keys: IntCounter,
}

fn per_table(name: &str, help: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &["keyspace", "table"])
        .expect("static metric definition")
}

pub(super) fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("static metric definition")
}

pub(super) fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("static metric definition")
}

/// Moves an exported counter up to `value` (the source's counters only grow).
pub(super) fn follow(counter: &IntCounter, value: u64) {
    counter.inc_by(value.saturating_sub(counter.get()));
}

impl ReplicaMetrics {
    /// The families, registered in `registry`.
    pub fn new(registry: &Registry) -> ReplicaMetrics {
        let m = ReplicaMetrics {
            hits: per_table(
                "ringcache_cache_hits_total",
                "Reads answered from the cache",
            ),
            misses: per_table(
                "ringcache_cache_misses_total",
                "Cacheable reads that went to storage",
            ),
            coalesced: per_table(
                "ringcache_cache_coalesced_total",
                "Reads that shared another read's storage fetch of the same slice",
            ),
            bypassed: per_table(
                "ringcache_cache_bypassed_total",
                "Reads not eligible for the cache (table caching off, tracing, transactions)",
            ),
            stale: per_table(
                "ringcache_cache_stale_total",
                "Entries found out of date by a write or expiry and replaced",
            ),
            oversized: per_table(
                "ringcache_cache_oversized_total",
                "Reads larger than max_entry_bytes, served without being kept",
            ),
            reused: per_table(
                "ringcache_cache_rows_reused_total",
                "Hits answered by copying the rows their query made of the entry before, in wire form",
            ),
            evictions: counter(
                "ringcache_cache_evictions_total",
                "Entries evicted to stay within capacity",
            ),
            invalidations: counter(
                "ringcache_cache_invalidations_total",
                "Entries removed by TRUNCATE or DROP, or replaced by a read too large to keep",
            ),
            bytes: gauge(
                "ringcache_cache_bytes",
                "Bytes held by the cache as its weigher counts them",
            ),
            entries: gauge("ringcache_cache_entries", "Entries held by the cache"),
            capacity: gauge(
                "ringcache_cache_capacity_bytes",
                "The cache's configured capacity",
            ),
            partition_reads: counter(
                "ringcache_storage_partition_reads_total",
                "Partition reads sent to the storage engine (cache misses and uncached reads)",
            ),
            heap: gauge(
                "ringcache_heap_allocated_bytes",
                "Live bytes allocated by the node's Rust code (RocksDB's own allocations excluded)",
            ),
            resident: gauge(
                "ringcache_process_resident_bytes",
                "The process's resident set size",
            ),
            cpu: prometheus::Counter::new(
                "process_cpu_seconds_total",
                "CPU time the process used, user and system, in seconds",
            )
            .expect("static metric definition"),
            purge_passes: counter(
                "ringcache_storage_purge_passes_total",
                "Purge passes over a table finished",
            ),
            purged_keys: counter(
                "ringcache_storage_purged_keys_total",
                "Keys purge passes removed: shadowed data, expired cells, tombstones past gc_grace_seconds",
            ),
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 18] = [
            Box::new(m.purge_passes.clone()),
            Box::new(m.purged_keys.clone()),
            Box::new(m.hits.clone()),
            Box::new(m.misses.clone()),
            Box::new(m.coalesced.clone()),
            Box::new(m.bypassed.clone()),
            Box::new(m.stale.clone()),
            Box::new(m.oversized.clone()),
            Box::new(m.reused.clone()),
            Box::new(m.evictions.clone()),
            Box::new(m.invalidations.clone()),
            Box::new(m.bytes.clone()),
            Box::new(m.entries.clone()),
            Box::new(m.capacity.clone()),
            Box::new(m.partition_reads.clone()),
            Box::new(m.heap.clone()),
            Box::new(m.resident.clone()),
            Box::new(m.cpu.clone()),
        ];
        for c in collectors {
            // Only duplicate names fail, and the registry is fresh.
            let _ = registry.register(c);
        }
        m
    }

    /// Copies `report` and the process's memory into the families.
    pub fn update(&self, report: &Report) {
        for (keyspace, table, counts) in &report.tables {
            let labels = [keyspace.as_str(), table.as_str()];
            follow(&self.hits.with_label_values(&labels), counts.hits);
            follow(&self.misses.with_label_values(&labels), counts.misses);
            follow(&self.coalesced.with_label_values(&labels), counts.coalesced);
            follow(&self.bypassed.with_label_values(&labels), counts.bypassed);
            follow(&self.stale.with_label_values(&labels), counts.stale);
            follow(&self.oversized.with_label_values(&labels), counts.oversized);
            follow(&self.reused.with_label_values(&labels), counts.reused);
        }
        follow(&self.evictions, report.evictions);
        follow(&self.invalidations, report.invalidations);
        follow(&self.partition_reads, report.storage_partition_reads);
        follow(&self.purge_passes, report.purge_passes);
        follow(&self.purged_keys, report.purged_keys);
        let set = |g: &IntGauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        set(&self.bytes, report.bytes);
        set(&self.entries, report.entries);
        set(&self.capacity, report.capacity);
        if let Some(heap) = super::alloc::heap_bytes() {
            set(&self.heap, heap);
        }
        if let Some(resident) = super::alloc::resident_bytes() {
            set(&self.resident, resident);
        }
        if let Some(cpu) = super::alloc::cpu_seconds() {
            self.cpu.inc_by((cpu - self.cpu.get()).max(0.0));
        }
    }
}
