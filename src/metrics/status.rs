//! `ringcache status`: what a node serves as `GET /status` (JSON) and how the command prints
//! it, in the layout of Cassandra's `nodetool status` — per data centre, a line per node with
//! its state (`U`p/`D`own × `N`ormal/`J`oining/`L`eaving), address, load, token count,
//! ownership, host id and rack — followed by the metadata log's view.
//!
//! Ownership is effective (placement-aware, summing to the replication factor) for a named
//! keyspace, or without one when every user keyspace replicates alike; otherwise it is raw
//! token ownership and a note says why, as Cassandra's does.

use std::fmt::Write;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub cluster_name: String,
    /// The node that answered.
    pub this_node: Uuid,
    /// The keyspace ownership was computed for, if one was named.
    pub keyspace: Option<String>,
    /// Whether `owns` is effective ownership.
    pub effective: bool,
    /// Why ownership is raw, when it is.
    pub note: Option<String>,
    pub nodes: Vec<NodeRow>,
    pub metadata: MetadataRow,
    /// Nodes this one holds writes for that no hint kept (down past the hint window, or
    /// their hint space full): they need `ringcache repair` within gc_grace_seconds.
    #[serde(default)]
    pub needs_repair: Vec<String>,
    /// The answering node's stream while it joins or leaves: spans and bytes so far.
    #[serde(default)]
    pub streaming: Option<String>,
    /// The cluster's one range movement in progress (a node joining or leaving), as the
    /// metadata log granted it: "<address> <kind>".
    #[serde(default)]
    pub movement: Option<String>,
}

/// One node's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    pub host_id: Uuid,
    /// The node's address (its internode IP, as nodetool shows the endpoint).
    pub address: String,
    pub data_center: String,
    pub rack: String,
    pub up: bool,
    /// `Normal`, `Joining` or `Leaving` (anything else shows as Normal).
    pub state: String,
    /// Bytes stored, as last advertised.
    pub load: u64,
    pub tokens: usize,
    /// Share of the token space (0..=1); None when the node owns no range.
    pub owns: Option<f64>,
    pub schema_version: Option<Uuid>,
}

/// The metadata log as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataRow {
    /// This node's role: leader, follower, candidate, learner, stopped.
    pub role: String,
    pub term: u64,
    pub leader: Option<Uuid>,
    /// The leader's internode address.
    pub leader_address: Option<String>,
    pub voters: usize,
    pub learners: usize,
    pub last_applied: Option<u64>,
}

impl Status {
    /// The report as `ringcache status` prints it.
    pub fn render(&self) -> String {
        let mut dcs: Vec<&str> = self.nodes.iter().map(|n| n.data_center.as_str()).collect();
        dcs.sort_unstable();
        dcs.dedup();
        let width = self
            .nodes
            .iter()
            .map(|n| n.address.len())
            .max()
            .unwrap_or(7);
        let owns = if self.effective {
            "Owns (effective)"
        } else {
            "Owns"
        };
        // nodetool's column widths: `%-16s` for effective ownership, `%-6s` for raw.
        let owns_width = if self.effective { 16 } else { 6 };
        let line = |s: &str, addr: &str, load: &str, tokens: &str, own: &str, id: &str, rack| {
            format!("{s}  {addr:<width$}  {load:<9}  {tokens:<11}  {own:<owns_width$}  {id:<36}  {rack}\n")
        };
        let mut out = String::new();
        for dc in dcs {
            let header = format!("Datacenter: {dc}");
            let _ = writeln!(out, "{header}\n{}", "=".repeat(header.len()));
            out.push_str("Status=Up/Down\n|/ State=Normal/Leaving/Joining/Moving\n");
            out += &line("--", "Address", "Load", "Tokens", owns, "Host ID", "Rack");
            let mut nodes: Vec<&NodeRow> =
                self.nodes.iter().filter(|n| n.data_center == dc).collect();
            nodes.sort_by_key(|n| address_order(&n.address));
            for n in nodes {
                let own = n.owns.map_or("?".to_owned(), percent);
                let id = n.host_id.to_string();
                let (load, tokens) = (file_size(n.load), n.tokens.to_string());
                out += &line(
                    &n.state_code(),
                    &n.address,
                    &load,
                    &tokens,
                    &own,
                    &id,
                    &n.rack,
                );
            }
        }
        out.push('\n');
        if let Some(note) = &self.note {
            let _ = writeln!(out, "Note: {note}");
        }
        if !self.needs_repair.is_empty() {
            let _ = writeln!(
                out,
                "Needs repair: {} missed writes that were not hinted; run `ringcache repair` \
                 before gc_grace_seconds passes, or deleted data may come back.",
                self.needs_repair.join(", ")
            );
        }
        if let Some(streaming) = &self.streaming {
            let _ = writeln!(out, "Streaming ({streaming})");
        }
        if let Some(movement) = &self.movement {
            let _ = writeln!(out, "Range movement in progress: {movement}");
        }
        out += &self.metadata.render(self.this_node);
        out
    }
}

impl NodeRow {
    /// `UN`, `DN`, `UJ`, `UL`, ...
    pub fn state_code(&self) -> String {
        let status = if self.up { 'U' } else { 'D' };
        let state = match self.state.as_str() {
            "Joining" => 'J',
            "Leaving" => 'L',
            _ => 'N',
        };
        format!("{status}{state}")
    }
}

