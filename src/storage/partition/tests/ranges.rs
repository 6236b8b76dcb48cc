//! Range tombstones through the partition layer: overlapping and nested ranges with
//! different timestamps, newer writes showing again, both directions, engine chunks, pages
//! and slices that start inside a range, and a model check of all of it.

use proptest::prelude::*;

use super::*;
use crate::storage::comparable::{intersect_ranges, slice_ranges, SliceOp};

/// A range over the int clustering column: `lo` and `hi` with their inclusiveness.
#[derive(Debug, Clone, Copy)]
struct Span {
    lo: i32,
    lo_incl: bool,
    hi: i32,
    hi_incl: bool,
}

fn span(lo: i32, hi: i32) -> Span {
    Span {
        lo,
        lo_incl: true,
        hi,
        hi_incl: true,
    }
}

impl Span {
    fn covers(&self, c: i32) -> bool {
        let above = if self.lo_incl {
            c >= self.lo
        } else {
            c > self.lo
        };
        let below = if self.hi_incl {
            c <= self.hi
        } else {
            c < self.hi
        };
        above && below
    }

    /// The storage ranges of `c >(=) lo AND c <(=) hi`, as the DML build makes them.
    fn ranges(&self) -> Vec<ClusteringRange> {
        let ty = int();
        let cols = [(&ty, Order::Asc)];
        let (lo, hi) = (self.lo.to_be_bytes(), self.hi.to_be_bytes());
        let lo_op = if self.lo_incl {
            SliceOp::Ge
        } else {
            SliceOp::Gt
        };
        let hi_op = if self.hi_incl {
            SliceOp::Le
        } else {
            SliceOp::Lt
        };
        let above = slice_ranges(&cols, &[], lo_op, &[Some(&lo[..])]).expect("lo");
        let below = slice_ranges(&cols, &[], hi_op, &[Some(&hi[..])]).expect("hi");
        intersect_ranges(&above, &below)
    }
}

fn delete_range(e: &dyn Engine, p: i64, span: Span, ts: i64) {
    let mut u = update(p, Vec::new());
    u.range_deletions = span
        .ranges()
        .into_iter()
        .map(|r| (r, DeletionTime::new(ts, NOW)))
        .collect();
    write(e, &[u]);
}

/// Inserts rows `cs` at `ts`, each with a cell `v` naming the timestamp.
fn insert(e: &dyn Engine, p: i64, cs: impl IntoIterator<Item = i32>, ts: i64) {
    let rows = cs
        .into_iter()
        .map(|c| {
            let cells = vec![cell("v", live(ts, &ts.to_string()))];
            row(c, Some(RowMarker::live(ts)), cells)
        })
        .collect();
    write(e, &[update(p, rows)]);
}

fn keys(e: &dyn Engine, p: i64, slice: &Slice, after: Option<i32>, n: usize) -> Vec<i32> {
    live_rows(e, p, slice, after, n)
        .iter()
        .map(|r| r.0)
        .collect()
}

/// Asserts a whole read in both directions returns `expected` (ascending).
fn assert_both_ways(e: &dyn Engine, p: i64, expected: &[i32]) {
    assert_eq!(keys(e, p, &all(false), None, 10_000), expected, "forward");
    let mut reversed = expected.to_vec();
    reversed.reverse();
    assert_eq!(keys(e, p, &all(true), None, 10_000), reversed, "reverse");
}

/// Every live row, read in pages of `size` in one direction.
fn paged(e: &dyn Engine, p: i64, slice: &Slice, size: usize) -> Vec<i32> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = keys(e, p, slice, after, size);
        if page.is_empty() {
            return seen;
        }
        assert!(page.len() <= size);
        after = page.last().copied();
        seen.extend(page);
    }
}

fn live_except(range: std::ops::Range<i32>, hidden: impl Fn(i32) -> bool) -> Vec<i32> {
    range.filter(|c| !hidden(*c)).collect()
}

#[test]
fn overlapping_ranges_shadow_by_the_newest_covering_deletion() {
    let e = engine();
    insert(&e, 1, 0..20, 10);
    delete_range(&e, 1, span(2, 10), 5); // older than the rows: hides nothing
    delete_range(
        &e,
        1,
        Span {
            hi_incl: false,
            ..span(5, 15)
        },
        20,
    );
    delete_range(
        &e,
        1,
        Span {
            lo_incl: false,
            ..span(8, 12)
        },
        30,
    );
    assert_both_ways(&e, 1, &live_except(0..20, |c| (5..15).contains(&c)));
    // Newer than the [5, 15) deletion, but row 9 also lies in (8, 12] deleted at 30.
    insert(&e, 1, [6, 9, 13], 25);
    assert_both_ways(
        &e,
        1,
        &live_except(0..20, |c| (5..15).contains(&c) && ![6, 13].contains(&c)),
    );
    let rows = live_rows(&e, 1, &all(false), None, 100);
    let six = rows.iter().find(|r| r.0 == 6).expect("row 6");
    assert_eq!(six.1, kv(&[("v", "25")]), "only the newer cell shows");
}

