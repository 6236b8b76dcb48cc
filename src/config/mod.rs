//! Node configuration: built-in defaults, then `config/ringcache.toml` (or `--config`), then
//! `RINGCACHE_*` environment variables, then command-line flags — each layer overriding the
//! one before, as design §14 orders them.
//!
//! Every field has a default so an empty file (or none at all) gives a working node. Unknown
//! keys in the file are refused, because a misspelt option silently falling back to its default
//! is the kind of surprise an operator finds in production. Environment variables name a field
//! by its path: `RINGCACHE_CQL_PORT` sets `cql_port`, `RINGCACHE_LIMITS__MAX_FRAME_BYTES` sets
//! `limits.max_frame_bytes` (a double underscore descends into a section).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why the configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value for environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole node configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name reported in `system.local.cluster_name`; drivers refuse to mix clusters by name.
    pub cluster_name: String,
    /// Data center reported to drivers (`system.local.data_center`).
    pub data_center: String,
    /// Rack reported to drivers (`system.local.rack`).
    pub rack: String,
    /// Address the CQL and metrics listeners bind to.
    pub listen_address: IpAddr,
    /// CQL native protocol port; 0 picks an ephemeral port, which is logged.
    pub cql_port: u16,
    /// Prometheus `/metrics` HTTP port; 0 picks an ephemeral port, which is logged.
    pub metrics_port: u16,
    /// Directory holding this node's persistent state (identity, schema).
    pub data_dir: PathBuf,
    /// Number of Murmur3 tokens (vnodes) this node owns; chosen at first boot and persisted.
    pub num_tokens: usize,
    /// Nodes to contact first when this node starts, `host` or `host:port` (the internode
    /// port when none is given). A node with no seeds, or only itself, founds a new cluster;
    /// any other node joins the cluster its seeds belong to. In the environment, a
    /// comma-separated list.
    pub seeds: Addresses,
    /// The port nodes talk to each other on (gossip, replica requests, the metadata log),
    /// on `listen_address`.
    pub internode_port: u16,
    /// A node starting for the first time into a running cluster (it has seeds other than
    /// itself) joins as JOINING and streams the data of the ranges it takes over before it
    /// serves them (Cassandra's `auto_bootstrap`). Off: it serves its ranges at once, empty
    /// (for a brand-new cluster, or one to be filled by repair).
    pub auto_bootstrap: bool,
    /// Replace the dead node that listened on this address (Cassandra's
    /// `-Dcassandra.replace_address_first_boot`): on its first start this node takes the
    /// dead node's tokens and streams their data from the other replicas, then the dead node
    /// is gone from the cluster. Read only on a first start (an empty data directory) or to
    /// resume an unfinished replacement; ignored once the replacement is done.
    pub replace_address: Option<IpAddr>,
    /// Shared secret every node of the cluster knows: both ends of an internode connection
    /// prove knowledge of it (an HMAC challenge; it never crosses the wire). Empty is allowed
    /// but logged as a warning: then any process that knows the cluster name can join.
    pub cluster_secret: String,
    /// Phi-accrual failure detector threshold: a peer is marked down once the probability
    /// of its heartbeat being merely late falls below 10^-phi (Cassandra's default 8).
    pub phi_convict_threshold: f64,
    /// How long a coordinator waits for replicas to acknowledge a write (ms).
    pub write_request_timeout_ms: u64,
    /// How long a coordinator waits for replicas to answer a partition read (ms).
    pub read_request_timeout_ms: u64,
    /// How long a coordinator waits for one step of a token-range scan (ms).
    pub range_request_timeout_ms: u64,
    /// How long a coordinator waits for every replica to truncate a table (ms).
    pub truncate_request_timeout_ms: u64,
    /// Store hints for replicas that are down or do not acknowledge a write in time, and
    /// replay them when they are back (hinted handoff).
    pub hinted_handoff_enabled: bool,
    /// No new hints for a replica down longer than this (ms; Cassandra's default 3 h): it
    /// needs a repair instead.
    pub max_hint_window_ms: u64,
    /// Bytes of hints kept per target replica; past it new hints are dropped and counted.
    pub max_hints_bytes: u64,
    /// Rate hints are replayed at, per target (KiB per second).
    pub hinted_handoff_throttle_kb: u64,
    /// How long a lightweight transaction keeps retrying Paxos rounds that other
    /// coordinators pre-empted before it answers WriteTimeout (ms; Cassandra's
    /// `cas_contention_timeout`).
    pub cas_contention_timeout_ms: u64,
    /// How long a repair waits for one replica step: a Merkle tree of a token span, a page
    /// of partition digests, a partition read or repair write (ms).
    pub repair_request_timeout_ms: u64,
    /// Depth of a repair's Merkle tree per token span: 2^depth leaves of 16 bytes each
    /// (at most 16).
    pub repair_merkle_depth: u8,
    /// The rate a node's repairs and moves (join, decommission) write the data they stream
    /// to other nodes, together (MiB per second; Cassandra's `stream_throughput_outbound`,
    /// also 24). 0 is no limit.
    pub stream_throughput_mib_per_sec: u64,
    /// How often the scheduled worker repairs each table (ms), capped at half the table's
    /// `gc_grace_seconds`; 0 turns scheduled repair off.
    pub repair_interval_ms: u64,
    /// Internode transport and gossip settings.
    pub internode: Internode,
    /// The metadata log's Raft timing and compaction (design §16).
    pub metadata: Metadata,
    /// Resource bounds that protect the node from clients (design §9).
    pub limits: Limits,
    /// How the connection layer schedules work; defaults chosen by `cargo bench --bench hotpath`.
    pub tuning: Tuning,
    /// The embedded store: engine, durability, read thresholds.
    pub storage: Storage,
    /// The chat schema the node serves out of the box.
    pub chat: Chat,
    /// The replica cache of partition reads (design §6).
    pub cache: Cache,
    /// Where the data lives: the embedded store, or ScyllaDB/Cassandra nodes this tier
    /// fronts over CQL (design §19).
    pub backend: Backend,
    /// Faults a test injects on purpose; every field's default is "no fault".
    pub faults: Faults,
}

