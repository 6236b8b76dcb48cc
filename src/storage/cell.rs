//! The unit of data the engine stores: cells, row markers and deletion times, each with the
//! microsecond write timestamp that last-write-wins needs (design §3), and their versioned
//! binary encoding as RocksDB values.
//!
//! # Value encoding, byte by byte (format version 1)
//!
//! Every value starts with one header byte: the high nibble is the format version (`1`), the
//! low nibble the kind. The key slot already says which kind to expect, but carrying it in the
//! value lets a merge operator and a decoder reject bytes of the wrong kind instead of
//! misreading them. All integers are big-endian.
//!
//! | header | kind                | then                                                         |
//! |--------|---------------------|--------------------------------------------------------------|
//! | `0x10` | live cell           | timestamp i64 (8) · value (rest, may be empty)               |
//! | `0x11` | expiring cell       | timestamp i64 (8) · ttl u32 s (4) · expiry u32 s (4) · value |
//! | `0x12` | cell tombstone      | timestamp i64 (8) · local deletion time u32 s (4)            |
//! | `0x13` | row marker          | timestamp i64 (8)                                            |
//! | `0x14` | expiring row marker | timestamp i64 (8) · ttl u32 s (4) · expiry u32 s (4)         |
//! | `0x15` | deletion time       | marked-for-delete-at i64 µs (8) · local deletion time u32 s (4) |
//!
//! A live cell is therefore 9 bytes plus its value, an expiring one 17 plus its value. Kinds
//! without a trailing value have a fixed length and reject trailing bytes; an expiring cell or
//! marker rejects a ttl of 0 (0 means "no TTL" in CQL, which is the non-expiring kind).
//! Decoding never panics: every malformed input yields a [`CodecError`].

use bytes::Bytes;
use thiserror::Error;

use super::comparable::{AFTER, BEFORE};

/// The format version written in the high nibble of every value's header byte.
pub const FORMAT_VERSION: u8 = 1;

const KIND_LIVE: u8 = 0x0;
const KIND_EXPIRING: u8 = 0x1;
const KIND_TOMBSTONE: u8 = 0x2;
const KIND_MARKER: u8 = 0x3;
const KIND_EXPIRING_MARKER: u8 = 0x4;
const KIND_DELETION: u8 = 0x5;

/// Why a stored value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The value has no header byte.
    #[error("empty stored value")]
    Empty,
    /// The header names a format version this build does not know.
    #[error("unknown stored value format version {0}")]
    UnknownVersion(u8),
    /// The header names a kind this build does not know.
    #[error("unknown stored value kind {0:#x}")]
    UnknownKind(u8),
    /// The value is a valid encoding, but of another kind than the caller asked for.
    #[error("expected a {expected}, found a {found}")]
    WrongKind {
        /// What the caller decodes.
        expected: &'static str,
        /// What the header says the bytes hold.
        found: &'static str,
    },
    /// The value ends before a fixed-width field does.
    #[error("stored value truncated reading {0}")]
    Truncated(&'static str),
    /// A fixed-length kind carries bytes after its last field.
    #[error("{0} trailing bytes after a fixed-length stored value")]
    TrailingBytes(usize),
    /// An expiring cell or marker with ttl 0, which CQL reserves for "no TTL".
    #[error("expiring value with a zero ttl")]
    ZeroTtl,
}

/// One column value (or one collection element) of one row, as of one write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Cell {
    /// Write timestamp in microseconds since the Unix epoch (client's USING TIMESTAMP or the
    /// coordinator's clock); the first thing reconciliation compares.
    pub timestamp: i64,
    /// Whether the cell holds a value, an expiring value, or a deletion.
    pub kind: CellKind,
}