#[test]
fn nested_ranges_each_apply_their_own_timestamp() {
    let e = engine();
    insert(&e, 1, 0..50, 30);
    delete_range(&e, 1, span(0, 45), 20);
    delete_range(&e, 1, span(10, 20), 10);
    delete_range(&e, 1, span(30, 40), 50);
    assert_both_ways(&e, 1, &live_except(0..50, |c| (30..=40).contains(&c)));
    // Two ranges from one start with different ends stay separate deletions.
    let e = engine();
    insert(&e, 2, 0..12, 20);
    delete_range(
        &e,
        2,
        Span {
            hi_incl: false,
            ..span(0, 10)
        },
        30,
    );
    delete_range(
        &e,
        2,
        Span {
            hi_incl: false,
            ..span(0, 5)
        },
        10,
    );
    assert_both_ways(&e, 2, &[10, 11]);
    // The same range deleted twice keeps the newer deletion, whatever the arrival order.
    let e = engine();
    insert(&e, 3, 0..6, 20);
    delete_range(&e, 3, span(1, 3), 30);
    delete_range(&e, 3, span(1, 3), 10);
    assert_both_ways(&e, 3, &[0, 4, 5]);
}

#[test]
fn a_write_at_the_deletion_timestamp_stays_hidden_and_a_newer_one_shows() {
    let e = engine();
    insert(&e, 1, 0..5, 10);
    delete_range(&e, 1, span(1, 3), 20);
    assert_both_ways(&e, 1, &[0, 4]);
    insert(&e, 1, [2], 20);
    assert_both_ways(&e, 1, &[0, 4]);
    // An UPDATE-made row (no marker) shows again through its newer cell.
    write(
        &e,
        &[update(
            1,
            vec![row(2, None, vec![cell("w", live(21, "new"))])],
        )],
    );
    assert_both_ways(&e, 1, &[0, 2, 4]);
    let rows = live_rows(&e, 1, &all(false), None, 10);
    assert_eq!(rows[1], (2, kv(&[("w", "new")])));
}

#[test]
fn a_range_over_300_rows_crosses_chunks_pages_and_slices() {
    let e = engine();
    wide(&e);
    delete_range(&e, 1, span(50, 250), 11);
    let expected = live_except(0..300, |c| (50..=250).contains(&c));
    assert_both_ways(&e, 1, &expected);
    for size in [1, 2, 3, 7, 60] {
        assert_eq!(paged(&e, 1, &all(false), size), expected, "forward {size}");
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(paged(&e, 1, &all(true), size), reversed, "reverse {size}");
    }
    // Pages resuming inside the range (after row 60 or 240) never see its start key.
    assert_eq!(keys(&e, 1, &all(false), Some(60), 2), [251, 252]);
    assert_eq!(keys(&e, 1, &all(true), Some(240), 2), [49, 48]);
    // Slices starting inside the range, in both directions.
    let from_100 = Slice {
        ranges: Span {
            hi: 1000,
            ..span(100, 0)
        }
        .ranges(),
        reversed: false,
    };
    assert_eq!(keys(&e, 1, &from_100, None, 2), [251, 252]);
    let to_200 = Slice {
        ranges: span(-5, 200).ranges(),
        reversed: true,
    };
    assert_eq!(keys(&e, 1, &to_200, None, 2), [49, 48]);
    let (_, stats) =
        read_partition(&e, &layout(), &pid(1), &all(false), None, &limits(1000)).expect("read");
    assert_eq!(stats.tombstones, 1, "a range counts once, not once per row");
}

#[test]
fn open_ended_ranges_hide_to_the_partition_edges_in_both_directions() {
    let e = engine();
    wide(&e);
    let ty = int();
    let cols = [(&ty, Order::Asc)];
    let mut u = update(1, Vec::new());
    for (op, c) in [(SliceOp::Ge, 290), (SliceOp::Lt, 5)] {
        let bound = i32::to_be_bytes(c);
        for range in slice_ranges(&cols, &[], op, &[Some(&bound[..])]).expect("slice") {
            u.range_deletions.push((range, DeletionTime::new(11, NOW)));
        }
    }
    // The end key of `c >= 290` sorts after every row: only the index shows it to a
    // reverse scan.
    write(&e, &[u]);
    assert_both_ways(&e, 1, &(5..290).collect::<Vec<_>>());
    assert_eq!(keys(&e, 1, &all(true), None, 2), [289, 288]);
    assert_eq!(keys(&e, 1, &all(false), None, 2), [5, 6]);
}

