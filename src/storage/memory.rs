//! The in-memory engine: a `BTreeMap` under a lock, merging on write. It exists so the
//! storage layer above the engine can be tested fast and deterministically; it keeps
//! nothing across restarts and counts a "WAL sync" per batch to mirror `batch` durability.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use bytes::Bytes;

use super::engine::{
    Direction, Engine, EngineStats, Entry, KeyRange, MergeFn, StorageError, WriteBatch, WriteOp,
};

/// An [`Engine`] held in memory.
pub struct MemoryEngine {
    map: RwLock<BTreeMap<Bytes, Bytes>>,
    merge: MergeFn,
    batches: AtomicU64,
    reads: AtomicU64,
}

impl MemoryEngine {
    /// An empty engine that merges with `merge`.
    pub fn new(merge: MergeFn) -> MemoryEngine {
        MemoryEngine {
            map: RwLock::new(BTreeMap::new()),
            merge,
            batches: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }

    fn corrupt(key: &[u8], message: String) -> StorageError {
        let key = key.iter().map(|b| format!("{b:02x}")).collect();
        StorageError::Corrupt { key, message }
    }
}

impl Engine for MemoryEngine {
    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        // Merge into a staging copy of the touched keys first, so a failing operand leaves
        // the map untouched: the batch is atomic.
        let mut staged: BTreeMap<Bytes, Option<Bytes>> = BTreeMap::new();
        for op in batch.ops() {
            match op {
                WriteOp::Merge { key, value } => {
                    let current = match staged.get(key) {
                        Some(v) => v.clone(),
                        None => map.get(key).cloned(),
                    };
                    let merged = (self.merge)(key, current.as_deref(), &[value])
                        .map_err(|m| MemoryEngine::corrupt(key, m.0))?;
                    staged.insert(key.clone(), Some(Bytes::from(merged)));
                }
                WriteOp::Purge { key } => {
                    staged.insert(key.clone(), None);
                }
                WriteOp::PurgeRange { start, end } if start < end => {
                    let range = (Bound::Included(start.clone()), Bound::Excluded(end.clone()));
                    let doomed: Vec<Bytes> = map
                        .range::<Bytes, _>(range.clone())
                        .map(|(k, _)| k.clone())
                        .chain(staged.range::<Bytes, _>(range).map(|(k, _)| k.clone()))
                        .collect();
                    for key in doomed {
                        staged.insert(key, None);
                    }
                }
                WriteOp::PurgeRange { .. } => {}
            }
        }
        for (key, value) in staged {
            match value {
                Some(v) => map.insert(key, v),
                None => map.remove(&key),
            };
        }
        self.batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    fn scan(
        &self,
        range: &KeyRange,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let bounds: (Bound<Bytes>, Bound<Bytes>) = (range.start.clone(), range.end.clone());
        if empty_range(&bounds) {
            return Ok(Vec::new());
        }
        let iter = map.range(bounds).map(|(k, v)| (k.clone(), v.clone()));
        Ok(match direction {
            Direction::Forward => iter.take(limit).collect(),
            Direction::Reverse => iter.rev().take(limit).collect(),
        })
    }

    fn stats(&self) -> EngineStats {
        let batches = self.batches.load(Ordering::Relaxed);
        EngineStats {
            batches,
            wal_syncs: batches,
            reads: self.reads.load(Ordering::Relaxed),
            ..EngineStats::default()
        }
    }
}

/// `BTreeMap::range` panics on inverted or empty-excluded bounds; such a range holds nothing.
fn empty_range((start, end): &(Bound<Bytes>, Bound<Bytes>)) -> bool {
    use Bound::*;
    match (start, end) {
        (Included(s), Included(e)) => s > e,
        (Included(s), Excluded(e)) | (Excluded(s), Included(e)) => s >= e,
        (Excluded(s), Excluded(e)) => s >= e,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryEngine;

    crate::conformance_tests!(memory, || MemoryEngine::new(
        crate::storage::conformance::max_merge
    ));

    #[test]
    fn prefix_successor_handles_ff_bytes() {
        use crate::storage::engine::prefix_successor;
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[0x01, 0xFF]), Some(vec![0x02]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
