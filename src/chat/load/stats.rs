//! Per-access-pattern counters and latencies of a load run.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The access patterns a load run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Get or create a user.
    Login,
    /// Create a thread (IF NOT EXISTS).
    CreateThread,
    /// Follow a thread.
    Follow,
    /// List a user's followed threads.
    FollowedThreads,
    /// Post a message to its threads.
    Post,
    /// Latest page of a thread.
    Latest,
    /// Older page, before a message id.
    Older,
    /// Catch-up after a message id.
    CatchUp,
}

impl Pattern {
    /// Every pattern, in report order.
    pub const ALL: [Pattern; 8] = [
        Pattern::Login,
        Pattern::CreateThread,
        Pattern::Follow,
        Pattern::FollowedThreads,
        Pattern::Post,
        Pattern::Latest,
        Pattern::Older,
        Pattern::CatchUp,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Login => "login",
            Pattern::CreateThread => "create_thread",
            Pattern::Follow => "follow",
            Pattern::FollowedThreads => "followed_threads",
            Pattern::Post => "post",
            Pattern::Latest => "history_latest",
            Pattern::Older => "history_older",
            Pattern::CatchUp => "catch_up",
        }
    }
}

/// Live counters, shared by the workers.
#[derive(Debug, Default)]
pub(super) struct Stats {
    latencies: [Mutex<Vec<u32>>; 8],
    errors: [AtomicU64; 8],
}

impl Stats {
    /// Records one operation's outcome.
    pub fn record(&self, pattern: Pattern, took: Duration, ok: bool) {
        let i = pattern as usize;
        if ok {
            let us = took.as_micros().min(u32::MAX as u128) as u32;
            if let Some(v) = self.latencies.get(i) {
                v.lock().unwrap_or_else(|p| p.into_inner()).push(us);
            }
        } else if let Some(e) = self.errors.get(i) {
            e.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Successful and failed operations so far.
    pub fn totals(&self) -> (u64, u64) {
        let ok = self
            .latencies
            .iter()
            .map(|v| v.lock().unwrap_or_else(|p| p.into_inner()).len() as u64)
            .sum();
        let errors = self.errors.iter().map(|e| e.load(Ordering::Relaxed)).sum();
        (ok, errors)
    }

    /// The summary of each pattern that ran.
    pub fn summaries(&self) -> Vec<PatternSummary> {
        Pattern::ALL
            .iter()
            .filter_map(|&p| {
                let i = p as usize;
                let mut v = self.latencies.get(i)?.lock().ok()?.clone();
                let errors = self.errors.get(i)?.load(Ordering::Relaxed);
                if v.is_empty() && errors == 0 {
                    return None;
                }
                v.sort_unstable();
                Some(PatternSummary {
                    name: p.name(),
                    ops: v.len() as u64,
                    errors,
                    p50_us: percentile(&v, 0.50),
                    p99_us: percentile(&v, 0.99),
                })
            })
            .collect()
    }
}

/// The `q` quantile (nearest rank) of `sorted`; 0 when empty.
pub fn percentile(sorted: &[u32], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or(0) as u64
}

/// One access pattern's numbers at the end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternSummary {
    /// The pattern's name.
    pub name: &'static str,
    /// Operations that succeeded.
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Median latency of the successful ones, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub p99_us: u64,
}

impl fmt::Display for PatternSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<18} {:>9} {:>7} {:>10.2} {:>10.2}",
            self.name,
            self.ops,
            self.errors,
            self.p50_us as f64 / 1000.0,
            self.p99_us as f64 / 1000.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_summaries() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
        let s = Stats::default();
        s.record(Pattern::Post, Duration::from_micros(10), true);
        s.record(Pattern::Post, Duration::from_micros(30), false);
        assert_eq!(s.totals(), (1, 1));
        let sums = s.summaries();
        assert_eq!(sums.len(), 1);
        assert_eq!((sums[0].name, sums[0].ops, sums[0].errors), ("post", 1, 1));
    }
}
