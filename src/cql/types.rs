//! CQL types as written in DDL and stored in `system_schema.columns.type`.
//!
//! `Display` prints a type the way Cassandra 4 stores it in `system_schema` and prints it
//! in DESCRIBE: `varchar` becomes `text`, maps use `", "`, tuples are always shown as
//! `frozen<tuple<...>>`, and anything nested inside a collection, tuple or frozen type is
//! shown frozen (Cassandra freezes nested values implicitly, then prints them frozen).
//! `FromStr` accepts everything `Display` prints plus what users type in DDL.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The native (non-parameterised) CQL types. `varchar` parses as `Text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NativeType {
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Date,
    Decimal,
    Double,
    Duration,
    Float,
    Inet,
    Int,
    Smallint,
    Text,
    Time,
    Timestamp,
    Timeuuid,
    Tinyint,
    Uuid,
    Varint,
}

impl NativeType {
    /// Every native type, in name order.
    pub const ALL: [NativeType; 20] = [
        NativeType::Ascii,
        NativeType::Bigint,
        NativeType::Blob,
        NativeType::Boolean,
        NativeType::Counter,
        NativeType::Date,
        NativeType::Decimal,
        NativeType::Double,
        NativeType::Duration,
        NativeType::Float,
        NativeType::Inet,
        NativeType::Int,
        NativeType::Smallint,
        NativeType::Text,
        NativeType::Time,
        NativeType::Timestamp,
        NativeType::Timeuuid,
        NativeType::Tinyint,
        NativeType::Uuid,
        NativeType::Varint,
    ];

    /// The CQL name, lower case, as Cassandra prints it.
    pub fn name(self) -> &'static str {
        use NativeType::*;
        match self {
            Ascii => "ascii",
            Bigint => "bigint",
            Blob => "blob",
            Boolean => "boolean",
            Counter => "counter",
            Date => "date",
            Decimal => "decimal",
            Double => "double",
            Duration => "duration",
            Float => "float",
            Inet => "inet",
            Int => "int",
            Smallint => "smallint",
            Text => "text",
            Time => "time",
            Timestamp => "timestamp",
            Timeuuid => "timeuuid",
            Tinyint => "tinyint",
            Uuid => "uuid",
            Varint => "varint",
        }
    }

    /// Looks a native type up by name, case-insensitively; `varchar` is `Text`.
    pub fn from_name(name: &str) -> Option<NativeType> {
        let lower = name.to_ascii_lowercase();
        if lower == "varchar" {
            return Some(NativeType::Text);
        }
        NativeType::ALL.into_iter().find(|t| t.name() == lower)
    }
}

impl fmt::Display for NativeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A CQL type. User types are referenced by name and resolved against the schema
/// catalog when their fields are needed (protocol metadata, value encoding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CqlType {
    Native(NativeType),
    List(Box<CqlType>),
    Set(Box<CqlType>),
    Map(Box<CqlType>, Box<CqlType>),
    /// Tuples are always frozen, whether or not wrapped in `Frozen`.
    Tuple(Vec<CqlType>),
    /// A user-defined type by name; `keyspace` is None when written unqualified.
    UserType {
        keyspace: Option<String>,
        name: String,
    },
    Frozen(Box<CqlType>),
    /// `'org.apache.cassandra.db.marshal.SomeType'` custom types.
    Custom(String),
}

/// Why a type string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CQL type '{text}': {reason}")]
pub struct TypeParseError {
    /// The text that was being parsed.
    pub text: String,
    /// What was wrong with it.
    pub reason: String,
}

impl CqlType {
    /// `list<elem>`.
    pub fn list(elem: CqlType) -> CqlType {
        CqlType::List(Box::new(elem))
    }

    /// `set<elem>`.
    pub fn set(elem: CqlType) -> CqlType {
        CqlType::Set(Box::new(elem))
    }

    /// `map<key, value>`.
    pub fn map(key: CqlType, value: CqlType) -> CqlType {
        CqlType::Map(Box::new(key), Box::new(value))
    }

