//! The walk: a DML statement read in bind-marker order into a [`Write`] — key restrictions
//! and column operations with their values resolved.

use super::terms::{Markers, Resolver, Val};
use crate::cql::ast::{
    Assignment, ColumnTarget, Delete, Insert, InsertValues, Operator, Relation, Statement, Term,
    Update, Using,
};
use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};
use crate::schema::{Catalog, ColumnDef, ColumnKind, TableDef};
use crate::storage::comparable::SliceOp;

/// Which statement a write came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Insert,
    Update,
    Delete,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Insert => "INSERT",
            Kind::Update => "UPDATE",
            Kind::Delete => "DELETE",
        }
    }
}

/// `USING TTL` and `USING TIMESTAMP` values, when given.
#[derive(Debug, Default)]
pub(super) struct BoundUsing {
    pub ttl: Option<Val>,
    pub timestamp: Option<Val>,
}

/// The values a primary key column is restricted to.
#[derive(Debug)]
pub(super) enum KeyValues {
    /// `c = v`.
    Eq(Val),
    /// `c IN (v1, v2)`.
    In(Vec<Val>),
    /// `c IN ?`: one serialized list.
    InList(Val),
    /// `c < v` and friends (a range deletion): one or two bounds, at most one per side.
    Slice(Vec<(SliceOp, Val)>),
}

/// One restriction on a primary key column.
#[derive(Debug)]
pub(super) struct KeyRestriction<'t> {
    pub column: &'t ColumnDef,
    pub values: KeyValues,
}

