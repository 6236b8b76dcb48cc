//! Anti-entropy repair of whole tables, as `ringcache repair [keyspace[.table]]` and the
//! scheduled worker run it (design §17): which tables and token spans, which replicas, and
//! the refusal when one is down. Each span is repaired by `replication/repair.rs`.
//!
//! A repair run from one node covers every token span of each table's ring, not only the
//! spans this node replicates: one command leaves the whole table consistent, and every
//! replica of every span takes part. As `nodetool repair` does, it refuses to start while a
//! replica of a span it would repair is down (and names the nodes), since the down replica
//! would stay behind; `force` repairs among the live replicas instead.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::replication::{RepairProgress, Replica, SpanRepair};
use super::{restrict, Coordinator};
use crate::storage::merkle::TokenSpan;
use crate::storage::partition::TableLayout;

/// What to repair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairOptions {
    /// One keyspace, or every user keyspace.
    pub keyspace: Option<String>,
    /// One table of that keyspace, or all of them.
    pub table: Option<String>,
    /// Repair among the live replicas when some are down, instead of refusing.
    pub force: bool,
}

/// The tables a repair will visit, each with its spans and their replicas.
pub struct RepairPlan {
    pub tables: Vec<TablePlan>,
    /// Down nodes left out (with `force`).
    pub left_out: Vec<String>,
}

/// One table's part of a plan.
pub struct TablePlan {
    pub keyspace: String,
    pub table: String,
    layout: TableLayout,
    spans: Vec<(TokenSpan, Vec<Replica>)>,
}

impl TablePlan {
    /// `keyspace.table`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.keyspace, self.table)
    }

    /// How many token spans it has.
    pub fn spans(&self) -> usize {
        self.spans.len()
    }
}

impl Coordinator {
    /// Plans the streams of a node joining or leaving: for every user table, the spans
    /// that gain a replica (only those this node gains, when it is the one `joining`), each
    /// repaired from its live replicas into the pending ones (see `server/bootstrap.rs`,
    /// `server/decommission.rs`). Empty when no move is in progress.
    pub fn plan_movement(&self, joining: bool) -> Vec<TablePlan> {
        let catalog = self.read_catalog();
        let to = joining.then(|| self.replication.view().local);
        let mut tables = Vec::new();
        for keyspace in catalog.user_keyspaces() {
            let spans = self.replication.movement_spans(keyspace, to);
            if spans.is_empty() {
                continue;
            }
            for def in keyspace.tables.values() {
                tables.push(TablePlan {
                    keyspace: keyspace.name.clone(),
                    table: def.name.clone(),
                    layout: restrict::layout(def, &catalog),
                    spans: spans.clone(),
                });
            }
        }
        tables
    }

