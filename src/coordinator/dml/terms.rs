//! Terms to values: literals converted, bind markers answered by a [`Markers`] — the bound
//! values at execution, a slot recorder at PREPARE.

use bytes::Bytes;

use super::literal;
use crate::coordinator::bind::Slot;
use crate::cql::ast::Term;
use crate::cql::types::CqlType;
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
            literal => literal::bytes(literal, ty, self.catalog, self.keyspace)
                .map(Val::Bytes)
                .map_err(|e| Error::invalid(format!("Invalid value for {name}: {e}"))),
        }
    }
}