/// The three shapes of a regular (non-counter) cell, as in Cassandra's `Cell`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CellKind {
    /// A value with no TTL.
    Live {
        /// The serialized CQL value.
        value: Bytes,
    },
    /// A value written with USING TTL (or the table's default TTL).
    Expiring {
        /// The serialized CQL value.
        value: Bytes,
        /// The TTL as written, in seconds (never 0); `ttl()` reports what is left of it.
        ttl: u32,
        /// When the cell expires, in seconds since the Unix epoch (write time + ttl).
        local_deletion_time: u32,
    },
    /// A deleted cell (DELETE of a column, or a null written).
    Tombstone {
        /// When the deletion was applied, in seconds since the Unix epoch; gc_grace counts
        /// from here.
        local_deletion_time: u32,
    },
}

impl Cell {
    /// A live cell without TTL.
    pub fn live(timestamp: i64, value: impl Into<Bytes>) -> Cell {
        let value = value.into();
        Cell {
            timestamp,
            kind: CellKind::Live { value },
        }
    }

    /// A cell written at `now_secs` with `ttl` seconds to live; expires at `now_secs + ttl`
    /// (saturating, as Cassandra caps overflowing expiry times).
    pub fn expiring(timestamp: i64, value: impl Into<Bytes>, ttl: u32, now_secs: u32) -> Cell {
        let value = value.into();
        let local_deletion_time = now_secs.saturating_add(ttl);
        Cell {
            timestamp,
            kind: CellKind::Expiring {
                value,
                ttl,
                local_deletion_time,
            },
        }
    }

    /// A cell tombstone applied at `now_secs`.
    pub fn tombstone(timestamp: i64, now_secs: u32) -> Cell {
        Cell {
            timestamp,
            kind: CellKind::Tombstone {
                local_deletion_time: now_secs,
            },
        }
    }

    /// Whether a read at `now_secs` sees a value: an expiring cell is live strictly before
    /// its local deletion time, a tombstone never.
    pub fn is_live(&self, now_secs: u32) -> bool {
        match &self.kind {
            CellKind::Live { .. } => true,
            CellKind::Expiring {
                local_deletion_time,
                ..
            } => now_secs < *local_deletion_time,
            CellKind::Tombstone { .. } => false,
        }
    }

    /// Whether `deletion` (a partition, range or row tombstone) covers this cell: data with a
    /// timestamp at or below the tombstone's is deleted (design §18.4).
    pub fn shadowed_by(&self, deletion: &DeletionTime) -> bool {
        deletion.deletes(self.timestamp)
    }

    /// The value, if the cell carries one (live or expiring, expired or not).
    pub fn value(&self) -> Option<&Bytes> {
        match &self.kind {
            CellKind::Live { value } | CellKind::Expiring { value, .. } => Some(value),
            CellKind::Tombstone { .. } => None,
        }
    }

    /// Cassandra's `localDeletionTime()`: `None` for a live cell (NO_DELETION_TIME), the
    /// expiry for an expiring cell, the deletion time for a tombstone.
    pub fn local_deletion_time(&self) -> Option<u32> {
        match &self.kind {
            CellKind::Live { .. } => None,
            CellKind::Expiring {
                local_deletion_time,
                ..
            }
            | CellKind::Tombstone {
                local_deletion_time,
            } => Some(*local_deletion_time),
        }
    }

    /// Encodes the cell as a RocksDB value (layout in the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.value().map_or(0, |v| v.len()));
        match &self.kind {
            CellKind::Live { value } => {
                out.push(header(KIND_LIVE));
                out.extend_from_slice(&self.timestamp.to_be_bytes());
                out.extend_from_slice(value);
            }
            CellKind::Expiring {
                value,
                ttl,
                local_deletion_time,
            } => {
                out.push(header(KIND_EXPIRING));
                out.extend_from_slice(&self.timestamp.to_be_bytes());
                out.extend_from_slice(&ttl.to_be_bytes());
                out.extend_from_slice(&local_deletion_time.to_be_bytes());
                out.extend_from_slice(value);
            }
            CellKind::Tombstone {
                local_deletion_time,
            } => {
                out.push(header(KIND_TOMBSTONE));
                out.extend_from_slice(&self.timestamp.to_be_bytes());
                out.extend_from_slice(&local_deletion_time.to_be_bytes());
            }
        }
        out
    }

    /// Decodes a value written by [`Cell::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Cell, CodecError> {
        match StoredValue::decode(bytes)? {
            StoredValue::Cell(cell) => Ok(cell),
            other => Err(CodecError::WrongKind {
                expected: "cell",
                found: other.kind_name(),
            }),
        }
    }
}

