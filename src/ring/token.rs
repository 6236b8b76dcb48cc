//! `Token`: a position on the Murmur3 ring, Cassandra's `LongToken`.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

/// A position on the Murmur3 token ring: a signed 64-bit value, ordered as a signed integer,
/// printed and parsed in decimal exactly as Cassandra's `LongToken` (the form that appears in
/// `system.local.tokens`, `system.peers.tokens` and `token()` results).
///
/// `Token::MIN` (`i64::MIN`) is the ring's minimum token: it marks the start of the ring in
/// range bounds and is never the token of a key (hashes equal to it are normalised to
/// `Token::MAX`, and it is never chosen as a node token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub i64);

impl Token {
    /// The ring minimum (`i64::MIN`), Cassandra's `Murmur3Partitioner.MINIMUM`. Also the token
    /// Cassandra gives an empty partition key.
    pub const MIN: Token = Token(i64::MIN);

    /// The largest token (`i64::MAX`); a hash of `i64::MIN` becomes this.
    pub const MAX: Token = Token(i64::MAX);

    /// Wraps a raw Murmur3 `h1` into a key token, applying Cassandra's `normalize()`:
    /// `i64::MIN` is reserved for the ring minimum, so it becomes `i64::MAX`.
    #[inline]
    pub const fn from_hash(h1: i64) -> Token {
        if h1 == i64::MIN {
            Token::MAX
        } else {
            Token(h1)
        }
    }

    /// The raw signed value.
    #[inline]
    pub const fn value(self) -> i64 {
        self.0
    }

    /// True for the ring minimum, which no key and no node owns as its token.
    #[inline]
    pub const fn is_minimum(self) -> bool {
        self.0 == i64::MIN
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Token {
    type Err = ParseIntError;

    /// Parses Cassandra's decimal form (e.g. `"-9223372036854775808"`); surrounding whitespace
    /// is rejected, as `Long.parseLong` rejects it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<i64>().map(Token)
    }
}

impl From<i64> for Token {
    fn from(value: i64) -> Self {
        Token(value)
    }
}

impl From<Token> for i64 {
    fn from(token: Token) -> Self {
        token.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_min_to_max() {
        assert_eq!(Token::from_hash(i64::MIN), Token::MAX);
        assert_eq!(Token::from_hash(0), Token(0));
        assert_eq!(Token::from_hash(i64::MAX), Token::MAX);
    }

    #[test]
    fn orders_as_signed() {
        assert!(Token::MIN < Token(-1));
        assert!(Token(-1) < Token(0));
        assert!(Token(0) < Token::MAX);
    }

    #[test]
    fn display_and_parse_round_trip() {
        for v in [i64::MIN, -1, 0, 42, i64::MAX] {
            let t = Token(v);
            assert_eq!(t.to_string(), v.to_string());
            assert_eq!(t.to_string().parse::<Token>(), Ok(t));
        }
        assert_eq!(Token::MIN.to_string(), "-9223372036854775808");
        assert!(" 1".parse::<Token>().is_err());
        assert!("9223372036854775808".parse::<Token>().is_err());
    }
}
