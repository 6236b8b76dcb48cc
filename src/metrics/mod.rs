//! Prometheus metrics: one [`Metrics`] struct per node, registered once in its own registry
//! (not the process-global one, so several nodes can run in one test process), and a minimal
//! HTTP endpoint that serves `GET /metrics` in the text exposition format.
//!
//! Per-request series are resolved once: `with_label_values` hashes the label and takes a
//! lock on every call, which on the request path costs as much as answering an OPTIONS, so
//! each opcode's counter and histogram handles are looked up on first use and kept
//! ([`Metrics::opcode`]). They are resolved lazily, not up front, so the exposition lists
//! only opcodes that were actually seen — as before.
//!
//! The endpoint is deliberately tiny — a scrape is one short request per interval, so a full
//! HTTP stack would add dependencies without adding anything a scraper needs.

pub mod alloc;
pub mod backend;
mod cluster;
mod http;
mod replica;
pub mod status;
mod storage;

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::protocol::Opcode;

pub use cluster::{ClusterSource, MetaReport, PeerReport, RepairTotals, Report as ClusterReport};
pub use http::{serve, Admin, FlushSource, RepairAdmin, StatusSource};
pub use replica::{ReplicaSource, Report as ReplicaReport};

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
    /// Resolved handles per opcode byte (opcodes are below 0x11), filled on first use.
    per_opcode: [OnceLock<OpcodeMetrics>; OPCODE_SLOTS],
    /// The storage engine's families (its counters and background work).
    storage: storage::StorageMetrics,
    /// Where the engine's counters are read from at each scrape.
    storage_source: OnceLock<StorageSource>,
    /// The replica's families (cache, partition reads, purges) and the process's memory.
    replica: replica::ReplicaMetrics,
    /// Where the replica report is read from at each scrape.
    replica_source: OnceLock<ReplicaSource>,
    /// The cluster's families (peers, internode traffic, coordinated requests, schema
    /// agreement, the metadata log).
    cluster: cluster::ClusterMetrics,
    /// Where the cluster report is read from at each scrape.
    cluster_source: OnceLock<ClusterSource>,
    /// The CQL backend's families.
    pub backend: backend::BackendMetrics,
}

/// Reads the storage engine's counters.
pub type StorageSource = Box<dyn Fn() -> crate::storage::engine::EngineStats + Send + Sync>;

/// Opcode bytes are 0x00..=0x10.
const OPCODE_SLOTS: usize = 0x11;

/// One opcode's request counter and latency histogram, resolved from their families.
#[derive(Clone)]
pub struct OpcodeMetrics {
    /// `ringcache_requests_total{opcode=...}`.
    pub requests: IntCounter,
    /// `ringcache_request_duration_seconds{opcode=...}`.
    pub duration: Histogram,
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
            per_opcode: std::array::from_fn(|_| OnceLock::new()),
            storage: storage::StorageMetrics::new(&registry),
            storage_source: OnceLock::new(),
            replica: replica::ReplicaMetrics::new(&registry),
            replica_source: OnceLock::new(),
            cluster: cluster::ClusterMetrics::new(&registry),
            cluster_source: OnceLock::new(),
            backend: backend::BackendMetrics::new(&registry),
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

    /// The request counter and latency histogram of `opcode`, resolved once.
    pub fn opcode(&self, opcode: Opcode) -> &OpcodeMetrics {
        let slot = (opcode as u8 as usize).min(OPCODE_SLOTS - 1);
        // Every opcode is below 0x11 (spec §2.4); `min` only guards the index.
        let cell = &self.per_opcode[slot];
        cell.get_or_init(|| {
            let label = [opcode_label(opcode)];
            OpcodeMetrics {
                requests: self.requests.with_label_values(&label),
                duration: self.request_duration.with_label_values(&label),
            }
        })
    }

    /// Reports the storage engine's counters from `source` at every scrape (set once).
    pub fn watch_storage(&self, source: StorageSource) {
        let _ = self.storage_source.set(source);
    }

    /// Reports the replica from `source` at every scrape (set once).
    pub fn watch_replica(&self, source: ReplicaSource) {
        let _ = self.replica_source.set(source);
    }

    /// Reports the cluster from `source` at every scrape (set once).
    pub fn watch_cluster(&self, source: ClusterSource) {
        let _ = self.cluster_source.set(source);
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        if let Some(source) = self.cluster_source.get() {
            self.cluster.update(&source());
        }
        let report = self.replica_source.get().map(|source| source());
        self.replica.update(&report.unwrap_or_default());
        if let Some(source) = self.storage_source.get() {
            self.storage.update(&source());
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Metric label of an opcode.
pub fn opcode_label(opcode: Opcode) -> &'static str {
    match opcode {
        Opcode::Startup => "startup",
        Opcode::Options => "options",
        Opcode::Query => "query",
        Opcode::Prepare => "prepare",
        Opcode::Execute => "execute",
        Opcode::Register => "register",
        Opcode::Batch => "batch",
        Opcode::AuthResponse => "auth_response",
        _ => "other",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_handles_feed_the_labelled_families_and_appear_only_once_used() {
        let m = Metrics::new();
        assert!(!m.render().contains("opcode=\"options\""));
        m.opcode(Opcode::Options).requests.inc();
        m.opcode(Opcode::Options).requests.inc();
        m.opcode(Opcode::Query).duration.observe(0.001);
        let text = m.render();
        assert!(
            text.contains("ringcache_requests_total{opcode=\"options\"} 2"),
            "{text}"
        );
        assert!(text.contains("ringcache_request_duration_seconds_count{opcode=\"query\"} 1"));
        assert!(!text.contains("opcode=\"execute\""));
    }
}
