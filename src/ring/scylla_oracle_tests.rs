//! Acceptance test: our tokens equal the scylla driver's for many random partition keys.
//!
//! The `scylla` crate is what token-aware clients actually run, so it is the oracle. Its
//! composite-key routine (`calculate_token_for_partition_key`) is `pub(crate)`, so the
//! oracle side below re-states its loop verbatim over the public `Murmur3PartitionerHasher`
//! and serialises every component with the driver's own `SerializeValue` impls. Our side
//! serialises values independently and goes through `serialize_partition_key`, so the test
//! checks value encoding, composite layout and hash together.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scylla::frame::response::result::{ColumnType, NativeType};
use scylla::routing::partitioner::{Murmur3Partitioner as Oracle, Partitioner, PartitionerHasher};
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::CellWriter;
use uuid::Uuid;

use super::{serialize_partition_key, Murmur3Partitioner, Token};

/// One partition key component of a CQL type, before serialisation.
#[derive(Debug, Clone)]
enum Value {
    Int(i32),
    BigInt(i64),
    Text(String),
    Blob(Vec<u8>),
    Uuid(Uuid),
}

impl Value {
    fn random(rng: &mut StdRng) -> Value {
        match rng.random_range(0..5) {
            0 => Value::Int(rng.random()),
            1 => Value::BigInt(rng.random()),
            2 => Value::Text(random_text(rng)),
            3 => {
                let len = rng.random_range(0..40);
                Value::Blob(random_bytes(rng, len))
            }
            _ => Value::Uuid(Uuid::from_u128(rng.random())),
        }
    }

    /// Our serialisation: CQL's value encodings, written independently of the driver.
    fn ours(&self) -> Vec<u8> {
        match self {
            Value::Int(v) => v.to_be_bytes().to_vec(),
            Value::BigInt(v) => v.to_be_bytes().to_vec(),
            Value::Text(s) => s.as_bytes().to_vec(),
            Value::Blob(b) => b.clone(),
            Value::Uuid(u) => u.as_bytes().to_vec(),
        }
    }

    /// The driver's serialisation, through its `SerializeValue` impls.
    fn driver(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let writer = CellWriter::new_without_size(&mut buf);
        let native = |t| ColumnType::Native(t);
        let written = match self {
            Value::Int(v) => v.serialize(&native(NativeType::Int), writer),
            Value::BigInt(v) => v.serialize(&native(NativeType::BigInt), writer),
            Value::Text(s) => s.serialize(&native(NativeType::Text), writer),
            Value::Blob(b) => b.serialize(&native(NativeType::Blob), writer),
            Value::Uuid(u) => u.serialize(&native(NativeType::Uuid), writer),
        };
        written.expect("driver serialises a valid value");
        buf
    }
}

/// Text mixing ASCII with 2-, 3- and 4-byte UTF-8 sequences, so tails hold bytes ≥ 0x80.
fn random_text(rng: &mut StdRng) -> String {
    const POOL: &[char] = &['a', 'z', '0', ' ', 'ó', 'ł', 'é', '€', '中', '🦀'];
    let len = rng.random_range(0..20);
    (0..len)
        .map(|_| POOL[rng.random_range(0..POOL.len())])
        .collect()
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    // Half the keys use only bytes ≥ 0x80, where the sign-extension quirk bites hardest.
    let high_only = rng.random_bool(0.5);
    (0..len)
        .map(|_| {
            let b: u8 = rng.random();
            if high_only {
                b | 0x80
            } else {
                b
            }
        })
        .collect()
}

/// The driver's `calculate_token_for_partition_key`, restated over its public hasher.
/// Also returns the bytes it fed, so the layout itself can be compared.
fn oracle_token(components: &[Vec<u8>]) -> (i64, Vec<u8>) {
    let mut hasher = Oracle.build_hasher();
    let mut fed = Vec::new();
    let mut write = |chunk: &[u8]| {
        hasher.write(chunk);
        fed.extend_from_slice(chunk);
    };
    if let [single] = components {
        write(single);
    } else {
        for value in components {
            let len = u16::try_from(value.len()).expect("test values are short");
            write(&len.to_be_bytes());
            write(value);
            write(&[0u8]);
        }
    }
    (hasher.finish().value(), fed)
}

#[test]
fn raw_keys_match_scylla_driver() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    let mut tail_lengths_seen = [0usize; 16];
    let mut checked = 0;
    // Lengths 1..=80: every tail length 0..=15 with 0 to 5 body blocks in front of it.
    for i in 0..10_400 {
        let len = 1 + i % 80;
        let key = random_bytes(&mut rng, len);
        let ours = Murmur3Partitioner::token(&key).value();
        assert_eq!(ours, Oracle.hash_one(&key).value(), "key {key:02x?}");
        tail_lengths_seen[len % 16] += 1;
        checked += 1;
    }
    assert!(tail_lengths_seen.iter().all(|&n| n >= 600));
    println!("raw keys checked against the scylla crate: {checked}");
}

#[test]
fn typed_and_composite_keys_match_scylla_driver() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    let mut checked = 0;
    for _ in 0..10_500 {
        let arity = rng.random_range(1..=4);
        let values: Vec<Value> = (0..arity).map(|_| Value::random(&mut rng)).collect();
        let driver_bytes: Vec<Vec<u8>> = values.iter().map(Value::driver).collect();
        let our_bytes: Vec<Vec<u8>> = values.iter().map(Value::ours).collect();
        assert_eq!(our_bytes, driver_bytes, "value encoding of {values:?}");

        let (expected, fed) = oracle_token(&driver_bytes);
        let refs: Vec<&[u8]> = our_bytes.iter().map(Vec::as_slice).collect();
        let key = serialize_partition_key(&refs).expect("components are short");
        if key.is_empty() {
            // A lone empty text/blob: Cassandra says MIN, Scylla and its driver hash it.
            assert_eq!(Murmur3Partitioner::token(&key), Token::MIN);
            continue;
        }
        assert_eq!(key, fed, "composite layout of {values:?}");
        let ours = Murmur3Partitioner::token_for_components(&refs).map(Token::value);
        assert_eq!(ours, Ok(expected), "token of {values:?}");
        checked += 1;
    }
    assert!(checked >= 10_000);
    println!("typed/composite keys checked against the scylla crate: {checked}");
}

#[test]
fn empty_key_is_where_cassandra_and_scylla_differ() {
    assert_eq!(Murmur3Partitioner::token(&[]), Token::MIN);
    assert_eq!(Oracle.hash_one(&[]).value(), 0);
}
