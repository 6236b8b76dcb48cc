//! CQL's native scalar functions — the time functions (`now()`, `toTimestamp(...)`,
//! `dateOf(...)`, `minTimeuuid(...)` and kin), the `typeAsBlob` / `blobAsType` family for
//! every native type, and the casts of Cassandra's `CastFcts` (`CAST(x AS type)`, which
//! Cassandra also names `castAsType(x)`) — with Cassandra's signatures, result types and
//! arithmetic. Selectors, WHERE values and INSERT/UPDATE values all call them through
//! [`resolve`] and [`Function::call`].
//!
//! Resolution follows Cassandra's `FunctionResolver` in small: the candidates are the
//! signatures of the name; an argument of known type (a column, another call) must match a
//! parameter exactly (ascii may stand for text, counter for bigint), and an argument without
//! one (a literal, a bind marker) must be convertible to it. One candidate left is the call;
//! none or several are refused with Cassandra's messages. `time.rs` has the time
//! arithmetic and the timeuuid generator, `cast.rs` the conversions.

mod cast;
pub(crate) mod time;

use bytes::Bytes;

use crate::cql::ast::Term;
use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};

use time::{
    date_of_millis, millis_of, ticks_of_millis, MAX_CLOCK_SEQ_AND_NODE, MILLIS_PER_DAY,
    MIN_CLOCK_SEQ_AND_NODE,
};
pub(crate) use time::{next_timeuuid_ticks, prepend_timeuuid_ticks, timeuuid_bytes};

/// A native function with its argument type fixed by resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    Now,
    Uuid,
    CurrentTimestamp,
    CurrentDate,
    CurrentTime,
    /// `toTimestamp` (and `dateOf`) of a value of the given time type.
    ToTimestamp(NativeType),
    ToDate(NativeType),
    /// `toUnixTimestamp` (and `unixTimestampOf`): milliseconds as a bigint.
    ToUnixTimestamp(NativeType),
    MinTimeuuid,
    MaxTimeuuid,
    /// `typeAsBlob`: the value's bytes as a blob.
    AsBlob(NativeType),
    /// `blobAsType`: a blob's bytes as the type, checked.
    BlobAs(NativeType),
    /// `CAST(x AS to)` of a `from` value.
    Cast {
        from: NativeType,
        to: NativeType,
    },
}

/// One signature of a function name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    function: Function,
    param: Option<NativeType>,
    result: NativeType,
}

/// Functions Cassandra has that this build does not (aggregates other than count).
const UNSUPPORTED_AGGREGATES: [&str; 4] = ["min", "max", "sum", "avg"];

/// Whether `name` (lower case, with or without `system.`) names a native function, so a
/// statement calling anything else can be refused when it is prepared.
pub(crate) fn is_known(name: &str) -> bool {
    let name = bare(name);
    !signatures(name).is_empty()
        || UNSUPPORTED_AGGREGATES.contains(&name)
        || matches!(name, "token" | "count" | "writetime" | "ttl" | "tojson")
}

/// The name without Cassandra's `system.` keyspace.
fn bare(name: &str) -> &str {
    name.strip_prefix("system.").unwrap_or(name)
}

/// The candidates for `name`.
fn signatures(name: &str) -> Vec<Signature> {
    use NativeType as N;
    let sig = |function, param, result| Signature {
        function,
        param,
        result,
    };
    let one = |function, param, result| vec![sig(function, Some(param), result)];
    match name {
        "now" | "currenttimeuuid" => vec![sig(Function::Now, None, N::Timeuuid)],
        "uuid" => vec![sig(Function::Uuid, None, N::Uuid)],
        "currenttimestamp" => vec![sig(Function::CurrentTimestamp, None, N::Timestamp)],
        "currentdate" => vec![sig(Function::CurrentDate, None, N::Date)],
        "currenttime" => vec![sig(Function::CurrentTime, None, N::Time)],
        "mintimeuuid" => one(Function::MinTimeuuid, N::Timestamp, N::Timeuuid),
        "maxtimeuuid" => one(Function::MaxTimeuuid, N::Timestamp, N::Timeuuid),
        "dateof" => one(
            Function::ToTimestamp(N::Timeuuid),
            N::Timeuuid,
            N::Timestamp,
        ),
        "unixtimestampof" => one(
            Function::ToUnixTimestamp(N::Timeuuid),
            N::Timeuuid,
            N::Bigint,
        ),
        "totimestamp" => [N::Timeuuid, N::Date]
            .map(|t| sig(Function::ToTimestamp(t), Some(t), N::Timestamp))
            .to_vec(),
        "todate" => [N::Timeuuid, N::Timestamp]
            .map(|t| sig(Function::ToDate(t), Some(t), N::Date))
            .to_vec(),
        "tounixtimestamp" => [N::Timeuuid, N::Timestamp, N::Date]
            .map(|t| sig(Function::ToUnixTimestamp(t), Some(t), N::Bigint))
            .to_vec(),
        _ => blob_signatures(name)
            .or_else(|| cast_signatures(name))
            .unwrap_or_default(),
    }
}

