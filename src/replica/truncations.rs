//! Table records kept under reserved key spaces (so they survive a restart) and in memory:
//! when this node last truncated each table (µs since the epoch, by its own clock), and when
//! the last repair of each table that reached every replica started (by its coordinator's
//! clock).
//!
//! A hint is data its coordinator held back for a replica; one stored before a TRUNCATE of
//! its table would bring truncated rows back if replayed after it. TRUNCATE needs every node,
//! so the hint's holder truncated too, and compares the hint's storage time with its own
//! record, on one clock (`coordinator/replication/hints.rs`), as Cassandra drops hints older
//! than the table's `truncated_at`.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use uuid::Uuid;

use super::{storage_error, LocalReplica};
use crate::error::Result;
use crate::storage::cell::{Cell, StoredValue};
use crate::storage::engine::{Direction, KeyRange, WriteBatch};

/// The reserved key space of truncation records: this id, then the table's id.
pub const TRUNCATIONS: Uuid = Uuid::from_u128(0x0000_0000_0000_0000_0000_0000_0000_7c0a);

/// The reserved key space of repair records: this id, then the table's id. The purge pass
/// of a replicated table keeps every tombstone written after the last repair that reached
/// every replica began (`Coordinator::purge_all`): until a repair has taken a deletion to
/// every replica, its tombstone is what stops a replica that missed it from bringing the
/// data back.
pub const REPAIRS: Uuid = Uuid::from_u128(0x0000_0000_0000_0000_0000_0000_0000_7e9a);

/// Each table's last truncation, as loaded and recorded.
#[derive(Debug, Default)]
pub struct Truncations(Mutex<HashMap<Uuid, i64>>);

fn key(space: Uuid, table: Uuid) -> Vec<u8> {
    [space.as_bytes().as_slice(), table.as_bytes().as_slice()].concat()
}

fn add(batch: &mut WriteBatch, space: Uuid, table: Uuid, at: i64) {
    let cell = Cell::live(at, Bytes::copy_from_slice(&at.to_be_bytes()));
    batch.merge(key(space, table), StoredValue::Cell(cell).encode());
}

/// Adds the record of truncating `table` at `at` to `batch`.
pub(super) fn record(batch: &mut WriteBatch, table: Uuid, at: i64) {
    add(batch, TRUNCATIONS, table, at);
}

impl Truncations {
    fn get(&self, table: Uuid) -> Option<i64> {
        self.0.lock().expect("table records").get(&table).copied()
    }

    fn note(&self, table: Uuid, at: i64) {
        let mut records = self.0.lock().expect("table records");
        let entry = records.entry(table).or_insert(at);
        *entry = (*entry).max(at);
    }
}

impl LocalReplica {
    /// When this node last truncated `table` (µs since the epoch), if it ever did.
    pub fn truncated_at(&self, table: Uuid) -> Option<i64> {
        self.truncations.get(table)
    }

    pub(super) fn note_truncation(&self, table: Uuid, at: i64) {
        self.truncations.note(table, at);
    }

    /// When the last repair of `table` that reached every replica started (µs since the
    /// epoch), if one did since this node has kept records.
    pub fn repaired_at(&self, table: Uuid) -> Option<i64> {
        self.repairs.get(table)
    }

    /// Records that a repair of `table` which reached every replica started at `at`.
    pub async fn record_repair(&self, table: Uuid, at: i64) -> Result<()> {
        let mut batch = WriteBatch::new();
        add(&mut batch, REPAIRS, table, at);
        self.engine_write(batch).await?;
        self.repairs.note(table, at);
        Ok(())
    }

    /// Reads every truncation and repair record into memory (at open). A record that does
    /// not decode is skipped and logged: it can only make a stale hint replay or a purge
    /// keep tombstones longer, never lose data.
    pub fn load_truncations(&self) -> Result<()> {
        for (space, records) in [(TRUNCATIONS, &self.truncations), (REPAIRS, &self.repairs)] {
            let entries = self
                .engine
                .scan(
                    &KeyRange::prefix(space.as_bytes()),
                    Direction::Forward,
                    usize::MAX,
                )
                .map_err(storage_error)?;
            for (key, value) in entries {
                let table = key.get(16..32).and_then(|b| Uuid::from_slice(b).ok());
                let at = match StoredValue::decode(&value) {
                    Ok(StoredValue::Cell(cell)) => Some(cell.timestamp),
                    _ => None,
                };
                match (table, at) {
                    (Some(table), Some(at)) => records.note(table, at),
                    _ => tracing::error!(?key, "a table record does not decode; skipped"),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::replica::tests::{memory_engine, memory_replica};

    use super::*;

    #[test]
    fn a_truncation_is_recorded_and_survives_a_restart() {
        let engine = memory_engine();
        let open = || memory_replica(engine.clone());
        let (t1, t2) = (Uuid::from_u128(7), Uuid::from_u128(8));
        let replica = open();
        assert_eq!(replica.truncated_at(t1), None);
        let before = crate::clock::now_micros();
        replica.truncate(t1).unwrap();
        let at = replica.truncated_at(t1).expect("recorded");
        assert!(at >= before);
        replica.truncate(t1).unwrap();
        let later = replica.truncated_at(t1).unwrap();
        assert!(later >= at);
        // Another table's truncation (a purge of its range) leaves the record alone.
        replica.truncate(t2).unwrap();
        let reopened = open();
        reopened.load_truncations().unwrap();
        assert_eq!(reopened.truncated_at(t1), Some(later));
        assert!(reopened.truncated_at(t2).is_some());
    }
}
