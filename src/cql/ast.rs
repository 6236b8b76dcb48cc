//! Statement syntax trees. Names are already normalised (see the module essay).

/// `keyspace.name` where the keyspace may be omitted (then the session's USE applies).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    pub keyspace: Option<String>,
    pub name: String,
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Select),
    Use(String),
    CreateKeyspace(CreateKeyspace),
    AlterKeyspace(AlterKeyspace),
    DropKeyspace {
        name: String,
        if_exists: bool,
    },
    CreateType(CreateType),
    AlterType(AlterType),
    DropType {
        name: QualifiedName,
        if_exists: bool,
    },
    CreateTable(CreateTable),
    AlterTable(AlterTable),
    DropTable {
        name: QualifiedName,
        if_exists: bool,
    },
    Describe(Describe),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Batch(Batch),
    /// `TRUNCATE [TABLE] [ks.]t`.
    Truncate(QualifiedName),
    /// A statement that parses as CQL but that this build does not execute yet
    /// (INSERT, UPDATE, DELETE, BATCH, TRUNCATE, CREATE INDEX, ...). `what` names it,
    /// e.g. "INSERT". The executor answers it with Invalid, never silently.
    Unsupported {
        what: String,
    },
}

/// A term: a literal, a bind marker, a collection literal or a function call.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// `'text'` (quotes removed, `''` unescaped) or `$$text$$`.
    String(String),
    /// An integer literal as written (may be negative, may not fit i64).
    Integer(String),
    /// A float literal as written, including `NaN` and `Infinity`.
    Float(String),
    Boolean(bool),
    /// A UUID literal (hyphenated form).
    Uuid(String),
    /// `0x...` blob literal, without the prefix.
    Blob(String),
    /// A duration literal such as `1h30m` or `P1D`.
    Duration(String),
    Null,
    /// `?` (None) or `:name` (Some).
    BindMarker(Option<String>),
    List(Vec<Term>),
    Set(Vec<Term>),
    Map(Vec<(Term, Term)>),
    /// `(a, b)`: a tuple, or the value list of a multi-column relation / IN.
    Tuple(Vec<Term>),
    /// `{field: value}` user-type literal (parsed as Map when ambiguous; the
    /// executor reinterprets by the target type).
    UserType(Vec<(String, Term)>),
    FunctionCall {
        name: String,
        args: Vec<Term>,
    },
    /// `(type) term`.
    Cast {
        ty: super::types::CqlType,
        term: Box<Term>,
    },
}

/// Comparison operators in WHERE clauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
    In,
    Contains,
    ContainsKey,
    Like,
    IsNot,
}

/// One WHERE relation.
#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    /// `col op term`; for IN the term is a Tuple/List of values or a single bind marker.
    Column {
        column: String,
        op: Operator,
        value: Term,
    },
    /// `(c1, c2) op (v1, v2)`; for IN the value is a Tuple of tuples or a bind marker.
    MultiColumn {
        columns: Vec<String>,
        op: Operator,
        value: Term,
    },
    /// `token(c1, c2) op term`.
    Token {
        columns: Vec<String>,
        op: Operator,
        value: Term,
    },
}

/// Sort direction of ORDER BY and CLUSTERING ORDER BY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// An expression in the select clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Column(String),
    /// `count(*)` / `count(1)`.
    CountStar,
    /// A function call: `toJson(x)`, `writetime(v)`, `ttl(v)`, `token(k)`, `now()`, ...
    /// Names are lower-cased.
    Function {
        name: String,
        args: Vec<Selector>,
    },
    /// `CAST(x AS type)`.
    Cast {
        selector: Box<Selector>,
        ty: super::types::CqlType,
    },
    /// A literal term used as a selector.
    Term(Term),
    /// `selector.field`: a field of a user type value.
    Field {
        selector: Box<Selector>,
        field: String,
    },
    /// `selector[key]`: a map's value or a set's element.
    Element {
        selector: Box<Selector>,
        key: Term,
    },
    /// `selector[from..to]`, `selector[from..]`, `selector[..to]`: a map's or set's slice.
    Slice {
        selector: Box<Selector>,
        from: Option<Term>,
        to: Option<Term>,
    },
}

/// A selector with its optional `AS alias`.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectItem {
    pub selector: Selector,
    pub alias: Option<String>,
}

/// SELECT statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub table: QualifiedName,
    pub distinct: bool,
    pub json: bool,
    /// Empty means `*`.
    pub items: Vec<SelectItem>,
    pub where_clause: Vec<Relation>,
    pub group_by: Vec<String>,
    pub order_by: Vec<(String, Order)>,
    pub per_partition_limit: Option<Term>,
    pub limit: Option<Term>,
    pub allow_filtering: bool,
}

/// A `WITH` option value: `'x'`, `42`, `true`, `{'k': 'v'}`.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// A string literal, or a bare identifier/constant.
    String(String),
    /// A numeric literal as written.
    Number(String),
    Boolean(bool),
    /// A map literal; keys and values as text (numbers keep their written form).
    Map(Vec<(String, String)>),
}

/// CREATE KEYSPACE.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateKeyspace {
    pub name: String,
    pub if_not_exists: bool,
    /// All `WITH` properties in order (`replication`, `durable_writes`, ...).
    pub options: Vec<(String, OptionValue)>,
}

/// ALTER KEYSPACE.
#[derive(Debug, Clone, PartialEq)]
pub struct AlterKeyspace {
    pub name: String,
    pub if_exists: bool,
    pub options: Vec<(String, OptionValue)>,
}

/// CREATE TYPE.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateType {
    pub name: QualifiedName,
    pub if_not_exists: bool,
    pub fields: Vec<(String, super::types::CqlType)>,
}

