//! CREATE / ALTER / DROP of keyspaces, user types and tables; the other schema
//! statements are recognised by their leading keywords and returned as `Unsupported`.

use super::{Parser, Result};
use crate::cql::ast::{
    AlterKeyspace, AlterTable, AlterTableOp, AlterType, AlterTypeOp, ColumnDefinition,
    CreateKeyspace, CreateTable, CreateType, Statement,
};
use crate::cql::lexer::TokenKind;

/// Objects whose CREATE/ALTER/DROP this build recognises but does not execute, and the
/// name they are reported under.
const UNSUPPORTED_OBJECTS: [(&str, &str); 10] = [
    ("index", "INDEX"),
    ("custom", "INDEX"),
    ("materialized", "MATERIALIZED VIEW"),
    ("or", "FUNCTION"),
    ("function", "FUNCTION"),
    ("aggregate", "AGGREGATE"),
    ("trigger", "TRIGGER"),
    ("role", "ROLE"),
    ("user", "USER"),
    ("view", "MATERIALIZED VIEW"),
];

impl Parser<'_> {
    pub(super) fn create(&mut self) -> Result<Statement> {
        self.advance();
        match self.peek_ident().unwrap_or("") {
            "keyspace" | "schema" => {
                self.advance();
                let if_not_exists = self.if_not_exists()?;
                let name = self.ident()?;
                self.expect_kw("with")?;
                let options = self.properties()?;
                Ok(Statement::CreateKeyspace(CreateKeyspace {
                    name,
                    if_not_exists,
                    options,
                }))
            }
            "table" | "columnfamily" => self.create_table().map(Statement::CreateTable),
            "type" => self.create_type().map(Statement::CreateType),
            _ => self.unsupported_object("CREATE"),
        }
    }

    pub(super) fn alter(&mut self) -> Result<Statement> {
        self.advance();
        match self.peek_ident().unwrap_or("") {
            "keyspace" | "schema" => {
                self.advance();
                let if_exists = self.if_exists()?;
                let name = self.ident()?;
                self.expect_kw("with")?;
                let options = self.properties()?;
                Ok(Statement::AlterKeyspace(AlterKeyspace {
                    name,
                    if_exists,
                    options,
                }))
            }
            "table" | "columnfamily" => self.alter_table().map(Statement::AlterTable),
            "type" => self.alter_type().map(Statement::AlterType),
            _ => self.unsupported_object("ALTER"),
        }
    }

    pub(super) fn drop_statement(&mut self) -> Result<Statement> {
        self.advance();
        let kind = self.peek_ident().unwrap_or("").to_string();
        if !matches!(
            kind.as_str(),
            "keyspace" | "schema" | "table" | "columnfamily" | "type"
        ) {
            return self.unsupported_object("DROP");
        }
        self.advance();
        let if_exists = self.if_exists()?;
        Ok(match kind.as_str() {
            "keyspace" | "schema" => Statement::DropKeyspace {
                name: self.ident()?,
                if_exists,
            },
            "type" => Statement::DropType {
                name: self.qualified_name()?,
                if_exists,
            },
            _ => Statement::DropTable {
                name: self.qualified_name()?,
                if_exists,
            },
        })
    }

    /// `CREATE INDEX`, `DROP MATERIALIZED VIEW`, ...: named, then skipped.
    fn unsupported_object(&mut self, verb: &str) -> Result<Statement> {
        let word = self.peek_ident().unwrap_or("");
        match UNSUPPORTED_OBJECTS.iter().find(|(kw, _)| *kw == word) {
            Some((_, object)) => Ok(self.unsupported(format!("{verb} {object}"))),
            None => Err(self.no_viable()),
        }
    }

    fn create_type(&mut self) -> Result<CreateType> {
        self.advance();
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name()?;
        self.expect_punct("(")?;
        let mut fields = vec![self.type_field()?];
        // Cassandra's grammar: `'(' typeColumns ( ',' typeColumns? )* ')'`, so a comma
        // may trail (or repeat).
        while self.eat_punct(",") {
            if !self.is_punct(",") && !self.is_punct(")") {
                fields.push(self.type_field()?);
            }
        }
        self.expect_punct(")")?;
        Ok(CreateType {
            name,
            if_not_exists,
            fields,
        })
    }

    /// `name type` of CREATE TYPE.
    fn type_field(&mut self) -> Result<(String, crate::cql::CqlType)> {
        let field = self.ident()?;
        Ok((field, self.cql_type()?))
    }

    fn alter_type(&mut self) -> Result<AlterType> {
        self.advance();
        let if_exists = self.if_exists()?;
        let name = self.qualified_name()?;
        let op = if self.eat_kw("add") {
            self.if_not_exists()?;
            let field = self.ident()?;
            AlterTypeOp::Add {
                field,
                ty: self.cql_type()?,
            }
        } else if self.eat_kw("rename") {
            self.if_exists()?;
            AlterTypeOp::Rename(self.renames()?)
        } else {
            return Err(self.no_viable());
        };
        Ok(AlterType {
            name,
            if_exists,
            op,
        })
    }

    /// `a TO b [AND c TO d ...]`.
    fn renames(&mut self) -> Result<Vec<(String, String)>> {
        let mut pairs = Vec::new();
        loop {
            let from = self.ident()?;
            self.expect_kw("to")?;
            pairs.push((from, self.ident()?));
            if !self.eat_kw("and") {
                return Ok(pairs);
            }
        }
    }

    fn create_table(&mut self) -> Result<CreateTable> {
        self.advance();
        let if_not_exists = self.if_not_exists()?;
        let mut table = CreateTable {
            name: self.qualified_name()?,
            if_not_exists,
            columns: Vec::new(),
            partition_key: Vec::new(),
            clustering_key: Vec::new(),
            clustering_order: Vec::new(),
            compact_storage: false,
            options: Vec::new(),
        };
        self.expect_punct("(")?;
        self.table_elements(&mut table)?;
        self.expect_punct(")")?;
        if self.eat_kw("with") {
            self.table_options(&mut table)?;
        }
        Ok(table)
    }

    /// Column definitions and the PRIMARY KEY clause. Cassandra's grammar is
    /// `'(' tableColumns ( ',' tableColumns? )* ')'`, so a comma may trail (or repeat).
    fn table_elements(&mut self, table: &mut CreateTable) -> Result<()> {
        let mut has_key = false;
        let mut first = true;
        loop {
            let empty = !first && (self.is_punct(",") || self.is_punct(")"));
            first = false;
            if empty {
                // Nothing between two commas, or after the last one.
            } else if self.is_kw("primary") {
                let key_at = self.pos;
                self.primary_key_clause(table)?;
                self.only_one_key(&mut has_key, key_at)?;
            } else {
                let column = self.column_definition()?;
                if self.is_kw("primary") {
                    let key_at = self.pos;
                    self.advance();
                    self.expect_kw("key")?;
                    self.only_one_key(&mut has_key, key_at)?;
                    table.partition_key = vec![column.name.clone()];
                }
                table.columns.push(column);
            }
            if !self.eat_punct(",") {
                return Ok(());
            }
        }
    }

    fn only_one_key(&mut self, has_key: &mut bool, key_at: usize) -> Result<()> {
        if *has_key {
            self.pos = key_at;
            let message = "Multiple PRIMARY KEYs specified (exactly one required)";
            return Err(self.error_here(message.into()));
        }
        *has_key = true;
        Ok(())
    }

    /// `PRIMARY KEY (pk, c1, c2)` or `PRIMARY KEY ((pk1, pk2), c1)`.
    fn primary_key_clause(&mut self, table: &mut CreateTable) -> Result<()> {
        self.advance();
        self.expect_kw("key")?;
        self.expect_punct("(")?;
        table.partition_key = if self.is_punct("(") {
            self.ident_list()?
        } else {
            vec![self.ident()?]
        };
        while self.eat_punct(",") {
            table.clustering_key.push(self.ident()?);
        }
        self.expect_punct(")")
    }

    /// `name type [STATIC]`.
    fn column_definition(&mut self) -> Result<ColumnDefinition> {
        let name = self.ident()?;
        let ty = self.cql_type()?;
        let is_static = self.eat_kw("static");
        Ok(ColumnDefinition {
            name,
            ty,
            is_static,
        })
    }

    /// `CLUSTERING ORDER BY (...)`, `COMPACT STORAGE` and `name = value`, joined by AND.
    fn table_options(&mut self, table: &mut CreateTable) -> Result<()> {
        loop {
            if self.eat_kw("clustering") {
                self.expect_kw("order")?;
                self.expect_kw("by")?;
                self.expect_punct("(")?;
                table.clustering_order.push(self.ordering()?);
                while self.eat_punct(",") {
                    table.clustering_order.push(self.ordering()?);
                }
                self.expect_punct(")")?;
            } else if self.eat_kw("compact") {
                self.expect_kw("storage")?;
                table.compact_storage = true;
            } else {
                table.options.push(self.property()?);
            }
            if !self.eat_kw("and") {
                return Ok(());
            }
        }
    }

    fn alter_table(&mut self) -> Result<AlterTable> {
        self.advance();
        let if_exists = self.if_exists()?;
        let name = self.qualified_name()?;
        let op = match self.peek_ident().unwrap_or("") {
            "add" => self.alter_add()?,
            "drop" => self.alter_drop()?,
            "rename" => {
                self.advance();
                self.if_exists()?;
                AlterTableOp::Rename(self.renames()?)
            }
            "with" => {
                self.advance();
                AlterTableOp::With(self.properties()?)
            }
            _ => return Err(self.no_viable()),
        };
        Ok(AlterTable {
            name,
            if_exists,
            op,
        })
    }

    /// `ADD [IF NOT EXISTS] c type [STATIC]` or `ADD (c type, d type)`.
    fn alter_add(&mut self) -> Result<AlterTableOp> {
        self.advance();
        let if_not_exists = self.if_not_exists()?;
        let mut columns = Vec::new();
        if self.eat_punct("(") {
            columns.push(self.column_definition()?);
            while self.eat_punct(",") {
                columns.push(self.column_definition()?);
            }
            self.expect_punct(")")?;
        } else {
            columns.push(self.column_definition()?);
        }
        Ok(AlterTableOp::Add {
            columns,
            if_not_exists,
        })
    }

    /// `DROP [IF EXISTS] c` or `DROP (c, d)`, then `USING TIMESTAMP n` with an integer
    /// literal, as in Cassandra's grammar (no bind marker).
    fn alter_drop(&mut self) -> Result<AlterTableOp> {
        self.advance();
        let if_exists = self.if_exists()?;
        let columns = if self.is_punct("(") {
            self.ident_list()?
        } else {
            vec![self.ident()?]
        };
        let mut timestamp = None;
        if self.eat_kw("using") {
            self.expect_kw("timestamp")?;
            timestamp = Some(self.integer_literal()?);
        }
        Ok(AlterTableOp::Drop {
            columns,
            if_exists,
            timestamp,
        })
    }

    /// An INTEGER token that fits a 64-bit signed integer.
    fn integer_literal(&mut self) -> Result<i64> {
        let parsed = match &self.peek().kind {
            TokenKind::Integer(text) => text.parse::<i64>().ok(),
            _ => return Err(self.mismatched("INTEGER")),
        };
        let Some(value) = parsed else {
            let text = self.token_text(self.peek());
            return Err(self.error_here(format!("Invalid integer value {text}")));
        };
        self.advance();
        Ok(value)
    }
}