#[test]
fn statics_survive_ranges_and_partition_deletions_still_hide_everything() {
    let e = engine();
    let mut u = update(1, Vec::new());
    u.static_columns = vec![cell("s", live(10, "static"))];
    write(&e, &[u]);
    insert(&e, 1, 0..4, 10);
    delete_range(&e, 1, span(i32::MIN, i32::MAX), 20);
    let (fragment, _) =
        read_partition(&e, &layout(), &pid(1), &all(false), None, &limits(10)).expect("read");
    let static_row = fragment.static_row.expect("static row");
    assert!(resolve_row(&static_row, &fragment.deletion, NOW).is_some());
    assert_both_ways(&e, 1, &[]);
    insert(&e, 1, [1, 2], 30);
    assert_both_ways(&e, 1, &[1, 2]);
    let mut u = update(1, Vec::new());
    u.deletion = Some(DeletionTime::new(40, NOW));
    write(&e, &[u]);
    assert_both_ways(&e, 1, &[]);
}

#[test]
fn range_tombstones_count_toward_the_failure_threshold() {
    let e = engine();
    insert(&e, 1, 0..200, 10);
    for c in 0..60 {
        delete_range(&e, 1, span(c * 3, c * 3 + 1), 20);
    }
    let mut strict = limits(1000);
    strict.tombstone_failure = 50;
    for reversed in [false, true] {
        let failed = read_partition(&e, &layout(), &pid(1), &all(reversed), None, &strict);
        assert!(matches!(
            failed,
            Err(ReadError::TombstoneOverwhelming { tombstones: 51 })
        ));
    }
    // A page resuming inside [171, 172] finds it in the index, then meets two more; the
    // 57 ranges behind it are not counted.
    let after = ck(171);
    let (_, stats) = read_partition(
        &e,
        &layout(),
        &pid(1),
        &all(false),
        Some(&after),
        &limits(1000),
    )
    .expect("read");
    assert_eq!(stats.tombstones, 3);
}

#[test]
fn the_rocksdb_engine_applies_ranges_as_the_memory_engine_does() {
    use crate::storage::rocks::{Durability, RocksEngine};
    let dir = tempfile::tempdir().expect("tempdir");
    let rocks =
        RocksEngine::open(dir.path(), crate::storage::cql_merge, Durability::Batch).expect("open");
    let memory = engine();
    for e in [&rocks as &dyn Engine, &memory] {
        wide(e);
        delete_range(e, 1, span(20, 280), 11);
        delete_range(e, 1, span(100, 120), 9);
        insert(e, 1, 90..110, 12);
    }
    let expected: Vec<i32> = (0..20).chain(90..110).chain(281..300).collect();
    assert_both_ways(&rocks, 1, &expected);
    for reversed in [false, true] {
        assert_eq!(
            paged(&rocks, 1, &all(reversed), 3),
            paged(&memory, 1, &all(reversed), 3)
        );
    }
}

fn arb_span() -> impl Strategy<Value = Span> {
    (0..30i32, 0..12i32, any::<bool>(), any::<bool>()).prop_map(|(lo, len, lo_incl, hi_incl)| {
        Span {
            lo,
            lo_incl,
            hi: lo + len,
            hi_incl,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any mix of rows and ranges with few distinct timestamps reads as the model says, in
    /// both directions, whole and in pages of 1 to 3, and through a slice.
    #[test]
    fn reads_match_a_model_of_range_deletions(
        writes in proptest::collection::vec((0..36i32, 1..5i64), 0..40),
        spans in proptest::collection::vec((arb_span(), 1..5i64), 0..6),
        slice_span in arb_span(),
        size in 1..4usize,
    ) {
        let e = engine();
        let mut newest = std::collections::BTreeMap::new();
        for &(c, ts) in &writes {
            insert(&e, 1, [c], ts);
            let at = newest.entry(c).or_insert(ts);
            *at = (*at).max(ts);
        }
        for &(span, ts) in &spans {
            delete_range(&e, 1, span, ts);
        }
        let hidden = |c: i32, ts: i64| spans.iter().any(|(s, d)| s.covers(c) && *d >= ts);
        let expected: Vec<i32> = newest
            .iter()
            .filter(|(c, ts)| !hidden(**c, **ts))
            .map(|(c, _)| *c)
            .collect();
        let mut reversed = expected.clone();
        reversed.reverse();
        prop_assert_eq!(paged(&e, 1, &all(false), size), expected.clone());
        prop_assert_eq!(paged(&e, 1, &all(true), size), reversed);
        let sliced: Vec<i32> = expected.iter().copied().filter(|c| slice_span.covers(*c)).collect();
        for reversed in [false, true] {
            let slice = Slice { ranges: slice_span.ranges(), reversed };
            let mut want = sliced.clone();
            if reversed {
                want.reverse();
            }
            prop_assert_eq!(paged(&e, 1, &slice, size), want);
        }
    }
}
