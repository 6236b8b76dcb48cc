//! The CQL server: sockets in, frames decoded, requests handed to the coordinator, replies
//! encoded and flushed. The shape is mini-redis's: a [`listener`] that accepts under a
//! connection semaphore and a task per [`connection`] that selects between the next frame,
//! finished requests, pushed events and shutdown.
//!
//! A connection reads in two phases: the 9-byte header alone decides whether the frame is
//! acceptable (version, size) before its body is buffered, so an oversized frame is refused
//! without reading it. Requests are polled as futures on the connection task itself (or, with
//! `tuning.request_scheduling = "spawn"`, as tokio tasks), so many can be in flight on one
//! connection and finish out of order with their own stream ids. Replies are encoded into one
//! buffer and written once per loop turn, because on a 2-core machine a syscall and a
//! cross-core wake-up cost more than the work of a small request (design §10).
//!
//! Every bound of design §9 that concerns sockets lives here: maximum frame size, in-flight
//! bytes and requests per connection (past them the connection simply stops reading), and the
//! number of connections.

mod admin;
mod bootstrap;
mod connection;
mod decommission;
mod listener;
mod repair;
mod replace;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::cluster::gossip::LocalFacts;
use crate::cluster::membership::NodeStatus;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::coordinator::{ClusterLinks, Coordinator, PreparedCache, SchemaService, Services};
use crate::metadata::MetadataLog;
use crate::metrics::Metrics;
use crate::node::{NodeIdentity, NodeInfo};
use crate::replica::LocalReplica;

/// A CQL script the node runs once it has opened its schema and before it serves clients:
/// the schema an application wants present (the binary passes the chat schema unless
/// `[chat] create_schema = false`). Its statements should be idempotent (`IF NOT EXISTS`),
/// since they run at every start.
#[derive(Debug, Clone)]
pub struct StartupScript {
    /// What the log calls it.
    pub name: String,
    /// The statements, separated by `;`, comments allowed.
    pub cql: String,
}

/// Why a node could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot bind {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot use data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Cluster(String),
}

/// Runs the lightweight transactions other coordinators forward to this node.
struct ForwardedTransactions {
    shared: std::sync::Weak<Shared>,
}

impl crate::cluster::service::CasInbound for ForwardedTransactions {
    fn cas(
        &self,
        cas: crate::cluster::message::ForwardedCas,
    ) -> futures::future::BoxFuture<'static, Result<bytes::Bytes, bytes::Bytes>> {
        let shared = self.shared.upgrade();
        Box::pin(async move {
            match shared {
                Some(shared) => shared.coordinator.run_forwarded_cas(cas).await,
                None => Err(bytes::Bytes::new()),
            }
        })
    }
}

/// What gossip advertises of this node that changes while it runs.
struct GossipFacts {
    schema: watch::Receiver<uuid::Uuid>,
    replica: Arc<LocalReplica>,
}

impl LocalFacts for GossipFacts {
    fn schema_version(&self) -> uuid::Uuid {
        *self.schema.borrow()
    }

    fn load(&self) -> u64 {
        self.replica.size_bytes()
    }
}

/// State shared by every connection of a node.
pub(crate) struct Shared {
    pub config: Config,
    pub coordinator: Coordinator,
    pub metrics: Arc<Metrics>,
    /// Set when the data lives in a CQL backend: client requests run through it.
    pub front: Option<crate::backend::front::Front>,
}

/// The front for a CQL backend. Its first session is tried now, so a wrong contact point
/// or password is in the log at start; the node serves either way and the backend's
/// sessions open once it answers.
///
/// The backend's schema changes are pushed to this node's clients that registered for
/// them, as the node's own would be: clients see the backend's schema.
async fn open_front(
    config: &Config,
    metrics: &Arc<Metrics>,
    events: broadcast::Sender<crate::protocol::Event>,
) -> crate::backend::front::Front {
    let backend = Arc::new(crate::backend::cdrs::CdrsBackend::new(&config.backend));
    tokio::spawn(backend.clone().relay_schema_changes(events));
    match backend.probe().await {
        Ok(()) => tracing::info!(
            contact_points = ?config.backend.contact_points.0,
            "serving in front of a CQL backend"
        ),
        Err(error) => tracing::warn!(
            contact_points = ?config.backend.contact_points.0,
            %error,
            "the CQL backend cannot be reached yet; requests fail until it can"
        ),
    }
    crate::backend::front::Front::new(backend, &config.backend, metrics.clone())
}

