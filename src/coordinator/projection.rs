//! The select clause: each selector resolved against the table into an [`Expr`] with
//! Cassandra's result column name and type, and the evaluation of those expressions over
//! a row, for system tables (`select.rs`) and user tables (`table_select.rs`) alike.
//!
//! Selectors are Cassandra 4.1's: columns, `count(*)` and `count(column)`, `writetime()`
//! and `ttl()` (of a column, or of a field of a non-frozen user type), `token(...)`,
//! native function calls (`functions/`), `CAST(x AS type)`, typed literals (`(int)1`),
//! user type fields (`u.f`), collection elements (`m[k]`, `s[e]`) and slices (`m[a..b]`,
//! `m[a..]`, `m[..b]`). Names are Cassandra's: `system.count(v)`, `cast(v as int)`,
//! `system.blobasint(b)`, `m['k']`, `u.f`; an alias replaces the name. A selector this
//! build cannot serve is refused with a sentence, never with the parser's debug form.

use bytes::Bytes;

use super::functions::{self, Arg, Function};
use crate::cql::ast::{Selector, Term};
use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};
use crate::protocol::{ColumnSpec, ResultMetadata};
use crate::ring::Murmur3Partitioner;
use crate::schema::{Catalog, TableDef};
use crate::storage::comparable;

/// What each output column computes.
pub(super) enum Expr {
    Column(usize),
    ToJson(usize),
    /// The row's partition token (`token(k)` over the partition key, in order).
    Token,
    /// The token of other values: `token(...)` of literals or other columns of the key's
    /// types.
    TokenOf(Vec<Expr>),
    /// `count(*)`: the rows counted.
    Count,
    /// `count(column)`: the counted rows where the column (a table index) is not null.
    CountColumn(usize),
    /// `writetime(column)`: the cell's write timestamp (µs).
    WriteTime(usize),
    /// `ttl(column)`: the cell's remaining TTL in seconds, null without one.
    Ttl(usize),
    /// `writetime(u.f)` / `ttl(u.f)` of field `f` (by index) of a non-frozen user type.
    FieldWriteTime(usize, usize),
    FieldTtl(usize, usize),
    /// A native function of at most one argument.
    Call(Function, Option<Box<Expr>>),
    /// A value computed when the statement was planned.
    Literal(Bytes),
    /// A null literal (a function's argument).
    Null,
    /// Field `index` of a user type value.
    Field(Box<Expr>, usize),
    /// `m[key]` (the value) or `s[key]` (the element, if present).
    Element(Box<Expr>, Collection, Bytes),
    /// `c[from..to]`, both ends inclusive, either open.
    Slice(Box<Expr>, Collection, Option<Bytes>, Option<Bytes>),
}

/// A map or set selected from: its type (user types resolved) and whether it is frozen.
pub(super) struct Collection {
    ty: CqlType,
    frozen: bool,
}

impl Expr {
    /// Whether the expression's value depends only on the row it is evaluated on: not on
    /// "now" (`ttl()`, `now()`, `currentTimestamp()` ...) or on the other rows (aggregates).
    pub(super) fn depends_only_on_row(&self) -> bool {
        match self {
            Expr::Column(_)
            | Expr::ToJson(_)
            | Expr::Token
            | Expr::WriteTime(_)
            | Expr::FieldWriteTime(..)
            | Expr::Literal(_)
            | Expr::Null => true,
            Expr::Ttl(_) | Expr::FieldTtl(..) | Expr::Count | Expr::CountColumn(_) => false,
            Expr::TokenOf(args) => args.iter().all(Expr::depends_only_on_row),
            Expr::Call(function, arg) => {
                !function.varies() && arg.as_deref().is_none_or(Expr::depends_only_on_row)
            }
            Expr::Field(inner, _) | Expr::Element(inner, ..) | Expr::Slice(inner, ..) => {
                inner.depends_only_on_row()
            }
        }
    }

    /// Whether the expression is an aggregate, which makes the query return one row.
    pub(super) fn is_aggregate(&self) -> bool {
        matches!(self, Expr::Count | Expr::CountColumn(_))
    }
}

