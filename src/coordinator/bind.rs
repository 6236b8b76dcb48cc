//! Bind markers: naming and typing them for PREPARE, and resolving them (with literals) to
//! serialized values for execution. One walk over the statement serves both, so the order
//! of markers a driver sees in the prepared metadata is the order values are consumed in.

use bytes::Bytes;

use crate::cql::ast::{Operator, Relation, Select, Term};
use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};
use crate::protocol::Value;
use crate::schema::{Catalog, TableDef};

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

/// A multi-column relation `(c1, c2) op ...` with its values resolved. Kept apart from
/// [`Bound`] so code matching on single-column relations is unaffected by it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BoundMulti {
    /// The relation's index in the statement's WHERE clause.
    pub position: usize,
    /// The columns, as indexes into `TableDef::columns`, in the relation's order.
    pub indexes: Vec<usize>,
    /// `=`, `IN` or a slice operator.
    pub op: Operator,
    /// One tuple for `=` and slices, one per element for IN; each holds one value (None
    /// for null) per column.
    pub values: Vec<Vec<Option<Bytes>>>,
}

/// Where a WHERE relation's bound form lives in a [`BoundSelect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BoundIndex {
    /// `BoundSelect::relations[i]`.
    Single(usize),
    /// `BoundSelect::multi[i]`.
    Multi(usize),
}

/// A WHERE relation's bound form, by reference.
#[derive(Debug, Clone, Copy)]
pub(super) enum BoundRelation<'a> {
    /// A single-column or token relation.
    Single(&'a Bound),
    /// A multi-column relation.
    Multi(&'a BoundMulti),
}

/// The executable form of a SELECT's markers and literals.
#[derive(Debug, Clone, Default)]
pub(super) struct BoundSelect {
    /// Single-column and token relations, in WHERE order (multi-column ones are skipped,
    /// so an index here is not a WHERE position: use [`BoundSelect::relation_at`]).
    pub relations: Vec<Bound>,
    /// Multi-column relations, in WHERE order.
    pub multi: Vec<BoundMulti>,
    /// For each WHERE relation, where its bound form is.
    pub positions: Vec<BoundIndex>,
    pub limit: Option<usize>,
    pub per_partition_limit: Option<usize>,
}

impl BoundSelect {
    /// The bound form of the WHERE relation at `position`.
    pub(super) fn relation_at(&self, position: usize) -> Option<BoundRelation<'_>> {
        match *self.positions.get(position)? {
            BoundIndex::Single(i) => self.relations.get(i).map(BoundRelation::Single),
            BoundIndex::Multi(i) => self.multi.get(i).map(BoundRelation::Multi),
        }
    }
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
            let push = |slots: &mut Vec<Slot>, name: &Option<String>, ty, pk| {
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
                    push(slots, &name, CqlType::List(Box::new(element)), None);
                }
                (Operator::In, Term::Tuple(items) | Term::List(items)) => {
                    for item in items {
                        match item {
                            Term::BindMarker(m) => push(slots, m, element.clone(), None),
                            call => call_slots(call, slots)?,
                        }
                    }
                }
                (op, Term::BindMarker(m)) => {
                    let pk = if *op == Operator::Eq {
                        key_position
                    } else {
                        None
                    };
                    push(slots, m, element, pk);
                }
                (_, call) => call_slots(call, slots)?,
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
        // `token(k) > token(?)`: the markers take the partition key columns' types, and
        // Cassandra's names for function arguments (`arg0(system.token)`).
        Relation::Token {
            value: Term::FunctionCall { name, args },
            ..
        } if is_token(name) => {
            for (i, (arg, def)) in args.iter().zip(table.partition_key()).enumerate() {
                if let Term::BindMarker(m) = arg {
                    slots.push(Slot {
                        name: m.clone().unwrap_or_else(|| format!("arg{i}(system.token)")),
                        ty: def.ty.clone(),
                        partition_key: None,
                    });
                }
            }
        }
        Relation::Token { .. } => {}
        Relation::MultiColumn { columns, op, value } => {
            multi_slots(columns, *op, value, table, slots)?;
        }
    }
    Ok(())
}