/// A running node: its bound addresses and the handle that stops it.
pub struct Server {
    /// Address of the CQL listener (with the real port when 0 was configured).
    pub cql_addr: SocketAddr,
    /// Address of the Prometheus endpoint.
    pub metrics_addr: SocketAddr,
    /// Address of the internode listener.
    pub internode_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// Turns true once this node has left the cluster (decommission): it should stop.
    left: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Opens the data directory, binds the listeners, joins the cluster, runs the start-up
    /// scripts and starts serving.
    pub async fn start(config: Config, startup: &[StartupScript]) -> Result<Server, StartError> {
        config.validate()?;
        let metrics = Arc::new(Metrics::new());
        let data_dir = |message: String| StartError::DataDir {
            path: config.data_dir.clone(),
            message,
        };
        let me = SocketAddr::new(config.listen_address, config.internode_port);
        let other_seeds = config.seed_addrs().iter().any(|seed| *seed != me);
        crate::node::bootstrap::check_not_left(&config.data_dir).map_err(data_dir)?;
        // Before the identity: a replacing node's identity holds the dead node's tokens.
        let replacing = replace::prepare(&config)
            .await
            .map_err(StartError::Cluster)?;
        // Decided (and recorded) before a first start creates the identity: see node/bootstrap.rs.
        let bootstrap =
            crate::node::bootstrap::needed(&config.data_dir, config.auto_bootstrap, other_seeds)
                .map_err(|e| data_dir(format!("cannot record the bootstrap: {e}")))?;
        let identity = NodeIdentity::load_or_create(&config.data_dir, config.num_tokens)
            .map_err(|e| data_dir(e.to_string()))?;
        let back_at = crate::clock::now_micros();
        let now_ms = (back_at / 1000) as u64;
        let downtime = crate::node::alive::downtime(&config.data_dir, now_ms);
        crate::node::alive::record(&config.data_dir, now_ms)
            .map_err(|e| data_dir(format!("cannot record that the node is alive: {e}")))?;
        let generation =
            crate::node::next_generation(&config.data_dir).map_err(|e| data_dir(e.to_string()))?;
        let mut node = NodeInfo::new(&config, identity, generation);
        node.replaces = replacing.map(|r| r.host_id);
        let replica = Arc::new(LocalReplica::open(&config).map_err(|e| data_dir(e.to_string()))?);
        let cql = bind(
            "CQL",
            SocketAddr::new(config.listen_address, config.cql_port),
        )
        .await?;
        let http = bind(
            "metrics",
            SocketAddr::new(config.listen_address, config.metrics_port),
        )
        .await?;
        let cql_addr = local_addr(&cql, "CQL")?;
        let metrics_addr = local_addr(&http, "metrics")?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let events = broadcast::channel(256).0;
        let (schema_tx, schema_rx) = watch::channel(uuid::Uuid::nil());
        let prepared = PreparedCache::new(config.limits.max_prepared_statements);
        let schema = SchemaService::open(
            &config.data_dir,
            replica.clone(),
            prepared.clone(),
            events.clone(),
            schema_tx,
        )
        .map_err(|e| data_dir(e.to_string()))?;
        let schema = Arc::new(schema);
        let facts = Arc::new(GossipFacts {
            schema: schema_rx,
            replica: replica.clone(),
        });
        let status = match bootstrap {
            true => NodeStatus::Waiting,
            false => NodeStatus::Normal,
        };
        let cluster = Cluster::start(
            &config,
            &node,
            status,
            cql_addr,
            replica.clone(),
            facts.clone(),
            events.clone(),
            shutdown_rx.clone(),
        )
        .await
        .map_err(|e| StartError::Cluster(e.to_string()))?;
        let internode_addr = cluster.transport.local().listen;
        let metadata = MetadataLog::start(
            &config,
            node.host_id,
            cluster.transport.clone(),
            schema.clone(),
            shutdown_rx.clone(),
        )
        .await
        .map_err(|e| StartError::Cluster(e.to_string()))?;
        cluster.service.bind_meta(metadata.inbound());
        let cache_owner = replica.clone();
        let services = Services {
            replica,
            cluster: ClusterLinks {
                membership: cluster.membership.clone(),
                transport: cluster.transport.clone(),
            },
            schema,
            metadata: metadata.clone(),
            prepared,
            events: events.clone(),
        };
        let coordinator = Coordinator::open(&config, node, services);
        let window = std::time::Duration::from_millis(config.max_hint_window_ms);
        // A node that never met a peer has no replica to miss writes for.
        let has_peers = !config.seeds.0.is_empty()
            || config
                .data_dir
                .join(crate::cluster::gossip::PEERS_FILE)
                .exists();
        if let Some(down) = downtime.filter(|down| *down > window && has_peers) {
            tracing::warn!(
                down_secs = down.as_secs_f64(),
                "this node was down for {:.1} s, longer than max_hint_window_ms ({:.1} s): it \
                 missed writes no hint will bring; run `ringcache repair` before \
                 gc_grace_seconds passes, or deleted data may come back",
                down.as_secs_f64(),
                window.as_secs_f64()
            );
            coordinator.missed_hints(down, back_at);
        }
        wait_for_membership(&metadata).await;
        for script in startup {
            run_startup_script(&coordinator, script).await;
        }
        let front = match config.backend.engine {
            crate::config::BackendEngine::Embedded => None,
            crate::config::BackendEngine::Cql => {
                Some(open_front(&config, &metrics, events.clone()).await)
            }
        };
        let shared = Arc::new(Shared {
            config,
            coordinator,
            metrics: metrics.clone(),
            front,
        });
        cluster.service.bind_cas(Arc::new(ForwardedTransactions {
            shared: Arc::downgrade(&shared),
        }));
        let watched = shared.clone();
        metrics.watch_storage(Box::new(move || watched.coordinator.storage_stats()));
        let watched = shared.clone();
        metrics.watch_replica(Box::new(move || watched.coordinator.replica_report()));
        let repairs = Arc::new(repair::Repairs::new(Arc::downgrade(&shared)));
        let sources = Arc::new(admin::ClusterSources {
            shared: shared.clone(),
            repairs: repairs.clone(),
            membership: cluster.membership.clone(),
            transport: cluster.transport.clone(),
            metadata: metadata.clone(),
            facts,
        });
        let watched = sources.clone();
        metrics.watch_cluster(Box::new(move || watched.report()));
        let (left_tx, left) = watch::channel(false);
        let decommission = Arc::new(decommission::Decommission::new(
            shared.clone(),
            repairs.clone(),
            (cluster.membership.clone(), cluster.gossiper.clone()),
            metadata.clone(),
            left_tx.clone(),
        ));
        let admin = crate::metrics::Admin {
            faults: shared
                .config
                .faults
                .link_control
                .then(|| cluster.transport.faults().clone()),
            status: Some(Arc::new(move |keyspace| sources.status(keyspace))),
            repair: Some(Arc::new(repair::Endpoint(repairs.clone()))),
            decommission: Some(Arc::new(move || decommission.start())),
            flush: Some(flush_source(shared.clone())),
        };
        let joining = bootstrap.then(|| bootstrap::Joining {
            shared: shared.clone(),
            repairs: repairs.clone(),
            membership: cluster.membership.clone(),
            gossiper: cluster.gossiper.clone(),
            replacing: replacing.filter(|r| !r.finished).map(|r| r.host_id),
            metadata: metadata.clone(),
        });
        // A joining node streams; any other releases a range movement it did not finish.
        let movement = match joining {
            Some(j) => tokio::spawn(bootstrap::run(j, shutdown_rx.clone())),
            None => tokio::spawn(bootstrap::release_stale_turn(
                shared.clone(),
                shutdown_rx.clone(),
            )),
        };
        let mut tasks = vec![
            tokio::spawn(replace::stop_if_replaced(
                cluster.membership.clone(),
                shared.config.data_dir.clone(),
                left_tx,
                shutdown_rx.clone(),
            )),
            tokio::spawn(bootstrap::drop_cache_on_ownership_change(
                cluster.membership.clone(),
                cache_owner,
                shutdown_rx.clone(),
            )),
            tokio::spawn(purger(shared.clone(), shutdown_rx.clone())),
            tokio::spawn(batchlog(shared.clone(), shutdown_rx.clone())),
            tokio::spawn(hints(shared.clone(), shutdown_rx.clone())),
            tokio::spawn(scheduled_repairs(
                repairs,
                std::time::Duration::from_millis(shared.config.repair_interval_ms),
                shutdown_rx.clone(),
            )),
            tokio::spawn(record_alive(
                shared.config.data_dir.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(listener::run(cql, shared, shutdown_rx.clone())),
            tokio::spawn(crate::metrics::serve(
                http,
                metrics,
                admin,
                wait_for(shutdown_rx),
            )),
            tokio::spawn(cluster.stopped()),
        ];
        tasks.push(movement);
        tracing::info!(%cql_addr, %metrics_addr, "ringcache node listening");
        Ok(Server {
            cql_addr,
            metrics_addr,
            internode_addr,
            shutdown,
            left,
            tasks,
        })
    }

    /// Resolves once this node has left the cluster (`ringcache decommission`): the
    /// process has nothing left to serve and should shut down.
    pub fn left(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut left = self.left.clone();
        async move {
            let _ = left.wait_for(|left| *left).await;
        }
    }

    /// Stops accepting, lets open connections finish their in-flight requests (bounded by a
    /// grace period), and returns when every task has ended.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!("ringcache node stopped");
    }
}

/// How long a starting node waits to become a member of the metadata group before it
/// serves anyway (DDL then fails until it has joined; reads and writes work).
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits (bounded) until this node is a member of the metadata group, so its start-up
/// scripts and first DDL go through the log.
async fn wait_for_membership(metadata: &MetadataLog) {
    if !metadata.wait_joined(JOIN_WAIT).await {
        tracing::warn!(
            "not yet a member of the cluster's metadata group; serving anyway (schema changes wait for it)"
        );
    }
}

/// Runs one start-up script. A failure is logged, not fatal: the node still serves every
/// other keyspace.
async fn run_startup_script(coordinator: &Coordinator, script: &StartupScript) {
    match coordinator.execute_script(&script.cql).await {
        Ok(statements) => {
            tracing::info!(script = %script.name, statements, "start-up schema ready")
        }
        Err(error) => {
            tracing::error!(script = %script.name, %error, "start-up schema script failed")
        }
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

fn local_addr(listener: &TcpListener, what: &'static str) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        what,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })
}

/// Records every `alive::PERIOD` that this node is alive (`node::alive`), until shutdown.
async fn record_alive(data_dir: std::path::PathBuf, shutdown: watch::Receiver<bool>) {
    let stop = wait_for(shutdown);
    tokio::pin!(stop);
    loop {
        // A clean stop records its time too, so the next start measures from it.
        let stopping = tokio::select! {
            _ = &mut stop => true,
            _ = tokio::time::sleep(crate::node::alive::PERIOD) => false,
        };
        let now_ms = (crate::clock::now_micros() / 1000) as u64;
        if let Err(error) = crate::node::alive::record(&data_dir, now_ms) {
            tracing::warn!(%error, "cannot record that this node is alive");
        }
        if stopping {
            return;
        }
    }
}

/// The purge worker: a pass over every table each `[storage] purge_interval_secs` (none if
/// 0), on the blocking pool so it never holds up a runtime worker. Shutdown waits for a
/// pass in progress to finish its current table walk.
async fn purger(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let interval = shared.config.storage.purge_interval_secs;
    if interval == 0 {
        return;
    }
    let stop = wait_for(shutdown);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(interval)) => {}
        }
        let node = shared.clone();
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || node.coordinator.purge_all()).await {
            Ok(stats) => tracing::debug!(
                partitions = stats.partitions,
                keys = stats.keys,
                took = ?started.elapsed(),
                "purge pass"
            ),
            Err(error) => tracing::warn!(%error, "purge pass panicked"),
        }
    }
}

