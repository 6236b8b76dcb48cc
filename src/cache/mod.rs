//! The replica cache: partition reads kept in front of the local engine, exactly coherent.
//!
//! The cache lives with the data it caches (design §6). Every write to a partition
//! passes through the partition's replicas, so the replica is the one place that sees
//! every change and can keep a cache exactly right; a cache at the coordinator would
//! have to trust invalidation messages that race the writes they announce.
//!
//! **What is kept.** An entry is one replica read: the fragment the engine answered (cells
//! with their timestamps and TTLs, tombstones included, so `writetime()`, `ttl()` and later
//! digests come out the same from a hit) and the tombstone count it passed, in one compact
//! buffer ([`compact`]). It is keyed by the read itself — table, partition, clustering
//! ranges, direction, resume position, live-row budget and whether the static row was
//! wanted ([`SliceKey`]) — so the chat history's "latest 20 of this thread" is one entry,
//! and a page further back another. Beside the fragment an entry keeps the rows the first
//! queries made of it, in wire form ([`Rendering`], at most two projections): a later hit
//! of the same query copies them into its reply instead of visiting every cell again.
//!
//! **Coherence by versions** ([`versions`]). Each partition has a version that every write
//! path bumps after the engine applied the write and before the client is acknowledged
//! (`replica::LocalReplica::write`, which client writes, batches, LWT and later hints,
//! repair and streaming all go through; TRUNCATE and DROP bump every version at once). A
//! read takes its partition's stamp *before* it looks at the cache or storage; an entry
//! answers it only if the entry was filled under a stamp at least as new. So a read that
//! began after a write's acknowledgement can never be answered by data read before that
//! write, whatever the interleaving of fills, writes and evictions. Entries are never
//! updated in place: an out-of-date entry is replaced by the next read of its slice. A
//! fragment holding a TTL'd cell is good only until that cell's expiry second.
//!
//! **Coalescing** ([`fills`]). Reads that miss the same slice share one storage read: the
//! first leads a fill, the rest wait for it and use its entry. A read whose stamp is newer
//! than the fill in progress does not join it (it could not use its answer): it leads a
//! fill of its own, which newer readers join. So the version is part of the coalescing key
//! in effect — a read that began after a write never joins a fetch that began before it —
//! and a read never queues behind a fetch it cannot use.
//!
//! **Bounds.** Capacity is in bytes, counted by a weigher over the entry's real footprint:
//! the compact fragment, room reserved for kept rows (about the fragment's values again in
//! wire form; rows that do not fit are not kept), the key and a per-entry overhead. A read
//! bigger than `max_entry_bytes` is served and not kept, so one huge partition cannot take
//! the whole cache.
//!
//! **Control.** `[cache]` in the config sets the capacity and whether tables cache by
//! default; a table decides for itself with Cassandra's own option, `caching =
//! {'rows_per_partition': 'ALL' | 'NONE' | N}` ([`Caching`]); a request with the tracing
//! flag bypasses the cache and is served from storage (the node records no trace events
//! yet; the flag only chooses the path).

mod compact;
mod entry;
mod fills;
mod stats;
mod versions;

use std::borrow::Cow;
use std::future::Future;
use std::mem::size_of;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use uuid::Uuid;

use crate::config;
use crate::schema::TableOptions;
use crate::storage::partition::{
    PartitionFragment, PartitionId, PartitionUpdate, ReadError, ReadLimits, ReadStats, Slice,
};

use fills::{Fills, Role};

pub use entry::{Entry, Rendering, ENTRY_OVERHEAD};
pub use stats::{CacheStats, TableCounts};
pub use versions::{Stamp, Versions};

/// Whether and what a table caches, from its `caching` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Caching {
    /// Nothing (`'rows_per_partition': 'NONE'`, or the cache is off).
    Off,
    /// Every read (`'ALL'`).
    All,
    /// Reads from the start of their slice asking for at most this many rows (`N`): the
    /// head of each partition, as Cassandra's row cache keeps the first N rows.
    Head(usize),
}

impl Caching {
    /// The policy of a table with `options` on a node whose tables cache by `default`.
    /// A table whose option was never set follows the node; one that set it decides.
    pub fn of(options: &TableOptions, default: bool) -> Caching {
        if !options.caching_set {
            return if default { Caching::All } else { Caching::Off };
        }
        if options.caching.get("enabled").map(String::as_str) == Some("false") {
            return Caching::Off;
        }
        match options
            .caching
            .get("rows_per_partition")
            .map(String::as_str)
        {
            Some("ALL") => Caching::All,
            Some(n) => n.parse().map_or(Caching::Off, Caching::Head),
            None => Caching::Off,
        }
    }

    fn admits(self, after: Option<&[u8]>, limits: &ReadLimits) -> bool {
        match self {
            Caching::Off => false,
            Caching::All => true,
            Caching::Head(n) => after.is_none() && limits.live_rows <= n,
        }
    }
}

/// What identifies one replica read: everything that decides its answer but "now".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SliceKey {
    table: Uuid,
    partition: PartitionId,
    /// The slice, resume position, row budget and static flag, serialized.
    read: Bytes,
}

