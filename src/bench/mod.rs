//! `ringcache bench`: a load generator for any CQL endpoint, and the instrument that says
//! what ringcache's numbers mean.
//!
//! It drives a target through the `scylla` driver with prepared statements — the chat
//! schema's history read, a point read, a message write, or a mix of reads and writes on
//! the same hot threads ([`workload`]) — with keys drawn uniformly or Zipf-skewed. Each
//! target is measured twice ([`measure`]): closed-loop throughput at a concurrency, then
//! open-loop latency at a fixed rate (by default half the throughput just measured), so
//! the percentiles show queueing instead of echoing the throughput. `--prewarm` first reads
//! every partition once, so a cache starts the measured phases holding what fits.
//!
//! With `--baseline`, the same run also measures the bare responder ([`responder`]) in
//! front of the target: the same client, runtime and frame codec, with every measured
//! request answered by a recorded reply of the real answer's size and no server work. It
//! is the most this machine can do for the workload, and ringcache's result is printed as
//! a fraction of it. Its open loop runs at the target's rate: latencies are compared at the
//! same offered load (at half its own, far higher, throughput the client itself saturates). Everything runs on one machine, client included: the ratio, not the
//! absolute rate, is what carries over.

pub mod measure;
pub mod responder;
pub mod workload;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::client::PoolSize;
use serde::Serialize;

use measure::{Live, Phase};
use responder::Responder;
use workload::{Keys, Requests, Workload};

/// What a run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target's CQL address (`host:port`).
    pub contact: String,
    pub workload: Workload,
    /// Partitions (threads, or users for `point`) the keys range over.
    pub partitions: usize,
    /// Messages written per thread by `--populate`.
    pub rows_per_partition: usize,
    /// The history read's LIMIT.
    pub limit: usize,
    /// Zipf exponent of key popularity; None for uniform.
    pub zipf: Option<f64>,
    /// Requests in flight in the closed loop.
    pub concurrency: usize,
    /// Connections the driver opens to the target.
    pub connections: usize,
    /// Length of each measured phase.
    pub duration: Duration,
    /// Unmeasured closed-loop time before the measured phases (fills caches, JITs).
    pub warmup: Duration,
    /// Open-loop rate in requests per second; None: `rate_fraction` of the closed loop's.
    pub rate: Option<f64>,
    pub rate_fraction: f64,
    /// Write the data first (the chat schema is created if missing).
    pub populate: bool,
    /// Read every partition once before measuring.
    pub prewarm: bool,
    /// Also measure the bare responder in front of the target.
    pub baseline: bool,
    /// Where to write the results as JSON.
    pub json: Option<PathBuf>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Print a progress line every second (to stderr).
    pub progress: bool,
    /// Send every request to the contact node only (no token-aware routing): the node
    /// coordinates everything, as a driver pinned to one node would make it.
    pub pin: bool,
    /// Addresses the driver learns (from `system.local`/`system.peers`) to reach at another
    /// address instead, `(learned, reached)`: a proxy that passes the backend's own address
    /// through to drivers is measured by sending everything to the proxy. The contact is
    /// always reached at itself.
    pub translate: Vec<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// With `populate`: the chat keyspace's replication factor (SimpleStrategy), so the
    /// same workload measures a replicated cluster.
    pub replication_factor: Option<usize>,
    /// The measured node's metrics endpoint (`host:port`), read for its CPU time around
    /// each phase; None: the contact's host on port 9180.
    pub metrics: Option<String>,
    /// Every request's consistency level; None: the driver's default.
    pub consistency: Option<crate::protocol::Consistency>,
}

/// One target's results.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// `host:port`, or `bare responder`.
    pub target: String,
    pub closed: Phase,
    pub open: Phase,
}

/// A run's results.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: String,
    pub partitions: usize,
    pub limit: usize,
    pub distribution: String,
    pub concurrency: usize,
    pub connections: usize,
    pub seconds: f64,
    pub target: Measured,
    pub baseline: Option<Measured>,
    /// target / baseline closed-loop throughput.
    pub throughput_ratio: Option<f64>,
    /// Sizes of the recorded replies the baseline answered with, in bytes.
    pub baseline_reply_bytes: Vec<usize>,
}

/// Why a benchmark could not run: the endpoint, the schema or the workload failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

impl From<String> for BenchError {
    fn from(message: String) -> Self {
        BenchError(message)
    }
}