/// A row's primary-key liveness (Cassandra's `LivenessInfo`): written by INSERT, not by
/// UPDATE, so a row inserted and then stripped of every column still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RowMarker {
    /// Write timestamp in microseconds since the Unix epoch.
    pub timestamp: i64,
    /// Set when the INSERT had a TTL: the marker (not the row's cells) expires then.
    pub expiry: Option<Expiry>,
}

/// The TTL of an expiring row marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Expiry {
    /// The TTL as written, in seconds (never 0).
    pub ttl: u32,
    /// When the marker expires, in seconds since the Unix epoch.
    pub local_expiration_time: u32,
}

impl RowMarker {
    /// A marker without TTL.
    pub fn live(timestamp: i64) -> RowMarker {
        RowMarker {
            timestamp,
            expiry: None,
        }
    }

    /// A marker written at `now_secs` that expires `ttl` seconds later (saturating).
    pub fn expiring(timestamp: i64, ttl: u32, now_secs: u32) -> RowMarker {
        let local_expiration_time = now_secs.saturating_add(ttl);
        RowMarker {
            timestamp,
            expiry: Some(Expiry {
                ttl,
                local_expiration_time,
            }),
        }
    }

    /// Whether the marker still makes its row live at `now_secs`.
    pub fn is_live(&self, now_secs: u32) -> bool {
        self.expiry
            .is_none_or(|e| now_secs < e.local_expiration_time)
    }

    /// Whether `deletion` covers this marker (timestamp at or below the tombstone's).
    pub fn shadowed_by(&self, deletion: &DeletionTime) -> bool {
        deletion.deletes(self.timestamp)
    }

    /// Encodes the marker as a RocksDB value (layout in the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17);
        match self.expiry {
            None => {
                out.push(header(KIND_MARKER));
                out.extend_from_slice(&self.timestamp.to_be_bytes());
            }
            Some(e) => {
                out.push(header(KIND_EXPIRING_MARKER));
                out.extend_from_slice(&self.timestamp.to_be_bytes());
                out.extend_from_slice(&e.ttl.to_be_bytes());
                out.extend_from_slice(&e.local_expiration_time.to_be_bytes());
            }
        }
        out
    }

    /// Decodes a value written by [`RowMarker::encode`].
    pub fn decode(bytes: &[u8]) -> Result<RowMarker, CodecError> {
        match StoredValue::decode(bytes)? {
            StoredValue::Marker(marker) => Ok(marker),
            other => Err(CodecError::WrongKind {
                expected: "row marker",
                found: other.kind_name(),
            }),
        }
    }
}

/// A deletion of a partition, a clustering range or a row (Cassandra's `DeletionTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DeletionTime {
    /// Data written at or before this timestamp (µs since the epoch) is deleted.
    pub marked_for_delete_at: i64,
    /// When the deletion was applied, in seconds since the Unix epoch; gc_grace counts from
    /// here.
    pub local_deletion_time: u32,
}

impl DeletionTime {
    /// "Not deleted" (Cassandra's `DeletionTime.LIVE`): superseded by every real deletion.
    pub const LIVE: DeletionTime = DeletionTime {
        marked_for_delete_at: i64::MIN,
        local_deletion_time: u32::MAX,
    };

    /// A deletion at `timestamp` µs applied at `now_secs`.
    pub fn new(marked_for_delete_at: i64, local_deletion_time: u32) -> DeletionTime {
        DeletionTime {
            marked_for_delete_at,
            local_deletion_time,
        }
    }

    /// Whether this is [`DeletionTime::LIVE`], i.e. deletes nothing.
    pub fn is_live(&self) -> bool {
        self.marked_for_delete_at == i64::MIN
    }