impl SliceKey {
    /// The key of reading `slice` of `partition` after `after` within `limits`.
    pub fn new(
        table: Uuid,
        partition: &PartitionId,
        slice: &Slice,
        after: Option<&[u8]>,
        limits: &ReadLimits,
    ) -> SliceKey {
        let mut read = BytesMut::new();
        read.put_u8(u8::from(slice.reversed) | u8::from(limits.read_static) << 1);
        read.put_u64(limits.live_rows as u64);
        let mut part = |bytes: &[u8]| {
            read.put_u32(bytes.len() as u32);
            read.put_slice(bytes);
        };
        match after {
            Some(after) => part(after),
            None => part(&[]),
        }
        for range in &slice.ranges {
            part(&range.start);
            part(&range.end);
        }
        SliceKey {
            table,
            partition: partition.clone(),
            read: read.freeze(),
        }
    }

    /// Heap bytes the key holds.
    fn heap_bytes(&self) -> usize {
        size_of::<SliceKey>() + self.partition.key.len() + self.read.len()
    }
}

/// A read's answer: an entry of the cache, or a fragment read for this read alone.
// Returned by value and consumed at once; boxing the fragment would cost an allocation per
// uncached read.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Served {
    /// From the cache (a hit, a coalesced read, or this read's own fill).
    Cached(Arc<Entry>),
    /// Read from storage and not kept (caching off, bypassed or too large).
    Fresh(PartitionFragment, ReadStats),
}

impl Served {
    /// The fragment (decoded, for an entry).
    pub fn fragment(&self) -> Cow<'_, PartitionFragment> {
        match self {
            Served::Cached(entry) => Cow::Owned(entry.fragment()),
            Served::Fresh(fragment, _) => Cow::Borrowed(fragment),
        }
    }

    /// The fragment, owned.
    pub fn into_fragment(self) -> PartitionFragment {
        match self {
            Served::Cached(entry) => entry.fragment(),
            Served::Fresh(fragment, _) => fragment,
        }
    }

    /// The fragment's digest (`storage::digest`); a cached entry's is computed once.
    pub fn digest(&self) -> [u8; 16] {
        match self {
            Served::Cached(entry) => entry.digest(),
            Served::Fresh(fragment, _) => crate::storage::digest::fragment_digest(fragment),
        }
    }

    /// What the read passed.
    pub fn stats(&self) -> ReadStats {
        match self {
            Served::Cached(entry) => entry.stats,
            Served::Fresh(_, stats) => *stats,
        }
    }
}

/// How a read was answered, for tests and tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
    Coalesced,
    Bypassed,
}

/// The cache of one replica. See the module essay.
pub struct ReplicaCache {
    /// None when the capacity is 0: nothing is ever cached.
    entries: Option<moka::future::Cache<SliceKey, Arc<Entry>>>,
    versions: Versions,
    /// Fills in progress, which concurrent misses of a slice share.
    fills: Fills,
    max_entry_bytes: usize,
    /// Whether tables that never set `caching` are cached.
    default_on: bool,
    /// A fault for tests: writes do not bump versions (`[faults]`).
    skip_bumps: bool,
    stats: Arc<CacheStats>,
}

impl ReplicaCache {
    /// A cache as `[cache]` and `[faults]` configure it.
    pub fn new(cache: &config::Cache, faults: &config::Faults) -> ReplicaCache {
        let stats = Arc::new(CacheStats::default());
        let entries = (cache.capacity_bytes > 0).then(|| {
            let counted = stats.clone();
            moka::future::Cache::builder()
                .max_capacity(cache.capacity_bytes)
                .weigher(|_key: &SliceKey, entry: &Arc<Entry>| entry.weight)
                .support_invalidation_closures()
                .eviction_listener(move |_key, _entry, cause| {
                    let counter = match cause {
                        RemovalCause::Size => &counted.evictions,
                        RemovalCause::Explicit => &counted.invalidations,
                        RemovalCause::Expired | RemovalCause::Replaced => return,
                    };
                    stats::bump(counter);
                })
                .build()
        });
        if faults.skip_cache_version_bumps {
            tracing::warn!("fault injected: writes do not bump cache versions; reads may be stale");
        }
        ReplicaCache {
            entries,
            versions: Versions::new(cache.version_stripes),
            fills: Fills::new(),
            max_entry_bytes: cache.max_entry_bytes as usize,
            default_on: cache.enabled,
            skip_bumps: faults.skip_cache_version_bumps,
            stats,
        }
    }

    /// The policy of a table with `options` on this node.
    pub fn caching(&self, options: &TableOptions) -> Caching {
        match self.entries {
            Some(_) => Caching::of(options, self.default_on),
            None => Caching::Off,
        }
    }

    /// The stamp a read of `partition` takes before it reads anything.
    pub fn stamp(&self, table: &Uuid, partition: &PartitionId) -> Stamp {
        self.versions.stamp(table, partition)
    }

