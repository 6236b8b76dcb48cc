//! The engine conformance suite: every [`Engine`] implementation must pass it unchanged.
//! `conformance_tests!(name, constructor)` expands to one `#[test]` per case, so a failure
//! names both the engine and the behaviour.
//!
//! The cases merge with [`max_merge`] — values are big-endian u64 and the larger wins — a
//! stand-in with the property that matters here: the result depends on the values, not on
//! the order writes arrive in, exactly as last-write-wins reconciliation does.

use bytes::Bytes;

use super::engine::{Direction, Engine, KeyRange, MergeRefused, WriteBatch};

/// Test merge: the largest 8-byte big-endian value wins; anything else is corrupt.
pub fn max_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &[&[u8]],
) -> Result<Vec<u8>, MergeRefused> {
    let parse = |v: &[u8]| {
        <[u8; 8]>::try_from(v)
            .map(u64::from_be_bytes)
            .map_err(|_| MergeRefused(format!("bad operand of {} bytes", v.len())))
    };
    let mut best = existing.map(parse).transpose()?;
    for op in operands {
        let v = parse(op)?;
        best = Some(best.map_or(v, |b| b.max(v)));
    }
    best.map(|b| b.to_be_bytes().to_vec())
        .ok_or_else(|| MergeRefused("nothing to merge".to_owned()))
}

fn v(n: u64) -> Bytes {
    Bytes::copy_from_slice(&n.to_be_bytes())
}

fn put(engine: &dyn Engine, key: &str, value: u64) {
    let mut batch = WriteBatch::new();
    batch.merge(Bytes::copy_from_slice(key.as_bytes()), v(value));
    engine.write(batch).expect("write");
}

fn keys(entries: &[(Bytes, Bytes)]) -> Vec<String> {
    entries
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect()
}

/// A late write with a smaller value never replaces a larger stored one.
pub fn late_older_write_loses(engine: &dyn Engine) {
    put(engine, "k", 10);
    put(engine, "k", 5);
    assert_eq!(engine.get(b"k").expect("get"), Some(v(10)));
    put(engine, "k", 11);
    assert_eq!(engine.get(b"k").expect("get"), Some(v(11)));
}

/// Operands of one batch on one key merge in the batch.
pub fn batch_merges_repeated_keys(engine: &dyn Engine) {
    let mut batch = WriteBatch::new();
    batch
        .merge(&b"k"[..], v(3))
        .merge(&b"k"[..], v(9))
        .merge(&b"k"[..], v(4));
    engine.write(batch).expect("write");
    assert_eq!(engine.get(b"k").expect("get"), Some(v(9)));
}

/// A batch whose operand cannot merge applies nothing at all.
pub fn failing_batch_is_atomic(engine: &dyn Engine) {
    put(engine, "a", 1);
    let mut batch = WriteBatch::new();
    batch
        .merge(&b"a"[..], v(7))
        .merge(&b"b"[..], v(2))
        .merge(&b"c"[..], &b"bad"[..]);
    assert!(engine.write(batch).is_err());
    assert_eq!(engine.get(b"a").expect("get"), Some(v(1)));
    assert_eq!(engine.get(b"b").expect("get"), None);
}

/// Scans are ordered by key bytes, both ways, honour bounds and limits.
pub fn scans_are_ordered_and_bounded(engine: &dyn Engine) {
    for (i, key) in ["a", "ab", "b", "ba", "c", "\u{7f}"].iter().enumerate() {
        put(engine, key, i as u64);
    }
    let all = KeyRange::prefix(b"");
    assert_eq!(
        keys(&engine.scan(&all, Direction::Forward, 100).expect("scan")),
        ["a", "ab", "b", "ba", "c", "\u{7f}"]
    );
    assert_eq!(
        keys(&engine.scan(&all, Direction::Reverse, 2).expect("scan")),
        ["\u{7f}", "c"]
    );
    let b = KeyRange::prefix(b"b");
    assert_eq!(
        keys(&engine.scan(&b, Direction::Forward, 100).expect("scan")),
        ["b", "ba"]
    );
    let half = KeyRange::half_open(b"ab", b"c");
    assert_eq!(
        keys(&engine.scan(&half, Direction::Forward, 100).expect("scan")),
        ["ab", "b", "ba"]
    );
    let inverted = KeyRange::half_open(b"c", b"a");
    assert!(engine
        .scan(&inverted, Direction::Forward, 100)
        .expect("scan")
        .is_empty());
    assert!(engine
        .scan(&all, Direction::Forward, 0)
        .expect("scan")
        .is_empty());
}

/// Purge removes a key physically; a later merge starts afresh.
pub fn purge_removes(engine: &dyn Engine) {
    put(engine, "k", 10);
    let mut batch = WriteBatch::new();
    batch.purge(&b"k"[..]);
    engine.write(batch).expect("purge");
    assert_eq!(engine.get(b"k").expect("get"), None);
    put(engine, "k", 3);
    assert_eq!(engine.get(b"k").expect("get"), Some(v(3)));
}

/// Concurrent writers to one key end at the maximum, whatever the interleaving.
pub fn purge_range_removes_exactly_the_range(engine: &dyn Engine) {
    for key in ["a", "b1", "b2", "c"] {
        put(engine, key, 1);
    }
    let mut batch = WriteBatch::new();
    // A key merged earlier in the same batch is removed too.
    batch.merge(&b"b3"[..], v(1));
    batch.purge_range(&b"b"[..], &b"c"[..]);
    engine.write(batch).expect("purge range");
    let all = KeyRange {
        start: std::ops::Bound::Unbounded,
        end: std::ops::Bound::Unbounded,
    };
    let left = engine.scan(&all, Direction::Forward, 10).expect("scan");
    assert_eq!(keys(&left), vec!["a", "c"]);
}

pub fn concurrent_merges_converge(engine: &dyn Engine) {
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            scope.spawn(move || {
                for i in 0..250u64 {
                    put(engine, "hot", (i * 4 + t) % 997);
                }
            });
        }
    });
    assert_eq!(engine.get(b"hot").expect("get"), Some(v(996)));
}

/// Every acknowledged batch is counted as synced (batch durability).
pub fn stats_count_batches_and_syncs(engine: &dyn Engine) {
    let before = engine.stats();
    put(engine, "x", 1);
    put(engine, "y", 2);
    let after = engine.stats();
    assert_eq!(after.batches - before.batches, 2);
    assert!(
        after.wal_syncs - before.wal_syncs >= 2,
        "each acknowledged batch was synced"
    );
}

/// Expands to one `#[test]` per conformance case for the engine `make()` builds.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_tests {
    ($module:ident, $make:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            use $crate::storage::conformance as c;

            #[test]
            fn late_older_write_loses() {
                c::late_older_write_loses(&$make());
            }
            #[test]
            fn batch_merges_repeated_keys() {
                c::batch_merges_repeated_keys(&$make());
            }
            #[test]
            fn failing_batch_is_atomic() {
                c::failing_batch_is_atomic(&$make());
            }
            #[test]
            fn scans_are_ordered_and_bounded() {
                c::scans_are_ordered_and_bounded(&$make());
            }
            #[test]
            fn purge_removes() {
                c::purge_removes(&$make());
            }
            #[test]
            fn purge_range_removes_exactly_the_range() {
                c::purge_range_removes_exactly_the_range(&$make());
            }
            #[test]
            fn concurrent_merges_converge() {
                c::concurrent_merges_converge(&$make());
            }
            #[test]
            fn stats_count_batches_and_syncs() {
                c::stats_count_batches_and_syncs(&$make());
            }
        }
    };
}