/// What an aggregate row counted: every row, and each `count(column)`'s non-null values.
#[derive(Debug, Default)]
pub(super) struct Counts {
    /// The rows counted.
    pub rows: i64,
    /// (table column index, rows where it is not null).
    pub columns: Vec<(usize, i64)>,
}

impl Counts {
    fn value(&self, expr: &Expr) -> Option<Bytes> {
        let count = match expr {
            Expr::Count => self.rows,
            Expr::CountColumn(i) => self
                .columns
                .iter()
                .find(|(c, _)| c == i)
                .map_or(0, |(_, n)| *n),
            _ => return None,
        };
        Some(Bytes::copy_from_slice(&count.to_be_bytes()))
    }
}

/// The table columns the `count(column)` expressions of `exprs` count.
pub(super) fn counted_columns(exprs: &[Expr]) -> Vec<usize> {
    let mut columns: Vec<usize> = exprs
        .iter()
        .filter_map(|e| match e {
            Expr::CountColumn(i) => Some(*i),
            _ => None,
        })
        .collect();
    columns.sort_unstable();
    columns.dedup();
    columns
}

/// A row as expressions read it.
pub(super) trait RowView {
    /// Column `i`'s serialized value.
    fn value(&self, i: usize) -> Option<Bytes>;
    /// The partition token.
    fn token(&self) -> i64;
    /// Column `i`'s write timestamp and remaining TTL, for a single-cell column.
    fn meta(&self, i: usize) -> Option<(i64, Option<i32>)>;
    /// Likewise for field `field` of the non-frozen user type in column `i`.
    fn field_meta(&self, i: usize, field: usize) -> Option<(i64, Option<i32>)>;
    /// `toJson()` of column `i` (system tables only).
    fn json(&self, _i: usize) -> Option<String> {
        None
    }
}

/// Evaluates `expr` over `row` (None for an aggregate over no rows).
pub(super) fn eval(
    expr: &Expr,
    row: Option<&dyn RowView>,
    counts: &Counts,
) -> Result<Option<Bytes>> {
    let bytes = |b: &[u8]| Some(Bytes::copy_from_slice(b));
    let ts = |m: Option<(i64, Option<i32>)>| m.and_then(|(t, _)| bytes(&t.to_be_bytes()));
    let ttl = |m: Option<(i64, Option<i32>)>| m.and_then(|(_, l)| bytes(&l?.to_be_bytes()));
    Ok(match expr {
        Expr::Column(i) => row.and_then(|r| r.value(*i)),
        Expr::ToJson(i) => row.map(|r| Bytes::from(r.json(*i).unwrap_or_else(|| "null".into()))),
        Expr::Token => row.and_then(|r| bytes(&r.token().to_be_bytes())),
        Expr::TokenOf(args) => {
            let mut parts = Vec::with_capacity(args.len());
            for arg in args {
                parts.push(eval(arg, row, counts)?.unwrap_or_default());
            }
            let refs: Vec<&[u8]> = parts.iter().map(|b| b.as_ref()).collect();
            Murmur3Partitioner::token_for_components(&refs)
                .ok()
                .and_then(|t| bytes(&t.0.to_be_bytes()))
        }
        Expr::Count | Expr::CountColumn(_) => counts.value(expr),
        Expr::WriteTime(i) => ts(row.and_then(|r| r.meta(*i))),
        Expr::Ttl(i) => ttl(row.and_then(|r| r.meta(*i))),
        Expr::FieldWriteTime(i, f) => ts(row.and_then(|r| r.field_meta(*i, *f))),
        Expr::FieldTtl(i, f) => ttl(row.and_then(|r| r.field_meta(*i, *f))),
        Expr::Literal(value) => Some(value.clone()),
        Expr::Null => None,
        Expr::Call(function, arg) => {
            let value = match arg {
                Some(arg) => eval(arg, row, counts)?,
                None => None,
            };
            function.call(value.as_deref())?
        }
        Expr::Field(of, index) => eval(of, row, counts)?.and_then(|v| field(&v, *index)),
        Expr::Element(of, c, key) => match eval(of, row, counts)? {
            Some(v) => element(&v, c, key)?,
            None => None,
        },
        Expr::Slice(of, c, from, to) => match eval(of, row, counts)? {
            Some(v) => slice(&v, c, from.as_deref(), to.as_deref())?,
            None => None,
        },
    })
}

