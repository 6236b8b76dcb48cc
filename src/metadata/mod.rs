//! The metadata log: one Raft log replicated among the nodes, applied in log order on every
//! node by a pluggable [`StateMachine`] (design §16).
//!
//! **What goes through it, and why.** Metadata is CP, data is AP. Schema changes (and later
//! token ownership changes) are entries of this log, so every node applies the same changes
//! in the same order: a table gets one id everywhere, two concurrent `CREATE TABLE IF NOT
//! EXISTS` of one name end as one table (the second entry finds the first applied), and a
//! DDL's reply returns only once the change is applied on the node that answers it, so the
//! client reads its own change there. Reads and writes never wait for the log; gossip and
//! the failure detector never do either. ScyllaDB's Raft "group 0" and Cassandra's
//! transactional cluster metadata are the models. The log does not know what its commands
//! mean: they are bytes, and the state machine's reply bytes say whether a change succeeded.
//!
//! **Parts.** openraft runs the protocol (`types.rs` names its types). `store.rs` keeps the
//! log, the vote, the committed position and the latest snapshot in a RocksDB instance at
//! `<data_dir>/meta`, each write synced before it is acknowledged. `machine.rs` adapts the
//! user's state machine, which persists its state with the index it reflects, so a restart
//! replays the committed tail without applying anything twice. `network.rs` carries Raft's
//! messages over the internode transport (`Request::Meta`, each with a deadline);
//! `inbound.rs` answers them. `propose.rs` and `join.rs` are the two things a node asks.
//!
//! **Bootstrap.** A node whose seeds are empty or only itself founds the group: it
//! initialises the log with itself as the one voter, once — a persisted mark means a
//! restart never initialises again. Any other node, on its first start, asks a seed to let
//! it join (a seed that is not the leader forwards the request to the leader), retrying
//! until one answers, in the background: [`MetadataLog::start`] returns at once and
//! [`MetadataLog::wait_joined`] tells when the node is a member. The leader takes one join
//! at a time: it adds the node as a learner, waits for it to catch up, and promotes it to
//! voter while there are fewer than [`MAX_VOTERS`] voters; later nodes stay learners,
//! receiving and applying every entry without voting. A restarted member resumes from its
//! persisted log and asks nothing.
//!
//! **Without a majority.** An entry commits once a majority of the voters have it. With no
//! majority reachable no change can be made anywhere (the price of never forking the
//! schema): [`MetadataLog::propose`] fails when its timeout runs out with
//! [`MetaError::NoQuorum`], saying how many of the voters answered, and never hangs. Such a
//! change was not applied when the error is returned, but it may still be if its leader
//! regains a majority before another leader is elected (Raft cannot take back an entry it
//! may have sent): DDL is written to be safe to repeat (`IF NOT EXISTS`).

mod inbound;
mod join;
pub mod machine;
pub mod network;
mod propose;
pub mod rpc;
pub mod store;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::cluster::transport::Transport;
use crate::config::Config;
use machine::MachineStore;
pub use machine::StateMachine;
use network::{Contacts, Network};
use store::{LogStore, MetaDb};
pub use types::{MetaError, MetaNode, MetaTypes};

/// Voters the group grows to; nodes joining after that stay learners.
pub const MAX_VOTERS: usize = 5;

/// This node's part of the metadata log.
pub struct MetadataLog {
    id: Uuid,
    addr: SocketAddr,
    raft: openraft::Raft<MetaTypes>,
    transport: Transport,
    contacts: Arc<Contacts>,
    db: MetaDb,
    /// The index of the last entry applied here.
    applied: watch::Receiver<Option<u64>>,
    joined: watch::Sender<bool>,
    /// The leader admits one joining node at a time.
    join_lock: tokio::sync::Mutex<()>,
    election_timeout_max: Duration,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// This node's view of the group, for `ringcache status` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaStatus {
    /// This node's host id.
    pub id: Uuid,
    pub role: MetaRole,
    /// The Raft term this node is in.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<Uuid>,
    /// The members that vote.
    pub voters: Vec<Uuid>,
    /// The members that receive and apply entries without voting.
    pub learners: Vec<Uuid>,
    /// Every member's internode address.
    pub addresses: BTreeMap<Uuid, SocketAddr>,
    /// Whether this node has founded or joined the group.
    pub joined: bool,
    /// The last entry in this node's log (committed or not).
    pub last_log_index: Option<u64>,
    /// The last entry applied on this node.
    pub last_applied: Option<u64>,
    /// The last index the log was purged up to (covered by the snapshot).
    pub purged: Option<u64>,
}

/// What this node is in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaRole {
    Leader,
    Follower,
    Candidate,
    /// Receives and applies entries but does not vote (or is not a member yet).
    Learner,
    Stopped,
}

