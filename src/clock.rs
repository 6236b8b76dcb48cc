//! The node's wall clock, in the units Cassandra's data model uses: microseconds for write
//! timestamps and `writetime()`, seconds for TTL expiry and `gc_grace_seconds`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch by the system clock (0 if the clock reads earlier).
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Seconds since the Unix epoch, the unit of TTL expiry, clamped into `u32`.
pub fn now_secs() -> u32 {
    (now_micros() / 1_000_000).clamp(0, i64::from(u32::MAX)) as u32
}
