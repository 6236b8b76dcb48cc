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
mod plan;
mod prepared;
mod projection;
mod read;
mod restrict;
mod select;
mod source;
mod stored_lists;
mod table_select;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::config::Config;
use crate::cql::ast::{Describe, Statement};
use crate::error::{Error, Result};
use crate::node::NodeInfo;
use crate::protocol::{Event, QueryParameters, Request, ResultBody, SchemaChange};
use crate::replica::LocalReplica;
use crate::schema::{Catalog, ClusterInfo, SchemaStore};

pub use plan::{EncodedColumns, PlannedRows};
pub use prepared::PreparedCache;

/// What a statement answers: a RESULT body, or rows whose metadata a cached plan supplies
/// already encoded (the connection writes both the same way).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Any RESULT body.
    Result(ResultBody),
    /// A page of SELECT rows.
    Rows(PlannedRows),
}

impl Reply {
    /// Appends the RESULT body (`<kind>` and the kind's body).
    pub fn encode(&self, buf: &mut bytes::BytesMut) {
        match self {
            Reply::Result(body) => body.encode(buf),
            Reply::Rows(rows) => rows.encode(buf),
        }
    }
}

/// How far a statement got synchronously: a reply, writes still to apply, or a
/// lightweight transaction still to run under its partition's lock.
enum Step {
    Done(Reply),
    Write(Vec<crate::storage::partition::PartitionUpdate>),
    Cas(Box<lwt::CasRequest>),
}

/// A parsed statement and the plan its last execution made.
struct Parsed {
    statement: Statement,
    plan: plan::PlanSlot,
}

/// The CQL language version this node implements (Cassandra 4.1's).
pub const CQL_VERSION: &str = "3.4.6";
/// The Cassandra release whose behaviour clients should expect (≥ 4 so cqlsh uses
/// server-side DESCRIBE and drivers read the v4 schema tables).
pub const RELEASE_VERSION: &str = "4.1.5";

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
}

/// The schema a statement runs against: an immutable catalog and its content hash,
/// computed once per DDL (every `system.local` read reports it, and hashing per read
/// would dominate).
#[derive(Clone)]
struct Schema {
    catalog: Arc<Catalog>,
    version: Uuid,
}

/// Why a coordinator could not open its node's state.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Schema(#[from] crate::schema::StoreError),
    #[error(transparent)]
    Replica(#[from] crate::replica::OpenError),
}

/// Executes statements for every connection of a node.
pub struct Coordinator {
    node: NodeInfo,
    /// `node`'s fixed facts, serialized once.
    facts: source::NodeFacts,
    /// The served schema and its version, replaced together by DDL.
    schema: RwLock<Schema>,
    /// Parsed QUERY texts, so drivers' repeated control queries skip the parser.
    parsed: moka::sync::Cache<String, Arc<Parsed>>,
    /// Serialises DDL and owns the on-disk schema.
    store: Mutex<SchemaStore>,
    prepared: PreparedCache,
    events: broadcast::Sender<Event>,
    max_unpaged_rows: usize,
    /// Cassandra's batch size thresholds (`dml::check_batch_size`).
    batch_limits: dml::BatchLimits,
    /// This node's replica of every user table (RF = 1 on one node: the only one).
    replica: LocalReplica,
    /// Live nodes per data centre, for consistency checks: this node alone until the
    /// cluster layer exists.
    live_nodes: BTreeMap<String, usize>,
    /// The data centres keyspace replication may name (and `replication_factor` expands
    /// into): this node's until the cluster layer adds its peers'.
    data_centers: crate::schema::DataCenters,
    /// The last write timestamp this node assigned (µs), so assigned timestamps strictly
    /// increase even when the clock stalls or steps back.
    last_timestamp: AtomicI64,
    /// Per-partition locks held by lightweight transactions from read to write.
    cas_locks: lwt::CasLocks,
    /// The replica cache's configured capacity in bytes, for `/metrics`.
    cache_capacity: u64,
}