/// One column operation.
#[derive(Debug)]
pub(super) enum Op<'t> {
    /// `c = v` (and every INSERT value): the whole value.
    Set(&'t ColumnDef, Val),
    /// `c = c + v`: set/map union, list append.
    Add(&'t ColumnDef, Val),
    /// `c = c - v`: set/map element removal (a map takes a set of keys), list removal of
    /// every element equal to one in `v`.
    Remove(&'t ColumnDef, Val),
    /// `l = v + l`: list prepend.
    Prepend(&'t ColumnDef, Val),
    /// `m[k] = v`, `l[i] = v`.
    SetElement(&'t ColumnDef, Val, Val),
    /// `u.f = v` of a non-frozen user type: the field's position and value.
    SetField(&'t ColumnDef, usize, Val),
    /// `DELETE c`.
    Delete(&'t ColumnDef),
    /// `DELETE m[k]` / `DELETE s[e]` / `DELETE l[i]`.
    DeleteElement(&'t ColumnDef, Val),
    /// `DELETE u.f`.
    DeleteField(&'t ColumnDef, usize),
}

impl Op<'_> {
    pub fn column(&self) -> &ColumnDef {
        match self {
            Op::Set(c, _)
            | Op::Add(c, _)
            | Op::Remove(c, _)
            | Op::Prepend(c, _)
            | Op::SetElement(c, _, _)
            | Op::SetField(c, _, _)
            | Op::Delete(c)
            | Op::DeleteElement(c, _)
            | Op::DeleteField(c, _) => c,
        }
    }
}

/// A statement with every term resolved.
#[derive(Debug)]
pub(super) struct Write<'t> {
    pub table: &'t TableDef,
    pub kind: Kind,
    pub using: BoundUsing,
    pub keys: Vec<KeyRestriction<'t>>,
    pub ops: Vec<Op<'t>>,
}

/// Resolves a USING clause. The AST keeps no order between TTL and TIMESTAMP, so markers
/// are taken TTL first, the order Cassandra's documentation writes them in.
pub(super) fn using_terms(
    using: &Using,
    catalog: &Catalog,
    keyspace: &str,
    markers: &mut dyn Markers,
) -> Result<BoundUsing> {
    let mut r = Resolver {
        catalog,
        keyspace,
        markers,
    };
    let int = CqlType::Native(NativeType::Int);
    let bigint = CqlType::Native(NativeType::Bigint);
    let mut ttl = None;
    let mut timestamp = None;
    // Markers are consumed in the order the clauses were written.
    for timestamp_turn in [using.timestamp_first, !using.timestamp_first] {
        if timestamp_turn {
            timestamp = using
                .timestamp
                .as_ref()
                .map(|t| r.term(t, "[timestamp]", &bigint, None))
                .transpose()?;
        } else {
            ttl = using
                .ttl
                .as_ref()
                .map(|t| r.term(t, "[ttl]", &int, None))
                .transpose()?;
        }
    }
    Ok(BoundUsing { ttl, timestamp })
}

/// Walks an INSERT, UPDATE or DELETE on `table`.
pub(super) fn walk<'t>(
    statement: &Statement,
    table: &'t TableDef,
    catalog: &Catalog,
    markers: &mut dyn Markers,
) -> Result<Write<'t>> {
    let mut walker = Walker {
        table,
        r: Resolver {
            catalog,
            keyspace: &table.keyspace,
            markers,
        },
    };
    match statement {
        Statement::Insert(s) => walker.insert(s),
        Statement::Update(s) => walker.update(s),
        Statement::Delete(s) => walker.delete(s),
        _ => Err(Error::invalid(
            "Only INSERT, UPDATE and DELETE statements write a table",
        )),
    }
}

struct Walker<'t, 'a, 'm> {
    table: &'t TableDef,
    r: Resolver<'a, 'm>,
}

impl<'t> Walker<'t, '_, '_> {
    fn write(&self, kind: Kind) -> Write<'t> {
        Write {
            table: self.table,
            kind,
            using: BoundUsing::default(),
            keys: Vec::new(),
            ops: Vec::new(),
        }
    }

    fn column(&self, name: &str) -> Result<&'t ColumnDef> {
        self.table
            .column(name)
            .ok_or_else(|| Error::invalid(format!("Undefined column name {name}")))
    }

    fn using(&mut self, using: &Using) -> Result<BoundUsing> {
        using_terms(using, self.r.catalog, self.r.keyspace, &mut *self.r.markers)
    }

    fn insert(&mut self, insert: &Insert) -> Result<Write<'t>> {
        let InsertValues::Values { columns, values } = &insert.values else {
            return Err(Error::not_supported("INSERT JSON", None));
        };
        if columns.is_empty() {
            return Err(Error::invalid("No columns provided to INSERT"));
        }
        if columns.len() != values.len() {
            return Err(Error::invalid("Unmatched column names/values"));
        }
        if columns
            .iter()
            .enumerate()
            .any(|(i, c)| columns[..i].contains(c))
        {
            return Err(Error::invalid("The column names contains duplicates"));
        }
        let mut write = self.write(Kind::Insert);
        for (name, term) in columns.iter().zip(values) {
            let def = self.column(name)?;
            if def.kind.is_primary_key() {
                let value = self.r.term(term, &def.name, &def.ty, pk_position(def))?;
                write.keys.push(KeyRestriction {
                    column: def,
                    values: KeyValues::Eq(value),
                });
            } else {
                let value = self.r.term(term, &def.name, &def.ty, None)?;
                write.ops.push(Op::Set(def, value));
            }
        }
        write.using = self.using(&insert.using)?;
        Ok(write)
    }

    fn update(&mut self, update: &Update) -> Result<Write<'t>> {
        let mut write = self.write(Kind::Update);
        write.using = self.using(&update.using)?;
        for assignment in &update.assignments {
            let op = self.assignment(assignment)?;
            write.ops.push(op);
        }
        write.keys = self.relations(&update.where_clause, Kind::Update)?;
        Ok(write)
    }

    fn delete(&mut self, delete: &Delete) -> Result<Write<'t>> {
        let mut write = self.write(Kind::Delete);
        for target in &delete.targets {
            let op = self.deletion(target)?;
            write.ops.push(op);
        }
        if delete.using.ttl.is_some() {
            return Err(Error::invalid(
                "TTL attribute is not allowed for DELETE statements",
            ));
        }
        write.using = self.using(&delete.using)?;
        write.keys = self.relations(&delete.where_clause, Kind::Delete)?;
        Ok(write)
    }

    /// The column an assignment sets, refusing primary key columns.
    fn set_column(&self, name: &str) -> Result<&'t ColumnDef> {
        let def = self.column(name)?;
        if def.kind.is_primary_key() {
            return Err(Error::invalid(format!(
                "PRIMARY KEY part {name} found in SET part"
            )));
        }
        Ok(def)
    }

    fn assignment(&mut self, assignment: &Assignment) -> Result<Op<'t>> {
        match assignment {
            Assignment::Set {
                target: ColumnTarget::Column(c),
                value,
            } => {
                let def = self.set_column(c)?;
                Ok(Op::Set(def, self.r.term(value, c, &def.ty, None)?))
            }
            Assignment::Set {
                target: ColumnTarget::Element { column, key },
                value,
            } => {
                let def = self.set_column(column)?;
                let (key_name, key_ty, value_ty) = match &def.ty {
                    CqlType::Map(k, v) => (format!("key({column})"), (**k).clone(), v),
                    CqlType::List(e) => (format!("idx({column})"), list_index(), e),
                    _ => return Err(element_refused(def, "SET")),
                };
                let key = self.r.term(key, &key_name, &key_ty, None)?;
                let value = self
                    .r
                    .term(value, &format!("value({column})"), value_ty, None)?;
                Ok(Op::SetElement(def, key, value))
            }
            Assignment::Set {
                target: ColumnTarget::Field { column, field },
                value,
            } => {
                let def = self.set_column(column)?;
                let (index, ty) = self.field(def, field)?;
                let value = self
                    .r
                    .term(value, &format!("{column}.{field}"), &ty, None)?;
                Ok(Op::SetField(def, index, value))
            }
            Assignment::Add { column, value } => {
                let def = self.set_column(column)?;
                if !matches!(
                    def.ty,
                    CqlType::List(_) | CqlType::Set(_) | CqlType::Map(..)
                ) {
                    return Err(invalid_op(def, &format!("{column} = {column} + ?")));
                }
                Ok(Op::Add(def, self.r.term(value, column, &def.ty, None)?))
            }
            Assignment::Subtract { column, value } => {
                let def = self.set_column(column)?;
                let ty = match &def.ty {
                    CqlType::Set(_) | CqlType::List(_) => def.ty.clone(),
                    CqlType::Map(k, _) => CqlType::Set(k.clone()),
                    _ => return Err(invalid_op(def, &format!("{column} = {column} - ?"))),
                };
                Ok(Op::Remove(def, self.r.term(value, column, &ty, None)?))
            }
            Assignment::Prepend { column, value } => {
                let def = self.set_column(column)?;
                if !matches!(def.ty, CqlType::List(_)) {
                    return Err(invalid_op(def, &format!("{column} = ? + {column}")));
                }
                Ok(Op::Prepend(def, self.r.term(value, column, &def.ty, None)?))
            }
        }
    }

    fn deletion(&mut self, target: &ColumnTarget) -> Result<Op<'t>> {
        let column = match target {
            ColumnTarget::Column(c)
            | ColumnTarget::Element { column: c, .. }
            | ColumnTarget::Field { column: c, .. } => c,
        };
        let def = self.column(column)?;
        if def.kind.is_primary_key() {
            return Err(Error::invalid(format!(
                "Invalid identifier {column} for deletion (should not be a PRIMARY KEY part)"
            )));
        }
        match target {
            ColumnTarget::Column(_) => Ok(Op::Delete(def)),
            ColumnTarget::Element { key, .. } => {
                let (name, ty) = match &def.ty {
                    CqlType::Map(k, _) => (format!("key({column})"), (**k).clone()),
                    CqlType::Set(e) => (format!("value({column})"), (**e).clone()),
                    CqlType::List(_) => (format!("idx({column})"), list_index()),
                    _ => return Err(element_refused(def, "DELETE")),
                };
                Ok(Op::DeleteElement(def, self.r.term(key, &name, &ty, None)?))
            }
            ColumnTarget::Field { field, .. } => {
                let (index, _) = self.field(def, field)?;
                Ok(Op::DeleteField(def, index))
            }
        }
    }

    /// A field of a non-frozen user type column: its position and declared type.
    fn field(&self, def: &ColumnDef, field: &str) -> Result<(usize, CqlType)> {
        let udt = match &def.ty {
            CqlType::UserType { .. } => self.r.catalog.resolve_udt(&self.table.keyspace, &def.ty),
            _ => None,
        };
        let Some(udt) = udt else {
            return Err(Error::invalid(format!(
                "Invalid operation ({}.{field}) for a column that is not a non-frozen user type: {}",
                def.name, def.name
            )));
        };
        udt.fields
            .iter()
            .position(|(name, _)| name == field)
            .and_then(|i| udt.fields.get(i).map(|(_, ty)| (i, ty.clone())))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "UDT column {} does not have a field named {field}",
                    def.name
                ))
            })
    }

    fn relations(&mut self, relations: &[Relation], kind: Kind) -> Result<Vec<KeyRestriction<'t>>> {
        let mut keys: Vec<KeyRestriction<'t>> = Vec::new();
        for relation in relations {
            let (column, op, value) = match relation {
                Relation::Column { column, op, value } => (column, *op, value),
                Relation::Token { .. } => {
                    return Err(Error::invalid(format!(
                        "The token function cannot be used in WHERE clauses for {} statements",
                        kind.name()
                    )))
                }
                Relation::MultiColumn { .. } => {
                    return Err(Error::not_supported_plural(
                        "Multi-column relations in UPDATE and DELETE",
                        None,
                    ))
                }
            };
            let def = self.column(column)?;
            if !def.kind.is_primary_key() {
                return Err(Error::invalid(format!(
                    "Non PRIMARY KEY columns found in where clause: {column}"
                )));
            }
            let values = self.relation_values(def, op, value)?;
            match keys.iter_mut().find(|k| k.column.name == def.name) {
                Some(existing) => add_slice(existing, values)?,
                None => keys.push(KeyRestriction {
                    column: def,
                    values,
                }),
            }
        }
        Ok(keys)
    }

    fn relation_values(
        &mut self,
        def: &ColumnDef,
        op: Operator,
        value: &Term,
    ) -> Result<KeyValues> {
        let name = &def.name;
        match (op, value) {
            (Operator::Eq, term) => Ok(KeyValues::Eq(self.r.term(
                term,
                name,
                &def.ty,
                pk_position(def),
            )?)),
            (Operator::In, Term::BindMarker(_)) => {
                let list = CqlType::List(Box::new(def.ty.clone()));
                Ok(KeyValues::InList(self.r.term(value, &format!("in({name})"), &list, None)?))
            }
            (Operator::In, Term::Tuple(items) | Term::List(items)) => items
                .iter()
                .map(|t| self.r.term(t, name, &def.ty, None))
                .collect::<Result<_>>()
                .map(KeyValues::In),
            (Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge, term)
                if def.kind == ColumnKind::Clustering =>
            {
                let op = match op {
                    Operator::Lt => SliceOp::Lt,
                    Operator::Le => SliceOp::Le,
                    Operator::Gt => SliceOp::Gt,
                    _ => SliceOp::Ge,
                };
                Ok(KeyValues::Slice(vec![(op, self.r.term(term, name, &def.ty, None)?)]))
            }
            (Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge, _) => Err(Error::invalid(
                "Only EQ and IN relation are supported on the partition key (unless you use the token() function)",
            )),
            _ => Err(Error::invalid(format!(
                "Unsupported restriction on column {name} in a modification statement: only =, IN and (for DELETE) slices on clustering columns are allowed"
            ))),
        }
    }
}

