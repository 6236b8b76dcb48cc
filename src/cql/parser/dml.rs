//! INSERT, UPDATE, DELETE, BATCH and TRUNCATE.

use super::{Parser, Result};
use crate::cql::ast::{
    Assignment, Batch, BatchKind, ColumnTarget, Condition, Delete, IfClause, Insert, InsertValues,
    Operator, Statement, Term, Update, Using,
};
use crate::cql::lexer::TokenKind;

impl Parser<'_> {
    pub(super) fn insert(&mut self) -> Result<Insert> {
        self.advance();
        self.expect_kw("into")?;
        let table = self.qualified_name()?;
        let values = if self.eat_kw("json") {
            let value = self.term()?;
            let default_unset = self.eat_kw("default") && {
                let unset = self.eat_kw("unset");
                if !unset {
                    self.expect_kw("null")?;
                }
                unset
            };
            InsertValues::Json {
                value,
                default_unset,
            }
        } else {
            let columns = self.ident_list()?;
            self.expect_kw("values")?;
            self.expect_punct("(")?;
            let values = self.terms_until(")")?;
            InsertValues::Values { columns, values }
        };
        let if_not_exists = self.if_not_exists()?;
        let using = self.using()?;
        Ok(Insert {
            table,
            values,
            if_not_exists,
            using,
        })
    }

    pub(super) fn update(&mut self) -> Result<Update> {
        self.advance();
        let table = self.qualified_name()?;
        let using = self.using()?;
        self.expect_kw("set")?;
        let mut assignments = vec![self.assignment()?];
        while self.eat_punct(",") {
            assignments.push(self.assignment()?);
        }
        self.expect_kw("where")?;
        let where_clause = self.relations()?;
        let if_clause = self.if_clause()?;
        Ok(Update {
            table,
            using,
            assignments,
            where_clause,
            if_clause,
        })
    }

    pub(super) fn delete(&mut self) -> Result<Delete> {
        self.advance();
        let mut targets = Vec::new();
        if !self.is_kw("from") {
            targets.push(self.column_target()?);
            while self.eat_punct(",") {
                targets.push(self.column_target()?);
            }
        }
        self.expect_kw("from")?;
        let table = self.qualified_name()?;
        let using = self.using()?;
        self.expect_kw("where")?;
        let where_clause = self.relations()?;
        let if_clause = self.if_clause()?;
        Ok(Delete {
            table,
            targets,
            using,
            where_clause,
            if_clause,
        })
    }

    /// `BEGIN [UNLOGGED | COUNTER] BATCH [USING ...] statements APPLY BATCH`.
    pub(super) fn batch(&mut self) -> Result<Batch> {
        self.advance();
        let kind = if self.eat_kw("unlogged") {
            BatchKind::Unlogged
        } else if self.eat_kw("counter") {
            BatchKind::Counter
        } else {
            BatchKind::Logged
        };
        self.expect_kw("batch")?;
        let using = self.using()?;
        let mut statements = Vec::new();
        while !self.eat_kw("apply") {
            statements.push(match self.peek_ident() {
                Some("insert") => Statement::Insert(self.insert()?),
                Some("update") => Statement::Update(self.update()?),
                Some("delete") => Statement::Delete(self.delete()?),
                _ => return Err(self.mismatched("K_APPLY")),
            });
            self.eat_punct(";");
        }
        self.expect_kw("batch")?;
        Ok(Batch {
            kind,
            using,
            statements,
        })
    }

    pub(super) fn truncate(&mut self) -> Result<Statement> {
        self.advance();
        if !self.eat_kw("table") {
            self.eat_kw("columnfamily");
        }
        Ok(Statement::Truncate(self.qualified_name()?))
    }

    /// `USING TTL t AND TIMESTAMP t` in any order; `TIMEOUT d` is accepted and ignored.
    fn using(&mut self) -> Result<Using> {
        let mut using = Using::default();
        if !self.eat_kw("using") {
            return Ok(using);
        }
        loop {
            if self.eat_kw("ttl") {
                using.ttl = Some(self.term()?);
            } else if self.eat_kw("timestamp") {
                using.timestamp_first = using.ttl.is_none();
                using.timestamp = Some(self.term()?);
            } else {
                self.expect_kw("timeout")?;
                // A dropped marker would shift every later bound value onto the wrong one.
                if let Term::BindMarker(_) = self.term()? {
                    return Err(self.error_here(
                        "USING TIMEOUT takes a literal duration here, not a bind marker".into(),
                    ));
                }
            }
            if !self.eat_kw("and") {
                return Ok(using);
            }
        }
    }

    /// `c`, `c[key]` or `c.field`.
    fn column_target(&mut self) -> Result<ColumnTarget> {
        let column = self.ident()?;
        if self.eat_punct("[") {
            let key = self.term()?;
            self.expect_punct("]")?;
            return Ok(ColumnTarget::Element { column, key });
        }
        if self.eat_punct(".") {
            let field = self.ident()?;
            return Ok(ColumnTarget::Field { column, field });
        }
        Ok(ColumnTarget::Column(column))
    }

    fn assignment(&mut self) -> Result<Assignment> {
        let target = self.column_target()?;
        if let ColumnTarget::Column(column) = &target {
            let column = column.clone();
            if self.is_punct("+") || self.is_punct("-") {
                let add = self.is_punct("+");
                self.advance();
                self.expect_punct("=")?;
                return Ok(arith(add, column, self.term()?));
            }
            self.expect_punct("=")?;
            return self.column_assignment(column);
        }
        self.expect_punct("=")?;
        Ok(Assignment::Set {
            target,
            value: self.term()?,
        })
    }

    /// After `c =`: `c + t`, `c - t`, `t + c` or a plain term.
    fn column_assignment(&mut self, column: String) -> Result<Assignment> {
        let self_ref = matches!(&self.peek().kind, TokenKind::Ident(w) | TokenKind::QuotedIdent(w) if *w == column);
        if self_ref && !self.at_call() {
            self.advance();
            // `c = c -1` lexes the sign into the number.
            if let Some(value) = self.negative_literal() {
                self.advance();
                return Ok(Assignment::Subtract { column, value });
            }
            let add = self.is_punct("+");
            if !add && !self.is_punct("-") {
                return Err(self.mismatched("'+'"));
            }
            self.advance();
            return Ok(arith(add, column, self.term()?));
        }
        let value = self.term()?;
        if self.eat_punct("+") {
            if self.ident()? != column {
                return Err(self.no_viable());
            }
            return Ok(Assignment::Prepend { column, value });
        }
        Ok(Assignment::Set {
            target: ColumnTarget::Column(column),
            value,
        })
    }

    /// The next token if it is a negative number literal, with the sign removed.
    fn negative_literal(&self) -> Option<Term> {
        match &self.peek().kind {
            TokenKind::Integer(n) => n.strip_prefix('-').map(|d| Term::Integer(d.to_string())),
            TokenKind::Float(n) => n.strip_prefix('-').map(|d| Term::Float(d.to_string())),
            _ => None,
        }
    }

    /// `IF EXISTS`, `IF NOT EXISTS` or `IF cond AND cond ...`.
    fn if_clause(&mut self) -> Result<Option<IfClause>> {
        if !self.eat_kw("if") {
            return Ok(None);
        }
        if self.eat_kw("exists") {
            return Ok(Some(IfClause::Exists));
        }
        if self.is_kw("not") && self.ident_at(1) == Some("exists") {
            self.advance();
            self.advance();
            return Ok(Some(IfClause::NotExists));
        }
        let mut conditions = vec![self.condition()?];
        while self.eat_kw("and") {
            conditions.push(self.condition()?);
        }
        Ok(Some(IfClause::Conditions(conditions)))
    }

    /// One condition, as Cassandra's grammar has it: a comparison, `IN (...)` or `IN ?`,
    /// and `CONTAINS [KEY]` on a whole column only; no LIKE and no IS NOT.
    fn condition(&mut self) -> Result<Condition> {
        let target = self.column_target()?;
        let whole = matches!(target, ColumnTarget::Column(_));
        let op = if whole && self.eat_kw("contains") {
            match self.eat_kw("key") {
                true => Operator::ContainsKey,
                false => Operator::Contains,
            }
        } else if self.eat_kw("in") {
            Operator::In
        } else {
            let op = match &self.peek().kind {
                TokenKind::Punct("=") => Operator::Eq,
                TokenKind::Punct("<") => Operator::Lt,
                TokenKind::Punct("<=") => Operator::Le,
                TokenKind::Punct(">") => Operator::Gt,
                TokenKind::Punct(">=") => Operator::Ge,
                TokenKind::Punct("!=") => Operator::Ne,
                _ => return Err(self.no_viable()),
            };
            self.advance();
            op
        };
        let value = match op {
            Operator::In if self.eat_punct("(") => Term::Tuple(self.terms_until(")")?),
            Operator::In if self.is_punct("?") || self.is_punct(":") => self.term()?,
            Operator::In => return Err(self.no_viable()),
            _ => self.term()?,
        };
        Ok(Condition { target, op, value })
    }
}

fn arith(add: bool, column: String, value: Term) -> Assignment {
    if add {
        Assignment::Add { column, value }
    } else {
        Assignment::Subtract { column, value }
    }
}