    /// Whether data written at `timestamp` is covered. `LIVE` covers nothing, even data
    /// carrying the `i64::MIN` sentinel as its timestamp.
    pub fn deletes(&self, timestamp: i64) -> bool {
        !self.is_live() && timestamp <= self.marked_for_delete_at
    }

    /// Cassandra's `DeletionTime.supersedes`: the later deletion wins; at equal timestamps
    /// the one applied later (higher local deletion time).
    pub fn supersedes(&self, other: &DeletionTime) -> bool {
        self.marked_for_delete_at > other.marked_for_delete_at
            || (self.marked_for_delete_at == other.marked_for_delete_at
                && self.local_deletion_time > other.local_deletion_time)
    }

    /// Encodes the deletion as a RocksDB value (layout in the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13);
        out.push(header(KIND_DELETION));
        out.extend_from_slice(&self.marked_for_delete_at.to_be_bytes());
        out.extend_from_slice(&self.local_deletion_time.to_be_bytes());
        out
    }

    /// Decodes a value written by [`DeletionTime::encode`].
    pub fn decode(bytes: &[u8]) -> Result<DeletionTime, CodecError> {
        match StoredValue::decode(bytes)? {
            StoredValue::Deletion(deletion) => Ok(deletion),
            other => Err(CodecError::WrongKind {
                expected: "deletion time",
                found: other.kind_name(),
            }),
        }
    }
}

/// One end of a range tombstone over clustering keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ClusteringBound {
    /// A clustering prefix in the byte-comparable encoding (`storage::comparable`). The
    /// encoding is assumed self-delimiting per component, so a clustering extends a prefix
    /// exactly when its bytes start with the prefix's bytes.
    pub key: Bytes,
    /// Whether clusterings equal to (or extending) `key` are inside the range.
    pub inclusive: bool,
}

/// A deletion of every row whose clustering lies between two bounds (DELETE with a slice).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RangeTombstone {
    /// Lower bound; an empty inclusive key means "from the partition's first row".
    pub start: ClusteringBound,
    /// Upper bound; an empty inclusive key means "to the partition's last row".
    pub end: ClusteringBound,
    /// The deletion applied to the covered rows.
    pub deletion: DeletionTime,
}

impl RangeTombstone {
    /// The tombstone deleting the rows between two encoded bounds, each a clustering prefix
    /// closed by `comparable::BEFORE` or `AFTER` (a `ClusteringRange`'s start, inclusive, and
    /// end, exclusive): a start BEFORE *p* includes *p*'s rows, an end AFTER *p* too. None
    /// when a bound has no such terminator.
    pub fn from_bounds(start: &[u8], end: &[u8], deletion: DeletionTime) -> Option<RangeTombstone> {
        let (&start_tag, start_key) = start.split_last()?;
        let (&end_tag, end_key) = end.split_last()?;
        let inclusive = |tag: u8, when: u8| match tag {
            BEFORE | AFTER => Some(tag == when),
            _ => None,
        };
        Some(RangeTombstone {
            start: ClusteringBound {
                key: Bytes::copy_from_slice(start_key),
                inclusive: inclusive(start_tag, BEFORE)?,
            },
            end: ClusteringBound {
                key: Bytes::copy_from_slice(end_key),
                inclusive: inclusive(end_tag, AFTER)?,
            },
            deletion,
        })
    }

    /// Whether the range ends before `clustering`, so covers no row at or after it.
    pub fn ends_before(&self, clustering: &[u8]) -> bool {
        !before_end(&self.end, clustering)
    }

    /// Whether the range starts after `clustering`, so covers no row at or before it.
    pub fn starts_after(&self, clustering: &[u8]) -> bool {
        !after_start(&self.start, clustering)
    }

    /// Whether the row with encoded clustering `clustering` lies inside the range. Bounds are
    /// prefixes: `(a) <= c` and `c <= (a)` both include every clustering starting with `a`,
    /// as Cassandra's slice bounds do.
    pub fn covers(&self, clustering: &[u8]) -> bool {
        after_start(&self.start, clustering) && before_end(&self.end, clustering)
    }
}