/// Runs the benchmark and prints its report; Err if the target cannot be used or any
/// request failed.
pub async fn run(options: Options) -> Result<Report, BenchError> {
    let session = connect(
        &options.contact,
        options.connections,
        (options.pin, &options.translate),
        options.consistency,
    )
    .await?;
    if options.populate {
        populate(&session, &options).await?;
    }
    if options.prewarm {
        prewarm(&session, &options).await?;
    }
    let node = Some(node_metrics(&options));
    let target = measure_target(session, &options, options.contact.clone(), None, node).await?;
    let (baseline, reply_bytes) = match options.baseline {
        true => {
            let rate = target.open.scheduled_rate;
            let (measured, sizes) = measure_baseline(&options, rate).await?;
            (Some(measured), sizes)
        }
        false => (None, Vec::new()),
    };
    let report = Report {
        workload: options.workload.name().to_owned(),
        partitions: options.partitions,
        limit: options.limit,
        distribution: match options.zipf {
            Some(s) => format!("zipf s={s}"),
            None => "uniform".to_owned(),
        },
        concurrency: options.concurrency,
        connections: options.connections,
        seconds: options.duration.as_secs_f64(),
        throughput_ratio: baseline
            .as_ref()
            .map(|b| target.closed.throughput / b.closed.throughput.max(f64::EPSILON)),
        target,
        baseline,
        baseline_reply_bytes: reply_bytes,
    };
    print_report(&report);
    if let Some(path) = &options.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let failed = |m: &Measured| m.closed.errors + m.open.errors;
    let errors = failed(&report.target) + report.baseline.as_ref().map_or(0, failed);
    if errors > 0 {
        return Err(BenchError(format!("{errors} requests failed")));
    }
    Ok(report)
}

/// A session to `contact`; `route` is whether it is pinned to the contact and the
/// addresses it translates ([`Options::pin`], [`Options::translate`]).
async fn connect(
    contact: &str,
    connections: usize,
    route: (bool, &[(std::net::SocketAddr, std::net::SocketAddr)]),
    consistency: Option<crate::protocol::Consistency>,
) -> Result<Arc<Session>, String> {
    let (pin, translate) = route;
    let size = std::num::NonZeroUsize::new(connections.max(1)).expect("at least one");
    let mut builder = SessionBuilder::new()
        .known_node(contact)
        .pool_size(PoolSize::PerHost(size));
    if let Some(level) = consistency {
        // The driver's levels carry the same wire codes.
        let level = scylla::statement::Consistency::try_from(level as u16)
            .map_err(|e| format!("consistency {}: {e}", level.name()))?;
        let profile = scylla::client::execution_profile::ExecutionProfile::builder()
            .consistency(level)
            .build();
        builder = builder.default_execution_profile_handle(profile.into_handle());
    }
    if !translate.is_empty() {
        let mut map: std::collections::HashMap<std::net::SocketAddr, std::net::SocketAddr> =
            translate.iter().copied().collect();
        let at: std::net::SocketAddr = contact
            .parse()
            .map_err(|e| format!("--translate needs the contact as ip:port ({contact}): {e}"))?;
        map.insert(at, at);
        builder = builder.address_translator(Arc::new(map));
    }
    if pin {
        let only = scylla::policies::host_filter::AllowListHostFilter::new([contact])
            .map_err(|e| format!("cannot pin to {contact}: {e}"))?;
        builder = builder.host_filter(Arc::new(only));
    }
    builder
        .build()
        .await
        .map(Arc::new)
        .map_err(|e| format!("cannot connect to {contact}: {e}"))
}

