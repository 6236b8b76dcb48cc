//! The statement alone: Cassandra's restriction merges and checks, in its order, and the
//! shape of the plan they leave (which relations give keys, ranges or filters).

use crate::cql::ast::{Operator, Order, Relation, Select, Term};
use crate::error::{Error, Result};
use crate::schema::{ClusteringOrder, ColumnDef, ColumnKind, TableDef};

use super::{operator_text, relation_text, term_text, REQUIRES_ALLOW_FILTERING};

/// One bound of a slice: the relation it comes from and whether it is inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Side {
    /// The relation's WHERE index.
    pub(super) position: usize,
    pub(super) inclusive: bool,
}

/// The two bounds of a slice.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Sides {
    pub(super) start: Option<Side>,
    pub(super) end: Option<Side>,
}

impl Sides {
    fn of(op: Operator, position: usize) -> Option<Sides> {
        let side = |inclusive| {
            Some(Side {
                position,
                inclusive,
            })
        };
        match op {
            Operator::Gt => Some(Sides {
                start: side(false),
                end: None,
            }),
            Operator::Ge => Some(Sides {
                start: side(true),
                end: None,
            }),
            Operator::Lt => Some(Sides {
                start: None,
                end: side(false),
            }),
            Operator::Le => Some(Sides {
                start: None,
                end: side(true),
            }),
            _ => None,
        }
    }

    /// Both slices' bounds, or Cassandra's complaint about a bound given twice.
    fn merge(self, other: Sides, on: &str) -> Result<Sides> {
        if self.start.is_some() && other.start.is_some() {
            return Err(Error::invalid(format!(
                "More than one restriction was found for the start bound on {on}"
            )));
        }
        if self.end.is_some() && other.end.is_some() {
            return Err(Error::invalid(format!(
                "More than one restriction was found for the end bound on {on}"
            )));
        }
        Ok(Sides {
            start: self.start.or(other.start),
            end: self.end.or(other.end),
        })
    }
}

/// What restricts a column (or, for clustering, a run of columns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    /// `=`, from the relation at this WHERE index.
    Eq(usize),
    /// `IN`, from the relation at this WHERE index.
    In(usize),
    /// A slice.
    Slice(Sides),
}

impl Kind {
    fn of(op: Operator, position: usize) -> Option<Kind> {
        match op {
            Operator::Eq => Some(Kind::Eq(position)),
            Operator::In => Some(Kind::In(position)),
            op => Sides::of(op, position).map(Kind::Slice),
        }
    }

    /// Merges `new` into `self` (the restriction already there decides the message).
    fn merge(self, new: Kind, on: &str) -> Result<Kind> {
        match (self, new) {
            (Kind::Eq(_), _) => Err(Error::invalid(format!(
                "{on} cannot be restricted by more than one relation if it includes an Equal"
            ))),
            (Kind::In(_), _) => Err(Error::invalid(format!(
                "{on} cannot be restricted by more than one relation if it includes a IN"
            ))),
            (Kind::Slice(a), Kind::Slice(b)) => a.merge(b, on).map(Kind::Slice),
            (Kind::Slice(_), _) => Err(Error::invalid(format!(
                "Column \"{on}\" cannot be restricted by both an equality and an inequality relation"
            ))),
        }
    }
}

/// A restriction on clustering columns `columns` (positions, contiguous).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Group {
    pub(super) columns: Vec<usize>,
    pub(super) kind: Kind,
    /// WHERE indexes of the relations merged into it.
    pub(super) positions: Vec<usize>,
}

impl Group {
    pub(super) fn first(&self) -> usize {
        self.columns.first().copied().unwrap_or(0)
    }

    fn last(&self) -> usize {
        self.columns.last().copied().unwrap_or(0)
    }

    fn is_slice(&self) -> bool {
        matches!(self.kind, Kind::Slice(_))
    }
}

/// The token restriction: `=` is a slice with both bounds on the same relation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct TokenShape {
    pub(super) eq: bool,
    pub(super) sides: Sides,
}

/// What a SELECT restricts, before values are known.
#[derive(Debug, Default)]
pub(super) struct Shape {
    /// Per partition key column (key order): its restriction.
    pub(super) pk: Vec<Option<Kind>>,
    pub(super) token: Option<TokenShape>,
    /// Whether the read scans a token range (false: it names its partitions).
    pub(super) key_range: bool,
    /// Clustering restrictions the ranges are built from, in column order.
    pub(super) used: Vec<Group>,
    pub(super) residual: Vec<usize>,
    pub(super) reversed: bool,
    pub(super) order_across_partitions: bool,
}

