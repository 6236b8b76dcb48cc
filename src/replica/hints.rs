//! Hints this node holds for replicas that missed writes it coordinated (hinted handoff).
//!
//! A hint is the partition updates one replica did not acknowledge, kept until that replica
//! is up again and acknowledges them. Hints live in the node's engine under a key space no
//! table uses: [`HINTS`], the target's host id, then the hint's id (a v1 timeuuid, so a
//! target's hints replay oldest first). The value is one cell whose bytes are the updates
//! (postcard) and whose timestamp is when the hint was stored; replay keeps the updates'
//! own timestamps, so applying a hint twice changes nothing. Removal is physical. A hint's
//! bytes are counted per target so the space they take stays within `max_hints_bytes`.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use uuid::Uuid;

use super::{storage_error, LocalReplica};
use crate::error::{Error, Result};
use crate::storage::cell::{Cell, StoredValue};
use crate::storage::engine::{Direction, KeyRange, WriteBatch};
use crate::storage::partition::PartitionUpdate;

/// The table id no table ever gets: the hints' key space.
pub const HINTS: Uuid = Uuid::from_u128(0x0000_0000_0000_0000_0000_0000_0000_0417);

/// One stored hint.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    pub id: Uuid,
    /// When it was stored (µs since the epoch).
    pub stored_at: i64,
    pub updates: Vec<PartitionUpdate>,
    /// Bytes the stored value takes.
    pub bytes: u64,
}

/// Hints pending per target, and their bytes: kept in memory beside the store, rebuilt
/// from it at start.
#[derive(Debug, Default)]
pub struct HintLedger {
    pending: Mutex<HashMap<Uuid, (u64, u64)>>,
    /// Stored hints found corrupt (not decodable) and dropped since start.
    corrupt: std::sync::atomic::AtomicU64,
}

impl HintLedger {
    fn add(&self, target: Uuid, bytes: u64) {
        let mut pending = self.pending.lock().expect("hint ledger");
        let entry = pending.entry(target).or_default();
        entry.0 += 1;
        entry.1 += bytes;
    }

    fn remove(&self, target: Uuid, bytes: u64) {
        let mut pending = self.pending.lock().expect("hint ledger");
        if let Some(entry) = pending.get_mut(&target) {
            entry.0 = entry.0.saturating_sub(1);
            entry.1 = entry.1.saturating_sub(bytes);
            if entry.0 == 0 {
                pending.remove(&target);
            }
        }
    }

    /// `(hints, bytes)` pending for `target`.
    pub fn of(&self, target: &Uuid) -> (u64, u64) {
        let pending = self.pending.lock().expect("hint ledger");
        pending.get(target).copied().unwrap_or_default()
    }

    /// Stored hints found corrupt and dropped since start.
    pub fn corrupt(&self) -> u64 {
        self.corrupt.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every target with hints pending: `(target, hints, bytes)`.
    pub fn targets(&self) -> Vec<(Uuid, u64, u64)> {
        let pending = self.pending.lock().expect("hint ledger");
        pending.iter().map(|(t, (n, b))| (*t, *n, *b)).collect()
    }
}

fn prefix(target: Uuid) -> Vec<u8> {
    [HINTS.as_bytes().as_slice(), target.as_bytes().as_slice()].concat()
}

fn key(target: Uuid, id: Uuid) -> Vec<u8> {
    [prefix(target).as_slice(), id.as_bytes().as_slice()].concat()
}

impl LocalReplica {
    /// Stores a hint of `updates` for `target`; returns its size in bytes.
    pub async fn hint_store(
        &self,
        target: Uuid,
        id: Uuid,
        updates: &[PartitionUpdate],
    ) -> Result<u64> {
        let body = postcard::to_stdvec(updates)
            .map_err(|e| Error::Server(format!("cannot encode a hint: {e}")))?;
        let cell = Cell::live(crate::clock::now_micros(), Bytes::from(body));
        let value = StoredValue::Cell(cell).encode();
        let bytes = value.len() as u64;
        let mut batch = WriteBatch::new();
        batch.merge(key(target, id), value);
        self.engine_write(batch).await?;
        self.hints.add(target, bytes);
        Ok(bytes)
    }

    /// Removes a delivered (or expired) hint.
    pub async fn hint_remove(&self, target: Uuid, hint: &Hint) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.purge(key(target, hint.id));
        self.engine_write(batch).await?;
        self.hints.remove(target, hint.bytes);
        Ok(())
    }

