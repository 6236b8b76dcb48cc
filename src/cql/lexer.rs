//! The CQL lexer: text to tokens with line and column positions.
//!
//! Keywords are not tokens of their own: CQL lets most keywords serve as names (a column
//! called `key`, `type` or `ttl`), so the lexer hands out identifiers and the parser decides
//! by context. Unquoted identifiers are lower-cased here, quoted ones keep their case, so
//! later stages compare names with `==`. Literal tokens follow Cassandra's Lexer.g: a
//! leading `-` belongs to a number, `true`/`false` are booleans, `NaN`/`Infinity` floats.

use super::parser::ParseError;
use super::types::read_quoted;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// An unquoted identifier or keyword, lower-cased.
    Ident(String),
    /// A `"quoted"` identifier, case kept, `""` unescaped.
    QuotedIdent(String),
    /// `'text'` (with `''` unescaped) or `$$text$$`.
    String(String),
    /// An integer as written, possibly with a leading `-`.
    Integer(String),
    /// A float as written (`1.5`, `-2e10`), or `NaN` / `Infinity`.
    Float(String),
    /// `true` / `false`, any case.
    Boolean(bool),
    /// A hyphenated UUID, as written.
    Uuid(String),
    /// A `0x...` blob; the hex digits without the prefix.
    Blob(String),
    /// A duration such as `1h30m`, `30000ms` or `P1DT2H`, as written.
    Duration(String),
    /// Punctuation: `( ) [ ] { } , ; . * = < > <= >= != + - / % : ? ..`
    Punct(&'static str),
    /// End of input.
    Eof,
}

/// A token with where it starts (1-based line, 0-based column as ANTLR reports them)
/// and its byte span in the source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub line: usize,
    pub column: usize,
    pub start: usize,
    pub end: usize,
}

/// Punctuation, longest first so `<=` wins over `<`.
const PUNCTS: [&str; 22] = [
    "<=", ">=", "!=", "..", "(", ")", "[", "]", "{", "}", ",", ";", ".", "*", "=", "<", ">", "+",
    "-", "/", "%", ":",
];

