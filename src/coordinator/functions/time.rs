//! Time arithmetic of the time functions: timeuuid time counts, days, milliseconds, and the
//! node's time-based UUID generator.
//!
//! Time-based UUIDs (version 1) carry a 60-bit count of 100 ns intervals since the
//! Gregorian calendar's start (1582-10-15). The generator hands out strictly increasing
//! counts, so two `now()` calls on one node never collide and sort in call order; the clock
//! sequence and node bytes are random per process, as the UUID spec allows when no MAC
//! address is used.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::cql::types::NativeType;

/// 100 ns intervals between 1582-10-15 and 1970-01-01.
const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;
/// The lowest clock-sequence-and-node bytes (Cassandra compares them as signed bytes).
pub(super) const MIN_CLOCK_SEQ_AND_NODE: [u8; 8] = [0x80; 8];
/// The highest, likewise.
pub(super) const MAX_CLOCK_SEQ_AND_NODE: [u8; 8] = [0x7f; 8];
/// `date` values count days from 2^31 = 1970-01-01.
pub(super) const EPOCH_DAY: i64 = 1 << 31;
pub(super) const MILLIS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the epoch of a serialized timeuuid, timestamp or date; None when the
/// value is malformed for its type.
pub(super) fn millis_of(bytes: &[u8], ty: NativeType) -> Option<i64> {
    Some(match ty {
        NativeType::Timeuuid => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            millis_of_ticks(ticks_of_timeuuid(&b))
        }
        NativeType::Timestamp => i64::from_be_bytes(bytes.try_into().ok()?),
        NativeType::Date => {
            let days = i64::from(u32::from_be_bytes(bytes.try_into().ok()?));
            (days - EPOCH_DAY) * MILLIS_PER_DAY
        }
        _ => return None,
    })
}

/// The `date` (days from 2^31) holding the instant `ms`.
pub(super) fn date_of_millis(ms: i64) -> u32 {
    (ms.div_euclid(MILLIS_PER_DAY) + EPOCH_DAY).clamp(0, i64::from(u32::MAX)) as u32
}

/// The time count (100 ns ticks since 1582-10-15) of the instant `ms`, clamped to 60 bits.
pub(super) fn ticks_of_millis(ms: i64) -> u64 {
    (ms as i128 * 10_000 + i128::from(GREGORIAN_OFFSET)).clamp(0, (1i128 << 60) - 1) as u64
}

/// The instant (ms since the epoch) of a time count, truncated to the millisecond.
pub(super) fn millis_of_ticks(ticks: u64) -> i64 {
    ((i128::from(ticks) - i128::from(GREGORIAN_OFFSET)) / 10_000) as i64
}

/// The time count a version-1 UUID carries.
pub(super) fn ticks_of_timeuuid(b: &[u8; 16]) -> u64 {
    let low = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let mid = u64::from(u16::from_be_bytes([b[4], b[5]]));
    let high = u64::from(u16::from_be_bytes([b[6], b[7]]) & 0x0fff);
    (high << 48) | (mid << 32) | low
}

/// The version-1 UUID with time `ticks` and this process's clock sequence and node.
pub(crate) fn timeuuid_bytes(ticks: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[0..4].copy_from_slice(&(ticks as u32).to_be_bytes());
    out[4..6].copy_from_slice(&((ticks >> 32) as u16).to_be_bytes());
    out[6..8].copy_from_slice(&((((ticks >> 48) as u16) & 0x0fff) | 0x1000).to_be_bytes());
    out[8..].copy_from_slice(&clock_seq_and_node());
    out
}

/// Cassandra's list reference time, 2010-01-01 (`Lists.PrecisionTime.REFERENCE_TIME`).
const LIST_REFERENCE_MS: i64 = 1_262_304_000_000;

/// The time count of the next list prepend's element path: the next time count mirrored
/// around the reference time, so each is smaller than the one before and than any
/// append's.
pub(crate) fn prepend_timeuuid_ticks() -> u64 {
    let reference = ticks_of_millis(LIST_REFERENCE_MS);
    (2 * reference).saturating_sub(next_timeuuid_ticks())
}

/// A strictly increasing time count for the next time-based UUID.
pub(crate) fn next_timeuuid_ticks() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = ticks_of_millis(0) + (crate::clock::now_micros().max(0) as u64) * 10;
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

fn clock_seq_and_node() -> [u8; 8] {
    static BYTES: OnceLock<[u8; 8]> = OnceLock::new();
    *BYTES.get_or_init(|| {
        let mut b: [u8; 8] = rand::random();
        b[0] = (b[0] & 0x3f) | 0x80; // RFC 4122 variant
        b[2] |= 0x01; // multicast bit: a random node id, not a MAC address
        b
    })
}

/// The proleptic Gregorian (year, month, day) of a day count from 1970-01-01.
pub(super) fn civil_of_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