    /// Up to `limit` of `target`'s hints, oldest first. A hint that does not decode is
    /// removed and reported (corrupt input is never replayed).
    pub async fn hints_for(&self, target: Uuid, limit: usize) -> Result<Vec<Hint>> {
        let range = KeyRange::prefix(&prefix(target));
        let entries = self
            .engine
            .scan(&range, Direction::Forward, limit)
            .map_err(storage_error)?;
        let mut out = Vec::new();
        for (key, value) in entries {
            match decode(&key, &value) {
                Ok(hint) => out.push(hint),
                Err(reason) => {
                    tracing::error!(%target, %reason, "a stored hint does not decode; dropped (a repair brings what it held)");
                    self.hints
                        .corrupt
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let mut batch = WriteBatch::new();
                    batch.purge(key);
                    self.engine_write(batch).await?;
                    self.hints.remove(target, value.len() as u64);
                }
            }
        }
        Ok(out)
    }

    /// Rebuilds the per-target counts from the store (at start).
    pub fn load_hint_ledger(&self) -> Result<()> {
        let range = KeyRange::prefix(HINTS.as_bytes());
        let mut start = range.start.clone();
        loop {
            let chunk = KeyRange {
                start: start.clone(),
                end: range.end.clone(),
            };
            let entries = self
                .engine
                .scan(&chunk, Direction::Forward, 4096)
                .map_err(storage_error)?;
            for (key, value) in &entries {
                if let Some(target) = key.get(16..32).and_then(|b| Uuid::from_slice(b).ok()) {
                    self.hints.add(target, value.len() as u64);
                }
            }
            match entries.last() {
                Some((last, _)) if entries.len() == 4096 => {
                    start = std::ops::Bound::Excluded(last.clone());
                }
                _ => return Ok(()),
            }
        }
    }

    /// Hints pending per target.
    pub fn hint_ledger(&self) -> &HintLedger {
        &self.hints
    }
}

fn decode(key: &[u8], value: &[u8]) -> std::result::Result<Hint, String> {
    let id = key
        .get(32..48)
        .and_then(|b| Uuid::from_slice(b).ok())
        .ok_or("bad key")?;
    let StoredValue::Cell(cell) = StoredValue::decode(value).map_err(|e| e.to_string())? else {
        return Err("not a cell".into());
    };
    let body = cell.value().ok_or("no value")?;
    let updates = postcard::from_bytes(body).map_err(|e| e.to_string())?;
    Ok(Hint {
        id,
        stored_at: cell.timestamp,
        updates,
        bytes: value.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use crate::replica::tests::{deletion_update, memory_engine, memory_replica};

    use super::*;

    fn update(n: u8) -> PartitionUpdate {
        deletion_update(9, n)
    }

    #[tokio::test]
    async fn hints_are_kept_per_target_in_order_until_removed_and_counted() {
        let engine = memory_engine();
        let replica = memory_replica(engine.clone());
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        replica
            .hint_store(a, Uuid::from_u128(10), &[update(1)])
            .await
            .unwrap();
        replica
            .hint_store(a, Uuid::from_u128(11), &[update(2)])
            .await
            .unwrap();
        replica
            .hint_store(b, Uuid::from_u128(12), &[update(3)])
            .await
            .unwrap();
        let for_a = replica.hints_for(a, 10).await.unwrap();
        assert_eq!(
            for_a
                .iter()
                .map(|h| h.updates[0].clone())
                .collect::<Vec<_>>(),
            [update(1), update(2)]
        );
        assert_eq!(replica.hint_ledger().of(&a).0, 2);
        replica.hint_remove(a, &for_a[0]).await.unwrap();
        assert_eq!(replica.hints_for(a, 10).await.unwrap().len(), 1);
        assert_eq!(replica.hint_ledger().of(&a).0, 1);
        // A hint whose stored bytes do not decode is dropped and counted, never replayed;
        // the target's other hints are still delivered.
        let garbage = Cell::live(1, Bytes::from_static(b"\xFF\xFF\xFF\xFFnot updates"));
        let value = StoredValue::Cell(garbage).encode();
        replica.hints.add(a, value.len() as u64);
        let mut batch = WriteBatch::new();
        batch.merge(key(a, Uuid::from_u128(9)), value);
        replica.engine_write(batch).await.unwrap();
        let delivered = replica.hints_for(a, 10).await.unwrap();
        assert_eq!(delivered.len(), 1, "the corrupt hint is not handed out");
        assert_eq!(replica.hint_ledger().corrupt(), 1);
        assert_eq!(replica.hint_ledger().of(&a).0, 1);
        assert_eq!(replica.hints_for(a, 10).await.unwrap().len(), 1);
        assert_eq!(replica.hint_ledger().corrupt(), 1, "dropped once");
        // The ledger is rebuilt from the store after a restart.
        let reopened = memory_replica(engine);
        reopened.load_hint_ledger().unwrap();
        let mut targets = reopened.hint_ledger().targets();
        targets.sort();
        assert_eq!(
            targets.iter().map(|t| (t.0, t.1)).collect::<Vec<_>>(),
            [(a, 1), (b, 1)]
        );
    }
}
