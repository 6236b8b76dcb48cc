//! The cluster's families: peers up and down, internode traffic per peer, the requests this
//! node coordinated (by consistency level and outcome) and how many of the partitions it
//! planned had it as a replica, schema agreement, and the metadata log's view — refreshed
//! at each scrape from a [`Report`] the server builds.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::replica::follow;
use crate::cluster::transport::PeerTraffic;
use crate::coordinator::RequestCounts;

/// One peer as membership sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerReport {
    /// Its address (the internode IP), the `peer` label.
    pub address: String,
    pub up: bool,
}

/// The metadata log as this node sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaReport {
    /// `leader`, `follower`, `candidate`, `learner` or `stopped`.
    pub role: &'static str,
    pub leader_known: bool,
    pub term: u64,
    pub last_applied: u64,
}

/// What the node reports of the cluster at a scrape.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every node but this one.
    pub peers: Vec<PeerReport>,
    /// Internode traffic by peer IP.
    pub traffic: Vec<(String, PeerTraffic)>,
    /// Nodes known, this one included.
    pub nodes: u64,
    /// Live nodes advertising this node's schema version, this one included.
    pub schema_agreeing: u64,
    pub meta: MetaReport,
    pub requests: RequestCounts,
    pub repair: RepairTotals,
}

/// Every repair this node ran, summed (`server/repair.rs`).
#[derive(Debug, Clone, Default)]
pub struct RepairTotals {
    pub counts: crate::coordinator::RepairCounts,
    /// `(keyspace, table, Unix seconds)` of each table's last successful repair.
    pub last_success: Vec<(String, String, u64)>,
    /// Repairs and streams finished: `(kind, outcome, how many)`.
    pub runs: Vec<(&'static str, &'static str, u64)>,
}

/// Reads the node's cluster report.
pub type ClusterSource = Box<dyn Fn() -> Report + Send + Sync>;

/// Every metadata role, so the one not held reads 0.
const ROLES: [&str; 5] = ["leader", "follower", "candidate", "learner", "stopped"];

/// The cluster's families.
pub struct ClusterMetrics {
    peer_up: IntGaugeVec,
    peers: IntGaugeVec,
    messages: IntCounterVec,
    bytes: IntCounterVec,
    requests: IntCounterVec,
    partitions: IntCounterVec,
    read_repairs: IntCounterVec,
    hints: IntCounterVec,
    hints_pending: IntGaugeVec,
    nodes: IntGauge,
    schema_agreeing: IntGauge,
    meta_role: IntGaugeVec,
    meta_leader_known: IntGauge,
    meta_term: IntGauge,
    meta_applied: IntGauge,
    repair_spans: IntCounter,
    repair_leaves: IntCounterVec,
    repair_partitions: IntCounterVec,
    repair_bytes: IntCounterVec,
    repair_last_success: IntGaugeVec,
    repair_runs: IntCounterVec,
}

fn gauges(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition")
}

fn counters(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition")
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("static metric definition")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("static metric definition")
}