impl MetadataLog {
    /// Opens the log in `<data_dir>/meta` and starts it over `transport`; founding or
    /// joining the group (on a first start) goes on in the background. Peers' messages
    /// reach it once [`MetadataLog::inbound`] is bound to the node's service. It stops when
    /// `shutdown` turns true.
    pub async fn start(
        config: &Config,
        host_id: Uuid,
        transport: Transport,
        state_machine: Arc<dyn StateMachine>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<MetadataLog>, MetaError> {
        let db = MetaDb::open(&MetaDb::dir(&config.data_dir))?;
        let (applied_tx, applied) = watch::channel(None);
        let machine = MachineStore::open(state_machine, db.clone(), Arc::new(applied_tx))
            .map_err(MetaError::Storage)?;
        let contacts = Arc::new(Contacts::default());
        let network = Network {
            transport: transport.clone(),
            contacts: contacts.clone(),
        };
        let raft = open_raft(config, host_id, network, &db, machine).await?;
        let joined = db.joined().map_err(MetaError::Storage)?;
        let log = Arc::new(MetadataLog {
            id: host_id,
            addr: transport.local().listen,
            raft,
            transport,
            contacts,
            db,
            applied,
            joined: watch::channel(joined).0,
            join_lock: tokio::sync::Mutex::new(()),
            election_timeout_max: Duration::from_millis(config.metadata.election_timeout_max_ms),
            tasks: Mutex::new(Vec::new()),
        });
        if !joined {
            let seeds = join::seeds(config, log.addr);
            log.spawn(log.clone().become_member(seeds));
        }
        log.spawn(log.clone().stop_on(shutdown));
        Ok(log)
    }

    /// What this node's transport service hands peers' metadata messages to. It does not
    /// keep the log alive.
    pub fn inbound(self: &Arc<Self>) -> Arc<dyn crate::cluster::service::MetaInbound> {
        Arc::new(inbound::Inbound::new(Arc::downgrade(self)))
    }

    /// This node's host id (its id in the group).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The index of the last entry applied on this node.
    pub fn applied_index(&self) -> Option<u64> {
        *self.applied.borrow()
    }

    /// Waits until this node is a member of the group (founded or joined), at most
    /// `timeout`; whether it is.
    pub async fn wait_joined(&self, timeout: Duration) -> bool {
        let mut joined = self.joined.subscribe();
        let wait = async move { joined.wait_for(|j| *j).await.map(|_| ()) };
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// This node's view of the group.
    pub fn status(&self) -> MetaStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        MetaStatus {
            id: self.id,
            role: role(m.state, m.running_state.is_ok()),
            term: m.current_term,
            leader: m.current_leader,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            addresses: membership.nodes().map(|(id, n)| (*id, n.addr)).collect(),
            joined: *self.joined.borrow(),
            last_log_index: m.last_log_index,
            last_applied: self.applied_index(),
            purged: m.purged.map(|id| id.index),
        }
    }

    /// Stops the log (and any join in progress). Entries already persisted stay.
    pub async fn shutdown(&self) {
        let tasks: Vec<_> = self.tasks.lock().expect("tasks").drain(..).collect();
        for task in tasks {
            task.abort();
        }
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "the metadata log did not stop cleanly");
        }
    }

    async fn stop_on(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let _ = shutdown.wait_for(|stop| *stop).await;
        let _ = self.raft.shutdown().await;
    }

    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(work);
        self.tasks.lock().expect("tasks").push(handle);
    }

    /// The internode address of `member`, as the membership records it.
    fn address_of(&self, member: Uuid) -> Option<SocketAddr> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().get_node(&member).map(|n| n.addr)
    }
}

fn role(state: openraft::ServerState, running: bool) -> MetaRole {
    use openraft::ServerState as S;
    match state {
        _ if !running => MetaRole::Stopped,
        S::Leader => MetaRole::Leader,
        S::Follower => MetaRole::Follower,
        S::Candidate => MetaRole::Candidate,
        S::Learner => MetaRole::Learner,
        S::Shutdown => MetaRole::Stopped,
    }
}

/// Starts openraft on the store, from where the store and the state machine left off.
async fn open_raft(
    config: &Config,
    host_id: Uuid,
    network: Network,
    db: &MetaDb,
    machine: MachineStore,
) -> Result<openraft::Raft<MetaTypes>, MetaError> {
    let raft_config = Arc::new(raft_config(config)?);
    let log = LogStore::new(db.clone());
    openraft::Raft::new(host_id, raft_config, network, log, machine)
        .await
        .map_err(|e| MetaError::Storage(e.to_string()))
}

/// openraft's settings from `[metadata]`.
fn raft_config(config: &Config) -> Result<openraft::Config, MetaError> {
    let m = &config.metadata;
    openraft::Config {
        cluster_name: config.cluster_name.clone(),
        heartbeat_interval: m.heartbeat_interval_ms,
        election_timeout_min: m.election_timeout_min_ms,
        election_timeout_max: m.election_timeout_max_ms,
        // A snapshot chunk crosses a loaded machine's transport: give it an election's time.
        install_snapshot_timeout: m.election_timeout_max_ms * 2,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(m.snapshot_after_entries),
        // The log is purged up to each snapshot: a member behind it gets the snapshot.
        max_in_snapshot_log_to_keep: 0,
        ..Default::default()
    }
    .validate()
    .map_err(|e| MetaError::Config(e.to_string()))
}