/// Field `index` of a serialized user type (a tuple of `[int length][bytes]`); missing
/// trailing fields are null.
fn field(value: &Bytes, index: usize) -> Option<Bytes> {
    let mut pos = 0;
    for i in 0.. {
        let len = i32::from_be_bytes(value.get(pos..pos + 4)?.try_into().ok()?);
        pos += 4;
        let len = usize::try_from(len).ok();
        if i == index {
            return len
                .and_then(|n| value.get(pos..pos + n))
                .map(|b| value.slice_ref(b));
        }
        pos += len.unwrap_or(0);
    }
    None
}

fn malformed() -> Error {
    Error::Server("stored collection value is malformed".into())
}

fn element(value: &Bytes, c: &Collection, key: &[u8]) -> Result<Option<Bytes>> {
    let entries =
        crate::cql::serialized::split_collection(&c.ty, value).map_err(|_| malformed())?;
    let is_map = matches!(c.ty, CqlType::Map(..));
    Ok(entries
        .into_iter()
        .find(|(k, _)| k[..] == *key)
        .map(|(k, v)| if is_map { v } else { k }))
}

fn slice(
    value: &Bytes,
    c: &Collection,
    from: Option<&[u8]>,
    to: Option<&[u8]>,
) -> Result<Option<Bytes>> {
    let key_type = match &c.ty {
        CqlType::Map(k, _) | CqlType::Set(k) => &**k,
        _ => return Err(malformed()),
    };
    let order = |v: &[u8]| {
        let mut out = Vec::new();
        comparable::encode_value(key_type, v, &mut out).map(|()| out)
    };
    let bound = |b: Option<&[u8]>| {
        b.map(order)
            .transpose()
            .map_err(|e| Error::invalid(e.to_string()))
    };
    let (from, to) = (bound(from)?, bound(to)?);
    let mut kept = Vec::new();
    for (k, v) in crate::cql::serialized::split_collection(&c.ty, value).map_err(|_| malformed())? {
        let key = order(&k).map_err(|_| malformed())?;
        let after = from.as_ref().is_none_or(|f| key >= *f);
        let before = to.as_ref().is_none_or(|t| key <= *t);
        if after && before {
            kept.push((k, v));
        }
    }
    // A non-frozen collection with nothing left is null, as Cassandra's serializers say.
    if kept.is_empty() && !c.frozen {
        return Ok(None);
    }
    Ok(Some(crate::cql::serialized::join_collection(&c.ty, &kept)))
}

/// The select clause, resolved against a table.
pub(super) struct Projection {
    /// What each output column computes, in select clause order.
    pub exprs: Vec<Expr>,
    /// The output columns' names and types.
    pub metadata: ResultMetadata,
}

/// One resolved selector.
struct Resolved {
    expr: Expr,
    name: String,
    ty: CqlType,
}

impl Projection {
    /// Resolves `items` (empty: `*`) against `table`.
    pub(super) fn new(
        items: &[crate::cql::ast::SelectItem],
        table: &TableDef,
        catalog: &Catalog,
    ) -> Result<Projection> {
        let resolver = Resolver { table, catalog };
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        let mut push = |expr: Expr, name: String, ty: &CqlType| {
            exprs.push(expr);
            columns.push(ColumnSpec {
                keyspace: table.keyspace.clone(),
                table: table.name.clone(),
                name,
                data_type: super::select::data_type(ty, &table.keyspace, catalog),
            });
        };
        if items.is_empty() {
            for (i, c) in table.columns.iter().enumerate() {
                push(Expr::Column(i), c.name.clone(), &c.ty);
            }
        }
        for item in items {
            let r = resolver.selector(&item.selector)?;
            push(r.expr, item.alias.clone().unwrap_or(r.name), &r.ty);
        }
        let metadata = ResultMetadata {
            column_count: columns.len(),
            columns,
            ..Default::default()
        };
        Ok(Projection { exprs, metadata })
    }
}

