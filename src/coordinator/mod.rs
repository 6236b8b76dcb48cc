//! The coordinator: every statement a client sends is executed here.
//!
//! A request arrives parsed (QUERY), by prepared id (EXECUTE) or as a BATCH. DDL goes to the
//! schema catalog, which is persisted before the result is acknowledged and then announced
//! as a SCHEMA_CHANGE event. SELECT plans and binds one way for every table ([`select`]);
//! system tables are computed ([`source`]), user tables are read from the partitions'
//! replica through a read plan ([`restrict`], [`read`], [`table_select`]) with
//! position-based paging ([`paging`]). INSERT, UPDATE, DELETE and BATCH are bound into
//! partition updates ([`dml`]), checked against the consistency level ([`consistency`]),
//! and applied atomically on the replica, with timestamps this node assigns in strictly
//! increasing order unless the client sends one. Prepared statements live in one bounded,
//! server-wide cache ([`prepared`]) keyed by Cassandra's statement id, so every connection
//! (and every driver's re-prepare) sees the same id.
//!
//! Locks are never held across an await: the catalog is an immutable snapshot behind an
//! `Arc`, taken from a `std::sync::RwLock` for the moment it takes to clone the pointer and
//! replaced whole by DDL, so a read that awaits its replica keeps the schema it planned
//! with.

mod bind;
mod consistency;
mod dml;
mod functions;
mod lwt;
mod paging;
mod paxos;
mod plan;
mod prepared;
mod projection;
mod read;
mod repair;
mod replication;
mod restrict;
mod schema;
mod select;
mod source;
mod stored_lists;
mod table_select;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::config::Config;
use crate::cql::ast::{Describe, Statement};
use crate::error::{Error, Result};
use crate::node::NodeInfo;
use crate::protocol::{Event, QueryParameters, Request, ResultBody, SchemaChange};
use crate::replica::LocalReplica;
use crate::schema::{Catalog, ClusterInfo, RangeMovement};

pub use plan::{EncodedColumns, PlannedRows};
pub use prepared::PreparedCache;
pub use repair::{RepairOptions, RepairPlan, TablePlan};
pub use replication::{Ownership, OwnershipError, RepairCounts, RepairProgress, RequestCounts};
pub use schema::{Schema, SchemaCommand, SchemaService};
pub use stored_lists::{FetchedLists, ListKey};

/// What a statement answers: a RESULT body, or rows whose metadata a cached plan supplies
/// already encoded (the connection writes both the same way).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Any RESULT body.
    Result(ResultBody),
    /// A page of SELECT rows.
    Rows(PlannedRows),
    /// A RESULT another server (a CQL backend) encoded, passed on as it came.
    Forwarded(crate::backend::Forwarded),
}

impl Reply {
    /// Appends the RESULT body (`<kind>` and the kind's body).
    pub fn encode(&self, buf: &mut bytes::BytesMut) {
        match self {
            Reply::Result(body) => body.encode(buf),
            Reply::Rows(rows) => rows.encode(buf),
            Reply::Forwarded(forwarded) => buf.extend_from_slice(&forwarded.body),
        }
    }
}

/// How far a statement got synchronously: a reply, writes still to apply, or a
/// lightweight transaction still to run under its partition's lock.
enum Step {
    Done(Reply),
    Write(Writes),
    Cas(Box<lwt::CasRequest>),
    Truncate(Uuid),
    Ddl(Box<SchemaCommand>),
}

/// Partition updates a statement bound, to be written to their replicas.
struct Writes {
    updates: Vec<crate::storage::partition::PartitionUpdate>,
    consistency: crate::protocol::Consistency,
    write_type: replication::WriteType,
}

/// A parsed statement and the plan its last execution made.
struct Parsed {
    statement: Statement,
    text: String,
    plan: plan::PlanSlot,
}

/// The CQL language version this node implements (Cassandra 4.1's).
pub const CQL_VERSION: &str = "3.4.6";
pub use crate::node::RELEASE_VERSION;

/// How long a schema change may take to commit and apply before the client is told: well
/// inside the drivers' and cqlsh's own 10 s request timeout, so a cluster without a
/// majority answers with why rather than leaving the client to time out.
const SCHEMA_CHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Stored lists one statement may read (each a round of binding).
const MAX_LIST_READS: usize = 64;

/// Distinct QUERY texts whose parse is cached.
const PARSED_CACHE_ENTRIES: u64 = 4096;
/// Longer texts (large literal batches, say) are parsed every time rather than cached.
const PARSED_CACHE_MAX_TEXT: usize = 4096;

/// Per-request facts from the connection.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The connection's keyspace (set by USE).
    pub keyspace: Option<String>,
    /// Local address of the accepted socket: what `system.local.rpc_address` reports.
    pub local_addr: SocketAddr,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client set the tracing flag: reads bypass the cache and are served from
    /// storage (no trace events are recorded yet).
    pub tracing: bool,
    /// The stored lists this request's write has read from replicas (list operations by
    /// index or value); empty at first.
    pub lists: FetchedLists,
}

/// What a coordinator works with, each part with its own home: this node's replica, the
/// cluster (membership and transport), the schema and the metadata log it changes through,
/// the prepared statements, and the channel of events pushed to clients.
pub struct Services {
    pub replica: Arc<LocalReplica>,
    pub cluster: ClusterLinks,
    pub schema: Arc<SchemaService>,
    pub metadata: Arc<crate::metadata::MetadataLog>,
    pub prepared: PreparedCache,
    pub events: broadcast::Sender<Event>,
}

/// The coordinator's handles on the cluster: who is there and up (membership), and how to
/// reach them (transport).
#[derive(Clone)]
pub struct ClusterLinks {
    pub membership: Arc<crate::cluster::membership::Membership>,
    pub transport: crate::cluster::transport::Transport,
}

