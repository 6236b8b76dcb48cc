//! Non-frozen list operations beyond whole writes and appends, as Cassandra does them.
//!
//! A list's elements are cells whose paths are timeuuids: order by path is list order.
//! Appending takes paths from the node's clock; **prepending** takes paths mirrored around
//! Cassandra's list reference time (2010-01-01), so a prepend made later sorts earlier and
//! the elements of one prepend keep their order — no read needed.
//!
//! **Setting or deleting by index, and removing by value,** need the list as it is: which
//! path is the i-th live element, which elements equal a value. Cassandra reads the list on
//! the replica before it writes (`getPrefetchedList`), without isolation: a concurrent
//! write may land in between, and the last writer wins per element. The build here does
//! the same through the write's [`ListReader`](super::super::ListReader) once the
//! partitions and rows of the statement are known, and adds the element cells or tombstones
//! to each row's update.

use bytes::Bytes;

use super::super::terms::Val;
use super::super::walk::{Op, Write};
use super::{checked, invalid_value, path, Params};
use crate::coordinator::functions::prepend_timeuuid_ticks;
use crate::cql::serialized::split_collection;
use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};
use crate::schema::{ColumnDef, ColumnKind};
use crate::storage::partition::{ColumnWrite, PartitionUpdate};

/// The cells of `l = value + l`: the elements in order, ahead of every element there.
pub(super) fn prepend_cells(
    def: &ColumnDef,
    ty: &CqlType,
    value: &Bytes,
    p: &Params,
    out: &mut Vec<ColumnWrite>,
) -> Result<()> {
    let elements = split_collection(ty, value).map_err(|e| invalid_value(def, &e.0))?;
    let timeuuid = CqlType::Native(NativeType::Timeuuid);
    // Mirrored paths decrease as they are taken: the last element takes the first.
    let mut cells = Vec::with_capacity(elements.len());
    for (_, element) in elements.into_iter().rev() {
        let id = crate::coordinator::functions::timeuuid_bytes(prepend_timeuuid_ticks());
        cells.push(ColumnWrite::Cell {
            column: def.name.clone(),
            path: Some(path(&timeuuid, &id, def)?),
            cell: p.cell(element),
        });
    }
    cells.reverse();
    out.extend(cells);
    Ok(())
}

/// Whether `op` needs the list as stored: `l[i] = v`, `DELETE l[i]`, `l = l - v`.
pub(super) fn reads_list(op: &Op) -> bool {
    matches!(op.column().ty, CqlType::List(_))
        && matches!(
            op,
            Op::SetElement(..) | Op::DeleteElement(..) | Op::Remove(_, Val::Bytes(_))
        )
}

/// Adds to `updates` the writes of every list operation of `write` that needs the stored
/// list, reading it for each partition and row the statement touches.
pub(super) fn resolve(write: &Write, p: &Params, updates: &mut [PartitionUpdate]) -> Result<()> {
    for op in write.ops.iter().filter(|op| reads_list(op)) {
        let def = op.column();
        for update in updates.iter_mut() {
            if def.kind == ColumnKind::Static {
                let elements =
                    p.input
                        .lists
                        .elements(write.table, &update.partition, None, &def.name)?;
                update
                    .static_columns
                    .extend(element_writes(op, &elements, p)?);
                continue;
            }
            for row in &mut update.rows {
                let elements = p.input.lists.elements(
                    write.table,
                    &update.partition,
                    Some(&row.clustering),
                    &def.name,
                )?;
                row.columns.extend(element_writes(op, &elements, p)?);
            }
        }
    }
    Ok(())
}

/// The cells one operation writes given the list's live `elements` (path, value).
fn element_writes(op: &Op, elements: &[(Bytes, Bytes)], p: &Params) -> Result<Vec<ColumnWrite>> {
    let def = op.column();
    let at = |path: &Bytes, value: Option<&Bytes>| -> Result<ColumnWrite> {
        let cell = match value {
            Some(v) => {
                let CqlType::List(element_ty) = &def.ty else {
                    return Err(invalid_value(def, "not a list"));
                };
                p.cell(checked(&p.resolve(element_ty), v, def)?)
            }
            None => p.tombstone(),
        };
        Ok(ColumnWrite::Cell {
            column: def.name.clone(),
            path: Some(path.clone()),
            cell,
        })
    };
    match op {
        Op::SetElement(_, index, value) => {
            let index = list_index(index)?;
            let value = match value {
                Val::Unset => return Err(Error::invalid("Invalid unset value for list element")),
                Val::Null => None,
                Val::Bytes(b) => Some(b),
            };
            if elements.is_empty() {
                return Err(Error::invalid(
                    "Attempted to set an element on a list which is null",
                ));
            }
            let (path, _) = element(elements, index)?;
            Ok(vec![at(path, value)?])
        }
        Op::DeleteElement(_, index) => {
            let index = list_index(index)?;
            if elements.is_empty() {
                return Err(Error::invalid(
                    "Attempted to delete an element from a list which is null",
                ));
            }
            let (path, _) = element(elements, index)?;
            Ok(vec![at(path, None)?])
        }
        Op::Remove(_, Val::Bytes(values)) => {
            let ty = p.resolve(&def.ty);
            let values = checked(&ty, values, def)?;
            let removed = split_collection(&ty, &values).map_err(|e| invalid_value(def, &e.0))?;
            elements
                .iter()
                .filter(|(_, value)| removed.iter().any(|(_, r)| r == value))
                .map(|(path, _)| at(path, None))
                .collect()
        }
        _ => Ok(Vec::new()),
    }
}

/// The bound index of `l[i]`.
fn list_index(index: &Val) -> Result<i32> {
    match index {
        Val::Null => Err(Error::invalid("Invalid null value for list index")),
        Val::Unset => Err(Error::invalid("Invalid unset value for list index")),
        Val::Bytes(b) => <[u8; 4]>::try_from(&b[..])
            .map(i32::from_be_bytes)
            .map_err(|_| Error::invalid("Invalid list index: expected a 4-byte int")),
    }
}

/// The `index`-th element, or Cassandra's out-of-bound error.
fn element(elements: &[(Bytes, Bytes)], index: i32) -> Result<&(Bytes, Bytes)> {
    usize::try_from(index)
        .ok()
        .and_then(|i| elements.get(i))
        .ok_or_else(|| {
            Error::invalid(format!(
                "List index {index} out of bound, list has size {}",
                elements.len()
            ))
        })
}
