//! The recursive-descent CQL parser: tokens to a [`Statement`].
//!
//! One `Parser` walks the token vector with one token of lookahead (a little more where
//! CQL needs it, e.g. to tell a cast from a tuple). Grammar pieces live in submodules:
//! `terms` (literals, bind markers, types, WITH options), `select`, `ddl`, `dml`
//! and `describe`. Errors carry the offending token's line and column and a snippet of the
//! query with that token in brackets, as Cassandra's ErrorCollector prints them.

mod ddl;
mod describe;
mod dml;
mod select;
mod terms;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dml;
#[cfg(test)]
mod tests_select;

use super::ast::{QualifiedName, Statement};
use super::lexer::{tokenize, Token, TokenKind};
use super::types::is_reserved_keyword;

/// Where and why parsing failed, formatted like Cassandra's syntax errors:
/// `line 1:7 no viable alternative at input 'FRM' (SELECT * [FRM]...)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}:{column} {message}")]
pub struct ParseError {
    /// 1-based line of the offending token.
    pub line: usize,
    /// 0-based column (characters) of the offending token, as ANTLR counts it.
    pub column: usize,
    /// What went wrong, with a snippet of the input around the offending token.
    pub message: String,
}

/// Parses one CQL statement (a trailing `;` is allowed).
pub fn parse_statement(text: &str) -> std::result::Result<Statement, ParseError> {
    let mut parser = Parser::new(text)?;
    let statement = parser.statement()?;
    parser.finish()?;
    Ok(statement)
}

type Result<T> = std::result::Result<T, ParseError>;

/// Terms, selectors and types nested deeper than this are rejected, so hostile input
/// cannot exhaust the stack.
const MAX_DEPTH: usize = 100;

/// Stands in for the token past the end; the token vector always ends with Eof anyway.
static EOF: Token = Token {
    kind: TokenKind::Eof,
    line: 1,
    column: 0,
    start: 0,
    end: 0,
};