/// The walk over the WHERE clause.
struct Analysis<'a> {
    table: &'a TableDef,
    select: &'a Select,
    pk: Vec<&'a ColumnDef>,
    clustering: Vec<&'a ColumnDef>,
    pk_kinds: Vec<Option<Kind>>,
    /// Partition key relations no key lookup can serve (CONTAINS).
    pk_other: Vec<usize>,
    token: Option<TokenShape>,
    groups: Vec<Group>,
    clustering_contains: Vec<usize>,
    regular: Vec<(usize, ColumnKind)>,
}

/// Checks `select` against `table` and works out what its plan needs from the values.
pub(super) fn analyze(select: &Select, table: &TableDef) -> Result<Shape> {
    let mut a = Analysis {
        table,
        select,
        pk: table.partition_key(),
        clustering: table.clustering(),
        pk_kinds: vec![None; table.partition_key().len()],
        pk_other: Vec::new(),
        token: None,
        groups: Vec::new(),
        clustering_contains: Vec::new(),
        regular: Vec::new(),
    };
    for (position, relation) in select.where_clause.iter().enumerate() {
        a.add(position, relation)?;
    }
    a.finish()
}

impl<'a> Analysis<'a> {
    fn add(&mut self, position: usize, relation: &Relation) -> Result<()> {
        match relation {
            Relation::Column { column, op, .. } => {
                let def = self.table.column(column).ok_or_else(|| undefined(column))?;
                refuse_operator(*op, relation)?;
                match def.kind {
                    ColumnKind::PartitionKey => self.add_pk(def, *op, position),
                    ColumnKind::Clustering => self.add_clustering(def, *op, position),
                    kind => {
                        self.regular.push((position, kind));
                        Ok(())
                    }
                }
            }
            Relation::MultiColumn { columns, op, value } => {
                self.add_multi(columns, *op, value, relation, position)
            }
            Relation::Token { columns, op, .. } => self.add_token(columns, *op, relation, position),
        }
    }

    fn add_pk(&mut self, def: &ColumnDef, op: Operator, position: usize) -> Result<()> {
        let Some(kind) = Kind::of(op, position) else {
            // CONTAINS on a frozen collection key: only a scan can answer it.
            self.pk_other.push(position);
            return Ok(());
        };
        let index = key_index(def);
        let slot = self
            .pk_kinds
            .get_mut(index)
            .ok_or_else(|| Error::invalid(format!("Unknown partition key column {}", def.name)))?;
        *slot = Some(match *slot {
            None => kind,
            Some(existing) => existing.merge(kind, &def.name)?,
        });
        Ok(())
    }

    fn add_clustering(&mut self, def: &ColumnDef, op: Operator, position: usize) -> Result<()> {
        let Some(kind) = Kind::of(op, position) else {
            self.clustering_contains.push(position);
            return Ok(());
        };
        self.add_group(Group {
            columns: vec![key_index(def)],
            kind,
            positions: vec![position],
        })
    }

    fn add_multi(
        &mut self,
        columns: &[String],
        op: Operator,
        value: &Term,
        relation: &Relation,
        position: usize,
    ) -> Result<()> {
        let mut indexes: Vec<usize> = Vec::with_capacity(columns.len());
        for name in columns {
            let def = self.table.column(name).ok_or_else(|| undefined(name))?;
            if def.kind != ColumnKind::Clustering {
                return Err(Error::invalid(format!(
                    "Multi-column relations can only be applied to clustering columns but was applied to: {name}"
                )));
            }
            let index = key_index(def);
            if indexes.contains(&index) {
                return Err(Error::invalid(format!(
                    "Column \"{name}\" appeared twice in a relation: {}",
                    relation_text(relation)
                )));
            }
            if indexes.last().is_some_and(|&last| index != last + 1) {
                return Err(Error::invalid(format!(
                    "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: {}",
                    relation_text(relation)
                )));
            }
            indexes.push(index);
        }
        let kind = match op {
            Operator::Ne | Operator::IsNot | Operator::Like => {
                return refuse_operator(op, relation)
            }
            Operator::Contains | Operator::ContainsKey => {
                return Err(Error::invalid(format!(
                    "{} cannot be used for multi-column relations",
                    operator_text(op)
                )))
            }
            op => Kind::of(op, position),
        };
        check_arity(columns.len(), op, value)?;
        let kind = kind.ok_or_else(|| Error::invalid("Unsupported multi-column relation"))?;
        self.add_group(Group {
            columns: indexes,
            kind,
            positions: vec![position],
        })
    }

