//! One cached read: the fragment a replica answered, what it passed, the stamp it was read
//! under and until when it stays true, and the rows queries made of it.
//!
//! The fragment is kept in its compact form ([`super::compact`]): one buffer sized exactly,
//! so the weight is the entry's real heap footprint, give or take the allocator's rounding
//! and the cache's own bookkeeping ([`ENTRY_OVERHEAD`]), and about the size of the values
//! it holds rather than six times that. A read that needs the fragment itself decodes it;
//! a hit whose query's rows were kept ([`Rendering`]) copies those instead.

use std::mem::size_of;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::compact;
use super::stats::TableStats;
use super::versions::Stamp;
use crate::storage::cell::{Cell, CellKind};
use crate::storage::partition::{CellFragment, PartitionFragment, PartitionId, ReadStats};

/// Bytes charged per entry for what the weigher cannot see: the cache's hash table slot,
/// its access-order and write-order nodes, the entry's `Arc` and the allocator's headers.
/// Measured against the allocator in `tests/integration/cache.rs`.
pub const ENTRY_OVERHEAD: usize = 256;

/// A cached partition read.
#[derive(Debug)]
pub struct Entry {
    /// The partition's version when the read began; the entry serves reads whose stamp is
    /// not newer.
    pub stamp: Stamp,
    /// The first second at which something in the fragment expires (a TTL'd cell or row
    /// marker), after which the fragment may no longer hold the rows a read wants.
    pub valid_until: u32,
    /// Which partition.
    partition: PartitionId,
    /// What the replica returned, in compact form.
    encoded: Bytes,
    /// What the read passed (tombstones), replayed to a read served from the cache.
    pub stats: ReadStats,
    /// Heap bytes held: the key, the fragment, room for kept rows and [`ENTRY_OVERHEAD`].
    pub weight: u32,
    /// The fragment's digest, computed by the first read that asks for it: the fragment
    /// never changes, and a QUORUM read asks for it on every replica it reaches.
    digest: OnceLock<[u8; 16]>,
    /// The rows projections made of the fragment, in their wire form, kept by the first
    /// reads that made them (at most [`RENDERINGS`] projections); the weight reserves
    /// `rendering_room` bytes for them all, and `room_left` is what is not taken yet.
    renderings: [OnceLock<Rendering>; RENDERINGS],
    room_left: AtomicU32,
    /// Its table's counters, for the reuses of its kept rows.
    counts: Arc<TableStats>,
}

/// Projections whose rows one entry keeps.
pub const RENDERINGS: usize = 2;

/// What one projection of a query made of an entry's fragment: its rows in their wire form
/// and where they stopped, so a later read with the same projection copies them instead of
/// visiting every cell again. Valid exactly as long as the entry: rows depend only on the
/// fragment, the read (the entry's key) and "now", and the entry serves only before the
/// first expiry in its fragment, so "now" cannot change which rows are live. A projection
/// that depends on "now" itself (`ttl()`, `now()`) is never kept.
#[derive(Debug)]
pub struct Rendering {
    /// Whose rows these are: the projection's identity (its plan's).
    pub projection: u64,
    /// The rows, each cell a `[bytes]`.
    pub rows: Bytes,
    /// How many rows.
    pub count: usize,
    /// The encoded clustering of the last row (None if none, or a static-only row).
    pub last: Option<Bytes>,
}

impl Entry {
    /// An entry for `fragment`, in compact form. `key_bytes` is the heap size of the cache
    /// key it will be stored under.
    pub fn new(
        stamp: Stamp,
        fragment: &PartitionFragment,
        stats: ReadStats,
        key_bytes: usize,
        counts: Arc<TableStats>,
    ) -> Entry {
        let encoded = compact::encode(fragment);
        let partition = PartitionId {
            token: fragment.partition.token,
            key: Bytes::copy_from_slice(&fragment.partition.key),
        };
        let room = rendering_room(fragment);
        let weight = encoded.len()
            + partition.key.len()
            + room
            + key_bytes
            + ENTRY_OVERHEAD
            + size_of::<Entry>();
        Entry {
            stamp,
            valid_until: valid_until(fragment),
            partition,
            encoded,
            stats,
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
            digest: OnceLock::new(),
            renderings: Default::default(),
            room_left: AtomicU32::new(u32::try_from(room).unwrap_or(u32::MAX)),
            counts,
        }
    }

