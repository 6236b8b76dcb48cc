//! Phi-accrual failure detection (Hayashibara et al.; Cassandra's `FailureDetector`).
//!
//! For each peer the detector keeps the intervals between the moments its heartbeat was
//! seen to advance. Treating arrivals as exponentially distributed with the observed mean,
//! the probability that a heartbeat is merely late after `t` silent seconds is `e^(-t/mean)`,
//! and phi is its negative base-10 logarithm: `phi = t / (mean · ln 10)`. A peer is convicted
//! when phi passes `phi_convict_threshold` (8 by default: after about 18 mean intervals).
//!
//! Two rules from Cassandra keep it honest. Intervals longer than twice the gossip interval
//! are not recorded, so a partition that heals does not teach the detector that long
//! silences are normal; a window starts with that interval as its only sample. And when this
//! node itself was paused (its own checks arrive far apart — a stopped process, a starved
//! machine), every peer looks silent for the length of the pause: convictions are suppressed
//! until the peers have had time to be heard again.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Samples kept per peer.
const WINDOW: usize = 1000;

/// Arrival intervals of one peer's heartbeats.
#[derive(Debug, Clone)]
struct Arrivals {
    last: Instant,
    intervals: VecDeque<f64>,
    sum: f64,
}

impl Arrivals {
    fn new(now: Instant, initial: f64) -> Arrivals {
        Arrivals {
            last: now,
            intervals: VecDeque::from([initial]),
            sum: initial,
        }
    }

    fn record(&mut self, now: Instant, max: f64) {
        let interval = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        if interval > max {
            return;
        }
        if self.intervals.len() == WINDOW {
            self.sum -= self.intervals.pop_front().unwrap_or(0.0);
        }
        self.intervals.push_back(interval);
        self.sum += interval;
    }

    fn mean(&self) -> f64 {
        self.sum / self.intervals.len().max(1) as f64
    }
}

/// The detector for every peer of one node.
#[derive(Debug, Clone)]
pub struct FailureDetector {
    threshold: f64,
    /// Twice the gossip interval, in seconds: the first sample, and the longest recorded.
    max_interval: f64,
    peers: HashMap<Uuid, Arrivals>,
    /// The last time this node ran a check, to notice its own pauses.
    last_check: Option<Instant>,
    /// No convictions before this instant (after a local pause).
    quiet_until: Option<Instant>,
}

impl FailureDetector {
    /// A detector convicting at `threshold`, for heartbeats gossiped every `interval`.
    pub fn new(threshold: f64, interval: Duration) -> FailureDetector {
        FailureDetector {
            threshold,
            max_interval: interval.as_secs_f64() * 2.0,
            peers: HashMap::new(),
            last_check: None,
            quiet_until: None,
        }
    }

    /// `peer`'s heartbeat was seen to advance at `now`.
    pub fn report(&mut self, peer: Uuid, now: Instant) {
        let max = self.max_interval;
        self.peers
            .entry(peer)
            .and_modify(|a| a.record(now, max))
            .or_insert_with(|| Arrivals::new(now, max));
    }

    /// `peer` restarted: its history says nothing about its new life.
    pub fn reset(&mut self, peer: Uuid, now: Instant) {
        self.peers
            .insert(peer, Arrivals::new(now, self.max_interval));
    }

    /// Stops watching `peer` (it left the cluster).
    pub fn forget(&mut self, peer: &Uuid) {
        self.peers.remove(peer);
    }

    /// `peer`'s phi at `now`; 0 for a peer never heard from.
    pub fn phi(&self, peer: &Uuid, now: Instant) -> f64 {
        let Some(arrivals) = self.peers.get(peer) else {
            return 0.0;
        };
        let silent = now.saturating_duration_since(arrivals.last).as_secs_f64();
        silent / (arrivals.mean() * std::f64::consts::LN_10)
    }