    /// Merges a clustering restriction into those already there, then checks (without
    /// ALLOW FILTERING) that it does not follow a slice or precede one.
    fn add_group(&mut self, new: Group) -> Result<()> {
        let overlapping: Vec<usize> = (0..self.groups.len())
            .filter(|&g| {
                self.groups[g]
                    .columns
                    .iter()
                    .any(|c| new.columns.contains(c))
            })
            .collect();
        let mut merged = new.clone();
        for &g in &overlapping {
            merged = self.merge_groups(&self.groups[g], merged)?;
        }
        if !self.select.allow_filtering {
            self.check_order(&new)?;
        }
        let mut kept: Vec<Group> = Vec::with_capacity(self.groups.len() + 1);
        for (g, group) in self.groups.drain(..).enumerate() {
            if !overlapping.contains(&g) {
                kept.push(group);
            }
        }
        kept.push(merged);
        kept.sort_by_key(Group::first);
        self.groups = kept;
        Ok(())
    }

    fn merge_groups(&self, existing: &Group, new: Group) -> Result<Group> {
        let common: Vec<&str> = existing
            .columns
            .iter()
            .filter(|c| new.columns.contains(c))
            .map(|&c| self.clustering_name(c))
            .collect();
        // MultiColumnRestriction.getColumnsInCommons joins with " ,".
        let on = common.join(" ,");
        if existing.is_slice() && new.is_slice() && existing.first() != new.first() {
            let later = existing.first().max(new.first());
            return Err(Error::invalid(format!(
                "Column \"{}\" cannot be restricted by two inequalities not starting with the same column",
                self.clustering_name(later)
            )));
        }
        let kind = existing.kind.merge(new.kind, &on)?;
        let columns = if existing.columns.len() >= new.columns.len() {
            existing.columns.clone()
        } else {
            new.columns
        };
        let mut positions = existing.positions.clone();
        positions.extend(new.positions);
        Ok(Group {
            columns,
            kind,
            positions,
        })
    }

    /// ClusteringColumnRestrictions.mergeWith's checks against the last restriction.
    fn check_order(&self, new: &Group) -> Result<()> {
        let Some(last) = self.groups.iter().max_by_key(|g| g.last()) else {
            return Ok(());
        };
        if last.is_slice() && new.first() > last.first() {
            return Err(Error::invalid(format!(
                "Clustering column \"{}\" cannot be restricted (preceding column \"{}\" is restricted by a non-EQ relation)",
                self.clustering_name(new.first()),
                self.clustering_name(last.first())
            )));
        }
        if new.first() < last.first() && new.is_slice() {
            let next = self
                .groups
                .iter()
                .flat_map(|g| g.columns.iter().copied())
                .filter(|&c| c > new.first())
                .min()
                .unwrap_or(last.first());
            return Err(Error::invalid(format!(
                "PRIMARY KEY column \"{}\" cannot be restricted (preceding column \"{}\" is restricted by a non-EQ relation)",
                self.clustering_name(next),
                self.clustering_name(new.first())
            )));
        }
        Ok(())
    }

    fn add_token(
        &mut self,
        columns: &[String],
        op: Operator,
        relation: &Relation,
        position: usize,
    ) -> Result<()> {
        self.check_token_columns(columns)?;
        if let Some(name) = crate::coordinator::bind::token_refused(op) {
            return Err(Error::invalid(format!(
                "{name} cannot be used with the token function"
            )));
        }
        refuse_operator(op, relation)?;
        let names = self.pk_names();
        let new = match op {
            Operator::Eq => {
                let side = Some(Side {
                    position,
                    inclusive: true,
                });
                TokenShape {
                    eq: true,
                    sides: Sides {
                        start: side,
                        end: side,
                    },
                }
            }
            op => TokenShape {
                eq: false,
                sides: Sides::of(op, position)
                    .ok_or_else(|| Error::invalid("Unsupported token relation"))?,
            },
        };
        self.token = Some(match self.token {
            None => new,
            Some(existing) if existing.eq => {
                return Err(Error::invalid(format!(
                    "{names} cannot be restricted by more than one relation if it includes an Equal"
                )))
            }
            Some(_) if new.eq => {
                return Err(Error::invalid(format!(
                    "Columns \"{names}\" cannot be restricted by both an equality and an inequality relation"
                )))
            }
            Some(existing) => TokenShape {
                eq: false,
                sides: existing.sides.merge(new.sides, &names)?,
            },
        });
        Ok(())
    }

