//! The cache's rules with a counted fetch in place of the engine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::config::{Cache, Faults};
use crate::storage::cell::{Cell, DeletionTime, RowMarker};
use crate::storage::comparable::full_range;
use crate::storage::partition::{CellFragment, ColumnFragment, RowFragment};

const TABLE: Uuid = Uuid::from_u128(0x5eed);

fn partition(token: i64) -> PartitionId {
    PartitionId {
        token,
        key: Bytes::from(format!("thread-{token}")),
    }
}

fn slice() -> Slice {
    Slice {
        ranges: vec![full_range()],
        reversed: true,
    }
}

fn limits(live_rows: usize, now_secs: u32) -> ReadLimits {
    ReadLimits {
        live_rows,
        now_secs,
        tombstone_failure: 1000,
        read_static: false,
    }
}

/// A fragment of one row whose `body` cell holds `body`, optionally expiring.
fn fragment(p: &PartitionId, body: &str, expires: Option<u32>) -> PartitionFragment {
    let cell = match expires {
        Some(at) => Cell::expiring(1, body.as_bytes().to_vec(), 10, at - 10),
        None => Cell::live(1, body.as_bytes().to_vec()),
    };
    PartitionFragment {
        partition: p.clone(),
        deletion: DeletionTime::LIVE,
        static_row: None,
        rows: vec![RowFragment {
            clustering: Bytes::from_static(b"\x01"),
            marker: Some(RowMarker::live(1)),
            deletion: DeletionTime::LIVE,
            columns: vec![ColumnFragment {
                column: Bytes::from_static(b"body"),
                path: None,
                value: CellFragment::Cell(cell),
            }],
        }],
        exhausted: true,
        range_deletions: Vec::new(),
    }
}

fn body(served: &Served) -> String {
    match &served.fragment().rows[0].columns[0].value {
        CellFragment::Cell(cell) => {
            String::from_utf8(cell.value().expect("value").to_vec()).expect("utf8")
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn cache(capacity: u64, max_entry: u64) -> ReplicaCache {
    let config = Cache {
        enabled: true,
        capacity_bytes: capacity,
        max_entry_bytes: max_entry,
        version_stripes: 1024,
    };
    ReplicaCache::new(&config, &Faults::default())
}

/// Reads `p` through `cache`, fetching `value` (and counting the fetch) on a miss.
async fn read(
    cache: &ReplicaCache,
    p: &PartitionId,
    limits: &ReadLimits,
    value: &str,
    fetches: &AtomicUsize,
) -> (Served, Outcome) {
    let key = SliceKey::new(TABLE, p, &slice(), None, limits);
    let stamp = cache.stamp(&TABLE, p);
    let fetch = || async {
        fetches.fetch_add(1, Ordering::SeqCst);
        Ok((fragment(p, value, None), ReadStats::default()))
    };
    cache
        .read(key, stamp, Caching::All, limits, None, fetch)
        .await
        .expect("read")
}

fn update(p: &PartitionId) -> PartitionUpdate {
    PartitionUpdate {
        table: TABLE,
        partition: p.clone(),
        deletion: None,
        static_columns: Vec::new(),
        rows: Vec::new(),
        range_deletions: Vec::new(),
    }
}

#[tokio::test]
async fn a_second_read_hits_until_the_partition_is_written() {
    let cache = cache(1 << 20, 1 << 16);
    let fetches = AtomicUsize::new(0);
    let (p, l) = (partition(1), limits(20, 1_000));
    assert_eq!(read(&cache, &p, &l, "a", &fetches).await.1, Outcome::Miss);
    let (served, outcome) = read(&cache, &p, &l, "ignored", &fetches).await;
    assert_eq!((outcome, body(&served)), (Outcome::Hit, "a".to_owned()));
    cache.written(&[update(&p)]);
    let (served, outcome) = read(&cache, &p, &l, "b", &fetches).await;
    assert_eq!((outcome, body(&served)), (Outcome::Miss, "b".to_owned()));
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    let counts = cache.stats().snapshot()[0].1;
    assert_eq!((counts.hits, counts.misses, counts.stale), (1, 2, 1));
}

#[tokio::test]
async fn a_write_elsewhere_leaves_an_entry_current() {
    let cache = cache(1 << 20, 1 << 16);
    let fetches = AtomicUsize::new(0);
    let l = limits(20, 1_000);
    read(&cache, &partition(1), &l, "a", &fetches).await;
    cache.written(&[update(&partition(2))]);
    let outcome = read(&cache, &partition(1), &l, "a", &fetches).await.1;
    assert_eq!(outcome, Outcome::Hit);
}

#[tokio::test]
async fn a_fill_that_began_before_a_write_never_serves_a_read_that_began_after_it() {
    let cache = cache(1 << 20, 1 << 16);
    let p = partition(7);
    let l = limits(20, 1_000);
    // The slow read takes its stamp, then a write lands and is acknowledged while the
    // read is still fetching the old value.
    let slow_stamp = cache.stamp(&TABLE, &p);
    cache.written(&[update(&p)]);
    let key = SliceKey::new(TABLE, &p, &slice(), None, &l);
    let old = || async { Ok((fragment(&p, "old", None), ReadStats::default())) };
    let (served, _) = cache
        .read(key.clone(), slow_stamp, Caching::All, &l, None, old)
        .await
        .expect("slow read");
    assert_eq!(body(&served), "old");
    // A read that began after the acknowledgement must not be answered by that fill.
    let fetches = AtomicUsize::new(0);
    let (served, outcome) = read(&cache, &p, &l, "new", &fetches).await;
    assert_eq!((outcome, body(&served)), (Outcome::Miss, "new".to_owned()));
}

#[tokio::test]
async fn concurrent_reads_of_a_cold_slice_share_one_fetch() {
    let cache = cache(1 << 20, 1 << 16);
    let p = partition(3);
    let l = limits(20, 1_000);
    let fetches = AtomicUsize::new(0);
    let reads = (0..1000).map(|_| async {
        let key = SliceKey::new(TABLE, &p, &slice(), None, &l);
        let stamp = cache.stamp(&TABLE, &p);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok((fragment(&p, "once", None), ReadStats::default()))
        };
        let (served, outcome) = cache
            .read(key, stamp, Caching::All, &l, None, fetch)
            .await
            .expect("read");
        (body(&served), outcome)
    });
    let results = futures::future::join_all(reads).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|(b, _)| b == "once"));
    let coalesced = results
        .iter()
        .filter(|(_, o)| *o == Outcome::Coalesced)
        .count();
    let hits = results.iter().filter(|(_, o)| *o == Outcome::Hit).count();
    assert_eq!(coalesced + hits, 999);
}