impl Coordinator {
    /// Loads the persisted schema from the data directory.
    pub fn open(config: &Config, node: NodeInfo) -> std::result::Result<Coordinator, OpenError> {
        let (store, catalog) = SchemaStore::open(&config.data_dir)?;
        let replica = LocalReplica::open(config)?;
        Ok(Coordinator {
            facts: source::NodeFacts::new(&node),
            node,
            schema: RwLock::new(Schema {
                version: catalog.schema_version(),
                catalog: Arc::new(catalog),
            }),
            parsed: moka::sync::Cache::new(PARSED_CACHE_ENTRIES),
            store: Mutex::new(store),
            prepared: PreparedCache::new(config.limits.max_prepared_statements),
            events: broadcast::channel(256).0,
            max_unpaged_rows: config.limits.max_unpaged_rows,
            batch_limits: dml::BatchLimits::from_kib(
                config.limits.batch_size_warn_threshold_in_kb,
                config.limits.batch_size_fail_threshold_in_kb,
            ),
            replica,
            live_nodes: BTreeMap::from([(config.data_center.clone(), 1)]),
            data_centers: crate::schema::DataCenters::new([config.data_center.clone()]),
            last_timestamp: AtomicI64::new(0),
            cas_locks: lwt::CasLocks::new(),
            cache_capacity: config.cache.capacity_bytes,
        })
    }

    /// A receiver of the node's pushed events (REGISTER).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Runs one QUERY, PREPARE, EXECUTE or BATCH.
    pub async fn handle(&self, ctx: RequestContext, request: Request) -> Result<Reply> {
        match request {
            Request::Query { query, params } => {
                let parsed = self.parse_cached(query)?;
                let keyspace = ctx.keyspace.as_deref();
                let step = self
                    .execute(&ctx, &parsed.statement, &params, keyspace, &parsed.plan)
                    .await?;
                self.finish(step).await
            }
            Request::Prepare { query } => self.prepare(&ctx, &query).map(Reply::Result),
            Request::Execute { id, params } => {
                let step = self.execute_prepared(&ctx, &id, &params).await?;
                self.finish(step).await
            }
            Request::Batch(batch) => {
                let step = self.batch(&ctx, &batch)?;
                self.finish(step).await
            }
            other => Err(Error::Server(format!("{other:?} is not a statement"))),
        }
    }

    /// Completes a statement: a reply is ready as it is; a write is applied on the
    /// partitions' replica (awaited, so a synced write never blocks the connection's task)
    /// and acknowledged with Void.
    async fn finish(&self, step: Step) -> Result<Reply> {
        match step {
            Step::Done(reply) => Ok(reply),
            Step::Write(updates) => {
                if !updates.is_empty() {
                    self.replica.write(updates).await?;
                }
                Ok(Reply::Result(ResultBody::Void))
            }
            Step::Cas(request) => self.cas(&request).await,
        }
    }

