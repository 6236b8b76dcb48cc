//! `ringcache chat load`: a chat service's traffic against a node, measured and verified.
//!
//! A run makes U users (logins), T threads whose popularity is Zipf-skewed (a few hot, most
//! quiet), and has each user follow some of them. Then workers post and read at a chosen
//! rate: posts name one or more threads by `#tag`; reads are the latest page of a thread, an
//! older page (scrolling back from the oldest message seen), a catch-up (everything after a
//! message seen), or a login's list of followed threads. Every operation is a prepared
//! statement of [`ChatClient`], timed per access pattern.
//!
//! The run's names carry a random run id, so its threads hold only its own posts, and at the
//! end [`verify`] reads each thread's whole history back: every acknowledged post must be in
//! each of its threads exactly once, newest first, with the threads it was posted to. A run
//! whose verification fails is a failed run (`ringcache chat load` exits non-zero).

mod stats;
mod verify;
mod zipf;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use super::{ChatClient, ChatError, User};
use stats::Stats;
use verify::Ledger;

pub use stats::{percentile, Pattern, PatternSummary};
pub use verify::Verification;
pub use zipf::Zipf;

/// What a load run does.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Users (U).
    pub users: usize,
    /// Threads (T).
    pub threads: usize,
    /// Threads each user follows.
    pub follows_per_user: usize,
    /// Zipf exponent of thread popularity (0 = uniform, 1 = classic Zipf).
    pub zipf_exponent: f64,
    /// Operations per second across all workers; 0 = as fast as the workers go.
    pub rate: f64,
    /// How long the traffic phase runs.
    pub duration: Duration,
    /// Stop after this many traffic operations, if sooner.
    pub max_ops: Option<u64>,
    /// Concurrent workers (requests in flight).
    pub concurrency: usize,
    /// Share of traffic operations that read (the rest post), 0..=1.
    pub read_share: f64,
    /// Messages per history page read.
    pub page_size: usize,
    /// Most threads one post names (each post names 1..=this many).
    pub max_tags: usize,
    /// Random seed (the run id is random regardless, so runs never share threads).
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            users: 100,
            threads: 50,
            follows_per_user: 5,
            zipf_exponent: 1.0,
            rate: 500.0,
            duration: Duration::from_secs(10),
            max_ops: None,
            concurrency: 16,
            read_share: 0.5,
            page_size: 50,
            max_tags: 3,
            seed: 1,
        }
    }
}

/// Counters shown while a run is going.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Time since the traffic phase began.
    pub elapsed: Duration,
    /// Successful traffic operations so far.
    pub ops: u64,
    /// Failed traffic operations so far.
    pub errors: u64,
    /// Acknowledged posts so far.
    pub posts: u64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        write!(
            f,
            "{:>6.1}s  {:>9} ops  {:>8.0} ops/s  {:>8} posts  {:>6} errors",
            self.elapsed.as_secs_f64(),
            self.ops,
            self.ops as f64 / secs,
            self.posts,
            self.errors
        )
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The run id in every user and thread name.
    pub run_id: String,
    /// Length of the traffic phase.
    pub elapsed: Duration,
    /// Each access pattern's operations, errors and latencies.
    pub patterns: Vec<PatternSummary>,
    /// The read-back check of every post.
    pub verification: Verification,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run {} ({:.1}s of traffic)",
            self.run_id,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "{:<18} {:>9} {:>7} {:>10} {:>10}",
            "pattern", "ops", "errors", "p50 ms", "p99 ms"
        )?;
        for p in &self.patterns {
            writeln!(f, "{p}")?;
        }
        write!(f, "{}", self.verification)
    }
}

/// The state the workers share.
struct Run {
    client: Arc<ChatClient>,
    opts: LoadOptions,
    users: Vec<User>,
    threads: Vec<String>,
    zipf: Zipf,
    stats: Stats,
    ledger: Mutex<Ledger>,
    /// Per thread: (oldest, newest) message id a read saw, cursors for older pages and
    /// catch-ups.
    seen: Mutex<HashMap<usize, (Uuid, Uuid)>>,
    next_op: AtomicU64,
    posts: AtomicU64,
}

/// Runs the load: setup, traffic, verification. `progress` is called about once a second.
pub async fn run(
    client: Arc<ChatClient>,
    opts: LoadOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<LoadReport, ChatError> {
    let run_id = format!("{:06x}", rand::random::<u32>() & 0xFF_FFFF);
    let run = Arc::new(Run {
        users: (0..opts.users.max(1))
            .map(|i| User::named(&format!("load{run_id}_u{i}"), &format!("user {i}")))
            .collect(),
        threads: (0..opts.threads.max(1))
            .map(|i| format!("load{run_id}_t{i}"))
            .collect(),
        zipf: Zipf::new(opts.threads.max(1), opts.zipf_exponent),
        client,
        opts,
        stats: Stats::default(),
        ledger: Mutex::new(Ledger::default()),
        seen: Mutex::new(HashMap::new()),
        next_op: AtomicU64::new(0),
        posts: AtomicU64::new(0),
    });
    setup(&run).await;
    let base = run.stats.totals();
    let started = Instant::now();
    let workers: Vec<_> = (0..run.opts.concurrency.max(1))
        .map(|w| tokio::spawn(worker(run.clone(), started, w as u64)))
        .collect();
    let mut done = futures::future::join_all(workers);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut done => break,
            _ = tick.tick() => progress(&snapshot(&run, started, base)),
        }
    }
    let elapsed = started.elapsed();
    progress(&snapshot(&run, started, base));
    let ledger = std::mem::take(&mut *run.ledger.lock().unwrap_or_else(|p| p.into_inner()));
    let verification = verify::verify(&run.client, &ledger, &run.threads).await;
    Ok(LoadReport {
        run_id,
        elapsed,
        patterns: run.stats.summaries(),
        verification,
    })
}

