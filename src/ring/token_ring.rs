//! `TokenRing`: the sorted ring of node tokens, and who owns a token.

use std::collections::BTreeSet;

use rand::Rng;

use super::token::Token;

/// The ring: every node token with the node (or any per-token payload `N`) that holds it,
/// sorted by token. Token `T` owns the range `(previous token, T]`, and the first token owns
/// the wrap-around range `(last token, MAX] ∪ [MIN, first token]`, as Cassandra's
/// `(t1, t2]` ranges and Scylla's `first_token_index` (`lower_bound`, `end()` → 0).
///
/// A plain sorted `Vec` (the scylla-rust-driver shape): rings hold at most a few thousand
/// tokens, are rebuilt on topology change, and are read by binary search on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRing<N> {
    ring: Vec<(Token, N)>,
}

impl<N> Default for TokenRing<N> {
    fn default() -> Self {
        TokenRing { ring: Vec::new() }
    }
}

impl<N> TokenRing<N> {
    /// Builds the ring from `(token, node)` pairs in any order. A token can have only one
    /// owner: when it appears more than once, the first pair given wins (resolve gossip
    /// conflicts, e.g. by newer generation, before building).
    pub fn new(pairs: impl IntoIterator<Item = (Token, N)>) -> Self {
        let mut ring: Vec<(Token, N)> = pairs.into_iter().collect();
        // Stable sort keeps input order among equal tokens, so dedup keeps the first given.
        ring.sort_by_key(|(token, _)| *token);
        ring.dedup_by_key(|(token, _)| *token);
        TokenRing { ring }
    }

    /// Number of tokens (not nodes: with vnodes each node holds several).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True when no node holds a token; then nothing owns anything.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// All `(token, node)` entries in ascending token order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Token, &N)> + Clone + '_ {
        self.ring.iter().map(|(token, node)| (*token, node))
    }

    /// All tokens in ascending order.
    pub fn tokens(&self) -> impl ExactSizeIterator<Item = Token> + Clone + '_ {
        self.ring.iter().map(|(token, _)| *token)
    }

    /// Index of the entry owning `token`: the first token ≥ `token`, wrapping to 0.
    fn owner_index(&self, token: Token) -> usize {
        let index = self.ring.partition_point(|(t, _)| *t < token);
        if index == self.ring.len() {
            0
        } else {
            index
        }
    }

    /// The ring entry whose range `(prev, T]` contains `token`; `None` on an empty ring.
    pub fn owner_entry(&self, token: Token) -> Option<(Token, &N)> {
        self.ring
            .get(self.owner_index(token))
            .map(|(t, node)| (*t, node))
    }

    /// The node owning `token` (the primary replica's token holder); `None` on an empty ring.
    pub fn owner(&self, token: Token) -> Option<&N> {
        self.owner_entry(token).map(|(_, node)| node)
    }

    /// Walks the ring clockwise starting at the owner of `token`, visiting every entry exactly
    /// once and wrapping past `Token::MAX`. Replica placement (SimpleStrategy,
    /// NetworkTopologyStrategy) consumes this, skipping nodes it has already chosen.
    pub fn ring_range(&self, token: Token) -> impl Iterator<Item = (Token, &N)> + Clone + '_ {
        let start = self.owner_index(token);
        let (before, after) = self.ring.split_at(start.min(self.ring.len()));
        after
            .iter()
            .chain(before.iter())
            .map(|(t, node)| (*t, node))
    }

    /// The ranges cut at this ring's tokens and `other`'s together, as `(start exclusive,
    /// end inclusive)` in ring order: each lies inside one range of either ring, so its
    /// owners on each are the same throughout (what a node joining or leaving must stream
    /// is found range by range this way, comparing the current ring and the pending one).
    pub fn ranges_with<M>(&self, other: &TokenRing<M>) -> Vec<(Token, Token)> {
        let both = TokenRing::new(self.tokens().chain(other.tokens()).map(|t| (t, ())));
        both.ranges().map(|(start, end, _)| (start, end)).collect()
    }

    /// Every owned range as `(start exclusive, end inclusive, node)`, in ring order. The first
    /// range wraps: its start is the last token. A one-token ring owns `(T, T]`, i.e. all of it.
    pub fn ranges(&self) -> impl Iterator<Item = (Token, Token, &N)> + '_ {
        let last = self.ring.last().map(|(t, _)| *t);
        let previous = last.into_iter().chain(self.tokens());
        previous
            .zip(self.ring.iter())
            .map(|(start, (end, node))| (start, *end, node))
    }
}

