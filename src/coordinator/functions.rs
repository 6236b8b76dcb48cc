//! CQL's native scalar functions as selectors — `now()`, `uuid()`, `toTimestamp(...)`,
//! `currentTimestamp()`, `minTimeuuid(...)` and their kin — with Cassandra's result types,
//! column names and time arithmetic, and the node's time-based UUID generator.
//!
//! Time-based UUIDs (version 1) carry a 60-bit count of 100 ns intervals since the
//! Gregorian calendar's start (1582-10-15). The generator hands out strictly increasing
//! counts, so two `now()` calls on one node never collide and sort in call order; the clock
//! sequence and node bytes are random per process, as the UUID spec allows when no MAC
//! address is used.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use bytes::Bytes;

use crate::cql::types::{CqlType, NativeType};
use crate::error::{Error, Result};

/// 100 ns intervals between 1582-10-15 and 1970-01-01.
const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;
/// The lowest clock-sequence-and-node bytes (Cassandra compares them as signed bytes).
const MIN_CLOCK_SEQ_AND_NODE: [u8; 8] = [0x80; 8];
/// The highest, likewise.
const MAX_CLOCK_SEQ_AND_NODE: [u8; 8] = [0x7f; 8];
/// `date` values count days from 2^31 = 1970-01-01.
const EPOCH_DAY: i64 = 1 << 31;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// A native function usable in a select clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Function {
    Now,
    Uuid,
    CurrentTimestamp,
    CurrentDate,
    CurrentTime,
    ToTimestamp,
    ToDate,
    ToUnixTimestamp,
    MinTimeuuid,
    MaxTimeuuid,
}

impl Function {
    /// The function called `name` taking arguments of `args`, and its result type.
    pub fn resolve(name: &str, args: &[CqlType]) -> Result<(Function, CqlType)> {
        use NativeType as N;
        let native = |t: &CqlType| match t {
            CqlType::Native(n) => Some(*n),
            _ => None,
        };
        let arg = args.first().and_then(native);
        let (function, result) = match (name, args.len(), arg) {
            ("now" | "currenttimeuuid", 0, _) => (Function::Now, N::Timeuuid),
            ("uuid", 0, _) => (Function::Uuid, N::Uuid),
            ("currenttimestamp", 0, _) => (Function::CurrentTimestamp, N::Timestamp),
            ("currentdate", 0, _) => (Function::CurrentDate, N::Date),
            ("currenttime", 0, _) => (Function::CurrentTime, N::Time),
            ("totimestamp", 1, Some(N::Timeuuid | N::Date)) => {
                (Function::ToTimestamp, N::Timestamp)
            }
            ("todate", 1, Some(N::Timeuuid | N::Timestamp)) => (Function::ToDate, N::Date),
            ("tounixtimestamp", 1, Some(N::Timeuuid | N::Timestamp | N::Date)) => {
                (Function::ToUnixTimestamp, N::Bigint)
            }
            ("mintimeuuid", 1, Some(N::Timestamp)) => (Function::MinTimeuuid, N::Timeuuid),
            ("maxtimeuuid", 1, Some(N::Timestamp)) => (Function::MaxTimeuuid, N::Timeuuid),
            ("min" | "max" | "sum" | "avg", _, _) => {
                return Err(Error::not_supported(
                    format_args!("Aggregate function {name}()"),
                    Some(" (count(*) is)"),
                ))
            }
            _ => {
                let types: Vec<String> = args.iter().map(|t| t.to_string()).collect();
                return Err(Error::invalid(format!(
                    "Unknown function {name}({}) or invalid argument types",
                    types.join(", ")
                )));
            }
        };
        Ok((function, CqlType::Native(result)))
    }

    /// Applies the function; `arg` is the serialized argument (for one-argument functions)
    /// and `arg_type` its type.
    pub fn call(self, arg: Option<&[u8]>, arg_type: Option<&CqlType>) -> Result<Option<Bytes>> {
        let now_ms = crate::clock::now_micros() / 1000;
        let out = match self {
            Function::Now => Some(timeuuid_bytes(next_timeuuid_ticks()).to_vec()),
            Function::Uuid => Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
            Function::CurrentTimestamp => Some(now_ms.to_be_bytes().to_vec()),
            Function::CurrentDate => Some(date_of_millis(now_ms).to_be_bytes().to_vec()),
            Function::CurrentTime => {
                let nanos = now_ms.rem_euclid(MILLIS_PER_DAY) * 1_000_000;
                Some(nanos.to_be_bytes().to_vec())
            }
            Function::ToTimestamp | Function::ToUnixTimestamp => {
                millis_of(arg, arg_type)?.map(|ms| ms.to_be_bytes().to_vec())
            }
            Function::ToDate => {
                millis_of(arg, arg_type)?.map(|ms| date_of_millis(ms).to_be_bytes().to_vec())
            }
            Function::MinTimeuuid | Function::MaxTimeuuid => {
                let Some(ms) = millis_of(arg, arg_type)? else {
                    return Ok(None);
                };
                // The first and the last 100 ns tick of the millisecond (Cassandra's
                // UUIDGen.minTimeUUID / maxTimeUUID).
                let (ticks, tail) = match self {
                    Function::MinTimeuuid => (ticks_of_millis(ms), MIN_CLOCK_SEQ_AND_NODE),
                    _ => (
                        ticks_of_millis(ms.saturating_add(1)).saturating_sub(1),
                        MAX_CLOCK_SEQ_AND_NODE,
                    ),
                };
                let mut bytes = timeuuid_bytes(ticks);
                bytes[8..].copy_from_slice(&tail);
                Some(bytes.to_vec())
            }
        };
        Ok(out.map(Bytes::from))
    }
}

