//! Splitting a CQL script into statements, as cqlsh's `SOURCE` does: on `;` outside string
//! literals, quoted identifiers, `$$` strings and comments.

/// Where the scanner is: a `;` ends a statement only in `Code`.
#[derive(Clone, Copy, PartialEq)]
enum State {
    Code,
    /// Inside `'...'` (`''` is an escaped quote: leaving and re-entering gives the same result).
    Quote,
    /// Inside `"..."`.
    Ident,
    /// Inside `$$...$$`.
    Dollar,
    /// After `--` or `//`, to the end of the line.
    LineComment,
    /// Inside `/* ... */`.
    BlockComment,
}

/// The statements of `script` in order, each without its `;`, trimmed; statements holding
/// nothing but comments and whitespace are dropped.
pub fn split_script(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    let mut state = State::Code;
    let bytes = script.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let (new_state, skip) = match (state, b, next) {
            (State::Code, b';', _) => {
                push(&mut out, &script[start..i], has_code);
                start = i + 1;
                has_code = false;
                (State::Code, 1)
            }
            (State::Code, b'-', Some(b'-')) | (State::Code, b'/', Some(b'/')) => {
                (State::LineComment, 2)
            }
            (State::Code, b'/', Some(b'*')) => (State::BlockComment, 2),
            (State::Code, b'\'', _) => (State::Quote, 1),
            (State::Code, b'"', _) => (State::Ident, 1),
            (State::Code, b'$', Some(b'$')) => (State::Dollar, 2),
            (State::Quote, b'\'', _) | (State::Ident, b'"', _) => (State::Code, 1),
            (State::Dollar, b'$', Some(b'$')) => (State::Code, 2),
            (State::LineComment, b'\n', _) => (State::Code, 1),
            (State::BlockComment, b'*', Some(b'/')) => (State::Code, 2),
            (s, _, _) => (s, 1),
        };
        if state == State::Code && !matches!(new_state, State::LineComment | State::BlockComment) {
            has_code |= !b.is_ascii_whitespace() && b != b';';
        }
        state = new_state;
        i += skip;
    }
    push(&mut out, &script[start.min(script.len())..], has_code);
    out
}

fn push(out: &mut Vec<String>, text: &str, has_code: bool) {
    if has_code {
        out.push(text.trim().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::split_script;

    #[test]
    fn splits_on_semicolons_outside_strings_and_comments() {
        let script = "-- a; comment\nCREATE KEYSPACE k WITH x = {'a;b': 1};\n\
                      /* block; */ INSERT INTO t (a) VALUES ('it''s; fine');\n\
                      SELECT \"we;ird\" FROM t // tail; comment\n;  \n-- only a comment;\n";
        let got = split_script(script);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].ends_with("{'a;b': 1}"));
        assert!(got[1].ends_with("VALUES ('it''s; fine')"));
        assert!(got[2].starts_with("SELECT \"we;ird\" FROM t"));
    }

    #[test]
    fn last_statement_needs_no_semicolon_and_empty_scripts_are_empty() {
        assert_eq!(split_script("SELECT 1 FROM t"), vec!["SELECT 1 FROM t"]);
        assert!(split_script("").is_empty());
        assert!(split_script(" ;; -- x\n").is_empty());
        assert_eq!(split_script("x $$a;b$$; y").len(), 2);
    }

    #[test]
    fn the_shipped_schema_is_seven_idempotent_statements() {
        let statements = split_script(crate::chat::SCHEMA);
        assert_eq!(statements.len(), 7, "{statements:#?}");
        assert!(statements.iter().all(|s| s.contains("IF NOT EXISTS")));
    }
}
