//! The RocksDB key layout (design §4): every key of a table sorts in Cassandra's order, so
//! a token range, a partition, a clustering slice and a page are each a contiguous key range.
//!
//! # Layout, byte by byte (all integers big-endian)
//!
//! | bytes        | field                                                                 |
//! |--------------|-----------------------------------------------------------------------|
//! | 16           | table id (UUID bytes): DROP + CREATE gets a new id, so old data never resurfaces |
//! | 8            | token, i64 with the sign bit flipped, so unsigned order is token order |
//! | 2            | partition key length *L* (u16; Cassandra caps keys at 65,535 bytes)  |
//! | *L*          | partition key, the raw serialized bytes (tokens can collide)          |
//! | 1            | slot kind: `0x10` partition header, `0x20` static row, `0x30` clustered |
//!
//! The first four fields are the *partition prefix*; they are prefix-free (the length is
//! fixed before the key bytes), so a partition is exactly the keys starting with its prefix.
//! Partitions with colliding tokens sort by (length, bytes) rather than Cassandra's plain
//! bytes; only the rare collision sees the difference, and the order is still total.
//! After the kind:
//!
//! * `0x10` **partition header**: nothing follows. Holds the partition deletion.
//! * `0x18` **range index**: a range tombstone's start bound, `0x02`, its end bound (the
//!   same bytes as its start key below, under another kind). Holds the range's deletion.
//!   Sorted by start, so the ranges that open before any position are one short scan: what
//!   a read that starts inside a range (a slice or a page resuming in it) needs, since the
//!   range's own start key lies before the read.
//! * `0x20` **static row**: a *column part* follows.
//! * `0x30` **clustered**: the clustering key in the byte-comparable encoding
//!   (`comparable/`), then by its terminator:
//!   - `0x38` (END): a **row**; a *column part* follows.
//!   - `0x20`/`0x60` (BEFORE/AFTER bound): a **range tombstone bound**; one byte follows,
//!     `0x01` for an end bound or `0x02` for a start bound, then the range's *other* bound
//!     (its end after a start, its start after an end). Both keys hold the range's deletion
//!     time. Bounds live in the same slot as rows so one scan meets each bound exactly where
//!     it takes effect (a bound of prefix *p* sorts before/after every row starting with
//!     *p*): a forward scan opens a range at its start key, which says where it ends; a
//!     reverse scan opens it at its end key, which says where it starts. Carrying the other
//!     bound in the key makes every range its own pair of keys, so overlapping and nested
//!     ranges with different timestamps never merge into one another, and a scan knows at
//!     every row each open range and its deletion. At equal positions an end sorts before a
//!     start. A row is covered when `start < clustering < end` as bytes (a BEFORE bound
//!     sorts before, an AFTER bound after, every key with its prefix).
//!
//! The *column part* is either nothing — the **row slot** (row marker) —, `0x00` — the
//! **row deletion slot** — (both sorting before the row's cells), or a **cell**: `0x01`, the column name's length (u16)
//! and UTF-8 bytes, then optionally the **cell path** of a non-frozen collection element
//! (the element key as [`comparable::encode_value`] writes it, so elements sort in
//! Cassandra's order). A column with no path is the collection-wide slot (its deletion).

use std::ops::Bound;

use bytes::Bytes;
use uuid::Uuid;

use super::engine::{prefix_successor, KeyRange};

use super::comparable::{
    self, corrupt, ClusteringRange, Column, KeyError, Terminator, AFTER, BEFORE, END,
};

/// Slot kind of the partition header (partition deletion).
pub const KIND_HEADER: u8 = 0x10;
/// Slot kind of the range tombstone index (every range by its start, ahead of the rows).
pub const KIND_RANGE_INDEX: u8 = 0x18;
/// Slot kind of the static row.
pub const KIND_STATIC: u8 = 0x20;
/// Slot kind of clustered rows and range tombstone bounds.
pub const KIND_CLUSTERED: u8 = 0x30;
/// The column part of a row's deletion slot (sorts between the row slot and its cells).
pub const ROW_DELETION_TAG: u8 = 0x00;
/// First byte of a column part naming a cell.
pub const CELL_TAG: u8 = 0x01;
/// Byte after a range tombstone bound marking the end of a deletion.
pub const BOUND_END: u8 = 0x01;
/// Byte after a range tombstone bound marking the start of a deletion.
pub const BOUND_START: u8 = 0x02;