/// Traffic-phase counters: `base` is what setup did.
fn snapshot(run: &Run, started: Instant, base: (u64, u64)) -> Progress {
    let (ops, errors) = run.stats.totals();
    Progress {
        elapsed: started.elapsed(),
        ops: ops.saturating_sub(base.0),
        errors: errors.saturating_sub(base.1),
        posts: run.posts.load(Ordering::Relaxed),
    }
}

/// Times one operation into the stats; the value if it succeeded.
async fn timed<T>(
    run: &Run,
    pattern: Pattern,
    op: impl std::future::Future<Output = Result<T, ChatError>>,
) -> Option<T> {
    let start = Instant::now();
    let result = op.await;
    run.stats.record(pattern, start.elapsed(), result.is_ok());
    if let Err(error) = &result {
        tracing::warn!(%error, pattern = pattern.name(), "load operation failed");
    }
    result.ok()
}

/// Logins, threads and follows, sequentially (it is small next to the traffic).
async fn setup(run: &Run) {
    let c = &run.client;
    let mut rng = StdRng::seed_from_u64(run.opts.seed);
    for t in &run.threads {
        timed(run, Pattern::CreateThread, c.create_thread(t, "load", None)).await;
    }
    for user in &run.users {
        timed(run, Pattern::Login, c.get_or_create_user(user)).await;
        for i in run
            .zipf
            .sample_distinct(&mut rng, run.opts.follows_per_user)
        {
            if let Some(t) = run.threads.get(i) {
                timed(run, Pattern::Follow, c.follow(&user.user_id, t)).await;
            }
        }
    }
}

/// Takes operation tickets until the run's time or operation budget is spent; with a rate,
/// ticket n starts no earlier than n / rate seconds in.
async fn worker(run: Arc<Run>, started: Instant, id: u64) {
    let mut rng = StdRng::seed_from_u64(run.opts.seed.wrapping_add(id.wrapping_mul(7919)));
    loop {
        let n = run.next_op.fetch_add(1, Ordering::Relaxed);
        if run.opts.max_ops.is_some_and(|max| n >= max) {
            return;
        }
        if run.opts.rate > 0.0 {
            let at = started + Duration::from_secs_f64(n as f64 / run.opts.rate);
            tokio::time::sleep_until(at.into()).await;
        }
        if started.elapsed() >= run.opts.duration {
            return;
        }
        if rng.random_bool(run.opts.read_share.clamp(0.0, 1.0)) {
            read(&run, &mut rng).await;
        } else {
            post(&run, &mut rng, n).await;
        }
    }
}

async fn post(run: &Run, rng: &mut StdRng, n: u64) {
    let Some(user) = run.users.get(rng.random_range(0..run.users.len())) else {
        return;
    };
    let tags = rng.random_range(1..=run.opts.max_tags.max(1));
    let mut body = format!("load message {n} from {}", user.user_id);
    for i in run.zipf.sample_distinct(rng, tags) {
        if let Some(t) = run.threads.get(i) {
            body.push_str(" #");
            body.push_str(t);
        }
    }
    let id = run.client.ids.now();
    let posted = timed(
        run,
        Pattern::Post,
        run.client.post_with_id(user, &body, &[], id),
    )
    .await;
    let mut ledger = run.ledger.lock().unwrap_or_else(|p| p.into_inner());
    match posted {
        Some(m) => {
            ledger.posted.insert(id, m.other_threads);
            run.posts.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            ledger.failed.insert(id);
        }
    }
}

async fn read(run: &Run, rng: &mut StdRng) {
    let c = &run.client;
    let t = run.zipf.sample(rng);
    let Some(thread) = run.threads.get(t) else {
        return;
    };
    let page = run.opts.page_size.max(1);
    let cursor = {
        let seen = run.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&t).copied()
    };
    let roll: f64 = rng.random();
    let messages = match cursor {
        Some((oldest, _)) if roll < 0.2 => {
            timed(run, Pattern::Older, c.history(thread, Some(oldest), page)).await
        }
        Some((_, newest)) if roll < 0.35 => {
            timed(run, Pattern::CatchUp, c.catch_up(thread, newest, page)).await
        }
        _ if roll > 0.9 => {
            if let Some(user) = run.users.get(rng.random_range(0..run.users.len())) {
                let user = &user.user_id;
                timed(run, Pattern::FollowedThreads, c.followed_threads(user)).await;
            }
            None
        }
        _ => timed(run, Pattern::Latest, c.history(thread, None, page)).await,
    };
    if let Some(messages) = messages {
        remember_cursor(run, t, &messages);
    }
}

/// Keeps the oldest and newest ids seen in a thread, for later older pages and catch-ups.
fn remember_cursor(run: &Run, thread: usize, messages: &[super::Message]) {
    use scylla::value::CqlTimeuuid;
    let ids = messages.iter().map(|m| CqlTimeuuid::from(m.message_id));
    let (Some(min), Some(max)) = (ids.clone().min(), ids.max()) else {
        return;
    };
    let mut seen = run.seen.lock().unwrap_or_else(|p| p.into_inner());
    let entry = seen.entry(thread).or_insert((min.into(), max.into()));
    if min < CqlTimeuuid::from(entry.0) {
        entry.0 = min.into();
    }
    if max > CqlTimeuuid::from(entry.1) {
        entry.1 = max.into();
    }
}
