//! Bind markers: naming and typing them for PREPARE, and resolving them (with literals) to
//! serialized values for execution. One walk over the statement serves both, so the order
//! of markers a driver sees in the prepared metadata is the order values are consumed in.

use bytes::Bytes;

use crate::cql::ast::{Operator, Relation, Select, Term};
use crate::cql::types::{CqlType, NativeType};
use crate::cql::value::CqlValue;
use crate::error::{Error, Result};
use crate::protocol::Value;
use crate::schema::TableDef;

/// A bind marker's name and type as prepared metadata announces it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Slot {
    pub name: String,
    pub ty: CqlType,
    /// The partition-key column (by key position) this marker sets with `=`, if any.
    pub partition_key: Option<usize>,
}

/// A WHERE relation with its values resolved to serialized bytes.
#[derive(Debug, Clone)]
pub(super) enum Bound {
    /// `column op value(s)`: one value, or several for IN.
    Column {
        index: usize,
        op: Operator,
        values: Vec<Option<Bytes>>,
    },
    /// `token(partition key) op value`.
    Token { op: Operator, value: i64 },
}

/// The executable form of a SELECT's markers and literals.
#[derive(Debug, Clone, Default)]
pub(super) struct BoundSelect {
    pub relations: Vec<Bound>,
    pub limit: Option<usize>,
    pub per_partition_limit: Option<usize>,
}

/// The markers of a SELECT in text order.
pub(super) fn select_slots(select: &Select, table: &TableDef) -> Result<Vec<Slot>> {
    let mut slots = Vec::new();
    for relation in &select.where_clause {
        relation_slots(relation, table, &mut slots)?;
    }
    for (term, name) in limit_terms(select) {
        if let Term::BindMarker(marker) = term {
            let name = marker.clone().unwrap_or_else(|| name.to_owned());
            slots.push(Slot {
                name,
                ty: CqlType::Native(NativeType::Int),
                partition_key: None,
            });
        }
    }
    Ok(slots)
}

fn limit_terms(select: &Select) -> impl Iterator<Item = (&Term, &'static str)> {
    let ppl = select
        .per_partition_limit
        .as_ref()
        .map(|t| (t, "[per_partition_limit]"));
    ppl.into_iter()
        .chain(select.limit.as_ref().map(|t| (t, "[limit]")))
}

fn relation_slots(relation: &Relation, table: &TableDef, slots: &mut Vec<Slot>) -> Result<()> {
    match relation {
        Relation::Column { column, op, value } => {
            let def = table.column(column).ok_or_else(|| undefined(column))?;
            let element = element_type(&def.ty, *op);
            let key_position = table
                .partition_key()
                .iter()
                .position(|c| c.name == def.name);
            let mut push = |name: &Option<String>, ty: CqlType, pk: Option<usize>| {
                let name = name.clone().unwrap_or_else(|| def.name.clone());
                slots.push(Slot {
                    name,
                    ty,
                    partition_key: pk,
                });
            };
            match (op, value) {
                (Operator::In, Term::BindMarker(m)) => {
                    let name = Some(m.clone().unwrap_or_else(|| format!("in({})", def.name)));
                    push(&name, CqlType::List(Box::new(element)), None);
                }
                (Operator::In, Term::Tuple(items) | Term::List(items)) => {
                    for item in items {
                        if let Term::BindMarker(m) = item {
                            push(m, element.clone(), None);
                        }
                    }
                }
                (op, Term::BindMarker(m)) => {
                    let pk = if *op == Operator::Eq {
                        key_position
                    } else {
                        None
                    };
                    push(m, element, pk);
                }
                _ => {}
            }
        }
        Relation::Token {
            value: Term::BindMarker(m),
            ..
        } => slots.push(Slot {
            name: m
                .clone()
                .unwrap_or_else(|| "partition key token".to_owned()),
            ty: CqlType::Native(NativeType::Bigint),
            partition_key: None,
        }),
        Relation::Token { .. } => {}
        Relation::MultiColumn { .. } => return Err(multi_column_unsupported()),
    }
    Ok(())
}

/// The type a relation's value has: the column's, or its element's for CONTAINS.
fn element_type(ty: &CqlType, op: Operator) -> CqlType {
    let base = match ty {
        CqlType::Frozen(inner) => inner.as_ref(),
        other => other,
    };
    match (op, base) {
        (Operator::Contains, CqlType::List(e) | CqlType::Set(e)) => (**e).clone(),
        (Operator::Contains, CqlType::Map(_, v)) => (**v).clone(),
        (Operator::ContainsKey, CqlType::Map(k, _)) => (**k).clone(),
        _ => ty.clone(),
    }
}