/// Addresses (`host` or `host:port`, seeds or contact points): a list in the file, a
/// comma-separated string in the environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Addresses(pub Vec<String>);

impl<'de> Deserialize<'de> for Addresses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Addresses, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Text(String),
        }
        let list = match Form::deserialize(d)? {
            Form::List(list) => list,
            Form::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        Ok(Addresses(
            list.into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ))
    }
}

/// How nodes talk to each other.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Internode {
    /// How often a node gossips (ms): it bumps its heartbeat and exchanges state with up to
    /// three peers. The failure detector learns the heartbeats' rhythm from this.
    pub gossip_interval_ms: u64,
    /// Largest internode message accepted, in bytes; a larger one closes the connection.
    pub max_message_bytes: usize,
    /// Messages queued for one peer's connection before senders wait (backpressure).
    pub queue_depth: usize,
    /// Requests from one peer connection handled at once; past it the connection is not read.
    pub max_in_flight_per_connection: usize,
    /// How long a connection attempt and its handshake may take (ms).
    pub connect_timeout_ms: u64,
}

impl Default for Internode {
    fn default() -> Self {
        Internode {
            gossip_interval_ms: 500,
            max_message_bytes: 64 << 20,
            queue_depth: 4096,
            max_in_flight_per_connection: 1024,
            connect_timeout_ms: 2000,
        }
    }
}