/// Splits `text` into tokens, ending with an `Eof` token.
pub fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer {
        text,
        pos: 0,
        line: 1,
        line_start: 0,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_trivia()?;
        let token = lexer.next_token()?;
        let done = token.kind == TokenKind::Eof;
        tokens.push(token);
        if done {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    line_start: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn column_of(&self, byte: usize) -> usize {
        self.text
            .get(self.line_start..byte)
            .map_or(0, |s| s.chars().count())
    }

    fn error_here(&self, message: String) -> ParseError {
        ParseError {
            line: self.line,
            column: self.column_of(self.pos),
            message,
        }
    }

    /// Moves over `len` bytes, keeping line bookkeeping right across newlines.
    fn advance(&mut self, len: usize) {
        let end = (self.pos + len).min(self.text.len());
        let consumed = self.text.get(self.pos..end).unwrap_or("");
        for (i, c) in consumed.char_indices() {
            if c == '\n' {
                self.line += 1;
                self.line_start = self.pos + i + 1;
            }
        }
        self.pos = end;
    }

    /// Skips whitespace and `--`, `//`, `/* */` comments.
    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.advance(rest.len() - trimmed.len());
            if trimmed.starts_with("--") || trimmed.starts_with("//") {
                self.advance(trimmed.find('\n').unwrap_or(trimmed.len()));
            } else if trimmed.starts_with("/*") {
                let Some(end) = trimmed.find("*/") else {
                    return Err(self.error_here("unterminated comment".into()));
                };
                self.advance(end + 2);
            } else {
                return Ok(());
            }
        }
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        let (line, column, start) = (self.line, self.column_of(self.pos), self.pos);
        let (kind, len) = self.scan()?;
        self.advance(len);
        Ok(Token {
            kind,
            line,
            column,
            start,
            end: self.pos,
        })
    }

    /// Recognises the token at the current position: its kind and byte length.
    fn scan(&self) -> Result<(TokenKind, usize), ParseError> {
        let rest = self.rest();
        let Some(first) = rest.chars().next() else {
            return Ok((TokenKind::Eof, 0));
        };
        if let Some(len) = uuid_len(rest) {
            return Ok((TokenKind::Uuid(rest[..len].to_string()), len));
        }
        match first {
            '\'' => self.scan_quoted(rest, '\''),
            '"' => self.scan_quoted(rest, '"'),
            '$' if rest.starts_with("$$") => self.scan_dollar(rest),
            '0' if rest[1..].starts_with(['x', 'X']) => Ok(scan_blob(rest)),
            c if c.is_ascii_digit() => Ok(scan_number(rest, 0)),
            '-' if rest[1..].starts_with(|c: char| c.is_ascii_digit()) => Ok(scan_number(rest, 1)),
            // A negative ISO 8601 duration: the sign belongs to it, as to a number.
            '-' if iso_duration_len(&rest[1..]).is_some() => {
                let len = 1 + iso_duration_len(&rest[1..]).unwrap_or(0);
                Ok((TokenKind::Duration(rest[..len].to_string()), len))
            }
            c if c.is_ascii_alphabetic() => match iso_alternative_len(rest) {
                Some(len) => Ok((TokenKind::Duration(rest[..len].to_string()), len)),
                None => Ok(scan_word(rest)),
            },
            '?' => Ok((TokenKind::Punct("?"), 1)),
            _ => match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
                Some(p) => Ok((TokenKind::Punct(p), p.len())),
                None => Err(self.error_here(format!("token recognition error at: '{first}'"))),
            },
        }
    }

    fn scan_quoted(&self, rest: &str, quote: char) -> Result<(TokenKind, usize), ParseError> {
        let Some((body, used)) = read_quoted(&rest[1..], quote) else {
            let what = if quote == '"' {
                "quoted identifier"
            } else {
                "string literal"
            };
            return Err(self.error_here(format!("unterminated {what}")));
        };
        let kind = if quote == '"' {
            TokenKind::QuotedIdent(body)
        } else {
            TokenKind::String(body)
        };
        Ok((kind, 1 + used))
    }

    fn scan_dollar(&self, rest: &str) -> Result<(TokenKind, usize), ParseError> {
        match rest[2..].find("$$") {
            Some(end) => Ok((TokenKind::String(rest[2..2 + end].to_string()), end + 4)),
            None => Err(self.error_here("unterminated $$ string literal".into())),
        }
    }
}

/// Length of a hyphenated UUID at the start of `s` (not followed by a word character).
fn uuid_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.len() < 36 {
        return None;
    }
    let shape_ok = bytes[..36].iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    let ends = bytes.get(36).is_none_or(|b| !is_word_byte(*b));
    (shape_ok && ends).then_some(36)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn count_while(s: &str, f: impl Fn(u8) -> bool) -> usize {
    s.bytes().take_while(|b| f(*b)).count()
}

fn scan_blob(rest: &str) -> (TokenKind, usize) {
    let digits = count_while(&rest[2..], |b| b.is_ascii_hexdigit());
    (TokenKind::Blob(rest[2..2 + digits].to_string()), 2 + digits)
}

/// A number starting after `sign` bytes: an integer, a float, or a duration such as
/// `1h30m` when a unit follows the digits.
fn scan_number(rest: &str, sign: usize) -> (TokenKind, usize) {
    let mut len = sign + count_while(&rest[sign..], |b| b.is_ascii_digit());
    if let Some(dur) = duration_units_len(&rest[len..]) {
        return (
            TokenKind::Duration(rest[..len + dur].to_string()),
            len + dur,
        );
    }
    let mut float = false;
    // `1..2` is a range, so a `.` followed by another `.` does not start a fraction.
    if rest[len..].starts_with('.') && !rest[len..].starts_with("..") {
        float = true;
        len += 1 + count_while(&rest[len + 1..], |b| b.is_ascii_digit());
    }
    if let Some(exp) = exponent_len(&rest[len..]) {
        float = true;
        len += exp;
    }
    let text = rest[..len].to_string();
    (
        if float {
            TokenKind::Float(text)
        } else {
            TokenKind::Integer(text)
        },
        len,
    )
}

fn exponent_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'e' | b'E')) {
        return None;
    }
    let sign = usize::from(matches!(b.get(1), Some(b'+' | b'-')));
    let digits = count_while(s.get(1 + sign..).unwrap_or(""), |c| c.is_ascii_digit());
    (digits > 0).then_some(1 + sign + digits)
}

