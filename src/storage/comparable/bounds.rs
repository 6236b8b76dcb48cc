//! Clustering ranges for prefix and slice restrictions, in storage (byte) order.
//!
//! A bound is an encoded prefix closed by [`BEFORE`] or [`AFTER`], so it sorts before or
//! after every key sharing the prefix. A slice such as `(a, b) > (x, y)` compares *values*
//! (CASSANDRA-7281), which with mixed ASC/DESC columns is not one contiguous range of
//! storage: it is the union of `a > x` and `a = x AND b > y`, each contiguous. We build each
//! piece, then sort and merge the pieces that touch.

use super::{encode_component, Column, KeyError, Order, AFTER, BEFORE};

/// A contiguous range of encoded clustering keys: `start` inclusive, `end` exclusive. Both
/// are clustering-relative (the row prefix of `keys.rs` goes in front).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ClusteringRange {
    /// First byte string in the range.
    pub start: Vec<u8>,
    /// First byte string after the range.
    pub end: Vec<u8>,
}

/// A slice operator, comparing clustering values as Cassandra does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SliceOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// Every clustering key.
pub fn full_range() -> ClusteringRange {
    ClusteringRange {
        start: vec![BEFORE],
        end: vec![AFTER],
    }
}

/// Every key whose first components equal `prefix` (values for `columns[..prefix.len()]`).
pub fn prefix_range(
    columns: &[Column<'_>],
    prefix: &[Option<&[u8]>],
) -> Result<ClusteringRange, KeyError> {
    let enc = encode_values(columns, prefix)?;
    Ok(ClusteringRange {
        start: with(&enc, BEFORE),
        end: with(&enc, AFTER),
    })
}

/// The ranges, sorted and disjoint, of keys whose first components equal `eq_prefix` and
/// whose next `tuple.len()` components compare to `tuple` as `op` says (single-column
/// slices are a one-element tuple).
pub fn slice_ranges(
    columns: &[Column<'_>],
    eq_prefix: &[Option<&[u8]>],
    op: SliceOp,
    tuple: &[Option<&[u8]>],
) -> Result<Vec<ClusteringRange>, KeyError> {
    if tuple.is_empty() || eq_prefix.len() + tuple.len() > columns.len() {
        return Err(KeyError::InvalidValue {
            ty: "clustering slice".into(),
            reason: "bound has no values or more values than clustering columns".into(),
        });
    }
    let greater = matches!(op, SliceOp::Gt | SliceOp::Ge);
    let mut pre = encode_values(columns, eq_prefix)?;
    let mut pieces = Vec::with_capacity(tuple.len() + 1);
    for (i, value) in tuple.iter().enumerate() {
        let (ty, order) = columns[eq_prefix.len() + i];
        let mut with_value = pre.clone();
        encode_component(ty, order, *value, &mut with_value)?;
        pieces.push(strict_piece(&pre, &with_value, greater, order));
        pre = with_value;
    }
    if matches!(op, SliceOp::Ge | SliceOp::Le) {
        pieces.push(ClusteringRange {
            start: with(&pre, BEFORE),
            end: with(&pre, AFTER),
        });
    }
    Ok(merge(pieces))
}

/// Keys with prefix `pre` whose next component is strictly greater (or less) in value than
/// the one ending `with_value`.
fn strict_piece(pre: &[u8], with_value: &[u8], greater: bool, order: Order) -> ClusteringRange {
    let later_in_storage = greater == (order == Order::Asc);
    if later_in_storage {
        ClusteringRange {
            start: with(with_value, AFTER),
            end: with(pre, AFTER),
        }
    } else {
        ClusteringRange {
            start: with(pre, BEFORE),
            end: with(with_value, BEFORE),
        }
    }
}

/// The intersection of two sorted, disjoint range lists (e.g. `b > 1 AND b < 5`).
pub fn intersect_ranges(a: &[ClusteringRange], b: &[ClusteringRange]) -> Vec<ClusteringRange> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        let start = x.start.as_slice().max(y.start.as_slice());
        let end = x.end.as_slice().min(y.end.as_slice());
        if start < end {
            out.push(ClusteringRange {
                start: start.to_vec(),
                end: end.to_vec(),
            });
        }
        if x.end <= y.end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Sorts ranges, drops empty ones and joins those that touch or overlap.
fn merge(mut pieces: Vec<ClusteringRange>) -> Vec<ClusteringRange> {
    pieces.retain(|p| p.start < p.end);
    pieces.sort_by(|a, b| a.start.cmp(&b.start));
    let mut out: Vec<ClusteringRange> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match out.last_mut() {
            Some(last) if last.end >= piece.start => {
                if piece.end > last.end {
                    last.end = piece.end;
                }
            }
            _ => out.push(piece),
        }
    }
    out
}

fn encode_values(columns: &[Column<'_>], values: &[Option<&[u8]>]) -> Result<Vec<u8>, KeyError> {
    if values.len() > columns.len() {
        return Err(KeyError::InvalidValue {
            ty: "clustering prefix".into(),
            reason: "more values than clustering columns".into(),
        });
    }
    let mut out = Vec::new();
    for (&(ty, order), value) in columns.iter().zip(values) {
        encode_component(ty, order, *value, &mut out)?;
    }
    Ok(out)
}

fn with(bytes: &[u8], last: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(last);
    v
}