/// A second restriction on a column already restricted: only a slice bound on the side the
/// first slice left open, as Cassandra allows (`c > ? AND c <= ?`).
fn add_slice(existing: &mut KeyRestriction<'_>, values: KeyValues) -> Result<()> {
    let name = &existing.column.name;
    let (KeyValues::Slice(bounds), KeyValues::Slice(more)) = (&mut existing.values, values) else {
        return Err(Error::invalid(format!(
            "{name} cannot be restricted by more than one relation if it includes an Equal"
        )));
    };
    let lower = |op: SliceOp| matches!(op, SliceOp::Gt | SliceOp::Ge);
    for (op, value) in more {
        if bounds.iter().any(|(o, _)| lower(*o) == lower(op)) {
            let side = if lower(op) { "start" } else { "end" };
            return Err(Error::invalid(format!(
                "More than one restriction was found for the {side} bound on {name}"
            )));
        }
        bounds.push((op, value));
    }
    Ok(())
}

/// The key position of a partition key column (for `pk_index`).
fn pk_position(def: &ColumnDef) -> Option<usize> {
    (def.kind == ColumnKind::PartitionKey)
        .then(|| usize::try_from(def.position).ok())
        .flatten()
}

fn invalid_op(def: &ColumnDef, op: &str) -> Error {
    let what = match &def.ty {
        CqlType::Frozen(_) => "frozen collection",
        _ => "non counter",
    };
    Error::invalid(format!(
        "Invalid operation ({op}) for {what} column {}",
        def.name
    ))
}