    /// Runs a lightweight transaction: its partition's lock is held from the read of the
    /// current values to the end of the write (`lwt/`).
    async fn cas(&self, request: &lwt::CasRequest) -> Result<Reply> {
        let (table, partition) = request.lock_key();
        let _lock = self.cas_locks.lock(table, partition).await;
        let catalog = self.read_catalog();
        let outcome = lwt::decide(
            request,
            &catalog,
            &self.replica,
            self.max_unpaged_rows,
            |newest| self.timestamp_above(newest),
        )
        .await?;
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

    /// Checks a lightweight transaction and plans it (nothing is locked yet).
    fn cas_step(
        &self,
        source: lwt::Source,
        serial: Option<crate::protocol::Consistency>,
        commit: crate::protocol::Consistency,
    ) -> Result<Step> {
        let catalog = self.read_catalog();
        let topology = consistency::Topology {
            live_nodes: &self.live_nodes,
            local_dc: &self.node.data_center,
        };
        let levels = lwt::Levels { serial, commit };
        let lists = self.stored_lists(&catalog);
        let request = lwt::CasRequest::new(source, &catalog, &lists, levels, &topology)?;
        Ok(Step::Cas(Box::new(request)))
    }

    fn parse_cached(&self, query: String) -> Result<Arc<Parsed>> {
        if let Some(parsed) = self.parsed.get(&query) {
            return Ok(parsed);
        }
        let parsed = Arc::new(Parsed {
            statement: crate::cql::parse_statement(&query)?,
            plan: plan::PlanSlot::default(),
        });
        if query.len() <= PARSED_CACHE_MAX_TEXT {
            self.parsed.insert(query, parsed.clone());
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
    async fn execute(
        &self,
        ctx: &RequestContext,
        statement: &Statement,
        params: &QueryParameters,
        keyspace: Option<&str>,
        plans: &plan::PlanSlot,
    ) -> Result<Step> {
        if let Statement::Select(select) = statement {
            let Schema { catalog, version } = self.read_schema();
            let source = source::Source {
                facts: &self.facts,
                catalog: &catalog,
                ctx,
                schema_version: version,
                replica: &self.replica,
                live_nodes: &self.live_nodes,
                local_dc: &self.node.data_center,
                max_unpaged_rows: self.max_unpaged_rows,
            };
            let limit = self.max_unpaged_rows;
            return select::execute(select, params, keyspace, &source, limit, plans)
                .await
                .map(|rows| Step::Done(Reply::Rows(rows)));
        }
        self.execute_other(ctx, statement, params, keyspace)
    }

    fn execute_other(
        &self,
        ctx: &RequestContext,
        statement: &Statement,
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
                    keyspace: keyspace.map(str::to_owned),
                    values: params.values.values.clone(),
                };
                self.cas_step(source, params.serial_consistency, params.consistency)
            }
            Statement::Batch(batch) if dml::batch_has_conditions(batch) => {
                let source = lwt::Source::TextBatch {
                    batch: batch.clone(),
                    keyspace: keyspace.map(str::to_owned),
                    values: params.values.values.clone(),
                };
                self.cas_step(source, params.serial_consistency, params.consistency)
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let updates = {
                    let catalog = self.read_catalog();
                    let lists = self.stored_lists(&catalog);
                    let values = &params.values.values;
                    let input = self.write_input(&catalog, keyspace, params, values, &lists);
                    let updates = dml::bind_write(statement, &input)?;
                    self.check_write(&catalog, statement, keyspace, params.consistency)?;
                    updates
                };
                Ok(Step::Write(updates))
            }
            Statement::Batch(batch) => {
                let updates = {
                    let catalog = self.read_catalog();
                    let lists = self.stored_lists(&catalog);
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
                Ok(Step::Write(updates))
            }
            Statement::Truncate(name) => self.truncate(name, keyspace).map(done),
            ddl => self.apply_ddl(ddl, keyspace).map(done),
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

    /// Applies DDL: validate and change a copy of the catalog, persist it, then publish it.
    /// A failure to persist leaves the served schema unchanged, so nothing is acknowledged
    /// that a restart would lose.
    fn apply_ddl(&self, statement: &Statement, keyspace: Option<&str>) -> Result<ResultBody> {
        let store = self
            .store
            .lock()
            .map_err(|_| Error::Server("schema store poisoned".into()))?;
        let mut next = Catalog::clone(&self.read_catalog());
        let before = table_ids(&next);
        let Some(change) = next.apply_with(statement, keyspace, &self.data_centers)? else {
            // IF [NOT] EXISTS matched: nothing changed.
            return Ok(ResultBody::Void);
        };
        store
            .save(&next)
            .map_err(|e| Error::Server(format!("cannot persist schema: {e}")))?;
        // Catalog and version are swapped as one, so a reader never plans with one
        // catalog and caches the plan under another's version.
        let version = next.schema_version();
        *self.schema.write().unwrap_or_else(|p| p.into_inner()) = Schema {
            catalog: Arc::new(next),
            version,
        };
        drop(store);
        // A dropped table's id is never reused, so its rows are unreachable; reclaim them.
        let after = table_ids(&self.read_catalog());
        for id in before.difference(&after) {
            if let Err(e) = self.replica.drop_table(*id) {
                tracing::warn!(table = %id, error = %e, "could not remove a dropped table's data");
            }
        }
        self.prepared.invalidate_for(&change);
        let _ = self.events.send(Event::SchemaChange(change.clone()));
        tracing::info!(?change, "schema changed");
        Ok(ResultBody::SchemaChange(change))
    }

    /// What a write binds with: the client's timestamp, or the next one of this node's.
    fn write_input<'a>(
        &self,
        catalog: &'a Catalog,
        keyspace: Option<&'a str>,
        params: &QueryParameters,
        values: &'a [crate::protocol::Value],
        lists: &'a stored_lists::StoredLists<'a>,
    ) -> dml::WriteInput<'a> {
        dml::WriteInput {
            catalog,
            keyspace,
            values,
            timestamp: params.timestamp.unwrap_or_else(|| self.next_timestamp()),
            now_secs: lists.now_secs,
            lists,
        }
    }

    /// The stored lists a write reads for list operations by index or value.
    fn stored_lists<'a>(&'a self, catalog: &'a Catalog) -> stored_lists::StoredLists<'a> {
        stored_lists::StoredLists {
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
        let topology = consistency::Topology {
            live_nodes: &self.live_nodes,
            local_dc: &self.node.data_center,
        };
        consistency::check(consistency, consistency::Access::Write, def, &topology)
    }

    /// A BATCH message: each statement (text or prepared id) bound with its own values,
    /// everything applied as one atomic engine write — or, with conditions, run as one
    /// lightweight transaction.
    fn batch(&self, ctx: &RequestContext, batch: &crate::protocol::Batch) -> Result<Step> {
        let items = self.batch_statements(ctx, batch)?;
        if items.iter().any(|(s, _)| dml::if_clause(s).is_some()) {
            let items = items
                .into_iter()
                .zip(&batch.statements)
                .map(|((s, ks), item)| ((*s).clone(), ks, item.values.values.clone()))
                .collect();
            let source = lwt::Source::Items(items);
            return self.cas_step(source, batch.serial_consistency, batch.consistency);
        }
        let timestamp = batch.timestamp.unwrap_or_else(|| self.next_timestamp());
        let params = QueryParameters {
            consistency: batch.consistency,
            timestamp: Some(timestamp),
            ..QueryParameters::default()
        };
        let mut updates = Vec::new();
        for ((statement, keyspace), item) in items.iter().zip(&batch.statements) {
            let catalog = self.read_catalog();
            let keyspace = keyspace.as_deref();
            let lists = self.stored_lists(&catalog);
            let values = &item.values.values;
            let input = self.write_input(&catalog, keyspace, &params, values, &lists);
            updates.extend(dml::bind_write(statement, &input)?);
            self.check_write(&catalog, statement, keyspace, batch.consistency)?;
        }
        let updates = dml::merge_updates(updates);
        let tables = items
            .iter()
            .filter_map(|(s, ks)| dml::target(s, ks.as_deref()).ok())
            .map(|(ks, t)| format!("{ks}.{t}"))
            .collect::<std::collections::BTreeSet<_>>();
        let tables = tables.into_iter().collect::<Vec<_>>().join(", ");
        dml::check_batch_size(&updates, self.batch_limits, &tables)?;
        Ok(Step::Write(updates))
    }

    /// The statements of a BATCH message (parsed, or found by prepared id) with the
    /// keyspace each is bound in; only INSERT, UPDATE and DELETE are allowed.
    fn batch_statements(
        &self,
        ctx: &RequestContext,
        batch: &crate::protocol::Batch,
    ) -> Result<Vec<(Arc<Statement>, Option<String>)>> {
        use crate::protocol::BatchQuery;
        let mut statements = Vec::with_capacity(batch.statements.len());
        for item in &batch.statements {
            let (statement, keyspace) = match &item.query {
                BatchQuery::Text(text) => (
                    Arc::new(crate::cql::parse_statement(text)?),
                    ctx.keyspace.clone(),
                ),
                BatchQuery::Prepared(id) => {
                    let prepared = self
                        .prepared
                        .get(id)
                        .ok_or_else(|| Error::Unprepared(id.clone()))?;
                    (
                        Arc::new(prepared.statement.clone()),
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
            statements.push((statement, keyspace));
        }
        Ok(statements)
    }

    /// TRUNCATE: every row of the table is removed from its replica.
    fn truncate(
        &self,
        name: &crate::cql::ast::QualifiedName,
        keyspace: Option<&str>,
    ) -> Result<ResultBody> {
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
        self.replica.truncate(id)?;
        Ok(ResultBody::Void)
    }

    fn read_catalog(&self) -> Arc<Catalog> {
        self.read_schema().catalog
    }

    fn read_schema(&self) -> Schema {
        // A panic while holding the write lock cannot leave a half-applied schema (it is
        // replaced whole), so a poisoned lock is still consistent.
        self.schema
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        for table in catalog.user_keyspaces().flat_map(|k| k.tables.values()) {
            let layout = restrict::layout(table, &catalog);
            let grace = u32::try_from(table.options.gc_grace_seconds).unwrap_or(0);
            match self.replica.purge_table(&layout, grace, now) {
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

    /// The current schema version (`system.local.schema_version`).
    pub fn schema_version(&self) -> Uuid {
        self.schema
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .version
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
        };
        let statements = crate::cql::split_script(script);
        for query in &statements {
            let params = QueryParameters::default();
            let request = Request::Query {
                query: query.clone(),
                params,
            };
            self.handle(ctx.clone(), request).await?;
        }
        Ok(statements.len())
    }
}

/// Ids of every user table.
fn table_ids(catalog: &Catalog) -> std::collections::BTreeSet<Uuid> {
    catalog
        .user_keyspaces()
        .flat_map(|k| k.tables.values().map(|t| t.id))
        .collect()
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