    /// `frozen<inner>`.
    pub fn frozen(inner: CqlType) -> CqlType {
        CqlType::Frozen(Box::new(inner))
    }

    /// An unqualified user type reference.
    pub fn udt(name: &str) -> CqlType {
        CqlType::UserType {
            keyspace: None,
            name: name.to_string(),
        }
    }

    /// Parses a type as written in DDL or stored in `system_schema` (any case, spaces,
    /// `varchar`, `frozen<...>`, `ks.udt`, `'custom.Class'`).
    pub fn parse(text: &str) -> Result<CqlType, TypeParseError> {
        TypeParser::new(text).parse_all()
    }

    /// True for `frozen<...>` and for tuples, which are always frozen.
    pub fn is_frozen(&self) -> bool {
        matches!(self, CqlType::Frozen(_) | CqlType::Tuple(_))
    }

    /// True for lists, sets and maps, frozen or not.
    pub fn is_collection(&self) -> bool {
        matches!(
            self.unfrozen(),
            CqlType::List(_) | CqlType::Set(_) | CqlType::Map(_, _)
        )
    }

    /// True for a non-frozen collection or user type: a value stored as several cells.
    pub fn is_multicell(&self) -> bool {
        matches!(
            self,
            CqlType::List(_) | CqlType::Set(_) | CqlType::Map(_, _) | CqlType::UserType { .. }
        )
    }

    /// True for `counter`.
    pub fn is_counter(&self) -> bool {
        matches!(self, CqlType::Native(NativeType::Counter))
    }

    /// The type with any `frozen<>` wrappers removed.
    pub fn unfrozen(&self) -> &CqlType {
        let mut ty = self;
        while let CqlType::Frozen(inner) = ty {
            ty = inner;
        }
        ty
    }

    /// The form Cassandra stores: nested collections and user types frozen, tuples
    /// wrapped in `Frozen`, redundant wrappers removed. Two types are the same column
    /// type exactly when their canonical forms are equal.
    pub fn canonical(&self) -> CqlType {
        self.canonical_in(false)
    }

    fn canonical_in(&self, nested: bool) -> CqlType {
        let inner = self.unfrozen();
        let frozen = nested || self.is_frozen();
        let bare = match inner {
            CqlType::Native(_) | CqlType::Custom(_) => return inner.clone(),
            CqlType::List(e) => CqlType::list(e.canonical_in(true)),
            CqlType::Set(e) => CqlType::set(e.canonical_in(true)),
            CqlType::Map(k, v) => CqlType::map(k.canonical_in(true), v.canonical_in(true)),
            CqlType::Tuple(items) => {
                let items = items.iter().map(|t| t.canonical_in(true)).collect();
                return CqlType::frozen(CqlType::Tuple(items));
            }
            CqlType::UserType { .. } | CqlType::Frozen(_) => inner.clone(),
        };
        if frozen {
            CqlType::frozen(bare)
        } else {
            bare
        }
    }

    /// Writes the type; `nested` is true inside a collection, tuple or frozen type, where
    /// Cassandra shows every collection and user type as frozen.
    fn write(&self, f: &mut fmt::Formatter<'_>, nested: bool) -> fmt::Result {
        let inner = self.unfrozen();
        let frozen = nested || self.is_frozen();
        match inner {
            CqlType::Native(n) => f.write_str(n.name()),
            CqlType::Custom(class) => write!(f, "'{class}'"),
            CqlType::Tuple(items) => {
                f.write_str("frozen<tuple<")?;
                write_list(f, items)?;
                f.write_str(">>")
            }
            CqlType::UserType { name, .. } if frozen => write!(f, "frozen<{}>", maybe_quote(name)),
            CqlType::UserType { name, .. } => f.write_str(&maybe_quote(name)),
            _ => {
                if frozen {
                    f.write_str("frozen<")?;
                }
                write_collection(f, inner)?;
                if frozen {
                    f.write_str(">")?;
                }
                Ok(())
            }
        }
    }
}