/// Milliseconds since the epoch of a timeuuid, timestamp or date value.
fn millis_of(arg: Option<&[u8]>, ty: Option<&CqlType>) -> Result<Option<i64>> {
    let Some(bytes) = arg.filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let bad = || Error::invalid("Invalid argument value for a time function");
    let ms = match ty {
        Some(CqlType::Native(NativeType::Timeuuid)) => {
            let b: [u8; 16] = bytes.try_into().map_err(|_| bad())?;
            millis_of_ticks(ticks_of_timeuuid(&b))
        }
        Some(CqlType::Native(NativeType::Timestamp)) => {
            i64::from_be_bytes(bytes.try_into().map_err(|_| bad())?)
        }
        Some(CqlType::Native(NativeType::Date)) => {
            let days = i64::from(u32::from_be_bytes(bytes.try_into().map_err(|_| bad())?));
            (days - EPOCH_DAY) * MILLIS_PER_DAY
        }
        _ => return Err(bad()),
    };
    Ok(Some(ms))
}

fn date_of_millis(ms: i64) -> u32 {
    (ms.div_euclid(MILLIS_PER_DAY) + EPOCH_DAY).clamp(0, i64::from(u32::MAX)) as u32
}

fn ticks_of_millis(ms: i64) -> u64 {
    (ms as i128 * 10_000 + i128::from(GREGORIAN_OFFSET)).clamp(0, (1i128 << 60) - 1) as u64
}

fn millis_of_ticks(ticks: u64) -> i64 {
    ((i128::from(ticks) - i128::from(GREGORIAN_OFFSET)) / 10_000) as i64
}

fn ticks_of_timeuuid(b: &[u8; 16]) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ts() -> CqlType {
        CqlType::Native(NativeType::Timestamp)
    }

    #[test]
    fn now_is_a_version_1_uuid_increasing_in_time() {
        let a = Function::Now.call(None, None).expect("now").expect("value");
        let b = Function::Now.call(None, None).expect("now").expect("value");
        let u = uuid::Uuid::from_slice(&a).expect("uuid");
        assert_eq!(u.get_version_num(), 1);
        let ta = ticks_of_timeuuid(&a[..].try_into().expect("16"));
        let tb = ticks_of_timeuuid(&b[..].try_into().expect("16"));
        assert!(tb > ta);
        let ms = millis_of_ticks(ta);
        assert!((ms - crate::clock::now_micros() / 1000).abs() < 5_000);
    }

    #[test]
    fn min_and_max_timeuuid_bracket_every_uuid_of_their_millisecond() {
        let ms = 1_700_000_000_123i64.to_be_bytes();
        let min = Function::MinTimeuuid
            .call(Some(&ms), Some(&ts()))
            .expect("min")
            .expect("v");
        let max = Function::MaxTimeuuid
            .call(Some(&ms), Some(&ts()))
            .expect("max")
            .expect("v");
        assert_eq!(&min[8..], &[0x80; 8]);
        assert_eq!(&max[8..], &[0x7f; 8]);
        let ticks = |b: &Bytes| ticks_of_timeuuid(&b[..].try_into().expect("16"));
        assert_eq!(ticks(&max), ticks(&min) + 9_999);
        let back = Function::ToUnixTimestamp
            .call(Some(&min), Some(&CqlType::Native(NativeType::Timeuuid)))
            .expect("unix")
            .expect("v");
        assert_eq!(&back[..], &ms);
    }

    #[test]
    fn dates_and_timestamps_convert_like_cassandra() {
        // 2021-01-01 is day 18628 after the epoch.
        let ms = (18_628i64 * MILLIS_PER_DAY).to_be_bytes();
        let date = Function::ToDate
            .call(Some(&ms), Some(&ts()))
            .expect("date")
            .expect("v");
        assert_eq!(&date[..], &((1u32 << 31) + 18_628).to_be_bytes());
        let back = Function::ToTimestamp
            .call(Some(&date), Some(&CqlType::Native(NativeType::Date)))
            .expect("ts")
            .expect("v");
        assert_eq!(&back[..], &ms);
        assert!(Function::resolve("totimestamp", &[CqlType::Native(NativeType::Int)]).is_err());
    }
}