impl ClusterMetrics {
    /// The families, registered in `registry`.
    pub fn new(registry: &Registry) -> ClusterMetrics {
        let m = ClusterMetrics {
            peer_up: gauges(
                "ringcache_peer_up",
                "1 while the failure detector considers the peer up, 0 while it is down",
                &["peer"],
            ),
            peers: gauges(
                "ringcache_peers",
                "Peers known, by state (up or down)",
                &["state"],
            ),
            messages: counters(
                "ringcache_internode_messages_total",
                "Internode messages, by peer and direction (sent, received)",
                &["peer", "direction"],
            ),
            bytes: counters(
                "ringcache_internode_bytes_total",
                "Internode bytes, by peer and direction (sent, received)",
                &["peer", "direction"],
            ),
            requests: counters(
                "ringcache_coordinator_requests_total",
                "Client requests this node coordinated, by consistency level and outcome",
                &["consistency", "outcome"],
            ),
            partitions: counters(
                "ringcache_coordinator_partitions_total",
                "Partition reads and writes this node planned, by whether it is one of the partition's replicas",
                &["op", "local_replica"],
            ),
            read_repairs: counters(
                "ringcache_read_repair_writes_total",
                "Repair writes reads sent to replicas that lacked what others had (BLOCKING read repair), by table",
                &["keyspace", "table"],
            ),
            hints: counters(
                "ringcache_hints_total",
                "Hints this node stored for replicas that missed writes, replayed to them, dropped, and found corrupt in its store (dropped, never replayed)",
                &["event"],
            ),
            hints_pending: gauges(
                "ringcache_hints_pending",
                "Hints this node holds, by target replica (its address; its host id once forgotten)",
                &["peer"],
            ),
            nodes: gauge("ringcache_cluster_nodes", "Nodes known, this one included"),
            schema_agreeing: gauge(
                "ringcache_schema_agreement_nodes",
                "Live nodes advertising the same schema version as this one, this one included",
            ),
            meta_role: gauges(
                "ringcache_metadata_role",
                "1 for this node's role in the metadata log's Raft group",
                &["role"],
            ),
            meta_leader_known: gauge(
                "ringcache_metadata_leader_known",
                "1 while this node knows the metadata log's leader",
            ),
            meta_term: gauge("ringcache_metadata_term", "The metadata log's Raft term"),
            meta_applied: gauge(
                "ringcache_metadata_applied_index",
                "The last metadata log entry applied on this node",
            ),
            repair_spans: counter(
                "ringcache_repair_spans_total",
                "Token spans of a table this node's repairs compared on every replica",
            ),
            repair_leaves: counters(
                "ringcache_repair_leaves_total",
                "Merkle tree leaves this node's repairs compared, and those that differed",
                &["result"],
            ),
            repair_partitions: counters(
                "ringcache_repair_partitions_total",
                "Partitions in differing leaves this node's repairs compared, and those repaired",
                &["result"],
            ),
            repair_bytes: counters(
                "ringcache_repair_bytes_total",
                "Bytes of repair writes this node's repairs streamed to replicas, and of trees, digests and partitions read to find them",
                &["kind"],
            ),
            repair_last_success: gauges(
                "ringcache_repair_last_success_timestamp_seconds",
                "When this node last finished repairing the table (Unix seconds)",
                &["keyspace", "table"],
            ),
            repair_runs: counters(
                "ringcache_repair_runs_total",
                "Repairs (ringcache repair, scheduled) and streams (joins, leaves) this node ran, by kind and outcome (succeeded, failed)",
                &["kind", "outcome"],
            ),
        };
        m.register(registry);
        m
    }

    fn register(&self, registry: &Registry) {
        let collectors: [Box<dyn prometheus::core::Collector>; 21] = [
            Box::new(self.repair_spans.clone()),
            Box::new(self.repair_leaves.clone()),
            Box::new(self.repair_partitions.clone()),
            Box::new(self.repair_bytes.clone()),
            Box::new(self.repair_last_success.clone()),
            Box::new(self.repair_runs.clone()),
            Box::new(self.hints.clone()),
            Box::new(self.hints_pending.clone()),
            Box::new(self.read_repairs.clone()),
            Box::new(self.peer_up.clone()),
            Box::new(self.peers.clone()),
            Box::new(self.messages.clone()),
            Box::new(self.bytes.clone()),
            Box::new(self.requests.clone()),
            Box::new(self.partitions.clone()),
            Box::new(self.nodes.clone()),
            Box::new(self.schema_agreeing.clone()),
            Box::new(self.meta_role.clone()),
            Box::new(self.meta_leader_known.clone()),
            Box::new(self.meta_term.clone()),
            Box::new(self.meta_applied.clone()),
        ];
        for c in collectors {
            // Only duplicate names fail, and the registry is fresh.
            let _ = registry.register(c);
        }
    }

    /// Copies `report` into the families.
    pub fn update(&self, report: &Report) {
        // A peer that was forgotten stops being reported rather than reading stale.
        self.peer_up.reset();
        let up = report.peers.iter().filter(|p| p.up).count();
        for peer in &report.peers {
            let gauge = self.peer_up.with_label_values(&[peer.address.as_str()]);
            gauge.set(i64::from(peer.up));
        }
        set(&self.peers.with_label_values(&["up"]), up as u64);
        let down = report.peers.len() - up;
        set(&self.peers.with_label_values(&["down"]), down as u64);
        self.update_traffic(&report.traffic);
        for (level, outcome, n) in &report.requests.requests {
            follow(&self.requests.with_label_values(&[level, outcome]), *n);
        }
        for (op, local, n) in &report.requests.partitions {
            let local = if *local { "true" } else { "false" };
            follow(&self.partitions.with_label_values(&[op, local]), *n);
        }
        for (keyspace, table, n) in &report.requests.read_repairs {
            follow(&self.read_repairs.with_label_values(&[keyspace, table]), *n);
        }
        let hints = &report.requests;
        for (event, n) in [
            ("stored", hints.hints_stored),
            ("replayed", hints.hints_replayed),
            ("dropped", hints.hints_dropped),
            ("corrupt", hints.hints_corrupt),
        ] {
            follow(&self.hints.with_label_values(&[event]), n);
        }
        self.hints_pending.reset();
        for (target, n) in &hints.hints_pending {
            set(
                &self.hints_pending.with_label_values(&[target.as_str()]),
                *n,
            );
        }
        set(&self.nodes, report.nodes);
        set(&self.schema_agreeing, report.schema_agreeing);
        for role in ROLES {
            let held = i64::from(report.meta.role == role);
            self.meta_role.with_label_values(&[role]).set(held);
        }
        set(&self.meta_leader_known, u64::from(report.meta.leader_known));
        set(&self.meta_term, report.meta.term);
        set(&self.meta_applied, report.meta.last_applied);
        self.update_repair(&report.repair);
    }

