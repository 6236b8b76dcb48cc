//! The replica's side of anti-entropy repair (`storage/merkle.rs`): a Merkle tree of the
//! partitions it stores in a token span, and the digests of each partition in a leaf's span.
//!
//! Both read every partition whole, as a repair sees it: every row and tombstone, with no
//! live-row limit and no tombstone threshold (a repair that failed on a tombstone-heavy
//! partition would leave exactly the partitions that most need it unrepaired), bypassing the
//! cache so a repair's scan does not evict what clients read. `now_secs` comes from the
//! repair's coordinator, so every replica judges TTLs at the same instant.

use super::LocalReplica;
use crate::cache::Caching;
use crate::storage::comparable::full_range;
use crate::storage::digest::fragment_digest;
use crate::storage::merkle::{MerkleTree, TokenSpan};
use crate::storage::partition::{
    PartitionFragment, PartitionId, PartitionStart, ReadError, ReadLimits, Slice, TableLayout,
};
use std::ops::Bound;

/// Read bounds of a whole-partition repair read at `now_secs`.
pub fn repair_limits(now_secs: u32) -> ReadLimits {
    ReadLimits {
        live_rows: usize::MAX,
        now_secs,
        tombstone_failure: usize::MAX,
        read_static: true,
    }
}

/// Every row of a partition, in clustering order.
pub fn whole_partition() -> Slice {
    Slice {
        ranges: vec![full_range()],
        reversed: false,
    }
}

impl LocalReplica {
    /// The whole of `partition` as of `now_secs`, uncached.
    pub async fn read_whole(
        &self,
        layout: &TableLayout,
        partition: &PartitionId,
        now_secs: u32,
    ) -> Result<PartitionFragment, ReadError> {
        let served = self
            .read(
                layout,
                Caching::Off,
                partition,
                &whole_partition(),
                None,
                &repair_limits(now_secs),
            )
            .await?;
        Ok(served.into_fragment())
    }

    /// The Merkle tree of `depth` over the partitions of `layout`'s table in `span`.
    pub async fn merkle_tree(
        &self,
        layout: &TableLayout,
        span: TokenSpan,
        depth: u8,
        now_secs: u32,
    ) -> Result<MerkleTree, ReadError> {
        let mut tree = MerkleTree::new(depth);
        let mut start = PartitionStart::Token(Bound::Included(span.first));
        while let Some(partition) =
            self.next_partition(layout.id, &start, Bound::Included(span.last))?
        {
            let fragment = self.read_whole(layout, &partition, now_secs).await?;
            tree.add(&span, partition.token, &fragment_digest(&fragment));
            start = PartitionStart::After(partition);
        }
        Ok(tree)
    }

    /// Up to `limit` partitions of `layout`'s table in `span` after `after`, each with the
    /// digest of its whole content.
    pub async fn partition_digests(
        &self,
        layout: &TableLayout,
        span: TokenSpan,
        after: Option<PartitionId>,
        limit: u32,
        now_secs: u32,
    ) -> Result<Vec<(PartitionId, [u8; 16])>, ReadError> {
        let mut start = match after {
            Some(after) => PartitionStart::After(after),
            None => PartitionStart::Token(Bound::Included(span.first)),
        };
        let mut found = Vec::new();
        while found.len() < limit as usize {
            let Some(partition) =
                self.next_partition(layout.id, &start, Bound::Included(span.last))?
            else {
                break;
            };
            let fragment = self.read_whole(layout, &partition, now_secs).await?;
            found.push((partition.clone(), fragment_digest(&fragment)));
            start = PartitionStart::After(partition);
        }
        Ok(found)
    }
}
