//! What the node's HTTP endpoint reports of the cluster: the scrape-time [`ClusterReport`]
//! behind the cluster families of `/metrics`, and the `GET /status` JSON `ringcache status`
//! prints. Both read the same sources — membership, the transport's counters, the
//! coordinator's counters and ownership, the metadata log — at the moment they are asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cluster::gossip::LocalFacts;
use crate::cluster::membership::{Membership, NodeStatus, View};
use crate::cluster::transport::{PeerTraffic, Transport};
use crate::metadata::{MetaRole, MetaStatus, MetadataLog};
use crate::metrics::status::{MetadataRow, NodeRow, Status};
use crate::metrics::{ClusterReport, MetaReport, PeerReport};

use super::Shared;

/// The node's parts the reports read.
pub(super) struct ClusterSources {
    pub shared: Arc<Shared>,
    pub repairs: Arc<super::repair::Repairs>,
    pub membership: Arc<Membership>,
    pub transport: Transport,
    pub metadata: Arc<MetadataLog>,
    /// This node's schema version and load (membership holds only peers' advertised ones).
    pub facts: Arc<dyn LocalFacts>,
}

impl ClusterSources {
    /// The cluster families' values now.
    pub fn report(&self) -> ClusterReport {
        let view = self.membership.view();
        let peers = view
            .members()
            .filter(|n| n.host_id != view.local)
            .map(|p| PeerReport {
                address: p.internode.ip().to_string(),
                up: p.alive,
            })
            .collect();
        let mine = Some(self.facts.schema_version());
        let agreeing = view
            .members()
            .filter(|n| n.host_id == view.local || (n.alive && n.schema_version == mine))
            .count();
        ClusterReport {
            peers,
            traffic: self.traffic(),
            nodes: view.members().count() as u64,
            schema_agreeing: agreeing as u64,
            meta: meta_report(&self.metadata.status()),
            requests: self.shared.coordinator.request_counts(),
            repair: self.repair_totals(),
        }
    }

    fn repair_totals(&self) -> crate::metrics::RepairTotals {
        let (counts, last_success) = self.repairs.totals();
        crate::metrics::RepairTotals {
            counts,
            last_success,
            runs: self.repairs.runs(),
        }
    }

    /// Internode traffic by peer IP (a peer restarted on another port adds up).
    fn traffic(&self) -> Vec<(String, PeerTraffic)> {
        let mut by_ip: BTreeMap<String, PeerTraffic> = BTreeMap::new();
        for (addr, t) in self.transport.stats().snapshot() {
            let sum = by_ip.entry(addr.ip().to_string()).or_default();
            sum.messages_sent += t.messages_sent;
            sum.bytes_sent += t.bytes_sent;
            sum.reads += t.reads;
            sum.bytes_received += t.bytes_received;
            sum.messages_received += t.messages_received;
        }
        by_ip.into_iter().collect()
    }

    /// `GET /status[?keyspace=ks]` as JSON, or why it cannot be answered.
    pub fn status(&self, keyspace: Option<&str>) -> Result<String, String> {
        let ownership = self
            .shared
            .coordinator
            .ownership(keyspace)
            .map_err(|e| e.to_string())?;
        let view = self.membership.view();
        let nodes = view
            .members()
            .map(|n| NodeRow {
                host_id: n.host_id,
                address: n.internode.ip().to_string(),
                data_center: n.data_center.clone(),
                rack: n.rack.clone(),
                up: n.alive,
                state: state_name(n.status).to_owned(),
                load: self.load_of(&view, n.host_id, n.load),
                tokens: n.tokens.len(),
                owns: ownership.by_node.get(&n.host_id).copied(),
                schema_version: self.schema_of(&view, n.host_id, n.schema_version),
            })
            .collect();
        let status = Status {
            needs_repair: self.shared.coordinator.needs_repair(),
            streaming: self.repairs.streaming().map(|r| {
                format!(
                    "{}: {} of {} spans, {} partitions, {} bytes streamed in {:.0} s",
                    r.scope,
                    r.spans_done,
                    r.spans_total,
                    r.partitions_repaired,
                    r.bytes_streamed,
                    r.elapsed_secs
                )
            }),
            movement: self.shared.coordinator.movement().map(|m| {
                let node = view
                    .node(&m.host_id)
                    .map_or_else(|| m.host_id.to_string(), |n| n.internode.ip().to_string());
                format!("{node} {}", m.kind)
            }),
            cluster_name: self.shared.config.cluster_name.clone(),
            this_node: view.local,
            keyspace: keyspace.map(str::to_owned),
            effective: ownership.effective,
            note: ownership.note,
            nodes,
            metadata: metadata_row(&self.metadata.status()),
        };
        serde_json::to_string_pretty(&status).map_err(|e| e.to_string())
    }

    fn load_of(&self, view: &View, host: uuid::Uuid, advertised: u64) -> u64 {
        if host == view.local {
            self.facts.load()
        } else {
            advertised
        }
    }

    fn schema_of(
        &self,
        view: &View,
        host: uuid::Uuid,
        advertised: Option<uuid::Uuid>,
    ) -> Option<uuid::Uuid> {
        if host == view.local {
            Some(self.facts.schema_version())
        } else {
            advertised
        }
    }
}

/// Status as `ringcache status` names it (Joining, Leaving; the rest serve as Normal).
fn state_name(status: NodeStatus) -> &'static str {
    match status {
        // Waiting for its turn is part of joining, as an operator sees it.
        NodeStatus::Waiting | NodeStatus::Joining => "Joining",
        NodeStatus::Leaving => "Leaving",
        _ => "Normal",
    }
}

fn role_name(role: MetaRole) -> &'static str {
    match role {
        MetaRole::Leader => "leader",
        MetaRole::Follower => "follower",
        MetaRole::Candidate => "candidate",
        MetaRole::Learner => "learner",
        MetaRole::Stopped => "stopped",
    }
}

fn meta_report(status: &MetaStatus) -> MetaReport {
    MetaReport {
        role: role_name(status.role),
        leader_known: status.leader.is_some(),
        term: status.term,
        last_applied: status.last_applied.unwrap_or(0),
    }
}

fn metadata_row(status: &MetaStatus) -> MetadataRow {
    MetadataRow {
        role: role_name(status.role).to_owned(),
        term: status.term,
        leader: status.leader,
        leader_address: status
            .leader
            .and_then(|id| status.addresses.get(&id))
            .map(|a| a.to_string()),
        voters: status.voters.len(),
        learners: status.learners.len(),
        last_applied: status.last_applied,
    }
}