    /// Whether every user keyspace's replication factor still fits, in each data centre,
    /// in the nodes that own ranges once `leaving` is gone (Cassandra refuses a
    /// decommission that would not); why not, if not.
    pub fn fits_without(&self, leaving: uuid::Uuid) -> Result<(), String> {
        let view = self.replication.view();
        let catalog = self.read_catalog();
        let local_dc = &view.local().data_center;
        for keyspace in catalog.user_keyspaces() {
            use crate::ring::Strategy;
            let strategy = super::replication::strategy(keyspace);
            let remain = |dc: Option<&str>| {
                view.nodes
                    .values()
                    .filter(|n| n.status.owns_ranges() && n.host_id != leaving)
                    .filter(|n| dc.is_none_or(|dc| n.data_center == dc))
                    .count()
            };
            let needs: Vec<(Option<String>, usize)> = match &strategy {
                Strategy::Local => continue,
                Strategy::Simple { replication_factor } => vec![(None, *replication_factor)],
                Strategy::NetworkTopology { .. } => strategy
                    .factors(local_dc)
                    .into_iter()
                    .map(|(dc, rf)| (Some(dc), rf))
                    .collect(),
            };
            for (dc, rf) in needs {
                let remaining = remain(dc.as_deref());
                if rf > remaining {
                    let place = dc.unwrap_or_else(|| "the cluster".to_owned());
                    return Err(format!(
                        "keyspace {} has replication factor {rf} in {place}, and only \
                         {remaining} node(s) would remain there: lower it (ALTER KEYSPACE) first",
                        keyspace.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Plans a repair: the tables `options` names (user tables only), each span's replicas;
    /// refuses unknown names, and — unless `force` — any span with a replica down.
    pub fn plan_repair(&self, options: &RepairOptions) -> Result<RepairPlan, String> {
        let catalog = self.read_catalog();
        let keyspaces: Vec<_> = match &options.keyspace {
            Some(name) => {
                let keyspace = catalog
                    .keyspace(name)
                    .ok_or_else(|| format!("keyspace {name} does not exist"))?;
                if keyspace.is_system() {
                    return Err(format!(
                        "{name} is a system keyspace: it is local to each node and has nothing to repair"
                    ));
                }
                vec![keyspace]
            }
            None => catalog.user_keyspaces().collect(),
        };
        let mut tables = Vec::new();
        let mut down = std::collections::BTreeSet::new();
        for keyspace in keyspaces {
            let defs: Vec<_> = match &options.table {
                Some(name) => vec![keyspace
                    .tables
                    .get(name)
                    .ok_or_else(|| format!("table {}.{name} does not exist", keyspace.name))?],
                None => keyspace.tables.values().collect(),
            };
            let spans = self.replication.repair_spans(keyspace);
            for replica in spans.iter().flat_map(|(_, r)| r).filter(|r| !r.alive) {
                down.insert(replica.label());
            }
            for def in defs {
                tables.push(TablePlan {
                    keyspace: keyspace.name.clone(),
                    table: def.name.clone(),
                    layout: restrict::layout(def, &catalog),
                    spans: spans
                        .iter()
                        .map(|(span, replicas)| {
                            let live = replicas.iter().filter(|r| r.alive).cloned().collect();
                            (*span, live)
                        })
                        .collect(),
                });
            }
        }
        let down: Vec<String> = down.into_iter().collect();
        if !down.is_empty() && !options.force {
            return Err(format!(
                "cannot repair while replicas are down: {} (a down replica would stay behind; \
                 bring it back, or pass --force to repair among the live replicas)",
                down.join(", ")
            ));
        }
        Ok(RepairPlan {
            tables,
            left_out: down,
        })
    }

    /// Repairs every span of `table`, counting into `progress`; the first span that fails
    /// ends it, with the reason. When every replica took part (`everyone`), every node is
    /// told when it started, so tombstones older than that may be purged past gc_grace.
    pub async fn repair_table(
        &self,
        table: &TablePlan,
        depth: u8,
        progress: &Arc<RepairProgress>,
        everyone: bool,
    ) -> Result<(), String> {
        let started_at = crate::clock::now_micros();
        let now_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        for (span, replicas) in &table.spans {
            let job = SpanRepair {
                layout: &table.layout,
                span: *span,
                replicas: replicas.clone(),
                depth,
                now_secs,
            };
            self.replication
                .repair_span(&job, progress)
                .await
                .map_err(|e| {
                    format!(
                        "{}: token span {}..={}: {e}",
                        table.name(),
                        span.first,
                        span.last
                    )
                })?;
            progress
                .spans_done
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if everyone {
            let missed = self
                .replication
                .announce_repaired(table.layout.id, started_at)
                .await;
            if !missed.is_empty() {
                tracing::warn!(table = %table.name(), nodes = ?missed, "nodes did not record the repair; they keep its tombstones until the next one");
            }
        }
        Ok(())
    }
}

impl Coordinator {
    /// Every user table with its `gc_grace_seconds` and, if this node has recorded one, when
    /// its last repair that reached every replica started (µs), for the repair schedule.
    pub fn repairable_tables(&self) -> Vec<(String, String, i32, Option<i64>)> {
        let catalog = self.read_catalog();
        catalog
            .user_keyspaces()
            .flat_map(|k| k.tables.values())
            .map(|t| {
                (
                    t.keyspace.clone(),
                    t.name.clone(),
                    t.options.gc_grace_seconds,
                    self.replica.repaired_at(t.id),
                )
            })
            .collect()
    }

    /// Whether this node runs the cluster's scheduled repairs: the live node with the
    /// smallest host id does, so each table is repaired once per interval, not once per node,
    /// and another node takes over when it is down.
    pub fn runs_scheduled_repairs(&self) -> bool {
        let view = self.replication.view();
        view.nodes
            .values()
            .filter(|n| n.alive || n.host_id == view.local)
            .map(|n| n.host_id)
            .min()
            == Some(view.local)
    }
}

/// This node's own downtime before it started, when longer than the hint window.
#[derive(Debug, Clone, Copy)]
pub struct MissedHints {
    pub down: std::time::Duration,
    /// When this life began (µs): a repair of a table that started after it covers it.
    pub back_at: i64,
}

impl Coordinator {
    /// Nodes that missed writes no hint kept since the last repair of every table (this
    /// node's view, as their coordinator): they need a repair within gc_grace_seconds.
    /// This node itself is one while it was down longer than the hint window before it
    /// started and a table has not been repaired (with every replica) since.
    pub fn needs_repair(&self) -> Vec<String> {
        let mut nodes: Vec<String> = {
            let unhinted = self.replication.counters.unhinted.lock().expect("unhinted");
            unhinted.iter().cloned().collect()
        };
        // Set only when the node has seeds or has met a peer (`Server::start`).
        if let Some(missed) = self.missed_hints.get() {
            let repaired = self
                .repairable_tables()
                .iter()
                .all(|(.., at)| at.is_some_and(|at| at >= missed.back_at));
            if !repaired {
                nodes.push(format!(
                    "this node ({}, down {:.1} s before it started)",
                    self.cluster.transport.local().listen.ip(),
                    missed.down.as_secs_f64()
                ));
            }
        }
        nodes
    }

    /// Records that this node was down for `down`, longer than the hint window, before the
    /// life that began at `back_at` (µs).
    pub fn missed_hints(&self, down: std::time::Duration, back_at: i64) {
        let _ = self.missed_hints.set(MissedHints { down, back_at });
    }

    /// A repair of every user table succeeded with every replica: nothing is owed any more.
    pub fn repaired_everything(&self) {
        self.replication
            .counters
            .unhinted
            .lock()
            .expect("unhinted")
            .clear();
    }
}