/// Bytes of the table id and token fields.
const FIXED: usize = 16 + 8;

/// Which side of a range deletion a bound key marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoundSide {
    /// The deletion starts here.
    Start,
    /// The deletion ends here.
    End,
}

/// A cell's column and optional collection element path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CellName<'a> {
    /// The column name.
    pub column: &'a str,
    /// The encoded element key of a non-frozen collection cell ([`comparable::encode_value`]).
    pub path: Option<&'a [u8]>,
}

/// The token order as unsigned bytes: sign bit flipped, big-endian.
pub fn token_bytes(token: i64) -> [u8; 8] {
    ((token as u64) ^ (1 << 63)).to_be_bytes()
}

fn token_from_bytes(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// One partition of one table: builds every key in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionKey<'a> {
    /// The table's id.
    pub table: Uuid,
    /// The partition key's Murmur3 token.
    pub token: i64,
    /// The serialized partition key.
    pub key: &'a [u8],
}

impl PartitionKey<'_> {
    /// `table | token | length | key`: every key of the partition starts with it.
    pub fn prefix(&self) -> Result<Vec<u8>, KeyError> {
        let len = u16::try_from(self.key.len()).map_err(|_| {
            KeyError::TooLarge(format!("partition key of {} bytes", self.key.len()))
        })?;
        let mut out = Vec::with_capacity(FIXED + 3 + self.key.len());
        out.extend_from_slice(self.table.as_bytes());
        out.extend_from_slice(&token_bytes(self.token));
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(self.key);
        Ok(out)
    }

    fn with_kind(&self, kind: u8) -> Result<Vec<u8>, KeyError> {
        let mut out = self.prefix()?;
        out.push(kind);
        Ok(out)
    }

    /// The partition header slot (partition deletion).
    pub fn header_key(&self) -> Result<Vec<u8>, KeyError> {
        self.with_kind(KIND_HEADER)
    }

    /// A static cell, or with `cell` None the static row slot.
    pub fn static_key(&self, cell: Option<CellName<'_>>) -> Result<Vec<u8>, KeyError> {
        let mut out = self.with_kind(KIND_STATIC)?;
        push_cell(&mut out, cell)?;
        Ok(out)
    }

    /// A row slot (`cell` None) or a cell of the row whose encoded clustering key
    /// ([`comparable::encode_clustering`], ending in `END`) is `clustering`.
    pub fn row_key(
        &self,
        clustering: &[u8],
        cell: Option<CellName<'_>>,
    ) -> Result<Vec<u8>, KeyError> {
        if clustering.last() != Some(&END) {
            return Err(corrupt("a row's clustering key must end in END"));
        }
        let mut out = self.with_kind(KIND_CLUSTERED)?;
        out.extend_from_slice(clustering);
        push_cell(&mut out, cell)?;
        Ok(out)
    }

    /// The deletion slot of the row whose encoded clustering key is `clustering`: a row's
    /// deletion and its marker are merged by different rules, so they live under two keys.
    pub fn row_deletion_key(&self, clustering: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut out = self.row_key(clustering, None)?;
        out.push(ROW_DELETION_TAG);
        Ok(out)
    }

    /// A range tombstone bound key: the `side` bound of `range` (both bounds ending in
    /// BEFORE or AFTER), followed by the side byte and the other bound.
    pub fn bound_key(&self, range: &ClusteringRange, side: BoundSide) -> Result<Vec<u8>, KeyError> {
        let (bound, other, tag) = match side {
            BoundSide::Start => (&range.start, &range.end, BOUND_START),
            BoundSide::End => (&range.end, &range.start, BOUND_END),
        };
        let mut out = self.with_kind(KIND_CLUSTERED)?;
        push_range(&mut out, bound, tag, other)?;
        Ok(out)
    }

    /// The range index key of `range`: its start, `BOUND_START`, its end.
    pub fn range_index_key(&self, range: &ClusteringRange) -> Result<Vec<u8>, KeyError> {
        let mut out = self.with_kind(KIND_RANGE_INDEX)?;
        push_range(&mut out, &range.start, BOUND_START, &range.end)?;
        Ok(out)
    }

    /// The range index entries of ranges whose start key sorts before the clustered-slot
    /// position `before` (clustering-relative, as in [`ClusteringRange`]).
    pub fn range_index_before(&self, before: &[u8]) -> Result<KeyRange, KeyError> {
        let base = self.with_kind(KIND_RANGE_INDEX)?;
        let end = [base.as_slice(), before].concat();
        Ok(KeyRange::half_open(&base, &end))
    }

    /// The first bytes of every clustered-slot key: what [`PartitionKey::clustering_range`]
    /// puts before a clustering-relative position.
    pub fn clustered_base(&self) -> Result<Vec<u8>, KeyError> {
        self.with_kind(KIND_CLUSTERED)
    }

    /// Every key of the partition.
    pub fn range(&self) -> Result<KeyRange, KeyError> {
        Ok(KeyRange::prefix(&self.prefix()?))
    }

    /// The rows (and range tombstone bounds) whose clustering falls in `range`.
    pub fn clustering_range(&self, range: &ClusteringRange) -> Result<KeyRange, KeyError> {
        let base = self.with_kind(KIND_CLUSTERED)?;
        let start = [base.as_slice(), &range.start].concat();
        let end = [base.as_slice(), &range.end].concat();
        Ok(KeyRange::half_open(&start, &end))
    }
}