/// Writes `list<..>`, `set<..>` or `map<.., ..>` with nested elements frozen.
fn write_collection(f: &mut fmt::Formatter<'_>, ty: &CqlType) -> fmt::Result {
    match ty {
        CqlType::List(e) => {
            f.write_str("list<")?;
            e.write(f, true)?;
        }
        CqlType::Set(e) => {
            f.write_str("set<")?;
            e.write(f, true)?;
        }
        CqlType::Map(k, v) => {
            f.write_str("map<")?;
            k.write(f, true)?;
            f.write_str(", ")?;
            v.write(f, true)?;
        }
        other => return other.write(f, true),
    }
    f.write_str(">")
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[CqlType]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item.write(f, true)?;
    }
    Ok(())
}

impl fmt::Display for CqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

/// Serialized as the CQL text of the type (`map<int, frozen<list<text>>>`), which
/// [`CqlType::parse`] reads back.
impl serde::Serialize for CqlType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CqlType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CqlType, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        CqlType::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl FromStr for CqlType {
    type Err = TypeParseError;

    fn from_str(s: &str) -> Result<CqlType, TypeParseError> {
        CqlType::parse(s)
    }
}

/// Cassandra 4's reserved keywords (ReservedKeywords.java): they cannot be used as
/// unquoted names, so names equal to them must be double-quoted when printed.
pub const RESERVED_KEYWORDS: &[&str] = &[
    "add",
    "allow",
    "alter",
    "and",
    "apply",
    "asc",
    "authorize",
    "batch",
    "begin",
    "by",
    "columnfamily",
    "create",
    "default",
    "delete",
    "desc",
    "describe",
    "drop",
    "entries",
    "execute",
    "from",
    "full",
    "grant",
    "if",
    "in",
    "index",
    "infinity",
    "insert",
    "into",
    "is",
    "keyspace",
    "limit",
    "materialized",
    "mbean",
    "mbeans",
    "modify",
    "nan",
    "norecursive",
    "not",
    "null",
    "of",
    "on",
    "or",
    "order",
    "primary",
    "rename",
    "replace",
    "revoke",
    "schema",
    "select",
    "set",
    "table",
    "to",
    "token",
    "truncate",
    "unlogged",
    "unset",
    "update",
    "use",
    "using",
    "view",
    "where",
    "with",
];

/// True when `word` (any case) is a reserved keyword.
pub fn is_reserved_keyword(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    RESERVED_KEYWORDS.binary_search(&lower.as_str()).is_ok()
}

/// Quotes a name the way Cassandra's `ColumnIdentifier.maybeQuote` does: names matching
/// `[a-z][a-z0-9_]*` that are not reserved keywords stay bare, anything else is wrapped
/// in double quotes with inner `"` doubled.
pub fn maybe_quote(name: &str) -> Cow<'_, str> {
    let mut chars = name.chars();
    let plain = matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'));
    if plain && !is_reserved_keyword(name) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("\"{}\"", name.replace('"', "\"\"")))
    }
}

/// A small recursive-descent parser over the characters of a type string. Types are a
/// tiny grammar, and parsing them without the statement lexer lets schema code read
/// `system_schema` type strings without building a whole statement.
struct TypeParser<'a> {
    text: &'a str,
    pos: usize,
}

/// Nesting deeper than this is rejected so hostile input cannot exhaust the stack.
const MAX_TYPE_DEPTH: usize = 64;

impl<'a> TypeParser<'a> {
    fn new(text: &'a str) -> Self {
        TypeParser { text, pos: 0 }
    }

    fn error(&self, reason: impl Into<String>) -> TypeParseError {
        TypeParseError {
            text: self.text.to_string(),
            reason: reason.into(),
        }
    }

