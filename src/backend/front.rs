//! A client request on a node in front of a CQL backend (design §19).
//!
//! - Statements on the tier's own tables (`system.local`, `system.peers`,
//!   `system.peers_v2`) run on this node, so drivers learn the tier's ring and route to
//!   tier nodes; everything else goes to the backend, the schema tables included, so
//!   clients see the backend's schema.
//! - `USE ks` is not sent on: a backend connection is shared by many clients, so its
//!   keyspace cannot follow one client's. The tier checks that the backend has the
//!   keyspace, answers SET_KEYSPACE itself, and sends that connection's later requests on
//!   backend connections that are in the keyspace.
//! - PREPARE is sent on and remembered (statement text, keyspace, partition key
//!   positions): EXECUTE goes token-aware to a replica of its partition, and when the
//!   backend answers Unprepared (it restarted, or evicted the statement) the tier prepares
//!   it again and retries once, so the client never sees it.
//! - A backend that does not answer within `request_timeout_ms` gives the client the
//!   timeout error of its statement's kind, never a hang.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{Backend, BackendError, Forwarded, Incoming, Outgoing, Routing};
use crate::coordinator::{Coordinator, Reply, RequestContext};
use crate::cql::ast::{QualifiedName, Statement};
use crate::error::{Error, Result};
use crate::metrics::backend::BackendMetrics;
use crate::protocol::{
    BatchQuery, Consistency, ErrorBody, ErrorCode, ErrorExtra, Opcode, QueryParameters, Reader,
    Request, ResultBody, Value,
};

/// How long DDL waits for the backend's nodes to agree on the schema (Cassandra drivers'
/// `max_schema_agreement_wait` default), and how often it asks.
const SCHEMA_AGREEMENT_WAIT: Duration = Duration::from_secs(10);
const SCHEMA_AGREEMENT_POLL: Duration = Duration::from_millis(100);

/// The tier's own tables, answered by this node.
const TIER_TABLES: &[&str] = &["local", "peers", "peers_v2"];

/// What a statement text is, for where it runs and how it is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A read of the tier's own tables.
    Tier,
    /// `USE ks`.
    Use(String),
    /// A SELECT at the backend: idempotent.
    Read,
    /// INSERT, UPDATE, DELETE, BATCH.
    Write,
    /// DDL, or a statement this node's parser does not know (the backend may).
    Other,
}

fn classify(query: &str, keyspace: Option<&str>) -> Kind {
    match crate::cql::parse_statement(query) {
        Ok(Statement::Select(select)) if is_tier_table(&select.table, keyspace) => Kind::Tier,
        Ok(Statement::Select(_)) => Kind::Read,
        Ok(Statement::Use(name)) => Kind::Use(name),
        Ok(Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_))
        | Ok(Statement::Batch(_)) => Kind::Write,
        _ => Kind::Other,
    }
}

fn is_tier_table(table: &QualifiedName, keyspace: Option<&str>) -> bool {
    table.keyspace.as_deref().or(keyspace) == Some("system")
        && TIER_TABLES.contains(&table.name.as_str())
}

/// A statement prepared at the backend through this node.
#[derive(Debug)]
struct Prepared {
    query: String,
    /// The client connection's keyspace when it prepared: the backend prepares it again
    /// in the same one.
    keyspace: Option<String>,
    kind: Kind,
    /// The statement's table keyspace and its partition key's bind positions, for
    /// token-aware routing.
    table_keyspace: Option<String>,
    pk_indexes: Vec<u16>,
    /// The backend's id: the client's until a backend prepares it under another.
    backend_id: Mutex<Bytes>,
    /// The bind and result metadata the client was given. A statement the backend
    /// prepares again with other metadata (its table was altered) must not be retried
    /// for the client, whose driver would read the new rows with the old metadata: the
    /// client gets the Unprepared and prepares again itself, as it would from Cassandra.
    shape: Bytes,
}

impl Prepared {
    /// The routing key of an EXECUTE's values, serialized as drivers do: the one
    /// component's bytes, or each component as `<len:u16><bytes><0>`.
    fn routing(&self, params: &QueryParameters) -> Option<Routing> {
        let keyspace = self.table_keyspace.clone()?;
        if self.pk_indexes.is_empty() || params.values.names.is_some() {
            return None;
        }
        let part = |i: &u16| match params.values.values.get(usize::from(*i)) {
            Some(Value::Bytes(b)) => Some(b.clone()),
            _ => None,
        };
        let key = if let [only] = self.pk_indexes.as_slice() {
            part(only)?.to_vec()
        } else {
            let mut key = Vec::new();
            for i in &self.pk_indexes {
                let bytes = part(i)?;
                key.extend_from_slice(&u16::try_from(bytes.len()).ok()?.to_be_bytes());
                key.extend_from_slice(&bytes);
                key.push(0);
            }
            key
        };
        Some(Routing { keyspace, key })
    }
}

