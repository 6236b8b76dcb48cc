//! Terms to values: literals converted, bind markers answered by a [`Markers`] — the bound
//! values at execution, a slot recorder at PREPARE.

use bytes::Bytes;

use super::literal::{self, receiver};
use crate::coordinator::bind::Slot;
use crate::cql::ast::Term;
use crate::cql::types::CqlType;
use crate::cql::value::LiteralError;
use crate::error::{Error, Result};
use crate::protocol::Value;
use crate::schema::Catalog;

/// A term's value: bytes, null, or unset (a bound value the client left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Val {
    Bytes(Bytes),
    Null,
    Unset,
}

/// What a bind marker stands for, as prepared metadata announces it.
pub(super) struct Spec<'a> {
    pub name: &'a str,
    pub ty: &'a CqlType,
    /// The partition-key position this marker sets with `=`.
    pub pk: Option<usize>,
}

/// Answers bind markers in text order.
pub(super) trait Markers {
    fn marker(&mut self, spec: Spec<'_>) -> Result<Val>;

    /// Whether markers only get recorded (PREPARE): every value is unset then, which is
    /// no refusal.
    fn recording(&self) -> bool {
        false
    }
}

/// Execution: each marker takes the next bound value.
pub(super) struct Binder<'a> {
    values: std::slice::Iter<'a, Value>,
}

impl<'a> Binder<'a> {
    pub fn new(values: &'a [Value]) -> Self {
        Binder {
            values: values.iter(),
        }
    }

    /// Fails when values are left over.
    pub fn finish(mut self) -> Result<()> {
        match self.values.next() {
            Some(_) => Err(Error::invalid("There were more values than bind markers")),
            None => Ok(()),
        }
    }
}

impl Markers for Binder<'_> {
    fn marker(&mut self, _spec: Spec<'_>) -> Result<Val> {
        match self.values.next() {
            Some(Value::Bytes(b)) => Ok(Val::Bytes(b.clone())),
            Some(Value::Null) => Ok(Val::Null),
            Some(Value::Unset) => Ok(Val::Unset),
            None => Err(Error::invalid("There were fewer values than bind markers")),
        }
    }
}

/// PREPARE: each marker is recorded; its value is unknown (unset).
#[derive(Default)]
pub(super) struct SlotSink {
    pub slots: Vec<Slot>,
}

impl Markers for SlotSink {
    fn marker(&mut self, spec: Spec<'_>) -> Result<Val> {
        self.slots.push(Slot {
            name: spec.name.to_owned(),
            ty: spec.ty.clone(),
            partition_key: spec.pk,
        });
        Ok(Val::Unset)
    }

    fn recording(&self) -> bool {
        true
    }
}

/// Resolves terms of one statement (user types looked up in `keyspace`).
pub(super) struct Resolver<'a, 'm> {
    pub catalog: &'a Catalog,
    pub keyspace: &'a str,
    pub markers: &'m mut dyn Markers,
}

impl Resolver<'_, '_> {
    /// The value of `term` meant as a `ty`; `name` names a marker without its own name.
    pub fn term(
        &mut self,
        term: &Term,
        name: &str,
        ty: &CqlType,
        pk: Option<usize>,
    ) -> Result<Val> {
        match term {
            Term::BindMarker(marker) => self.markers.marker(Spec {
                name: marker.as_deref().unwrap_or(name),
                ty,
                pk,
            }),
            Term::Null => Ok(Val::Null),
            composite if has_marker(composite) => self.composite(composite, name, ty),
            literal => literal::bytes_for(literal, ty, name, self.catalog, self.keyspace)
                .map(Val::Bytes)
                .map_err(|e| Error::invalid(e.to_string())),
        }
    }

    /// A collection, tuple or user type literal with bind markers inside: each part resolved
    /// as a term of its own (markers named as Cassandra names them: `value(l)`, `key(m)`,
    /// `t[0]`, `u.f`), then the value assembled. Like Cassandra, an unset list or set
    /// element or map value leaves the whole value unset, and an unset map key, tuple
    /// component or field is refused.
    fn composite(&mut self, term: &Term, name: &str, ty: &CqlType) -> Result<Val> {
        let invalid = |e: LiteralError| Error::invalid(e.for_receiver(name).to_string());
        match (term, ty) {
            (_, CqlType::Frozen(inner)) => self.composite(term, name, inner),
            (_, CqlType::UserType { .. }) => self.user_type(term, name, ty),
            (Term::List(items) | Term::Set(items) | Term::Tuple(items), CqlType::List(e))
            | (Term::List(items) | Term::Set(items), CqlType::Set(e)) => {
                let Some(values) = self.elements(items, &receiver::element(name), e)? else {
                    return Ok(Val::Unset);
                };
                let values = match ty {
                    CqlType::Set(_) => {
                        literal::sorted(values, e, self.catalog, self.keyspace).map_err(invalid)?
                    }
                    _ => values,
                };
                Ok(Val::Bytes(literal::collection(values)))
            }
            (Term::Map(entries), CqlType::Map(k, v)) => self.map(entries, name, k, v),
            (Term::Tuple(items), CqlType::Tuple(types)) => {
                literal::check_arity(items.len(), types.len(), ty).map_err(invalid)?;
                let mut parts = Vec::with_capacity(items.len());
                for (i, (item, ty)) in items.iter().zip(types).enumerate() {
                    parts.push(
                        match self.term(item, &receiver::component(name, i), ty, None)? {
                            Val::Bytes(b) => Some(b),
                            Val::Null => None,
                            Val::Unset if self.markers.recording() => None,
                            Val::Unset => {
                                return Err(Error::invalid(format!(
                                    "Invalid unset value for tuple field number {i}"
                                )))
                            }
                        },
                    );
                }
                Ok(Val::Bytes(literal::tuple(&parts)))
            }
            _ => Err(invalid(LiteralError::mismatch(term, ty))),
        }
    }