    fn parse_all(mut self) -> Result<CqlType, TypeParseError> {
        let ty = self.parse_type(0)?;
        self.skip_spaces();
        if self.pos < self.text.len() {
            return Err(self.error(format!("unexpected '{}'", self.rest())));
        }
        Ok(ty)
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Consumes `c` (after spaces) if it is next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), TypeParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(format!("expected '{c}'")))
        }
    }

    fn parse_type(&mut self, depth: usize) -> Result<CqlType, TypeParseError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(self.error("type nested too deeply"));
        }
        self.skip_spaces();
        if self.rest().starts_with('\'') {
            return self.parse_custom();
        }
        let (word, quoted) = self.parse_name()?;
        if quoted {
            return self.parse_udt_rest(word);
        }
        let lower = word.to_ascii_lowercase();
        let args = |p: &mut Self, n: usize| p.parse_args(depth, n);
        Ok(match lower.as_str() {
            "list" => CqlType::list(args(self, 1)?.remove(0)),
            "set" => CqlType::set(args(self, 1)?.remove(0)),
            "frozen" => CqlType::frozen(args(self, 1)?.remove(0)),
            "map" => {
                let mut kv = args(self, 2)?;
                let v = kv.remove(1);
                CqlType::map(kv.remove(0), v)
            }
            "tuple" => CqlType::Tuple(args(self, 0)?),
            _ => match NativeType::from_name(&lower) {
                Some(n) => CqlType::Native(n),
                None => self.parse_udt_rest(lower)?,
            },
        })
    }

    /// `<t, t, ...>`: exactly `count` types, or at least one when `count` is 0.
    fn parse_args(&mut self, depth: usize, count: usize) -> Result<Vec<CqlType>, TypeParseError> {
        self.expect('<')?;
        let mut items = vec![self.parse_type(depth + 1)?];
        while self.eat(',') {
            items.push(self.parse_type(depth + 1)?);
        }
        self.expect('>')?;
        if count != 0 && items.len() != count {
            return Err(self.error(format!("expected {count} type argument(s)")));
        }
        Ok(items)
    }

    /// After a first name: an optional `.name` makes it `keyspace.udt`.
    fn parse_udt_rest(&mut self, first: String) -> Result<CqlType, TypeParseError> {
        if self.eat('.') {
            let (name, quoted) = self.parse_name()?;
            let name = if quoted {
                name
            } else {
                name.to_ascii_lowercase()
            };
            return Ok(CqlType::UserType {
                keyspace: Some(first),
                name,
            });
        }
        Ok(CqlType::UserType {
            keyspace: None,
            name: first,
        })
    }

    /// A bare word (returned as written) or a `"quoted"` name (unescaped).
    fn parse_name(&mut self) -> Result<(String, bool), TypeParseError> {
        self.skip_spaces();
        let rest = self.rest();
        if let Some(body) = rest.strip_prefix('"') {
            let (name, used) =
                read_quoted(body, '"').ok_or_else(|| self.error("unterminated quoted name"))?;
            self.pos += 1 + used;
            return Ok((name, true));
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error("expected a type name"));
        }
        self.pos += len;
        Ok((rest[..len].to_string(), false))
    }

    fn parse_custom(&mut self) -> Result<CqlType, TypeParseError> {
        let body = self.rest().get(1..).unwrap_or("");
        let (class, used) =
            read_quoted(body, '\'').ok_or_else(|| self.error("unterminated custom type"))?;
        self.pos += 1 + used;
        Ok(CqlType::Custom(class))
    }
}

