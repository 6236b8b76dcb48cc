//! The CQL backend's families (`[backend] engine = "cql"`): how long the backend takes to
//! answer, what it answers with, and what the tier does about it. Registered in every
//! node; a node on the embedded store leaves them at zero.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// The backend's families.
pub struct BackendMetrics {
    /// `ringcache_backend_request_duration_seconds{opcode}`: from sending a request to the
    /// backend to its answer, errors included.
    pub duration: HistogramVec,
    /// `ringcache_backend_errors_total{code}`: the backend's error answers by CQL code,
    /// and `unreachable`, `failed` and `timeout` for requests it never answered.
    pub errors: IntCounterVec,
    /// `ringcache_backend_reprepares_total`: statements prepared again on a backend that
    /// answered Unprepared, before the client's request was retried.
    pub reprepares: IntCounter,
}

impl BackendMetrics {
    pub(super) fn new(registry: &Registry) -> BackendMetrics {
        let m = BackendMetrics {
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "ringcache_backend_request_duration_seconds",
                    "Time from sending a request to the CQL backend to its answer, by opcode",
                )
                .buckets(super::LATENCY_BUCKETS.to_vec()),
                &["opcode"],
            )
            .expect("static metric definition"),
            errors: IntCounterVec::new(
                Opts::new(
                    "ringcache_backend_errors_total",
                    "CQL backend error answers by code, and requests it never answered \
                     (unreachable, failed, timeout)",
                ),
                &["code"],
            )
            .expect("static metric definition"),
            reprepares: IntCounter::new(
                "ringcache_backend_reprepares_total",
                "Statements prepared again on a CQL backend that answered Unprepared",
            )
            .expect("static metric definition"),
        };
        let _ = registry.register(Box::new(m.duration.clone()));
        let _ = registry.register(Box::new(m.errors.clone()));
        let _ = registry.register(Box::new(m.reprepares.clone()));
        m
    }
}
