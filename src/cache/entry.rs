//! One cached read: the fragment a replica answered, what it passed, the stamp it was read
//! under and until when it stays true.
//!
//! A fragment fresh from the engine points into one heap buffer per stored key and value
//! (every scanned entry is its own allocation), so what a cached fragment really holds is
//! more than its bytes suggest, and a weigher counting slices would under-count. Before an
//! entry is kept, [`Entry::new`] copies every byte string of the fragment into one buffer
//! sized exactly, and its vectors to exact capacity: the weight is then the entry's real
//! heap footprint, give or take the allocator's rounding and the cache's own bookkeeping
//! ([`ENTRY_OVERHEAD`]).

use std::mem::size_of;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};

use super::versions::Stamp;
use crate::storage::cell::{Cell, CellKind};
use crate::storage::partition::{
    CellFragment, ColumnFragment, PartitionFragment, ReadStats, RowFragment,
};

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
    /// What the replica returned.
    pub fragment: PartitionFragment,
    /// What the read passed (tombstones), replayed to a read served from the cache.
    pub stats: ReadStats,
    /// Heap bytes held: the key, the fragment and [`ENTRY_OVERHEAD`].
    pub weight: u32,
    /// The fragment's digest, computed by the first read that asks for it: the fragment
    /// never changes, and a QUORUM read asks for it on every replica it reaches.
    digest: OnceLock<[u8; 16]>,
    /// The rows projections made of the fragment, in their wire form, kept by the first
    /// reads that made them (at most [`RENDERINGS`] projections); the weight reserves
    /// `rendering_room` bytes for them all, and `room_left` is what is not taken yet.
    renderings: [OnceLock<Rendering>; RENDERINGS],
    room_left: AtomicU32,
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
    /// An entry for `fragment`, compacted into one buffer. `key_bytes` is the heap size of
    /// the cache key it will be stored under.
    pub fn new(
        stamp: Stamp,
        fragment: &PartitionFragment,
        stats: ReadStats,
        key_bytes: usize,
    ) -> Entry {
        let (fragment, heap) = compact(fragment);
        let room = rendering_room(&fragment);
        let weight = heap + room + key_bytes + ENTRY_OVERHEAD + size_of::<Entry>();
        Entry {
            stamp,
            valid_until: valid_until(&fragment),
            fragment,
            stats,
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
            digest: OnceLock::new(),
            renderings: Default::default(),
            room_left: AtomicU32::new(u32::try_from(room).unwrap_or(u32::MAX)),
        }
    }

    /// The rows `projection` made of this entry, if they were kept.
    pub fn rendering(&self, projection: u64) -> Option<&Rendering> {
        self.renderings
            .iter()
            .map_while(OnceLock::get)
            .find(|r| r.projection == projection)
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
            .get_or_init(|| crate::storage::digest::fragment_digest(&self.fragment))
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

/// Copies `fragment` into one exactly sized buffer; returns it and its heap bytes.
fn compact(fragment: &PartitionFragment) -> (PartitionFragment, usize) {
    let rows = fragment.static_row.iter().chain(&fragment.rows);
    let text: usize = fragment.partition.key.len() + rows.map(row_bytes).sum::<usize>();
    let mut arena = Arena(BytesMut::with_capacity(text));
    let mut partition = fragment.partition.clone();
    partition.key = arena.copy(&fragment.partition.key);
    let static_row = fragment.static_row.as_ref().map(|r| arena.row(r));
    let rows: Vec<RowFragment> = fragment.rows.iter().map(|r| arena.row(r)).collect();
    let columns: usize = static_row
        .iter()
        .chain(&rows)
        .map(|r| r.columns.len())
        .sum();
    let heap = text
        + (rows.len() + usize::from(static_row.is_some())) * size_of::<RowFragment>()
        + columns * size_of::<ColumnFragment>();
    let ranges = &fragment.range_deletions;
    let range_bytes: usize = ranges
        .iter()
        .map(|r| size_of_val(r) + r.start.key.len() + r.end.key.len())
        .sum();
    let compacted = PartitionFragment {
        partition,
        deletion: fragment.deletion,
        static_row,
        rows,
        exhausted: fragment.exhausted,
        range_deletions: ranges.clone(),
    };
    (compacted, heap + range_bytes)
}

fn row_bytes(row: &RowFragment) -> usize {
    let columns = row.columns.iter().map(|c| {
        let value = match &c.value {
            CellFragment::Cell(cell) => cell.value().map_or(0, Bytes::len),
            CellFragment::CollectionDeletion(_) => 0,
        };
        c.column.len() + c.path.as_ref().map_or(0, Bytes::len) + value
    });
    row.clustering.len() + columns.sum::<usize>()
}

/// One buffer that every byte string of a fragment is copied into. Its capacity is
/// reserved up front, so each copy is a slice of the same allocation.
struct Arena(BytesMut);

impl Arena {
    fn copy(&mut self, bytes: &Bytes) -> Bytes {
        self.0.extend_from_slice(bytes);
        self.0.split().freeze()
    }

    fn row(&mut self, row: &RowFragment) -> RowFragment {
        RowFragment {
            clustering: self.copy(&row.clustering),
            marker: row.marker,
            deletion: row.deletion,
            columns: row.columns.iter().map(|c| self.column(c)).collect(),
        }
    }

    fn column(&mut self, column: &ColumnFragment) -> ColumnFragment {
        let value = match &column.value {
            CellFragment::Cell(cell) => CellFragment::Cell(self.cell(cell)),
            deletion => deletion.clone(),
        };
        ColumnFragment {
            column: self.copy(&column.column),
            path: column.path.as_ref().map(|p| self.copy(p)),
            value,
        }
    }

    fn cell(&mut self, cell: &Cell) -> Cell {
        let kind = match &cell.kind {
            CellKind::Live { value } => CellKind::Live {
                value: self.copy(value),
            },
            CellKind::Expiring {
                value,
                ttl,
                local_deletion_time,
            } => CellKind::Expiring {
                value: self.copy(value),
                ttl: *ttl,
                local_deletion_time: *local_deletion_time,
            },
            tombstone => tombstone.clone(),
        };
        Cell {
            timestamp: cell.timestamp,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::cell::{DeletionTime, RowMarker};
    use crate::storage::partition::PartitionId;

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
    fn compaction_keeps_the_fragment_and_shares_one_buffer() {
        let original = fragment(vec![
            row(b"\x01", vec![column("body", Cell::live(5, &b"hello"[..]))]),
            row(b"\x02", vec![column("body", Cell::live(6, &b"world!"[..]))]),
        ]);
        let entry = Entry::new(Stamp::default(), &original, ReadStats::default(), 10);
        assert_eq!(entry.fragment, original);
        let first = entry.fragment.partition.key.as_ptr();
        let last = entry.fragment.rows[1].clustering.as_ptr();
        // "lobby" + "\x01" + "body" + "hello" + "\x02" + "body" + "world!" in one buffer.
        assert_eq!(last as usize - first as usize, 5 + 1 + 4 + 5);
        let text = 5 + 1 + 4 + 5 + 1 + 4 + 6;
        let structs = 2 * size_of::<RowFragment>() + 2 * size_of::<ColumnFragment>();
        // Room for the rows in wire form: each row's cell, key and clustering, and 32.
        let room = (4 + 5 + 5 + 1 + 32) + (4 + 6 + 5 + 1 + 32);
        assert_eq!(
            entry.weight as usize,
            text + structs + room + 10 + ENTRY_OVERHEAD + size_of::<Entry>()
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
        );
        assert_eq!(entry.valid_until, 1_070);
        assert!(entry.serves(Stamp::default(), 1_069));
        assert!(!entry.serves(Stamp::default(), 1_070));
        let forever = Entry::new(
            Stamp::default(),
            &fragment(vec![row(b"\x01", vec![])]),
            ReadStats::default(),
            0,
        );
        assert_eq!(forever.valid_until, u32::MAX);
    }

    #[test]
    fn the_kept_digest_is_the_fragments() {
        let original = fragment(vec![row(
            b"\x01",
            vec![column("body", Cell::live(5, &b"hello"[..]))],
        )]);
        let entry = Entry::new(Stamp::default(), &original, ReadStats::default(), 0);
        let digest = crate::storage::digest::fragment_digest(&original);
        assert_eq!(entry.digest(), digest);
        assert_eq!(entry.digest(), digest, "the second ask answers the same");
    }
}