/// The metadata log: Raft among the nodes for schema and token ownership (design §16).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Metadata {
    /// How often the leader sends heartbeats (and entries) to the other members (ms).
    pub heartbeat_interval_ms: u64,
    /// A member that hears no leader for a random time between these two starts an
    /// election (ms).
    pub election_timeout_min_ms: u64,
    /// See `election_timeout_min_ms`.
    pub election_timeout_max_ms: u64,
    /// After this many entries since the last snapshot, the state machine's state is
    /// snapshotted and the log before it purged; a member lagging behind the purge catches
    /// up from the snapshot.
    pub snapshot_after_entries: u64,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_after_entries: 1000,
        }
    }
}

/// The replica cache: partition fragments kept in front of the local engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Cache {
    /// Whether tables whose `caching` option was never set are cached. A table's own
    /// `caching = {'rows_per_partition': ...}` decides for that table ('NONE' turns it off).
    pub enabled: bool,
    /// Bytes the cache may hold in all: keys, fragments and per-entry overhead as the
    /// weigher counts them. 0 turns the cache off for every table.
    pub capacity_bytes: u64,
    /// The largest entry cached, in bytes; a bigger read is served but not kept, so one
    /// huge partition cannot take the whole cache.
    pub max_entry_bytes: u64,
    /// Version counters partitions hash onto (a power of two). More stripes mean fewer
    /// cache misses caused by writes to other partitions sharing a stripe; each costs 8 bytes.
    pub version_stripes: usize,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            enabled: true,
            capacity_bytes: 256 * 1024 * 1024,
            max_entry_bytes: 4 * 1024 * 1024,
            version_stripes: 1 << 18,
        }
    }
}

/// Where the data lives (design §19).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Backend {
    /// `embedded`: this node's own store (`[storage]`). `cql`: the ScyllaDB or Cassandra
    /// nodes at `contact_points`, reached over CQL; every client request passes through to
    /// them, and this node's store keeps only the tier's own state (identity, ring).
    pub engine: BackendEngine,
    /// Backend nodes to discover the backend cluster from, `host` or `host:port` (9042 when
    /// none is given). In the environment, a comma-separated list.
    pub contact_points: Addresses,
    /// The backend's data center whose nodes requests go to first; empty: every backend
    /// node counts as local.
    pub local_dc: String,
    /// Credentials for the backend's PasswordAuthenticator; empty: no authentication.
    pub username: String,
    /// See `username`.
    pub password: String,
    /// Connections this node keeps to each backend node, per keyspace a client uses.
    pub connections_per_node: usize,
    /// Keyspaces (set by clients' `USE`) this node keeps backend sessions for at once.
    pub max_keyspace_sessions: usize,
    /// Prepared statements remembered for re-preparing them on a backend that forgot them.
    pub max_prepared_statements: u64,
    /// How long a request may wait for the backend before the client gets a timeout error
    /// (ms); above the backend's own timeouts, so its errors arrive first.
    pub request_timeout_ms: u64,
}