fn is_bound(bound: &[u8]) -> bool {
    matches!(bound.last(), Some(&BEFORE | &AFTER))
}

fn push_range(out: &mut Vec<u8>, bound: &[u8], tag: u8, other: &[u8]) -> Result<(), KeyError> {
    if !is_bound(bound) || !is_bound(other) {
        return Err(corrupt("a bound must end in BEFORE or AFTER"));
    }
    out.extend_from_slice(bound);
    out.push(tag);
    out.extend_from_slice(other);
    Ok(())
}

fn push_cell(out: &mut Vec<u8>, cell: Option<CellName<'_>>) -> Result<(), KeyError> {
    let Some(cell) = cell else { return Ok(()) };
    let len = u16::try_from(cell.column.len())
        .map_err(|_| KeyError::TooLarge("column name over 65535 bytes".into()))?;
    out.push(CELL_TAG);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(cell.column.as_bytes());
    out.extend_from_slice(cell.path.unwrap_or_default());
    Ok(())
}

/// Every key of the partition (`partition_range(t, tok, pk)` ≡ `PartitionKey{..}.range()`).
pub fn partition_range(table: Uuid, token: i64, key: &[u8]) -> Result<KeyRange, KeyError> {
    PartitionKey { table, token, key }.range()
}

/// Every key of the table.
pub fn table_range(table: Uuid) -> KeyRange {
    KeyRange::prefix(table.as_bytes())
}

/// Keys with tokens from `first` to `last`, both inclusive.
fn tokens_inclusive(table: Uuid, first: i64, last: i64) -> KeyRange {
    let at = |t: i64| [table.as_bytes().as_slice(), &token_bytes(t)].concat();
    KeyRange {
        start: Bound::Included(Bytes::from(at(first))),
        end: prefix_successor(&at(last))
            .map_or(Bound::Unbounded, |e| Bound::Excluded(Bytes::from(e))),
    }
}

/// The keys of partitions with tokens in the ring range `(start_exclusive, end_inclusive]`,
/// with Cassandra's `Range` semantics: `start == end` is the whole ring, an `end` of
/// `i64::MIN` runs to the end of the ring, and `end < start` wraps around (two ranges,
/// returned in key order: the low tokens first).
pub fn token_range(table: Uuid, start_exclusive: i64, end_inclusive: i64) -> Vec<KeyRange> {
    let (s, e) = (start_exclusive, end_inclusive);
    if s == e {
        return vec![table_range(table)];
    }
    let tail = (s != i64::MAX).then(|| tokens_inclusive(table, s + 1, i64::MAX));
    if e == i64::MIN {
        return tail.into_iter().collect();
    }
    if s < e {
        return vec![tokens_inclusive(table, s + 1, e)];
    }
    std::iter::once(tokens_inclusive(table, i64::MIN, e))
        .chain(tail)
        .collect()
}

