//! The embedded store: where a replica keeps its partitions.
//!
//! Three layers, bottom up. An [`engine::Engine`] is an ordered key-value store whose
//! writes merge instead of overwrite: [`rocks::RocksEngine`] in production,
//! [`memory::MemoryEngine`] in tests, both held to one
//! [`conformance`] suite. The values it stores are [`cell`]s — a value or tombstone with
//! its microsecond write timestamp and TTL — and the merge it applies is Cassandra's
//! last-write-wins reconciliation ([`reconcile`]), so the result of any set of writes is
//! the same whatever order they reach the engine in, and a late write with an older
//! timestamp never replaces newer data (design §3). Keys follow Cassandra's order
//! (design §4): table id, token, partition key, then a clustering key in a
//! byte-comparable encoding ([`comparable`], [`keys`]) so that RocksDB's byte order is CQL
//! order and token ranges, partitions and clustering slices are contiguous key ranges.
//!
//! Above the engine, [`partition`] turns partition updates into one atomic batch and reads
//! a partition's slice back as fragments, resolved by Cassandra's read-time rules; [`purge`]
//! finds what a partition holds that no read can see any more (shadowed data, expired
//! cells and tombstones past `gc_grace_seconds`), for the replica's purge pass.

pub mod cell;
pub mod comparable;
pub mod conformance;
pub mod digest;
pub mod engine;
pub mod keys;
pub mod memory;
pub mod merge;
pub mod merkle;
pub mod partition;
pub mod purge;
pub mod reconcile;
pub mod rocks;

/// The engine merge function for CQL data: decodes the stored value and the operands
/// (cells, row markers or deletion times) and keeps what Cassandra's rules keep.
pub fn cql_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &[&[u8]],
) -> Result<Vec<u8>, engine::MergeRefused> {
    reconcile::merge_values(existing, operands.iter().copied())
        .map_err(|e| engine::MergeRefused(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::cell::Cell;
    use super::engine::{Engine, WriteBatch};
    use super::memory::MemoryEngine;

    #[test]
    fn an_older_write_reaching_the_engine_last_loses() {
        let engine = MemoryEngine::new(super::cql_merge);
        let write = |ts: i64, value: &'static [u8]| {
            let mut batch = WriteBatch::new();
            batch.merge(
                &b"cell"[..],
                Cell::live(ts, bytes::Bytes::from_static(value)).encode(),
            );
            engine.write(batch).expect("write");
        };
        write(2_000, b"new");
        write(1_000, b"old");
        let stored = engine.get(b"cell").expect("get").expect("present");
        assert_eq!(
            Cell::decode(&stored).expect("decode"),
            Cell::live(2_000, bytes::Bytes::from_static(b"new"))
        );
    }
}
