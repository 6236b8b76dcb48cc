//! DESCRIBE / DESC, answered server-side as Cassandra 4 does (cqlsh sends the text as is).

use super::{Parser, Result};
use crate::cql::ast::{Describe, DescribeTarget};

impl Parser<'_> {
    pub(super) fn describe(&mut self) -> Result<Describe> {
        self.advance();
        let target = self.describe_target()?;
        let with_internals = self.eat_kw("with");
        if with_internals {
            self.expect_kw("internals")?;
        }
        Ok(Describe {
            target,
            with_internals,
        })
    }

    /// Keywords win over names, as in Cassandra's grammar: `DESCRIBE tables` lists tables.
    fn describe_target(&mut self) -> Result<DescribeTarget> {
        let Some(word) = self.peek_ident().map(str::to_string) else {
            return Ok(DescribeTarget::Name(self.qualified_name()?));
        };
        let simple = match word.as_str() {
            "cluster" => Some(DescribeTarget::Cluster),
            "keyspaces" => Some(DescribeTarget::Keyspaces),
            "schema" => Some(DescribeTarget::Schema { full: false }),
            "tables" => Some(DescribeTarget::Tables),
            "types" => Some(DescribeTarget::Types),
            "functions" => Some(DescribeTarget::Functions),
            "aggregates" => Some(DescribeTarget::Aggregates),
            _ => None,
        };
        if let Some(target) = simple {
            self.advance();
            return Ok(target);
        }
        self.describe_named(&word)
    }

    fn describe_named(&mut self, word: &str) -> Result<DescribeTarget> {
        match word {
            "full" => {
                self.advance();
                self.expect_kw("schema")?;
                Ok(DescribeTarget::Schema { full: true })
            }
            "only" | "keyspace" => {
                let only = self.eat_kw("only");
                self.expect_kw("keyspace")?;
                let name = if self.at_ident() {
                    Some(self.ident()?)
                } else {
                    None
                };
                Ok(DescribeTarget::Keyspace { name, only })
            }
            "table" | "columnfamily" => {
                self.advance();
                Ok(DescribeTarget::Table(self.qualified_name()?))
            }
            "type" => {
                self.advance();
                Ok(DescribeTarget::Type(self.qualified_name()?))
            }
            // Indexes, views, functions and aggregates are looked up by name.
            "index" | "function" | "aggregate" => {
                self.advance();
                Ok(DescribeTarget::Name(self.qualified_name()?))
            }
            "materialized" => {
                self.advance();
                self.expect_kw("view")?;
                Ok(DescribeTarget::Name(self.qualified_name()?))
            }
            _ => Ok(DescribeTarget::Name(self.qualified_name()?)),
        }
    }
}
