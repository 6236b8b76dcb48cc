//! What the cache did, per table: counted with relaxed atomics on the read path and read
//! by the metrics endpoint at each scrape.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use uuid::Uuid;

/// One table's cache counters.
#[derive(Debug, Default)]
pub struct TableStats {
    /// Reads answered from a current entry.
    pub hits: AtomicU64,
    /// Reads that went to storage and filled (or tried to fill) an entry.
    pub misses: AtomicU64,
    /// Reads that waited for another read's fetch of the same slice and used its result.
    pub coalesced: AtomicU64,
    /// Reads of a table whose caching is off, or asked to bypass the cache (tracing).
    pub bypassed: AtomicU64,
    /// Entries found out of date (a write or expiry since they were filled) and replaced.
    pub stale: AtomicU64,
    /// Reads larger than the largest entry allowed: served, not kept.
    pub oversized: AtomicU64,
    /// Hits answered by copying the rows their projection made of the entry before
    /// (`Entry::rendering`), without assembling them again.
    pub reused: AtomicU64,
}

/// A snapshot of one table's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub hits: u64,
    pub misses: u64,
    pub coalesced: u64,
    pub bypassed: u64,
    pub stale: u64,
    pub oversized: u64,
    pub reused: u64,
}

/// The counters of every table, and the cache-wide ones.
#[derive(Debug, Default)]
pub struct CacheStats {
    tables: RwLock<HashMap<Uuid, Arc<TableStats>>>,
    /// Entries evicted to stay within capacity.
    pub evictions: AtomicU64,
    /// Entries removed explicitly: their table was truncated or dropped, or a read too
    /// large to keep found the entry of its slice out of date.
    pub invalidations: AtomicU64,
}

impl CacheStats {
    /// The counters of `table`, created on first use.
    pub fn table(&self, table: &Uuid) -> Arc<TableStats> {
        if let Some(stats) = self.read().get(table) {
            return stats.clone();
        }
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        tables.entry(*table).or_default().clone()
    }

    /// Stops reporting `table` (dropped).
    pub fn forget(&self, table: &Uuid) {
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        tables.remove(table);
    }

    /// Every table's counters.
    pub fn snapshot(&self) -> Vec<(Uuid, TableCounts)> {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.read()
            .iter()
            .map(|(id, s)| {
                let counts = TableCounts {
                    hits: load(&s.hits),
                    misses: load(&s.misses),
                    coalesced: load(&s.coalesced),
                    bypassed: load(&s.bypassed),
                    stale: load(&s.stale),
                    oversized: load(&s.oversized),
                    reused: load(&s.reused),
                };
                (*id, counts)
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Arc<TableStats>>> {
        self.tables.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds one to `counter`.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
