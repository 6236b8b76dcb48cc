//! The bound values: partition keys, token bounds and clustering byte ranges.

use std::ops::{Bound, RangeBounds};

use bytes::Bytes;

use super::analysis::{Group, Kind, Shape, Side, Sides, TokenShape};
use super::REQUIRES_ALLOW_FILTERING;
use crate::coordinator::bind::{Bound as BoundValue, BoundRelation, BoundSelect};
use crate::cql::ast::Operator;
use crate::error::{Error, Result};
use crate::ring::{serialize_partition_key, Murmur3Partitioner};
use crate::schema::{ColumnDef, TableDef};
use crate::storage::comparable::{
    self, intersect_ranges, prefix_range, slice_ranges, ClusteringRange, Column, SliceOp,
};
use crate::storage::partition::{PartitionId, TableLayout};

/// Most partitions (or clustering prefixes) a product of IN restrictions may name; more
/// would be built in memory before the first row is read.
const MAX_CARTESIAN: usize = 100_000;

/// The bound values of the statement's relations, by WHERE index.
pub(super) struct Values<'a> {
    pub bound: &'a BoundSelect,
    pub table: &'a TableDef,
}

impl Values<'_> {
    /// The value tuples of the relation at `position`: one per IN element, else one; a
    /// single-column relation's tuples have one value.
    fn tuples(&self, position: usize) -> Result<Vec<Vec<Option<Bytes>>>> {
        match self.bound.relation_at(position) {
            Some(BoundRelation::Single(BoundValue::Column { op, values, .. })) => {
                Ok(if *op == Operator::In {
                    values.iter().map(|v| vec![v.clone()]).collect()
                } else {
                    vec![values.iter().take(1).cloned().collect()]
                })
            }
            Some(BoundRelation::Multi(multi)) => Ok(multi.values.clone()),
            _ => Err(unbound(position)),
        }
    }

    /// The one tuple of an `=` or slice relation.
    fn tuple(&self, position: usize) -> Result<Vec<Option<Bytes>>> {
        self.tuples(position)?
            .into_iter()
            .next()
            .ok_or_else(|| unbound(position))
    }

    fn token(&self, position: usize) -> Result<i64> {
        match self.bound.relation_at(position) {
            Some(BoundRelation::Single(BoundValue::Token { value, .. })) => Ok(*value),
            _ => Err(unbound(position)),
        }
    }

    /// Whether the relation at `position` is a multi-column one (for null messages).
    fn is_multi(&self, position: usize) -> bool {
        matches!(
            self.bound.relation_at(position),
            Some(BoundRelation::Multi(_))
        )
    }
}

fn unbound(position: usize) -> Error {
    Error::invalid(format!("WHERE relation {position} has no bound value"))
}

fn null_value(column: &str) -> Error {
    Error::invalid(format!(
        "Invalid null value in condition for column {column}"
    ))
}

/// The token range `shape` selects; None when it is empty. As in Cassandra
/// (`getPartitionKeyBoundsForTokenRestrictions`), a range whose start is after its end, or
/// a single token with an exclusive side, is empty unless a side is the minimum token, and
/// an exclusive end at the minimum token means "to the end of the ring".
pub(super) fn token_bounds(
    shape: Option<&TokenShape>,
    values: &Values<'_>,
) -> Result<Option<(Bound<i64>, Bound<i64>)>> {
    let Some(shape) = shape else {
        return Ok(Some((Bound::Unbounded, Bound::Unbounded)));
    };
    let side = |side: Option<Side>| -> Result<Option<(i64, bool)>> {
        side.map(|s| values.token(s.position).map(|t| (t, s.inclusive)))
            .transpose()
    };
    let start = side(shape.sides.start)?;
    let end = side(shape.sides.end)?;
    if let (Some((s, s_incl)), Some((e, e_incl))) = (start, end) {
        let empty = s > e || (s == e && !(s_incl && e_incl));
        if s != i64::MIN && e != i64::MIN && empty {
            return Ok(None);
        }
    }
    let start = match start {
        None => Bound::Unbounded,
        Some((t, true)) => Bound::Included(t),
        Some((t, false)) => Bound::Excluded(t),
    };
    let end = match end {
        None | Some((i64::MIN, false)) => Bound::Unbounded,
        Some((t, true)) => Bound::Included(t),
        Some((t, false)) => Bound::Excluded(t),
    };
    Ok(Some((start, end)))
}