/// `typeasblob` and `blobastype` (`varchar` spelled as well as `text`); blob has neither.
fn blob_signatures(name: &str) -> Option<Vec<Signature>> {
    let type_named = |n: &str| NativeType::from_name(n).filter(|t| *t != NativeType::Blob);
    if let Some(ty) = name.strip_suffix("asblob").and_then(type_named) {
        return Some(vec![Signature {
            function: Function::AsBlob(ty),
            param: Some(ty),
            result: NativeType::Blob,
        }]);
    }
    let ty = name.strip_prefix("blobas").and_then(type_named)?;
    Some(vec![Signature {
        function: Function::BlobAs(ty),
        param: Some(NativeType::Blob),
        result: ty,
    }])
}

/// `castastype`: one signature per type Cassandra casts to it from.
fn cast_signatures(name: &str) -> Option<Vec<Signature>> {
    let to = NativeType::from_name(name.strip_prefix("castas")?)?;
    let from: Vec<Signature> = NativeType::ALL
        .into_iter()
        .filter(|from| cast::castable(*from, to))
        .map(|from| Signature {
            function: Function::Cast { from, to },
            param: Some(from),
            result: to,
        })
        .collect();
    (!from.is_empty()).then_some(from)
}

/// An argument as resolution sees it, with its CQL text for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// A value of a known type: a column, or another call.
    Typed(&'a CqlType, &'a str),
    /// A literal or a bind marker, which takes its type from the parameter if it can.
    Untyped(&'a str),
}