/// A read through `cache` whose fetch waits for `release` before answering `value`.
async fn held_read(
    cache: &ReplicaCache,
    p: &PartitionId,
    stamp: Stamp,
    value: &str,
    release: &tokio::sync::Notify,
    fetches: &AtomicUsize,
) -> (String, Outcome) {
    let l = limits(20, 1_000);
    let key = SliceKey::new(TABLE, p, &slice(), None, &l);
    let fetch = || async {
        fetches.fetch_add(1, Ordering::SeqCst);
        release.notified().await;
        Ok((fragment(p, value, None), ReadStats::default()))
    };
    let (served, outcome) = cache
        .read(key, stamp, Caching::All, &l, None, fetch)
        .await
        .expect("read");
    (body(&served), outcome)
}

#[tokio::test]
async fn a_read_after_a_write_never_waits_for_a_fill_that_began_before_it() {
    let cache = cache(1 << 20, 1 << 16);
    let p = partition(11);
    let (old_release, fetches) = (tokio::sync::Notify::new(), AtomicUsize::new(0));
    let old_stamp = cache.stamp(&TABLE, &p);
    let old = held_read(&cache, &p, old_stamp, "old", &old_release, &fetches);
    tokio::pin!(old);
    // The old fill is fetching (and will not finish until released) when a write lands.
    assert!(futures::poll!(old.as_mut()).is_pending());
    assert_eq!(cache.fills.in_progress(), 1);
    cache.written(&[update(&p)]);
    // Reads that began after the write answer without the old fill: one leads a fill of
    // its own, the others join that one, never the old.
    let new_release = tokio::sync::Notify::new();
    let new_stamp = cache.stamp(&TABLE, &p);
    let newer = (0..10).map(|_| held_read(&cache, &p, new_stamp, "new", &new_release, &fetches));
    let newer = futures::future::join_all(newer);
    tokio::pin!(newer);
    assert!(futures::poll!(newer.as_mut()).is_pending());
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "one fill per stamp");
    new_release.notify_waiters();
    let results = newer.await;
    assert!(results.iter().all(|(b, _)| b == "new"));
    assert_eq!(
        results
            .iter()
            .filter(|(_, o)| *o == Outcome::Coalesced)
            .count(),
        9
    );
    // The old fill ends late and does not replace the newer entry.
    old_release.notify_waiters();
    assert_eq!(old.await, ("old".to_owned(), Outcome::Miss));
    let (served, outcome) = read(&cache, &p, &limits(20, 1_000), "x", &fetches).await;
    assert_eq!((body(&served), outcome), ("new".to_owned(), Outcome::Hit));
    assert_eq!(cache.fills.in_progress(), 0);
}

#[tokio::test]
async fn a_fill_whose_reader_went_away_lets_its_waiters_read_for_themselves() {
    let cache = cache(1 << 20, 1 << 16);
    let p = partition(12);
    let (release, fetches) = (tokio::sync::Notify::new(), AtomicUsize::new(0));
    let stamp = cache.stamp(&TABLE, &p);
    let mut leader = Box::pin(held_read(&cache, &p, stamp, "lost", &release, &fetches));
    assert!(futures::poll!(leader.as_mut()).is_pending());
    let l = limits(20, 1_000);
    let waiter = read(&cache, &p, &l, "own", &fetches);
    tokio::pin!(waiter);
    assert!(
        futures::poll!(waiter.as_mut()).is_pending(),
        "it joined the fill"
    );
    drop(leader);
    let (served, outcome) = waiter.await;
    assert_eq!((body(&served), outcome), ("own".to_owned(), Outcome::Miss));
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    assert_eq!(cache.fills.in_progress(), 0);
}

