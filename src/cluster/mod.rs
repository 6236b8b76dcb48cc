//! The cluster: how a node finds the others, knows who is up, and talks to them.
//!
//! Four parts, bottom up:
//! - [`transport`]: authenticated, framed TCP connections between nodes (a gossip connection
//!   and a requests connection per peer), bounded queues, a deadline on every request, and
//!   the fault seam tests cut links with.
//! - [`message`]: every message nodes exchange, as serde types.
//! - [`gossip`] with [`failure_detector`]: the SYN/ACK/ACK2 exchange that spreads each node's
//!   advertised state (tokens, data centre, rack, addresses, status, schema version, load),
//!   and phi-accrual failure detection deciding, locally, who is up.
//! - [`membership`]: the resulting picture — every node, the token ring, liveness — that the
//!   coordinator reads on every request, and the driver events its changes make.
//!
//! [`Cluster::start`] wires them to the node: what peers ask of this node's replica is
//! answered by [`ReplicaService`] (`service.rs`), through the same [`LocalReplica`] calls the
//! coordinator makes in-process, so a remote replica is the local replica behind a socket.
//! A node with no seeds but itself is a one-node cluster and works exactly as a single node.

pub mod failure_detector;
pub mod gossip;
pub mod membership;
pub mod message;
pub mod service;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::node::NodeInfo;
use crate::protocol::Event;
use crate::replica::LocalReplica;
use gossip::{AppKey, GossipConfig, Gossiper, LocalFacts};
use membership::{Membership, NodeStatus, NodeView};
use transport::{LinkFaults, LocalIdentity, Settings, Transport};

pub use service::ReplicaService;

/// Why the cluster layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot bind the internode listener on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// This node's membership in its cluster: the transport, gossip and the membership view.
pub struct Cluster {
    pub transport: Transport,
    pub membership: Arc<Membership>,
    pub gossiper: Arc<Gossiper>,
    /// What peers' requests reach; the metadata log binds to it once started.
    pub service: Arc<ReplicaService>,
    tasks: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Binds the internode port and starts gossiping, advertising `status` (NORMAL, or
    /// JOINING for a node that must stream its ranges first). `cql` is the address clients
    /// reach this node's CQL server at.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        config: &Config,
        node: &NodeInfo,
        status: NodeStatus,
        cql: SocketAddr,
        replica: Arc<LocalReplica>,
        facts: Arc<dyn LocalFacts>,
        events: broadcast::Sender<Event>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Cluster, ClusterError> {
        let listen = SocketAddr::new(config.listen_address, config.internode_port);
        if config.cluster_secret.is_empty() {
            tracing::warn!("cluster_secret is empty: any process that knows the cluster name can join this cluster");
        }
        let me = LocalIdentity {
            cluster_name: config.cluster_name.clone(),
            secret: config.cluster_secret.clone(),
            host_id: node.host_id,
            listen,
        };
        let settings = Settings::from_config(&config.internode);
        let faults = Arc::new(LinkFaults::default());
        let (transport, listener) = Transport::bind(me, settings, faults, shutdown.clone())
            .await
            .map_err(|source| ClusterError::Bind {
                addr: listen,
                source,
            })?;
        let listen = transport.local().listen;
        let local = local_view(node, status, listen, cql);
        let membership = Arc::new(Membership::new(local.clone(), events));
        let gossip = GossipConfig {
            cluster_name: config.cluster_name.clone(),
            seeds: config.seed_addrs(),
            interval: Duration::from_millis(config.internode.gossip_interval_ms),
            phi_convict_threshold: config.phi_convict_threshold,
            data_dir: config.data_dir.clone(),
            generation: node.generation.into(),
        };
        let gossiper = Gossiper::new(gossip, &local, transport.clone(), membership.clone(), facts);
        let service = Arc::new(ReplicaService::new(replica, gossiper.clone()));
        let serving_service = service.clone();
        let serving = transport.clone();
        let tasks = vec![
            tokio::spawn(async move { serving.serve(listener, serving_service).await }),
            tokio::spawn(gossiper.clone().run(shutdown)),
        ];
        tracing::info!(%listen, seeds = ?config.seeds.0, "internode listener up");
        Ok(Cluster {
            transport,
            membership,
            gossiper,
            service,
            tasks,
        })
    }

    /// Waits for the cluster's workers to stop (after the shutdown signal).
    pub async fn stopped(self) {
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}

/// This node as membership shows it at start.
fn local_view(
    node: &NodeInfo,
    status: NodeStatus,
    internode: SocketAddr,
    cql: SocketAddr,
) -> NodeView {
    NodeView {
        host_id: node.host_id,
        internode,
        cql: Some(cql),
        data_center: node.data_center.clone(),
        rack: node.rack.clone(),
        tokens: node.tokens.iter().filter_map(|t| t.parse().ok()).collect(),
        status,
        schema_version: None,
        release_version: Some(crate::node::RELEASE_VERSION.to_owned()),
        load: 0,
        generation: node.generation.into(),
        alive: true,
        replaces: node.replaces,
    }
}

/// Changes this node's status in `membership` and in what `gossiper` advertises.
pub fn set_status(membership: &Membership, gossiper: &Gossiper, status: NodeStatus) {
    membership.update_local(|node| node.status = status);
    gossiper.set_local(AppKey::Status, status.as_str().to_owned());
}