fn element_refused(def: &ColumnDef, statement: &str) -> Error {
    Error::invalid(format!(
        "Invalid operation ({}[?]) for a column that is not a non-frozen map{}: {}",
        def.name,
        if statement == "DELETE" { " or set" } else { "" },
        def.name
    ))
}

/// A list index: an `int`, as Cassandra types `idx(l)`.
fn list_index() -> CqlType {
    CqlType::Native(NativeType::Int)
}

/// What `CONTAINS` (an element, or a map's value) or `CONTAINS KEY` (a map's key) compares
/// of a collection column: the receiver's name and type, refusing other columns as
/// Cassandra does.
fn contained(def: &ColumnDef, op: Operator) -> Result<(String, CqlType)> {
    let name = &def.name;
    match (def.ty.unfrozen(), op) {
        (CqlType::Map(k, _), Operator::ContainsKey) => Ok((format!("key({name})"), (**k).clone())),
        (_, Operator::ContainsKey) => Err(Error::invalid(format!(
            "Cannot use CONTAINS KEY on non-map column {name}"
        ))),
        (CqlType::List(e) | CqlType::Set(e) | CqlType::Map(_, e), _) => {
            Ok((format!("value({name})"), (**e).clone()))
        }
        _ => Err(Error::invalid(format!(
            "Cannot use CONTAINS on non-collection column {name}"
        ))),
    }
}