/// Chooses `n` distinct random tokens for a node's first boot (Cassandra's legacy
/// `RandomTokenAllocator`, 2.x default). Never `Token::MIN`: it is the ring minimum, and a
/// node token there would own an empty range. Returned in ascending order. Collisions with
/// other nodes' tokens (probability ~n·m/2⁶⁴) are left to the ring's conflict rule.
pub fn random_tokens<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Vec<Token> {
    let mut chosen = BTreeSet::new();
    while chosen.len() < n {
        let value: i64 = rng.random();
        if value != i64::MIN {
            chosen.insert(Token(value));
        }
    }
    chosen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn ring() -> TokenRing<&'static str> {
        // Deliberately unsorted input.
        TokenRing::new([(Token(100), "c"), (Token(-100), "a"), (Token(0), "b")])
    }

    #[test]
    fn owner_is_first_token_at_or_after() {
        let ring = ring();
        assert_eq!(ring.owner(Token(-101)), Some(&"a"));
        assert_eq!(
            ring.owner(Token(-100)),
            Some(&"a"),
            "range end is inclusive"
        );
        assert_eq!(
            ring.owner(Token(-99)),
            Some(&"b"),
            "range start is exclusive"
        );
        assert_eq!(ring.owner(Token(0)), Some(&"b"));
        assert_eq!(ring.owner(Token(1)), Some(&"c"));
        assert_eq!(ring.owner(Token(100)), Some(&"c"));
    }

    #[test]
    fn owner_wraps_past_last_token() {
        let ring = ring();
        assert_eq!(ring.owner(Token(101)), Some(&"a"));
        assert_eq!(ring.owner(Token::MAX), Some(&"a"));
        assert_eq!(ring.owner(Token::MIN), Some(&"a"));
        assert_eq!(ring.owner_entry(Token::MAX), Some((Token(-100), &"a")));
    }

    #[test]
    fn ring_range_walks_clockwise_once() {
        let ring = ring();
        let walk = |t: i64| {
            ring.ring_range(Token(t))
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
        };
        assert_eq!(walk(-100), ["a", "b", "c"]);
        assert_eq!(walk(50), ["c", "a", "b"]);
        assert_eq!(walk(101), ["a", "b", "c"], "wraps to the start");
        assert_eq!(walk(i64::MAX), ["a", "b", "c"]);
    }

    #[test]
    fn empty_and_single_token_rings() {
        let empty: TokenRing<&str> = TokenRing::default();
        assert_eq!(empty.owner(Token(5)), None);
        assert_eq!(empty.ring_range(Token(5)).count(), 0);
        assert_eq!(empty.ranges().count(), 0);

        let one = TokenRing::new([(Token(7), "x")]);
        for t in [i64::MIN, 0, 7, 8, i64::MAX] {
            assert_eq!(one.owner(Token(t)), Some(&"x"));
        }
        assert_eq!(
            one.ranges().collect::<Vec<_>>(),
            [(Token(7), Token(7), &"x")]
        );
    }

    #[test]
    fn duplicate_token_keeps_first_given() {
        let ring = TokenRing::new([(Token(1), "first"), (Token(2), "b"), (Token(1), "second")]);
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.owner(Token(1)), Some(&"first"));
    }

    #[test]
    fn ranges_cover_the_ring() {
        let ring = ring();
        let ranges: Vec<_> = ring.ranges().collect();
        assert_eq!(
            ranges,
            [
                (Token(100), Token(-100), &"a"),
                (Token(-100), Token(0), &"b"),
                (Token(0), Token(100), &"c"),
            ]
        );
    }

    #[test]
    fn ranges_with_another_ring_fall_inside_one_range_of_each() {
        // A node leaving (its tokens on the current ring only): its ranges merge with the
        // next ones on the other ring, so cutting at one ring's tokens alone is not enough.
        let current = ring(); // -100: a, 0: b, 100: c
        let pending = TokenRing::new([(Token(-100), "a"), (Token(100), "c")]); // b leaves
        let cut = current.ranges_with(&pending);
        assert_eq!(
            cut,
            [
                (Token(100), Token(-100)),
                (Token(-100), Token(0)),
                (Token(0), Token(100)),
            ]
        );
        for (start, end) in cut {
            for ring in [&current, &pending] {
                // The range's owner is the same at its end and just after its start.
                let after_start = Token(start.0.wrapping_add(1));
                assert_eq!(
                    ring.owner(after_start),
                    ring.owner(end),
                    "{start:?}..{end:?}"
                );
            }
        }
        // The pending ring's ranges alone would miss the cut at 0: (-100, 100] has two
        // owners on the current ring.
        assert_eq!(pending.ranges().count(), 2);
    }

    #[test]
    fn random_tokens_are_distinct_sorted_and_never_min() {
        let mut rng = StdRng::seed_from_u64(7);
        let tokens = random_tokens(256, &mut rng);
        assert_eq!(tokens.len(), 256);
        assert!(tokens.windows(2).all(|w| w[0] < w[1]));
        assert!(!tokens.contains(&Token::MIN));
        assert!(random_tokens(0, &mut rng).is_empty());
    }
}
