//! What the coordinator counts for `/metrics`: every client request by consistency level
//! and outcome, and every partition read or write it plans by whether this node is one of
//! the partition's replicas (the share a token-aware driver should push towards 100 %).
//!
//! Plain atomics, bumped on the request path without a lock or a label lookup; the metrics
//! endpoint reads a [`RequestCounts`] snapshot at each scrape (as it reads the engine's
//! counters), so the coordinator knows nothing of Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::protocol::Consistency;

/// How a request ended, as `/metrics` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Unavailable,
    WriteTimeout,
    ReadTimeout,
    /// The replicas failed it (ReadFailure, WriteFailure, TRUNCATE, server errors).
    Failure,
    /// Refused before anything ran: invalid, unauthorized, unprepared, syntax.
    Rejected,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Unavailable,
        Outcome::WriteTimeout,
        Outcome::ReadTimeout,
        Outcome::Failure,
        Outcome::Rejected,
    ];

    /// The outcome of a request that returned `result`.
    pub fn of<T>(result: &Result<T, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(Error::Unavailable { .. } | Error::NoQuorum { .. }) => Outcome::Unavailable,
            Err(Error::WriteTimeout { .. }) => Outcome::WriteTimeout,
            Err(Error::ReadTimeout { .. }) => Outcome::ReadTimeout,
            Err(
                Error::ReadFailure { .. }
                | Error::WriteFailure { .. }
                | Error::Truncate(_)
                | Error::Overloaded(_)
                | Error::Server(_),
            ) => Outcome::Failure,
            Err(_) => Outcome::Rejected,
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unavailable => "unavailable",
            Outcome::WriteTimeout => "write_timeout",
            Outcome::ReadTimeout => "read_timeout",
            Outcome::Failure => "failure",
            Outcome::Rejected => "rejected",
        }
    }
}

/// A planned partition operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionOp {
    Read,
    Write,
}

/// Consistency codes are 0..=0x0A.
const LEVELS: usize = 11;

/// The coordinator's counters.
pub struct Counters {
    requests: [[AtomicU64; Outcome::ALL.len()]; LEVELS],
    /// `[op][is this node a replica]`.
    partitions: [[AtomicU64; 2]; 2],
    /// Repair writes sent by reads whose replicas disagreed, per table id.
    read_repairs: std::sync::Mutex<std::collections::BTreeMap<uuid::Uuid, u64>>,
    /// Hints stored for replicas that missed writes, replayed to them, and dropped (over
    /// the window or the space, too old, or not storable).
    pub hints_stored: AtomicU64,
    pub hints_replayed: AtomicU64,
    pub hints_dropped: AtomicU64,
    /// Replicas (by address) that missed writes no hint kept — down past
    /// `max_hint_window_ms`, or their hint space full — since the last repair of every
    /// table: they need one before gc_grace_seconds passes.
    pub unhinted: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// A snapshot of [`Counters`], every series that was ever bumped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestCounts {
    /// `(consistency name, outcome label, requests)`.
    pub requests: Vec<(&'static str, &'static str, u64)>,
    /// `(op label, whether this node was a replica, partitions)`.
    pub partitions: Vec<(&'static str, bool, u64)>,
    /// Repair writes sent by reads whose replicas disagreed, per `(keyspace, table)`: the
    /// coordinator names every user table ([`Counters::read_repairs_of`] counts by id).
    pub read_repairs: Vec<(String, String, u64)>,
    /// Hints pending per target (host id), as the store counts them.
    pub hints_pending: Vec<(String, u64)>,
    /// Hints stored, replayed and dropped since start.
    pub hints_stored: u64,
    pub hints_replayed: u64,
    pub hints_dropped: u64,
    /// Stored hints found corrupt and dropped (never replayed).
    pub hints_corrupt: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            partitions: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            read_repairs: Default::default(),
            hints_stored: AtomicU64::new(0),
            hints_replayed: AtomicU64::new(0),
            hints_dropped: AtomicU64::new(0),
            unhinted: Default::default(),
        }
    }
}

impl Counters {
    /// Counts one client request at `consistency` that ended as `outcome`.
    pub fn request(&self, consistency: Consistency, outcome: Outcome) {
        let level = (consistency as usize).min(LEVELS - 1);
        let slot = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.requests[level][slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one partition read or write the coordinator planned, and whether this node is
    /// among its replicas.
    pub fn planned(&self, op: PartitionOp, local_replica: bool) {
        self.partitions[op as usize][usize::from(local_replica)].fetch_add(1, Ordering::Relaxed);
    }

    /// Repair writes reads of `table` sent so far.
    pub fn read_repairs_of(&self, table: uuid::Uuid) -> u64 {
        let counts = self.read_repairs.lock().expect("read repair counts");
        counts.get(&table).copied().unwrap_or(0)
    }

    /// Counts repair writes a read of `table` sent to replicas that lacked what others had.
    pub fn read_repairs(&self, table: uuid::Uuid, writes: u64) {
        if writes > 0 {
            let mut counts = self.read_repairs.lock().expect("read repair counts");
            *counts.entry(table).or_default() += writes;
        }
    }

    /// Every non-zero counter.
    pub fn snapshot(&self) -> RequestCounts {
        let mut counts = RequestCounts::default();
        for (code, row) in self.requests.iter().enumerate() {
            let Ok(level) = Consistency::try_from(code as u16) else {
                continue;
            };
            for (outcome, n) in Outcome::ALL.iter().zip(row) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    counts.requests.push((level.name(), outcome.label(), n));
                }
            }
        }
        for (op, row) in ["read", "write"].into_iter().zip(&self.partitions) {
            for (local, n) in [false, true].into_iter().zip(row) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    counts.partitions.push((op, local, n));
                }
            }
        }
        counts.hints_stored = self.hints_stored.load(Ordering::Relaxed);
        counts.hints_replayed = self.hints_replayed.load(Ordering::Relaxed);
        counts.hints_dropped = self.hints_dropped.load(Ordering::Relaxed);
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_error_and_snapshots_list_what_was_counted() {
        let c = Counters::default();
        let unavailable: Result<(), Error> = Err(Error::Unavailable {
            consistency: Consistency::Quorum,
            required: 2,
            alive: 1,
        });
        c.request(Consistency::Quorum, Outcome::of(&unavailable));
        c.request(Consistency::Quorum, Outcome::of(&Ok::<(), Error>(())));
        c.request(Consistency::Quorum, Outcome::of(&Ok::<(), Error>(())));
        c.request(
            Consistency::One,
            Outcome::of::<()>(&Err(Error::invalid("x"))),
        );
        c.planned(PartitionOp::Write, true);
        c.planned(PartitionOp::Read, false);
        let s = c.snapshot();
        assert_eq!(
            s.requests,
            [
                ("ONE", "rejected", 1),
                ("QUORUM", "ok", 2),
                ("QUORUM", "unavailable", 1)
            ]
        );
        assert_eq!(s.partitions, [("read", false, 1), ("write", true, 1)]);
    }
}