    /// TokenRelation's checks that `token()` names exactly the partition key, in order.
    fn check_token_columns(&self, columns: &[String]) -> Result<()> {
        let defs = columns
            .iter()
            .map(|c| self.table.column(c).ok_or_else(|| undefined(c)))
            .collect::<Result<Vec<_>>>()?;
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        let pk: Vec<&str> = self.pk.iter().map(|d| d.name.as_str()).collect();
        if names == pk {
            return Ok(());
        }
        let message = if !pk.iter().all(|p| names.contains(p)) {
            "The token() function must be applied to all partition key components or none of them"
                .to_owned()
        } else if names
            .iter()
            .enumerate()
            .any(|(i, n)| names[..i].contains(n))
        {
            "The token() function contains duplicate partition key components".to_owned()
        } else if defs.iter().any(|d| d.kind != ColumnKind::PartitionKey) {
            "The token() function must contains only partition key components".to_owned()
        } else {
            format!(
                "The token function arguments must be in the partition key order: {}",
                pk.join(", ")
            )
        };
        Err(Error::invalid(message))
    }

    fn pk_names(&self) -> String {
        let names: Vec<&str> = self.pk.iter().map(|d| d.name.as_str()).collect();
        names.join(", ")
    }

    fn clustering_name(&self, position: usize) -> &str {
        self.clustering
            .get(position)
            .map_or("?", |c| c.name.as_str())
    }
}

impl Analysis<'_> {
    /// The checks that follow the merges, in Cassandra's order, and the plan's shape.
    fn finish(self) -> Result<Shape> {
        let filtering = self.select.allow_filtering;
        let (key_range, mut residual) = self.partition_key()?;
        if !self.clustering_contains.is_empty() && !filtering {
            return Err(Error::invalid(
                "Clustering columns can only be restricted with CONTAINS with a secondary index or filtering",
            ));
        }
        if !filtering && self.clustering_needs_filtering() {
            self.check_gaps()?;
        }
        if !self.regular.is_empty() && !filtering {
            return Err(Error::invalid(REQUIRES_ALLOW_FILTERING));
        }
        residual.extend(self.regular.iter().map(|&(p, _)| p));
        residual.extend(self.clustering_contains.iter().copied());
        self.check_distinct()?;
        let reversed = self.order_by(key_range)?;
        let has_clustering = !self.groups.is_empty() || !self.clustering_contains.is_empty();
        if key_range && has_clustering && !filtering {
            return Err(Error::invalid(REQUIRES_ALLOW_FILTERING));
        }
        let (used, unused) = split_used(self.groups);
        residual.extend(unused.iter().flat_map(|g| g.positions.iter().copied()));
        residual.sort_unstable();
        let pk_in = self.pk_kinds.iter().any(|k| matches!(k, Some(Kind::In(_))));
        Ok(Shape {
            order_across_partitions: !key_range && pk_in && !self.select.order_by.is_empty(),
            pk: self.pk_kinds,
            token: self.token,
            key_range,
            used,
            residual,
            reversed,
        })
    }

    /// Whether the read scans a token range, and the partition key relations it filters
    /// by (StatementRestrictions.processPartitionKeyRestrictions).
    fn partition_key(&self) -> Result<(bool, Vec<usize>)> {
        let complete = self
            .pk_kinds
            .iter()
            .all(|k| matches!(k, Some(Kind::Eq(_) | Kind::In(_))))
            && self.pk_other.is_empty();
        let restricted = self.pk_kinds.iter().any(Option::is_some) || !self.pk_other.is_empty();
        if !restricted || complete {
            return Ok((!complete, Vec::new()));
        }
        if !self.select.allow_filtering {
            return Err(Error::invalid(REQUIRES_ALLOW_FILTERING));
        }
        Ok((true, self.pk_positions()))
    }

    fn pk_positions(&self) -> Vec<usize> {
        let mut positions: Vec<usize> = self.pk_other.clone();
        for kind in self.pk_kinds.iter().flatten() {
            match *kind {
                Kind::Eq(p) | Kind::In(p) => positions.push(p),
                Kind::Slice(s) => {
                    positions.extend(s.start.map(|s| s.position));
                    positions.extend(s.end.map(|s| s.position));
                }
            }
        }
        positions
    }

    fn check_distinct(&self) -> Result<()> {
        let non_static = self.regular.iter().any(|&(_, k)| k != ColumnKind::Static);
        let clustering = !self.groups.is_empty() || !self.clustering_contains.is_empty();
        if self.select.distinct && (clustering || non_static) {
            return Err(Error::invalid(
                "SELECT DISTINCT with WHERE clause only supports restriction by partition key and/or static columns.",
            ));
        }
        Ok(())
    }

    /// ClusteringColumnRestrictions.needFiltering: a restriction that does not continue the
    /// prefix (a gap, or anything after a slice).
    fn clustering_needs_filtering(&self) -> bool {
        let mut next = 0;
        for group in &self.groups {
            if group.first() != next {
                return true;
            }
            if !group.is_slice() {
                next = group.last() + 1;
            }
        }
        false
    }

    fn check_gaps(&self) -> Result<()> {
        let mut restricted: Vec<usize> = self
            .groups
            .iter()
            .flat_map(|g| g.columns.iter().copied())
            .collect();
        restricted.sort_unstable();
        for (i, &column) in restricted.iter().enumerate() {
            if column != i {
                return Err(Error::invalid(format!(
                    "PRIMARY KEY column \"{}\" cannot be restricted as preceding column \"{}\" is not restricted",
                    self.clustering_name(column),
                    self.clustering_name(i)
                )));
            }
        }
        Ok(())
    }

    /// SelectStatement's ORDER BY checks; returns whether the read is reversed.
    fn order_by(&self, key_range: bool) -> Result<bool> {
        if self.select.order_by.is_empty() {
            return Ok(false);
        }
        if key_range {
            return Err(Error::invalid(
                "ORDER BY is only supported when the partition key is restricted by an EQ or an IN.",
            ));
        }
        let mut reversed: Option<bool> = None;
        let mut next = 0;
        for (name, order) in &self.select.order_by {
            let def = self.table.column(name).ok_or_else(|| undefined(name))?;
            if def.kind != ColumnKind::Clustering {
                return Err(Error::invalid(format!(
                    "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got {name}"
                )));
            }
            let position = key_index(def);
            while next < position {
                if !self.restricted_by_eq(next) {
                    return Err(Error::invalid(
                        "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY",
                    ));
                }
                next += 1;
            }
            if next > position {
                return Err(Error::invalid(
                    "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY",
                ));
            }
            next += 1;
            let this = (*order == Order::Desc) != (def.order == ClusteringOrder::Desc);
            if reversed.is_some_and(|r| r != this) {
                return Err(Error::invalid("Unsupported order by relation"));
            }
            reversed = Some(this);
        }
        Ok(reversed.unwrap_or(false))
    }

    fn restricted_by_eq(&self, column: usize) -> bool {
        self.groups
            .iter()
            .any(|g| g.columns.contains(&column) && matches!(g.kind, Kind::Eq(_)))
    }
}