/// What a key's slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot<'a> {
    /// The partition header.
    PartitionHeader,
    /// The static row: its slot (None) or a cell.
    Static(Option<CellName<'a>>),
    /// A clustered row: its encoded clustering key (ending in END) and its slot or a cell.
    Row {
        /// Decode with [`comparable::decode_clustering`].
        clustering: &'a [u8],
        /// None for the row slot.
        cell: Option<CellName<'a>>,
    },
    /// A clustered row's deletion slot (DELETE of the row).
    RowDeletion {
        /// Decode with [`comparable::decode_clustering`].
        clustering: &'a [u8],
    },
    /// A range tombstone bound: the encoded prefix (ending in BEFORE/AFTER), its side and
    /// the range's other bound.
    RangeTombstoneBound {
        /// Decode with [`comparable::decode_clustering`].
        bound: &'a [u8],
        /// Start or end of the deletion.
        side: BoundSide,
        /// The range's end for a start bound, its start for an end bound.
        other: &'a [u8],
    },
    /// A range index entry: the range's start and end bounds.
    RangeIndex {
        /// The start bound (inclusive position, ending in BEFORE/AFTER).
        start: &'a [u8],
        /// The end bound (exclusive position, ending in BEFORE/AFTER).
        end: &'a [u8],
    },
}

/// A key taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParsedKey<'a> {
    /// The table's id.
    pub table: Uuid,
    /// The partition's token.
    pub token: i64,
    /// The serialized partition key.
    pub partition_key: &'a [u8],
    /// What the rest of the key addresses.
    pub slot: Slot<'a>,
}

