//! Merkle trees over a token span of one table, for anti-entropy repair.
//!
//! A replica hashes every partition of the span it stores — the MD5 of the whole
//! partition's canonical bytes (`digest.rs`: every cell with its timestamp, TTL and
//! deletion time, every tombstone) — and folds each into the leaf its token falls in. The
//! span is cut into `2^depth` leaves of equal token width, so every replica of the span
//! builds the same shape whatever it holds, and two trees compare leaf by leaf. A leaf is
//! the XOR of its partitions' digests: order-free, so a replica can fold partitions in the
//! order it reads them, and no two different sets of distinct partitions collide short of
//! an MD5 collision. Inner nodes (for the root) hash their children's concatenation.
//!
//! The tree's memory is fixed by its depth (`16 × 2^depth` bytes), not by the data:
//! [`MAX_DEPTH`] bounds it (1 MiB of leaves at depth 16). A leaf that differs between
//! replicas is then compared partition by partition (each replica lists its partitions'
//! digests in that leaf's token span), and only partitions whose digests differ are read
//! and repaired — so what crosses the network grows with the divergence, not the table.
//!
//! Trees arrive from peers: [`MerkleTree::check`] refuses one whose shape is not what was
//! asked for, before it is compared.

use serde::{Deserialize, Serialize};

/// The deepest tree a repair builds or accepts.
pub const MAX_DEPTH: u8 = 16;

/// An inclusive span of tokens, `first..=last` (never empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSpan {
    pub first: i64,
    pub last: i64,
}

impl TokenSpan {
    /// The spans of the ring range `(start, end]` (Cassandra's range notation, as
    /// `TokenRing::ranges` gives them): one span, or two when the range wraps past the
    /// ring's end (`start >= end`; a one-token ring's `(T, T]` is the whole ring).
    pub fn of_range(start: i64, end: i64) -> Vec<TokenSpan> {
        if start < end {
            return vec![TokenSpan {
                first: start + 1,
                last: end,
            }];
        }
        let mut spans = Vec::with_capacity(2);
        if start < i64::MAX {
            spans.push(TokenSpan {
                first: start + 1,
                last: i64::MAX,
            });
        }
        spans.push(TokenSpan {
            first: i64::MIN,
            last: end,
        });
        spans
    }

    /// How many tokens the span holds (up to 2^64).
    fn width(&self) -> u128 {
        (i128::from(self.last) - i128::from(self.first) + 1) as u128
    }

    pub fn contains(&self, token: i64) -> bool {
        self.first <= token && token <= self.last
    }

    /// The leaf of a `depth` tree that `token` (in the span) falls in.
    pub fn leaf_of(&self, depth: u8, token: i64) -> usize {
        let offset = (i128::from(token) - i128::from(self.first)) as u128;
        ((offset << depth) / self.width()) as usize
    }

    /// The tokens of leaf `leaf` of a `depth` tree: exactly those `leaf_of` maps to it (a
    /// span narrower than its leaves leaves some leaves empty: `None`).
    pub fn leaf_span(&self, depth: u8, leaf: usize) -> Option<TokenSpan> {
        let width = self.width();
        // The smallest offset o with (o << depth) / width >= leaf: ceil(leaf * width / 2^depth).
        let start = |leaf: u128| (leaf * width).div_ceil(1u128 << depth);
        let (from, to) = (start(leaf as u128), start(leaf as u128 + 1));
        (from < to).then(|| TokenSpan {
            first: (i128::from(self.first) + from as i128) as i64,
            last: (i128::from(self.first) + to as i128 - 1) as i64,
        })
    }
}

/// One replica's tree of a span: its leaves, and how many partitions went into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleTree {
    pub depth: u8,
    pub leaves: Vec<[u8; 16]>,
    pub partitions: u64,
}

impl MerkleTree {
    /// An empty tree of `depth` (at most [`MAX_DEPTH`]).
    pub fn new(depth: u8) -> MerkleTree {
        let depth = depth.min(MAX_DEPTH);
        MerkleTree {
            depth,
            leaves: vec![[0; 16]; 1 << depth],
            partitions: 0,
        }
    }

    /// Folds a partition with `token` (in `span`) and `digest` into its leaf.
    pub fn add(&mut self, span: &TokenSpan, token: i64, digest: &[u8; 16]) {
        let leaf = &mut self.leaves[span.leaf_of(self.depth, token)];
        for (l, d) in leaf.iter_mut().zip(digest) {
            *l ^= d;
        }
        self.partitions += 1;
    }

    /// Whether this tree (from a peer) has the shape a `depth` tree must.
    pub fn check(&self, depth: u8) -> Result<(), String> {
        if self.depth != depth || self.leaves.len() != 1usize << depth.min(MAX_DEPTH) {
            return Err(format!(
                "a Merkle tree of depth {} with {} leaves, where depth {depth} was asked for",
                self.depth,
                self.leaves.len()
            ));
        }
        Ok(())
    }