/// The named partitions: the product of every key column's values, kept to the token range
/// when one is given too, in the order Cassandra returns them: sorted by the key columns'
/// values under their types (its `MultiCBuilder` builds a set ordered by the key's
/// comparator), not by token, and without duplicates.
pub(super) fn partition_keys(shape: &Shape, values: &Values<'_>) -> Result<Vec<PartitionId>> {
    let pk = values.table.partition_key();
    let mut product: Vec<Vec<Bytes>> = vec![Vec::new()];
    for (def, kind) in pk.iter().zip(shape.pk.iter().copied()) {
        let position = match kind {
            Some(Kind::Eq(p) | Kind::In(p)) => p,
            _ => return Err(Error::invalid(REQUIRES_ALLOW_FILTERING)),
        };
        let mut column = Vec::new();
        for tuple in values.tuples(position)? {
            let value = tuple.into_iter().next().flatten();
            let value = value.ok_or_else(|| null_value(&def.name))?;
            check_key_value(def, &value)?;
            column.push(value);
        }
        product = extend_product(product, &column)?;
    }
    let range = token_bounds(shape.token.as_ref(), values)?;
    let mut keys = Vec::with_capacity(product.len());
    for parts in &product {
        let refs: Vec<&[u8]> = parts.iter().map(|b| b.as_ref()).collect();
        let key = serialize_partition_key(&refs).map_err(|e| {
            Error::invalid(format!(
                "Key length of {} is longer than maximum of 65535",
                e.len
            ))
        })?;
        if key.is_empty() {
            return Err(Error::invalid("Key may not be empty"));
        }
        let token = Murmur3Partitioner::token(&key).0;
        if range.is_some_and(|(start, end)| in_range(token, start, end)) {
            let id = PartitionId {
                token,
                key: Bytes::from(key),
            };
            if product.len() == 1 {
                // One key (the common `k = ?`): nothing to order.
                return Ok(vec![id]);
            }
            keys.push((value_order(&pk, parts), id));
        }
    }
    keys.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
    keys.dedup_by(|a, b| a.1 == b.1);
    Ok(keys.into_iter().map(|(_, id)| id).collect())
}

/// A sort key ordering partition key values as their types compare: each component in its
/// byte-comparable encoding (its serialized bytes for a type without one).
fn value_order(pk: &[&ColumnDef], parts: &[Bytes]) -> Vec<Vec<u8>> {
    pk.iter()
        .zip(parts)
        .map(|(def, part)| {
            let mut out = Vec::new();
            match comparable::encode_value(&def.ty, part, &mut out) {
                Ok(()) => out,
                Err(_) => part.to_vec(),
            }
        })
        .collect()
}

fn in_range(token: i64, start: Bound<i64>, end: Bound<i64>) -> bool {
    (start, end).contains(&token)
}

/// Rejects a key value the column's type cannot hold; user types and types without a
/// comparable encoding are left to the write path, which never stored such a key.
fn check_key_value(def: &ColumnDef, value: &[u8]) -> Result<()> {
    let mut scratch = Vec::new();
    match comparable::encode_value(&def.ty, value, &mut scratch) {
        Ok(())
        | Err(comparable::KeyError::UnresolvedUserType(_))
        | Err(comparable::KeyError::NotComparable(_)) => Ok(()),
        Err(e) => Err(Error::invalid(format!("{e} (column {})", def.name))),
    }
}

fn too_many(total: usize) -> Error {
    Error::invalid(format!(
        "IN restrictions select {total} combinations, more than the {MAX_CARTESIAN} allowed"
    ))
}

/// Every combination of `prefixes` with one more value from `column`.
fn extend_product<T: Clone>(prefixes: Vec<Vec<T>>, column: &[T]) -> Result<Vec<Vec<T>>> {
    let total = prefixes.len().saturating_mul(column.len());
    if total > MAX_CARTESIAN {
        return Err(too_many(total));
    }
    let mut out = Vec::with_capacity(total);
    for prefix in prefixes {
        for value in column {
            let mut next = prefix.clone();
            next.push(value.clone());
            out.push(next);
        }
    }
    Ok(out)
}