/// One `IF` condition with its terms resolved (lightweight transactions, `lwt.rs`).
#[derive(Debug)]
pub(super) struct ConditionTerms<'t> {
    /// The column compared.
    pub column: &'t ColumnDef,
    /// Which part of the column is compared.
    pub part: ConditionPart,
    pub op: Operator,
    /// The compared values: one, or each of `IN (...)`.
    pub values: Vec<Val>,
    /// `IN ?`: `values` holds one serialized list.
    pub in_list: bool,
}

/// What a condition compares of its column.
#[derive(Debug)]
pub(super) enum ConditionPart {
    Whole,
    /// `l[i]` or `m[k]`: the index or key.
    Element(Val),
    /// `u.f`: the field's position.
    Field(usize),
}

/// Resolves an `IF` clause's conditions. The clause ends every statement's text, so its
/// markers follow the statement's own, in the order written.
pub(super) fn condition_terms<'t>(
    conditions: &[crate::cql::ast::Condition],
    table: &'t TableDef,
    catalog: &Catalog,
    markers: &mut dyn Markers,
) -> Result<Vec<ConditionTerms<'t>>> {
    let mut walker = Walker {
        table,
        r: Resolver {
            catalog,
            keyspace: &table.keyspace,
            markers,
        },
    };
    conditions.iter().map(|c| walker.condition(c)).collect()
}