    /// The root hash: each level's nodes are the MD5 of their two children.
    pub fn root(&self) -> [u8; 16] {
        use md5::{Digest as _, Md5};
        let mut level = self.leaves.clone();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|pair| {
                    let mut hash = Md5::new();
                    for node in pair {
                        hash.update(node);
                    }
                    hash.finalize().into()
                })
                .collect();
        }
        level.first().copied().unwrap_or_default()
    }

    /// The leaves where the trees differ (both of one depth).
    pub fn differing_leaves<'a>(trees: impl IntoIterator<Item = &'a MerkleTree>) -> Vec<usize> {
        let trees: Vec<&MerkleTree> = trees.into_iter().collect();
        let Some(first) = trees.first() else {
            return Vec::new();
        };
        (0..first.leaves.len())
            .filter(|&i| trees.iter().any(|t| t.leaves[i] != first.leaves[i]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_range_becomes_spans_that_cover_it_exactly() {
        assert_eq!(
            TokenSpan::of_range(-10, 20),
            vec![TokenSpan {
                first: -9,
                last: 20
            }]
        );
        // Wrapping: (30, MAX] and [MIN, -5].
        assert_eq!(
            TokenSpan::of_range(30, -5),
            vec![
                TokenSpan {
                    first: 31,
                    last: i64::MAX
                },
                TokenSpan {
                    first: i64::MIN,
                    last: -5
                }
            ]
        );
        // One token owns the whole ring.
        let whole = TokenSpan::of_range(7, 7);
        assert_eq!(whole.len(), 2);
        assert_eq!((whole[0].first, whole[1].last), (8, 7));
        assert_eq!(
            TokenSpan::of_range(i64::MAX, 3),
            vec![TokenSpan {
                first: i64::MIN,
                last: 3
            }]
        );
    }

    #[test]
    fn the_whole_ring_splits_into_equal_leaves() {
        let ring = TokenSpan {
            first: i64::MIN,
            last: i64::MAX,
        };
        assert_eq!(ring.leaf_of(1, i64::MIN), 0);
        assert_eq!(ring.leaf_of(1, -1), 0);
        assert_eq!(ring.leaf_of(1, 0), 1);
        assert_eq!(ring.leaf_of(1, i64::MAX), 1);
        assert_eq!(
            ring.leaf_span(1, 1),
            Some(TokenSpan {
                first: 0,
                last: i64::MAX
            })
        );
    }

    #[test]
    fn a_span_narrower_than_its_leaves_leaves_some_empty() {
        let span = TokenSpan { first: 0, last: 2 };
        let spans: Vec<_> = (0..8).map(|i| span.leaf_span(3, i)).collect();
        assert_eq!(spans.iter().flatten().count(), 3);
        for t in 0..=2 {
            let leaf = span.leaf_of(3, t);
            assert!(spans[leaf].unwrap().contains(t));
        }
    }

    #[test]
    fn trees_that_differ_in_one_partition_differ_in_its_leaf_only() {
        let span = TokenSpan {
            first: -1000,
            last: 1000,
        };
        let mut a = MerkleTree::new(4);
        let mut b = MerkleTree::new(4);
        for t in (-1000..1000).step_by(37) {
            a.add(&span, t, &[t as u8; 16]);
            b.add(&span, t, &[t as u8; 16]);
        }
        assert_eq!(a.root(), b.root());
        b.add(&span, 5, &[9; 16]);
        assert_ne!(a.root(), b.root());
        assert_eq!(
            MerkleTree::differing_leaves([&a, &b]),
            vec![span.leaf_of(4, 5)]
        );
    }

    #[test]
    fn a_tree_of_the_wrong_shape_is_refused() {
        let mut tree = MerkleTree::new(3);
        assert!(tree.check(3).is_ok());
        assert!(tree.check(4).is_err());
        tree.leaves.pop();
        assert!(tree.check(3).is_err());
    }

    proptest! {
        /// Every token of a span falls in a leaf whose span holds it, and the leaves' spans
        /// tile the span in order with no gap or overlap.
        #[test]
        fn leaves_tile_the_span(first in any::<i64>(), len in any::<u64>(), depth in 0u8..=MAX_DEPTH, probe in any::<u64>()) {
            let last = (i128::from(first) + i128::from(len)).min(i128::from(i64::MAX)) as i64;
            let span = TokenSpan { first, last };
            let token = (i128::from(first) + (u128::from(probe) % span.width()) as i128) as i64;
            let leaf = span.leaf_of(depth, token);
            prop_assert!(leaf < 1 << depth);
            prop_assert!(span.leaf_span(depth, leaf).unwrap().contains(token));
            // Tiling, checked on a bounded number of leaves.
            let mut next = i128::from(first);
            for i in 0..(1usize << depth).min(64) {
                if let Some(s) = span.leaf_span(depth, i) {
                    prop_assert_eq!(i128::from(s.first), next);
                    prop_assert!(s.last >= s.first);
                    next = i128::from(s.last) + 1;
                }
            }
            if depth <= 6 {
                prop_assert_eq!(next, i128::from(last) + 1);
            }
        }
    }
}
