//! Terms (literals, bind markers, collection literals, calls, casts), types as written in
//! statements, and `WITH` option values.

use super::{Parser, Result};
use crate::cql::ast::{OptionValue, Term};
use crate::cql::lexer::TokenKind;
use crate::cql::types::{is_reserved_keyword, CqlType, NativeType};

impl Parser<'_> {
    /// A term, with the nesting guard around it.
    pub(super) fn term(&mut self) -> Result<Term> {
        self.enter()?;
        let term = self.term_inner();
        self.leave();
        term
    }

    fn term_inner(&mut self) -> Result<Term> {
        if let Some(term) = self.literal() {
            self.advance();
            return Ok(term);
        }
        match &self.peek().kind {
            TokenKind::Punct("-") => self.negative_special(),
            TokenKind::Punct("?") => {
                self.advance();
                Ok(Term::BindMarker(None))
            }
            TokenKind::Punct(":") => {
                self.advance();
                Ok(Term::BindMarker(Some(self.ident()?)))
            }
            TokenKind::Punct("[") => self.list_literal(),
            TokenKind::Punct("{") => self.brace_literal(),
            TokenKind::Punct("(") => self.cast_or_tuple(),
            TokenKind::Ident(w) if w == "null" => {
                self.advance();
                Ok(Term::Null)
            }
            TokenKind::Ident(_) | TokenKind::QuotedIdent(_) if self.at_call() => {
                let (name, args) = self.call(|p| p.term())?;
                Ok(Term::FunctionCall { name, args })
            }
            _ => Err(self.no_viable()),
        }
    }

    /// The next token as a literal term, if it is one (the caller advances).
    fn literal(&self) -> Option<Term> {
        Some(match &self.peek().kind {
            TokenKind::String(s) => Term::String(s.clone()),
            TokenKind::Integer(s) => Term::Integer(s.clone()),
            TokenKind::Float(s) => Term::Float(s.clone()),
            TokenKind::Boolean(b) => Term::Boolean(*b),
            TokenKind::Uuid(s) => Term::Uuid(s.clone()),
            TokenKind::Blob(s) => Term::Blob(s.clone()),
            TokenKind::Duration(s) => Term::Duration(s.clone()),
            _ => return None,
        })
    }

    /// `-NaN` / `-Infinity`: the lexer only folds the sign into digits.
    fn negative_special(&mut self) -> Result<Term> {
        if let TokenKind::Float(f) = &self.peek_at(1).kind {
            if f == "NaN" || f == "Infinity" {
                let term = Term::Float(format!("-{f}"));
                self.advance();
                self.advance();
                return Ok(term);
            }
        }
        Err(self.no_viable())
    }

    /// True at `name(` or `ks.name(`: a function call.
    pub(super) fn at_call(&self) -> bool {
        let open = |n: usize| self.peek_at(n).kind == TokenKind::Punct("(");
        let dot = self.peek_at(1).kind == TokenKind::Punct(".");
        let named = |n: usize| {
            matches!(
                self.peek_at(n).kind,
                TokenKind::Ident(_) | TokenKind::QuotedIdent(_)
            )
        };
        named(0) && (open(1) || (dot && named(2) && open(3)))
    }

    /// `name(arg, ...)` or `ks.name(...)`; function names may be keywords such as
    /// `token`, so they are taken without the reserved-word check.
    pub(super) fn call<T>(
        &mut self,
        mut arg: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<(String, Vec<T>)> {
        let mut name = self.any_name()?;
        if self.eat_punct(".") {
            name = format!("{name}.{}", self.any_name()?);
        }
        self.expect_punct("(")?;
        let mut args = Vec::new();
        if !self.eat_punct(")") {
            args.push(arg(self)?);
            while self.eat_punct(",") {
                args.push(arg(self)?);
            }
            self.expect_punct(")")?;
        }
        Ok((name, args))
    }

    /// Any identifier, reserved or not.
    pub(super) fn any_name(&mut self) -> Result<String> {
        match &self.peek().kind {
            TokenKind::Ident(w) | TokenKind::QuotedIdent(w) => {
                let name = w.clone();
                self.advance();
                Ok(name)
            }
            _ => Err(self.no_viable()),
        }
    }

    fn list_literal(&mut self) -> Result<Term> {
        self.expect_punct("[")?;
        let items = self.terms_until("]")?;
        Ok(Term::List(items))
    }

    /// Terms separated by commas up to the closing punctuation (consumed).
    pub(super) fn terms_until(&mut self, close: &str) -> Result<Vec<Term>> {
        let mut items = Vec::new();
        if self.eat_punct(close) {
            return Ok(items);
        }
        items.push(self.term()?);
        while self.eat_punct(",") {
            items.push(self.term()?);
        }
        self.expect_punct(close)?;
        Ok(items)
    }

    /// `{}` (an empty map), `{k: v, ...}` map, `{a, b}` set, or `{field: v}` user type.
    fn brace_literal(&mut self) -> Result<Term> {
        self.expect_punct("{")?;
        if self.eat_punct("}") {
            return Ok(Term::Map(Vec::new()));
        }
        if self.at_ident() && self.peek_at(1).kind == TokenKind::Punct(":") {
            return self.user_type_literal();
        }
        let first = self.term()?;
        if !self.eat_punct(":") {
            let mut items = vec![first];
            while self.eat_punct(",") {
                items.push(self.term()?);
            }
            self.expect_punct("}")?;
            return Ok(Term::Set(items));
        }
        let mut entries = vec![(first, self.term()?)];
        while self.eat_punct(",") {
            let key = self.term()?;
            self.expect_punct(":")?;
            entries.push((key, self.term()?));
        }
        self.expect_punct("}")?;
        Ok(Term::Map(entries))
    }

    fn user_type_literal(&mut self) -> Result<Term> {
        let mut fields = Vec::new();
        loop {
            let name = self.ident()?;
            self.expect_punct(":")?;
            fields.push((name, self.term()?));
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct("}")?;
        Ok(Term::UserType(fields))
    }

    /// `(type) term` or a tuple `(t, ...)`. A cast is tried first and abandoned if the
    /// parenthesised text is not a type followed by a term.
    fn cast_or_tuple(&mut self) -> Result<Term> {
        let start = self.pos;
        if let Some(term) = self.try_cast() {
            return Ok(term);
        }
        self.pos = start;
        self.expect_punct("(")?;
        Ok(Term::Tuple(self.terms_until(")")?))
    }

    fn try_cast(&mut self) -> Option<Term> {
        let depth = self.depth;
        let starts_type = matches!(
            self.peek_at(1).kind,
            TokenKind::Ident(_) | TokenKind::QuotedIdent(_)
        );
        if !starts_type || self.at_call_from(1) {
            return None;
        }
        self.advance();
        let ty = self.cql_type().ok()?;
        if !self.eat_punct(")") || self.ends_term() {
            self.depth = depth;
            return None;
        }
        let term = self.term().ok()?;
        Some(Term::Cast {
            ty,
            term: Box::new(term),
        })
    }

    fn at_call_from(&self, n: usize) -> bool {
        self.peek_at(n + 1).kind == TokenKind::Punct("(")
    }

    /// True when the next token cannot start a term.
    fn ends_term(&self) -> bool {
        matches!(
            self.peek().kind,
            TokenKind::Eof | TokenKind::Punct(",") | TokenKind::Punct(")") | TokenKind::Punct(";")
        )
    }

    /// A type as written in a statement: native names, `list<..>`, `set<..>`,
    /// `map<.., ..>`, `tuple<..>`, `frozen<..>`, `[ks.]udt`, `'custom.Class'`.
    pub(super) fn cql_type(&mut self) -> Result<CqlType> {
        self.enter()?;
        let ty = self.cql_type_inner();
        self.leave();
        ty
    }

    fn cql_type_inner(&mut self) -> Result<CqlType> {
        let word = match &self.peek().kind {
            TokenKind::String(class) => {
                let ty = CqlType::Custom(class.clone());
                self.advance();
                return Ok(ty);
            }
            TokenKind::QuotedIdent(_) => return self.udt_type(),
            TokenKind::Ident(w) => w.clone(),
            _ => return Err(self.no_viable()),
        };
        let generic = self.peek_at(1).kind == TokenKind::Punct("<");
        if generic && matches!(word.as_str(), "list" | "set" | "map" | "frozen" | "tuple") {
            self.advance();
            return self.generic_type(&word);
        }
        if let Some(native) = NativeType::from_name(&word) {
            self.advance();
            return Ok(CqlType::Native(native));
        }
        self.udt_type()
    }

    fn generic_type(&mut self, word: &str) -> Result<CqlType> {
        self.expect_punct("<")?;
        let first = self.cql_type()?;
        let ty = match word {
            "list" => CqlType::list(first),
            "set" => CqlType::set(first),
            "frozen" => CqlType::frozen(first),
            "map" => {
                self.expect_punct(",")?;
                CqlType::map(first, self.cql_type()?)
            }
            _ => {
                let mut items = vec![first];
                while self.eat_punct(",") {
                    items.push(self.cql_type()?);
                }
                CqlType::Tuple(items)
            }
        };
        self.expect_punct(">")?;
        Ok(ty)
    }

    fn udt_type(&mut self) -> Result<CqlType> {
        let name = self.qualified_name()?;
        Ok(CqlType::UserType {
            keyspace: name.keyspace,
            name: name.name,
        })
    }

    /// `name = value [AND name = value ...]`.
    pub(super) fn properties(&mut self) -> Result<Vec<(String, OptionValue)>> {
        let mut props = vec![self.property()?];
        while self.eat_kw("and") {
            props.push(self.property()?);
        }
        Ok(props)
    }

    pub(super) fn property(&mut self) -> Result<(String, OptionValue)> {
        let name = self.ident()?;
        self.expect_punct("=")?;
        Ok((name, self.option_value()?))
    }

    fn option_value(&mut self) -> Result<OptionValue> {
        if self.is_punct("{") {
            return self.option_map().map(OptionValue::Map);
        }
        let value = match &self.peek().kind {
            TokenKind::String(s) => OptionValue::String(s.clone()),
            TokenKind::Integer(n) | TokenKind::Float(n) => OptionValue::Number(n.clone()),
            TokenKind::Boolean(b) => OptionValue::Boolean(*b),
            // Cassandra's `propertyValue` is any `constant`, UUID included: DESCRIBE ...
            // WITH INTERNALS prints `WITH ID = <bare uuid>` and must re-parse.
            TokenKind::Uuid(u) => OptionValue::String(u.clone()),
            TokenKind::Ident(w) if !is_reserved_keyword(w) => OptionValue::String(w.clone()),
            _ => return Err(self.no_viable()),
        };
        self.advance();
        Ok(value)
    }

    /// `{'k': 'v', 'n': 3}`: constants only, kept as text.
    fn option_map(&mut self) -> Result<Vec<(String, String)>> {
        self.expect_punct("{")?;
        let mut entries = Vec::new();
        if self.eat_punct("}") {
            return Ok(entries);
        }
        loop {
            let key = self.constant_text()?;
            self.expect_punct(":")?;
            entries.push((key, self.constant_text()?));
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct("}")?;
        Ok(entries)
    }

    fn constant_text(&mut self) -> Result<String> {
        let text = match &self.peek().kind {
            TokenKind::String(s)
            | TokenKind::Integer(s)
            | TokenKind::Float(s)
            | TokenKind::Ident(s)
            | TokenKind::Uuid(s)
            | TokenKind::Duration(s) => s.clone(),
            TokenKind::Boolean(b) => b.to_string(),
            _ => return Err(self.no_viable()),
        };
        self.advance();
        Ok(text)
    }
}