fn after_start(bound: &ClusteringBound, clustering: &[u8]) -> bool {
    let key = bound.key.as_ref();
    if bound.inclusive {
        // Every extension of `key` sorts after it, so a byte compare includes them.
        clustering >= key
    } else {
        clustering > key && !clustering.starts_with(key)
    }
}

fn before_end(bound: &ClusteringBound, clustering: &[u8]) -> bool {
    let key = bound.key.as_ref();
    if bound.inclusive {
        clustering <= key || clustering.starts_with(key)
    } else {
        clustering < key
    }
}

/// Any value the engine stores, told apart by its header byte; what a merge operator that
/// serves every key slot decodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoredValue {
    /// A regular cell (header kinds 0x0–0x2).
    Cell(Cell),
    /// A row marker (kinds 0x3–0x4).
    Marker(RowMarker),
    /// A partition, row or range deletion (kind 0x5).
    Deletion(DeletionTime),
}

impl StoredValue {
    /// Encodes with the layout of the module docs.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            StoredValue::Cell(c) => c.encode(),
            StoredValue::Marker(m) => m.encode(),
            StoredValue::Deletion(d) => d.encode(),
        }
    }

    /// Decodes any kind, rejecting malformed or unknown input.
    pub fn decode(bytes: &[u8]) -> Result<StoredValue, CodecError> {
        let (&head, rest) = bytes.split_first().ok_or(CodecError::Empty)?;
        if head >> 4 != FORMAT_VERSION {
            return Err(CodecError::UnknownVersion(head >> 4));
        }
        let mut r = Reader(rest);
        let timestamp = r.i64("timestamp")?;
        let value = match head & 0x0f {
            KIND_LIVE => StoredValue::Cell(Cell::live(timestamp, r.rest())),
            KIND_EXPIRING => {
                let (ttl, local_deletion_time) = r.expiry()?;
                let value = r.rest();
                StoredValue::Cell(Cell {
                    timestamp,
                    kind: CellKind::Expiring {
                        value,
                        ttl,
                        local_deletion_time,
                    },
                })
            }
            KIND_TOMBSTONE => {
                StoredValue::Cell(Cell::tombstone(timestamp, r.u32("local deletion time")?))
            }
            KIND_MARKER => StoredValue::Marker(RowMarker::live(timestamp)),
            KIND_EXPIRING_MARKER => {
                let (ttl, local_expiration_time) = r.expiry()?;
                let expiry = Some(Expiry {
                    ttl,
                    local_expiration_time,
                });
                StoredValue::Marker(RowMarker { timestamp, expiry })
            }
            KIND_DELETION => {
                StoredValue::Deletion(DeletionTime::new(timestamp, r.u32("local deletion time")?))
            }
            kind => return Err(CodecError::UnknownKind(kind)),
        };
        r.finish()?;
        Ok(value)
    }

    /// A short name of the kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            StoredValue::Cell(_) => "cell",
            StoredValue::Marker(_) => "row marker",
            StoredValue::Deletion(_) => "deletion time",
        }
    }
}

fn header(kind: u8) -> u8 {
    (FORMAT_VERSION << 4) | kind
}

/// A cursor over untrusted bytes whose reads fail instead of panicking.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(CodecError::Truncated(what))?;
        self.0 = rest;
        Ok(*head)
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, CodecError> {
        self.take::<8>(what).map(i64::from_be_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        self.take::<4>(what).map(u32::from_be_bytes)
    }

    /// A non-zero ttl followed by its expiry time.
    fn expiry(&mut self) -> Result<(u32, u32), CodecError> {
        let ttl = self.u32("ttl")?;
        if ttl == 0 {
            return Err(CodecError::ZeroTtl);
        }
        Ok((ttl, self.u32("expiry time")?))
    }

    /// The remaining bytes, as a value.
    fn rest(&mut self) -> Bytes {
        let rest = Bytes::copy_from_slice(self.0);
        self.0 = &[];
        rest
    }

    fn finish(&self) -> Result<(), CodecError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(CodecError::TrailingBytes(n)),
        }
    }
}