/// Slots of the markers among a function call's arguments (`minTimeuuid(?)`), typed by
/// the parameter they fill and named as Cassandra names them, `arg0(system.mintimeuuid)`.
fn call_slots(term: &Term, slots: &mut Vec<Slot>) -> Result<()> {
    let Term::FunctionCall { name, args } = term else {
        return Ok(());
    };
    let catalog = Catalog::new();
    let literal = |t: &Term, ty: &CqlType| match t {
        Term::BindMarker(_) => Err(Error::not_supported_plural(
            "Bind markers inside nested function calls",
            None,
        )
        .to_string()),
        t => super::dml::literal_bytes(t, ty, &catalog, "").map_err(|e| e.to_string()),
    };
    let bare = name.strip_prefix("system.").unwrap_or(name);
    for (i, ty) in super::functions::marker_types(name, args, &literal)? {
        let Term::BindMarker(m) = &args[i] else {
            continue;
        };
        slots.push(Slot {
            name: m
                .clone()
                .unwrap_or_else(|| format!("arg{i}(system.{bare})")),
            ty: CqlType::Native(ty),
            partition_key: None,
        });
    }
    Ok(())
}

/// Slots of `(c1, c2) op value`: a marker standing for a whole tuple is named `(c1,c2)`
/// (`in(c1,c2)` for `IN ?`, a list of tuples) as Cassandra names it; a marker inside a
/// tuple literal is named after its column.
fn multi_slots(
    columns: &[String],
    op: Operator,
    value: &Term,
    table: &TableDef,
    slots: &mut Vec<Slot>,
) -> Result<()> {
    let defs = columns
        .iter()
        .map(|c| table.column(c).ok_or_else(|| undefined(c)))
        .collect::<Result<Vec<_>>>()?;
    let tuple = CqlType::Tuple(defs.iter().map(|d| d.ty.clone()).collect());
    let names = columns.join(",");
    let mut push = |marker: &Option<String>, default: String, ty: CqlType| {
        slots.push(Slot {
            name: marker.clone().unwrap_or(default),
            ty,
            partition_key: None,
        })
    };
    let tuple_slots =
        |term: &Term, push: &mut dyn FnMut(&Option<String>, String, CqlType)| match term {
            Term::BindMarker(m) => push(m, format!("({names})"), tuple.clone()),
            Term::Tuple(items) => {
                for (item, def) in items.iter().zip(&defs) {
                    if let Term::BindMarker(m) = item {
                        push(m, def.name.clone(), def.ty.clone());
                    }
                }
            }
            _ => {}
        };
    match (op, value) {
        (Operator::In, Term::BindMarker(m)) => push(
            m,
            format!("in({names})"),
            CqlType::List(Box::new(tuple.clone())),
        ),
        (Operator::In, Term::Tuple(items) | Term::List(items)) => {
            for item in items {
                tuple_slots(item, &mut push);
            }
        }
        (_, term) => tuple_slots(term, &mut push),
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
    catalog: &Catalog,
    values: &[Value],
) -> Result<BoundSelect> {
    let mut cursor = Cursor {
        values: values.iter(),
        catalog,
        keyspace: &table.keyspace,
    };
    let mut bound = BoundSelect::default();
    for (position, relation) in select.where_clause.iter().enumerate() {
        if let Relation::MultiColumn { columns, op, value } = relation {
            let multi = bind_multi(position, columns, *op, value, table, &mut cursor)?;
            bound.positions.push(BoundIndex::Multi(bound.multi.len()));
            bound.multi.push(multi);
        } else {
            bound
                .positions
                .push(BoundIndex::Single(bound.relations.len()));
            bound
                .relations
                .push(bind_relation(relation, table, &mut cursor)?);
        }
    }
    if let Some(term) = &select.per_partition_limit {
        bound.per_partition_limit = bind_limit(term, &mut cursor)?;
    }
    if let Some(term) = &select.limit {
        bound.limit = bind_limit(term, &mut cursor)?;
    }
    if cursor.next().is_some() {
        return Err(Error::invalid("There were more values than bind markers"));
    }
    Ok(bound)
}

/// The bound values in marker order, and what literals need to be converted.
struct Cursor<'a> {
    values: std::slice::Iter<'a, Value>,
    catalog: &'a Catalog,
    keyspace: &'a str,
}

impl<'a> Iterator for Cursor<'a> {
    type Item = &'a Value;

    fn next(&mut self) -> Option<&'a Value> {
        self.values.next()
    }
}

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
            if let Some(name) = token_refused(*op) {
                return Err(Error::invalid(format!(
                    "{name} cannot be used with the token function"
                )));
            }
            if let Term::FunctionCall { name, args } = value {
                if is_token(name) {
                    let value = token_of(args, table, cursor)?;
                    return Ok(Bound::Token { op: *op, value });
                }
            }
            let ty = CqlType::Native(NativeType::Bigint);
            let bytes = term_bytes(value, &ty, "partition key token", cursor)?
                .ok_or_else(|| Error::invalid("Invalid null token value"))?;
            let value = <[u8; 8]>::try_from(bytes.as_ref())
                .map(i64::from_be_bytes)
                .map_err(|_| {
                    Error::invalid("Invalid value for partition key token: expected 8 bytes")
                })?;
            Ok(Bound::Token { op: *op, value })
        }
        // bind_select binds these with bind_multi.
        Relation::MultiColumn { .. } => Err(Error::invalid(
            "Multi-column relation bound as a single-column one",
        )),
    }
}