/// Runs client requests on a node whose data lives in a CQL backend.
pub struct Front {
    backend: Arc<dyn Backend>,
    /// Statements prepared at the backend through this node, by the id the client holds.
    prepared: moka::sync::Cache<Bytes, Arc<Prepared>>,
    timeout: Duration,
    metrics: Arc<crate::metrics::Metrics>,
    /// The backend latency histograms of the opcodes sent, resolved once.
    durations: [(Opcode, prometheus::Histogram); 4],
}

impl Front {
    pub fn new(
        backend: Arc<dyn Backend>,
        settings: &crate::config::Backend,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Front {
        let durations = [
            Opcode::Query,
            Opcode::Prepare,
            Opcode::Execute,
            Opcode::Batch,
        ]
        .map(|opcode| {
            let label = [crate::metrics::opcode_label(opcode)];
            (opcode, metrics.backend.duration.with_label_values(&label))
        });
        Front {
            backend,
            prepared: moka::sync::Cache::new(settings.max_prepared_statements),
            timeout: Duration::from_millis(settings.request_timeout_ms),
            metrics,
            durations,
        }
    }

    fn counters(&self) -> &BackendMetrics {
        &self.metrics.backend
    }

    /// Runs one QUERY, PREPARE, EXECUTE or BATCH.
    pub async fn handle(
        &self,
        coordinator: &Coordinator,
        ctx: RequestContext,
        request: Request,
    ) -> Result<Reply> {
        match request {
            Request::Query { query, params } => {
                let kind = classify(&query, ctx.keyspace.as_deref());
                match kind {
                    Kind::Tier => {
                        coordinator
                            .handle(ctx, Request::Query { query, params })
                            .await
                    }
                    Kind::Use(keyspace) => self.use_keyspace(keyspace, params.consistency).await,
                    kind => {
                        let consistency = params.consistency;
                        let request = Request::Query { query, params };
                        let outgoing = outgoing(&ctx, &request, consistency, &kind, None);
                        let answer = self.send(outgoing, &kind).await?;
                        if is_schema_change(&answer) {
                            self.await_schema_agreement().await;
                        }
                        reply(answer)
                    }
                }
            }
            Request::Prepare { query } => {
                let kind = classify(&query, ctx.keyspace.as_deref());
                if kind == Kind::Tier {
                    return coordinator.handle(ctx, Request::Prepare { query }).await;
                }
                let answer = self
                    .prepare_at_backend(&query, ctx.keyspace.clone(), ctx.tracing)
                    .await?;
                if let Some(prepared) = prepared_result(&answer) {
                    let id = prepared.id.clone();
                    let statement = remember(query, ctx.keyspace.clone(), kind, prepared);
                    self.prepared.insert(id, Arc::new(statement));
                }
                reply(answer)
            }
            Request::Execute { id, params } => {
                if coordinator.holds_prepared(&id) {
                    return coordinator
                        .handle(ctx, Request::Execute { id, params })
                        .await;
                }
                self.execute(&ctx, id, params).await
            }
            Request::Batch(batch) => {
                let consistency = batch.consistency;
                let mut request = Request::Batch(batch);
                let kind = Kind::Write;
                let mut reprepared = false;
                loop {
                    let outgoing = outgoing(&ctx, &request, consistency, &kind, None);
                    let answer = self.send(outgoing, &kind).await?;
                    match unprepared_id(&answer) {
                        Some(id) if !reprepared => {
                            let Some(statement) = self.prepared.get(&id) else {
                                return reply(answer);
                            };
                            let Some(backend_id) = self.reprepare(&statement).await? else {
                                return reply(answer);
                            };
                            if let Request::Batch(batch) = &mut request {
                                for s in &mut batch.statements {
                                    if matches!(&s.query, BatchQuery::Prepared(p) if *p == id) {
                                        s.query = BatchQuery::Prepared(backend_id.clone());
                                    }
                                }
                            }
                            reprepared = true;
                        }
                        _ => return reply(answer),
                    }
                }
            }
            other => coordinator.handle(ctx, other).await,
        }
    }

    async fn execute(
        &self,
        ctx: &RequestContext,
        id: Bytes,
        params: QueryParameters,
    ) -> Result<Reply> {
        let statement = self.prepared.get(&id);
        let kind = statement.as_ref().map_or(Kind::Other, |s| s.kind.clone());
        let routing = statement.as_ref().and_then(|s| s.routing(&params));
        let consistency = params.consistency;
        let mut request = Request::Execute {
            id: statement
                .as_ref()
                .map_or(id.clone(), |s| lock(&s.backend_id).clone()),
            params,
        };
        let session = statement.as_ref().map(|s| s.keyspace.clone());
        let mut reprepared = false;
        loop {
            let mut outgoing = outgoing(ctx, &request, consistency, &kind, routing.clone());
            if let Some(keyspace) = &session {
                outgoing.session_keyspace = keyspace.clone();
            }
            let answer = self.send(outgoing, &kind).await?;
            match (&statement, unprepared_id(&answer)) {
                (Some(statement), Some(_)) if !reprepared => {
                    let Some(backend_id) = self.reprepare(statement).await? else {
                        return reply(answer);
                    };
                    if let Request::Execute { id, .. } = &mut request {
                        *id = backend_id;
                    }
                    reprepared = true;
                }
                _ => return reply(answer),
            }
        }
    }

    /// Prepares `statement` again at the backend, in its keyspace: its backend id after,
    /// or `None` when the backend now prepares it with other metadata than the client
    /// holds (the client must prepare again itself).
    async fn reprepare(&self, statement: &Prepared) -> Result<Option<Bytes>> {
        self.counters().reprepares.inc();
        let answer = self
            .prepare_at_backend(&statement.query, statement.keyspace.clone(), false)
            .await?;
        match prepared_result(&answer) {
            Some(prepared) if shape(&prepared) != statement.shape => Ok(None),
            Some(prepared) => {
                *lock(&statement.backend_id) = prepared.id.clone();
                Ok(Some(prepared.id))
            }
            None => Err(reply(answer).err().unwrap_or_else(|| {
                Error::Server("the backend answered a PREPARE with no statement id".into())
            })),
        }
    }

    async fn prepare_at_backend(
        &self,
        query: &str,
        keyspace: Option<String>,
        tracing: bool,
    ) -> Result<Incoming> {
        let prepare = Request::Prepare {
            query: query.to_owned(),
        };
        let outgoing = own_request(&prepare, keyspace, tracing);
        let started = Instant::now();
        let answers = tokio::time::timeout(self.timeout, self.backend.send_to_all(outgoing)).await;
        self.observe(Opcode::Prepare, started);
        let Ok(answers) = answers else {
            self.counters().errors.with_label_values(&["timeout"]).inc();
            return Err(self.timed_out(&Kind::Other, Consistency::One));
        };
        // The first statement id, or the last error when no node prepared it.
        let mut last = None;
        for answer in answers {
            match answer {
                Ok(answer) if answer.opcode == Opcode::Result => return Ok(answer),
                other => last = Some(other),
            }
        }
        match last {
            Some(Ok(answer)) => {
                self.count_error_answer(&answer);
                Ok(answer)
            }
            Some(Err(error)) => Err(self.unanswered(error, Consistency::One)),
            None => Err(self.unanswered(
                BackendError::Unreachable("the backend has no node".into()),
                Consistency::One,
            )),
        }
    }

    /// After DDL, waits until every backend node that answers reports one schema version,
    /// for at most [`SCHEMA_AGREEMENT_WAIT`]. Drivers wait so after DDL, but they ask the
    /// tier's nodes, which always agree among themselves: the tier waits for the backend
    /// in their place, so a statement on a new table finds it on every backend node.
    async fn await_schema_agreement(&self) {
        let deadline = Instant::now() + SCHEMA_AGREEMENT_WAIT;
        loop {
            let versions = self.schema_versions().await;
            if versions.len() <= 1 {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    versions = versions.len(),
                    "the backend's nodes did not agree on a schema version within {:?}",
                    SCHEMA_AGREEMENT_WAIT
                );
                return;
            }
            tokio::time::sleep(SCHEMA_AGREEMENT_POLL).await;
        }
    }