/// After the first digits of a number: the length of `unit (digits unit)*` if the
/// number is a duration (`h`, `m`, `s`, `ms`, `us`, `µs`, `ns`, `d`, `w`, `y`, `mo`).
fn duration_units_len(s: &str) -> Option<usize> {
    let mut len = unit_len(s)?;
    loop {
        let digits = count_while(&s[len..], |b| b.is_ascii_digit());
        match (digits > 0).then(|| unit_len(&s[len + digits..])).flatten() {
            Some(unit) => len += digits + unit,
            None => break,
        }
    }
    let whole = s.as_bytes().get(len).is_none_or(|b| !is_word_byte(*b));
    whole.then_some(len)
}

fn unit_len(s: &str) -> Option<usize> {
    let lower = s.get(..s.len().min(3)).unwrap_or("").to_ascii_lowercase();
    for unit in ["ms", "us", "ns", "mo", "y", "w", "d", "h", "m", "s"] {
        if lower.starts_with(unit) {
            return Some(unit.len());
        }
    }
    s.starts_with("µs").then_some("µs".len())
}

/// An identifier, a boolean, `NaN`/`Infinity`, or an ISO 8601 duration (`P1DT2H`).
fn scan_word(rest: &str) -> (TokenKind, usize) {
    let len = count_while(rest, is_word_byte);
    let word = &rest[..len];
    let lower = word.to_ascii_lowercase();
    let kind = match lower.as_str() {
        "true" => TokenKind::Boolean(true),
        "false" => TokenKind::Boolean(false),
        "nan" => TokenKind::Float("NaN".into()),
        "infinity" => TokenKind::Float("Infinity".into()),
        _ if is_iso_duration(&lower) => TokenKind::Duration(word.to_string()),
        _ => TokenKind::Ident(lower),
    };
    (kind, len)
}

/// The length of an ISO 8601 duration at the start of `s`, in either form.
fn iso_duration_len(s: &str) -> Option<usize> {
    if let Some(len) = iso_alternative_len(s) {
        return Some(len);
    }
    let len = count_while(s, is_word_byte);
    is_iso_duration(&s[..len].to_ascii_lowercase()).then_some(len)
}

/// The length of ISO 8601's alternative duration format `Pyyyy-mm-ddThh:mm:ss` at the
/// start of `s` (Cassandra's Lexer.g takes it as one DURATION token).
fn iso_alternative_len(s: &str) -> Option<usize> {
    let shape = b"P0000-00-00T00:00:00";
    let b = s.as_bytes().get(..shape.len())?;
    let fits = b.iter().zip(shape).all(|(c, want)| match want {
        b'0' => c.is_ascii_digit(),
        b'P' | b'T' => c.eq_ignore_ascii_case(want),
        other => c == other,
    });
    let ends = s
        .as_bytes()
        .get(shape.len())
        .is_none_or(|b| !is_word_byte(*b));
    (fits && ends).then_some(shape.len())
}

/// `p(nY)(nM)(nD)(t(nH)(nM)(nS))` or `pnW`, lower-cased.
fn is_iso_duration(word: &str) -> bool {
    let Some(body) = word.strip_prefix('p') else {
        return false;
    };
    if body.is_empty() || !body.starts_with(|c: char| c.is_ascii_digit() || c == 't') {
        return false;
    }
    if let Some(weeks) = body.strip_suffix('w') {
        if !weeks.is_empty() && weeks.bytes().all(|b| b.is_ascii_digit()) {
            return true;
        }
    }
    let (date, time) = match body.split_once('t') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    designators_ok(date, "ymd") && time.is_none_or(|t| !t.is_empty() && designators_ok(t, "hms"))
}