impl Default for Backend {
    fn default() -> Self {
        Backend {
            engine: BackendEngine::Embedded,
            contact_points: Addresses::default(),
            local_dc: String::new(),
            username: String::new(),
            password: String::new(),
            connections_per_node: 2,
            max_keyspace_sessions: 16,
            max_prepared_statements: 100_000,
            request_timeout_ms: 15_000,
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackendEngine {
    /// This node's own store.
    #[default]
    Embedded,
    /// ScyllaDB or Cassandra over CQL.
    Cql,
}

/// The CQL port backend contact points use when they name none.
pub const BACKEND_DEFAULT_PORT: u16 = 9042;

/// Deliberate faults for tests that must show a failure can be seen. Never set in
/// production.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delays every partition read that reaches storage (not cache hits) by this many
    /// milliseconds, so cache fills race writes and concurrent reads overlap.
    pub storage_read_delay_ms: u64,
    /// Writes do not bump partition versions: the cache serves stale reads. Exists only
    /// so the coherence test can show that its checker catches staleness.
    pub skip_cache_version_bumps: bool,
    /// Holds partition reads that reach storage until a test releases them: the reads are
    /// numbered from 0 as they arrive, and read n waits until this file holds a number
    /// greater than n (a missing or unreadable file counts as 0). A test holds a read open
    /// for exactly as long as it needs, instead of guessing a delay long enough.
    pub storage_read_gate: Option<PathBuf>,
    /// Accept link faults (cut, heal) between this node and chosen peers through
    /// `POST /faults/...` on the metrics port: the seam cluster tests cut links with.
    pub link_control: bool,
    /// A coordinator stores each logged batch in the batchlog and then abandons it, as if
    /// it died before applying it: the batch is applied only by the batchlog's replay.
    /// Exists so a test can show that replay completes such batches.
    pub abandon_logged_batches: bool,
    /// A joining or leaving node skips streaming: it goes to NORMAL (or LEFT) without
    /// handing over the data of its ranges. Exists so the join and decommission test can
    /// show that it catches a move that loses data.
    pub skip_streaming: bool,
    /// The hints worker delivers nothing (hints are stored and kept): only a decommission
    /// hands them over. Exists so the join and decommission test can show that it does.
    pub hold_hints: bool,
}

/// The chat application's schema (`config/chat.cql`, built into the binary).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Chat {
    /// Create the `chat` keyspace and tables at start if they do not exist (idempotent).
    pub create_schema: bool,
}

impl Default for Chat {
    fn default() -> Self {
        Chat {
            create_schema: true,
        }
    }
}

/// The embedded store's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// Which engine keeps the data.
    pub engine: EngineKind,
    /// When an acknowledged write reaches stable storage (Cassandra's `commitlog_sync`).
    pub durability: DurabilityMode,
    /// With `periodic` durability, how often the write-ahead log is synced
    /// (Cassandra's `commitlog_sync_period`).
    pub sync_period_ms: u64,
    /// A read passing more tombstones than this logs a warning (Cassandra's
    /// `tombstone_warn_threshold`).
    pub tombstone_warn_threshold: usize,
    /// A read passing more tombstones than this fails (Cassandra's
    /// `tombstone_failure_threshold`).
    pub tombstone_failure_threshold: usize,
    /// Seconds between purge passes, which remove what no read can see any more (shadowed
    /// data, expired cells, tombstones older than their table's `gc_grace_seconds`); 0
    /// never purges.
    pub purge_interval_secs: u64,
    /// Bits of Bloom filter per key in RocksDB's table files (0: none); Cassandra's
    /// `bloom_filter_fp_chance` 0.01 is about 10.
    pub bloom_filter_bits_per_key: f64,
    /// RocksDB's block cache in bytes; 0 keeps RocksDB's default (32 MiB).
    pub block_cache_bytes: u64,
}

/// The storage engine.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// RocksDB in `<data_dir>/data`: persistent.
    #[default]
    Rocksdb,
    /// In memory: nothing survives a restart (tests, throwaway nodes).
    Memory,
}

/// When acknowledged writes are synced, as Cassandra's commitlog modes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityMode {
    /// Acknowledge after the write reaches the OS; sync every `sync_period_ms`. A process
    /// crash loses nothing; a machine crash may lose up to one period.
    #[default]
    Periodic,
    /// Acknowledge only after the write-ahead log is synced to stable storage.
    Batch,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            engine: EngineKind::default(),
            durability: DurabilityMode::default(),
            sync_period_ms: 10_000,
            tombstone_warn_threshold: 1_000,
            tombstone_failure_threshold: 100_000,
            purge_interval_secs: 3600,
            bloom_filter_bits_per_key: 10.0,
            block_cache_bytes: 0,
        }
    }
}

/// Connection-layer scheduling choices, measured by the hot-path benchmark (see README).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Tuning {
    /// Where requests run: on the connection's own task or as spawned tasks.
    pub request_scheduling: Scheduling,
    /// When replies are written to the socket.
    pub reply_flush: FlushPolicy,
}

/// Where a connection's requests run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scheduling {
    /// Polled on the connection task: no cross-thread wake-up per request.
    #[default]
    Inline,
    /// Each request is a tokio task, free to run on another worker thread.
    Spawn,
}

