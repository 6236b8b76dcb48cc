//! The backend session on cdrs-tokio: one cdrs session per keyspace the tier's clients are
//! in, each token-aware over the backend's ring (cdrs reads the backend's `system.peers`
//! and `system_schema.keyspaces`, and routes a request with a routing key to a replica of
//! its partition).
//!
//! Requests go out as the client encoded them: the body is not decoded and encoded again
//! by cdrs, only framed, so every parameter (paging state, serial consistency, default
//! timestamp, named values) reaches the backend unchanged. cdrs sees an ERROR answer as a
//! Rust error; its body is serialized back to the wire form, code, message and fields as
//! the backend sent them.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdrs_tokio::authenticators::StaticPasswordAuthenticatorProvider;
use cdrs_tokio::cluster::connection_pool::ConnectionPoolConfigBuilder;
use cdrs_tokio::cluster::session::{Session, SessionBuilder, TcpSessionBuilder};
use cdrs_tokio::cluster::{NodeAddress, NodeTcpConfigBuilder, TcpConnectionManager};
use cdrs_tokio::frame::events::ServerEvent;
use cdrs_tokio::frame::{Direction, Envelope, Flags, Serialize, Version};
use cdrs_tokio::load_balancing::node_distance_evaluator::TopologyAwareNodeDistanceEvaluator;
use cdrs_tokio::load_balancing::{Request, TopologyAwareLoadBalancingStrategy};
use cdrs_tokio::retry::FallthroughRetryPolicy;
use cdrs_tokio::transport::{CdrsTransport, TransportTcp};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::OnceCell;

use super::{Backend, BackendError, Incoming, Outgoing};
use crate::config;
use crate::protocol::Opcode;

type Balancer = TopologyAwareLoadBalancingStrategy<TransportTcp, TcpConnectionManager>;
type CdrsSession = Session<TransportTcp, TcpConnectionManager, Balancer>;

/// A keyspace's session, opened by the first request that needs it.
type SessionSlot = Arc<OnceCell<Arc<CdrsSession>>>;

/// Sessions to one backend cluster, by the keyspace their connections are in.
pub struct CdrsBackend {
    settings: config::Backend,
    sessions: Mutex<HashMap<Option<String>, SessionSlot>>,
}