/// Executes statements for every connection of a node.
pub struct Coordinator {
    node: NodeInfo,
    /// `node`'s fixed facts, serialized once.
    facts: source::NodeFacts,
    /// The served schema; changed only through the metadata log.
    schema: Arc<SchemaService>,
    /// The cluster's metadata log, DDL's only way in.
    metadata: Arc<crate::metadata::MetadataLog>,
    /// Parsed QUERY texts, so drivers' repeated control queries skip the parser.
    parsed: moka::sync::Cache<String, Arc<Parsed>>,
    prepared: PreparedCache,
    events: broadcast::Sender<Event>,
    max_unpaged_rows: usize,
    /// Cassandra's batch size thresholds (`dml::check_batch_size`).
    batch_limits: dml::BatchLimits,
    /// This node's replica of every user table.
    replica: Arc<LocalReplica>,
    /// The cluster this node belongs to.
    cluster: ClusterLinks,
    /// Every replica, this node's and its peers': the write and read fan-out.
    replication: replication::Replication,
    /// The last write timestamp this node assigned (µs), so assigned timestamps strictly
    /// increase even when the clock stalls or steps back.
    last_timestamp: AtomicI64,
    /// Per-partition locks held by lightweight transactions from read to write (one
    /// replica), or by this node's Paxos rounds on a partition (taking turns).
    cas_locks: lwt::CasLocks,
    /// Ballots and contention for transactions at replication factor > 1.
    paxos: paxos::Paxos,
    /// The replica cache's configured capacity in bytes, for `/metrics`.
    cache_capacity: u64,
    /// Set when this node was down longer than the hint window before it started: it owes
    /// itself a repair (`needs_repair`).
    missed_hints: std::sync::OnceLock<repair::MissedHints>,
}

impl Coordinator {
    /// Loads the persisted schema from the data directory.
    pub fn open(config: &Config, node: NodeInfo, services: Services) -> Coordinator {
        let Services {
            replica,
            cluster,
            schema,
            metadata,
            prepared,
            events,
        } = services;
        Coordinator {
            facts: source::NodeFacts::new(&node),
            paxos: paxos::Paxos::new(config, node.host_id),
            node,
            schema,
            metadata,
            parsed: moka::sync::Cache::new(PARSED_CACHE_ENTRIES),
            prepared,
            events,
            max_unpaged_rows: config.limits.max_unpaged_rows,
            batch_limits: dml::BatchLimits::from_kib(
                config.limits.batch_size_warn_threshold_in_kb,
                config.limits.batch_size_fail_threshold_in_kb,
            ),
            replication: replication::Replication::new(config, replica.clone(), cluster.clone()),
            replica,
            cluster,
            last_timestamp: AtomicI64::new(0),
            cas_locks: lwt::CasLocks::new(),
            cache_capacity: config.cache.capacity_bytes,
            missed_hints: std::sync::OnceLock::new(),
        }
    }

    /// A receiver of the node's pushed events (REGISTER).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Runs one QUERY, PREPARE, EXECUTE or BATCH, counted by level and outcome. A write
    /// that reads stored lists (list operations by index or value) is bound again after
    /// each list it needs is read from the partition's replicas (`stored_lists.rs`).
    pub async fn handle(&self, ctx: RequestContext, request: Request) -> Result<Reply> {
        let consistency = match &request {
            Request::Query { params, .. } | Request::Execute { params, .. } => {
                Some(params.consistency)
            }
            Request::Batch(batch) => Some(batch.consistency),
            _ => None,
        };
        let result = self.handle_request(&ctx, &request, consistency).await;
        if let Some(level) = consistency {
            let outcome = replication::Outcome::of(&result);
            self.replication.counters.request(level, outcome);
        }
        result
    }

    async fn handle_request(
        &self,
        ctx: &RequestContext,
        request: &Request,
        consistency: Option<crate::protocol::Consistency>,
    ) -> Result<Reply> {
        let level = consistency.unwrap_or(crate::protocol::Consistency::One);
        for _ in 0..MAX_LIST_READS {
            match self.handle_once(ctx, request).await {
                Err(Error::ListNeeded(key)) => {
                    let elements = self.fetch_list(&key, level).await?;
                    ctx.lists.insert(*key, elements);
                }
                other => return other,
            }
        }
        Err(Error::invalid(format!(
            "a statement may read at most {MAX_LIST_READS} stored lists"
        )))
    }

    async fn handle_once(&self, ctx: &RequestContext, request: &Request) -> Result<Reply> {
        match request {
            Request::Query { query, params } => {
                let parsed = self.parse_cached(query)?;
                let keyspace = ctx.keyspace.as_deref();
                let step = self
                    .execute(
                        ctx,
                        &parsed.statement,
                        &parsed.text,
                        params,
                        keyspace,
                        &parsed.plan,
                    )
                    .await?;
                self.finish(step).await
            }
            Request::Prepare { query } => self.prepare(ctx, query).map(Reply::Result),
            Request::Execute { id, params } => {
                let step = self.execute_prepared(ctx, id, params).await?;
                self.finish(step).await
            }
            Request::Batch(batch) => {
                let step = self.batch(ctx, batch)?;
                self.finish(step).await
            }
            other => Err(Error::Server(format!("{other:?} is not a statement"))),
        }
    }

    /// Reads one stored list a write needs from its partition's replicas at the write's
    /// level (ONE for ANY), merged like any read.
    async fn fetch_list(
        &self,
        key: &ListKey,
        consistency: crate::protocol::Consistency,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let catalog = self.read_catalog();
        let table = catalog
            .table_by_id(key.table)
            .ok_or_else(|| Error::invalid(format!("unknown table id {}", key.table)))?;
        let keyspace = catalog
            .keyspace(&table.keyspace)
            .ok_or_else(|| Error::invalid(format!("Keyspace {} does not exist", table.keyspace)))?;
        let layout = restrict::layout(table, &catalog);
        let slice = stored_lists::list_slice(key.clustering.as_ref())?;
        let now = crate::clock::now_secs();
        let limits = self
            .replica
            .limits(usize::MAX, now, key.clustering.is_none());
        let target = replication::ReadTarget {
            prefer: &[],
            keyspace,
            layout: &layout,
            caching: crate::cache::Caching::Off,
            partition: &key.partition,
            slice: &slice,
            after: None,
            limits: &limits,
            read_repair: table.options.read_repair != "NONE",
        };
        let level = match consistency {
            crate::protocol::Consistency::Any => crate::protocol::Consistency::One,
            other => other,
        };
        let served = match self.replication.read(&target, level).await {
            Ok(served) => served,
            Err(replication::ReadFailed::Coordination(e)) => return Err(e),
            Err(replication::ReadFailed::Replica(e)) => {
                return Err(Error::Server(format!(
                    "reading a list before writing it: {e}"
                )))
            }
        };
        let column = &key.column;
        let clustering = key.clustering.as_ref();
        Ok(stored_lists::list_elements(
            &served.fragment(),
            table,
            clustering,
            column,
            now,
        ))
    }