/// When a connection writes its replies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FlushPolicy {
    /// One write per loop turn carrying every reply that is ready.
    #[default]
    PerTurn,
    /// One write per reply.
    PerReply,
}

/// Bounds on what clients may make the node hold in memory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted frame body in bytes, checked from the header before the body is read
    /// (Cassandra 4: `native_transport_max_frame_size`, 16 MiB).
    pub max_frame_bytes: usize,
    /// Request bytes a single connection may have in flight (read but not yet answered);
    /// past it the server stops reading that socket until replies drain.
    pub max_in_flight_bytes_per_connection: usize,
    /// Requests a single connection may have in flight at once.
    pub max_in_flight_requests_per_connection: usize,
    /// Client connections accepted at once; further connections wait in the accept queue.
    pub max_connections: usize,
    /// Prepared statements kept server-wide (past it, the least often used are evicted).
    pub max_prepared_statements: u64,
    /// Rows an unpaged SELECT may materialise before it fails with Invalid.
    pub max_unpaged_rows: usize,
    /// KiB of data a batch over several partitions may write before a warning is logged
    /// (Cassandra's `batch_size_warn_threshold_in_kb`, 5).
    pub batch_size_warn_threshold_in_kb: usize,
    /// KiB of data a batch over several partitions may write before it is refused with
    /// "Batch too large" (Cassandra's `batch_size_fail_threshold_in_kb`, 50).
    pub batch_size_fail_threshold_in_kb: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_name: "ringcache".into(),
            data_center: "datacenter1".into(),
            rack: "rack1".into(),
            listen_address: IpAddr::from([127, 0, 0, 1]),
            cql_port: 9042,
            metrics_port: 9180,
            data_dir: PathBuf::from("data"),
            num_tokens: 16,
            seeds: Addresses::default(),
            internode_port: 7000,
            auto_bootstrap: true,
            replace_address: None,
            cluster_secret: String::new(),
            phi_convict_threshold: 8.0,
            write_request_timeout_ms: 2000,
            read_request_timeout_ms: 5000,
            range_request_timeout_ms: 10_000,
            truncate_request_timeout_ms: 60_000,
            hinted_handoff_enabled: true,
            max_hint_window_ms: 3 * 3600 * 1000,
            max_hints_bytes: 256 << 20,
            hinted_handoff_throttle_kb: 1024,
            cas_contention_timeout_ms: 1000,
            repair_request_timeout_ms: 120_000,
            repair_merkle_depth: 10,
            repair_interval_ms: 5 * 24 * 3600 * 1000,
            stream_throughput_mib_per_sec: 24,
            internode: Internode::default(),
            metadata: Metadata::default(),
            limits: Limits::default(),
            tuning: Tuning::default(),
            storage: Storage::default(),
            chat: Chat::default(),
            cache: Cache::default(),
            backend: Backend::default(),
            faults: Faults::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 16 * 1024 * 1024,
            max_in_flight_bytes_per_connection: 64 * 1024 * 1024,
            max_in_flight_requests_per_connection: 2048,
            max_connections: 4096,
            max_prepared_statements: 10_000,
            max_unpaged_rows: 100_000,
            batch_size_warn_threshold_in_kb: 5,
            batch_size_fail_threshold_in_kb: 50,
        }
    }
}