    /// Marks the partitions `updates` wrote as changed. Called after the engine applied
    /// them and before the write is acknowledged.
    pub fn written(&self, updates: &[PartitionUpdate]) {
        if self.skip_bumps {
            return;
        }
        for update in updates {
            self.versions.bump(&update.table, &update.partition);
        }
    }

    /// Retires every entry of `table` (TRUNCATE, DROP): versions first, so no read that
    /// begins from now on can be served an entry filled before; then the entries, for the
    /// memory.
    pub fn truncated(&self, table: Uuid) {
        if !self.skip_bumps {
            self.versions.bump_all();
        }
        if let Some(entries) = &self.entries {
            // Only fails if invalidation closures were not enabled at build time.
            let _ = entries.invalidate_entries_if(move |key, _| key.table == table);
        }
    }

    /// Retires every entry, because the ranges this node replicates changed (a node joined
    /// or left): an entry of a range it no longer replicates would stop seeing the writes
    /// of that range, and be stale if the range ever came back. Versions first, as for
    /// TRUNCATE, so no read already in flight keeps what it fills. Coarse — every table,
    /// not only the ranges lost — and rare: once per ownership change.
    pub fn ownership_changed(&self) {
        if !self.skip_bumps {
            self.versions.bump_all();
        }
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }

    /// Stops counting a dropped table (its entries went with its truncation).
    pub fn dropped(&self, table: Uuid) {
        self.stats.forget(&table);
    }

    /// Answers the read `key` under `stamp` (taken by the caller before anything was read)
    /// at `now_secs`: from a current entry, by joining a fill of the same slice in
    /// progress, or by `fetch`ing it from storage (and keeping it when `caching` admits it
    /// and it fits).
    pub async fn read<F, Fut>(
        &self,
        key: SliceKey,
        stamp: Stamp,
        caching: Caching,
        limits: &ReadLimits,
        after: Option<&[u8]>,
        fetch: F,
    ) -> Result<(Served, Outcome), ReadError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(PartitionFragment, ReadStats), ReadError>>,
    {
        let table = self.stats.table(&key.table);
        let entries = match &self.entries {
            Some(entries) if caching.admits(after, limits) => entries,
            _ => {
                stats::bump(&table.bypassed);
                let (fragment, read) = fetch().await?;
                return Ok((Served::Fresh(fragment, read), Outcome::Bypassed));
            }
        };
        let now = limits.now_secs;
        let found = entries.get(&key).await;
        if let Some(entry) = &found {
            if entry.serves(stamp, now) {
                stats::bump(&table.hits);
                return Ok((Served::Cached(entry.clone()), Outcome::Hit));
            }
        }
        let leading = match self.fills.join_or_lead(&key, stamp) {
            Role::Join(fill) => {
                if let Some(entry) = fill.wait().await.filter(|e| e.serves(stamp, now)) {
                    stats::bump(&table.coalesced);
                    return Ok((Served::Cached(entry), Outcome::Coalesced));
                }
                // The fill kept nothing (too large, failed, or its reader went away):
                // this read fetches for itself.
                let (fragment, read) = fetch().await?;
                stats::bump(&table.misses);
                return Ok((Served::Fresh(fragment, read), Outcome::Miss));
            }
            Role::Lead(leading) => leading,
        };
        if found.is_some() {
            stats::bump(&table.stale);
        }
        let key_bytes = key.heap_bytes();
        let (fragment, read) = fetch().await?;
        stats::bump(&table.misses);
        let entry = Entry::new(stamp, &fragment, read, key_bytes, table.clone());
        if entry.weight as usize > self.max_entry_bytes {
            stats::bump(&table.oversized);
            if found.is_some() {
                entries.invalidate(&key).await;
            }
            leading.end(None);
            return Ok((Served::Fresh(fragment, read), Outcome::Miss));
        }
        let entry = Arc::new(entry);
        // An older fill finishing late does not replace a newer entry (that would only
        // cost misses: it could never serve a read it is too old for).
        let kept = entry.clone();
        entries
            .entry(key)
            .and_compute_with(|existing| async move {
                match existing {
                    Some(current) if current.value().stamp.covers(kept.stamp) => Op::Nop,
                    _ => Op::Put(kept),
                }
            })
            .await;
        leading.end(Some(entry.clone()));
        Ok((Served::Cached(entry), Outcome::Miss))
    }

    /// Bytes held as the weigher counts them, and entries.
    pub fn size(&self) -> (u64, u64) {
        match &self.entries {
            Some(entries) => (entries.weighted_size(), entries.entry_count()),
            None => (0, 0),
        }
    }

    /// Applies pending evictions and removals now (moka does this lazily, on later
    /// reads and writes), so the sizes it reports are settled.
    pub async fn settle(&self) {
        if let Some(entries) = &self.entries {
            entries.run_pending_tasks().await;
        }
    }

    /// The counters, per table.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// Evictions and invalidations so far.
    pub fn removals(&self) -> (u64, u64) {
        (
            self.stats.evictions.load(Ordering::Relaxed),
            self.stats.invalidations.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests;
