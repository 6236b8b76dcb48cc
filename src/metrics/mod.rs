//! Prometheus metrics: one [`Metrics`] struct per node, registered once in its own registry
//! (not the process-global one, so several nodes can run in one test process), and a minimal
//! HTTP endpoint that serves `GET /metrics` in the text exposition format.
//!
//! The endpoint is deliberately tiny — a scrape is one short request per interval, so a full
//! HTTP stack would add dependencies without adding anything a scraper needs.

mod http;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub use http::serve;

/// Request latency buckets in seconds: 25 µs to 2.5 s, roughly ×2.5 per step.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5,
];

/// The node's metric families.
pub struct Metrics {
    registry: Registry,
    /// Client connections currently open.
    pub connections_open: IntGauge,
    /// Client connections accepted since start.
    pub connections_total: IntCounter,
    /// Requests received, by opcode name (`query`, `execute`, `options`, ...).
    pub requests: IntCounterVec,
    /// Error responses sent, by CQL error code label (`invalid`, `syntax_error`, ...).
    pub errors: IntCounterVec,
    /// Time from a request's decode to its reply being queued, by opcode, in seconds.
    pub request_duration: HistogramVec,
    /// Times a connection stopped reading because its in-flight bound was reached.
    pub backpressure_pauses: IntCounter,
}

impl Metrics {
    /// Creates and registers every family in a fresh registry.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let m = Metrics {
            connections_open: IntGauge::new(
                "ringcache_connections_open",
                "Client connections currently open",
            )
            .expect("static metric definition"),
            connections_total: IntCounter::new(
                "ringcache_connections_total",
                "Client connections accepted",
            )
            .expect("static metric definition"),
            requests: IntCounterVec::new(
                Opts::new("ringcache_requests_total", "Requests received, by opcode"),
                &["opcode"],
            )
            .expect("static metric definition"),
            errors: IntCounterVec::new(
                Opts::new(
                    "ringcache_errors_total",
                    "Error responses sent, by CQL error code",
                ),
                &["code"],
            )
            .expect("static metric definition"),
            request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "ringcache_request_duration_seconds",
                    "Request latency from decode to reply, by opcode",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["opcode"],
            )
            .expect("static metric definition"),
            backpressure_pauses: IntCounter::new(
                "ringcache_backpressure_pauses_total",
                "Times a connection stopped reading because its in-flight bound was reached",
            )
            .expect("static metric definition"),
            registry,
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        let collectors: [Box<dyn prometheus::core::Collector>; 6] = [
            Box::new(self.connections_open.clone()),
            Box::new(self.connections_total.clone()),
            Box::new(self.requests.clone()),
            Box::new(self.errors.clone()),
            Box::new(self.request_duration.clone()),
            Box::new(self.backpressure_pauses.clone()),
        ];
        for c in collectors {
            // Registration only fails on duplicate names, which a fresh registry cannot have.
            let _ = self.registry.register(c);
        }
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
