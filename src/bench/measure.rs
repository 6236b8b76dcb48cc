//! Closed-loop throughput and open-loop latency.
//!
//! Throughput is measured closed-loop: `concurrency` workers each send a request as soon as
//! their previous one is answered, so the rate is whatever the target sustains. Latency is
//! measured open-loop: requests are *scheduled* at a fixed rate, whatever the target is
//! doing, and each latency counts from the moment its request was due, not from when it was
//! sent. A closed loop hides queueing (a slow answer delays the next request instead of
//! showing up in its latency — coordinated omission), so its percentiles are mostly the
//! inverse of its throughput; the open loop's are what a client arriving at that rate sees.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scylla::client::session::Session;
use serde::Serialize;

use super::workload::{Op, Requests};
use crate::chat::load::percentile;

/// Open-loop requests in flight beyond which new ones are counted as missed instead of
/// sent: a target that falls this far behind is overloaded, and the run says so.
const MAX_OUTSTANDING: u64 = 65_536;

/// What one measured phase did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// Requests answered successfully.
    pub ops: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Open loop: requests not sent because too many were outstanding.
    pub missed: u64,
    /// Reads and writes among `ops`.
    pub reads: u64,
    pub writes: u64,
    /// Length of the phase in seconds.
    pub seconds: f64,
    /// `ops / seconds`.
    pub throughput: f64,
    /// Open loop: the rate requests were scheduled at (requests per second).
    pub scheduled_rate: Option<f64>,
    /// Latency percentiles in microseconds.
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// CPU time per answered request, in microseconds: the measured node's (from its
    /// `process_cpu_seconds_total`; None when it has no such metric, as the bare
    /// responder, which runs inside the benchmark's own process), and the benchmark
    /// process's own (the load generator, plus the bare responder when that is measured).
    pub node_cpu_us_per_op: Option<f64>,
    pub bench_cpu_us_per_op: f64,
}

/// Live counters a progress line reads.
#[derive(Debug, Default)]
pub struct Live {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
}

/// Latencies and counts gathered by the workers of a phase.
#[derive(Default)]
struct Gathered {
    latencies: Vec<u32>,
    errors: u64,
    reads: u64,
    writes: u64,
}

impl Gathered {
    fn record(&mut self, took: Duration, outcome: Result<Op, String>, live: &Live) {
        match outcome {
            Ok(op) => {
                self.latencies.push(micros(took));
                match op {
                    Op::Read => self.reads += 1,
                    Op::Write => self.writes += 1,
                }
                live.ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                if self.errors == 0 {
                    tracing::warn!(%error, "bench request failed");
                }
                self.errors += 1;
                live.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn merge(&mut self, other: Gathered) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.reads += other.reads;
        self.writes += other.writes;
    }

    fn into_phase(mut self, elapsed: Duration, scheduled_rate: Option<f64>, missed: u64) -> Phase {
        self.latencies.sort_unstable();
        let at = |q: f64| percentile(&self.latencies, q);
        let ops = self.latencies.len() as u64;
        let seconds = elapsed.as_secs_f64();
        Phase {
            ops,
            errors: self.errors,
            missed,
            reads: self.reads,
            writes: self.writes,
            seconds,
            throughput: ops as f64 / seconds.max(f64::EPSILON),
            scheduled_rate,
            p50_us: at(0.50),
            p95_us: at(0.95),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: self.latencies.last().copied().map_or(0, u64::from),
            // Filled in by the caller, which reads the CPU clocks around the phase.
            node_cpu_us_per_op: None,
            bench_cpu_us_per_op: 0.0,
        }
    }
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

/// `concurrency` workers, each with one request in flight, for `duration`.
pub async fn closed_loop(
    session: Arc<Session>,
    requests: Arc<Requests>,
    concurrency: usize,
    duration: Duration,
    seed: u64,
    live: Arc<Live>,
) -> Phase {
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|worker| {
            let (session, requests, live) = (session.clone(), requests.clone(), live.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(worker as u64));
                let mut gathered = Gathered::default();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let outcome = requests.send(&session, &mut rng).await;
                    gathered.record(sent.elapsed(), outcome, &live);
                }
                gathered
            })
        })
        .collect();
    let mut all = Gathered::default();
    for worker in workers {
        if let Ok(gathered) = worker.await {
            all.merge(gathered);
        }
    }
    all.into_phase(started.elapsed(), None, 0)
}

/// Requests scheduled at `rate` per second for `duration`, each timed from when it was due.
///
/// The schedule is kept by a thread of its own that sleeps until each request is due and
/// hands it to the runtime: the runtime's timer ticks in milliseconds, which at tens of
/// thousands of requests a second would release them in bursts and charge the burst's wait
/// to the target.
pub async fn open_loop(
    session: Arc<Session>,
    requests: Arc<Requests>,
    rate: f64,
    duration: Duration,
    seed: u64,
    live: Arc<Live>,
) -> Phase {
    let rate = rate.max(1.0);
    let gathered = Arc::new(Mutex::new(Gathered::default()));
    let outstanding = Arc::new(AtomicU64::new(0));
    let total = (rate * duration.as_secs_f64()) as u64;
    let runtime = tokio::runtime::Handle::current();
    let pacer = {
        let (gathered, outstanding) = (gathered.clone(), outstanding.clone());
        std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed);
            let started = Instant::now();
            let mut missed = 0u64;
            for issued in 0..total {
                let due_at = started + Duration::from_secs_f64(issued as f64 / rate);
                if let Some(wait) = due_at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if outstanding.load(Ordering::Relaxed) >= MAX_OUTSTANDING {
                    missed += 1;
                    continue;
                }
                outstanding.fetch_add(1, Ordering::Relaxed);
                let (session, requests, live) = (session.clone(), requests.clone(), live.clone());
                let (gathered, outstanding) = (gathered.clone(), outstanding.clone());
                let mut request_rng = StdRng::seed_from_u64(rng.random());
                runtime.spawn(async move {
                    let outcome = requests.send(&session, &mut request_rng).await;
                    let took = due_at.elapsed();
                    let mut g = gathered.lock().unwrap_or_else(|p| p.into_inner());
                    g.record(took, outcome, &live);
                    outstanding.fetch_sub(1, Ordering::Relaxed);
                });
            }
            (started, missed)
        })
    };
    let (started, missed) = loop {
        if pacer.is_finished() {
            break pacer.join().unwrap_or_else(|_| (Instant::now(), 0));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    while outstanding.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let gathered = std::mem::take(&mut *gathered.lock().unwrap_or_else(|p| p.into_inner()));
    gathered.into_phase(elapsed, Some(rate), missed)
}