struct Resolver<'a> {
    table: &'a TableDef,
    catalog: &'a Catalog,
}

impl Resolver<'_> {
    fn selector(&self, selector: &Selector) -> Result<Resolved> {
        match selector {
            Selector::Column(name) => {
                let i = self.index(name)?;
                Ok(resolved(
                    Expr::Column(i),
                    name.clone(),
                    self.table.columns[i].ty.clone(),
                ))
            }
            Selector::CountStar => Ok(resolved(Expr::Count, "count".into(), bigint())),
            Selector::Function { name, args } => self.function(name, args),
            Selector::Cast { selector, ty } => self.cast(selector, ty),
            Selector::Term(term) => self.term(term),
            Selector::Field { selector, field } => self.field(selector, field),
            Selector::Element { selector, key } => self.element(selector, key),
            Selector::Slice { selector, from, to } => {
                self.slice(selector, from.as_ref(), to.as_ref())
            }
        }
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.table
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| Error::invalid(format!("Undefined column name {name}")))
    }

    /// A literal converted to `ty`, with Cassandra's conversions (`dml::literal_bytes`).
    fn literal(&self, term: &Term, ty: &CqlType) -> Result<Bytes> {
        if matches!(term, Term::BindMarker(_)) {
            return Err(Error::not_supported_plural(
                "Bind markers in selectors",
                None,
            ));
        }
        super::dml::literal_bytes(term, ty, self.catalog, &self.table.keyspace)
            .map_err(Error::invalid)
    }

    fn function(&self, name: &str, args: &[Selector]) -> Result<Resolved> {
        let bare = name.strip_prefix("system.").unwrap_or(name);
        match (bare, args) {
            ("writetime" | "ttl", [arg]) => self.write_meta(bare, arg),
            ("tojson", [Selector::Column(column)]) => Ok(resolved(
                Expr::ToJson(self.index(column)?),
                format!("system.tojson({column})"),
                CqlType::Native(NativeType::Text),
            )),
            ("token", _) => self.token(args),
            ("count", [Selector::Column(column)]) => Ok(resolved(
                Expr::CountColumn(self.index(column)?),
                format!("system.count({column})"),
                bigint(),
            )),
            // The parser takes `count(1)` as `count(*)`; Cassandra's grammar refuses others.
            ("count", [Selector::Term(term)]) => Err(Error::Syntax(format!(
                "Only COUNT(1) is supported, got COUNT({})",
                super::restrict::term_text(term)
            ))),
            _ if !functions::is_known(bare)
                || matches!(bare, "count" | "writetime" | "ttl" | "tojson") =>
            {
                Err(Error::invalid(format!("Unknown function '{name}'")))
            }
            _ => self.call(bare, args),
        }
    }

    fn call(&self, name: &str, args: &[Selector]) -> Result<Resolved> {
        let resolved_args = args
            .iter()
            .map(|a| match a {
                Selector::Term(t) if !matches!(t, Term::Cast { .. }) => Ok(None),
                other => self.selector(other).map(Some),
            })
            .collect::<Result<Vec<_>>>()?;
        let texts: Vec<String> = args
            .iter()
            .map(|a| match a {
                Selector::Term(t) => super::restrict::term_text(t),
                _ => String::new(),
            })
            .collect();
        let kinds: Vec<Arg<'_>> = resolved_args
            .iter()
            .zip(&texts)
            .map(|(r, text)| match r {
                Some(r) => Arg::Typed(&r.ty, &r.name),
                None => Arg::Untyped(text),
            })
            .collect();
        let fits = |i: usize, t: NativeType| match &args[i] {
            Selector::Term(Term::Null) => true,
            Selector::Term(term) => self.literal(term, &CqlType::Native(t)).is_ok(),
            _ => false,
        };
        let (function, ty) = functions::resolve(name, &kinds, &fits)?;
        let arg = match (
            resolved_args.into_iter().next(),
            args.first(),
            function.param(),
        ) {
            (Some(Some(r)), _, _) => Some(r),
            (Some(None), Some(Selector::Term(Term::Null)), Some(param)) => {
                Some(resolved(Expr::Null, "null".into(), CqlType::Native(param)))
            }
            (Some(None), Some(Selector::Term(term)), Some(param)) => {
                let value = self.literal(term, &CqlType::Native(param))?;
                Some(resolved(
                    Expr::Literal(value),
                    super::restrict::term_text(term),
                    CqlType::Native(param),
                ))
            }
            _ => None,
        };
        let label = arg.as_ref().map_or("", |a| a.name.as_str());
        let name_out = format!("system.{name}({label})");
        Ok(resolved(
            Expr::Call(function, arg.map(|a| Box::new(a.expr))),
            name_out,
            ty,
        ))
    }

    /// `writetime(c)` / `ttl(c)`, or of `c.f` where `c` is a non-frozen user type.
    fn write_meta(&self, name: &str, arg: &Selector) -> Result<Resolved> {
        let ty = CqlType::Native(if name == "writetime" {
            NativeType::Bigint
        } else {
            NativeType::Int
        });
        match arg {
            Selector::Column(column) => {
                let i = self.index(column)?;
                let expr = if name == "writetime" {
                    Expr::WriteTime(i)
                } else {
                    Expr::Ttl(i)
                };
                Ok(resolved(expr, format!("{name}({column})"), ty))
            }
            Selector::Field { selector, field } => {
                let Selector::Column(column) = &**selector else {
                    return Err(write_meta_argument(name));
                };
                let i = self.index(column)?;
                let column_ty = &self.table.columns[i].ty;
                let (_, index, _) = self.udt_field(column, column_ty, field)?;
                if !column_ty.is_multicell() {
                    // A frozen user type is one cell: its fields share its timestamp.
                    let expr = if name == "writetime" {
                        Expr::WriteTime(i)
                    } else {
                        Expr::Ttl(i)
                    };
                    return Ok(resolved(expr, format!("{name}({column}.{field})"), ty));
                }
                let expr = if name == "writetime" {
                    Expr::FieldWriteTime(i, index)
                } else {
                    Expr::FieldTtl(i, index)
                };
                Ok(resolved(expr, format!("{name}({column}.{field})"), ty))
            }
            _ => Err(write_meta_argument(name)),
        }
    }

    /// `token(...)`: the function Cassandra builds for the table, whose parameters are the
    /// partition key's types in order.
    fn token(&self, args: &[Selector]) -> Result<Resolved> {
        let pk = self.table.partition_key();
        if args.len() != pk.len() {
            return Err(Error::invalid(format!(
                "Invalid number of arguments in call to function system.token: {} required but {} provided",
                pk.len(),
                args.len()
            )));
        }
        let mut exprs = Vec::with_capacity(args.len());
        let mut labels = Vec::with_capacity(args.len());
        let mut own_key = true;
        for (i, (arg, def)) in args.iter().zip(&pk).enumerate() {
            let r = match arg {
                Selector::Term(term) => {
                    let value = self.literal(term, &def.ty)?;
                    resolved(
                        Expr::Literal(value),
                        super::restrict::term_text(term),
                        def.ty.clone(),
                    )
                }
                other => self.selector(other)?,
            };
            if r.ty.unfrozen() != def.ty.unfrozen() {
                return Err(Error::invalid(format!(
                    "Type error: {} cannot be passed as argument {i} of function system.token of type {}",
                    r.name, def.ty
                )));
            }
            own_key &= matches!(r.expr, Expr::Column(c) if self.table.columns[c].name == def.name);
            labels.push(r.name);
            exprs.push(r.expr);
        }
        let expr = if own_key {
            Expr::Token
        } else {
            Expr::TokenOf(exprs)
        };
        Ok(resolved(
            expr,
            format!("system.token({})", labels.join(", ")),
            bigint(),
        ))
    }

    /// `CAST(x AS type)`: x itself when it already has the type (Cassandra names it x).
    fn cast(&self, selector: &Selector, to: &CqlType) -> Result<Resolved> {
        let inner = self.selector(selector)?;
        let refuse = || Error::invalid(format!("{} cannot be cast to {to}", inner.name));
        let (CqlType::Native(from), CqlType::Native(to_native)) = (inner.ty.unfrozen(), to) else {
            return Err(refuse());
        };
        if from == to_native {
            return Ok(inner);
        }
        if !functions::castable(*from, *to_native) {
            return Err(refuse());
        }
        let function = Function::Cast {
            from: *from,
            to: *to_native,
        };
        Ok(resolved(
            Expr::Call(function, Some(Box::new(inner.expr))),
            format!("cast({} as {to})", inner.name),
            to.clone(),
        ))
    }

    /// A literal selector: only a typed one (`(int)1`) has a type Cassandra can infer.
    fn term(&self, term: &Term) -> Result<Resolved> {
        let text = super::restrict::term_text(term);
        match term {
            Term::Cast { ty, term: inner } => {
                let value = self.literal(inner, ty)?;
                Ok(resolved(Expr::Literal(value), text, ty.clone()))
            }
            Term::BindMarker(_) => Err(Error::not_supported_plural("Bind markers in selectors", None)),
            _ => Err(Error::invalid(format!(
                "Cannot infer type for term {text} in selection clause (try using a cast to force a type)"
            ))),
        }
    }

    /// The user type behind `ty` (frozen or not): field `field`'s index and type.
    fn udt_field(
        &self,
        selected: &str,
        ty: &CqlType,
        field: &str,
    ) -> Result<(String, usize, CqlType)> {
        let CqlType::UserType { keyspace, name } = ty.unfrozen() else {
            return Err(Error::invalid(format!(
                "Invalid field selection: {selected} of type {ty} is not a user type"
            )));
        };
        let ks = keyspace.as_deref().unwrap_or(&self.table.keyspace);
        let udt = self
            .catalog
            .user_type(ks, name)
            .ok_or_else(|| Error::invalid(format!("Unknown user type {ks}.{name}")))?;
        let index = udt
            .fields
            .iter()
            .position(|(f, _)| f == field)
            .ok_or_else(|| {
                Error::invalid(format!("{selected} of type {ty} has no field {field}"))
            })?;
        Ok((ks.to_owned(), index, udt.fields[index].1.clone()))
    }

    fn field(&self, selector: &Selector, field: &str) -> Result<Resolved> {
        let inner = self.selector(selector)?;
        let (ks, index, ty) = self.udt_field(&inner.name, &inner.ty, field)?;
        let ty = qualify(ty, &ks);
        Ok(resolved(
            Expr::Field(Box::new(inner.expr), index),
            format!("{}.{field}", inner.name),
            ty,
        ))
    }

    /// The map or set `inner` selects from, for `what` ("Element" or "Slice") selection.
    fn collection(&self, inner: &Resolved, what: &str) -> Result<(Collection, CqlType)> {
        let resolved_ty = self
            .catalog
            .resolve_user_types(&self.table.keyspace, inner.ty.unfrozen());
        let frozen = !inner.ty.is_multicell();
        let key = match (&resolved_ty, inner.ty.unfrozen()) {
            (CqlType::Map(..) | CqlType::Set(_), CqlType::Map(k, _) | CqlType::Set(k)) => {
                (**k).clone()
            }
            (CqlType::List(_), _) => {
                return Err(Error::invalid(format!(
                    "{what} selection is only allowed on sets and maps, but {} is a list",
                    inner.name
                )))
            }
            _ => {
                let lower = what.to_ascii_lowercase();
                return Err(Error::invalid(format!(
                    "Invalid {lower} selection: {} of type {} is not a collection",
                    inner.name, inner.ty
                )));
            }
        };
        Ok((
            Collection {
                ty: resolved_ty,
                frozen,
            },
            key,
        ))
    }

    fn element(&self, selector: &Selector, key: &Term) -> Result<Resolved> {
        let inner = self.selector(selector)?;
        let (collection, key_ty) = self.collection(&inner, "Element")?;
        let ty = match inner.ty.unfrozen() {
            CqlType::Map(_, v) => (**v).clone(),
            _ => key_ty.clone(),
        };
        let key_bytes = self.literal(key, &key_ty)?;
        let name = format!("{}[{}]", inner.name, super::restrict::term_text(key));
        Ok(resolved(
            Expr::Element(Box::new(inner.expr), collection, key_bytes),
            name,
            ty,
        ))
    }

    fn slice(
        &self,
        selector: &Selector,
        from: Option<&Term>,
        to: Option<&Term>,
    ) -> Result<Resolved> {
        let inner = self.selector(selector)?;
        let (collection, key_ty) = self.collection(&inner, "Slice")?;
        let bound = |t: Option<&Term>| t.map(|t| self.literal(t, &key_ty)).transpose();
        let text = |t: Option<&Term>| t.map(super::restrict::term_text).unwrap_or_default();
        let name = format!("{}[{}..{}]", inner.name, text(from), text(to));
        let ty = inner.ty.clone();
        Ok(resolved(
            Expr::Slice(Box::new(inner.expr), collection, bound(from)?, bound(to)?),
            name,
            ty,
        ))
    }
}