#[tokio::test]
async fn an_entry_with_a_ttl_is_good_only_until_its_first_expiry() {
    let cache = cache(1 << 20, 1 << 16);
    let p = partition(4);
    let cache = &cache;
    let fetch_at = |now: u32| {
        let l = limits(20, now);
        let key = SliceKey::new(TABLE, &p, &slice(), None, &l);
        let stamp = cache.stamp(&TABLE, &p);
        let p = p.clone();
        async move {
            let fetch = || async { Ok((fragment(&p, "ttl", Some(2_000)), ReadStats::default())) };
            cache
                .read(key, stamp, Caching::All, &l, None, fetch)
                .await
                .expect("read")
                .1
        }
    };
    assert_eq!(fetch_at(1_990).await, Outcome::Miss);
    assert_eq!(fetch_at(1_999).await, Outcome::Hit);
    assert_eq!(fetch_at(2_000).await, Outcome::Miss);
}

#[tokio::test]
async fn a_read_larger_than_the_entry_limit_is_served_and_not_kept() {
    let cache = cache(1 << 20, 64);
    let fetches = AtomicUsize::new(0);
    let (p, l) = (partition(5), limits(20, 1_000));
    let (served, outcome) = read(&cache, &p, &l, "big", &fetches).await;
    assert_eq!((outcome, body(&served)), (Outcome::Miss, "big".to_owned()));
    assert_eq!(read(&cache, &p, &l, "big", &fetches).await.1, Outcome::Miss);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    cache.settle().await;
    assert_eq!(cache.size(), (0, 0));
}

#[tokio::test]
async fn truncate_retires_every_entry_of_the_table() {
    let cache = cache(1 << 20, 1 << 16);
    let fetches = AtomicUsize::new(0);
    let l = limits(20, 1_000);
    for t in 0..10 {
        read(&cache, &partition(t), &l, "x", &fetches).await;
    }
    cache.truncated(TABLE);
    for t in 0..10 {
        assert_eq!(
            read(&cache, &partition(t), &l, "y", &fetches).await.1,
            Outcome::Miss
        );
    }
}

#[tokio::test]
async fn a_change_of_owners_retires_every_entry() {
    // A range a node stops replicating takes no more writes there: an entry of it would be
    // stale if the range came back. Every entry goes when the owners change.
    let cache = cache(1 << 20, 1 << 16);
    let fetches = AtomicUsize::new(0);
    let l = limits(20, 1_000);
    for t in 0..10 {
        read(&cache, &partition(t), &l, "x", &fetches).await;
        assert_eq!(
            read(&cache, &partition(t), &l, "x", &fetches).await.1,
            Outcome::Hit
        );
    }
    cache.ownership_changed();
    for t in 0..10 {
        assert_eq!(
            read(&cache, &partition(t), &l, "y", &fetches).await.1,
            Outcome::Miss
        );
    }
}

#[tokio::test]
async fn capacity_is_kept_in_bytes() {
    let capacity = 64 * 1024;
    let cache = cache(capacity, 8 * 1024);
    let fetches = AtomicUsize::new(0);
    let l = limits(20, 1_000);
    let value = "v".repeat(1000);
    for t in 0..1000 {
        read(&cache, &partition(t), &l, &value, &fetches).await;
    }
    cache.settle().await;
    let (bytes, entries) = cache.size();
    assert!(bytes <= capacity, "{bytes} bytes held");
    assert!(entries > 0 && entries < 1000, "{entries} entries");
}

#[test]
fn the_table_option_decides_over_the_node_default() {
    let mut options = TableOptions::default();
    assert_eq!(Caching::of(&options, true), Caching::All);
    assert_eq!(Caching::of(&options, false), Caching::Off);
    options.caching_set = true;
    assert_eq!(Caching::of(&options, true), Caching::Off);
    options
        .caching
        .insert("rows_per_partition".into(), "ALL".into());
    assert_eq!(Caching::of(&options, false), Caching::All);
    options
        .caching
        .insert("rows_per_partition".into(), "20".into());
    assert_eq!(Caching::of(&options, false), Caching::Head(20));
    // ScyllaDB's switch turns it off whatever rows_per_partition says.
    options.caching.insert("enabled".into(), "false".into());
    assert_eq!(Caching::of(&options, true), Caching::Off);
    let head = Caching::Head(20);
    assert!(head.admits(None, &limits(20, 0)));
    assert!(!head.admits(None, &limits(21, 0)));
    assert!(!head.admits(Some(b"\x01"), &limits(5, 0)));
}