impl<'t> Walker<'t, '_, '_> {
    fn condition(&mut self, condition: &crate::cql::ast::Condition) -> Result<ConditionTerms<'t>> {
        let name = match &condition.target {
            ColumnTarget::Column(c)
            | ColumnTarget::Element { column: c, .. }
            | ColumnTarget::Field { column: c, .. } => c,
        };
        let def = self.column(name)?;
        if def.kind.is_primary_key() {
            return Err(Error::invalid(format!(
                "PRIMARY KEY column '{name}' cannot have IF conditions"
            )));
        }
        let (part, label, ty) = match &condition.target {
            ColumnTarget::Column(_)
                if matches!(condition.op, Operator::Contains | Operator::ContainsKey) =>
            {
                let (label, ty) = contained(def, condition.op)?;
                (ConditionPart::Whole, label, ty)
            }
            ColumnTarget::Column(_) => (ConditionPart::Whole, name.clone(), def.ty.clone()),
            ColumnTarget::Element { key, .. } => {
                let (key_label, key_ty, value_ty) = match def.ty.unfrozen() {
                    CqlType::List(e) => (
                        format!("idx({name})"),
                        CqlType::Native(NativeType::Int),
                        (**e).clone(),
                    ),
                    CqlType::Map(k, v) => (format!("key({name})"), (**k).clone(), (**v).clone()),
                    CqlType::Set(_) => {
                        return Err(Error::invalid(format!(
                            "Invalid element access syntax for set column {name}"
                        )))
                    }
                    _ => {
                        return Err(Error::invalid(format!(
                            "Invalid element access syntax for non-collection column {name}"
                        )))
                    }
                };
                let key = self.r.term(key, &key_label, &key_ty, None)?;
                (
                    ConditionPart::Element(key),
                    format!("value({name})"),
                    value_ty,
                )
            }
            ColumnTarget::Field { field, .. } => {
                let (index, ty) = self.field(def, field)?;
                (ConditionPart::Field(index), format!("{name}.{field}"), ty)
            }
        };
        let (values, in_list) = self.condition_values(condition, &label, &ty)?;
        Ok(ConditionTerms {
            column: def,
            part,
            op: condition.op,
            values,
            in_list,
        })
    }

    fn condition_values(
        &mut self,
        condition: &crate::cql::ast::Condition,
        label: &str,
        ty: &CqlType,
    ) -> Result<(Vec<Val>, bool)> {
        let op = condition.op;
        match (op, &condition.value) {
            (Operator::In, Term::BindMarker(_)) => {
                let list = CqlType::List(Box::new(ty.clone()));
                let name = format!("in({label})");
                Ok((
                    vec![self.r.term(&condition.value, &name, &list, None)?],
                    true,
                ))
            }
            (Operator::In, Term::Tuple(items) | Term::List(items)) => items
                .iter()
                .map(|t| self.r.term(t, label, ty, None))
                .collect::<Result<_>>()
                .map(|values| (values, false)),
            (Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge, _)
                if matches!(ty.unfrozen(), CqlType::Native(NativeType::Duration)) =>
            {
                Err(Error::invalid(
                    "Slice conditions are not supported on durations",
                ))
            }
            (
                Operator::Eq
                | Operator::Ne
                | Operator::Lt
                | Operator::Le
                | Operator::Gt
                | Operator::Ge
                | Operator::Contains
                | Operator::ContainsKey,
                term,
            ) => Ok((vec![self.r.term(term, label, ty, None)?], false)),
            // The parser takes no other operator in a condition.
            (op, _) => Err(Error::invalid(format!(
                "Unsupported operator {} in an IF condition",
                crate::coordinator::restrict::operator_text(op)
            ))),
        }
    }
}