    fn update_repair(&self, repair: &RepairTotals) {
        let counts = &repair.counts;
        follow(&self.repair_spans, counts.spans_done);
        for (family, counts) in [
            (
                &self.repair_leaves,
                [
                    ("compared", counts.leaves_compared),
                    ("mismatched", counts.leaves_mismatched),
                ],
            ),
            (
                &self.repair_partitions,
                [
                    ("compared", counts.partitions_compared),
                    ("repaired", counts.partitions_repaired),
                ],
            ),
            (
                &self.repair_bytes,
                [
                    ("streamed", counts.bytes_streamed),
                    ("compared", counts.bytes_compared),
                ],
            ),
        ] {
            for (label, n) in counts {
                follow(&family.with_label_values(&[label]), n);
            }
        }
        for (keyspace, table, at) in &repair.last_success {
            set(
                &self
                    .repair_last_success
                    .with_label_values(&[keyspace, table]),
                *at,
            );
        }
        for (kind, outcome, n) in &repair.runs {
            follow(&self.repair_runs.with_label_values(&[kind, outcome]), *n);
        }
    }

    fn update_traffic(&self, traffic: &[(String, PeerTraffic)]) {
        for (peer, t) in traffic {
            let peer = peer.as_str();
            let out = [peer, "sent"];
            let into = [peer, "received"];
            follow(&self.messages.with_label_values(&out), t.messages_sent);
            follow(&self.messages.with_label_values(&into), t.messages_received);
            follow(&self.bytes.with_label_values(&out), t.bytes_sent);
            follow(&self.bytes.with_label_values(&into), t.bytes_received);
        }
    }
}

fn set(gauge: &IntGauge, value: u64) {
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_becomes_labelled_series() {
        let registry = Registry::new();
        let m = ClusterMetrics::new(&registry);
        let traffic = PeerTraffic {
            messages_sent: 3,
            bytes_sent: 300,
            reads: 2,
            bytes_received: 200,
            messages_received: 4,
        };
        let report = Report {
            peers: vec![
                PeerReport {
                    address: "127.0.20.2".into(),
                    up: true,
                },
                PeerReport {
                    address: "127.0.20.3".into(),
                    up: false,
                },
            ],
            traffic: vec![("127.0.20.2".into(), traffic)],
            nodes: 3,
            schema_agreeing: 2,
            meta: MetaReport {
                role: "follower",
                leader_known: true,
                term: 2,
                last_applied: 7,
            },
            requests: RequestCounts {
                requests: vec![("QUORUM", "ok", 5)],
                partitions: vec![("read", true, 4)],
                read_repairs: vec![("chat".into(), "messages".into(), 3)],
                ..Default::default()
            },
            repair: RepairTotals::default(),
        };
        m.update(&report);
        m.update(&report);
        let mut out = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in [
            "ringcache_peer_up{peer=\"127.0.20.2\"} 1",
            "ringcache_peer_up{peer=\"127.0.20.3\"} 0",
            "ringcache_peers{state=\"down\"} 1",
            "ringcache_internode_messages_total{direction=\"received\",peer=\"127.0.20.2\"} 4",
            "ringcache_internode_bytes_total{direction=\"sent\",peer=\"127.0.20.2\"} 300",
            "ringcache_coordinator_requests_total{consistency=\"QUORUM\",outcome=\"ok\"} 5",
            "ringcache_coordinator_partitions_total{local_replica=\"true\",op=\"read\"} 4",
            "ringcache_schema_agreement_nodes 2",
            "ringcache_read_repair_writes_total{keyspace=\"chat\",table=\"messages\"} 3",
            "ringcache_metadata_role{role=\"follower\"} 1",
            "ringcache_metadata_role{role=\"leader\"} 0",
            "ringcache_metadata_leader_known 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