/// Takes a key apart; `clustering` are the table's clustering columns, needed to find where
/// the clustering key ends.
pub fn parse_key<'a>(key: &'a [u8], clustering: &[Column<'_>]) -> Result<ParsedKey<'a>, KeyError> {
    let (table, rest) = split::<16>(key)?;
    let (token, rest) = split::<8>(rest)?;
    let (len, rest) = split::<2>(rest)?;
    let len = usize::from(u16::from_be_bytes(len));
    if rest.len() < len {
        return Err(corrupt("partition key runs past the key"));
    }
    let (partition_key, rest) = rest.split_at(len);
    let (&kind, rest) = rest.split_first().ok_or_else(|| corrupt("no slot kind"))?;
    let slot = match kind {
        KIND_HEADER if rest.is_empty() => Slot::PartitionHeader,
        KIND_RANGE_INDEX => match parse_range(rest, clustering)? {
            (start, BoundSide::Start, end) => Slot::RangeIndex { start, end },
            _ => return Err(corrupt("range index entry side")),
        },
        KIND_STATIC => Slot::Static(parse_cell(rest)?),
        KIND_CLUSTERED => parse_clustered(rest, clustering)?,
        _ => return Err(corrupt(format!("slot kind {kind:#04x}"))),
    };
    Ok(ParsedKey {
        table: Uuid::from_bytes(table),
        token: token_from_bytes(token),
        partition_key,
        slot,
    })
}

fn parse_clustered<'a>(rest: &'a [u8], columns: &[Column<'_>]) -> Result<Slot<'a>, KeyError> {
    let decoded = comparable::decode_clustering(columns, rest)?;
    if decoded.terminator != Terminator::End {
        let (bound, side, other) = parse_range(rest, columns)?;
        return Ok(Slot::RangeTombstoneBound { bound, side, other });
    }
    let (clustering, tail) = rest.split_at(decoded.len);
    match tail {
        [ROW_DELETION_TAG] => Ok(Slot::RowDeletion { clustering }),
        _ => Ok(Slot::Row {
            clustering,
            cell: parse_cell(tail)?,
        }),
    }
}

/// A bound, its side byte and the other bound, both bounds decoding in full.
fn parse_range<'a>(
    rest: &'a [u8],
    columns: &[Column<'_>],
) -> Result<(&'a [u8], BoundSide, &'a [u8]), KeyError> {
    let first = comparable::decode_clustering(columns, rest)?;
    let (bound, tail) = rest.split_at(first.len);
    let (side, other) = match tail.split_first() {
        Some((&BOUND_START, other)) => (BoundSide::Start, other),
        Some((&BOUND_END, other)) => (BoundSide::End, other),
        _ => return Err(corrupt("range tombstone bound side")),
    };
    let second = comparable::decode_clustering(columns, other)?;
    let bounds = first.terminator != Terminator::End && second.terminator != Terminator::End;
    if !bounds || second.len != other.len() {
        return Err(corrupt("range tombstone bounds"));
    }
    Ok((bound, side, other))
}

fn parse_cell(rest: &[u8]) -> Result<Option<CellName<'_>>, KeyError> {
    let Some((&tag, rest)) = rest.split_first() else {
        return Ok(None);
    };
    if tag != CELL_TAG {
        return Err(corrupt(format!("column part tag {tag:#04x}")));
    }
    let (len, rest) = split::<2>(rest)?;
    let len = usize::from(u16::from_be_bytes(len));
    if rest.len() < len {
        return Err(corrupt("column name runs past the key"));
    }
    let (name, path) = rest.split_at(len);
    let column = std::str::from_utf8(name).map_err(|_| corrupt("column name is not UTF-8"))?;
    Ok(Some(CellName {
        column,
        path: (!path.is_empty()).then_some(path),
    }))
}

fn split<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), KeyError> {
    if bytes.len() < N {
        return Err(corrupt("key ends early"));
    }
    let (head, rest) = bytes.split_at(N);
    let head = head.try_into().map_err(|_| corrupt("key ends early"))?;
    Ok((head, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql::types::{CqlType, NativeType};
    use crate::storage::comparable::{
        encode_clustering, encode_value, slice_ranges, Order, SliceOp,
    };

    const TABLE: Uuid = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);

    fn pk(token: i64, key: &[u8]) -> PartitionKey<'_> {
        PartitionKey {
            table: TABLE,
            token,
            key,
        }
    }

    fn int() -> CqlType {
        CqlType::Native(NativeType::Int)
    }

    fn clustering(v: i32) -> Vec<u8> {
        let ty = int();
        let mut out = Vec::new();
        let bytes = v.to_be_bytes();
        encode_clustering(&[(&ty, Order::Asc, Some(&bytes))], &mut out).expect("encode");
        out
    }

    fn cell(column: &str) -> Option<CellName<'_>> {
        Some(CellName { column, path: None })
    }

    #[test]
    fn tokens_sort_signed() {
        let tokens = [i64::MIN, -1, 0, 1, i64::MAX];
        for w in tokens.windows(2) {
            assert!(token_bytes(w[0]) < token_bytes(w[1]));
        }
    }

    /// Every slot of a partition in the order a scan must meet them.
    fn partition_keys(p: &PartitionKey<'_>) -> Vec<Vec<u8>> {
        let ty = int();
        let cols = [(&ty, Order::Asc)];
        let two = 2i32.to_be_bytes();
        let ge_two = slice_ranges(&cols, &[], SliceOp::Ge, &[Some(&two)]).expect("slice");
        let path = |v: i32| {
            let mut out = Vec::new();
            encode_value(&int(), &v.to_be_bytes(), &mut out).expect("path");
            out
        };
        let (p1, p2) = (path(-5), path(7));
        vec![
            p.header_key().expect("k"),
            p.range_index_key(&ge_two[0]).expect("k"),
            p.static_key(None).expect("k"),
            p.static_key(cell("s")).expect("k"),
            p.row_key(&clustering(1), None).expect("k"),
            p.row_key(&clustering(1), cell("a")).expect("k"),
            p.row_key(
                &clustering(1),
                Some(CellName {
                    column: "a",
                    path: Some(&p1),
                }),
            )
            .expect("k"),
            p.row_key(
                &clustering(1),
                Some(CellName {
                    column: "a",
                    path: Some(&p2),
                }),
            )
            .expect("k"),
            p.row_key(&clustering(1), cell("b")).expect("k"),
            p.bound_key(&ge_two[0], BoundSide::Start).expect("k"),
            p.row_key(&clustering(2), None).expect("k"),
            p.row_key(&clustering(3), cell("a")).expect("k"),
            p.bound_key(&ge_two[0], BoundSide::End).expect("k"),
        ]
    }

    #[test]
    fn slots_sort_in_scan_order_and_parse_back() {
        let ty = int();
        let cols = [(&ty, Order::Asc)];
        let p = pk(-42, b"key\0");
        let keys = partition_keys(&p);
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{:02x?} !< {:02x?}", w[0], w[1]);
        }
        let range = p.range().expect("range");
        for key in &keys {
            assert!(range.contains(key));
            let parsed = parse_key(key, &cols).expect("parse");
            assert_eq!(
                (parsed.table, parsed.token, parsed.partition_key),
                (TABLE, -42, &b"key\0"[..])
            );
        }
        let parsed: Vec<_> = keys
            .iter()
            .map(|k| parse_key(k, &cols).expect("parse").slot)
            .collect();
        assert_eq!(parsed[0], Slot::PartitionHeader);
        assert!(
            matches!(parsed[1], Slot::RangeIndex { start, end } if start == [0x40, 0x80, 0, 0, 2, BEFORE] && end == [AFTER])
        );
        assert_eq!(parsed[3], Slot::Static(cell("s")));
        assert!(matches!(
            parsed[6],
            Slot::Row {
                cell: Some(CellName {
                    column: "a",
                    path: Some(_)
                }),
                ..
            }
        ));
        assert!(matches!(
            parsed[9],
            Slot::RangeTombstoneBound {
                side: BoundSide::Start,
                other: [AFTER],
                ..
            }
        ));
        assert!(matches!(
            parsed[12],
            Slot::RangeTombstoneBound {
                bound: [AFTER],
                side: BoundSide::End,
                ..
            }
        ));
        let Slot::Row {
            clustering: c,
            cell: None,
        } = parsed[4]
        else {
            panic!("row slot")
        };
        let decoded = comparable::decode_clustering(&cols, c).expect("decode");
        assert_eq!(decoded.values, vec![Some(1i32.to_be_bytes().to_vec())]);
    }

    #[test]
    fn partitions_are_contiguous_even_with_colliding_tokens() {
        let keys: [&[u8]; 4] = [b"", b"a", b"a\xff", b"b"];
        for a in keys {
            for b in keys {
                if a == b {
                    continue;
                }
                let range = pk(5, a).range().expect("range");
                for key in partition_keys(&pk(5, b)) {
                    assert!(!range.contains(&key));
                }
            }
        }
        let clustering_range = pk(5, b"a")
            .clustering_range(&comparable::full_range())
            .expect("range");
        let row = pk(5, b"a").row_key(&clustering(i32::MIN), None).expect("k");
        assert!(clustering_range.contains(&row));
    }

    fn in_ranges(ranges: &[KeyRange], key: &[u8]) -> bool {
        ranges.iter().any(|r| r.contains(key))
    }

    #[test]
    fn token_ranges_follow_cassandra_range_semantics() {
        let tokens = [i64::MIN + 1, -100, -1, 0, 1, 100, i64::MAX];
        let bounds = [i64::MIN, -100, 0, 1, 100, i64::MAX];
        for &s in &bounds {
            for &e in &bounds {
                let ranges = token_range(TABLE, s, e);
                for &t in &tokens {
                    let want = if s == e {
                        true
                    } else if e == i64::MIN || s < e {
                        t > s && (e == i64::MIN || t <= e)
                    } else {
                        t > s || t <= e
                    };
                    for key in partition_keys(&pk(t, &[0xFF; 3])) {
                        assert_eq!(in_ranges(&ranges, &key), want, "({s}, {e}] token {t}");
                    }
                }
                let other = Uuid::from_u128(TABLE.as_u128() + 1);
                let foreign = PartitionKey {
                    table: other,
                    token: 0,
                    key: b"",
                };
                assert!(!in_ranges(&ranges, &foreign.header_key().expect("k")));
            }
        }
    }

    #[test]
    fn malformed_keys_are_errors() {
        let ty = int();
        let cols = [(&ty, Order::Asc)];
        let good = pk(1, b"k").row_key(&clustering(1), cell("a")).expect("k");
        for cut in 0..good.len() {
            let _ = parse_key(&good[..cut], &cols);
        }
        assert!(parse_key(&good[..20], &cols).is_err());
        let mut bad_kind = pk(1, b"k").header_key().expect("k");
        *bad_kind.last_mut().expect("kind") = 0x77;
        assert!(parse_key(&bad_kind, &cols).is_err());
        let long = vec![0u8; 70_000];
        assert!(pk(1, &long).prefix().is_err());
        assert!(pk(1, b"k").row_key(&[0x40], None).is_err());
    }

    #[test]
    fn malformed_range_keys_are_errors() {
        let ty = int();
        let cols = [(&ty, Order::Asc)];
        let p = pk(1, b"k");
        let range = comparable::prefix_range(&cols, &[Some(&7i32.to_be_bytes())]).expect("r");
        let good = p.bound_key(&range, BoundSide::End).expect("k");
        assert!(parse_key(&good, &cols).is_ok());
        for cut in 0..good.len() {
            assert!(parse_key(&good[..cut], &cols).is_err());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse_key(&trailing, &cols).is_err());
        let mut index = p.range_index_key(&range).expect("k");
        assert!(parse_key(&index, &cols).is_ok());
        index.push(AFTER);
        assert!(parse_key(&index, &cols).is_err());
        let row_end = ClusteringRange {
            start: vec![BEFORE],
            end: clustering(1),
        };
        assert!(p.bound_key(&row_end, BoundSide::Start).is_err());
        assert!(p.range_index_key(&row_end).is_err());
    }
}
