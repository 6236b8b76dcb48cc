//! When this node was last alive, so that a restarted node knows how long it was down.
//!
//! A running node rewrites `<data_dir>/alive` (the wall clock in milliseconds) every
//! [`PERIOD`]; at start, before rewriting it, the node reads the previous value. A node that
//! was down longer than `max_hint_window_ms` missed writes no coordinator kept a hint for,
//! and Cassandra leaves it to the operator to notice; ringcache tells the node itself (a
//! warning at start, and "Needs repair" in its `ringcache status`) until a repair of every
//! table has reached it. The file is replaced by rename but not synced: a killed process
//! leaves it in the page cache, and a machine crash costs at most a stale value (a longer
//! downtime, so a warning too many, never one too few).

use std::path::Path;
use std::time::Duration;

/// How often a running node records that it is alive.
pub const PERIOD: Duration = Duration::from_secs(10);

const FILE: &str = "alive";

/// How long the node was down before this start: now minus the last time its previous life
/// recorded being alive. `None` on a first start (or when the record cannot be read).
pub fn downtime(data_dir: &Path, now_ms: u64) -> Option<Duration> {
    let text = std::fs::read_to_string(data_dir.join(FILE)).ok()?;
    let last: u64 = text.trim().parse().ok()?;
    Some(Duration::from_millis(now_ms.saturating_sub(last)))
}

/// Records that this node is alive at `now_ms`.
pub fn record(data_dir: &Path, now_ms: u64) -> std::io::Result<()> {
    let path = data_dir.join(FILE);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, now_ms.to_string())?;
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downtime_is_now_minus_the_last_record() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(downtime(dir.path(), 5_000), None, "a first start");
        record(dir.path(), 1_000).unwrap();
        record(dir.path(), 2_000).unwrap();
        assert_eq!(downtime(dir.path(), 62_000), Some(Duration::from_secs(60)));
        // A clock that stepped back reads as no downtime, not a panic.
        assert_eq!(downtime(dir.path(), 10), Some(Duration::ZERO));
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert_eq!(downtime(dir.path(), 5_000), None);
    }
}
