//! The CQL language: lexer, recursive-descent parser, statement AST, types and values.
//!
//! Text goes in, a [`ast::Statement`] comes out, or a [`ParseError`] that says where the
//! text stopped making sense (line and column, as Cassandra's "line 1:12 no viable
//! alternative" messages do). Identifiers are normalised while parsing: unquoted names are
//! lower-cased, double-quoted ones keep their case, so the rest of the server compares names
//! with `==`. Types ([`types::CqlType`]) are parsed here and printed in the exact form
//! Cassandra stores in `system_schema.columns.type` and prints in DESCRIBE. Values
//! ([`value::CqlValue`]) convert between literals, wire bytes and JSON.

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod script;
pub mod serialized;
pub mod temporal;
pub mod types;
pub mod value;

pub use ast::Statement;
pub use parser::{parse_statement, ParseError};
pub use script::split_script;
pub use types::{is_reserved_keyword, maybe_quote, CqlType, NativeType, TypeParseError};