fn is_token(name: &str) -> bool {
    name == "token" || name == "system.token"
}

/// `token(v1, ...)` of values: Cassandra's token function for the table takes the
/// partition key's types in order, and hashes the values as a partition key.
fn token_of(args: &[Term], table: &TableDef, cursor: &mut Cursor) -> Result<i64> {
    let pk = table.partition_key();
    if args.len() != pk.len() {
        return Err(Error::invalid(format!(
            "Invalid number of arguments in call to function system.token: {} required but {} provided",
            pk.len(),
            args.len()
        )));
    }
    let mut parts = Vec::with_capacity(args.len());
    for (arg, def) in args.iter().zip(&pk) {
        let value = term_bytes(arg, &def.ty, &def.name, cursor)?;
        parts.push(value.ok_or_else(|| {
            Error::invalid(format!(
                "Invalid null value for partition key part {}",
                def.name
            ))
        })?);
    }
    let refs: Vec<&[u8]> = parts.iter().map(|b| b.as_ref()).collect();
    crate::ring::Murmur3Partitioner::token_for_components(&refs)
        .map(|t| t.0)
        .map_err(|_| Error::invalid("Key length is longer than maximum of 65535"))
}

/// Cassandra's name for an operator the token function refuses.
pub(super) fn token_refused(op: Operator) -> Option<&'static str> {
    match op {
        Operator::In => Some("IN"),
        Operator::Contains => Some("CONTAINS"),
        Operator::ContainsKey => Some("CONTAINS KEY"),
        Operator::Like => Some("LIKE"),
        _ => None,
    }
}

/// Binds `(c1, c2) op value`. A tuple's values are checked against the number of columns
/// here; nulls are left for the read plan, which names the offending column.
fn bind_multi(
    position: usize,
    columns: &[String],
    op: Operator,
    value: &Term,
    table: &TableDef,
    cursor: &mut Cursor,
) -> Result<BoundMulti> {
    let indexes = columns
        .iter()
        .map(|c| {
            table
                .columns
                .iter()
                .position(|d| &d.name == c)
                .ok_or_else(|| undefined(c))
        })
        .collect::<Result<Vec<_>>>()?;
    let types: Vec<&CqlType> = indexes.iter().map(|&i| &table.columns[i].ty).collect();
    let tuple = TupleShape {
        columns,
        types: &types,
    };
    let values = match (op, value) {
        (Operator::In, Term::BindMarker(_)) => {
            let name = format!("in({})", columns.join(","));
            split_list(next_value(cursor, &name)?)?
                .into_iter()
                .map(|element| tuple.split(element))
                .collect::<Result<_>>()?
        }
        (Operator::In, Term::Tuple(items) | Term::List(items)) => items
            .iter()
            .map(|item| tuple.bind(item, cursor))
            .collect::<Result<_>>()?,
        (_, term) => vec![tuple.bind(term, cursor)?],
    };
    Ok(BoundMulti {
        position,
        indexes,
        op,
        values,
    })
}

/// The columns a multi-column relation's tuples are for.
struct TupleShape<'a> {
    columns: &'a [String],
    types: &'a [&'a CqlType],
}

