//! The compact form a cache entry keeps its fragment in: one buffer, decoded on demand.
//!
//! A fragment as the read path uses it is a tree of structs — a vector of rows, each with
//! a vector of column slots, each with its name, path and cell as separate `Bytes` — about
//! a hundred bytes of structure per cell before its value. Kept that way, 20 chat messages
//! weighed 11.7 KB for 1.9 KB of values. An entry keeps instead one buffer: column names
//! once in a table (a cell refers to its name by index), timestamps as differences from the
//! fragment's first one, "no deletion" as one byte, lengths and numbers as varints. A hit
//! whose rows were kept in wire form (`Entry::rendering`) never decodes it; other reads
//! decode it into a fragment whose byte strings are slices of the buffer (no copies).
//!
//! Layout (numbers are LEB128 varints; `ts` is a zigzag varint of the wrapping difference
//! from the base timestamp; `bytes` is a varint length and the bytes; `deletion` is 0 for
//! [`DeletionTime::LIVE`], else 1, its timestamp as `ts` and its local deletion time):
//!
//! ```text
//! fragment := base:zigzag  deletion  flags:u8 (1 exhausted, 2 static row)
//!             names:(count, bytes*)  ranges:(count, range*)  [row]  rows:(count, row*)
//! range    := start:bytes  start_inclusive:u8  end:bytes  end_inclusive:u8  deletion
//! row      := clustering:bytes  flags:u8 (1 marker, 2 marker expires, 4 deleted)
//!             [marker ts  [ttl  expiration]]  [deletion without its tag]
//!             columns:(count, column*)
//! column   := name index  tag:u8 (kind in bits 0-1: live, expiring, tombstone, collection
//!             deletion; 4: has a path)  [path:bytes]  kind's fields:
//!             live: ts value:bytes | expiring: ts value:bytes ttl local_deletion_time
//!             | tombstone: ts local_deletion_time | collection deletion: deletion
//! ```

use bytes::Bytes;

use crate::storage::cell::{
    Cell, CellKind, ClusteringBound, DeletionTime, Expiry, RangeTombstone, RowMarker,
};
use crate::storage::partition::{
    CellFragment, ColumnFragment, PartitionFragment, PartitionId, RowFragment,
};

const EXHAUSTED: u8 = 1;
const HAS_STATIC: u8 = 2;

const MARKER: u8 = 1;
const MARKER_EXPIRES: u8 = 2;
const DELETED: u8 = 4;

const LIVE: u8 = 0;
const EXPIRING: u8 = 1;
const TOMBSTONE: u8 = 2;
const COLLECTION_DELETION: u8 = 3;
const KIND: u8 = 3;
const HAS_PATH: u8 = 4;

/// `fragment` in its compact form (its partition is not included).
pub(super) fn encode(fragment: &PartitionFragment) -> Bytes {
    let rows = fragment.static_row.iter().chain(&fragment.rows);
    let base = rows
        .flat_map(|r| r.columns.iter())
        .find_map(|c| match &c.value {
            CellFragment::Cell(cell) => Some(cell.timestamp),
            CellFragment::CollectionDeletion(_) => None,
        })
        .unwrap_or(0);
    let mut w = Writer {
        buf: Vec::with_capacity(estimate(fragment)),
        base,
        names: Vec::new(),
    };
    w.signed(base);
    w.deletion(&fragment.deletion);
    let mut flags = 0;
    if fragment.exhausted {
        flags |= EXHAUSTED;
    }
    if fragment.static_row.is_some() {
        flags |= HAS_STATIC;
    }
    w.buf.push(flags);
    for row in fragment.static_row.iter().chain(&fragment.rows) {
        for column in &row.columns {
            if !w.names.contains(&&column.column[..]) {
                w.names.push(&column.column[..]);
            }
        }
    }
    w.number(w.names.len() as u64);
    for i in 0..w.names.len() {
        let name = w.names[i];
        w.bytes(name);
    }
    w.number(fragment.range_deletions.len() as u64);
    for range in &fragment.range_deletions {
        w.bytes(&range.start.key);
        w.buf.push(u8::from(range.start.inclusive));
        w.bytes(&range.end.key);
        w.buf.push(u8::from(range.end.inclusive));
        w.deletion(&range.deletion);
    }
    if let Some(row) = &fragment.static_row {
        w.row(row);
    }
    w.number(fragment.rows.len() as u64);
    for row in &fragment.rows {
        w.row(row);
    }
    // Exactly sized: `Bytes::from` a vector keeps its spare capacity, which the entry's
    // weight would not count.
    Bytes::from(w.buf.into_boxed_slice())
}