    /// The fragment, decoded: its byte strings are slices of the entry's buffer.
    pub fn fragment(&self) -> PartitionFragment {
        compact::decode(&self.partition, &self.encoded)
            .expect("an entry decodes the fragment it encoded")
    }

    /// The rows `projection` made of this entry, if they were kept.
    pub fn rendering(&self, projection: u64) -> Option<&Rendering> {
        self.renderings
            .iter()
            .map_while(OnceLock::get)
            .find(|r| r.projection == projection)
    }

    /// The rows `projection` made of this entry, if they were kept, counted as reused.
    pub fn reuse(&self, projection: u64) -> Option<&Rendering> {
        let kept = self.rendering(projection)?;
        super::stats::bump(&self.counts.reused);
        Some(kept)
    }

    /// Keeps `rendering` if a slot is free and it fits the room left of what the weight
    /// reserved (the first projections to read an entry keep their rows; any others
    /// assemble theirs from the fragment).
    pub fn keep_rendering(&self, rendering: Rendering) {
        let Ok(len) = u32::try_from(rendering.rows.len()) else {
            return;
        };
        let took = self
            .room_left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(len)
            });
        if took.is_err() {
            return;
        }
        let mut rendering = Some(rendering);
        for slot in &self.renderings {
            if let Some(r) = rendering.take() {
                if let Err(r) = slot.set(r) {
                    rendering = Some(r);
                }
            }
        }
        if rendering.is_some() {
            // Every slot was taken meanwhile: the room goes back.
            self.room_left.fetch_add(len, Ordering::AcqRel);
        }
    }

    /// The digest of the fragment (`storage::digest`), computed once per entry.
    pub fn digest(&self) -> [u8; 16] {
        *self
            .digest
            .get_or_init(|| crate::storage::digest::fragment_digest(&self.fragment()))
    }

    /// Whether the entry answers a read that began at `stamp`, evaluated at `now_secs`.
    pub fn serves(&self, stamp: Stamp, now_secs: u32) -> bool {
        self.stamp.covers(stamp) && now_secs < self.valid_until
    }
}

/// Bytes reserved for a [`Rendering`]: enough for every live value of the fragment as a
/// `[bytes]` cell, the partition key and clustering again in each row (as their columns'
/// values), and the decoded clustering's length prefixes.
fn rendering_room(fragment: &PartitionFragment) -> usize {
    let rows = fragment.static_row.iter().chain(&fragment.rows);
    rows.map(|row| {
        let cells: usize = row
            .columns
            .iter()
            .map(|c| match &c.value {
                CellFragment::Cell(cell) => 4 + cell.value().map_or(0, Bytes::len),
                CellFragment::CollectionDeletion(_) => 0,
            })
            .sum();
        cells + fragment.partition.key.len() + row.clustering.len() + 32
    })
    .sum()
}

