//! Repair jobs on this node: at most one at a time, started by `POST /repair` (`ringcache
//! repair`), watched through `GET /repair`, each table's last success kept for the metrics.
//! The repair itself is `coordinator/repair.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Shared;
use crate::coordinator::{RepairCounts, RepairOptions, RepairProgress, TablePlan};
use crate::metrics::status::RepairReport;

/// The streams of a node joining or leaving, each reported as a repair job of its own scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Bootstrap,
    Decommission,
}

impl Stream {
    /// Whether a report's `scope` is a join's or leave's stream (not a repair).
    pub fn is_stream(scope: &str) -> bool {
        [Stream::Bootstrap, Stream::Decommission]
            .iter()
            .any(|s| s.name() == scope)
    }

    /// The job's scope in reports.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Bootstrap => "bootstrap",
            Stream::Decommission => "decommission",
        }
    }
}

/// What a job is: a repair (`everyone`: every replica takes part, see `repair_table`), or
/// the stream of a node joining or leaving.
#[derive(Debug, Clone, Copy)]
enum Job {
    Repair { everyone: bool },
    Stream,
}

/// The id of the job running, if one is.
fn running(state: &State) -> Option<u64> {
    state
        .latest
        .as_ref()
        .filter(|(report, _, _)| report.state == "running")
        .map(|(report, _, _)| report.id)
}

/// Records a new job over `tables` as the latest: its first report and its counts.
fn register(
    state: &mut State,
    scope: String,
    tables: &[TablePlan],
    left_out: &[String],
) -> (RepairReport, Arc<RepairProgress>) {
    state.next_id += 1;
    let progress = Arc::new(RepairProgress::default());
    let spans = tables.iter().map(|t| t.spans() as u64).sum();
    progress.spans_total.store(spans, Ordering::Relaxed);
    let report = RepairReport {
        id: state.next_id,
        state: "running".to_owned(),
        scope,
        left_out: left_out.to_vec(),
        tables_total: tables.len(),
        spans_total: spans,
        ..RepairReport::default()
    };
    state.latest = Some((report.clone(), progress.clone(), Instant::now()));
    (report, progress)
}

/// This node's repairs.
pub struct Repairs {
    shared: Weak<Shared>,
    state: Mutex<State>,
    /// The counts of every repair finished, for the metrics.
    finished: Mutex<RepairCounts>,
    /// Repairs and streams finished, by `(kind, outcome)`: "repair" or "stream", and
    /// "succeeded" or "failed".
    runs: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// When this node started (Unix seconds): the schedule counts from here for a table it
    /// has not repaired yet.
    since: u64,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// The latest repair's report, its live counts, and when it started.
    latest: Option<(RepairReport, Arc<RepairProgress>, Instant)>,
    /// Unix seconds of each table's last successful repair, by `keyspace.table`.
    last_success: BTreeMap<(String, String), u64>,
}

/// Why a repair did not start.
#[derive(Debug, PartialEq, Eq)]
pub enum StartError {
    /// One is running (its id).
    Running(u64),
    /// Refused: an unknown name, a replica down.
    Refused(String),
}

impl Repairs {
    pub fn new(shared: Weak<Shared>) -> Repairs {
        Repairs {
            shared,
            state: Mutex::new(State::default()),
            finished: Mutex::new(RepairCounts::default()),
            runs: Mutex::default(),
            since: unix_now(),
        }
    }

    /// Starts a repair in the background; its first report.
    pub fn start(self: &Arc<Self>, options: RepairOptions) -> Result<RepairReport, StartError> {
        let shared = self
            .shared
            .upgrade()
            .ok_or_else(|| StartError::Refused("the node is shutting down".to_owned()))?;
        let mut state = self.state.lock().expect("repair state");
        if let Some(id) = running(&state) {
            return Err(StartError::Running(id));
        }
        let plan = shared
            .coordinator
            .plan_repair(&options)
            .map_err(StartError::Refused)?;
        let scope = match (&options.keyspace, &options.table) {
            (Some(k), Some(t)) => format!("{k}.{t}"),
            (Some(k), None) => k.clone(),
            _ => "all user tables".to_owned(),
        };
        let (report, progress) = register(&mut state, scope, &plan.tables, &plan.left_out);
        drop(state);
        let repairs = self.clone();
        tokio::spawn(async move {
            let job = Job::Repair {
                everyone: plan.left_out.is_empty(),
            };
            let failure = repairs
                .run_tables(&shared, &plan.tables, &progress, job)
                .await;
            let everything = options.keyspace.is_none() && plan.left_out.is_empty();
            if failure.is_none() && everything {
                shared.coordinator.repaired_everything();
            }
            match &failure {
                None => tracing::info!(id = report.id, "repair succeeded"),
                Some(error) => tracing::warn!(id = report.id, %error, "repair failed"),
            }
            repairs.finish(&progress, failure);
        });
        Ok(self.report().expect("just started"))
    }