/// The fragment `encoded` holds, of `partition`; None if it is not a compact fragment.
pub(super) fn decode(partition: &PartitionId, encoded: &Bytes) -> Option<PartitionFragment> {
    let mut r = Reader {
        buf: encoded,
        pos: 0,
        base: 0,
    };
    r.base = r.signed()?;
    let deletion = r.deletion()?;
    let flags = r.byte()?;
    let names = (0..r.count()?)
        .map(|_| r.bytes())
        .collect::<Option<Vec<Bytes>>>()?;
    let range_deletions = (0..r.count()?)
        .map(|_| {
            let start = ClusteringBound {
                key: r.bytes()?,
                inclusive: r.byte()? != 0,
            };
            let end = ClusteringBound {
                key: r.bytes()?,
                inclusive: r.byte()? != 0,
            };
            Some(RangeTombstone {
                start,
                end,
                deletion: r.deletion()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let static_row = match flags & HAS_STATIC {
        0 => None,
        _ => Some(r.row(&names)?),
    };
    let rows = (0..r.count()?)
        .map(|_| r.row(&names))
        .collect::<Option<Vec<_>>>()?;
    (r.pos == encoded.len()).then(|| PartitionFragment {
        partition: partition.clone(),
        deletion,
        static_row,
        rows,
        range_deletions,
        exhausted: flags & EXHAUSTED != 0,
    })
}

/// An upper bound on the encoded size, so the buffer is allocated once.
fn estimate(fragment: &PartitionFragment) -> usize {
    let rows = fragment.static_row.iter().chain(&fragment.rows);
    let rows: usize = rows
        .map(|row| {
            let columns: usize = row
                .columns
                .iter()
                .map(|c| {
                    let value = match &c.value {
                        CellFragment::Cell(cell) => cell.value().map_or(0, Bytes::len),
                        CellFragment::CollectionDeletion(_) => 0,
                    };
                    // Name index, tag, path, timestamp, value length, TTL and expiry.
                    c.path.as_ref().map_or(0, |p| p.len() + 10) + value + 45
                })
                .sum();
            row.clustering.len() + 60 + columns
        })
        .sum();
    let ranges: usize = fragment
        .range_deletions
        .iter()
        .map(|r| r.start.key.len() + r.end.key.len() + 40)
        .sum();
    let names = fragment.rows.first().map_or(0, |r| {
        r.columns.iter().map(|c| c.column.len() + 10).sum::<usize>()
    });
    40 + rows + ranges + names
}

struct Writer<'f> {
    buf: Vec<u8>,
    base: i64,
    names: Vec<&'f [u8]>,
}

impl<'f> Writer<'f> {
    fn number(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.buf.push(n as u8 | 0x80);
            n >>= 7;
        }
        self.buf.push(n as u8);
    }

    fn signed(&mut self, n: i64) {
        self.number(((n << 1) ^ (n >> 63)) as u64);
    }

    fn timestamp(&mut self, ts: i64) {
        self.signed(ts.wrapping_sub(self.base));
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.number(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    fn deletion(&mut self, deletion: &DeletionTime) {
        if *deletion == DeletionTime::LIVE {
            self.buf.push(0);
        } else {
            self.buf.push(1);
            self.deletion_fields(deletion);
        }
    }

    fn deletion_fields(&mut self, deletion: &DeletionTime) {
        self.timestamp(deletion.marked_for_delete_at);
        self.number(u64::from(deletion.local_deletion_time));
    }

    fn row(&mut self, row: &'f RowFragment) {
        self.bytes(&row.clustering);
        let mut flags = 0;
        if let Some(marker) = &row.marker {
            flags |= MARKER;
            if marker.expiry.is_some() {
                flags |= MARKER_EXPIRES;
            }
        }
        if row.deletion != DeletionTime::LIVE {
            flags |= DELETED;
        }
        self.buf.push(flags);
        if let Some(marker) = &row.marker {
            self.timestamp(marker.timestamp);
            if let Some(expiry) = &marker.expiry {
                self.number(u64::from(expiry.ttl));
                self.number(u64::from(expiry.local_expiration_time));
            }
        }
        if row.deletion != DeletionTime::LIVE {
            self.deletion_fields(&row.deletion);
        }
        self.number(row.columns.len() as u64);
        for column in &row.columns {
            self.column(column);
        }
    }

    fn column(&mut self, column: &ColumnFragment) {
        let name = self
            .names
            .iter()
            .position(|n| *n == &column.column[..])
            .unwrap_or_default();
        self.number(name as u64);
        let kind = match &column.value {
            CellFragment::Cell(cell) => match cell.kind {
                CellKind::Live { .. } => LIVE,
                CellKind::Expiring { .. } => EXPIRING,
                CellKind::Tombstone { .. } => TOMBSTONE,
            },
            CellFragment::CollectionDeletion(_) => COLLECTION_DELETION,
        };
        let path = if column.path.is_some() { HAS_PATH } else { 0 };
        self.buf.push(kind | path);
        if let Some(path) = &column.path {
            self.bytes(path);
        }
        match &column.value {
            CellFragment::Cell(cell) => {
                self.timestamp(cell.timestamp);
                match &cell.kind {
                    CellKind::Live { value } => self.bytes(value),
                    CellKind::Expiring {
                        value,
                        ttl,
                        local_deletion_time,
                    } => {
                        self.bytes(value);
                        self.number(u64::from(*ttl));
                        self.number(u64::from(*local_deletion_time));
                    }
                    CellKind::Tombstone {
                        local_deletion_time,
                    } => self.number(u64::from(*local_deletion_time)),
                }
            }
            CellFragment::CollectionDeletion(deletion) => self.deletion(deletion),
        }
    }
}

struct Reader<'b> {
    buf: &'b Bytes,
    pos: usize,
    base: i64,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn number(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(n);
            }
        }
        None
    }

    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.number()?).ok()
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.number()?).ok()
    }

    fn signed(&mut self) -> Option<i64> {
        let n = self.number()?;
        Some((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    fn timestamp(&mut self) -> Option<i64> {
        Some(self.signed()?.wrapping_add(self.base))
    }

    fn bytes(&mut self) -> Option<Bytes> {
        let len = self.count()?;
        let end = self.pos.checked_add(len)?;
        if end > self.buf.len() {
            return None;
        }
        let bytes = self.buf.slice(self.pos..end);
        self.pos = end;
        Some(bytes)
    }

    fn deletion(&mut self) -> Option<DeletionTime> {
        match self.byte()? {
            0 => Some(DeletionTime::LIVE),
            1 => self.deletion_fields(),
            _ => None,
        }
    }

    fn deletion_fields(&mut self) -> Option<DeletionTime> {
        Some(DeletionTime::new(self.timestamp()?, self.u32()?))
    }

    fn row(&mut self, names: &[Bytes]) -> Option<RowFragment> {
        let clustering = self.bytes()?;
        let flags = self.byte()?;
        let marker = match flags & MARKER {
            0 => None,
            _ => {
                let timestamp = self.timestamp()?;
                let expiry = match flags & MARKER_EXPIRES {
                    0 => None,
                    _ => Some(Expiry {
                        ttl: self.u32()?,
                        local_expiration_time: self.u32()?,
                    }),
                };
                Some(RowMarker { timestamp, expiry })
            }
        };
        let deletion = match flags & DELETED {
            0 => DeletionTime::LIVE,
            _ => self.deletion_fields()?,
        };
        let columns = (0..self.count()?)
            .map(|_| self.column(names))
            .collect::<Option<Vec<_>>>()?;
        Some(RowFragment {
            clustering,
            marker,
            deletion,
            columns,
        })
    }

    fn column(&mut self, names: &[Bytes]) -> Option<ColumnFragment> {
        let column = names.get(self.count()?)?.clone();
        let tag = self.byte()?;
        let path = match tag & HAS_PATH {
            0 => None,
            _ => Some(self.bytes()?),
        };
        let value = match tag & KIND {
            COLLECTION_DELETION => CellFragment::CollectionDeletion(self.deletion()?),
            kind => {
                let timestamp = self.timestamp()?;
                let kind = match kind {
                    LIVE => CellKind::Live {
                        value: self.bytes()?,
                    },
                    EXPIRING => CellKind::Expiring {
                        value: self.bytes()?,
                        ttl: self.u32()?,
                        local_deletion_time: self.u32()?,
                    },
                    _ => CellKind::Tombstone {
                        local_deletion_time: self.u32()?,
                    },
                };
                CellFragment::Cell(Cell { timestamp, kind })
            }
        };
        Some(ColumnFragment {
            column,
            path,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn partition() -> PartitionId {
        PartitionId {
            token: -7,
            key: Bytes::from_static(b"lobby"),
        }
    }

    fn deletion() -> impl Strategy<Value = DeletionTime> {
        prop_oneof![
            Just(DeletionTime::LIVE),
            (any::<i64>(), any::<u32>()).prop_map(|(t, l)| DeletionTime::new(t, l)),
        ]
    }

    fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    fn cell() -> impl Strategy<Value = CellFragment> {
        let kind = prop_oneof![
            bytes(40).prop_map(|value| CellKind::Live { value }),
            (bytes(40), 1..u32::MAX, any::<u32>()).prop_map(|(value, ttl, at)| {
                CellKind::Expiring {
                    value,
                    ttl,
                    local_deletion_time: at,
                }
            }),
            any::<u32>().prop_map(|at| CellKind::Tombstone {
                local_deletion_time: at
            }),
        ];
        prop_oneof![
            4 => (any::<i64>(), kind).prop_map(|(timestamp, kind)| {
                CellFragment::Cell(Cell { timestamp, kind })
            }),
            1 => deletion().prop_map(CellFragment::CollectionDeletion),
        ]
    }

    fn column() -> impl Strategy<Value = ColumnFragment> {
        let name = prop_oneof![Just("body"), Just("author"), Just("tags"), Just("\u{0}x")];
        (name, proptest::option::of(bytes(8)), cell()).prop_map(|(name, path, value)| {
            ColumnFragment {
                column: Bytes::from_static(name.as_bytes()),
                path,
                value,
            }
        })
    }

    fn row() -> impl Strategy<Value = RowFragment> {
        let marker = proptest::option::of((
            any::<i64>(),
            proptest::option::of((1..u32::MAX, any::<u32>())),
        ));
        (
            bytes(20),
            marker,
            deletion(),
            proptest::collection::vec(column(), 0..6),
        )
            .prop_map(|(clustering, marker, deletion, columns)| RowFragment {
                clustering,
                marker: marker.map(|(timestamp, expiry)| RowMarker {
                    timestamp,
                    expiry: expiry.map(|(ttl, at)| Expiry {
                        ttl,
                        local_expiration_time: at,
                    }),
                }),
                deletion,
                columns,
            })
    }

    fn range() -> impl Strategy<Value = RangeTombstone> {
        (
            bytes(10),
            any::<bool>(),
            bytes(10),
            any::<bool>(),
            deletion(),
        )
            .prop_map(|(start, si, end, ei, deletion)| RangeTombstone {
                start: ClusteringBound {
                    key: start,
                    inclusive: si,
                },
                end: ClusteringBound {
                    key: end,
                    inclusive: ei,
                },
                deletion,
            })
    }

    fn fragment() -> impl Strategy<Value = PartitionFragment> {
        (
            deletion(),
            proptest::option::of(row()),
            proptest::collection::vec(row(), 0..8),
            proptest::collection::vec(range(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(deletion, static_row, rows, range_deletions, exhausted)| {
                PartitionFragment {
                    partition: partition(),
                    deletion,
                    static_row,
                    rows,
                    range_deletions,
                    exhausted,
                }
            })
    }

    proptest! {
        #[test]
        fn every_fragment_decodes_to_itself(fragment in fragment()) {
            let encoded = encode(&fragment);
            prop_assert!(encoded.len() <= estimate(&fragment));
            prop_assert_eq!(decode(&partition(), &encoded), Some(fragment));
        }

        #[test]
        fn a_truncated_or_extended_buffer_is_refused(fragment in fragment(), cut in any::<prop::sample::Index>()) {
            let encoded = encode(&fragment);
            let short = encoded.slice(..cut.index(encoded.len()));
            prop_assert_eq!(decode(&partition(), &short), None);
            let mut long = encoded.to_vec();
            long.push(0);
            prop_assert_eq!(decode(&partition(), &Bytes::from(long)), None);
        }
    }

    #[test]
    fn a_chat_page_is_about_its_values() {
        // 20 messages of five text cells, written in one second, no deletions.
        let rows = (0..20u8)
            .map(|i| RowFragment {
                clustering: Bytes::from(vec![i; 17]),
                marker: Some(RowMarker::live(1_765_000_000_000_000 + i64::from(i))),
                deletion: DeletionTime::LIVE,
                columns: [
                    "author_id",
                    "author_name",
                    "author_picture",
                    "body",
                    "other",
                ]
                .iter()
                .map(|name| ColumnFragment {
                    column: Bytes::from_static(name.as_bytes()),
                    path: None,
                    value: CellFragment::Cell(Cell::live(
                        1_765_000_000_000_000 + i64::from(i),
                        vec![b'x'; 18],
                    )),
                })
                .collect(),
            })
            .collect();
        let fragment = PartitionFragment {
            partition: partition(),
            deletion: DeletionTime::LIVE,
            static_row: None,
            rows,
            range_deletions: Vec::new(),
            exhausted: false,
        };
        let values = 20 * (17 + 5 * 18);
        let encoded = encode(&fragment);
        // Per row: clustering length, flags, marker, column count; per cell: name index,
        // tag, timestamp difference, value length.
        assert_eq!(encoded.len(), 61 + values + 20 * (1 + 1 + 1 + 1) + 100 * 4);
    }
}