    /// Completes a statement: a reply is ready as it is; a write is applied on the
    /// partitions' replica (awaited, so a synced write never blocks the connection's task)
    /// and acknowledged with Void.
    async fn finish(&self, step: Step) -> Result<Reply> {
        match step {
            Step::Done(reply) => Ok(reply),
            Step::Write(writes) => {
                if !writes.updates.is_empty() {
                    let catalog = self.read_catalog();
                    let (updates, level) = (writes.updates, writes.consistency);
                    match writes.write_type {
                        replication::WriteType::Batch => {
                            self.replication
                                .write_logged(&catalog, updates, level)
                                .await?
                        }
                        kind => {
                            self.replication
                                .write(&catalog, updates, level, kind)
                                .await?
                        }
                    }
                }
                Ok(Reply::Result(ResultBody::Void))
            }
            Step::Cas(request) => self.cas(&request).await,
            Step::Truncate(table) => {
                self.replication.truncate(table).await?;
                Ok(Reply::Result(ResultBody::Void))
            }
            Step::Ddl(command) => self.apply_ddl(*command).await,
        }
    }

    /// Runs a lightweight transaction: through Paxos when its keyspace has several replicas
    /// (`paxos/`); with one, on that replica — here, or forwarded to the node that holds it —
    /// whose partition lock serialises every coordinator's.
    async fn cas(&self, request: &lwt::CasRequest) -> Result<Reply> {
        if !self.single_replica(request)? {
            return self.paxos_cas(request).await;
        }
        match self.cas_replica(request)? {
            None => self.cas_here(request).await,
            Some(replica) => self.forward_cas(&replica, request).await,
        }
    }

    /// Whether the transaction's keyspace keeps one replica of each partition.
    fn single_replica(&self, request: &lwt::CasRequest) -> Result<bool> {
        let catalog = self.read_catalog();
        let keyspace = catalog.keyspace(request.keyspace()).ok_or_else(|| {
            Error::invalid(format!("Keyspace {} does not exist", request.keyspace()))
        })?;
        Ok(lwt::single_replica(keyspace))
    }

    /// The partition's replica if it is another node; None if it is this one.
    fn cas_replica(&self, request: &lwt::CasRequest) -> Result<Option<replication::Replica>> {
        let catalog = self.read_catalog();
        let keyspace = catalog.keyspace(request.keyspace()).ok_or_else(|| {
            Error::invalid(format!("Keyspace {} does not exist", request.keyspace()))
        })?;
        let view = self.replication.view();
        let token = request.lock_key().1.token;
        match self.replication.replicas(&view, keyspace, token).as_slice() {
            [only] if only.is_local() => Ok(None),
            [only] if only.alive => Ok(Some(only.clone())),
            [_] => Err(Error::Unavailable {
                consistency: request
                    .forwarded()
                    .serial
                    .unwrap_or(crate::protocol::Consistency::Serial),
                required: 1,
                alive: 0,
            }),
            _ => Err(Error::Server(
                "a keyspace with one replica has several for this partition".into(),
            )),
        }
    }

    /// Sends the transaction to the partition's replica and passes its answer on.
    async fn forward_cas(
        &self,
        replica: &replication::Replica,
        request: &lwt::CasRequest,
    ) -> Result<Reply> {
        use crate::cluster::message::{Request as Peer, Response as Answer};
        let forwarded = request.forwarded();
        let serial = forwarded
            .serial
            .unwrap_or(crate::protocol::Consistency::Serial);
        let deadline = std::time::Instant::now() + self.replication.timeouts().write;
        let timeout = Error::WriteTimeout {
            consistency: serial,
            received: 0,
            block_for: 1,
            write_type: "CAS",
        };
        let answer = self
            .replication
            .call(replica, Peer::Cas(forwarded), deadline)
            .await;
        let decode = |bytes: Bytes, result: bool| {
            let mut reader = crate::protocol::wire::Reader::new(bytes);
            match result {
                true => ResultBody::decode(&mut reader).map(|b| Ok(Reply::Result(b))),
                false => crate::protocol::ErrorBody::decode(&mut reader)
                    .map(|e| Err(Error::Forwarded(e))),
            }
            .unwrap_or_else(|e| Err(Error::Server(format!("a malformed forwarded answer: {e}"))))
        };
        match answer {
            Ok(Answer::Cas(Ok(body))) => decode(body, true),
            Ok(Answer::Cas(Err(body))) => decode(body, false),
            Ok(_) => Err(Error::Server(
                "a forwarded transaction got the wrong answer".into(),
            )),
            Err(crate::cluster::transport::CallError::Remote(e)) => {
                Err(Error::Server(e.to_string()))
            }
            Err(_) => Err(timeout),
        }
    }

