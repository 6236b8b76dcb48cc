//! What `ringcache bench` sends: the chat schema's own reads and writes, on keys it writes
//! itself, so the same command measures ringcache, ScyllaDB or Cassandra.
//!
//! - `latest`: the chat history read — the newest N messages of one (thread, day)
//!   partition of `chat.messages_by_thread`, exactly the statement the chat client sends.
//! - `point`: one user's row of `chat.users`.
//! - `write`: a new message in a thread.
//! - `mix`: `latest` reads and `write`s to the same skewed threads, so hot threads are
//!   written while they are read (what the cache must stay exact under).
//!
//! Threads are `bench-<n>`, users `bench-user-<n>`, all in one fixed day bucket, so
//! populating is repeatable and a second run reuses the data.

use std::sync::Arc;

use rand::Rng;
use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimeuuid, MaybeUnset};
use uuid::Uuid;

use crate::chat::load::Zipf;
use crate::chat::statements;
use crate::chat::timeuuid::TimeuuidGenerator;

/// The day bucket every bench message is written in (2024-10-05, a fixed day).
pub const BUCKET: i32 = 20_001;

/// Which requests a run sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// The latest N messages of a thread.
    Latest,
    /// One user's row.
    Point,
    /// A new message in a thread.
    Write,
    /// Latest reads with this share of requests, writes to the same threads otherwise.
    Mix { read_share: f64 },
}

impl Workload {
    /// The name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Latest => "latest",
            Workload::Point => "point",
            Workload::Write => "write",
            Workload::Mix { .. } => "mix",
        }
    }

    fn reads_users(&self) -> bool {
        matches!(self, Workload::Point)
    }
}

/// How keys are chosen.
#[derive(Debug, Clone)]
pub enum Keys {
    /// Every key equally likely.
    Uniform(usize),
    /// Rank r with probability ∝ 1/(r+1)^s.
    Zipf(Arc<Zipf>),
}

impl Keys {
    /// Keys over `n` items: Zipf with exponent `s`, or uniform when `s` is None.
    pub fn new(n: usize, zipf: Option<f64>) -> Keys {
        match zipf {
            Some(s) => Keys::Zipf(Arc::new(Zipf::new(n, s))),
            None => Keys::Uniform(n.max(1)),
        }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        match self {
            Keys::Uniform(n) => rng.random_range(0..*n),
            Keys::Zipf(z) => z.sample(rng),
        }
    }
}

/// One request of a run, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
}

/// The prepared statements of a run and how to pick keys for them.
pub struct Requests {
    latest: PreparedStatement,
    user: PreparedStatement,
    post: PreparedStatement,
    workload: Workload,
    keys: Keys,
    limit: i32,
    ids: TimeuuidGenerator,
}

impl Requests {
    /// Prepares the run's statements on `session`.
    pub async fn prepare(
        session: &Session,
        workload: Workload,
        keys: Keys,
        limit: usize,
    ) -> Result<Requests, String> {
        let prepare = |text: String| async move {
            session.prepare(text).await.map_err(|e| {
                format!("cannot prepare a bench statement (is the chat schema there?): {e}")
            })
        };
        Ok(Requests {
            latest: prepare(statements::latest()).await?,
            user: prepare(statements::GET_USER.into()).await?,
            post: prepare(statements::POST.into()).await?,
            workload,
            keys,
            limit: i32::try_from(limit).unwrap_or(i32::MAX),
            ids: TimeuuidGenerator::new(),
        })
    }

    /// Sends one request of the workload; returns its kind.
    pub async fn send(&self, session: &Session, rng: &mut impl Rng) -> Result<Op, String> {
        let key = self.keys.sample(rng);
        let op = match self.workload {
            Workload::Latest | Workload::Point => Op::Read,
            Workload::Write => Op::Write,
            Workload::Mix { read_share } => match rng.random_bool(read_share.clamp(0.0, 1.0)) {
                true => Op::Read,
                false => Op::Write,
            },
        };
        let result = match (op, self.workload.reads_users()) {
            (Op::Read, true) => {
                let values = (user_id(key),);
                session.execute_unpaged(&self.user, values).await
            }
            (Op::Read, false) => {
                let values = (thread_id(key), BUCKET, self.limit);
                session.execute_unpaged(&self.latest, values).await
            }
            (Op::Write, _) => {
                let id = self
                    .ids
                    .at_unix_ms(day_ms() + rng.random_range(0..86_400_000));
                let values = post_values(key, id, "bench write");
                session.execute_unpaged(&self.post, values).await
            }
        };
        result.map(|_| op).map_err(|e| e.to_string())
    }