impl TupleShape<'_> {
    /// One tuple: a marker's serialized tuple, or a tuple literal whose items are markers
    /// or literals.
    fn bind(&self, term: &Term, cursor: &mut Cursor) -> Result<Vec<Option<Bytes>>> {
        match term {
            Term::BindMarker(_) => {
                let name = format!("({})", self.columns.join(","));
                self.split(next_value(cursor, &name)?)
            }
            Term::Tuple(items) => {
                if items.len() != self.columns.len() {
                    return Err(Error::invalid(format!(
                        "Expected {} elements in value tuple, but got {}: {}",
                        self.columns.len(),
                        items.len(),
                        super::restrict::term_text(term)
                    )));
                }
                items
                    .iter()
                    .zip(self.types.iter().zip(self.columns))
                    .map(|(item, (ty, column))| term_bytes(item, ty, column, cursor))
                    .collect()
            }
            // `(c) = 1`: a one-column relation whose value is written without parentheses.
            literal if self.columns.len() == 1 => Ok(vec![term_bytes(
                literal,
                self.types[0],
                &self.columns[0],
                cursor,
            )?]),
            other => Err(Error::invalid(format!(
                "Expected {} elements in value tuple, but got 1: {}",
                self.columns.len(),
                super::restrict::term_text(other)
            ))),
        }
    }

    /// Splits a serialized tuple (`[int n][n bytes]` per component, n < 0 for null) into
    /// one value per column; missing trailing components are null, as Cassandra reads them.
    fn split(&self, bytes: Option<Bytes>) -> Result<Vec<Option<Bytes>>> {
        let Some(mut rest) = bytes else {
            return Err(Error::invalid(format!(
                "Invalid null value in condition for columns: [{}]",
                self.columns.join(", ")
            )));
        };
        let bad = || Error::invalid("Invalid tuple value for a multi-column relation");
        let mut values = Vec::with_capacity(self.columns.len());
        while !rest.is_empty() {
            if values.len() == self.columns.len() {
                return Err(bad());
            }
            let len = take_i32(&mut rest).ok_or_else(bad)?;
            if len < 0 {
                values.push(None);
                continue;
            }
            let len = len as usize;
            if len > rest.len() {
                return Err(bad());
            }
            values.push(Some(rest.split_to(len)));
        }
        values.resize(self.columns.len(), None);
        Ok(values)
    }
}

/// A LIMIT or PER PARTITION LIMIT value, with Cassandra's rules (`SelectStatement.getLimit`,
/// one message for both): an unset marker means no limit, a null one is refused.
fn bind_limit(term: &Term, cursor: &mut Cursor) -> Result<Option<usize>> {
    let bytes = match term {
        Term::BindMarker(_) => match cursor.next() {
            Some(Value::Unset) => return Ok(None),
            Some(Value::Bytes(b)) => Some(b.clone()),
            Some(Value::Null) => None,
            None => return Err(Error::invalid("There were fewer values than bind markers")),
        },
        literal => term_bytes(
            literal,
            &CqlType::Native(NativeType::Int),
            "[limit]",
            cursor,
        )?,
    };
    let bytes = bytes.ok_or_else(|| Error::invalid("Invalid null value of limit"))?;
    let limit = <[u8; 4]>::try_from(bytes.as_ref())
        .map(i32::from_be_bytes)
        .map_err(|_| Error::invalid("Invalid limit value"))?;
    if limit <= 0 {
        return Err(Error::invalid("LIMIT must be strictly positive"));
    }
    Ok(Some(limit as usize))
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
        // Sets and maps compare in their stored form (sorted), whatever order the client
        // serialized them in; a malformed value is left for the key encoder to refuse.
        Term::BindMarker(_) => Ok(next_value(cursor, column)?
            .map(|v| crate::cql::serialized::normalize(ty, &v).unwrap_or(v))),
        Term::Null => Ok(None),
        Term::FunctionCall { name, args }
            if args.iter().any(|a| matches!(a, Term::BindMarker(_))) =>
        {
            call_with_markers(name, args, ty, column, cursor)
        }
        // The same conversions as a write's literals: date and timestamp strings, big
        // numbers, user types, `now()`, `minTimeuuid('...')`.
        literal => super::dml::literal_bytes(literal, ty, cursor.catalog, cursor.keyspace)
            .map(Some)
            .map_err(|e| Error::invalid(format!("{e} (column {column})"))),
    }
}

/// A call whose arguments include markers: each marker takes the next bound value (a null
/// one makes the call's argument null), the call's result must be a `ty`.
fn call_with_markers(
    name: &str,
    args: &[Term],
    ty: &CqlType,
    column: &str,
    cursor: &mut Cursor,
) -> Result<Option<Bytes>> {
    let cursor = std::cell::RefCell::new(cursor);
    let literal = |t: &Term, param: &CqlType| match t {
        Term::BindMarker(_) => {
            let mut cursor = cursor.borrow_mut();
            match next_value(&mut cursor, column).map_err(|e| e.to_string())? {
                Some(value) => Ok(value),
                None => Err(format!(
                    "Invalid null value for argument of function {name}"
                )),
            }
        }
        t => {
            let cursor = cursor.borrow();
            super::dml::literal_bytes(t, param, cursor.catalog, cursor.keyspace)
                .map_err(|e| e.to_string())
        }
    };
    let (value, result) = super::functions::evaluate(name, args, &literal)?;
    if let Some(v) = &value {
        crate::cql::serialized::validate(ty, v).map_err(|_| {
            Error::invalid(format!(
                "Type error: cannot assign result of function system.{name} (type {result}) to {column} (type {ty})"
            ))
        })?;
    }
    Ok(value)
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