    /// Runs a transaction forwarded by another coordinator; answers with the RESULT or
    /// ERROR body in its protocol encoding.
    pub async fn run_forwarded_cas(
        &self,
        forwarded: crate::cluster::message::ForwardedCas,
    ) -> std::result::Result<Bytes, Bytes> {
        let outcome = async {
            let source = lwt::Source::from_forwarded(forwarded.kind, forwarded.items)?;
            let fetched = FetchedLists::default();
            let step = self.cas_step(source, forwarded.serial, forwarded.commit, &fetched)?;
            let Step::Cas(request) = step else {
                return Err(Error::Server("a forwarded transaction is not one".into()));
            };
            if !self.single_replica(&request)? {
                // The keyspace gained replicas since the coordinator forwarded it.
                return self.paxos_cas(&request).await;
            }
            if self.cas_replica(&request)?.is_some() {
                return Err(Error::Server(
                    "this node is no longer the partition's replica".into(),
                ));
            }
            self.cas_here(&request).await
        }
        .await;
        let mut out = bytes::BytesMut::new();
        match outcome {
            Ok(reply) => {
                reply.encode(&mut out);
                Ok(out.freeze())
            }
            Err(error) => {
                error.to_body().encode(&mut out);
                Err(out.freeze())
            }
        }
    }

    /// Runs a lightweight transaction on this node's replica: the partition's lock is held
    /// from the read of the current values to the end of the write (`lwt/`).
    async fn cas_here(&self, request: &lwt::CasRequest) -> Result<Reply> {
        let (table, partition) = request.lock_key();
        let _lock = self.cas_locks.lock(table, partition).await;
        let catalog = self.read_catalog();
        let lists = self.local_lists(&catalog);
        let above = |newest| self.timestamp_above(newest);
        let with = lwt::Decide {
            catalog: &catalog,
            path: read::ReadPath::Local(&self.replica),
            read_level: crate::protocol::Consistency::Serial,
            lists: &lists,
            max_unpaged_rows: self.max_unpaged_rows,
            stamp: lwt::Stamp::Above(&self.replica, &above),
        };
        let outcome = lwt::decide(request, &with).await?;
        match outcome {
            lwt::Outcome::NotApplied(body) => Ok(Reply::Result(body)),
            lwt::Outcome::Apply { updates, reply } => {
                if !updates.is_empty() {
                    self.replica.write(updates).await?;
                }
                Ok(Reply::Result(reply))
            }
        }
    }

    /// Checks a lightweight transaction and plans it (nothing is locked yet). Stored lists
    /// its writes name come from `fetched` at replication factor > 1.
    fn cas_step(
        &self,
        source: lwt::Source,
        serial: Option<crate::protocol::Consistency>,
        commit: crate::protocol::Consistency,
        fetched: &FetchedLists,
    ) -> Result<Step> {
        let catalog = self.read_catalog();
        let live_nodes = self.live_nodes();
        let topology = consistency::Topology {
            live_nodes: &live_nodes,
            local_dc: &self.node.data_center,
        };
        let levels = lwt::Levels { serial, commit };
        let lists = stored_lists::TransactionLists {
            local: self.local_lists(&catalog),
            fetched: stored_lists::ReplicaLists { fetched },
        };
        let request = lwt::CasRequest::new(source, &catalog, &lists, levels, &topology)?;
        Ok(Step::Cas(Box::new(request)))
    }

    /// Whether this node prepared `id` itself: in front of a CQL backend, statements on
    /// the tier's own tables are prepared and executed here.
    pub fn holds_prepared(&self, id: &Bytes) -> bool {
        self.prepared.get(id).is_some()
    }

    fn parse_cached(&self, query: &str) -> Result<Arc<Parsed>> {
        if let Some(parsed) = self.parsed.get(query) {
            return Ok(parsed);
        }
        let parsed = Arc::new(Parsed {
            statement: crate::cql::parse_statement(query)?,
            text: query.to_owned(),
            plan: plan::PlanSlot::default(),
        });
        if query.len() <= PARSED_CACHE_MAX_TEXT {
            self.parsed.insert(query.to_owned(), parsed.clone());
        }
        Ok(parsed)
    }

    fn prepare(&self, ctx: &RequestContext, query: &str) -> Result<ResultBody> {
        let statement = crate::cql::parse_statement(query)?;
        let catalog = self.read_catalog();
        let prepared =
            prepared::Prepared::new(query, statement, ctx.keyspace.as_deref(), &catalog)?;
        Ok(ResultBody::Prepared(self.prepared.insert(prepared)))
    }

    async fn execute_prepared(
        &self,
        ctx: &RequestContext,
        id: &Bytes,
        params: &QueryParameters,
    ) -> Result<Step> {
        let prepared = self
            .prepared
            .get(id)
            .ok_or_else(|| Error::Unprepared(id.clone()))?;
        let params = prepared.name_values(params)?;
        let result = self
            .execute(
                ctx,
                &prepared.statement,
                &prepared.text,
                &params,
                prepared.keyspace.as_deref(),
                &prepared.plan,
            )
            .await?;
        Ok(match result {
            Step::Done(reply) => Step::Done(prepared.shape_result(reply, params.skip_metadata)),
            write => write,
        })
    }