impl Config {
    /// The configured seeds as internode addresses (validated at start, so none is dropped
    /// here), `internode_port` where a seed names none.
    pub fn seed_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.seeds
            .0
            .iter()
            .filter_map(|s| parse_seed(s, self.internode_port))
            .collect()
    }

    /// Loads defaults, then `path` (if it exists, or fails if `required`), then the
    /// environment. Flags are applied by the caller afterwards, then [`Config::validate`].
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let mut table = match std::fs::read_to_string(path) {
            Ok(text) => text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    source: Box::new(e),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => toml::Table::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        apply_env(&mut table, std::env::vars())?;
        Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// Checks relations between fields that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.num_tokens == 0 || self.num_tokens > 1536 {
            return invalid("num_tokens must be between 1 and 1536");
        }
        if self.cluster_name.is_empty() {
            return invalid("cluster_name must not be empty");
        }
        if self.limits.max_frame_bytes < 1024 || self.limits.max_frame_bytes > 256 << 20 {
            return invalid("limits.max_frame_bytes must be between 1 KiB and 256 MiB");
        }
        if self.limits.max_in_flight_bytes_per_connection < self.limits.max_frame_bytes {
            return invalid("limits.max_in_flight_bytes_per_connection must be >= max_frame_bytes");
        }
        if self.limits.max_connections == 0
            || self.limits.max_in_flight_requests_per_connection == 0
        {
            return invalid(
                "limits.max_connections and max_in_flight_requests_per_connection must be > 0",
            );
        }
        if self.limits.batch_size_warn_threshold_in_kb > self.limits.batch_size_fail_threshold_in_kb
        {
            return invalid(
                "limits.batch_size_warn_threshold_in_kb must be <= batch_size_fail_threshold_in_kb",
            );
        }
        if self.storage.sync_period_ms == 0 {
            return invalid("storage.sync_period_ms must be > 0");
        }
        let bloom = self.storage.bloom_filter_bits_per_key;
        if !(0.0..=64.0).contains(&bloom) {
            return invalid("storage.bloom_filter_bits_per_key must be between 0 and 64");
        }
        if self.storage.tombstone_warn_threshold > self.storage.tombstone_failure_threshold {
            return invalid(
                "storage.tombstone_warn_threshold must be <= tombstone_failure_threshold",
            );
        }
        if self.repair_merkle_depth > crate::storage::merkle::MAX_DEPTH {
            return invalid("repair_merkle_depth must be at most 16");
        }
        if !(1.0..=32.0).contains(&self.phi_convict_threshold) {
            return invalid("phi_convict_threshold must be between 1 and 32");
        }
        let timeouts = [
            self.write_request_timeout_ms,
            self.read_request_timeout_ms,
            self.range_request_timeout_ms,
            self.truncate_request_timeout_ms,
            self.cas_contention_timeout_ms,
            self.repair_request_timeout_ms,
        ];
        if timeouts.iter().any(|t| *t < 10) {
            return invalid("request timeouts must be at least 10 ms");
        }
        let net = &self.internode;
        if net.gossip_interval_ms < 10 || net.connect_timeout_ms == 0 {
            return invalid("internode.gossip_interval_ms must be >= 10, connect_timeout_ms > 0");
        }
        if net.max_message_bytes < 64 * 1024 || net.queue_depth == 0 {
            return invalid("internode.max_message_bytes must be >= 64 KiB, queue_depth > 0");
        }
        if net.max_in_flight_per_connection == 0 {
            return invalid("internode.max_in_flight_per_connection must be > 0");
        }
        let meta = &self.metadata;
        if meta.heartbeat_interval_ms < 10
            || meta.election_timeout_min_ms <= meta.heartbeat_interval_ms
            || meta.election_timeout_max_ms <= meta.election_timeout_min_ms
        {
            return invalid(
                "metadata: need 10 <= heartbeat_interval_ms < election_timeout_min_ms < election_timeout_max_ms",
            );
        }
        if meta.snapshot_after_entries == 0 {
            return invalid("metadata.snapshot_after_entries must be > 0");
        }
        for seed in &self.seeds.0 {
            if crate::config::parse_seed(seed, self.internode_port).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "seed {seed:?} is not host or host:port"
                )));
            }
        }
        let stripes = self.cache.version_stripes;
        if !stripes.is_power_of_two() || stripes > 1 << 26 {
            return invalid("cache.version_stripes must be a power of two, at most 2^26");
        }
        if self.cache.capacity_bytes > 0 && self.cache.max_entry_bytes > self.cache.capacity_bytes {
            return invalid("cache.max_entry_bytes must be <= cache.capacity_bytes");
        }
        if self.cache.max_entry_bytes > u64::from(u32::MAX) {
            return invalid("cache.max_entry_bytes must be below 4 GiB");
        }
        self.validate_backend()
    }

    fn validate_backend(&self) -> Result<(), ConfigError> {
        let backend = &self.backend;
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if backend.engine == BackendEngine::Embedded {
            return Ok(());
        }
        if backend.contact_points.0.is_empty() {
            return invalid(
                "backend.contact_points must name at least one node when backend.engine = \"cql\""
                    .into(),
            );
        }
        for point in &backend.contact_points.0 {
            if parse_seed(point, BACKEND_DEFAULT_PORT).is_none() {
                return invalid(format!(
                    "backend contact point {point:?} is not host or host:port"
                ));
            }
        }
        if backend.connections_per_node == 0 || backend.max_keyspace_sessions == 0 {
            return invalid(
                "backend.connections_per_node and max_keyspace_sessions must be > 0".into(),
            );
        }
        if backend.max_prepared_statements == 0 {
            return invalid("backend.max_prepared_statements must be > 0".into());
        }
        if backend.request_timeout_ms < 10 {
            return invalid("backend.request_timeout_ms must be at least 10 ms".into());
        }
        if backend.username.is_empty() != backend.password.is_empty() {
            return invalid("backend.username and backend.password go together".into());
        }
        Ok(())
    }
}

