//! Message ids: version-1 (time-based) UUIDs made by the poster, and the day bucket each
//! falls in.
//!
//! The poster makes the id, not the node's `now()`, because one post is written to several
//! threads and every copy must carry the same id. Ids from one generator strictly increase
//! (a clock that stalls or steps back borrows the next 100 ns tick), so a process never makes
//! two equal ids; different processes differ in the random clock sequence and node bits.

use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// 100-ns ticks from the Gregorian epoch (1582-10-15) to the Unix epoch.
const GREGORIAN_TO_UNIX_TICKS: u64 = 0x01B2_1DD2_1381_4000;
/// 100-ns ticks per millisecond.
const TICKS_PER_MS: u64 = 10_000;
/// Milliseconds per bucket: one UTC day (config/chat.cql says why).
pub const BUCKET_MS: i64 = 86_400_000;

/// Makes strictly increasing timeuuids for this process.
#[derive(Debug)]
pub struct TimeuuidGenerator {
    /// The last tick handed out (Gregorian 100-ns units).
    last: AtomicU64,
    /// Variant bits, clock sequence and node: random per generator, multicast bit set as
    /// RFC 4122 asks of a node id that is not a MAC address.
    tail: u64,
}

impl Default for TimeuuidGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl TimeuuidGenerator {
    /// A generator with a random clock sequence and node id.
    pub fn new() -> Self {
        let random: u64 = rand::random();
        let variant = 0x8000_0000_0000_0000u64;
        let multicast = 0x0000_0100_0000_0000u64;
        let tail = (random & 0x3FFF_FFFF_FFFF_FFFF) | variant | multicast;
        TimeuuidGenerator {
            last: AtomicU64::new(0),
            tail,
        }
    }

    /// A new id for the current time (or one tick after the last id, if that is later).
    pub fn now(&self) -> Uuid {
        let unix_ticks = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64 * 10);
        self.at_ticks(unix_ticks + GREGORIAN_TO_UNIX_TICKS)
    }

    /// A new id at `unix_ms` (for back-dated history), still strictly after every id this
    /// generator made before: ids are only increasing, so back-dating starts a new run of
    /// ids at the wanted time only if it is later than the last.
    pub fn at_unix_ms(&self, unix_ms: i64) -> Uuid {
        let ticks = (unix_ms.max(0) as u64) * TICKS_PER_MS + GREGORIAN_TO_UNIX_TICKS;
        self.at_ticks(ticks)
    }

    fn at_ticks(&self, wanted: u64) -> Uuid {
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = wanted.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return from_parts(next, self.tail),
                Err(seen) => last = seen,
            }
        }
    }
}

/// The v1 UUID with `ticks` (60 bits) and the given low 64 bits.
fn from_parts(ticks: u64, tail: u64) -> Uuid {
    let time_low = ticks & 0xFFFF_FFFF;
    let time_mid = (ticks >> 32) & 0xFFFF;
    let time_hi = ((ticks >> 48) & 0x0FFF) | 0x1000;
    let high = (time_low << 32) | (time_mid << 16) | time_hi;
    Uuid::from_u64_pair(high, tail)
}

/// Unix milliseconds of a version-1 UUID's timestamp (0 for other versions).
pub fn unix_ms(id: &Uuid) -> i64 {
    if id.get_version_num() != 1 {
        return 0;
    }
    let (high, _) = id.as_u64_pair();
    let time_low = high >> 32;
    let time_mid = (high >> 16) & 0xFFFF;
    let time_hi = high & 0x0FFF;
    let ticks = (time_hi << 48) | (time_mid << 32) | time_low;
    (ticks as i64 - GREGORIAN_TO_UNIX_TICKS as i64).div_euclid(TICKS_PER_MS as i64)
}

/// The bucket (UTC day since 1970-01-01) a message id falls in.
pub fn bucket_of(id: &Uuid) -> i32 {
    bucket_of_ms(unix_ms(id))
}

/// The bucket of a Unix time in milliseconds.
pub fn bucket_of_ms(unix_ms: i64) -> i32 {
    unix_ms.div_euclid(BUCKET_MS).clamp(0, i32::MAX as i64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_1_strictly_increasing_and_carry_their_time() {
        let g = TimeuuidGenerator::new();
        let a = g.at_unix_ms(1_700_000_000_123);
        let b = g.at_unix_ms(1_700_000_000_123);
        assert_eq!(a.get_version_num(), 1);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
        assert_eq!(unix_ms(&a), 1_700_000_000_123);
        assert_eq!(
            unix_ms(&b),
            1_700_000_000_123,
            "one tick later, same millisecond"
        );
        let ca = scylla::value::CqlTimeuuid::from(a);
        let cb = scylla::value::CqlTimeuuid::from(b);
        assert!(ca < cb, "Cassandra's timeuuid order follows creation");
        let now = g.now();
        assert!(unix_ms(&now) > 1_700_000_000_123);
    }

    #[test]
    fn buckets_are_utc_days() {
        assert_eq!(bucket_of_ms(0), 0);
        assert_eq!(bucket_of_ms(BUCKET_MS - 1), 0);
        assert_eq!(bucket_of_ms(BUCKET_MS), 1);
        let g = TimeuuidGenerator::new();
        // 2023-11-14 is day 19675 since the epoch.
        assert_eq!(bucket_of(&g.at_unix_ms(1_700_000_000_000)), 19_675);
        assert_eq!(bucket_of(&Uuid::nil()), 0);
    }
}