/// Resolves every marker and literal of `select` against `values` (positional, already
/// reordered by name when the client sent names).
pub(super) fn bind_select(
    select: &Select,
    table: &TableDef,
    values: &[Value],
) -> Result<BoundSelect> {
    let mut cursor = values.iter();
    let mut bound = BoundSelect::default();
    for relation in &select.where_clause {
        bound
            .relations
            .push(bind_relation(relation, table, &mut cursor)?);
    }
    if let Some(term) = &select.per_partition_limit {
        bound.per_partition_limit = Some(bind_limit(term, &mut cursor)?);
    }
    if let Some(term) = &select.limit {
        bound.limit = Some(bind_limit(term, &mut cursor)?);
    }
    if cursor.next().is_some() {
        return Err(Error::invalid("There were more values than bind markers"));
    }
    Ok(bound)
}

type Cursor<'a> = std::slice::Iter<'a, Value>;

fn bind_relation(relation: &Relation, table: &TableDef, cursor: &mut Cursor) -> Result<Bound> {
    match relation {
        Relation::Column { column, op, value } => {
            let index = table
                .columns
                .iter()
                .position(|c| &c.name == column)
                .ok_or_else(|| undefined(column))?;
            let ty = element_type(&table.columns[index].ty, *op);
            let values = match (op, value) {
                (Operator::In, Term::BindMarker(_)) => split_list(next_value(cursor, column)?)?,
                (Operator::In, Term::Tuple(items) | Term::List(items)) => items
                    .iter()
                    .map(|t| term_bytes(t, &ty, column, cursor))
                    .collect::<Result<_>>()?,
                (_, term) => vec![term_bytes(term, &ty, column, cursor)?],
            };
            Ok(Bound::Column {
                index,
                op: *op,
                values,
            })
        }
        Relation::Token { op, value, .. } => {
            let ty = CqlType::Native(NativeType::Bigint);
            let bytes = term_bytes(value, &ty, "partition key token", cursor)?
                .ok_or_else(|| Error::invalid("Invalid null value for partition key token"))?;
            let value = <[u8; 8]>::try_from(bytes.as_ref())
                .map(i64::from_be_bytes)
                .map_err(|_| {
                    Error::invalid("Invalid value for partition key token: expected 8 bytes")
                })?;
            Ok(Bound::Token { op: *op, value })
        }
        Relation::MultiColumn { .. } => Err(multi_column_unsupported()),
    }
}

fn bind_limit(term: &Term, cursor: &mut Cursor) -> Result<usize> {
    let bytes = term_bytes(term, &CqlType::Native(NativeType::Int), "[limit]", cursor)?
        .ok_or_else(|| Error::invalid("Invalid null value of limit"))?;
    let limit = <[u8; 4]>::try_from(bytes.as_ref())
        .map(i32::from_be_bytes)
        .map_err(|_| Error::invalid("Invalid limit value: expected a 4-byte int"))?;
    if limit <= 0 {
        return Err(Error::invalid("LIMIT must be strictly positive"));
    }
    Ok(limit as usize)
}

/// A term's serialized value: the next bound value for a marker, or the literal converted
/// to `ty`.
fn term_bytes(
    term: &Term,
    ty: &CqlType,
    column: &str,
    cursor: &mut Cursor,
) -> Result<Option<Bytes>> {
    match term {
        Term::BindMarker(_) => next_value(cursor, column),
        Term::Null => Ok(None),
        literal => CqlValue::from_literal(literal, ty)
            .map(|v| Some(v.to_bytes()))
            .map_err(|e| Error::invalid(format!("{e} (column {column})"))),
    }
}

fn next_value(cursor: &mut Cursor, column: &str) -> Result<Option<Bytes>> {
    match cursor.next() {
        Some(Value::Bytes(b)) => Ok(Some(b.clone())),
        Some(Value::Null) => Ok(None),
        Some(Value::Unset) => Err(Error::invalid(format!(
            "Invalid unset value for column {column}"
        ))),
        None => Err(Error::invalid("There were fewer values than bind markers")),
    }
}

/// Splits a serialized list (`IN ?`) into its elements.
fn split_list(bytes: Option<Bytes>) -> Result<Vec<Option<Bytes>>> {
    let bad = || Error::invalid("Invalid list value for IN");
    let bytes = bytes.ok_or_else(|| Error::invalid("Invalid null value for IN restriction"))?;
    let mut rest = bytes.clone();
    let count = take_i32(&mut rest).ok_or_else(bad)?;
    if count < 0 || count as usize > rest.len() / 4 + 1 {
        return Err(bad());
    }
    (0..count)
        .map(|_| {
            let len = take_i32(&mut rest).ok_or_else(bad)?;
            if len < 0 {
                return Ok(None);
            }
            let len = len as usize;
            if len > rest.len() {
                return Err(bad());
            }
            Ok(Some(rest.split_to(len)))
        })
        .collect()
}

fn take_i32(bytes: &mut Bytes) -> Option<i32> {
    let head = bytes.get(..4)?;
    let value = i32::from_be_bytes(head.try_into().ok()?);
    let _ = bytes.split_to(4);
    Some(value)
}

fn undefined(column: &str) -> Error {
    Error::invalid(format!("Undefined column name {column}"))
}

fn multi_column_unsupported() -> Error {
    Error::invalid("Multi-column relations are not supported yet by this ringcache build")
}