    /// Executes a parsed statement with its parameters. `keyspace` is the keyspace the
    /// statement was prepared or sent in; `plans` is where the statement keeps its plan.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        ctx: &RequestContext,
        statement: &Statement,
        text: &str,
        params: &QueryParameters,
        keyspace: Option<&str>,
        plans: &plan::PlanSlot,
    ) -> Result<Step> {
        if let Statement::Select(select) = statement {
            let Schema { catalog, version } = self.read_schema();
            let view = self.cluster.membership.view();
            let live_nodes = live_nodes(&view);
            let source = source::Source {
                facts: &self.facts,
                catalog: &catalog,
                ctx,
                schema_version: version,
                replica: &self.replica,
                replication: &self.replication,
                paxos: &self.paxos,
                cluster: &view,
                live_nodes: &live_nodes,
                local_dc: &self.node.data_center,
                max_unpaged_rows: self.max_unpaged_rows,
            };
            let limit = self.max_unpaged_rows;
            return select::execute(select, params, keyspace, &source, limit, plans)
                .await
                .map(|rows| Step::Done(Reply::Rows(rows)));
        }
        self.execute_other(ctx, statement, text, params, keyspace)
    }

    fn execute_other(
        &self,
        ctx: &RequestContext,
        statement: &Statement,
        text: &str,
        params: &QueryParameters,
        keyspace: Option<&str>,
    ) -> Result<Step> {
        let done = |body: ResultBody| Step::Done(Reply::Result(body));
        match statement {
            Statement::Use(name) => {
                let catalog = self.read_catalog();
                match catalog.keyspace(name) {
                    Some(ks) => Ok(done(ResultBody::SetKeyspace(ks.name.clone()))),
                    None => Err(Error::invalid(format!("Keyspace '{name}' does not exist"))),
                }
            }
            Statement::Describe(describe) => {
                self.describe(ctx, describe, params, keyspace).map(done)
            }
            Statement::Unsupported { what } => Err(Error::not_supported(what, None)),
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
                if dml::if_clause(statement).is_some() =>
            {
                let source = lwt::Source::Statement {
                    statement: statement.clone(),
                    text: text.to_owned(),
                    keyspace: keyspace.map(str::to_owned),
                    values: params.values.values.clone(),
                };
                self.cas_step(
                    source,
                    params.serial_consistency,
                    params.consistency,
                    &ctx.lists,
                )
            }
            Statement::Batch(batch) if dml::batch_has_conditions(batch) => {
                let source = lwt::Source::TextBatch {
                    batch: batch.clone(),
                    text: text.to_owned(),
                    keyspace: keyspace.map(str::to_owned),
                    values: params.values.values.clone(),
                };
                self.cas_step(
                    source,
                    params.serial_consistency,
                    params.consistency,
                    &ctx.lists,
                )
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let updates = {
                    let catalog = self.read_catalog();
                    let lists = stored_lists::ReplicaLists {
                        fetched: &ctx.lists,
                    };
                    let values = &params.values.values;
                    let input = self.write_input(&catalog, keyspace, params, values, &lists);
                    let updates = dml::bind_write(statement, &input)?;
                    self.check_write(&catalog, statement, keyspace, params.consistency)?;
                    updates
                };
                Ok(Step::Write(Writes {
                    updates,
                    consistency: params.consistency,
                    write_type: replication::WriteType::Simple,
                }))
            }
            Statement::Batch(batch) => {
                let updates = {
                    let catalog = self.read_catalog();
                    let lists = stored_lists::ReplicaLists {
                        fetched: &ctx.lists,
                    };
                    let values = &params.values.values;
                    let input = self.write_input(&catalog, keyspace, params, values, &lists);
                    let updates = dml::bind_batch(batch, &input)?;
                    for inner in &batch.statements {
                        self.check_write(&catalog, inner, keyspace, params.consistency)?;
                    }
                    let tables = batch_tables(batch.statements.iter(), keyspace);
                    dml::check_batch_size(&updates, self.batch_limits, &tables)?;
                    updates
                };
                Ok(Step::Write(Writes {
                    updates,
                    consistency: params.consistency,
                    write_type: batch_write_type(batch.kind == crate::cql::ast::BatchKind::Logged),
                }))
            }
            Statement::Truncate(name) => self.truncate(name, keyspace).map(Step::Truncate),
            ddl => Ok(match self.plan_ddl(ddl, text, keyspace)? {
                Some(command) => Step::Ddl(Box::new(command)),
                None => done(ResultBody::Void),
            }),
        }
    }

    fn describe(
        &self,
        ctx: &RequestContext,
        describe: &Describe,
        params: &QueryParameters,
        keyspace: Option<&str>,
    ) -> Result<ResultBody> {
        let catalog = self.read_catalog();
        // Cassandra shows range ownership when a user keyspace is in use: each token range
        // (named by its end token) and the endpoints that replicate it — here, this node.
        let user_keyspace = keyspace
            .and_then(|k| catalog.keyspace(k))
            .filter(|k| !k.is_system());
        let endpoint = format!("{}:7000", ctx.local_addr.ip());
        let range_ownership = user_keyspace.map(|_| {
            self.node
                .tokens
                .iter()
                .map(|t| (t.clone(), vec![endpoint.clone()]))
                .collect()
        });
        let info = ClusterInfo {
            cluster_name: self.node.cluster_name.clone(),
            partitioner: crate::ring::Murmur3Partitioner::CLASS_NAME.to_owned(),
            snitch: "org.apache.cassandra.locator.SimpleSnitch".to_owned(),
            range_ownership,
        };
        let result = catalog.describe(describe, keyspace, &info)?;
        select::describe_rows(result, params).map(ResultBody::Rows)
    }

    /// Checks a DDL statement against the schema served here — so a mistake is answered
    /// at once, majority or not — and makes the command every node will apply; None when
    /// it changes nothing (IF [NOT] EXISTS matched what is already applied here).
    fn plan_ddl(
        &self,
        statement: &Statement,
        text: &str,
        keyspace: Option<&str>,
    ) -> Result<Option<SchemaCommand>> {
        let data_centers = self.data_centers();
        let command = SchemaCommand {
            statement: text.to_owned(),
            keyspace: keyspace.map(str::to_owned),
            data_centers: data_centers.iter().map(str::to_owned).collect(),
            table_id: Uuid::new_v4(),
            now_micros: crate::clock::now_micros(),
        };
        let mut trial = Catalog::clone(&self.read_catalog());
        let context = crate::schema::ApplyContext {
            data_centers: &data_centers,
            table_id: command.table_id,
            now_micros: command.now_micros,
        };
        Ok(trial
            .apply_with(statement, keyspace, &context)?
            .map(|_| command))
    }

    /// Proposes a schema change to the metadata log and answers with what applying it
    /// gave, once it is applied on this node.
    async fn apply_ddl(&self, command: SchemaCommand) -> Result<Reply> {
        let bytes = postcard::to_stdvec(&command).expect("a command serializes");
        let applied = self
            .metadata
            .propose(bytes, SCHEMA_CHANGE_TIMEOUT)
            .await
            .map_err(metadata_error)?;
        let body = match schema::decode_outcome(&applied)? {
            Some(change) => ResultBody::SchemaChange(change),
            None => ResultBody::Void,
        };
        Ok(Reply::Result(body))
    }

    /// Asks the metadata log for the cluster's one range movement, as `kind` (`bootstrap`,
    /// `decommission`): None once this node holds it (granted now, or held since before a
    /// restart), or the node that holds it.
    pub async fn claim_movement(&self, kind: &str) -> Result<Option<RangeMovement>> {
        let command = schema::MovementCommand::Claim(RangeMovement {
            host_id: self.node.host_id,
            kind: kind.to_owned(),
            since_micros: crate::clock::now_micros(),
        });
        self.propose_movement(command).await
    }

    /// Ends this node's range movement, if it holds it.
    pub async fn release_movement(&self) -> Result<()> {
        let command = schema::MovementCommand::Release {
            host_id: self.node.host_id,
        };
        self.propose_movement(command).await.map(|_| ())
    }

    /// The range movement in progress, as this node applied the log.
    pub fn movement(&self) -> Option<RangeMovement> {
        self.read_catalog().movement().cloned()
    }

    /// Whether this node holds the range movement (as it applied the log).
    pub fn holds_movement(&self) -> bool {
        self.movement()
            .is_some_and(|m| m.host_id == self.node.host_id)
    }

    async fn propose_movement(
        &self,
        command: schema::MovementCommand,
    ) -> Result<Option<RangeMovement>> {
        let applied = self
            .metadata
            .propose(command.encode(), SCHEMA_CHANGE_TIMEOUT)
            .await
            .map_err(metadata_error)?;
        match schema::decode_movement_outcome(&applied) {
            Ok(Ok(())) => Ok(None),
            Ok(Err(holder)) => Ok(Some(holder)),
            Err(malformed) => Err(Error::Server(malformed)),
        }
    }

    /// What a write binds with: the client's timestamp, or the next one of this node's.
    fn write_input<'a>(
        &self,
        catalog: &'a Catalog,
        keyspace: Option<&'a str>,
        params: &QueryParameters,
        values: &'a [crate::protocol::Value],
        lists: &'a dyn dml::ListReader,
    ) -> dml::WriteInput<'a> {
        dml::WriteInput {
            catalog,
            keyspace,
            values,
            timestamp: params.timestamp.unwrap_or_else(|| self.next_timestamp()),
            now_secs: crate::clock::now_secs(),
            lists,
        }
    }

    /// The stored lists a lightweight transaction reads (from this node, the partition's
    /// replica).
    fn local_lists<'a>(&'a self, catalog: &'a Catalog) -> stored_lists::LocalLists<'a> {
        stored_lists::LocalLists {
            replica: &self.replica,
            catalog,
            now_secs: crate::clock::now_secs(),
        }
    }

    /// A write timestamp strictly greater than every one this node assigned before.
    fn next_timestamp(&self) -> i64 {
        self.timestamp_above(i64::MIN)
    }

    /// A write timestamp strictly greater than `floor` and than every one this node
    /// assigned before (a transaction's write must beat every timestamp it read).
    fn timestamp_above(&self, floor: i64) -> i64 {
        let now = crate::clock::now_micros();
        let mut last = self.last_timestamp.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1).max(floor.saturating_add(1));
            match self.last_timestamp.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// The consistency check of a write to the table `statement` names.
    fn check_write(
        &self,
        catalog: &Catalog,
        statement: &Statement,
        keyspace: Option<&str>,
        consistency: crate::protocol::Consistency,
    ) -> Result<()> {
        let (ks, _) = dml::target(statement, keyspace)?;
        let def = catalog
            .keyspace(&ks)
            .ok_or_else(|| Error::invalid(format!("Keyspace {ks} does not exist")))?;
        let live_nodes = self.live_nodes();
        let topology = consistency::Topology {
            live_nodes: &live_nodes,
            local_dc: &self.node.data_center,
        };
        consistency::check(consistency, consistency::Access::Write, def, &topology)
    }

    /// A BATCH message: each statement (text or prepared id) bound with its own values,
    /// everything applied as one atomic engine write — or, with conditions, run as one
    /// lightweight transaction.
    fn batch(&self, ctx: &RequestContext, batch: &crate::protocol::Batch) -> Result<Step> {
        let items = self.batch_statements(ctx, batch)?;
        if items.iter().any(|(s, _, _)| dml::if_clause(s).is_some()) {
            let items = items
                .into_iter()
                .zip(&batch.statements)
                .map(|((s, text, ks), item)| ((*s).clone(), text, ks, item.values.values.clone()))
                .collect();
            let source = lwt::Source::Items(items);
            return self.cas_step(
                source,
                batch.serial_consistency,
                batch.consistency,
                &ctx.lists,
            );
        }
        let timestamp = batch.timestamp.unwrap_or_else(|| self.next_timestamp());
        let params = QueryParameters {
            consistency: batch.consistency,
            timestamp: Some(timestamp),
            ..QueryParameters::default()
        };
        let mut updates = Vec::new();
        for ((statement, _, keyspace), item) in items.iter().zip(&batch.statements) {
            let catalog = self.read_catalog();
            let keyspace = keyspace.as_deref();
            let lists = stored_lists::ReplicaLists {
                fetched: &ctx.lists,
            };
            let values = &item.values.values;
            let input = self.write_input(&catalog, keyspace, &params, values, &lists);
            updates.extend(dml::bind_write(statement, &input)?);
            self.check_write(&catalog, statement, keyspace, batch.consistency)?;
        }
        let updates = dml::merge_updates(updates);
        let tables = items
            .iter()
            .filter_map(|(s, _, ks)| dml::target(s, ks.as_deref()).ok())
            .map(|(ks, t)| format!("{ks}.{t}"))
            .collect::<std::collections::BTreeSet<_>>();
        let tables = tables.into_iter().collect::<Vec<_>>().join(", ");
        dml::check_batch_size(&updates, self.batch_limits, &tables)?;
        Ok(Step::Write(Writes {
            updates,
            consistency: batch.consistency,
            write_type: batch_write_type(batch.kind == crate::protocol::BatchKind::Logged),
        }))
    }

    /// The statements of a BATCH message (parsed, or found by prepared id) with the
    /// keyspace each is bound in; only INSERT, UPDATE and DELETE are allowed.
    fn batch_statements(
        &self,
        ctx: &RequestContext,
        batch: &crate::protocol::Batch,
    ) -> Result<Vec<BatchItem>> {
        use crate::protocol::BatchQuery;
        let mut statements = Vec::with_capacity(batch.statements.len());
        for item in &batch.statements {
            let (statement, text, keyspace) = match &item.query {
                BatchQuery::Text(text) => (
                    Arc::new(crate::cql::parse_statement(text)?),
                    text.clone(),
                    ctx.keyspace.clone(),
                ),
                BatchQuery::Prepared(id) => {
                    let prepared = self
                        .prepared
                        .get(id)
                        .ok_or_else(|| Error::Unprepared(id.clone()))?;
                    (
                        Arc::new(prepared.statement.clone()),
                        prepared.text.clone(),
                        prepared.keyspace.clone(),
                    )
                }
            };
            if !matches!(
                *statement,
                Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
            ) {
                return Err(Error::invalid(
                    "Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed.",
                ));
            }
            statements.push((statement, text, keyspace));
        }
        Ok(statements)
    }

    /// TRUNCATE: every row of the table is removed from its replica.
    fn truncate(
        &self,
        name: &crate::cql::ast::QualifiedName,
        keyspace: Option<&str>,
    ) -> Result<Uuid> {
        let id = {
            let catalog = self.read_catalog();
            let ks = name.keyspace.as_deref().or(keyspace).ok_or_else(|| {
                Error::invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
            })?;
            let def = catalog
                .keyspace(ks)
                .ok_or_else(|| Error::invalid(format!("Keyspace {ks} does not exist")))?;
            if def.is_system() {
                return Err(Error::Unauthorized(format!(
                    "Cannot TRUNCATE table {} in system keyspace {ks}",
                    name.name
                )));
            }
            catalog
                .table(ks, &name.name)
                .ok_or_else(|| Error::invalid(format!("unconfigured table {}", name.name)))?
                .id
        };
        Ok(id)
    }

    /// The data centres keyspace replication may name (and `replication_factor` expands
    /// into): every data centre of a node this node knows.
    fn data_centers(&self) -> crate::schema::DataCenters {
        let view = self.cluster.membership.view();
        crate::schema::DataCenters::new(view.nodes.values().map(|n| n.data_center.clone()))
    }

    /// Live nodes per data centre that own token ranges.
    fn live_nodes(&self) -> BTreeMap<String, usize> {
        live_nodes(&self.cluster.membership.view())
    }

    fn read_catalog(&self) -> Arc<Catalog> {
        self.read_schema().catalog
    }

    fn read_schema(&self) -> Schema {
        self.schema.current()
    }

    /// Replays the logged batches stored here whose coordinator never removed them (the
    /// batchlog worker's pass).
    pub async fn replay_batchlog(&self) -> Result<usize> {
        let catalog = self.read_catalog();
        self.replication.replay_batchlog(&catalog).await
    }

    /// Hands the hints this node holds to the replicas that are up again (the hints
    /// worker's pass); how many were delivered.
    pub async fn deliver_hints(&self) -> Result<usize> {
        let catalog = self.read_catalog();
        self.replication.deliver_hints(&catalog).await
    }

    /// Hints this node holds, for every target.
    pub fn hints_pending(&self) -> u64 {
        let targets = self.replica.hint_ledger().targets();
        targets.iter().map(|(_, hints, _)| hints).sum()
    }

    /// How often the batchlog worker runs.
    pub fn batchlog_interval(&self) -> std::time::Duration {
        self.replication.batchlog_interval()
    }

    /// Writes the store's memory tables to disk (`POST /flush`); blocks until done.
    pub fn flush_storage(&self) -> Result<()> {
        self.replica.flush()
    }

    /// The storage engine's counters (for `/metrics`).
    pub fn storage_stats(&self) -> crate::storage::engine::EngineStats {
        self.replica.stats()
    }

    /// One purge pass over every user table (`[storage] purge_interval_secs`): removes what
    /// no read can see any more, keeping each table's tombstones for its
    /// `gc_grace_seconds`. Blocks for as long as the pass takes: run it off the runtime.
    pub fn purge_all(&self) -> crate::replica::PurgeStats {
        let catalog = self.read_catalog();
        let now = crate::clock::now_secs();
        let mut total = crate::replica::PurgeStats::default();
        for keyspace in catalog.user_keyspaces() {
            // With other replicas, a tombstone is kept until a repair that reached them all
            // began after it (Cassandra's only_purge_repaired_tombstones): a replica that
            // missed the deletion would otherwise bring the data back through the next
            // repair or read. "Now" is held back to the last such repair's start plus grace
            // (0: no repair yet, nothing purgeable). A lone replica needs no repair.
            let replicated = self
                .replication
                .repair_spans(keyspace)
                .iter()
                .any(|(_, replicas)| replicas.len() > 1);
            for table in keyspace.tables.values() {
                let layout = restrict::layout(table, &catalog);
                let grace = u32::try_from(table.options.gc_grace_seconds).unwrap_or(0);
                let horizon = match (replicated, self.replica.repaired_at(table.id)) {
                    (false, _) => now,
                    (true, None) => 0,
                    (true, Some(at)) => {
                        let secs = u32::try_from(at / 1_000_000).unwrap_or(u32::MAX);
                        now.min(secs.saturating_sub(1).saturating_add(grace))
                    }
                };
                match self.replica.purge_table(&layout, grace, horizon) {
                    Ok(stats) => {
                        total.partitions += stats.partitions;
                        total.keys += stats.keys;
                    }
                    Err(error) => tracing::warn!(
                        keyspace = %table.keyspace,
                        table = %table.name,
                        %error,
                        "purge pass failed"
                    ),
                }
            }
        }
        total
    }

    /// What `/metrics` reports of the replica (its cache, storage reads and purges), tables
    /// named from the catalog.
    pub fn replica_report(&self) -> crate::metrics::ReplicaReport {
        let cache = self.replica.cache();
        let catalog = self.read_catalog();
        let names: std::collections::HashMap<Uuid, (&str, &str)> = catalog
            .user_keyspaces()
            .flat_map(|k| k.tables.values())
            .map(|t| (t.id, (t.keyspace.as_str(), t.name.as_str())))
            .collect();
        let tables = cache
            .stats()
            .snapshot()
            .into_iter()
            .filter_map(|(id, counts)| {
                let (ks, name) = names.get(&id)?;
                Some((ks.to_string(), name.to_string(), counts))
            })
            .collect();
        let (bytes, entries) = cache.size();
        let (evictions, invalidations) = cache.removals();
        let (purge_passes, purged_keys) = self.replica.purges();
        crate::metrics::ReplicaReport {
            purge_passes,
            purged_keys,
            bytes,
            entries,
            capacity: self.cache_capacity,
            evictions,
            invalidations,
            storage_partition_reads: self.replica.partition_reads(),
            tables,
        }
    }

    /// What `/metrics` reports of the requests this node coordinated.
    pub fn request_counts(&self) -> RequestCounts {
        let mut counts = self.replication.counters.snapshot();
        // Every peer is reported (0 when none are pending), by its address as
        // `ringcache_peer_up` names it; a target no longer known, by its host id.
        let view = self.replication.view();
        let mut pending: std::collections::BTreeMap<Uuid, u64> = view
            .peers()
            .filter(|p| p.status != crate::cluster::membership::NodeStatus::Left)
            .map(|p| (p.host_id, 0))
            .collect();
        for (target, hints, _) in self.replica.hint_ledger().targets() {
            pending.insert(target, hints);
        }
        counts.hints_corrupt = self.replica.hint_ledger().corrupt();
        // Every user table, 0 until a read repairs it, so the series exists from the start.
        let catalog = self.read_catalog();
        let repairs = &self.replication.counters;
        counts.read_repairs = catalog
            .user_keyspaces()
            .flat_map(|k| k.tables.values())
            .map(|def| {
                let n = repairs.read_repairs_of(def.id);
                (def.keyspace.clone(), def.name.clone(), n)
            })
            .collect();
        counts.hints_pending = pending
            .into_iter()
            .map(|(target, hints)| {
                let peer = view
                    .node(&target)
                    .map_or_else(|| target.to_string(), |n| n.internode.ip().to_string());
                (peer, hints)
            })
            .collect();
        counts
    }

    /// The share of the token space each node holds (`ringcache status [keyspace]`).
    pub fn ownership(
        &self,
        keyspace: Option<&str>,
    ) -> std::result::Result<Ownership, OwnershipError> {
        self.replication.ownership(&self.read_catalog(), keyspace)
    }

    /// The current schema version (`system.local.schema_version`).
    pub fn schema_version(&self) -> Uuid {
        self.schema.current().version
    }

    /// Runs a CQL script (statements separated by `;`, comments allowed) as internal QUERY
    /// requests with no keyspace, in order, stopping at the first failure. Returns how many
    /// statements ran. Used at start for the schema scripts the node is given.
    pub async fn execute_script(&self, script: &str) -> Result<usize> {
        let internal = SocketAddr::from(([127, 0, 0, 1], 0));
        let ctx = RequestContext {
            keyspace: None,
            local_addr: internal,
            peer: internal,
            tracing: false,
            lists: Default::default(),
        };
        let statements = crate::cql::split_script(script);
        for query in &statements {
            let params = QueryParameters::default();
            let request = Request::Query {
                query: query.clone(),
                params,
            };
            self.handle_request(&ctx, &request, None).await?;
        }
        Ok(statements.len())
    }
}