/// Random cells with few distinct timestamps, expiries and values, so ties are common.
#[cfg(test)]
pub(crate) fn arb_cell() -> impl proptest::strategy::Strategy<Value = Cell> {
    use proptest::prelude::*;
    let value = proptest::collection::vec(any::<u8>(), 0..4).prop_map(Bytes::from);
    let kind = prop_oneof![
        value.clone().prop_map(|value| CellKind::Live { value }),
        (value, 1..4u32, 0..4u32).prop_map(|(value, ttl, local_deletion_time)| {
            CellKind::Expiring {
                value,
                ttl,
                local_deletion_time,
            }
        }),
        (0..4u32).prop_map(|local_deletion_time| CellKind::Tombstone {
            local_deletion_time
        }),
    ];
    (-2..2i64, kind).prop_map(|(timestamp, kind)| Cell { timestamp, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bound(key: &[u8], inclusive: bool) -> ClusteringBound {
        ClusteringBound {
            key: Bytes::copy_from_slice(key),
            inclusive,
        }
    }

    #[test]
    fn expiring_cell_is_live_until_its_local_deletion_time() {
        let cell = Cell::expiring(1, &b"v"[..], 10, 100);
        assert!(cell.is_live(109));
        assert!(!cell.is_live(110));
        assert!(Cell::live(1, &b""[..]).is_live(u32::MAX));
        assert!(!Cell::tombstone(1, 5).is_live(0));
    }

    #[test]
    fn tombstone_covers_data_at_or_below_its_timestamp() {
        let deletion = DeletionTime::new(100, 7);
        assert!(Cell::live(99, &b"v"[..]).shadowed_by(&deletion));
        assert!(Cell::live(100, &b"v"[..]).shadowed_by(&deletion));
        assert!(!Cell::live(101, &b"v"[..]).shadowed_by(&deletion));
        assert!(RowMarker::live(100).shadowed_by(&deletion));
        assert!(!Cell::live(i64::MIN, &b"v"[..]).shadowed_by(&DeletionTime::LIVE));
    }

    #[test]
    fn row_marker_expires() {
        let marker = RowMarker::expiring(5, 10, 100);
        assert!(marker.is_live(109) && !marker.is_live(110));
        assert!(RowMarker::live(5).is_live(u32::MAX));
    }

    #[test]
    fn encoding_matches_the_documented_layout() {
        let cell = Cell {
            timestamp: 0x0102030405060708,
            kind: CellKind::Expiring {
                value: Bytes::from_static(b"xy"),
                ttl: 0x0a0b0c0d,
                local_deletion_time: 0x11121314,
            },
        };
        assert_eq!(
            cell.encode(),
            [
                0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d, 0x11, 0x12, 0x13, 0x14, b'x',
                b'y'
            ]
        );
        assert_eq!(
            Cell::live(-1, &b""[..]).encode(),
            [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            DeletionTime::new(1, 2).encode(),
            [0x15, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        let cases: &[(&[u8], CodecError)] = &[
            (&[], CodecError::Empty),
            (
                &[0x20, 0, 0, 0, 0, 0, 0, 0, 0],
                CodecError::UnknownVersion(2),
            ),
            (&[0x00], CodecError::UnknownVersion(0)),
            (
                &[0x1f, 0, 0, 0, 0, 0, 0, 0, 0],
                CodecError::UnknownKind(0xf),
            ),
            (&[0x10, 0, 0, 0], CodecError::Truncated("timestamp")),
            (
                &[0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
                CodecError::Truncated("expiry time"),
            ),
            (
                &[0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                CodecError::ZeroTtl,
            ),
            (
                &[0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
                CodecError::TrailingBytes(1),
            ),
            (
                &[0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                CodecError::TrailingBytes(1),
            ),
            (
                &[0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                CodecError::Truncated("local deletion time"),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                StoredValue::decode(bytes).as_ref(),
                Err(expected),
                "{bytes:x?}"
            );
        }
    }

    #[test]
    fn decoding_the_wrong_kind_is_an_error() {
        let marker = RowMarker::live(1).encode();
        assert!(matches!(
            Cell::decode(&marker),
            Err(CodecError::WrongKind { .. })
        ));
        let cell = Cell::live(1, &b"v"[..]).encode();
        assert!(matches!(
            RowMarker::decode(&cell),
            Err(CodecError::WrongKind { .. })
        ));
        assert!(matches!(
            DeletionTime::decode(&cell),
            Err(CodecError::WrongKind { .. })
        ));
    }

    #[test]
    fn range_tombstone_bounds_are_prefixes() {
        let rt = |start, end| RangeTombstone {
            start,
            end,
            deletion: DeletionTime::new(1, 1),
        };
        let inclusive = rt(bound(b"b", true), bound(b"d", true));
        assert!(!inclusive.covers(b"a\xff"));
        assert!(inclusive.covers(b"b") && inclusive.covers(b"b\x00") && inclusive.covers(b"c"));
        assert!(inclusive.covers(b"d") && inclusive.covers(b"d\xff"));
        assert!(!inclusive.covers(b"e"));
        let exclusive = rt(bound(b"b", false), bound(b"d", false));
        assert!(!exclusive.covers(b"b") && !exclusive.covers(b"b\xff"));
        assert!(exclusive.covers(b"c") && !exclusive.covers(b"d") && !exclusive.covers(b"d\x00"));
        let whole = rt(bound(b"", true), bound(b"", true));
        assert!(whole.covers(b"") && whole.covers(b"\xff\xff"));
    }

    #[test]
    fn range_tombstones_from_encoded_bounds_cover_as_byte_order_says() {
        let d = DeletionTime::new(1, 1);
        // Rows are `key END`; bounds `key BEFORE|AFTER`.
        let row = |k: &[u8]| [k, &[0x38]].concat();
        let closed = RangeTombstone::from_bounds(b"b\x20", b"d\x60", d).expect("rt");
        assert!(closed.covers(&row(b"b")) && closed.covers(&row(b"d")));
        assert!(!closed.covers(&row(b"a")) && !closed.covers(&row(b"e")));
        let open = RangeTombstone::from_bounds(b"b\x60", b"d\x20", d).expect("rt");
        assert!(!open.covers(&row(b"b")) && open.covers(&row(b"c")) && !open.covers(&row(b"d")));
        assert!(open.ends_before(&row(b"d")) && !open.ends_before(&row(b"c")));
        assert!(open.starts_after(&row(b"b")) && !open.starts_after(&row(b"c")));
        let whole = RangeTombstone::from_bounds(b"\x20", b"\x60", d).expect("rt");
        assert!(whole.covers(&row(b"")) && whole.covers(&row(b"\xff")));
        assert!(RangeTombstone::from_bounds(b"b\x38", b"\x60", d).is_none());
        assert!(RangeTombstone::from_bounds(b"", b"\x60", d).is_none());
    }

    proptest! {
        #[test]
        fn cells_round_trip(cell in arb_cell(), ts in any::<i64>()) {
            let cell = Cell { timestamp: ts, ..cell };
            prop_assert_eq!(Cell::decode(&cell.encode()), Ok(cell));
        }

        #[test]
        fn markers_and_deletions_round_trip(ts in any::<i64>(), ttl in 1..u32::MAX, at in any::<u32>()) {
            for marker in [RowMarker::live(ts), RowMarker::expiring(ts, ttl, at)] {
                prop_assert_eq!(RowMarker::decode(&marker.encode()), Ok(marker));
            }
            let deletion = DeletionTime::new(ts, at);
            prop_assert_eq!(DeletionTime::decode(&deletion.encode()), Ok(deletion));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(value) = StoredValue::decode(&bytes) {
                prop_assert_eq!(value.encode(), bytes);
            }
        }
    }
}