    /// The schema versions the backend's nodes report (nodes that do not answer left out).
    async fn schema_versions(&self) -> std::collections::BTreeSet<Bytes> {
        let versions = Request::Query {
            query: "SELECT schema_version FROM system.local".to_owned(),
            params: QueryParameters::default(),
        };
        let outgoing = own_request(&versions, None, false);
        let answers = tokio::time::timeout(self.timeout, self.backend.send_to_all(outgoing))
            .await
            .unwrap_or_default();
        answers
            .into_iter()
            .filter_map(|answer| {
                let answer = answer.ok().filter(|a| a.opcode == Opcode::Result)?;
                match ResultBody::decode(&mut Reader::new(answer.body)) {
                    Ok(ResultBody::Rows(rows)) => rows.rows.first()?.first()?.clone(),
                    _ => None,
                }
            })
            .collect()
    }

    /// `USE keyspace`: answered here once the backend shows it has the keyspace.
    async fn use_keyspace(&self, keyspace: String, consistency: Consistency) -> Result<Reply> {
        let check = Request::Query {
            query: "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?"
                .to_owned(),
            params: QueryParameters {
                values: crate::protocol::Values {
                    values: vec![Value::Bytes(Bytes::from(keyspace.clone().into_bytes()))],
                    names: None,
                },
                consistency,
                ..QueryParameters::default()
            },
        };
        let outgoing = own_request(&check, None, false);
        let answer = self.send(outgoing, &Kind::Read).await?;
        let exists = match reply(answer)? {
            Reply::Forwarded(f) => matches!(
                ResultBody::decode(&mut Reader::new(strip_prefixes(&f))),
                Ok(ResultBody::Rows(rows)) if !rows.rows.is_empty()
            ),
            _ => false,
        };
        if !exists {
            return Err(Error::invalid(format!(
                "Keyspace '{keyspace}' does not exist"
            )));
        }
        Ok(Reply::Result(ResultBody::SetKeyspace(keyspace)))
    }