fn resolved(expr: Expr, name: String, ty: CqlType) -> Resolved {
    Resolved { expr, name, ty }
}

fn bigint() -> CqlType {
    CqlType::Native(NativeType::Bigint)
}

/// A field type as declared in keyspace `ks`: its user types named with their keyspace,
/// so the result metadata resolves them there and not in the table's.
fn qualify(ty: CqlType, ks: &str) -> CqlType {
    match ty {
        CqlType::UserType {
            keyspace: None,
            name,
        } => CqlType::UserType {
            keyspace: Some(ks.to_owned()),
            name,
        },
        other => other,
    }
}

fn write_meta_argument(name: &str) -> Error {
    Error::invalid(format!(
        "{name}() takes a column, or a field of a user type column, as its argument"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_map() -> (CqlType, Bytes) {
        let ty = CqlType::map(
            CqlType::Native(NativeType::Int),
            CqlType::Native(NativeType::Text),
        );
        let entry = |k: i32, v: &'static str| {
            (
                Bytes::copy_from_slice(&k.to_be_bytes()),
                Bytes::from_static(v.as_bytes()),
            )
        };
        let value = crate::cql::serialized::join_collection(
            &ty,
            &[entry(-5, "a"), entry(1, "b"), entry(7, "c")],
        );
        (ty, value)
    }

    #[test]
    fn elements_and_slices_compare_keys_by_their_type() {
        let (ty, value) = int_map();
        let key = |k: i32| Bytes::copy_from_slice(&k.to_be_bytes());
        let collection = |frozen| Collection {
            ty: ty.clone(),
            frozen,
        };
        let c = collection(false);
        assert_eq!(
            element(&value, &c, &key(1)).expect("ok"),
            Some(Bytes::from_static(b"b"))
        );
        assert_eq!(element(&value, &c, &key(2)).expect("ok"), None);
        // -5 sorts first as an int, last as bytes.
        let keys = |v: Option<Bytes>| -> Vec<Bytes> {
            let v = v.expect("some");
            let entries = crate::cql::serialized::split_collection(&ty, &v).expect("split");
            entries.into_iter().map(|(k, _)| k).collect()
        };
        let lower = slice(&value, &c, None, Some(&key(1))).expect("ok");
        assert_eq!(keys(lower), vec![key(-5), key(1)]);
        let upper = slice(&value, &c, Some(&key(0)), None).expect("ok");
        assert_eq!(keys(upper), vec![key(1), key(7)]);
        // Nothing in range: null for a non-frozen collection, empty for a frozen one.
        assert_eq!(slice(&value, &c, Some(&key(8)), None).expect("ok"), None);
        let frozen = slice(&value, &collection(true), Some(&key(8)), None).expect("ok");
        assert_eq!(keys(frozen), Vec::<Bytes>::new());
    }

    #[test]
    fn fields_of_a_serialized_user_type_are_found_by_index() {
        let value = Bytes::from_static(b"\x00\x00\x00\x01a\xff\xff\xff\xff\x00\x00\x00\x02bc");
        assert_eq!(field(&value, 0), Some(Bytes::from_static(b"a")));
        assert_eq!(field(&value, 1), None);
        assert_eq!(field(&value, 2), Some(Bytes::from_static(b"bc")));
        assert_eq!(field(&value, 3), None);
    }
}