/// `(digits designator)*` with designators in the given order, each at most once.
fn designators_ok(s: &str, order: &str) -> bool {
    let mut allowed = order;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = count_while(rest, |b| b.is_ascii_digit());
        let Some(unit) = rest[digits..].chars().next() else {
            return false;
        };
        let Some(at) = allowed.find(unit) else {
            return false;
        };
        if digits == 0 {
            return false;
        }
        allowed = &allowed[at + 1..];
        rest = &rest[digits + 1..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenKind::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        let mut tokens: Vec<TokenKind> = tokenize(text)
            .expect(text)
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(tokens.pop(), Some(Eof));
        tokens
    }

    fn ident(s: &str) -> TokenKind {
        Ident(s.to_string())
    }

    #[test]
    fn identifiers_are_lowercased_unless_quoted() {
        assert_eq!(
            kinds(r#"SELECT Foo "Bar" "a""b" key_1"#),
            vec![
                ident("select"),
                ident("foo"),
                QuotedIdent("Bar".into()),
                QuotedIdent("a\"b".into()),
                ident("key_1")
            ]
        );
    }

    #[test]
    fn literals() {
        assert_eq!(
            kinds("'it''s' $$a'b$$ 42 -7 1.5 -2.5e10 3E-2 NaN -Infinity true FALSE"),
            vec![
                String("it's".into()),
                String("a'b".into()),
                Integer("42".into()),
                Integer("-7".into()),
                Float("1.5".into()),
                Float("-2.5e10".into()),
                Float("3E-2".into()),
                Float("NaN".into()),
                Punct("-"),
                Float("Infinity".into()),
                Boolean(true),
                Boolean(false),
            ]
        );
        assert_eq!(
            kinds("550e8400-e29b-41d4-a716-446655440000 0xCAFE 0x"),
            vec![
                Uuid("550e8400-e29b-41d4-a716-446655440000".into()),
                Blob("CAFE".into()),
                Blob(std::string::String::new())
            ]
        );
    }

    #[test]
    fn durations() {
        for d in [
            "1h30m",
            "30000ms",
            "12us",
            "1y2mo3w4d",
            "5ns",
            "P1D",
            "PT2H30M",
            "P2W",
            "p1y2m3dt4h5m6s",
        ] {
            assert_eq!(kinds(d), vec![Duration(d.into())], "{d}");
        }
        assert_eq!(kinds("-1h"), vec![Duration("-1h".into())]);
        for d in [
            "P0001-02-03T04:05:06",
            "-P0001-02-03T04:05:06",
            "-P1Y2M",
            "-PT1H",
        ] {
            assert_eq!(kinds(d), vec![Duration(d.into())], "{d}");
        }
        assert_eq!(
            kinds("(P0001-02-03T04:05:06)"),
            vec![
                Punct("("),
                Duration("P0001-02-03T04:05:06".into()),
                Punct(")")
            ]
        );
        assert_eq!(kinds("1e5"), vec![Float("1e5".into())]);
        assert_eq!(kinds("p1x"), vec![ident("p1x")]);
        assert_eq!(kinds("1hx"), vec![Integer("1".into()), ident("hx")]);
    }

    #[test]
    fn punctuation_and_markers() {
        assert_eq!(
            kinds("a<=b>=c!=d ? :name 1..2 (x);"),
            vec![
                ident("a"),
                Punct("<="),
                ident("b"),
                Punct(">="),
                ident("c"),
                Punct("!="),
                ident("d"),
                Punct("?"),
                Punct(":"),
                ident("name"),
                Integer("1".into()),
                Punct(".."),
                Integer("2".into()),
                Punct("("),
                ident("x"),
                Punct(")"),
                Punct(";"),
            ]
        );
    }

    #[test]
    fn comments_are_skipped_and_positions_tracked() {
        let tokens = tokenize("-- intro\nSELECT /* a\nb */ x // tail\n  FROM t").expect("lex");
        let pos: Vec<(usize, usize)> = tokens.iter().map(|t| (t.line, t.column)).collect();
        assert_eq!(pos, vec![(2, 0), (3, 5), (4, 2), (4, 7), (4, 8)]);
    }

    #[test]
    fn errors_say_where() {
        let err = tokenize("SELECT\n  # x").expect_err("bad char");
        assert_eq!((err.line, err.column), (2, 2));
        assert!(tokenize("'open").is_err());
        assert!(tokenize("\"open").is_err());
        assert!(tokenize("$$open").is_err());
        assert!(tokenize("/* open").is_err());
        assert!(tokenize("é").is_err());
    }
}