/// ALTER TYPE operations.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterTypeOp {
    Add {
        field: String,
        ty: super::types::CqlType,
    },
    Rename(Vec<(String, String)>),
}

/// ALTER TYPE.
#[derive(Debug, Clone, PartialEq)]
pub struct AlterType {
    pub name: QualifiedName,
    pub if_exists: bool,
    pub op: AlterTypeOp,
}

/// A column definition in CREATE TABLE or ALTER TABLE ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDefinition {
    pub name: String,
    pub ty: super::types::CqlType,
    pub is_static: bool,
}

/// CREATE TABLE.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub name: QualifiedName,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDefinition>,
    /// Partition key columns in key order (from `PRIMARY KEY ((a, b), c)` or an inline
    /// `PRIMARY KEY` on a column).
    pub partition_key: Vec<String>,
    pub clustering_key: Vec<String>,
    /// `WITH CLUSTERING ORDER BY (...)`.
    pub clustering_order: Vec<(String, Order)>,
    pub compact_storage: bool,
    /// Other `WITH` options in order.
    pub options: Vec<(String, OptionValue)>,
}

/// ALTER TABLE operations.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterTableOp {
    Add {
        columns: Vec<ColumnDefinition>,
        if_not_exists: bool,
    },
    /// `DROP c [USING TIMESTAMP t]`: `timestamp` is when the drop happened, in
    /// microseconds (cells written at or before it are gone); None means now.
    Drop {
        columns: Vec<String>,
        if_exists: bool,
        timestamp: Option<i64>,
    },
    Rename(Vec<(String, String)>),
    With(Vec<(String, OptionValue)>),
}

/// ALTER TABLE.
#[derive(Debug, Clone, PartialEq)]
pub struct AlterTable {
    pub name: QualifiedName,
    pub if_exists: bool,
    pub op: AlterTableOp,
}

/// DESCRIBE / DESC variants (server-side DESCRIBE of Cassandra 4).
#[derive(Debug, Clone, PartialEq)]
pub enum DescribeTarget {
    Cluster,
    Keyspaces,
    /// `DESCRIBE [ONLY] KEYSPACE [name]`; None means the session keyspace.
    Keyspace {
        name: Option<String>,
        only: bool,
    },
    /// `DESCRIBE [FULL] SCHEMA`.
    Schema {
        full: bool,
    },
    Tables,
    Table(QualifiedName),
    Types,
    Type(QualifiedName),
    Functions,
    Aggregates,
    /// `DESCRIBE name` / `DESCRIBE ks.name`: a keyspace, table, type, ... by name.
    Name(QualifiedName),
}

/// DESCRIBE statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Describe {
    pub target: DescribeTarget,
    pub with_internals: bool,
}

/// `USING TTL t AND TIMESTAMP t` of INSERT, UPDATE, DELETE and BATCH; absent parts are
/// None. ScyllaDB's `USING TIMEOUT` is accepted and dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Using {
    pub ttl: Option<Term>,
    pub timestamp: Option<Term>,
    /// TIMESTAMP was written before TTL: bind markers are consumed in text order.
    pub timestamp_first: bool,
}

/// What an assignment, deletion or condition addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnTarget {
    /// The whole column.
    Column(String),
    /// `c[key]`: a map entry or list index.
    Element { column: String, key: Term },
    /// `c.field`: a field of a non-frozen user type.
    Field { column: String, field: String },
}

/// INSERT ... VALUES or INSERT ... JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertValues {
    /// `(c1, c2) VALUES (t1, t2)`: columns and terms, same length.
    Values {
        columns: Vec<String>,
        values: Vec<Term>,
    },
    /// `JSON 'doc' [DEFAULT UNSET | DEFAULT NULL]`; `default_unset` is false for NULL.
    Json { value: Term, default_unset: bool },
}

/// INSERT statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub table: QualifiedName,
    pub values: InsertValues,
    pub if_not_exists: bool,
    pub using: Using,
}

/// One `SET` assignment of UPDATE.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    /// `target = value`.
    Set { target: ColumnTarget, value: Term },
    /// `c = c + value` or `c += value` (counters, collection append / union).
    Add { column: String, value: Term },
    /// `c = c - value` or `c -= value` (counters, collection removal).
    Subtract { column: String, value: Term },
    /// `c = value + c` (list prepend).
    Prepend { column: String, value: Term },
}

/// One condition of a lightweight transaction's `IF`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub target: ColumnTarget,
    pub op: Operator,
    pub value: Term,
}

/// The `IF` clause of INSERT, UPDATE and DELETE (a lightweight transaction).
#[derive(Debug, Clone, PartialEq)]
pub enum IfClause {
    Exists,
    NotExists,
    Conditions(Vec<Condition>),
}

/// UPDATE statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub table: QualifiedName,
    pub using: Using,
    pub assignments: Vec<Assignment>,
    pub where_clause: Vec<Relation>,
    pub if_clause: Option<IfClause>,
}

/// DELETE statement; empty `targets` deletes whole rows (or the partition).
#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    pub table: QualifiedName,
    pub targets: Vec<ColumnTarget>,
    pub using: Using,
    pub where_clause: Vec<Relation>,
    pub if_clause: Option<IfClause>,
}

/// LOGGED (the default), UNLOGGED or COUNTER batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Logged,
    Unlogged,
    Counter,
}

/// `BEGIN [UNLOGGED | COUNTER] BATCH [USING TIMESTAMP t] ... APPLY BATCH`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub kind: BatchKind,
    pub using: Using,
    /// Only Insert, Update and Delete statements.
    pub statements: Vec<Statement>,
}
