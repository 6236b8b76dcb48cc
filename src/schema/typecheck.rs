//! Column and field type preparation: the freezing rules Cassandra applies to a type as
//! written in DDL, UDT resolution, and the canonical stored form.

use super::catalog::KeyspaceDef;
use super::error::{invalid, SchemaError};
use crate::cql::{CqlType, NativeType};

/// Where a type appears, which decides what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// A column type or a UDT field type.
    Top,
    /// Directly inside a non-frozen collection: nested collections and UDTs must be frozen.
    InCollection,
    /// Somewhere inside `frozen<...>` or a tuple: everything is frozen implicitly.
    InFrozen,
}

/// Validates `raw` as written in a statement on `keyspace` and returns its canonical
/// stored form (nested values frozen, user types unqualified).
pub(crate) fn prepare_type(keyspace: &KeyspaceDef, raw: &CqlType) -> Result<CqlType, SchemaError> {
    check(keyspace, raw, raw, Ctx::Top)?;
    Ok(unqualify(raw).canonical())
}

fn check(ks: &KeyspaceDef, ty: &CqlType, top: &CqlType, ctx: Ctx) -> Result<(), SchemaError> {
    match ty {
        CqlType::Native(NativeType::Counter) if ctx != Ctx::Top => Err(invalid(format!(
            "Counters are not allowed inside collections: {top}"
        ))),
        CqlType::Native(_) | CqlType::Custom(_) => Ok(()),
        CqlType::Frozen(inner) => check_frozen(ks, inner, top),
        CqlType::Tuple(items) => items
            .iter()
            .try_for_each(|t| check(ks, t, top, Ctx::InFrozen)),
        CqlType::List(_) | CqlType::Set(_) | CqlType::Map(_, _) => {
            if ctx == Ctx::InCollection {
                return Err(invalid(format!(
                    "Non-frozen collections are not allowed inside collections: {top}"
                )));
            }
            let inner = if ctx == Ctx::InFrozen {
                Ctx::InFrozen
            } else {
                Ctx::InCollection
            };
            check_collection(ks, ty, top, inner)
        }
        CqlType::UserType { keyspace, name } => {
            check_udt(ks, keyspace.as_deref(), name)?;
            if ctx == Ctx::InCollection {
                return Err(invalid(format!(
                    "Non-frozen UDTs are not allowed inside collections: {top}"
                )));
            }
            Ok(())
        }
    }
}

fn check_frozen(ks: &KeyspaceDef, inner: &CqlType, top: &CqlType) -> Result<(), SchemaError> {
    match inner.unfrozen() {
        CqlType::Native(_) | CqlType::Custom(_) => Err(invalid(format!(
            "frozen<> is only allowed on collections, tuples, and user-defined types (got {inner})"
        ))),
        CqlType::UserType { keyspace, name } => check_udt(ks, keyspace.as_deref(), name),
        CqlType::Tuple(items) => items
            .iter()
            .try_for_each(|t| check(ks, t, top, Ctx::InFrozen)),
        collection => check_collection(ks, collection, top, Ctx::InFrozen),
    }
}

/// Checks the element types of a list, set or map in context `inner`.
fn check_collection(
    ks: &KeyspaceDef,
    ty: &CqlType,
    top: &CqlType,
    inner: Ctx,
) -> Result<(), SchemaError> {
    match ty {
        CqlType::List(e) => check(ks, e, top, inner),
        CqlType::Set(e) => {
            if is_duration(e) {
                return Err(invalid(format!(
                    "Durations are not allowed inside sets: {top}"
                )));
            }
            check(ks, e, top, inner)
        }
        CqlType::Map(k, v) => {
            if is_duration(k) {
                return Err(invalid(format!(
                    "Durations are not allowed as map keys: {top}"
                )));
            }
            check(ks, k, top, inner)?;
            check(ks, v, top, inner)
        }
        _ => Ok(()),
    }
}

fn is_duration(ty: &CqlType) -> bool {
    matches!(ty, CqlType::Native(NativeType::Duration))
}

fn check_udt(ks: &KeyspaceDef, qualifier: Option<&str>, name: &str) -> Result<(), SchemaError> {
    if let Some(other) = qualifier {
        if other != ks.name {
            return Err(invalid(format!(
                "Statement on keyspace {} cannot refer to a user type in keyspace {other}; user types can only be used in the keyspace they are defined in",
                ks.name
            )));
        }
    }
    if !ks.types.contains_key(name) {
        return Err(invalid(format!("Unknown type {}.{name}", ks.name)));
    }
    Ok(())
}

/// Drops keyspace qualifiers from user type references: a type can only refer to types
/// of its own keyspace, and Cassandra stores and prints the bare name.
fn unqualify(ty: &CqlType) -> CqlType {
    match ty {
        CqlType::UserType { name, .. } => CqlType::udt(name),
        CqlType::List(e) => CqlType::list(unqualify(e)),
        CqlType::Set(e) => CqlType::set(unqualify(e)),
        CqlType::Map(k, v) => CqlType::map(unqualify(k), unqualify(v)),
        CqlType::Frozen(e) => CqlType::frozen(unqualify(e)),
        CqlType::Tuple(items) => CqlType::Tuple(items.iter().map(unqualify).collect()),
        other => other.clone(),
    }
}

/// True when `ty` mentions `duration` anywhere (not allowed in primary keys).
pub(crate) fn references_duration(ty: &CqlType) -> bool {
    match ty {
        CqlType::Native(n) => *n == NativeType::Duration,
        CqlType::List(e) | CqlType::Set(e) | CqlType::Frozen(e) => references_duration(e),
        CqlType::Map(k, v) => references_duration(k) || references_duration(v),
        CqlType::Tuple(items) => items.iter().any(references_duration),
        CqlType::UserType { .. } | CqlType::Custom(_) => false,
    }
}

/// True when `ty` mentions the user type `name`.
pub(crate) fn references_udt(ty: &CqlType, name: &str) -> bool {
    match ty {
        CqlType::UserType { name: n, .. } => n == name,
        CqlType::List(e) | CqlType::Set(e) | CqlType::Frozen(e) => references_udt(e, name),
        CqlType::Map(k, v) => references_udt(k, name) || references_udt(v, name),
        CqlType::Tuple(items) => items.iter().any(|t| references_udt(t, name)),
        CqlType::Native(_) | CqlType::Custom(_) => false,
    }
}
