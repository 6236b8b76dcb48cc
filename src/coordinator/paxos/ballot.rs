//! Ballots as a coordinator makes them: strictly increasing, and above every ballot it has
//! been told of.

use std::sync::atomic::{AtomicI64, Ordering};

use uuid::Uuid;

use crate::replica::Ballot;

/// This coordinator's ballot source.
pub(super) struct BallotClock {
    /// The ballots' node bytes, from the node's host id: two coordinators' ballots of the
    /// same microsecond differ there.
    node: [u8; 8],
    /// The time of the last ballot made (µs).
    last: AtomicI64,
}

impl BallotClock {
    pub fn new(host_id: Uuid) -> BallotClock {
        let mut node = [0u8; 8];
        node.copy_from_slice(&host_id.as_bytes()[8..]);
        BallotClock {
            node,
            last: AtomicI64::new(i64::MIN),
        }
    }

    /// A ballot later in time than the clock, than every ballot this clock made before and
    /// than `seen` (µs: the newest ballot a replica answered with).
    pub fn next(&self, seen: i64) -> Ballot {
        self.next_at(crate::clock::now_micros(), seen)
    }

    fn next_at(&self, now: i64, seen: i64) -> Ballot {
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let micros = now.max(last.saturating_add(1)).max(seen.saturating_add(1));
            match self.last.compare_exchange_weak(
                last,
                micros,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ballot::new(micros, self.node),
                Err(current) => last = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_strictly_increase_even_when_the_clock_stalls_or_steps_back() {
        let clock = BallotClock::new(Uuid::from_u128(5));
        let a = clock.next_at(1_000, i64::MIN);
        let b = clock.next_at(1_000, i64::MIN);
        let c = clock.next_at(900, i64::MIN);
        assert!(a < b && b < c);
        assert_eq!((a.micros(), b.micros(), c.micros()), (1_000, 1_001, 1_002));
    }

    #[test]
    fn a_ballot_is_later_than_any_ballot_seen() {
        let clock = BallotClock::new(Uuid::from_u128(5));
        let seen = Ballot::new(5_000, [9; 8]);
        let next = clock.next_at(1_000, seen.micros());
        assert!(next > seen);
        assert_eq!(
            next.micros(),
            5_001,
            "strictly later in time, as replicas promise"
        );
    }

    #[test]
    fn two_coordinators_never_make_the_same_ballot() {
        let one = BallotClock::new(Uuid::from_u128(1));
        let two = BallotClock::new(Uuid::from_u128(2));
        let (a, b) = (one.next_at(7, i64::MIN), two.next_at(7, i64::MIN));
        assert_eq!(a.micros(), b.micros());
        assert_ne!(a, b);
    }
}