/// Reads up to the closing `quote` (a doubled quote is an escaped one). Returns the
/// unescaped text and the bytes consumed including the closing quote.
pub(crate) fn read_quoted(body: &str, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != quote {
            out.push(c);
            continue;
        }
        if chars.peek().map(|&(_, n)| n) == Some(quote) {
            chars.next();
            out.push(quote);
            continue;
        }
        return Some((out, i + c.len_utf8()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> String {
        CqlType::parse(text)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn natives_print_their_names() {
        for n in NativeType::ALL {
            assert_eq!(CqlType::Native(n).to_string(), n.name());
            assert_eq!(CqlType::parse(n.name()), Ok(CqlType::Native(n)));
            assert_eq!(
                CqlType::parse(&n.name().to_uppercase()),
                Ok(CqlType::Native(n))
            );
        }
        assert_eq!(show("varchar"), "text");
        assert_eq!(show("VarChar"), "text");
    }

    #[test]
    fn collections_print_as_cassandra_stores_them() {
        let cases = [
            ("list<int>", "list<int>"),
            ("map<text,int>", "map<text, int>"),
            ("MAP < varchar , int >", "map<text, int>"),
            ("set<frozen<list<int>>>", "set<frozen<list<int>>>"),
            ("set<list<int>>", "set<frozen<list<int>>>"),
            (
                "frozen<map<text, list<int>>>",
                "frozen<map<text, frozen<list<int>>>>",
            ),
            ("tuple<int, text>", "frozen<tuple<int, text>>"),
            ("frozen<tuple<int,text>>", "frozen<tuple<int, text>>"),
            (
                "list<tuple<int, list<text>>>",
                "list<frozen<tuple<int, frozen<list<text>>>>>",
            ),
            ("address", "address"),
            ("frozen<address>", "frozen<address>"),
            ("frozen<ks.address>", "frozen<address>"),
            ("map<text, frozen<address>>", "map<text, frozen<address>>"),
            ("frozen<\"MyType\">", "frozen<\"MyType\">"),
            (
                "'org.apache.cassandra.db.marshal.DynamicCompositeType'",
                "'org.apache.cassandra.db.marshal.DynamicCompositeType'",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(show(input), want, "{input}");
        }
    }

    #[test]
    fn display_then_parse_round_trips() {
        let types = [
            "int",
            "list<frozen<map<int, text>>>",
            "map<frozen<set<uuid>>, frozen<tuple<int, frozen<address>>>>",
            "frozen<list<frozen<tuple<int, text, blob>>>>",
            "\"Weird\"\"Name\"",
            "frozen<\"select\">",
            "set<timeuuid>",
        ];
        for text in types {
            let ty = CqlType::parse(text).expect(text);
            assert_eq!(ty.to_string(), text);
            let again = CqlType::parse(&ty.to_string()).expect(text);
            assert_eq!(again.canonical(), ty.canonical());
            assert_eq!(again.to_string(), text);
        }
    }

    #[test]
    fn quoted_names_keep_case_and_unquoted_are_lowercased() {
        assert_eq!(CqlType::parse("Address"), Ok(CqlType::udt("address")));
        assert_eq!(CqlType::parse("\"Address\""), Ok(CqlType::udt("Address")));
        assert_eq!(
            CqlType::parse("Ks.\"T\""),
            Ok(CqlType::UserType {
                keyspace: Some("ks".into()),
                name: "T".into()
            })
        );
    }

    #[test]
    fn predicates() {
        let list = CqlType::parse("list<int>").unwrap_or(CqlType::udt("x"));
        assert!(list.is_collection() && list.is_multicell() && !list.is_frozen());
        let frozen = CqlType::frozen(list.clone());
        assert!(frozen.is_collection() && !frozen.is_multicell() && frozen.is_frozen());
        assert!(CqlType::udt("a").is_multicell());
        assert!(CqlType::Tuple(vec![]).is_frozen());
        assert!(!CqlType::Native(NativeType::Int).is_collection());
    }

    #[test]
    fn bad_types_are_errors() {
        for bad in [
            "",
            "list<int",
            "map<int>",
            "list<>",
            "int>",
            "frozen<",
            "'abc",
            "\"abc",
            "list<int,int>",
        ] {
            assert!(CqlType::parse(bad).is_err(), "{bad}");
        }
        let deep = "list<".repeat(100) + "int" + &">".repeat(100);
        assert!(CqlType::parse(&deep).is_err());
    }

    #[test]
    fn quoting_follows_cassandra() {
        assert_eq!(maybe_quote("abc_1"), "abc_1");
        assert_eq!(maybe_quote("Abc"), "\"Abc\"");
        assert_eq!(maybe_quote("1abc"), "\"1abc\"");
        assert_eq!(maybe_quote("select"), "\"select\"");
        assert_eq!(maybe_quote("key"), "key");
        assert_eq!(maybe_quote("a\"b"), "\"a\"\"b\"");
        let mut sorted = RESERVED_KEYWORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, RESERVED_KEYWORDS);
    }
}