impl MetadataRow {
    fn render(&self, this_node: Uuid) -> String {
        let leader = match (&self.leader, &self.leader_address) {
            (Some(id), Some(addr)) => format!("{addr} ({id})"),
            (Some(id), None) => id.to_string(),
            _ => "unknown".to_owned(),
        };
        let applied = self
            .last_applied
            .map_or("none".to_owned(), |i| i.to_string());
        format!(
            "Metadata log: leader {leader}, term {}, {} voters, {} learners\n\
             This node ({this_node}): {}, applied through entry {applied}\n",
            self.term, self.voters, self.learners, self.role
        )
    }
}

/// IPv4 addresses in numeric order, then anything else by text.
fn address_order(address: &str) -> (u8, Vec<u8>, String) {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => (0, v4.octets().to_vec(), String::new()),
        Ok(std::net::IpAddr::V6(v6)) => (1, v6.octets().to_vec(), String::new()),
        Err(_) => (2, Vec::new(), address.to_owned()),
    }
}

/// A share as nodetool prints it (Java's `##0.0%`).
fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A byte count as nodetool prints it: up to two decimals, binary units (`47.66 KiB`).
pub fn file_size(bytes: u64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("TiB", 1_099_511_627_776.0),
        ("GiB", 1_073_741_824.0),
        ("MiB", 1_048_576.0),
        ("KiB", 1024.0),
    ];
    let value = bytes as f64;
    let (unit, scaled) = UNITS
        .iter()
        .find(|(_, size)| value >= *size)
        .map_or(("bytes", value), |(unit, size)| (*unit, value / size));
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(last: u8, up: bool, state: &str, owns: Option<f64>) -> NodeRow {
        NodeRow {
            host_id: Uuid::from_u128(last as u128),
            address: format!("127.0.20.{last}"),
            data_center: "datacenter1".into(),
            rack: "rack1".into(),
            up,
            state: state.into(),
            load: 48_800,
            tokens: 16,
            owns,
            schema_version: None,
        }
    }

    fn metadata() -> MetadataRow {
        MetadataRow {
            role: "follower".into(),
            term: 1,
            leader: Some(Uuid::from_u128(1)),
            leader_address: Some("127.0.20.1:7000".into()),
            voters: 3,
            learners: 0,
            last_applied: Some(9),
        }
    }

    #[test]
    fn renders_like_nodetool_status() {
        let status = Status {
            needs_repair: Vec::new(),
            streaming: None,
            movement: None,
            cluster_name: "c".into(),
            this_node: Uuid::from_u128(2),
            keyspace: Some("ks".into()),
            effective: true,
            note: None,
            nodes: vec![
                node(10, true, "Normal", Some(1.0)),
                node(2, false, "Normal", Some(1.0)),
                node(3, true, "Joining", None),
            ],
            metadata: metadata(),
        };
        let text = status.render();
        let expected = "\
Datacenter: datacenter1
=======================
Status=Up/Down
|/ State=Normal/Leaving/Joining/Moving
--  Address      Load       Tokens       Owns (effective)  Host ID                               Rack
DN  127.0.20.2   47.66 KiB  16           100.0%            00000000-0000-0000-0000-000000000002  rack1
UJ  127.0.20.3   47.66 KiB  16           ?                 00000000-0000-0000-0000-000000000003  rack1
UN  127.0.20.10  47.66 KiB  16           100.0%            00000000-0000-0000-0000-00000000000a  rack1

Metadata log: leader 127.0.20.1:7000 (00000000-0000-0000-0000-000000000001), term 1, 3 voters, 0 learners
This node (00000000-0000-0000-0000-000000000002): follower, applied through entry 9
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn raw_ownership_carries_the_note_and_round_trips_as_json() {
        let status = Status {
            needs_repair: Vec::new(),
            streaming: None,
            movement: None,
            cluster_name: "c".into(),
            this_node: Uuid::from_u128(1),
            keyspace: None,
            effective: false,
            note: Some("Non-system keyspaces don't have the same replication settings, effective ownership information is meaningless".into()),
            nodes: vec![node(1, true, "Leaving", Some(1.0 / 3.0))],
            metadata: metadata(),
        };
        let text = status.render();
        assert!(
            text.contains("--  Address     Load       Tokens       Owns    Host ID  "),
            "{text}"
        );
        assert!(
            text.contains("UL  127.0.20.1  47.66 KiB  16           33.3%   0000"),
            "{text}"
        );
        assert!(
            text.contains("\nNote: Non-system keyspaces don't have"),
            "{text}"
        );
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(file_size(0), "0 bytes");
        assert_eq!(file_size(1023), "1023 bytes");
        assert_eq!(file_size(1024), "1 KiB");
        assert_eq!(file_size(1536), "1.5 KiB");
        assert_eq!(file_size(5 * 1_048_576 + 1_048_576 / 3), "5.33 MiB");
    }
}

/// `GET /repair`'s JSON: the latest repair this node ran (or runs), for `ringcache repair`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepairReport {
    /// Counts up with every repair this node starts.
    pub id: u64,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// What was asked: `all user tables`, a keyspace, or `keyspace.table`.
    pub scope: String,
    /// Down nodes left out (`--force`).
    pub left_out: Vec<String>,
    pub tables_total: usize,
    pub tables_done: usize,
    /// The table being repaired now.
    pub table: Option<String>,
    pub spans_total: u64,
    pub spans_done: u64,
    pub leaves_compared: u64,
    pub leaves_mismatched: u64,
    pub partitions_compared: u64,
    pub partitions_repaired: u64,
    /// Encoded bytes of the repair writes sent to replicas.
    pub bytes_streamed: u64,
    /// Encoded bytes of trees, digests and partitions read from peers to find the differences.
    pub bytes_compared: u64,
    pub elapsed_secs: f64,
    /// Why it failed.
    pub error: Option<String>,
}
