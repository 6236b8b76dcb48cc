//! This node's part of the batchlog: logged batches other coordinators stored here before
//! applying them, kept until they are removed — or replayed, if their coordinator never
//! came back to remove them.
//!
//! An entry lives in the node's engine under a key space no table uses: the reserved table
//! id [`BATCHLOG`], then the batch's id (a v1 timeuuid, so entries sort by age). Its value is
//! one cell whose bytes are the batch's partition updates (postcard) and whose timestamp is
//! when it was stored. Removal is physical. Entries are written with the node's durability
//! (synced before acknowledged with `batch`), since a lost entry is a batch that may be only
//! half applied.

use bytes::Bytes;
use uuid::Uuid;

use super::{storage_error, LocalReplica};
use crate::error::{Error, Result};
use crate::storage::cell::{Cell, StoredValue};
use crate::storage::engine::{Direction, KeyRange, WriteBatch};
use crate::storage::partition::PartitionUpdate;

/// The table id no table ever gets: the batchlog's key space.
pub const BATCHLOG: Uuid = Uuid::from_u128(0x0000_0000_0000_0000_0000_0000_0000_0b0c);

/// Entries scanned per replay pass.
const SCAN_LIMIT: usize = 1024;

/// A stored batch.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedBatch {
    pub id: Uuid,
    /// When it was stored here (µs since the epoch).
    pub stored_at: i64,
    pub updates: Vec<PartitionUpdate>,
}

fn key(id: Uuid) -> Vec<u8> {
    [BATCHLOG.as_bytes().as_slice(), id.as_bytes().as_slice()].concat()
}

impl LocalReplica {
    /// Stores a batch before its coordinator applies it.
    pub async fn batchlog_store(&self, id: Uuid, updates: &[PartitionUpdate]) -> Result<()> {
        let body = postcard::to_stdvec(updates)
            .map_err(|e| Error::Server(format!("cannot encode a batch: {e}")))?;
        let cell = Cell::live(crate::clock::now_micros(), Bytes::from(body));
        let mut batch = WriteBatch::new();
        batch.merge(key(id), StoredValue::Cell(cell).encode());
        self.engine_write(batch).await
    }

    /// Removes a batch (applied, or replayed).
    pub async fn batchlog_remove(&self, id: Uuid) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.purge(key(id));
        self.engine_write(batch).await
    }

    /// Batches stored before `before` (µs), oldest first. An entry that does not decode
    /// is reported and skipped, never replayed.
    pub fn batchlog_older_than(&self, before: i64) -> Result<Vec<LoggedBatch>> {
        let range = KeyRange::prefix(BATCHLOG.as_bytes());
        let entries = self
            .engine
            .scan(&range, Direction::Forward, SCAN_LIMIT)
            .map_err(storage_error)?;
        let mut out = Vec::new();
        for (key, value) in entries {
            match decode(&key, &value) {
                Ok(batch) if batch.stored_at < before => out.push(batch),
                Ok(_) => {}
                Err(reason) => {
                    tracing::error!(%reason, "a batchlog entry does not decode; skipped")
                }
            }
        }
        Ok(out)
    }
}

fn decode(key: &[u8], value: &[u8]) -> std::result::Result<LoggedBatch, String> {
    let id = key
        .get(16..32)
        .and_then(|b| Uuid::from_slice(b).ok())
        .ok_or("bad key")?;
    let StoredValue::Cell(cell) = StoredValue::decode(value).map_err(|e| e.to_string())? else {
        return Err("not a cell".into());
    };
    let body = cell.value().ok_or("no value")?;
    let updates = postcard::from_bytes(body).map_err(|e| e.to_string())?;
    Ok(LoggedBatch {
        id,
        stored_at: cell.timestamp,
        updates,
    })
}

#[cfg(test)]
mod tests {
    use crate::replica::tests::{deletion_update, memory_engine, memory_replica};

    use super::*;

    fn replica() -> LocalReplica {
        memory_replica(memory_engine())
    }

    fn update(n: u8) -> PartitionUpdate {
        deletion_update(7, n)
    }

    #[tokio::test]
    async fn batches_are_kept_until_removed_and_listed_by_age() {
        let replica = replica();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        replica
            .batchlog_store(a, &[update(1), update(2)])
            .await
            .unwrap();
        replica.batchlog_store(b, &[update(3)]).await.unwrap();
        let later = crate::clock::now_micros() + 1;
        let stored = replica.batchlog_older_than(later).unwrap();
        assert_eq!(stored.iter().map(|s| s.id).collect::<Vec<_>>(), [a, b]);
        assert_eq!(stored[0].updates, [update(1), update(2)]);
        assert!(
            replica.batchlog_older_than(0).unwrap().is_empty(),
            "none older than the epoch"
        );
        replica.batchlog_remove(a).await.unwrap();
        let left = replica.batchlog_older_than(later).unwrap();
        assert_eq!(left.iter().map(|s| s.id).collect::<Vec<_>>(), [b]);
    }
}