    /// Sends one request, bounded by the backend timeout, and counts what happened.
    async fn send(&self, outgoing: Outgoing, kind: &Kind) -> Result<Incoming> {
        let opcode = outgoing.opcode;
        let consistency = outgoing.consistency;
        let started = Instant::now();
        let sent = tokio::time::timeout(self.timeout, self.backend.send(outgoing)).await;
        self.observe(opcode, started);
        match sent {
            Ok(Ok(answer)) => {
                self.count_error_answer(&answer);
                Ok(answer)
            }
            Ok(Err(error)) => Err(self.unanswered(error, consistency)),
            Err(_) => {
                self.counters().errors.with_label_values(&["timeout"]).inc();
                Err(self.timed_out(kind, consistency))
            }
        }
    }

    fn observe(&self, opcode: Opcode, started: Instant) {
        let elapsed = started.elapsed().as_secs_f64();
        match self.durations.iter().find(|(o, _)| *o == opcode) {
            Some((_, histogram)) => histogram.observe(elapsed),
            None => self
                .counters()
                .duration
                .with_label_values(&[crate::metrics::opcode_label(opcode)])
                .observe(elapsed),
        }
    }

    fn count_error_answer(&self, answer: &Incoming) {
        if answer.opcode == Opcode::Error {
            let code = error_code(&answer.body).map_or("unknown", ErrorCode::label);
            self.counters().errors.with_label_values(&[code]).inc();
        }
    }

    /// The client's error for a request the backend never answered, counted.
    fn unanswered(&self, error: BackendError, consistency: Consistency) -> Error {
        tracing::debug!(%error, "backend request failed");
        let label = match error {
            BackendError::Unreachable(_) => "unreachable",
            BackendError::Failed(_) => "failed",
            BackendError::Refused(_) => "refused",
        };
        self.counters().errors.with_label_values(&[label]).inc();
        match error {
            // No backend replica can be reached: what Unavailable says to a driver, which
            // may try another tier node.
            BackendError::Unreachable(_) => Error::Unavailable {
                consistency,
                required: 1,
                alive: 0,
            },
            BackendError::Failed(message) => {
                Error::Server(format!("the backend request failed: {message}"))
            }
            BackendError::Refused(message) => Error::Overloaded(message),
        }
    }