/// Creates the chat schema if missing and writes the partitions the workload reads.
async fn populate(session: &Arc<Session>, options: &Options) -> Result<(), String> {
    for statement in crate::cql::split_script(crate::chat::SCHEMA) {
        session
            .query_unpaged(statement, &[])
            .await
            .map_err(|e| format!("cannot create the chat schema: {e}"))?;
    }
    if let Some(rf) = options.replication_factor {
        let alter = format!(
            "ALTER KEYSPACE chat WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
        );
        session
            .query_unpaged(alter, &[])
            .await
            .map_err(|e| format!("cannot set the chat keyspace's replication: {e}"))?;
    }
    session
        .await_schema_agreement()
        .await
        .map_err(|e| e.to_string())?;
    let keys = Keys::new(options.partitions, options.zipf);
    let requests = Requests::prepare(session, options.workload, keys, options.limit).await?;
    let total = options.partitions;
    let started = std::time::Instant::now();
    let show = options.progress;
    requests
        .populate(session, total, options.rows_per_partition, 64, |done| {
            if show {
                eprint!("\rpopulating: {done}/{total} partitions");
            }
        })
        .await?;
    if show {
        eprintln!(
            "\rpopulated {total} partitions × {} rows in {:.1} s",
            options.rows_per_partition,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Reads every partition once, `concurrency` at a time.
async fn prewarm(session: &Arc<Session>, options: &Options) -> Result<(), String> {
    let keys = Keys::new(options.partitions, options.zipf);
    let requests = Requests::prepare(session, options.workload, keys, options.limit).await?;
    let started = std::time::Instant::now();
    requests
        .read_each(session, options.partitions, options.concurrency)
        .await?;
    if options.progress {
        eprintln!(
            "prewarmed {} partitions in {:.1} s",
            options.partitions,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Warm-up, closed loop, then the open loop at `open_rate` (default: the configured rate,
/// or the fraction of the closed loop's throughput); each phase's CPU per request read from
/// this process and from the node whose metrics are at `node` (None for the bare
/// responder, which runs in this process).
async fn measure_target(
    session: Arc<Session>,
    options: &Options,
    name: String,
    open_rate: Option<f64>,
    node: Option<String>,
) -> Result<Measured, String> {
    let keys = Keys::new(options.partitions, options.zipf);
    let requests = Requests::prepare(&session, options.workload, keys, options.limit).await?;
    let requests = Arc::new(requests);
    let seed = options.seed;
    if !options.warmup.is_zero() {
        let live = Arc::new(Live::default());
        let warm = measure::closed_loop(
            session.clone(),
            requests.clone(),
            options.concurrency,
            options.warmup,
            seed ^ 0x5741_524d,
            live,
        );
        warm.await;
    }
    let cpu = CpuClocks::read(node.as_deref()).await;
    let mut closed = with_progress(options, &format!("{name} closed loop"), |live| {
        measure::closed_loop(
            session.clone(),
            requests.clone(),
            options.concurrency,
            options.duration,
            seed,
            live,
        )
    })
    .await;
    cpu.charge(&mut closed, node.as_deref()).await;
    let rate = options
        .rate
        .or(open_rate)
        .unwrap_or(closed.throughput * options.rate_fraction);
    if rate <= 0.0 {
        // No open loop asked for (`--rate-fraction 0`): the closed loop alone.
        return Ok(Measured {
            target: name,
            closed,
            open: Phase::default(),
        });
    }
    let cpu = CpuClocks::read(node.as_deref()).await;
    let mut open = with_progress(options, &format!("{name} open loop"), |live| {
        measure::open_loop(
            session.clone(),
            requests.clone(),
            rate,
            options.duration,
            seed ^ 0x4f50_454e,
            live,
        )
    })
    .await;
    cpu.charge(&mut open, node.as_deref()).await;
    Ok(Measured {
        target: name,
        closed,
        open,
    })
}

/// The measured node's metrics endpoint: `--metrics`, or the contact's host on 9180.
fn node_metrics(options: &Options) -> String {
    options.metrics.clone().unwrap_or_else(|| {
        let host = options
            .contact
            .rsplit_once(':')
            .map_or(options.contact.as_str(), |(host, _)| host);
        format!("{host}:9180")
    })
}

/// CPU seconds used so far by this process and by the measured node (if it says).
struct CpuClocks {
    bench: f64,
    node: Option<f64>,
}

impl CpuClocks {
    async fn read(node: Option<&str>) -> CpuClocks {
        let node = match node {
            Some(addr) => node_cpu_seconds(addr.to_owned()).await,
            None => None,
        };
        CpuClocks {
            bench: crate::metrics::alloc::cpu_seconds().unwrap_or(0.0),
            node,
        }
    }

    /// Sets `phase`'s CPU per answered request from the clocks now against these.
    async fn charge(self, phase: &mut Phase, node: Option<&str>) {
        let now = CpuClocks::read(node).await;
        let per_op = |seconds: f64| seconds * 1e6 / phase.ops.max(1) as f64;
        phase.bench_cpu_us_per_op = per_op(now.bench - self.bench);
        phase.node_cpu_us_per_op = match (self.node, now.node) {
            (Some(before), Some(after)) => Some(per_op(after - before)),
            _ => None,
        };
    }
}

/// The node's `process_cpu_seconds_total`, scraped from `addr`; None if it cannot be read.
async fn node_cpu_seconds(addr: String) -> Option<f64> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
            .and_then(|v| v.trim().parse().ok())
    })
    .await
    .ok()
    .flatten()
}

/// The bare responder in front of the target: one request of each kind recorded, then
/// measured like the target.
async fn measure_baseline(
    options: &Options,
    open_rate: Option<f64>,
) -> Result<(Measured, Vec<usize>), String> {
    let upstream = tokio::net::lookup_host(&options.contact)
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", options.contact))?
        .next()
        .ok_or_else(|| format!("{} resolves to nothing", options.contact))?;
    let responder = Responder::replaying(upstream)
        .await
        .map_err(|e| format!("cannot start the bare responder: {e}"))?;
    let session = connect(
        &responder.addr.to_string(),
        options.connections,
        (false, &[]),
        None,
    )
    .await?;
    record_replies(&session, options).await?;
    responder.arm();
    let sizes = responder.recorded();
    let name = "bare responder".to_owned();
    let measured = measure_target(session, options, name, open_rate, None).await?;
    Ok((measured, sizes))
}

/// Sends requests through the (unarmed) responder until each statement the workload uses
/// has a recorded reply.
async fn record_replies(session: &Session, options: &Options) -> Result<(), String> {
    let keys = Keys::new(options.partitions, options.zipf);
    let requests = Requests::prepare(session, options.workload, keys, options.limit).await?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(options.seed);
    let wants = match options.workload {
        Workload::Mix { .. } => 2,
        _ => 1,
    };
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..1000 {
        let op = requests.send(session, &mut rng).await?;
        kinds.insert(op == workload::Op::Read);
        if kinds.len() >= wants {
            return Ok(());
        }
    }
    Err("the workload never sent each of its statements".into())
}

/// Runs `phase` with a progress line every second when asked.
async fn with_progress<F, Fut>(options: &Options, label: &str, phase: F) -> Phase
where
    F: FnOnce(Arc<Live>) -> Fut,
    Fut: std::future::Future<Output = Phase>,
{
    let live = Arc::new(Live::default());
    let ticker = options.progress.then(|| {
        let (live, label) = (live.clone(), label.to_owned());
        tokio::spawn(async move {
            let mut last = 0;
            let mut second = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                second += 1;
                let ops = live.ops.load(Ordering::Relaxed);
                let errors = live.errors.load(Ordering::Relaxed);
                eprint!(
                    "\r{label}: {second:>3} s  {:>9} ops/s  {errors} errors   ",
                    ops - last
                );
                let _ = std::io::stderr().flush();
                last = ops;
            }
        })
    });
    let result = phase(live).await;
    if let Some(ticker) = ticker {
        ticker.abort();
        eprintln!();
    }
    result
}

fn print_report(report: &Report) {
    println!(
        "workload {} (LIMIT {}), {} partitions, {}, concurrency {}, {} connections, {} s per phase",
        report.workload,
        report.limit,
        report.partitions,
        report.distribution,
        report.concurrency,
        report.connections,
        report.seconds
    );
    println!(
        "{:<22} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>7} {:>14} {:>15}",
        "target",
        "closed op/s",
        "open rate",
        "p50 µs",
        "p95 µs",
        "p99 µs",
        "p99.9 µs",
        "errors",
        "node CPU µs/op",
        "bench CPU µs/op"
    );
    for m in std::iter::once(&report.target).chain(&report.baseline) {
        let node_cpu = m
            .closed
            .node_cpu_us_per_op
            .map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"));
        println!(
            "{:<22} {:>12.0} {:>12.0} {:>9} {:>9} {:>9} {:>9} {:>7} {:>14} {:>15.1}",
            m.target,
            m.closed.throughput,
            m.open.scheduled_rate.unwrap_or(0.0),
            m.open.p50_us,
            m.open.p95_us,
            m.open.p99_us,
            m.open.p999_us,
            m.closed.errors + m.open.errors + m.open.missed,
            node_cpu,
            m.closed.bench_cpu_us_per_op,
        );
    }
    println!(
        "(CPU per answered request in the closed loop: the measured node's own, and this \
         process's, which holds the load generator and, for the bare responder, the \
         responder too)"
    );
    if let Some(ratio) = report.throughput_ratio {
        println!("throughput ratio (target / bare responder): {ratio:.2}");
    }
}