/// Resolves a call of `name` on `args` to a function and its result type. `fits(i, t)`
/// says whether untyped argument `i` converts to `t`. `name` must be known ([`is_known`]).
pub(crate) fn resolve(
    name: &str,
    args: &[Arg<'_>],
    fits: &dyn Fn(usize, NativeType) -> bool,
) -> Result<(Function, CqlType)> {
    let name = bare(name);
    if UNSUPPORTED_AGGREGATES.contains(&name) {
        return Err(Error::not_supported(
            format_args!("Aggregate function {name}()"),
            Some(" (count(*) and count(column) are)"),
        ));
    }
    let candidates = signatures(name);
    let arity = |s: &Signature| usize::from(s.param.is_some());
    if candidates.iter().all(|s| arity(s) != args.len()) {
        let required = candidates.first().map_or(0, arity);
        return Err(Error::invalid(format!(
            "Invalid number of arguments in call to function system.{name}: {required} required but {} provided",
            args.len()
        )));
    }
    let matches = |s: &Signature, exact: bool| match (s.param, args.first()) {
        (None, None) => true,
        (Some(param), Some(Arg::Typed(ty, _))) => accepts(param, ty, exact),
        (Some(param), Some(Arg::Untyped(_))) => fits(0, param),
        _ => false,
    };
    let exact: Vec<&Signature> = candidates.iter().filter(|s| matches(s, true)).collect();
    let found: Vec<&Signature> = match exact.len() {
        1 => exact,
        _ => candidates.iter().filter(|s| matches(s, false)).collect(),
    };
    match found.as_slice() {
        [one] => Ok((one.function, CqlType::Native(one.result))),
        [] => Err(no_match(name, &candidates, args)),
        many => Err(Error::invalid(format!(
            "Ambiguous call to function system.{name} (can be matched by following signatures: {}): use type casts to disambiguate",
            listing(name, many.iter().copied())
        ))),
    }
}

/// Whether a `ty` value may be passed for `param`: the same type, or (not `exact`) one
/// Cassandra's types accept in its place.
fn accepts(param: NativeType, ty: &CqlType, exact: bool) -> bool {
    let CqlType::Native(ty) = ty.unfrozen() else {
        return false;
    };
    use NativeType as N;
    *ty == param
        || (!exact
            && matches!(
                (param, ty),
                (N::Text, N::Ascii) | (N::Bigint, N::Counter) | (N::Uuid, N::Timeuuid)
            ))
}

fn no_match(name: &str, candidates: &[Signature], args: &[Arg<'_>]) -> Error {
    if let ([only], [arg]) = (candidates, args) {
        let given = match arg {
            Arg::Typed(_, text) | Arg::Untyped(text) => text,
        };
        let param = only.param.map_or("", NativeType::name);
        return Error::invalid(format!(
            "Type error: {given} cannot be passed as argument 0 of function system.{name} of type {param}"
        ));
    }
    Error::invalid(format!(
        "Invalid call to function system.{name}, none of its type signatures match (known type signatures: {})",
        listing(name, candidates.iter())
    ))
}

fn listing<'s>(name: &str, signatures: impl Iterator<Item = &'s Signature>) -> String {
    signatures
        .map(|s| {
            let param = s.param.map_or("", NativeType::name);
            format!("system.{name} : ({param}) -> {}", s.result)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Converts a literal term to a value of a type (the caller's conversion rules).
pub(crate) type Literal<'a> = &'a dyn Fn(&Term, &CqlType) -> std::result::Result<Bytes, String>;

/// Evaluates the call `name(args)` written as a term (a WHERE value, an INSERT or UPDATE
/// value): its value and result type. Arguments are nested calls, typed casts
/// (`(int)3`), literals and bind markers; `literal` converts a literal (or takes a
/// marker's bound value) as the parameter's type.
pub(crate) fn evaluate(
    name: &str,
    args: &[Term],
    literal: Literal<'_>,
) -> Result<(Option<Bytes>, CqlType)> {
    let (function, result, typed) = resolve_term(name, args, literal)?;
    let value = match (typed.into_iter().next(), args.first(), function.param()) {
        (Some(Some((value, _))), _, _) => value,
        (_, Some(Term::Null), _) | (_, None, _) | (_, _, None) => None,
        (_, Some(term), Some(param)) => {
            Some(literal(term, &CqlType::Native(param)).map_err(Error::invalid)?)
        }
    };
    Ok((function.call(value.as_deref())?, result))
}

/// The types of the bind markers among the arguments of the call `name(args)`, by
/// argument position: what PREPARE announces for them.
pub(crate) fn marker_types(
    name: &str,
    args: &[Term],
    literal: Literal<'_>,
) -> Result<Vec<(usize, NativeType)>> {
    let (function, _, _) = resolve_term(name, args, literal)?;
    Ok(args
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Term::BindMarker(_)))
        .filter_map(|(i, _)| function.param().map(|p| (i, p)))
        .collect())
}

/// A value from a term argument, with its type, where the argument has one of its own.
type TypedArg = Option<(Option<Bytes>, CqlType)>;

/// Resolves a call written as a term; nested calls and casts are evaluated for their type.
fn resolve_term(
    name: &str,
    args: &[Term],
    literal: Literal<'_>,
) -> Result<(Function, CqlType, Vec<TypedArg>)> {
    let selector_only = matches!(
        bare(name),
        "token" | "count" | "writetime" | "ttl" | "tojson"
    );
    if !is_known(name) || selector_only {
        return Err(Error::invalid(format!("Unknown function {name} called")));
    }
    let mut typed: Vec<TypedArg> = Vec::with_capacity(args.len());
    for arg in args {
        typed.push(match arg {
            Term::FunctionCall { name, args } => Some(evaluate(name, args, literal)?),
            Term::Cast { ty, term } => {
                Some((Some(literal(term, ty).map_err(Error::invalid)?), ty.clone()))
            }
            _ => None,
        });
    }
    let texts: Vec<String> = args.iter().map(super::restrict::term_text).collect();
    let kinds: Vec<Arg<'_>> = typed
        .iter()
        .zip(&texts)
        .map(|(t, text)| match t {
            Some((_, ty)) => Arg::Typed(ty, text),
            None => Arg::Untyped(text),
        })
        .collect();
    // A marker or a null fits any parameter (Cassandra's "weakly assignable").
    let fits = |i: usize, t: NativeType| match &args[i] {
        Term::Null | Term::BindMarker(_) => true,
        term => literal(term, &CqlType::Native(t)).is_ok(),
    };
    let (function, result) = resolve(name, &kinds, &fits)?;
    Ok((function, result, typed))
}

impl Function {
    /// Whether the function answers differently from call to call: the time now, or a
    /// fresh identifier.
    pub fn varies(self) -> bool {
        matches!(
            self,
            Function::Now
                | Function::Uuid
                | Function::CurrentTimestamp
                | Function::CurrentDate
                | Function::CurrentTime
        )
    }

    /// The type of the function's argument; None for a function of none.
    pub fn param(self) -> Option<NativeType> {
        match self {
            Function::Now
            | Function::Uuid
            | Function::CurrentTimestamp
            | Function::CurrentDate
            | Function::CurrentTime => None,
            Function::ToTimestamp(t)
            | Function::ToDate(t)
            | Function::ToUnixTimestamp(t)
            | Function::AsBlob(t) => Some(t),
            Function::MinTimeuuid | Function::MaxTimeuuid => Some(NativeType::Timestamp),
            Function::BlobAs(_) => Some(NativeType::Blob),
            Function::Cast { from, .. } => Some(from),
        }
    }

    /// Applies the function to its serialized argument (None for no argument or null).
    pub fn call(self, arg: Option<&[u8]>) -> Result<Option<Bytes>> {
        let now_ms = crate::clock::now_micros() / 1000;
        let bytes = |b: &[u8]| Some(Bytes::copy_from_slice(b));
        Ok(match self {
            Function::Now => bytes(&timeuuid_bytes(next_timeuuid_ticks())),
            Function::Uuid => bytes(uuid::Uuid::new_v4().as_bytes()),
            Function::CurrentTimestamp => bytes(&now_ms.to_be_bytes()),
            Function::CurrentDate => bytes(&date_of_millis(now_ms).to_be_bytes()),
            Function::CurrentTime => {
                let nanos = now_ms.rem_euclid(MILLIS_PER_DAY) * 1_000_000;
                bytes(&nanos.to_be_bytes())
            }
            Function::AsBlob(_) => arg.map(Bytes::copy_from_slice),
            Function::BlobAs(ty) => match arg {
                Some(value) => Some(cast::blob_as(ty, value)?),
                None => None,
            },
            Function::Cast { from, to } => match arg.filter(|v| !cast::is_empty_value(from, v)) {
                Some(value) => Some(cast::cast(from, to, value)?),
                None => None,
            },
            _ => self.call_time(arg)?,
        })
    }

    /// The functions of one time argument.
    fn call_time(self, arg: Option<&[u8]>) -> Result<Option<Bytes>> {
        let (ty, result) = match self {
            Function::ToTimestamp(t) | Function::ToUnixTimestamp(t) => (t, NativeType::Bigint),
            Function::ToDate(t) => (t, NativeType::Date),
            _ => (NativeType::Timestamp, NativeType::Timeuuid),
        };
        let Some(value) = arg.filter(|b| !b.is_empty()) else {
            return Ok(None);
        };
        let ms = millis_of(value, ty)
            .ok_or_else(|| Error::invalid(format!("Invalid {ty} value for a time function")))?;
        let out = match (self, result) {
            (_, NativeType::Bigint) => ms.to_be_bytes().to_vec(),
            (_, NativeType::Date) => date_of_millis(ms).to_be_bytes().to_vec(),
            (Function::MinTimeuuid, _) => timeuuid_at(ticks_of_millis(ms), MIN_CLOCK_SEQ_AND_NODE),
            // The last 100 ns tick of the millisecond (Cassandra's UUIDGen.maxTimeUUID).
            _ => timeuuid_at(
                ticks_of_millis(ms.saturating_add(1)).saturating_sub(1),
                MAX_CLOCK_SEQ_AND_NODE,
            ),
        };
        Ok(Some(Bytes::from(out)))
    }
}

fn timeuuid_at(ticks: u64, tail: [u8; 8]) -> Vec<u8> {
    let mut bytes = timeuuid_bytes(ticks);
    bytes[8..].copy_from_slice(&tail);
    bytes.to_vec()
}

/// Whether a cast from `from` to `to` exists (Cassandra's `CastFcts`); a cast to the same
/// type is the value itself.
pub(crate) fn castable(from: NativeType, to: NativeType) -> bool {
    from == to || cast::castable(from, to)
}

#[cfg(test)]
mod tests;