pub(crate) struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> Result<Self> {
        Ok(Parser {
            source,
            tokens: tokenize(source)?,
            pos: 0,
            depth: 0,
        })
    }

    fn statement(&mut self) -> Result<Statement> {
        let Some(word) = self.peek_ident().map(str::to_string) else {
            return Err(self.no_viable());
        };
        match word.as_str() {
            "select" => self.select().map(Statement::Select),
            "use" => {
                self.advance();
                Ok(Statement::Use(self.ident()?))
            }
            "create" => self.create(),
            "alter" => self.alter(),
            "drop" => self.drop_statement(),
            "describe" | "desc" => self.describe().map(Statement::Describe),
            "insert" => self.insert().map(Statement::Insert),
            "update" => self.update().map(Statement::Update),
            "delete" => self.delete().map(Statement::Delete),
            "begin" => self.batch().map(Statement::Batch),
            "truncate" => self.truncate(),
            "grant" | "revoke" | "list" => {
                let what = word.to_ascii_uppercase();
                Ok(self.unsupported(what))
            }
            _ => Err(self.no_viable()),
        }
    }

    /// A statement recognised by its leading keywords only; the rest is skipped.
    fn unsupported(&mut self, what: String) -> Statement {
        self.pos = self.tokens.len().saturating_sub(1);
        Statement::Unsupported { what }
    }

    /// After the statement: an optional `;`, then the end of input.
    fn finish(&mut self) -> Result<()> {
        self.eat_punct(";");
        if self.peek().kind == TokenKind::Eof {
            Ok(())
        } else {
            Err(self.mismatched("EOF"))
        }
    }

    // ---- token access ----

    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Token {
        self.tokens
            .get(self.pos + n)
            .or(self.tokens.last())
            .unwrap_or(&EOF)
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    /// The next token's word if it is an unquoted identifier (keywords included).
    fn peek_ident(&self) -> Option<&str> {
        self.ident_at(0)
    }

    fn ident_at(&self, n: usize) -> Option<&str> {
        match &self.peek_at(n).kind {
            TokenKind::Ident(w) => Some(w),
            _ => None,
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.peek_ident() == Some(kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let found = self.is_kw(kw);
        if found {
            self.advance();
        }
        found
    }

    fn expect_kw(&mut self, kw: &str) -> Result<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.mismatched(&format!("K_{}", kw.to_ascii_uppercase())))
        }
    }

    fn is_punct(&self, p: &str) -> bool {
        self.peek().kind == TokenKind::Punct(punct_static(p))
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let found = self.is_punct(p);
        if found {
            self.advance();
        }
        found
    }

    fn expect_punct(&mut self, p: &str) -> Result<()> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.mismatched(&format!("'{p}'")))
        }
    }

    /// `IF NOT EXISTS`, if present.
    fn if_not_exists(&mut self) -> Result<bool> {
        if !self.eat_kw("if") {
            return Ok(false);
        }
        self.expect_kw("not")?;
        self.expect_kw("exists")?;
        Ok(true)
    }

    /// `IF EXISTS`, if present.
    fn if_exists(&mut self) -> Result<bool> {
        if !self.eat_kw("if") {
            return Ok(false);
        }
        self.expect_kw("exists")?;
        Ok(true)
    }

    // ---- names ----

    /// True if the next token can be a name: a quoted identifier or an unquoted one that
    /// is not a reserved keyword.
    fn at_ident(&self) -> bool {
        match &self.peek().kind {
            TokenKind::QuotedIdent(_) => true,
            TokenKind::Ident(w) => !is_reserved_keyword(w),
            _ => false,
        }
    }

    /// A name: unquoted (already lower-cased, not reserved) or quoted (case kept).
    fn ident(&mut self) -> Result<String> {
        if !self.at_ident() {
            return Err(self.no_viable());
        }
        match self.advance().kind {
            TokenKind::Ident(w) | TokenKind::QuotedIdent(w) => Ok(w),
            _ => Err(self.no_viable()),
        }
    }

    /// `name` or `keyspace.name`.
    fn qualified_name(&mut self) -> Result<QualifiedName> {
        let first = self.ident()?;
        if self.eat_punct(".") {
            let name = self.ident()?;
            return Ok(QualifiedName {
                keyspace: Some(first),
                name,
            });
        }
        Ok(QualifiedName {
            keyspace: None,
            name: first,
        })
    }

    /// `(a, b, ...)` of names.
    fn ident_list(&mut self) -> Result<Vec<String>> {
        self.expect_punct("(")?;
        let mut names = vec![self.ident()?];
        while self.eat_punct(",") {
            names.push(self.ident()?);
        }
        self.expect_punct(")")?;
        Ok(names)
    }

    /// Enters one level of nesting; pair with `leave`.
    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here("expression nested too deeply".into()));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ---- errors ----

    fn token_text(&self, token: &Token) -> String {
        match token.kind {
            TokenKind::Eof => "<EOF>".into(),
            _ => self
                .source
                .get(token.start..token.end)
                .unwrap_or("")
                .to_string(),
        }
    }

    fn no_viable(&self) -> ParseError {
        let text = self.token_text(self.peek());
        self.error_here(format!("no viable alternative at input '{text}'"))
    }

    fn mismatched(&self, expecting: &str) -> ParseError {
        let text = self.token_text(self.peek());
        self.error_here(format!("mismatched input '{text}' expecting {expecting}"))
    }

    /// An error at the next token, with Cassandra's query snippet appended.
    fn error_here(&self, message: String) -> ParseError {
        let token = self.peek();
        let snippet = self.snippet(self.pos.min(self.tokens.len().saturating_sub(1)));
        let message = if snippet.is_empty() {
            message
        } else {
            format!("{message} ({snippet})")
        };
        ParseError {
            line: token.line,
            column: token.column,
            message,
        }
    }

    /// Up to ten tokens before the offending one and two after, the offending token in
    /// brackets, `...` where the query goes on (ErrorCollector.appendSnippet).
    fn snippet(&self, index: usize) -> String {
        let last_real = self.tokens.len().saturating_sub(2);
        let (Some(offending), Some(from)) = (
            self.tokens.get(index),
            self.tokens.get(index.saturating_sub(10)),
        ) else {
            return String::new();
        };
        if offending.kind == TokenKind::Eof {
            return String::new();
        }
        let to = self
            .tokens
            .get((index + 2).min(last_real))
            .map_or(offending.end, |t| t.end);
        let part = |a: usize, b: usize| self.source.get(a..b).unwrap_or("").replace('\n', " ");
        let mut out = String::new();
        if from.start > 0 {
            out.push_str("...");
        }
        out.push_str(&part(from.start, offending.start));
        out.push('[');
        out.push_str(&part(offending.start, offending.end));
        out.push(']');
        out.push_str(&part(offending.end, to));
        if to < self.source.trim_end().len() {
            out.push_str("...");
        }
        out
    }
}

/// Maps a punctuation string to the lexer's static form so it can be compared.
fn punct_static(p: &str) -> &'static str {
    const ALL: [&str; 23] = [
        "<=", ">=", "!=", "..", "(", ")", "[", "]", "{", "}", ",", ";", ".", "*", "=", "<", ">",
        "+", "-", "/", "%", ":", "?",
    ];
    ALL.into_iter().find(|q| *q == p).unwrap_or("")
}