    /// Repairs `tables` in turn, counting into `progress` and the report; the first
    /// failure ends it. A repair's successes count for the schedule; a stream's do not.
    async fn run_tables(
        &self,
        shared: &Shared,
        tables: &[TablePlan],
        progress: &Arc<RepairProgress>,
        job: Job,
    ) -> Option<String> {
        let depth = shared.config.repair_merkle_depth;
        let everyone = matches!(job, Job::Repair { everyone: true });
        for table in tables {
            self.update(|report| report.table = Some(table.name()));
            if let Err(error) = shared
                .coordinator
                .repair_table(table, depth, progress, everyone)
                .await
            {
                return Some(error);
            }
            let mut state = self.state.lock().expect("repair state");
            if let Job::Repair { .. } = job {
                state
                    .last_success
                    .insert((table.keyspace.clone(), table.table.clone()), unix_now());
            }
            if let Some((report, _, _)) = &mut state.latest {
                report.tables_done += 1;
            }
        }
        None
    }

    /// Registers the stream of a node joining or leaving (`Coordinator::plan_movement`:
    /// spans repaired from their live replicas into the pending ones) as this node's repair
    /// job, scope `bootstrap` or `decommission`, so `ringcache status` and `GET /repair`
    /// show its progress: its first report and its counts. Refused while a repair runs.
    pub fn begin_stream(
        &self,
        scope: Stream,
        tables: &[TablePlan],
    ) -> Result<(RepairReport, Arc<RepairProgress>), String> {
        let mut state = self.state.lock().expect("repair state");
        if let Some(id) = running(&state) {
            return Err(format!("repair {id} is running on this node"));
        }
        Ok(register(&mut state, scope.name().to_owned(), tables, &[]))
    }

    /// Runs a stream [`Repairs::begin_stream`] registered; what it streamed, or the first
    /// failure. With `[faults] skip_streaming` it streams nothing.
    pub async fn stream(
        &self,
        shared: &Shared,
        tables: &[TablePlan],
        progress: &Arc<RepairProgress>,
    ) -> Result<RepairCounts, String> {
        let tables = match shared.config.faults.skip_streaming {
            true => {
                tracing::warn!("[faults] skip_streaming: moving without the data");
                &[][..]
            }
            false => tables,
        };
        let failure = self.run_tables(shared, tables, progress, Job::Stream).await;
        self.finish(progress, failure.clone());
        match failure {
            None => Ok(progress.counts()),
            Some(error) => Err(error),
        }
    }

    /// Ends a stream [`Repairs::begin_stream`] registered before it ran: failed, for `why`.
    pub fn abandon(&self, progress: &RepairProgress, why: String) {
        self.finish(progress, Some(why));
    }

    /// A join's or leave's stream in progress here, for `ringcache status`.
    pub fn streaming(&self) -> Option<RepairReport> {
        self.report()
            .filter(|r| r.state == "running" && Stream::is_stream(&r.scope))
    }

    fn update(&self, change: impl FnOnce(&mut RepairReport)) {
        if let Some((report, _, _)) = &mut self.state.lock().expect("repair state").latest {
            change(report);
        }
    }

    /// Marks the running repair done and adds its counts to the totals.
    fn finish(&self, progress: &RepairProgress, failure: Option<String>) {
        {
            let mut finished = self.finished.lock().expect("repair totals");
            *finished = *finished + progress.counts();
        }
        let mut kind = "repair";
        let outcome = match failure {
            None => "succeeded",
            Some(_) => "failed",
        };
        self.update(|report| {
            if Stream::is_stream(&report.scope) {
                kind = "stream";
            }
            report.table = None;
            report.state = outcome.to_owned();
            report.error = failure;
        });
        *self
            .runs
            .lock()
            .expect("repair runs")
            .entry((kind, outcome))
            .or_default() += 1;
    }

    /// The latest repair's report, with its counts as they are now.
    pub fn report(&self) -> Option<RepairReport> {
        let state = self.state.lock().expect("repair state");
        let (report, progress, started) = state.latest.as_ref()?;
        let mut report = report.clone();
        let counts = progress.counts();
        report.spans_total = progress.spans_total.load(Ordering::Relaxed);
        report.spans_done = counts.spans_done;
        report.leaves_compared = counts.leaves_compared;
        report.leaves_mismatched = counts.leaves_mismatched;
        report.partitions_compared = counts.partitions_compared;
        report.partitions_repaired = counts.partitions_repaired;
        report.bytes_streamed = counts.bytes_streamed;
        report.bytes_compared = counts.bytes_compared;
        report.elapsed_secs = started.elapsed().as_secs_f64();
        Some(report)
    }