    /// The timeout the client would get from a coordinator whose replicas never answered.
    fn timed_out(&self, kind: &Kind, consistency: Consistency) -> Error {
        match kind {
            Kind::Read | Kind::Tier | Kind::Use(_) => Error::ReadTimeout {
                consistency,
                received: 0,
                block_for: 1,
                data_present: false,
            },
            Kind::Write => Error::WriteTimeout {
                consistency,
                received: 0,
                block_for: 1,
                write_type: "SIMPLE",
            },
            Kind::Other => Error::Server(format!(
                "the backend did not answer within {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request the tier makes of its own (not a client's), in `keyspace`'s session: sending
/// it twice is harmless.
fn own_request(request: &Request, keyspace: Option<String>, tracing: bool) -> Outgoing {
    let mut body = BytesMut::new();
    request.encode(&mut body);
    let consistency = match request {
        Request::Query { params, .. } => params.consistency,
        _ => Consistency::One,
    };
    Outgoing {
        opcode: request.opcode(),
        body: Vec::from(body),
        tracing,
        session_keyspace: keyspace,
        routing: None,
        consistency,
        idempotent: true,
    }
}

/// The request for the backend: `request` encoded, in the client connection's keyspace.
fn outgoing(
    ctx: &RequestContext,
    request: &Request,
    consistency: Consistency,
    kind: &Kind,
    routing: Option<Routing>,
) -> Outgoing {
    let mut body = BytesMut::new();
    request.encode(&mut body);
    Outgoing {
        opcode: request.opcode(),
        body: Vec::from(body),
        tracing: ctx.tracing,
        session_keyspace: ctx.keyspace.clone(),
        routing,
        consistency,
        idempotent: *kind == Kind::Read,
    }
}

fn remember(
    query: String,
    keyspace: Option<String>,
    kind: Kind,
    prepared: crate::protocol::PreparedResult,
) -> Prepared {
    Prepared {
        query,
        keyspace,
        kind,
        table_keyspace: prepared
            .metadata
            .columns
            .first()
            .map(|c| c.keyspace.clone()),
        pk_indexes: prepared.metadata.pk_indexes.clone(),
        shape: shape(&prepared),
        backend_id: Mutex::new(prepared.id),
    }
}

/// A prepared statement's bind and result metadata, encoded.
fn shape(prepared: &crate::protocol::PreparedResult) -> Bytes {
    let mut buf = BytesMut::new();
    prepared.metadata.encode(&mut buf);
    prepared.result_metadata.encode(&mut buf);
    buf.freeze()
}

/// The client's reply to a backend answer: its RESULT as it came, or its error.
fn reply(answer: Incoming) -> Result<Reply> {
    match answer.opcode {
        Opcode::Result => match ResultBody::check(answer.body.clone()) {
            Ok(()) => Ok(Reply::Forwarded(Forwarded::of(&answer))),
            Err(e) => Err(Error::Server(format!(
                "the backend sent a RESULT this node cannot read: {e}"
            ))),
        },
        Opcode::Error => match ErrorBody::decode(&mut Reader::new(answer.body)) {
            Ok(body) => Err(Error::Forwarded(body)),
            Err(e) => Err(Error::Server(format!(
                "the backend sent an error this node cannot read: {e}"
            ))),
        },
        other => Err(Error::Server(format!(
            "the backend answered with {other:?} where RESULT or ERROR was due"
        ))),
    }
}

/// Whether `answer` is a SCHEMA_CHANGE result (kind 0x0005).
fn is_schema_change(answer: &Incoming) -> bool {
    answer.opcode == Opcode::Result && answer.body.get(..4) == Some(&[0, 0, 0, 5][..])
}

/// The PREPARED result in a backend answer, if that is what it is.
fn prepared_result(answer: &Incoming) -> Option<crate::protocol::PreparedResult> {
    if answer.opcode != Opcode::Result {
        return None;
    }
    match ResultBody::decode(&mut Reader::new(answer.body.clone())) {
        Ok(ResultBody::Prepared(prepared)) => Some(prepared),
        _ => None,
    }
}

/// The statement id of an Unprepared error answer.
fn unprepared_id(answer: &Incoming) -> Option<Bytes> {
    if answer.opcode != Opcode::Error {
        return None;
    }
    match ErrorBody::decode(&mut Reader::new(answer.body.clone())) {
        Ok(ErrorBody {
            extra: ErrorExtra::Unprepared { id },
            ..
        }) => Some(id),
        _ => None,
    }
}

fn error_code(body: &Bytes) -> Option<ErrorCode> {
    ErrorBody::decode(&mut Reader::new(body.clone()))
        .ok()
        .map(|b| b.code)
}

/// A forwarded RESULT's body without the tracing id and warnings put in front of it.
fn strip_prefixes(forwarded: &Forwarded) -> Bytes {
    let mut r = Reader::new(forwarded.body.clone());
    if forwarded.flags & crate::protocol::frame::flags::TRACING != 0 && r.read_uuid().is_err() {
        return Bytes::new();
    }
    if forwarded.flags & crate::protocol::frame::flags::WARNING != 0
        && r.read_string_list().is_err()
    {
        return Bytes::new();
    }
    r.rest()
}