/// The groups the ranges are built from — a prefix of `=`/`IN` restrictions, then at most
/// one slice — and the rest, which are filtered (ClusteringColumnRestrictions'
/// boundsAsClustering stops at the same place).
fn split_used(groups: Vec<Group>) -> (Vec<Group>, Vec<Group>) {
    let mut used = Vec::new();
    let mut unused = Vec::new();
    let mut next = 0;
    let mut open = true;
    for group in groups {
        if open && group.first() == next {
            open = !group.is_slice();
            next = group.last() + 1;
            used.push(group);
        } else {
            open = false;
            unused.push(group);
        }
    }
    (used, unused)
}

/// A column's position in its key (partition or clustering).
fn key_index(def: &ColumnDef) -> usize {
    usize::try_from(def.position).unwrap_or(0)
}

fn undefined(column: &str) -> Error {
    Error::invalid(format!("Undefined column name {column}"))
}

/// Operators no relation of a plain SELECT may use.
fn refuse_operator(op: Operator, relation: &Relation) -> Result<()> {
    let text = relation_text(relation);
    match op {
        Operator::Ne => Err(Error::invalid(format!(
            "Unsupported \"!=\" relation: {text}"
        ))),
        Operator::IsNot => Err(Error::invalid(format!("Unsupported restriction: {text}"))),
        Operator::Like => Err(Error::invalid(format!(
            "LIKE restriction is only supported on properly indexed columns. {text} is not valid."
        ))),
        _ => Ok(()),
    }
}

/// A multi-column relation's literal tuples must have one value per column.
fn check_arity(columns: usize, op: Operator, value: &Term) -> Result<()> {
    let check = |term: &Term| match term {
        Term::Tuple(items) if items.len() != columns => Err(Error::invalid(format!(
            "Expected {columns} elements in value tuple, but got {}: {}",
            items.len(),
            term_text(term)
        ))),
        _ => Ok(()),
    };
    match (op, value) {
        (Operator::In, Term::Tuple(items) | Term::List(items)) => items.iter().try_for_each(check),
        (_, term) => check(term),
    }
}