/// A batch's write type as timeouts report it.
fn batch_write_type(logged: bool) -> replication::WriteType {
    match logged {
        true => replication::WriteType::Batch,
        false => replication::WriteType::UnloggedBatch,
    }
}

/// Live nodes per data centre in `view` that own token ranges.
fn live_nodes(view: &crate::cluster::membership::View) -> BTreeMap<String, usize> {
    let mut live = BTreeMap::new();
    for node in view
        .nodes
        .values()
        .filter(|n| n.alive && n.status.owns_ranges())
    {
        *live.entry(node.data_center.clone()).or_insert(0) += 1;
    }
    live
}

/// A BATCH message's statement: parsed, its text, and the keyspace it binds in.
type BatchItem = (Arc<Statement>, String, Option<String>);

/// A metadata log failure as the client sees it: no majority is Unavailable (with the
/// log's own message saying so), anything else a server error naming what happened.
fn metadata_error(error: crate::metadata::MetaError) -> Error {
    use crate::metadata::MetaError;
    match error {
        MetaError::NoQuorum { voters, answered } => Error::NoQuorum {
            required: (voters / 2 + 1) as i32,
            alive: answered as i32,
            message: error.to_string(),
        },
        other => Error::Server(format!("metadata change not applied: {other}")),
    }
}

/// Used by the prepared cache to decide what a schema change invalidates.
pub(crate) fn touches(change: &SchemaChange, keyspace: &str, table: &str) -> bool {
    use crate::protocol::SchemaTarget;
    match &change.target {
        SchemaTarget::Keyspace(ks) => ks == keyspace,
        SchemaTarget::Table { keyspace: ks, name } => ks == keyspace && name == table,
        SchemaTarget::Type { keyspace: ks, .. } => ks == keyspace,
        _ => false,
    }
}

/// Shared handle type used by the server.
pub type SharedCoordinator = Arc<Coordinator>;

/// The tables a CQL-text batch writes, for the batch size log.
fn batch_tables<'s>(
    statements: impl Iterator<Item = &'s Statement>,
    keyspace: Option<&str>,
) -> String {
    let tables: std::collections::BTreeSet<String> = statements
        .filter_map(|s| dml::target(s, keyspace).ok())
        .map(|(ks, t)| format!("{ks}.{t}"))
        .collect();
    tables.into_iter().collect::<Vec<_>>().join(", ")
}
