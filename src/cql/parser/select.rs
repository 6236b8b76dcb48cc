//! SELECT: selectors, WHERE relations, GROUP BY, ORDER BY, limits.

use super::{Parser, Result};
use crate::cql::ast::{Operator, Order, Relation, Select, SelectItem, Selector, Term};
use crate::cql::lexer::TokenKind;

impl Parser<'_> {
    pub(super) fn select(&mut self) -> Result<Select> {
        self.expect_kw("select")?;
        let json = self.select_modifier("json");
        let distinct = self.select_modifier("distinct");
        let items = self.select_items()?;
        self.expect_kw("from")?;
        let mut select = Select {
            table: self.qualified_name()?,
            distinct,
            json,
            items,
            where_clause: Vec::new(),
            group_by: Vec::new(),
            order_by: Vec::new(),
            per_partition_limit: None,
            limit: None,
            allow_filtering: false,
        };
        self.select_tail(&mut select)?;
        Ok(select)
    }

    /// Everything after `FROM table`, each clause optional but in Cassandra's order.
    fn select_tail(&mut self, select: &mut Select) -> Result<()> {
        if self.eat_kw("where") {
            select.where_clause = self.relations()?;
        }
        if self.eat_kw("group") {
            self.expect_kw("by")?;
            select.group_by = self.comma_idents()?;
        }
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            select.order_by = self.orderings()?;
        }
        if self.eat_kw("per") {
            self.expect_kw("partition")?;
            self.expect_kw("limit")?;
            select.per_partition_limit = Some(self.term()?);
        }
        if self.eat_kw("limit") {
            select.limit = Some(self.term()?);
        }
        if self.eat_kw("allow") {
            self.expect_kw("filtering")?;
            select.allow_filtering = true;
        }
        self.using_timeout()
    }

    /// `JSON` / `DISTINCT` are keywords unless used as a column name (`SELECT json FROM`).
    fn select_modifier(&mut self, kw: &str) -> bool {
        if !self.is_kw(kw) {
            return false;
        }
        let next = &self.peek_at(1).kind;
        let as_column = matches!(next, TokenKind::Punct(",") | TokenKind::Punct("("))
            || matches!(next, TokenKind::Ident(w) if w == "from" || w == "as");
        if !as_column {
            self.advance();
        }
        !as_column
    }

    /// ScyllaDB drivers append `USING TIMEOUT <duration>`; it is accepted and ignored.
    fn using_timeout(&mut self) -> Result<()> {
        if self.is_kw("using") && self.ident_at(1) == Some("timeout") {
            self.advance();
            self.advance();
            self.term()?;
        }
        Ok(())
    }

    fn select_items(&mut self) -> Result<Vec<SelectItem>> {
        if self.eat_punct("*") {
            return Ok(Vec::new());
        }
        let mut items = vec![self.select_item()?];
        while self.eat_punct(",") {
            items.push(self.select_item()?);
        }
        Ok(items)
    }

    fn select_item(&mut self) -> Result<SelectItem> {
        let selector = self.selector()?;
        let alias = if self.eat_kw("as") {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(SelectItem { selector, alias })
    }

    fn selector(&mut self) -> Result<Selector> {
        self.enter()?;
        let selector = self
            .selector_inner()
            .and_then(|s| self.selector_suffixes(s));
        self.leave();
        selector
    }

    /// `.field`, `[key]` and `[from..to]` after a selector, any number of them.
    fn selector_suffixes(&mut self, mut selector: Selector) -> Result<Selector> {
        loop {
            if self.eat_punct(".") {
                let field = self.ident()?;
                selector = Selector::Field {
                    selector: Box::new(selector),
                    field,
                };
            } else if self.eat_punct("[") {
                selector = self.collection_sub_selection(selector)?;
            } else {
                return Ok(selector);
            }
        }
    }

    /// After `[`: `key]`, `from..to]`, `from..]` or `..to]`.
    fn collection_sub_selection(&mut self, selector: Selector) -> Result<Selector> {
        let selector = Box::new(selector);
        if self.eat_punct("..") {
            let to = Some(self.term()?);
            self.expect_punct("]")?;
            return Ok(Selector::Slice {
                selector,
                from: None,
                to,
            });
        }
        let first = self.term()?;
        if !self.eat_punct("..") {
            self.expect_punct("]")?;
            return Ok(Selector::Element {
                selector,
                key: first,
            });
        }
        let to = if self.is_punct("]") {
            None
        } else {
            Some(self.term()?)
        };
        self.expect_punct("]")?;
        Ok(Selector::Slice {
            selector,
            from: Some(first),
            to,
        })
    }

    fn selector_inner(&mut self) -> Result<Selector> {
        let open = self.peek_at(1).kind == TokenKind::Punct("(");
        if self.is_kw("cast") && open {
            return self.cast_selector();
        }
        if self.is_kw("count") && open && self.at_count_star() {
            for _ in 0..4 {
                self.advance();
            }
            return Ok(Selector::CountStar);
        }
        if self.at_call() {
            let (name, args) = self.call(|p| p.selector())?;
            return Ok(Selector::Function { name, args });
        }
        if self.at_ident() {
            return Ok(Selector::Column(self.ident()?));
        }
        Ok(Selector::Term(self.term()?))
    }

    /// After `count`: `(*)` or `(1)`.
    fn at_count_star(&self) -> bool {
        let star_or_one = match &self.peek_at(2).kind {
            TokenKind::Punct("*") => true,
            TokenKind::Integer(n) => n == "1",
            _ => false,
        };
        star_or_one && self.peek_at(3).kind == TokenKind::Punct(")")
    }

    /// `CAST(selector AS type)`.
    fn cast_selector(&mut self) -> Result<Selector> {
        self.advance();
        self.expect_punct("(")?;
        let selector = self.selector()?;
        self.expect_kw("as")?;
        let ty = self.cql_type()?;
        self.expect_punct(")")?;
        Ok(Selector::Cast {
            selector: Box::new(selector),
            ty,
        })
    }

    pub(super) fn relations(&mut self) -> Result<Vec<Relation>> {
        let mut relations = vec![self.relation()?];
        while self.eat_kw("and") {
            relations.push(self.relation()?);
        }
        Ok(relations)
    }

    fn relation(&mut self) -> Result<Relation> {
        if self.is_kw("token") && self.peek_at(1).kind == TokenKind::Punct("(") {
            self.advance();
            let columns = self.ident_list()?;
            let (op, value) = self.operator_and_value()?;
            return Ok(Relation::Token { columns, op, value });
        }
        if self.is_punct("(") {
            let columns = self.ident_list()?;
            let (op, value) = self.operator_and_value()?;
            return Ok(Relation::MultiColumn { columns, op, value });
        }
        let column = self.ident()?;
        let (op, value) = self.operator_and_value()?;
        Ok(Relation::Column { column, op, value })
    }

    pub(super) fn operator_and_value(&mut self) -> Result<(Operator, Term)> {
        if self.eat_kw("is") {
            self.expect_kw("not")?;
            self.expect_kw("null")?;
            return Ok((Operator::IsNot, Term::Null));
        }
        let op = self.operator()?;
        if op == Operator::In && self.eat_punct("(") {
            return Ok((op, Term::Tuple(self.terms_until(")")?)));
        }
        Ok((op, self.term()?))
    }

    fn operator(&mut self) -> Result<Operator> {
        let op = match &self.peek().kind {
            TokenKind::Punct("=") => Operator::Eq,
            TokenKind::Punct("<") => Operator::Lt,
            TokenKind::Punct("<=") => Operator::Le,
            TokenKind::Punct(">") => Operator::Gt,
            TokenKind::Punct(">=") => Operator::Ge,
            TokenKind::Punct("!=") => Operator::Ne,
            TokenKind::Ident(w) if w == "in" => Operator::In,
            TokenKind::Ident(w) if w == "like" => Operator::Like,
            TokenKind::Ident(w) if w == "contains" => {
                self.advance();
                return Ok(if self.eat_kw("key") {
                    Operator::ContainsKey
                } else {
                    Operator::Contains
                });
            }
            _ => return Err(self.no_viable()),
        };
        self.advance();
        Ok(op)
    }

    fn orderings(&mut self) -> Result<Vec<(String, Order)>> {
        let mut orderings = vec![self.ordering()?];
        while self.eat_punct(",") {
            orderings.push(self.ordering()?);
        }
        Ok(orderings)
    }

    /// `column [ASC | DESC]`.
    pub(super) fn ordering(&mut self) -> Result<(String, Order)> {
        let column = self.ident()?;
        let order = if self.eat_kw("desc") {
            Order::Desc
        } else {
            self.eat_kw("asc");
            Order::Asc
        };
        Ok((column, order))
    }

    /// `a, b, c` without parentheses.
    fn comma_idents(&mut self) -> Result<Vec<String>> {
        let mut names = vec![self.ident()?];
        while self.eat_punct(",") {
            names.push(self.ident()?);
        }
        Ok(names)
    }
}
