//! `Murmur3Partitioner`: partition key bytes → [`Token`], as Cassandra computes it.

use thiserror::Error;

use super::murmur3::murmur3_x64_128_h1;
use super::token::Token;

/// A partition key component longer than a composite key can encode (its length is a `u16`).
/// Cassandra rejects such a key; the scylla driver reports `TokenCalculationError::ValueTooLong`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "partition key component {index} is {len} bytes; a composite key component is at most 65535"
)]
pub struct KeyTooLong {
    /// Zero-based position of the offending component in the key.
    pub index: usize,
    /// Its length in bytes.
    pub len: usize,
}

/// Cassandra's default partitioner. Stateless; the methods are associated functions so call
/// sites read `Murmur3Partitioner::token(key)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Murmur3Partitioner;

impl Murmur3Partitioner {
    /// The class name drivers read from `system.local.partitioner` and table metadata.
    pub const CLASS_NAME: &'static str = "org.apache.cassandra.dht.Murmur3Partitioner";

    /// Token of an already serialised partition key (see [`serialize_partition_key`]).
    ///
    /// An empty key gets [`Token::MIN`], as Cassandra's `getToken` returns `MINIMUM` for a
    /// zero-length key. ScyllaDB differs: it hashes the empty key (giving token 0) because
    /// materialized views may have empty partition keys. We follow Cassandra; a CQL write
    /// with an empty partition key is rejected before it gets here anyway.
    #[inline]
    pub fn token(key: &[u8]) -> Token {
        if key.is_empty() {
            return Token::MIN;
        }
        Token::from_hash(murmur3_x64_128_h1(key))
    }

    /// Token of a key given as its components' serialised CQL values, in partition-key order.
    /// Hashes the [`serialize_partition_key`] layout.
    pub fn token_for_components(components: &[&[u8]]) -> Result<Token, KeyTooLong> {
        if let [single] = components {
            // The single-component layout is the raw bytes: skip the copy on the hot path.
            check_len(0, single)?;
            return Ok(Self::token(single));
        }
        serialize_partition_key(components).map(|key| Self::token(&key))
    }
}

/// Builds the partition key bytes that Cassandra hashes and stores, from the components'
/// serialised CQL values (in CREATE TABLE partition-key order).
///
/// * One component: its bytes, unchanged (no length, no trailer).
/// * Several (Cassandra `CompositeType`, Scylla `compound_compat.hh`), for each component:
///   `u16` big-endian length, the bytes, then one end-of-component byte `0x00`.
///   For `(int 1, text 'a')` that is `0004 00000001 00 0001 61 00`.
///
/// Zero components give an empty key. Any component over 65535 bytes is [`KeyTooLong`]:
/// a composite cannot encode its length, and Cassandra rejects a single-column key that long
/// too ("Key length of N is longer than maximum of 65535"). That Cassandra also caps the
/// *total* composite length is a write-path validation, not checked here.
pub fn serialize_partition_key(components: &[&[u8]]) -> Result<Vec<u8>, KeyTooLong> {
    if let [single] = components {
        check_len(0, single)?;
        return Ok(single.to_vec());
    }
    let total: usize = components.iter().map(|c| c.len() + 3).sum();
    let mut key = Vec::with_capacity(total);
    for (index, component) in components.iter().enumerate() {
        let len = check_len(index, component)?;
        key.extend_from_slice(&len.to_be_bytes());
        key.extend_from_slice(component);
        key.push(0x00);
    }
    Ok(key)
}

/// A component's length as the `u16` a composite key stores, or [`KeyTooLong`].
fn check_len(index: usize, component: &[u8]) -> Result<u16, KeyTooLong> {
    u16::try_from(component.len()).map_err(|_| KeyTooLong {
        index,
        len: component.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(bytes: &[u8]) -> i64 {
        Murmur3Partitioner::token(bytes).value()
    }

    fn composite(components: &[&[u8]]) -> i64 {
        Murmur3Partitioner::token_for_components(components)
            .map(Token::value)
            .unwrap_or_default()
    }

    /// scylla-rust-driver `test_murmur3_partitioner` (design §18.1).
    #[test]
    fn driver_vectors() {
        assert_eq!(token(b"test"), -6017608668500074083);
        assert_eq!(token(b"xd"), 4507812186440344727);
        assert_eq!(token(b"primary_key"), -1632642444691073360);
        assert_eq!(token("kremówki".as_bytes()), 4354931215268080151);
    }

    /// Vectors derived with an independent port of Cassandra's hash (design §18.1).
    #[test]
    fn typed_value_vectors() {
        assert_eq!(token(&1i32.to_be_bytes()), -4069959284402364209);
        assert_eq!(token(&0i32.to_be_bytes()), -3485513579396041028);
        assert_eq!(token(&1i64.to_be_bytes()), 6292367497774912474);
        assert_eq!(token(b"hello"), -3758069500696749310);
    }

    #[test]
    fn high_byte_tail_vector() {
        // 17 bytes 0x80..=0x90: one body block plus a 1-byte tail ≥ 0x80 (sign quirk).
        let key: Vec<u8> = (0x80u8..=0x90).collect();
        assert_eq!(token(&key), -3616694464407856223);
    }

    #[test]
    fn composite_vectors() {
        let one = 1i32.to_be_bytes();
        let key = serialize_partition_key(&[&one, b"a"]);
        assert_eq!(
            key.as_deref(),
            Ok(&[0, 4, 0, 0, 0, 1, 0, 0, 1, b'a', 0][..])
        );
        assert_eq!(composite(&[&one, b"a"]), 6516349416904725244);
        assert_eq!(composite(&[b"a", b"b"]), 7470152180878494447);
    }

    #[test]
    fn single_component_is_raw_bytes() {
        assert_eq!(
            serialize_partition_key(&[b"hello"]).as_deref(),
            Ok(&b"hello"[..])
        );
        assert_eq!(composite(&[b"hello"]), token(b"hello"));
    }

    #[test]
    fn empty_key_is_ring_minimum() {
        assert_eq!(Murmur3Partitioner::token(&[]), Token::MIN);
        assert_eq!(
            Murmur3Partitioner::token_for_components(&[]),
            Ok(Token::MIN)
        );
        // A composite of empty components is not an empty key: it has length bytes.
        assert_ne!(composite(&[b"", b""]), i64::MIN);
    }

    #[test]
    fn oversized_component_is_an_error() {
        let big = vec![7u8; 65536];
        let max = vec![7u8; 65535];
        assert_eq!(
            serialize_partition_key(&[b"a", &big]),
            Err(KeyTooLong {
                index: 1,
                len: 65536
            })
        );
        assert!(serialize_partition_key(&[&max, b"a"]).is_ok());
        // Cassandra rejects a single-column key that long as well.
        assert_eq!(
            Murmur3Partitioner::token_for_components(&[&big]),
            Err(KeyTooLong {
                index: 0,
                len: 65536
            })
        );
        assert!(Murmur3Partitioner::token_for_components(&[&max]).is_ok());
    }
}