    /// One look of the scheduled worker: on the node that runs the cluster's scheduled
    /// repairs (`Coordinator::runs_scheduled_repairs`), with no repair running, starts a
    /// repair of the first table whose last success (or this node's start) is older than its
    /// interval — `interval`, or half its `gc_grace_seconds` if that is shorter, so every
    /// table is repaired well within gc_grace — less a random tenth, so tables created
    /// together drift apart. A refusal (a replica down) is logged and tried again at the next
    /// look. Returns the table started.
    pub fn scheduled_pass(self: &Arc<Self>, interval: std::time::Duration) -> Option<String> {
        let shared = self.shared.upgrade()?;
        if interval.is_zero() || !shared.coordinator.runs_scheduled_repairs() {
            return None;
        }
        let now = unix_now();
        let due = {
            let state = self.state.lock().expect("repair state");
            if matches!(&state.latest, Some((r, _, _)) if r.state == "running") {
                return None;
            }
            shared.coordinator.repairable_tables().into_iter().find(
                |(keyspace, table, gc_grace, repaired_at)| {
                    let mut every = interval.as_secs_f64();
                    if *gc_grace > 0 {
                        every = every.min(f64::from(*gc_grace) / 2.0);
                    }
                    every *= 1.0 - rand::random::<f64>() / 10.0;
                    // This node's own runs, else the last full repair any node recorded
                    // here (it survives restarts), else this node's start.
                    let last = state
                        .last_success
                        .get(&(keyspace.clone(), table.clone()))
                        .copied()
                        .or(repaired_at.map(|us| u64::try_from(us / 1_000_000).unwrap_or(0)))
                        .unwrap_or(self.since);
                    (now.saturating_sub(last)) as f64 >= every
                },
            )
        };
        let (keyspace, table, _, _) = due?;
        let name = format!("{keyspace}.{table}");
        let options = RepairOptions {
            keyspace: Some(keyspace),
            table: Some(table),
            force: false,
        };
        match self.start(options) {
            Ok(report) => {
                tracing::info!(id = report.id, table = %name, "scheduled repair started");
                Some(name)
            }
            Err(StartError::Running(_)) => None,
            Err(StartError::Refused(why)) => {
                tracing::warn!(table = %name, %why, "scheduled repair could not start");
                None
            }
        }
    }

    /// Repairs and streams finished on this node: `(kind, outcome, how many)`.
    pub fn runs(&self) -> Vec<(&'static str, &'static str, u64)> {
        let runs = self.runs.lock().expect("repair runs");
        runs.iter().map(|((k, o), n)| (*k, *o, *n)).collect()
    }

    /// Counts of every repair finished on this node, and each table's last success (Unix
    /// seconds), for the metrics.
    pub fn totals(&self) -> (RepairCounts, Vec<(String, String, u64)>) {
        let mut sum = *self.finished.lock().expect("repair totals");
        let state = self.state.lock().expect("repair state");
        if let Some((report, progress, _)) = &state.latest {
            if report.state == "running" {
                sum = sum + progress.counts();
            }
        }
        let last = state
            .last_success
            .iter()
            .map(|((k, t), at)| (k.clone(), t.clone(), *at))
            .collect();
        (sum, last)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `/repair` over this node's repairs.
pub struct Endpoint(pub Arc<Repairs>);

impl crate::metrics::RepairAdmin for Endpoint {
    fn start(
        &self,
        keyspace: Option<String>,
        table: Option<String>,
        force: bool,
    ) -> Result<String, (&'static str, String)> {
        if table.is_some() && keyspace.is_none() {
            return Err(("400 Bad Request", "a table needs its keyspace".to_owned()));
        }
        let options = RepairOptions {
            keyspace,
            table,
            force,
        };
        match self.0.start(options) {
            Ok(report) => Ok(to_json(&report)),
            Err(StartError::Running(id)) => Err((
                "409 Conflict",
                format!("repair {id} is still running on this node"),
            )),
            Err(StartError::Refused(why)) => Err(("400 Bad Request", why)),
        }
    }

    fn report(&self) -> Option<String> {
        self.0.report().map(|r| to_json(&r))
    }
}

fn to_json(report: &RepairReport) -> String {
    serde_json::to_string_pretty(report).expect("a report serializes")
}