    /// Collection elements, none null; None when one is unset.
    fn elements(&mut self, items: &[Term], name: &str, ty: &CqlType) -> Result<Option<Vec<Bytes>>> {
        let mut values = Vec::with_capacity(items.len());
        let mut unset = false;
        for item in items {
            match self.term(item, name, ty, None)? {
                Val::Bytes(b) => values.push(b),
                Val::Null => {
                    return Err(Error::invalid(LiteralError::NullInCollection.to_string()))
                }
                // Later markers are still taken, so the values after them stay in place.
                Val::Unset => unset = true,
            }
        }
        Ok((!unset).then_some(values))
    }

    fn map(
        &mut self,
        entries: &[(Term, Term)],
        name: &str,
        k: &CqlType,
        v: &CqlType,
    ) -> Result<Val> {
        let null = || Error::invalid(LiteralError::NullInCollection.to_string());
        let (key_name, value_name) = (receiver::key(name), receiver::element(name));
        let mut keyed = Vec::with_capacity(entries.len());
        let mut unset = false;
        for (key, value) in entries {
            let key = match self.term(key, &key_name, k, None)? {
                Val::Bytes(b) => Some(b),
                Val::Null => return Err(null()),
                Val::Unset if self.markers.recording() => None,
                Val::Unset => {
                    return Err(Error::invalid("unset value is not supported for map keys"))
                }
            };
            match (key, self.term(value, &value_name, v, None)?) {
                (_, Val::Null) => return Err(null()),
                (Some(key), Val::Bytes(b)) => keyed.push((key, b)),
                _ => unset = true,
            }
        }
        if unset {
            return Ok(Val::Unset);
        }
        literal::map(keyed, k, self.catalog, self.keyspace)
            .map(Val::Bytes)
            .map_err(|e| Error::invalid(e.for_receiver(name).to_string()))
    }

    fn user_type(&mut self, term: &Term, name: &str, ty: &CqlType) -> Result<Val> {
        let invalid = |e: LiteralError| Error::invalid(e.for_receiver(name).to_string());
        let CqlType::UserType {
            keyspace,
            name: type_name,
        } = ty
        else {
            return Err(invalid(LiteralError::mismatch(term, ty)));
        };
        let ks = keyspace.as_deref().unwrap_or(self.keyspace).to_owned();
        let udt = self
            .catalog
            .user_type(&ks, type_name)
            .ok_or_else(|| invalid(LiteralError::UnknownType(format!("{ks}.{type_name}"))))?;
        let given = literal::user_type_fields(term, ty).map_err(invalid)?;
        let recording = self.markers.recording();
        let mut failure = None;
        let value = literal::user_type(&given, &udt.fields, ty, |t, field_ty, field| {
            let field_name = receiver::field(name, field);
            match self.term(t, &field_name, field_ty, None) {
                Ok(Val::Bytes(b)) => Ok(Some(b)),
                Ok(Val::Null) => Ok(None),
                Ok(Val::Unset) if recording => Ok(None),
                Ok(Val::Unset) => {
                    failure = Some(Error::invalid(format!(
                        "Invalid unset value for field '{field}' of user defined type {type_name}"
                    )));
                    Err(LiteralError::Value(String::new()))
                }
                Err(e) => {
                    failure = Some(e);
                    Err(LiteralError::Value(String::new()))
                }
            }
        });
        match (value, failure) {
            (_, Some(e)) => Err(e),
            (Ok(b), None) => Ok(Val::Bytes(b)),
            (Err(e), None) => Err(invalid(e)),
        }
    }
}

/// Whether a term holds a bind marker inside a collection, tuple or user type literal.
fn has_marker(term: &Term) -> bool {
    match term {
        Term::BindMarker(_) => true,
        Term::List(items) | Term::Set(items) | Term::Tuple(items) => items.iter().any(has_marker),
        Term::Map(entries) => entries.iter().any(|(k, v)| has_marker(k) || has_marker(v)),
        Term::UserType(fields) => fields.iter().any(|(_, t)| has_marker(t)),
        _ => false,
    }
}