impl CdrsBackend {
    /// A backend at `settings.contact_points`; sessions open on first use, so a node
    /// starts while its backend is still down and serves once it is up.
    pub fn new(settings: &config::Backend) -> CdrsBackend {
        CdrsBackend {
            settings: settings.clone(),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Opens the session without a keyspace now, so that a misconfigured backend shows in
    /// the log at start rather than at the first request.
    pub async fn probe(&self) -> Result<(), BackendError> {
        self.session(None).await.map(|_| ())
    }

    /// Pushes every schema change the backend announces to `events` (the node's clients
    /// that registered for SCHEMA_CHANGE), for as long as the node runs; while the backend
    /// cannot be reached, tries again every second.
    pub async fn relay_schema_changes(
        self: Arc<Self>,
        events: tokio::sync::broadcast::Sender<crate::protocol::Event>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let session = match self.session(None).await {
                Ok(session) => session,
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut changes = session.create_event_receiver();
            loop {
                match changes.recv().await {
                    Ok(event @ ServerEvent::SchemaChange(_)) => {
                        let mut encoded = Vec::new();
                        event.serialize(&mut Cursor::new(&mut encoded), Version::V4);
                        let mut reader = crate::protocol::Reader::new(encoded.into());
                        match crate::protocol::Event::decode(&mut reader) {
                            Ok(event) => {
                                let _ = events.send(event);
                            }
                            Err(error) => {
                                tracing::warn!(%error, "a backend schema event did not decode")
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "backend schema events were dropped")
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        }
    }

    async fn session(&self, keyspace: Option<&str>) -> Result<Arc<CdrsSession>, BackendError> {
        let cell = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let key = keyspace.map(str::to_owned);
            if !sessions.contains_key(&key) && sessions.len() > self.settings.max_keyspace_sessions
            {
                return Err(BackendError::Refused(format!(
                    "clients of this node use more than backend.max_keyspace_sessions = {} \
                     keyspaces; qualify table names instead of USE",
                    self.settings.max_keyspace_sessions
                )));
            }
            sessions.entry(key).or_default().clone()
        };
        // A failed start leaves the cell empty: the next request tries again.
        cell.get_or_try_init(|| open_session(&self.settings, keyspace))
            .await
            .cloned()
    }
}

async fn open_session(
    settings: &config::Backend,
    keyspace: Option<&str>,
) -> Result<Arc<CdrsSession>, BackendError> {
    let points: Vec<NodeAddress> = settings
        .contact_points
        .0
        .iter()
        .filter_map(|p| config::parse_seed(p, config::BACKEND_DEFAULT_PORT))
        .map(NodeAddress::from)
        .collect();
    let mut node = NodeTcpConfigBuilder::new()
        .with_contact_points(points)
        .with_version(Version::V4);
    if !settings.username.is_empty() {
        node = node.with_authenticator_provider(Arc::new(
            StaticPasswordAuthenticatorProvider::new(&settings.username, &settings.password),
        ));
    }
    let node = node
        .build()
        .await
        .map_err(|e| BackendError::Unreachable(e.to_string()))?;
    let pool = ConnectionPoolConfigBuilder::new()
        .with_local_size(settings.connections_per_node)
        .with_remote_size(1)
        .with_connect_timeout(Some(Duration::from_millis(settings.request_timeout_ms)))
        .build();
    let mut builder = TcpSessionBuilder::new(Balancer::new(None, false), node)
        .with_connection_pool_config(pool)
        .with_retry_policy(Box::new(FallthroughRetryPolicy))
        .with_tcp_nodelay(true);
    if !settings.local_dc.is_empty() {
        builder = builder.with_node_distance_evaluator(Box::new(
            TopologyAwareNodeDistanceEvaluator::new(settings.local_dc.clone()),
        ));
    }
    if let Some(keyspace) = keyspace {
        builder = builder.with_keyspace(crate::cql::types::maybe_quote(keyspace).into_owned());
    }
    let session = builder
        .build()
        .await
        .map_err(|e| BackendError::Unreachable(e.to_string()))?;
    tracing::info!(keyspace = ?keyspace, "backend session open");
    Ok(Arc::new(session))
}

impl CdrsBackend {
    /// The session `request` goes out on, its envelope and its query plan.
    async fn prepare_send(
        &self,
        request: &mut Outgoing,
    ) -> Result<(Arc<CdrsSession>, Envelope, Vec<Arc<CdrsNode>>), BackendError> {
        let session = self.session(request.session_keyspace.as_deref()).await?;
        let opcode = cdrs_tokio::frame::Opcode::try_from(request.opcode as u8)
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        let mut flags = Flags::empty();
        if request.tracing {
            flags |= Flags::TRACING;
        }
        let envelope = Envelope {
            version: Version::V4,
            direction: Direction::Request,
            flags,
            opcode,
            stream_id: 0,
            body: std::mem::take(&mut request.body),
            tracing_id: None,
            warnings: Vec::new(),
        };
        let consistency =
            cdrs_tokio::consistency::Consistency::try_from(request.consistency as i16).ok();
        let routing = request.routing.as_ref();
        let plan = session.query_plan(Some(Request {
            keyspace: routing.map(|r| r.keyspace.as_str()),
            token: None,
            routing_key: routing.map(|r| r.key.as_slice()),
            consistency,
        }));
        Ok((session, envelope, plan.nodes))
    }
}

type CdrsNode = cdrs_tokio::cluster::topology::Node<TransportTcp, TcpConnectionManager>;

impl Backend for CdrsBackend {
    fn send(&self, mut request: Outgoing) -> BoxFuture<'_, Result<Incoming, BackendError>> {
        async move {
            let (_session, envelope, nodes) = self.prepare_send(&mut request).await?;
            send_along(nodes, &envelope, request.idempotent).await
        }
        .boxed()
    }

    fn send_to_all(
        &self,
        mut request: Outgoing,
    ) -> BoxFuture<'_, Vec<Result<Incoming, BackendError>>> {
        async move {
            let (_session, envelope, nodes) = match self.prepare_send(&mut request).await {
                Ok(prepared) => prepared,
                Err(error) => return vec![Err(error)],
            };
            let each = nodes
                .into_iter()
                .map(|node| send_along(vec![node], &envelope, request.idempotent));
            futures::future::join_all(each).await
        }
        .boxed()
    }
}

/// Sends `envelope` to the first node of `nodes` that takes it. A node that cannot be
/// connected to is skipped. A request whose connection failed after it was sent, or whose
/// answer did not decode (cdrs then closes that connection), goes to the next node only
/// when it is idempotent; otherwise its failure is the answer.
async fn send_along(
    nodes: Vec<Arc<CdrsNode>>,
    envelope: &Envelope,
    idempotent: bool,
) -> Result<Incoming, BackendError> {
    let mut failure = None;
    for node in nodes {
        let transport = match node.persistent_connection().await {
            Ok(transport) => transport,
            Err(error) => {
                failure.get_or_insert(BackendError::Unreachable(error.to_string()));
                continue;
            }
        };
        match transport.write_envelope(envelope, false).await {
            Ok(answer) => {
                return Ok(Incoming {
                    opcode: Opcode::from_u8(u8::from(answer.opcode)).ok_or_else(|| {
                        BackendError::Failed(format!("unknown opcode {:?}", answer.opcode))
                    })?,
                    body: answer.body.into(),
                    tracing_id: answer.tracing_id.map(|id| *id.as_bytes()),
                    warnings: answer.warnings,
                })
            }
            Err(cdrs_tokio::error::Error::Server { body, .. }) => {
                let mut encoded = Vec::new();
                body.serialize(&mut Cursor::new(&mut encoded), Version::V4);
                return Ok(Incoming {
                    opcode: Opcode::Error,
                    body: encoded.into(),
                    tracing_id: None,
                    warnings: Vec::new(),
                });
            }
            Err(error) => {
                failure = Some(BackendError::Failed(error.to_string()));
                if !idempotent {
                    break;
                }
            }
        }
    }
    Err(failure.unwrap_or_else(|| BackendError::Unreachable("every backend node is down".into())))
}