/// A seed as a socket address: `host`, `host:port`, `[v6]:port`; `host` resolved by the
/// system's resolver, with `default_port` when none is given. None if it does not parse or
/// resolve.
pub fn parse_seed(seed: &str, default_port: u16) -> Option<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = seed.parse::<std::net::SocketAddr>() {
        return Some(addr);
    }
    if let Ok(ip) = seed.parse::<IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, default_port));
    }
    let with_port = if seed.contains(':') {
        seed.to_owned()
    } else {
        format!("{seed}:{default_port}")
    };
    with_port.to_socket_addrs().ok()?.next()
}

/// Merges `RINGCACHE_*` variables into the parsed file. Values are parsed as TOML scalars
/// when they look like one (numbers, booleans) and taken as strings otherwise.
fn apply_env(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix("RINGCACHE_") else {
            continue;
        };
        if ENV_IGNORED.contains(&path) {
            continue;
        }
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        let value = parse_env_value(&raw);
        let (last, sections) = keys.split_last().ok_or_else(|| ConfigError::Env {
            name: name.clone(),
            message: "empty name".into(),
        })?;
        let mut cursor = &mut *table;
        for section in sections {
            let entry = cursor
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
                name: name.clone(),
                message: format!("{section} is not a section"),
            })?;
        }
        cursor.insert(last.clone(), value);
    }
    Ok(())
}

/// Variables with the prefix that are not config fields (read by other parts of the program).
const ENV_IGNORED: &[&str] = &["LOG", "BIN", "FUZZ_EXECS", "CONFIG"];

