//! The digest of a replica's answer: MD5 over a canonical byte form of a partition fragment.
//!
//! A coordinator asks one replica for data and the others only for digests (design §18.2);
//! equal digests mean the replicas hold the same thing for the slice read, so the data
//! answer stands. The canonical form therefore covers everything that decides what a read
//! sees and how replicas reconcile — every cell with its timestamp, TTL and local deletion
//! time, row markers, row, range and partition deletions, collection deletions — using the
//! storage encodings of cells and deletions (`cell.rs`), each variable-length piece
//! length-prefixed so no two fragments share a byte form. A fragment from the cache and one
//! read from storage encode identically.

use md5::{Digest as _, Md5};

use super::partition::{CellFragment, PartitionFragment, RowFragment};

/// The digest of `fragment`.
pub fn fragment_digest(fragment: &PartitionFragment) -> [u8; 16] {
    let mut hash = Md5::new();
    piece(&mut hash, &fragment.partition.key);
    piece(&mut hash, &fragment.deletion.encode());
    match &fragment.static_row {
        Some(row) => {
            hash.update([1]);
            row_bytes(&mut hash, row);
        }
        None => hash.update([0]),
    }
    hash.update((fragment.rows.len() as u64).to_be_bytes());
    for row in &fragment.rows {
        row_bytes(&mut hash, row);
    }
    hash.update((fragment.range_deletions.len() as u64).to_be_bytes());
    for range in &fragment.range_deletions {
        for bound in [&range.start, &range.end] {
            piece(&mut hash, &bound.key);
            hash.update([u8::from(bound.inclusive)]);
        }
        piece(&mut hash, &range.deletion.encode());
    }
    hash.update([u8::from(fragment.exhausted)]);
    hash.finalize().into()
}

fn row_bytes(hash: &mut Md5, row: &RowFragment) {
    piece(hash, &row.clustering);
    match &row.marker {
        Some(marker) => piece(hash, &marker.encode()),
        None => piece(hash, &[]),
    }
    piece(hash, &row.deletion.encode());
    hash.update((row.columns.len() as u64).to_be_bytes());
    for column in &row.columns {
        piece(hash, &column.column);
        match &column.path {
            Some(path) => {
                hash.update([1]);
                piece(hash, path);
            }
            None => hash.update([0]),
        }
        match &column.value {
            CellFragment::Cell(cell) => {
                hash.update([0]);
                piece(hash, &cell.encode());
            }
            CellFragment::CollectionDeletion(deletion) => {
                hash.update([1]);
                piece(hash, &deletion.encode());
            }
        }
    }
}

fn piece(hash: &mut Md5, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_be_bytes());
    hash.update(bytes);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::storage::cell::{Cell, DeletionTime};
    use crate::storage::partition::{ColumnFragment, PartitionId};

    fn fragment(timestamp: i64, value: &'static [u8]) -> PartitionFragment {
        PartitionFragment {
            partition: PartitionId {
                token: 1,
                key: Bytes::from_static(b"k"),
            },
            deletion: DeletionTime::LIVE,
            static_row: None,
            rows: vec![RowFragment {
                clustering: Bytes::from_static(b"\x01"),
                marker: None,
                deletion: DeletionTime::LIVE,
                columns: vec![ColumnFragment {
                    column: Bytes::from_static(b"v"),
                    path: None,
                    value: CellFragment::Cell(Cell::live(timestamp, Bytes::from_static(value))),
                }],
            }],
            exhausted: true,
            range_deletions: Vec::new(),
        }
    }

    #[test]
    fn equal_fragments_have_equal_digests_and_any_difference_shows() {
        assert_eq!(
            fragment_digest(&fragment(1, b"a")),
            fragment_digest(&fragment(1, b"a"))
        );
        assert_ne!(
            fragment_digest(&fragment(1, b"a")),
            fragment_digest(&fragment(2, b"a")),
            "timestamps count"
        );
        assert_ne!(
            fragment_digest(&fragment(1, b"a")),
            fragment_digest(&fragment(1, b"b"))
        );
        let mut deleted = fragment(1, b"a");
        deleted.rows[0].deletion = DeletionTime {
            marked_for_delete_at: 5,
            local_deletion_time: 9,
        };
        assert_ne!(
            fragment_digest(&deleted),
            fragment_digest(&fragment(1, b"a")),
            "tombstones count"
        );
    }
}
