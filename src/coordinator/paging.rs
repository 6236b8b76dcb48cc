//! The paging state of storage reads (design §8): where the last page ended, as a key
//! position, so a page resumes on any connection, on any node and after a restart — it
//! depends on nothing the server remembers.
//!
//! # Format (version 2), all integers big-endian
//!
//! | bytes | field                                                                       |
//! |-------|-----------------------------------------------------------------------------|
//! | 1     | version `0x02` (version 1 is the offset state of system-table reads)         |
//! | 16    | table id: a state is refused by any other table, and after DROP + CREATE     |
//! | 8     | token of the last partition read                                            |
//! | 2 + L | its serialized partition key                                                |
//! | 1     | flags: `0x01` a clustering follows, `0x02` a remaining LIMIT follows         |
//! | 2 + C | the last row returned (encoded clustering), if `0x01`                        |
//! | 4     | rows of the LIMIT still to return, if `0x02`                                 |
//! | 4     | rows already returned from that partition (PER PARTITION LIMIT)              |
//! | 8     | check: the first 8 bytes of the MD5 of everything before it                  |
//!
//! Without a clustering the partition is finished and the next page starts at the next
//! partition. The state is untrusted input: every length is checked, the check word must
//! match, and a forged or damaged state is answered with Invalid, never a crash or a read
//! outside the table.

use bytes::{BufMut, Bytes, BytesMut};
use md5::{Digest, Md5};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::storage::partition::PartitionId;

const VERSION: u8 = 2;
const HAS_CLUSTERING: u8 = 0x01;
const HAS_REMAINING: u8 = 0x02;

/// Where a paged read resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PagingState {
    /// The table the state belongs to.
    pub table: Uuid,
    /// The last partition read.
    pub partition: PartitionId,
    /// The last row returned from it, or None when the partition is finished.
    pub clustering: Option<Bytes>,
    /// Rows of the statement's LIMIT still to return.
    pub remaining: Option<u32>,
    /// Rows already returned from `partition`.
    pub partition_rows: u32,
}

impl PagingState {
    /// The opaque bytes handed to the client.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(64 + self.partition.key.len());
        buf.put_u8(VERSION);
        buf.put_slice(self.table.as_bytes());
        buf.put_i64(self.partition.token);
        put_short_bytes(&mut buf, &self.partition.key);
        let mut flags = 0;
        if self.clustering.is_some() {
            flags |= HAS_CLUSTERING;
        }
        if self.remaining.is_some() {
            flags |= HAS_REMAINING;
        }
        buf.put_u8(flags);
        if let Some(clustering) = &self.clustering {
            put_short_bytes(&mut buf, clustering);
        }
        if let Some(remaining) = self.remaining {
            buf.put_u32(remaining);
        }
        buf.put_u32(self.partition_rows);
        let check = check_word(&buf);
        buf.put_slice(&check);
        buf.freeze()
    }

    /// Decodes a state the client sent for a read of `table`.
    pub fn decode(bytes: &Bytes, table: Uuid) -> Result<PagingState> {
        let invalid = || Error::invalid("Invalid value for the paging state");
        let body_len = bytes.len().checked_sub(8).ok_or_else(invalid)?;
        if check_word(&bytes[..body_len]) != bytes[body_len..] {
            return Err(invalid());
        }
        let mut r = Reader(bytes.slice(..body_len));
        if r.u8()? != VERSION || r.take(16)?[..] != table.as_bytes()[..] {
            return Err(invalid());
        }
        let token = r.i64()?;
        let key = r.short_bytes()?;
        let flags = r.u8()?;
        if flags & !(HAS_CLUSTERING | HAS_REMAINING) != 0 {
            return Err(invalid());
        }
        let clustering = match flags & HAS_CLUSTERING {
            0 => None,
            _ => Some(r.short_bytes()?),
        };
        let remaining = match flags & HAS_REMAINING {
            0 => None,
            _ => Some(r.u32()?),
        };
        let partition_rows = r.u32()?;
        if !r.0.is_empty() {
            return Err(invalid());
        }
        Ok(PagingState {
            table,
            partition: PartitionId { token, key },
            clustering,
            remaining,
            partition_rows,
        })
    }
}

fn put_short_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    // Partition keys and clusterings are bounded by u16 lengths in the key layout.
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    buf.put_u16(len);
    buf.put_slice(&bytes[..usize::from(len)]);
}

fn check_word(bytes: &[u8]) -> [u8; 8] {
    let digest = Md5::digest(bytes);
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// A cursor over untrusted bytes whose reads fail with Invalid instead of panicking.
struct Reader(Bytes);

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes> {
        if self.0.len() < n {
            return Err(Error::invalid("Invalid value for the paging state"));
        }
        Ok(self.0.split_to(n))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(&b);
        Ok(i64::from_be_bytes(a))
    }

    fn short_bytes(&mut self) -> Result<Bytes> {
        let b = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TABLE: Uuid = Uuid::from_u128(7);

    fn state(clustering: Option<&'static [u8]>, remaining: Option<u32>) -> PagingState {
        PagingState {
            table: TABLE,
            partition: PartitionId {
                token: -42,
                key: Bytes::from_static(b"key"),
            },
            clustering: clustering.map(Bytes::from_static),
            remaining,
            partition_rows: 3,
        }
    }

    #[test]
    fn states_round_trip() {
        for s in [
            state(None, None),
            state(Some(b"\x40\x01\x38"), None),
            state(Some(b""), Some(10)),
        ] {
            assert_eq!(PagingState::decode(&s.encode(), TABLE).expect("decode"), s);
        }
    }

    #[test]
    fn another_tables_or_a_damaged_state_is_invalid() {
        let encoded = state(Some(b"\x38"), Some(5)).encode();
        assert!(PagingState::decode(&encoded, Uuid::from_u128(8)).is_err());
        for i in 0..encoded.len() {
            let mut damaged = encoded.to_vec();
            damaged[i] ^= 0x01;
            assert!(PagingState::decode(&Bytes::from(damaged), TABLE).is_err());
        }
        assert!(PagingState::decode(&encoded.slice(..encoded.len() - 1), TABLE).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = PagingState::decode(&Bytes::from(bytes), TABLE);
        }
    }
}
