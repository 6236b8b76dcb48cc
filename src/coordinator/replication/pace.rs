//! A byte rate shared by the tasks that stream data to other nodes (a repair's or a move's
//! writes, `stream_throughput_mib_per_sec`, Cassandra's `stream_throughput_outbound`): each
//! send reserves the time its bytes take at the rate, after every earlier reservation, and
//! waits until its own begins. Over any interval the bytes sent are then at most the rate's
//! share of it plus one send, however many tasks send at once; no sleep is a guess.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A rate limit in bytes per second (none when 0).
pub struct Pacer {
    bytes_per_sec: u64,
    /// When the next reservation may begin.
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(bytes_per_sec: u64) -> Pacer {
        Pacer {
            bytes_per_sec,
            next: Mutex::new(None),
        }
    }

    /// Waits until `bytes` may be sent.
    pub async fn pace(&self, bytes: u64) {
        if let Some(start) = self.reserve(Instant::now(), bytes) {
            tokio::time::sleep_until(start).await;
        }
    }

    /// Reserves the time `bytes` take, at `now` or after the last reservation: when it
    /// begins (None without a limit).
    fn reserve(&self, now: Instant, bytes: u64) -> Option<Instant> {
        if self.bytes_per_sec == 0 {
            return None;
        }
        let mut next = self.next.lock().expect("pacer");
        let start = next.map_or(now, |n| n.max(now));
        *next = Some(start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64));
        Some(start)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::Pacer;

    #[test]
    fn sends_begin_when_the_bytes_before_them_have_had_their_time() {
        let pacer = Pacer::new(4 << 20);
        let t0 = Instant::now();
        let starts: Vec<Duration> = (0..5)
            .map(|_| pacer.reserve(t0, 1 << 20).expect("limited") - t0)
            .collect();
        let quarter = Duration::from_millis(250);
        assert_eq!(
            starts,
            vec![
                Duration::ZERO,
                quarter,
                quarter * 2,
                quarter * 3,
                quarter * 4
            ]
        );
        // After an idle second, a send goes at once: idle time is not saved up.
        let later = t0 + Duration::from_secs(3);
        assert_eq!(pacer.reserve(later, 1 << 20), Some(later));
        assert_eq!(pacer.reserve(later, 1 << 20), Some(later + quarter));
    }

    #[test]
    fn zero_is_no_limit() {
        assert_eq!(Pacer::new(0).reserve(Instant::now(), 1 << 30), None);
    }
}
