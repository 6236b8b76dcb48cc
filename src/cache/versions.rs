//! Partition versions: the counters that keep the cache exactly coherent.
//!
//! Every write bumps the version of each partition it touched after the engine applied it
//! and before the client is acknowledged. A cache entry records the version it was read
//! under and is served only while that version is current, so an entry filled before a
//! write can never answer a read that began after the write's acknowledgement.
//!
//! Versions are not kept per partition (that map would grow with every partition ever
//! written): partitions hash onto a fixed array of counters, the stripes. Two partitions
//! sharing a stripe only cost each other extra misses, never a stale read, because a bump
//! can only make an entry look older than it is. TRUNCATE and DROP bump one epoch that
//! every stamp carries, which retires every entry at once.

use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use crate::storage::partition::PartitionId;

/// What a read observed of its partition's version; an entry is current while its stamp
/// equals the partition's stamp now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stamp {
    epoch: u64,
    version: u64,
}

impl Stamp {
    /// Whether data read under `self` may answer a read that began at `other`: every
    /// counter `other` observed, `self` observed too or later. Counters only grow, so a
    /// fill stamped no older than a read saw every write that read must see.
    pub fn covers(&self, other: Stamp) -> bool {
        self.epoch >= other.epoch && self.version >= other.version
    }
}

/// The version counters of one replica.
pub struct Versions {
    stripes: Box<[AtomicU64]>,
    /// Bumped by TRUNCATE and DROP.
    epoch: AtomicU64,
}

impl Versions {
    /// `stripes` counters (a power of two).
    pub fn new(stripes: usize) -> Versions {
        debug_assert!(stripes.is_power_of_two());
        Versions {
            stripes: (0..stripes).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
        }
    }

    /// The stamp of `partition` of `table` now. Reads take it before they read storage.
    pub fn stamp(&self, table: &Uuid, partition: &PartitionId) -> Stamp {
        // SeqCst pairs with the bump: a read that loads a bumped version also sees the
        // write the bump followed.
        let epoch = self.epoch.load(Ordering::SeqCst);
        let version = self.stripe(table, partition).load(Ordering::SeqCst);
        Stamp { epoch, version }
    }

    /// Marks `partition` as changed; called after its write is applied.
    pub fn bump(&self, table: &Uuid, partition: &PartitionId) {
        self.stripe(table, partition).fetch_add(1, Ordering::SeqCst);
    }

    /// Marks every partition as changed (TRUNCATE, DROP).
    pub fn bump_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn stripe(&self, table: &Uuid, partition: &PartitionId) -> &AtomicU64 {
        // Colliding tokens share a stripe, which only costs a miss.
        let index = (partition.spread(table) >> 20) as usize;
        &self.stripes[index & (self.stripes.len() - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn partition(token: i64) -> PartitionId {
        PartitionId {
            token,
            key: Bytes::from(token.to_be_bytes().to_vec()),
        }
    }

    #[test]
    fn a_bump_changes_only_the_stamp_of_what_it_touched() {
        let versions = Versions::new(1 << 16);
        let table = Uuid::from_u128(7);
        let (a, b) = (partition(1), partition(-9_000_000_000_000));
        let (a0, b0) = (versions.stamp(&table, &a), versions.stamp(&table, &b));
        versions.bump(&table, &a);
        assert_ne!(versions.stamp(&table, &a), a0);
        assert_eq!(versions.stamp(&table, &b), b0);
    }

    #[test]
    fn bump_all_changes_every_stamp() {
        let versions = Versions::new(4);
        let table = Uuid::from_u128(1);
        let stamps: Vec<Stamp> = (0..10)
            .map(|t| versions.stamp(&table, &partition(t)))
            .collect();
        versions.bump_all();
        for (t, before) in stamps.iter().enumerate() {
            assert_ne!(versions.stamp(&table, &partition(t as i64)), *before);
        }
    }

    #[test]
    fn one_stripe_still_tells_every_write_apart() {
        let versions = Versions::new(1);
        let table = Uuid::from_u128(3);
        let before = versions.stamp(&table, &partition(5));
        versions.bump(&table, &partition(6));
        assert_ne!(versions.stamp(&table, &partition(5)), before);
    }
}
