//! Merged replica answers against one replica that saw every write: three replicas each
//! receive a random part of a random history (row writes, cell deletions, row, range and
//! partition deletions, at random timestamps); a reader pages through the partition by
//! merging the three answers (`storage::merge`) and resuming after the merged answer's last
//! row, as the coordinator does. It must see exactly the live rows a single replica holding
//! the whole history returns — in particular no row resurrected because the replica that
//! deleted it by range returned nothing for it, and no row missed because one replica's rows
//! were all shadowed by another's tombstones (short reads). And read repair: each replica
//! sent what `merge::repair_for` says it lacks then reads as the replica with every write,
//! and a replica that lacks nothing is sent nothing.

use proptest::prelude::*;

use super::*;
use crate::storage::comparable::{intersect_ranges, slice_ranges, SliceOp};
use crate::storage::merge::{merge_fragments, repair_for};

#[derive(Debug, Clone)]
enum Op {
    Write { c: i32, ts: i64, marker: bool },
    DeleteCell { c: i32, ts: i64 },
    DeleteRow { c: i32, ts: i64 },
    DeleteRange { lo: i32, hi: i32, ts: i64 },
    DeletePartition { ts: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..12i32;
    let ts = 1..40i64;
    prop_oneof![
        4 => (c.clone(), ts.clone(), any::<bool>()).prop_map(|(c, ts, marker)| Op::Write { c, ts, marker }),
        1 => (c.clone(), ts.clone()).prop_map(|(c, ts)| Op::DeleteCell { c, ts }),
        1 => (c.clone(), ts.clone()).prop_map(|(c, ts)| Op::DeleteRow { c, ts }),
        2 => (c.clone(), c, ts.clone()).prop_map(|(a, b, ts)| Op::DeleteRange { lo: a.min(b), hi: a.max(b), ts }),
        1 => ts.prop_map(|ts| Op::DeletePartition { ts }),
    ]
}

fn range(lo: i32, hi: i32) -> Vec<ClusteringRange> {
    let ty = int();
    let cols = [(&ty, Order::Asc)];
    let (lo, hi) = (lo.to_be_bytes(), hi.to_be_bytes());
    let above = slice_ranges(&cols, &[], SliceOp::Ge, &[Some(&lo[..])]).expect("lo");
    let below = slice_ranges(&cols, &[], SliceOp::Le, &[Some(&hi[..])]).expect("hi");
    intersect_ranges(&above, &below)
}

fn apply(engine: &dyn Engine, op: &Op) {
    let deletion = |ts| DeletionTime::new(ts, NOW);
    let mut u = update(1, Vec::new());
    match op {
        Op::Write { c, ts, marker } => {
            let cells = vec![cell("v", live(*ts, &format!("{c}@{ts}")))];
            u.rows = vec![row(*c, marker.then(|| RowMarker::live(*ts)), cells)];
        }
        Op::DeleteCell { c, ts } => {
            u.rows = vec![row(*c, None, vec![cell("v", Cell::tombstone(*ts, NOW))])];
        }
        Op::DeleteRow { c, ts } => {
            let mut r = row(*c, None, Vec::new());
            r.deletion = Some(deletion(*ts));
            u.rows = vec![r];
        }
        Op::DeleteRange { lo, hi, ts } => {
            u.range_deletions = range(*lo, *hi)
                .into_iter()
                .map(|r| (r, deletion(*ts)))
                .collect();
        }
        Op::DeletePartition { ts } => u.deletion = Some(deletion(*ts)),
    }
    write(engine, &[u]);
}

/// Pages through partition 1 `page` live rows at a time, each page the merge of every
/// engine's answer, resuming after the merged answer's last row.
fn read_merged(engines: &[&dyn Engine], slice: &Slice, page: usize) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let mut after: Option<Bytes> = None;
    loop {
        let answers = engines
            .iter()
            .map(|e| {
                read_partition(
                    *e,
                    &layout(),
                    &pid(1),
                    slice,
                    after.as_deref(),
                    &limits(page),
                )
                .expect("read")
                .0
            })
            .collect();
        let merged = merge_fragments(answers, slice.reversed);
        for r in &merged.rows {
            after = Some(r.clustering.clone());
            if let Some(live) = resolve_row(r, &merged.deletion, NOW) {
                out.push(decode(&live));
            }
        }
        if merged.exhausted || merged.rows.is_empty() {
            return out;
        }
    }
}

fn decode(row: &LiveRow) -> (i32, String) {
    let c = i32::from_be_bytes(row.clustering[1..5].try_into().expect("int"));
    let c = c ^ i32::MIN;
    let v = row
        .cells
        .first()
        .and_then(|cell| cell.cell.value())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    (c, v)
}

/// One engine that took every write of `history`, and three that took each the writes its
/// bit of the write's mask selects.
fn split(history: &[(Op, u8)]) -> (MemoryEngine, [MemoryEngine; 3]) {
    let full = engine();
    let replicas = [engine(), engine(), engine()];
    for (op, mask) in history {
        apply(&full, op);
        for (i, replica) in replicas.iter().enumerate() {
            if mask & (1 << i) != 0 {
                apply(replica, op);
            }
        }
    }
    (full, replicas)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merged_replicas_read_as_one_replica_with_every_write(
        history in prop::collection::vec((op(), 1u8..8), 1..40),
        page in 1usize..5,
        reversed in any::<bool>(),
    ) {
        let (full, replicas) = split(&history);
        let slice = all(reversed);
        let expected = read_merged(&[&full], &slice, 1000);
        let engines: Vec<&dyn Engine> = replicas.iter().map(|e| e as &dyn Engine).collect();
        prop_assert_eq!(read_merged(&engines, &slice, page), expected);
    }

    #[test]
    fn read_repair_levels_every_replica_and_sends_nothing_to_one_that_is_level(
        history in prop::collection::vec((op(), 1u8..8), 1..40),
    ) {
        let (full, replicas) = split(&history);
        let slice = all(false);
        let whole = |e: &dyn Engine| {
            read_partition(e, &layout(), &pid(1), &slice, None, &limits(1000))
                .expect("read")
                .0
        };
        let answers: Vec<_> = replicas.iter().map(|e| whole(e)).collect();
        let merged = merge_fragments(answers.clone(), false);
        for (replica, answer) in replicas.iter().zip(&answers) {
            if let Some(update) = repair_for(&merged, answer, TABLE) {
                write(replica, &[update]);
            }
        }
        let expected = read_merged(&[&full], &slice, 1000);
        for replica in &replicas {
            prop_assert_eq!(read_merged(&[replica], &slice, 1000), expected.clone());
            // Level now: nothing more to send it.
            let again = whole(replica);
            let merged = merge_fragments(vec![again.clone(), whole(&full)], false);
            prop_assert!(repair_for(&merged, &again, TABLE).is_none());
        }
    }
}