/// The batchlog worker: replays logged batches whose coordinator never removed them.
async fn batchlog(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let interval = shared.coordinator.batchlog_interval();
    let stop = wait_for(shutdown);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match shared.coordinator.replay_batchlog().await {
            Ok(0) => {}
            Ok(replayed) => tracing::info!(replayed, "replayed logged batches"),
            Err(error) => tracing::warn!(%error, "batchlog replay pass failed"),
        }
    }
}

/// `POST /flush`: the store's memory tables written to disk on a thread of their own (a
/// flush blocks for as long as it writes); the endpoint answers at once.
fn flush_source(shared: Arc<Shared>) -> crate::metrics::FlushSource {
    Arc::new(move || {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("flush".to_owned())
            .spawn(move || {
                if let Err(error) = shared.coordinator.flush_storage() {
                    tracing::warn!(%error, "flush failed");
                }
            })
            .map(|_| ())
            .map_err(|e| format!("cannot start a flush: {e}"))
    })
}

/// The hints worker: hands stored hints to replicas that are up again.
async fn hints(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let stop = wait_for(shutdown);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(HINT_PASS_INTERVAL) => {}
        }
        if shared.config.faults.hold_hints {
            continue;
        }
        match shared.coordinator.deliver_hints().await {
            Ok(0) => {}
            Ok(delivered) => tracing::info!(delivered, "hints delivered"),
            Err(error) => tracing::warn!(%error, "hint delivery pass failed"),
        }
    }
}

/// The scheduled repair worker: looks for a table due for repair (`Repairs::scheduled_pass`)
/// every tenth of the interval, at most every 10 s.
async fn scheduled_repairs(
    repairs: Arc<repair::Repairs>,
    interval: std::time::Duration,
    shutdown: watch::Receiver<bool>,
) {
    if interval.is_zero() {
        return;
    }
    let look = (interval / 10).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(10),
    );
    let stop = wait_for(shutdown);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(look) => {}
        }
        repairs.scheduled_pass(interval);
    }
}

/// How often the hints worker looks for replicas to hand hints to.
const HINT_PASS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Resolves when the shutdown flag becomes true (or its sender is gone).
pub(crate) async fn wait_for(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