    /// Writes the data the workload reads: `rows` messages in each of `partitions`
    /// threads (or `partitions` users for `point`), `concurrency` partitions at a time.
    pub async fn populate(
        &self,
        session: &Arc<Session>,
        partitions: usize,
        rows: usize,
        concurrency: usize,
        progress: impl Fn(usize),
    ) -> Result<(), String> {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (session, next) = (session.clone(), next.clone());
            let (post, user) = (self.post.clone(), self.user_insert(session.as_ref()).await?);
            let users = self.workload.reads_users();
            tasks.push(tokio::spawn(async move {
                let ids = TimeuuidGenerator::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= partitions {
                        return Ok::<(), String>(());
                    }
                    let written = match users {
                        true => session.execute_unpaged(&user, (user_id(n), n as i64)).await,
                        false => write_thread(&session, &post, &ids, n, rows).await,
                    };
                    written.map_err(|e| format!("populating partition {n}: {e}"))?;
                }
            }));
        }
        let mut reported = 0;
        while tasks.iter().any(|t| !t.is_finished()) {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let done = next
                .load(std::sync::atomic::Ordering::Relaxed)
                .min(partitions);
            if done != reported {
                progress(done);
                reported = done;
            }
        }
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    /// Reads partitions `0..partitions` once each, `concurrency` at a time.
    pub async fn read_each(
        &self,
        session: &Arc<Session>,
        partitions: usize,
        concurrency: usize,
    ) -> Result<(), String> {
        use futures::StreamExt;
        let users = self.workload.reads_users();
        let results: Vec<Result<(), String>> = futures::stream::iter(0..partitions)
            .map(|n| async move {
                let read = match users {
                    true => session.execute_unpaged(&self.user, (user_id(n),)).await,
                    false => {
                        let values = (thread_id(n), BUCKET, self.limit);
                        session.execute_unpaged(&self.latest, values).await
                    }
                };
                read.map(|_| ())
                    .map_err(|e| format!("prewarming partition {n}: {e}"))
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn user_insert(&self, session: &Session) -> Result<PreparedStatement, String> {
        session
            .prepare("INSERT INTO chat.users (user_id, name, created_at) VALUES (?, 'bench', ?)")
            .await
            .map_err(|e| e.to_string())
    }
}

/// One thread's `rows` messages as one unlogged batch (one partition: applied at once).
async fn write_thread(
    session: &Session,
    post: &PreparedStatement,
    ids: &TimeuuidGenerator,
    n: usize,
    rows: usize,
) -> Result<scylla::response::query_result::QueryResult, scylla::errors::ExecutionError> {
    let mut batch = Batch::new(BatchType::Unlogged);
    let mut values = Vec::with_capacity(rows);
    for row in 0..rows {
        batch.append_statement(post.clone());
        let id = ids.at_unix_ms(day_ms() + (row as i64) * 1000);
        values.push(post_values(
            n,
            id,
            &format!("message {row} of bench thread {n}"),
        ));
    }
    session.batch(&batch, values).await
}

type PostValues = (
    String,
    i32,
    CqlTimeuuid,
    String,
    String,
    MaybeUnset<String>,
    String,
    MaybeUnset<Vec<String>>,
);

fn post_values(thread: usize, id: Uuid, body: &str) -> PostValues {
    (
        thread_id(thread),
        BUCKET,
        CqlTimeuuid::from(id),
        format!("bench-user-{}", thread % 1000),
        "Bench User".to_owned(),
        MaybeUnset::Unset,
        body.to_owned(),
        MaybeUnset::Unset,
    )
}

fn day_ms() -> i64 {
    i64::from(BUCKET) * 86_400_000
}

fn thread_id(n: usize) -> String {
    format!("bench-{n}")
}

fn user_id(n: usize) -> String {
    format!("bench-user-{n}")
}