/// The clustering ranges of the used groups, in storage order.
pub(super) fn clustering_ranges(
    used: &[Group],
    layout: &TableLayout,
    values: &Values<'_>,
) -> Result<Vec<ClusteringRange>> {
    let columns: Vec<Column<'_>> = layout.clustering.iter().map(|(t, o)| (t, *o)).collect();
    let names: Vec<&str> = values
        .table
        .clustering()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let ctx = RangeContext {
        columns: &columns,
        names: &names,
        values,
    };
    let mut prefixes: Vec<Vec<Option<Bytes>>> = vec![Vec::new()];
    for group in used {
        match group.kind {
            Kind::Eq(p) | Kind::In(p) => {
                let tuples = ctx.checked_tuples(group, p)?;
                let total = prefixes.len().saturating_mul(tuples.len());
                if total > MAX_CARTESIAN {
                    return Err(too_many(total));
                }
                let mut next = Vec::with_capacity(total);
                for prefix in &prefixes {
                    for tuple in &tuples {
                        let mut extended = prefix.clone();
                        extended.extend(tuple.iter().cloned());
                        next.push(extended);
                    }
                }
                prefixes = next;
            }
            Kind::Slice(sides) => return ctx.slices(group, sides, &prefixes),
        }
    }
    let mut ranges = prefixes
        .iter()
        .map(|prefix| {
            let refs: Vec<Option<&[u8]>> = prefix.iter().map(|v| v.as_deref()).collect();
            prefix_range(&columns, &refs).map_err(|e| Error::invalid(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    sort_dedup(&mut ranges);
    Ok(ranges)
}

/// What building clustering ranges needs at hand.
struct RangeContext<'a> {
    columns: &'a [Column<'a>],
    names: &'a [&'a str],
    values: &'a Values<'a>,
}

impl RangeContext<'_> {
    /// The relation's tuples, refused when a value is null or not of its column's type.
    fn checked_tuples(&self, group: &Group, position: usize) -> Result<Vec<Vec<Option<Bytes>>>> {
        let tuples = self.values.tuples(position)?;
        let in_multi = matches!(group.kind, Kind::In(_)) && self.values.is_multi(position);
        for tuple in &tuples {
            if in_multi && tuple.iter().any(Option::is_none) {
                let names: Vec<&str> = group.columns.iter().map(|&c| self.name(c)).collect();
                return Err(Error::invalid(format!(
                    "Invalid null value in condition for columns: [{}]",
                    names.join(", ")
                )));
            }
            self.check_tuple(group.first(), tuple)?;
        }
        Ok(tuples)
    }

    /// Checks the values of a tuple starting at clustering column `first`.
    fn check_tuple(&self, first: usize, tuple: &[Option<Bytes>]) -> Result<()> {
        for (offset, value) in tuple.iter().enumerate() {
            let column = first + offset;
            let name = self.name(column);
            let value = value.as_deref().ok_or_else(|| null_value(name))?;
            let &(ty, order) = self
                .columns
                .get(column)
                .ok_or_else(|| Error::invalid("More values than clustering columns"))?;
            let mut scratch = Vec::new();
            comparable::encode_component(ty, order, Some(value), &mut scratch)
                .map_err(|e| Error::invalid(format!("{e} (column {name})")))?;
        }
        Ok(())
    }

    /// Each prefix's slice (start and end intersected), in storage order.
    fn slices(
        &self,
        group: &Group,
        sides: Sides,
        prefixes: &[Vec<Option<Bytes>>],
    ) -> Result<Vec<ClusteringRange>> {
        let start = self.side(group, sides.start, true)?;
        let end = self.side(group, sides.end, false)?;
        let mut ranges = Vec::new();
        for prefix in prefixes {
            let refs: Vec<Option<&[u8]>> = prefix.iter().map(|v| v.as_deref()).collect();
            let piece = |side: &Option<(SliceOp, Vec<Option<Bytes>>)>| {
                side.as_ref()
                    .map(|(op, tuple)| {
                        let tuple: Vec<Option<&[u8]>> =
                            tuple.iter().map(|v| v.as_deref()).collect();
                        slice_ranges(self.columns, &refs, *op, &tuple)
                            .map_err(|e| Error::invalid(e.to_string()))
                    })
                    .transpose()
            };
            let pieces =
                match (piece(&start)?, piece(&end)?) {
                    (Some(a), Some(b)) => intersect_ranges(&a, &b),
                    (Some(a), None) | (None, Some(a)) => a,
                    (None, None) => vec![prefix_range(self.columns, &refs)
                        .map_err(|e| Error::invalid(e.to_string()))?],
                };
            ranges.extend(pieces);
        }
        sort_dedup(&mut ranges);
        Ok(ranges)
    }

    fn side(
        &self,
        group: &Group,
        side: Option<Side>,
        is_start: bool,
    ) -> Result<Option<(SliceOp, Vec<Option<Bytes>>)>> {
        let Some(side) = side else { return Ok(None) };
        let tuple = self.values.tuple(side.position)?;
        self.check_tuple(group.first(), &tuple)?;
        let op = match (is_start, side.inclusive) {
            (true, true) => SliceOp::Ge,
            (true, false) => SliceOp::Gt,
            (false, true) => SliceOp::Le,
            (false, false) => SliceOp::Lt,
        };
        Ok(Some((op, tuple)))
    }

    fn name(&self, column: usize) -> &str {
        self.names.get(column).copied().unwrap_or("?")
    }
}

/// Sorts ranges by start and drops duplicates (IN values that encode alike).
fn sort_dedup(ranges: &mut Vec<ClusteringRange>) {
    ranges.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.end.cmp(&b.end)));
    ranges.dedup();
}