fn parse_env_value(raw: &str) -> toml::Value {
    let as_toml = format!("v = {raw}");
    match as_toml.parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)),
            ) => v,
            _ => toml::Value::String(raw.to_owned()),
        },
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(file: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut table: toml::Table = file.parse().map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            source: Box::new(e),
        })?;
        let vars = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        apply_env(&mut table, vars)?;
        Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            source: Box::new(e),
        })
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(load_with("", &[]).unwrap(), Config::default());
    }

    #[test]
    fn env_overrides_file_and_descends_into_sections() {
        let c = load_with(
            "cql_port = 1000\n[limits]\nmax_connections = 5\n",
            &[
                ("RINGCACHE_CQL_PORT", "2000"),
                ("RINGCACHE_LIMITS__MAX_CONNECTIONS", "7"),
                ("RINGCACHE_CLUSTER_NAME", "prod"),
                ("RINGCACHE_LOG", "debug"),
            ],
        )
        .unwrap();
        assert_eq!(c.cql_port, 2000);
        assert_eq!(c.limits.max_connections, 7);
        assert_eq!(c.cluster_name, "prod");
    }

    #[test]
    fn seeds_are_a_list_in_the_file_and_a_comma_list_in_the_environment() {
        let c = load_with("seeds = ['127.0.0.1', '127.0.0.2:7001']\n", &[]).unwrap();
        assert_eq!(c.seeds.0, ["127.0.0.1", "127.0.0.2:7001"]);
        let c = load_with("", &[("RINGCACHE_SEEDS", "127.0.0.1, 127.0.0.3")]).unwrap();
        assert_eq!(c.seeds.0, ["127.0.0.1", "127.0.0.3"]);
        c.validate().unwrap();
        let port = |s: &str| parse_seed(s, 7000).map(|a| a.to_string());
        assert_eq!(port("127.0.0.3").as_deref(), Some("127.0.0.3:7000"));
        assert_eq!(port("127.0.0.3:7100").as_deref(), Some("127.0.0.3:7100"));
        assert_eq!(port("localhost:7100").as_deref(), Some("127.0.0.1:7100"));
        let bad = load_with("seeds = ['no such host name.invalid']\n", &[]).unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn unknown_keys_and_bad_types_are_refused() {
        assert!(load_with("cql_prot = 1\n", &[]).is_err());
        assert!(load_with("cql_port = 'x'\n", &[]).is_err());
        assert!(load_with("", &[("RINGCACHE_CQL_PORT", "99999")]).is_err());
    }

    #[test]
    fn storage_tuning_out_of_range_is_refused() {
        for bad in ["-1.0", "65.0", "nan"] {
            let c = load_with(
                &format!("[storage]\nbloom_filter_bits_per_key = {bad}\n"),
                &[],
            );
            assert!(c.unwrap().validate().is_err(), "{bad}");
        }
        let off = load_with("[storage]\nbloom_filter_bits_per_key = 0\n", &[]).unwrap();
        off.validate().unwrap();
        assert_eq!(off.storage.bloom_filter_bits_per_key, 0.0);
    }

    #[test]
    fn a_cql_backend_needs_valid_contact_points_and_whole_credentials() {
        let cql = |extra: &str| {
            let file = format!("[backend]\nengine = \"cql\"\n{extra}");
            load_with(&file, &[]).and_then(|c| c.validate().map(|()| c))
        };
        let refused = [
            "",
            "contact_points = []",
            "contact_points = [\"not an address:port:x\"]",
            "contact_points = [\"10.0.0.5\"]\nusername = \"app\"",
            "contact_points = [\"10.0.0.5\"]\nconnections_per_node = 0",
            "contact_points = [\"10.0.0.5\"]\nrequest_timeout_ms = 1",
        ];
        for extra in refused {
            assert!(cql(extra).is_err(), "{extra:?} must be refused");
        }
        let ok = cql("contact_points = [\"10.0.0.5\", \"10.0.0.6:9043\"]").unwrap();
        assert_eq!(ok.backend.engine, BackendEngine::Cql);
        let env = [
            ("RINGCACHE_BACKEND__ENGINE", "cql"),
            (
                "RINGCACHE_BACKEND__CONTACT_POINTS",
                "10.0.0.5, 10.0.0.6:9043",
            ),
        ];
        let from_env = load_with("", &env).unwrap();
        from_env.validate().unwrap();
        assert_eq!(from_env.backend.contact_points, ok.backend.contact_points);
        // Without a CQL backend the section is not checked beyond its types.
        load_with("[backend]\nconnections_per_node = 0\n", &[])
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn shipped_config_file_parses_to_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringcache.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let c = load_with(&text, &[]).unwrap();
        c.validate().unwrap();
        assert_eq!(c, Config::default());
    }
}