/// The first expiry in `fragment`, `u32::MAX` if nothing expires.
fn valid_until(fragment: &PartitionFragment) -> u32 {
    let rows = fragment.static_row.iter().chain(&fragment.rows);
    rows.flat_map(|row| {
        let marker = row
            .marker
            .and_then(|m| m.expiry)
            .map(|e| e.local_expiration_time);
        let cells = row.columns.iter().filter_map(|c| match &c.value {
            CellFragment::Cell(Cell {
                kind:
                    CellKind::Expiring {
                        local_deletion_time,
                        ..
                    },
                ..
            }) => Some(*local_deletion_time),
            _ => None,
        });
        marker.into_iter().chain(cells)
    })
    .min()
    .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::cell::{DeletionTime, RowMarker};
    use crate::storage::partition::{ColumnFragment, RowFragment};

    fn column(name: &'static str, cell: Cell) -> ColumnFragment {
        ColumnFragment {
            column: Bytes::from_static(name.as_bytes()),
            path: None,
            value: CellFragment::Cell(cell),
        }
    }

    fn fragment(rows: Vec<RowFragment>) -> PartitionFragment {
        PartitionFragment {
            partition: PartitionId {
                token: 42,
                key: Bytes::from_static(b"lobby"),
            },
            deletion: DeletionTime::LIVE,
            static_row: None,
            rows,
            exhausted: true,
            range_deletions: Vec::new(),
        }
    }

    fn row(clustering: &'static [u8], columns: Vec<ColumnFragment>) -> RowFragment {
        RowFragment {
            clustering: Bytes::from_static(clustering),
            marker: Some(RowMarker::live(1)),
            deletion: DeletionTime::LIVE,
            columns,
        }
    }

    #[test]
    fn the_kept_fragment_is_the_original_and_weighs_its_compact_form() {
        let original = fragment(vec![
            row(b"\x01", vec![column("body", Cell::live(5, &b"hello"[..]))]),
            row(b"\x02", vec![column("body", Cell::live(6, &b"world!"[..]))]),
        ]);
        let entry = Entry::new(
            Stamp::default(),
            &original,
            ReadStats::default(),
            10,
            Arc::default(),
        );
        assert_eq!(entry.fragment(), original);
        // The decoded fragment's values are slices of the entry's one buffer.
        let decoded = entry.fragment();
        let buffer = entry.encoded.as_ptr_range();
        assert!(buffer.contains(&decoded.rows[1].clustering.as_ptr()));
        let encoded = compact::encode(&original).len();
        // Room for the rows in wire form: each row's cell, key and clustering, and 32.
        let room = (4 + 5 + 5 + 1 + 32) + (4 + 6 + 5 + 1 + 32);
        assert_eq!(
            entry.weight as usize,
            encoded + 5 + room + 10 + ENTRY_OVERHEAD + size_of::<Entry>()
        );
    }

    #[test]
    fn kept_rows_take_room_and_slots_and_answer_only_their_projection() {
        let original = fragment(vec![row(
            b"\x01",
            vec![column("body", Cell::live(5, &b"hello"[..]))],
        )]);
        let entry = Entry::new(
            Stamp::default(),
            &original,
            ReadStats::default(),
            0,
            Arc::default(),
        );
        let rows = |n: usize| Bytes::from(vec![7; n]);
        let rendering = |projection, n| Rendering {
            projection,
            rows: rows(n),
            count: 1,
            last: None,
        };
        // The room is 4 + 5 + 5 + 1 + 32 = 47 bytes.
        entry.keep_rendering(rendering(1, 48));
        assert!(entry.rendering(1).is_none(), "larger than the room");
        entry.keep_rendering(rendering(1, 36));
        entry.keep_rendering(rendering(2, 12));
        assert!(entry.rendering(2).is_none(), "larger than the room left");
        entry.keep_rendering(rendering(2, 11));
        entry.keep_rendering(rendering(3, 0));
        assert_eq!(entry.rendering(1).map(|r| r.rows.len()), Some(36));
        assert_eq!(entry.rendering(2).map(|r| r.rows.len()), Some(11));
        assert!(
            entry.rendering(3).is_none(),
            "only {RENDERINGS} projections"
        );
    }

    #[test]
    fn the_first_expiry_of_a_cell_or_marker_bounds_the_entry() {
        let mut expiring_marker = row(b"\x01", vec![]);
        expiring_marker.marker = Some(RowMarker::expiring(1, 100, 1_000));
        let cells = row(
            b"\x02",
            vec![
                column("a", Cell::expiring(2, &b"x"[..], 50, 1_020)),
                column("b", Cell::live(2, &b"y"[..])),
            ],
        );
        let entry = Entry::new(
            Stamp::default(),
            &fragment(vec![expiring_marker, cells]),
            ReadStats::default(),
            0,
            Arc::default(),
        );
        assert_eq!(entry.valid_until, 1_070);
        assert!(entry.serves(Stamp::default(), 1_069));
        assert!(!entry.serves(Stamp::default(), 1_070));
        let forever = Entry::new(
            Stamp::default(),
            &fragment(vec![row(b"\x01", vec![])]),
            ReadStats::default(),
            0,
            Arc::default(),
        );
        assert_eq!(forever.valid_until, u32::MAX);
    }

    #[test]
    fn the_kept_digest_is_the_fragments() {
        let original = fragment(vec![row(
            b"\x01",
            vec![column("body", Cell::live(5, &b"hello"[..]))],
        )]);
        let entry = Entry::new(
            Stamp::default(),
            &original,
            ReadStats::default(),
            0,
            Arc::default(),
        );
        let digest = crate::storage::digest::fragment_digest(&original);
        assert_eq!(entry.digest(), digest);
        assert_eq!(entry.digest(), digest, "the second ask answers the same");
    }
}