    /// Checks every peer at `now`: the ones whose phi passed the threshold. Call it at a
    /// steady rhythm (every gossip round): a gap between calls longer than a few rounds is
    /// taken as this node's own pause, and convictions wait until peers had time to be
    /// heard again.
    pub fn convicted(&mut self, now: Instant) -> Vec<Uuid> {
        let pause = self
            .last_check
            .map(|last| now.saturating_duration_since(last));
        self.last_check = Some(now);
        let paused_for = Duration::from_secs_f64(self.max_interval * 2.0);
        if pause.is_some_and(|p| p > paused_for) {
            tracing::warn!(pause = ?pause, "this node was paused; suspending convictions");
            self.quiet_until = Some(now + Duration::from_secs_f64(self.max_interval * 4.0));
            // The pause is not the peers' silence: count it from now.
            for arrivals in self.peers.values_mut() {
                arrivals.last = now;
            }
        }
        if self.quiet_until.is_some_and(|q| now < q) {
            return Vec::new();
        }
        let mut convicted: Vec<Uuid> = self
            .peers
            .keys()
            .filter(|peer| self.phi(peer, now) > self.threshold)
            .copied()
            .collect();
        convicted.sort();
        convicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Uuid {
        Uuid::from_bytes([7; 16])
    }

    /// A detector that heard `peer` every `every` for a minute, checked as gossip would.
    fn steady(every: Duration) -> (FailureDetector, Instant) {
        let mut fd = FailureDetector::new(8.0, Duration::from_millis(500));
        let start = Instant::now();
        let mut now = start;
        while now < start + Duration::from_secs(60) {
            fd.report(peer(), now);
            assert!(fd.convicted(now).is_empty());
            now += every;
        }
        (fd, now)
    }

    /// Checks every 500 ms from `from` with no heartbeat; the silence until conviction.
    fn silence_until_conviction(fd: &mut FailureDetector, from: Instant) -> Duration {
        let mut now = from;
        loop {
            now += Duration::from_millis(500);
            if !fd.convicted(now).is_empty() {
                return now - from;
            }
            assert!(now - from < Duration::from_secs(120), "never convicted");
        }
    }

    #[test]
    fn a_silent_peer_is_convicted_after_about_eighteen_mean_intervals() {
        let (mut fd, last) = steady(Duration::from_millis(500));
        let took = silence_until_conviction(&mut fd, last);
        // phi 8 = 8 · ln 10 ≈ 18.4 mean intervals of 0.5 s.
        assert!(
            took >= Duration::from_secs(9) && took <= Duration::from_millis(10_000),
            "{took:?}"
        );
    }

    #[test]
    fn phi_grows_with_silence_and_resets_on_a_heartbeat() {
        let (mut fd, last) = steady(Duration::from_millis(500));
        let later = last + Duration::from_secs(3);
        assert!(fd.phi(&peer(), later) > fd.phi(&peer(), last + Duration::from_secs(1)));
        fd.report(peer(), later);
        assert!(fd.phi(&peer(), later) < 0.01);
    }

    #[test]
    fn long_gaps_are_not_learned_as_normal() {
        let (mut fd, last) = steady(Duration::from_millis(500));
        // A 30 s partition heals: the gap itself must not inflate the mean.
        fd.report(peer(), last + Duration::from_secs(30));
        let took = silence_until_conviction(&mut fd, last + Duration::from_secs(30));
        assert!(took <= Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn a_local_pause_does_not_convict_everyone() {
        let (mut fd, last) = steady(Duration::from_millis(500));
        // This node stops for 20 s; the peer kept beating but nothing was processed.
        let resumed = last + Duration::from_secs(20);
        assert!(fd.convicted(resumed).is_empty(), "the pause is ours");
        fd.report(peer(), resumed + Duration::from_millis(100));
        assert!(fd
            .convicted(resumed + Duration::from_millis(500))
            .is_empty());
    }
}
