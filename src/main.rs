//! The `ringcache` command: parses the command line, loads configuration, starts tracing
//! and hands over to the library.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ringcache::config::Config;
use ringcache::server::{Server, StartupScript};

/// Counts live heap bytes for `/metrics` (`ringcache_heap_allocated_bytes`): the cache's
/// real footprint, not only its weigher's estimate.
#[global_allocator]
static ALLOCATOR: ringcache::metrics::alloc::Counting = ringcache::metrics::alloc::Counting;

/// Where `serve` looks for its configuration unless told otherwise.
const DEFAULT_CONFIG: &str = "config/ringcache.toml";

/// A Cassandra-protocol-compatible caching and routing tier.
#[derive(Parser)]
#[command(name = "ringcache", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: the CQL native protocol server and the Prometheus endpoint.
    Serve(ServeArgs),
    /// Use the chat schema a node serves: post, read history, follow, drive load.
    Chat(chat_cli::ChatArgs),
    /// Measure any CQL endpoint: throughput, latency, and the ratio to a bare responder.
    Bench(bench_cli::BenchArgs),
    /// Print the cluster as one node sees it, like `nodetool status`: per data centre each
    /// node's state, address, load, tokens, ownership, host id and rack.
    Status(status_cli::StatusArgs),
    /// Repair tables by Merkle-tree anti-entropy, like `nodetool repair`: every replica of
    /// every token span compared, only differing partitions streamed, with progress.
    Repair(repair_cli::RepairArgs),
    /// Take a node out of the cluster, like `nodetool decommission`: it hands its ranges to
    /// the nodes that gain them (with progress), leaves, and stops.
    Decommission(repair_cli::DecommissionArgs),
}

/// Flags override the config file and `RINGCACHE_*` environment variables.
#[derive(Args)]
struct ServeArgs {
    /// Configuration file (TOML). Missing is fine for the default path, an error otherwise.
    #[arg(
        long,
        short = 'c',
        env = "RINGCACHE_CONFIG",
        default_value = "config/ringcache.toml"
    )]
    config: PathBuf,
    /// Address both listeners bind to.
    #[arg(long)]
    listen_address: Option<IpAddr>,
    /// CQL port (0 = ephemeral, logged).
    #[arg(long)]
    cql_port: Option<u16>,
    /// Prometheus port (0 = ephemeral, logged).
    #[arg(long)]
    metrics_port: Option<u16>,
    /// Directory for the node's persistent state.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Cluster name reported to clients.
    #[arg(long)]
    cluster_name: Option<String>,
    /// Number of vnode tokens chosen at first boot.
    #[arg(long)]
    num_tokens: Option<usize>,
    /// Seed nodes to join through, comma-separated `host` or `host:port`.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<String>>,
    /// Port nodes talk to each other on.
    #[arg(long)]
    internode_port: Option<u16>,
    /// Replace the dead node at this address: take its tokens and stream its data (first
    /// start only).
    #[arg(long)]
    replace_address: Option<std::net::IpAddr>,
    /// Where the data lives: `embedded` (this node's store) or `cql` (ScyllaDB or
    /// Cassandra nodes this tier fronts, at --backend-contact-points).
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Backend nodes, comma-separated `host` or `host:port` (9042 when none is given).
    #[arg(long, value_delimiter = ',')]
    backend_contact_points: Option<Vec<String>>,
    /// Once listening, write `{"cql": "ip:port", "metrics": "ip:port", "internode":
    /// "ip:port"}` to this file
    /// (atomically), so scripts and tests can find ephemeral ports.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Load and validate the configuration (file, `RINGCACHE_*` variables, flags), print it
    /// as TOML and exit without serving: a refused key or value exits non-zero.
    #[arg(long)]
    check_config: bool,
}

/// `--backend`'s values, as `[backend] engine` names them.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BackendArg {
    Embedded,
    Cql,
}

fn main() -> Result<()> {
    ringcache::metrics::alloc::Counting::mark_installed();
    let cli = Cli::parse();
    // A chat command is a client: the driver's connection chatter is noise to its user.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Chat(_)
        | Command::Bench(_)
        | Command::Status(_)
        | Command::Repair(_)
        | Command::Decommission(_) => "warn",
    };
    init_tracing(default_level);
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Chat(args) => chat_cli::run(args),
        Command::Bench(args) => bench_cli::run(args),
        Command::Status(args) => {
            // Like nodetool: the error on one line and a non-zero exit, no backtrace.
            if let Err(error) = status_cli::run(args) {
                eprintln!("ringcache status: {error:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Repair(args) => {
            if let Err(error) = repair_cli::run(args) {
                eprintln!("ringcache repair: {error:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Decommission(args) => {
            if let Err(error) = repair_cli::decommission(args) {
                eprintln!("ringcache decommission: {error:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn init_tracing(default_level: &str) {
    let filter = std::env::var("RINGCACHE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default_level.to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(args: &ServeArgs) -> Result<Config> {
    let required = args.config != std::path::Path::new(DEFAULT_CONFIG);
    let mut config = Config::load(&args.config, required)?;
    if let Some(v) = args.listen_address {
        config.listen_address = v;
    }
    if let Some(v) = args.cql_port {
        config.cql_port = v;
    }
    if let Some(v) = args.metrics_port {
        config.metrics_port = v;
    }
    if let Some(v) = &args.data_dir {
        config.data_dir = v.clone();
    }
    if let Some(v) = &args.cluster_name {
        config.cluster_name = v.clone();
    }
    if let Some(v) = args.num_tokens {
        config.num_tokens = v;
    }
    if let Some(v) = &args.seeds {
        config.seeds = ringcache::config::Addresses(v.clone());
    }
    if let Some(v) = args.internode_port {
        config.internode_port = v;
    }
    if let Some(v) = args.replace_address {
        config.replace_address = Some(v);
    }
    if let Some(v) = args.backend {
        config.backend.engine = match v {
            BackendArg::Embedded => ringcache::config::BackendEngine::Embedded,
            BackendArg::Cql => ringcache::config::BackendEngine::Cql,
        };
    }
    if let Some(v) = &args.backend_contact_points {
        config.backend.contact_points = ringcache::config::Addresses(v.clone());
    }
    config.validate()?;
    Ok(config)
}

fn serve(args: ServeArgs) -> Result<()> {
    let config = load_config(&args)?;
    if args.check_config {
        print!(
            "{}",
            toml::to_string(&config).context("printing the configuration")?
        );
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let startup = startup_scripts(&config);
        let server = Server::start(config, &startup).await?;
        if let Some(path) = &args.ready_file {
            write_ready_file(path, &server).context("writing the ready file")?;
        }
        tokio::select! {
            signal = wait_for_signal() => signal?,
            () = server.left() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
        server.shutdown().await;
        Ok(())
    })
}

/// The schema scripts a node runs at start: the chat schema unless `[chat] create_schema`
/// is off.
fn startup_scripts(config: &Config) -> Vec<StartupScript> {
    // A tier in front of a CQL backend keeps no user data: the application's schema is the
    // backend's.
    let cql_backend = config.backend.engine == ringcache::config::BackendEngine::Cql;
    if !config.chat.create_schema || cql_backend {
        return Vec::new();
    }
    vec![StartupScript {
        name: "chat".to_owned(),
        cql: ringcache::chat::SCHEMA.to_owned(),
    }]
}

fn write_ready_file(path: &std::path::Path, server: &Server) -> Result<()> {
    let json = serde_json::json!({
        "cql": server.cql_addr.to_string(),
        "metrics": server.metrics_addr.to_string(),
        "internode": server.internode_addr.to_string(),
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json.to_string())?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {},
    }
    Ok(())
}

/// `ringcache chat`: a person's (and a load generator's) view of the chat schema, through
/// the library's `ChatClient` against any contact point.
mod chat_cli {
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::{bail, Context, Result};
    use clap::{Args, Subcommand};
    use ringcache::chat::load::{self, LoadOptions};
    use ringcache::chat::{ChatClient, Message, User};
    use uuid::Uuid;

    /// Flags shared by every chat subcommand.
    #[derive(Args)]
    pub struct ChatArgs {
        /// A node of the cluster (host:port).
        #[arg(
            long,
            env = "RINGCACHE_CONTACT",
            default_value = "127.0.0.1:9042",
            global = true
        )]
        contact: String,
        #[command(subcommand)]
        command: ChatCommand,
    }

    #[derive(Subcommand)]
    enum ChatCommand {
        /// Post a message to every thread it names with #tags (and any --thread).
        Post {
            /// Who posts (created on first use).
            #[arg(long)]
            user: String,
            /// Also post to this thread (repeatable).
            #[arg(long)]
            thread: Vec<String>,
            /// The message text, e.g. "hello #lobby #family".
            text: String,
        },
        /// A page of a thread's history, newest first.
        History {
            /// The thread (hashtag without '#').
            thread: String,
            /// Only messages older than this message id (scrolling back).
            #[arg(long)]
            before: Option<Uuid>,
            /// Messages in the page.
            #[arg(long, default_value_t = 20)]
            limit: usize,
        },
        /// Messages posted after a message id, oldest first (catch-up after a reconnect).
        CatchUp {
            /// The thread.
            thread: String,
            /// The last message id the client has.
            #[arg(long)]
            after: Uuid,
            /// Most messages returned.
            #[arg(long, default_value_t = 100)]
            limit: usize,
        },
        /// Follow a thread.
        Follow {
            #[arg(long)]
            user: String,
            thread: String,
        },
        /// Stop following a thread.
        Unfollow {
            #[arg(long)]
            user: String,
            thread: String,
        },
        /// Hide a followed thread (it stays followed).
        Hide {
            #[arg(long)]
            user: String,
            thread: String,
        },
        /// Show a hidden thread again.
        Show {
            #[arg(long)]
            user: String,
            thread: String,
        },
        /// The threads a user follows.
        Threads {
            #[arg(long)]
            user: String,
        },
        /// Simulate users posting and reading, report latencies, verify every write.
        Load(LoadArgs),
    }

    /// `ringcache chat load` flags.
    #[derive(Args)]
    struct LoadArgs {
        /// Users.
        #[arg(long, default_value_t = 100)]
        users: usize,
        /// Threads.
        #[arg(long, default_value_t = 50)]
        threads: usize,
        /// Threads each user follows.
        #[arg(long, default_value_t = 5)]
        follows: usize,
        /// Zipf exponent of thread popularity (0 = uniform).
        #[arg(long, default_value_t = 1.0)]
        zipf: f64,
        /// Operations per second (0 = unthrottled).
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        /// Seconds of traffic.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Stop after this many operations, if sooner.
        #[arg(long)]
        ops: Option<u64>,
        /// Requests in flight.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Share of operations that read history (the rest post), 0..1.
        #[arg(long, default_value_t = 0.5)]
        read_share: f64,
        /// Messages per history page.
        #[arg(long, default_value_t = 50)]
        page: usize,
        /// Most #tags per post.
        #[arg(long, default_value_t = 3)]
        max_tags: usize,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    }

    pub fn run(args: ChatArgs) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let client = ChatClient::connect(&args.contact)
                .await
                .with_context(|| format!("chat client for {}", args.contact))?;
            command(Arc::new(client), args.command).await
        })
    }

    async fn command(client: Arc<ChatClient>, command: ChatCommand) -> Result<()> {
        match command {
            ChatCommand::Post { user, thread, text } => {
                let login = client
                    .get_or_create_user(&User::named(&user, &user))
                    .await?;
                let m = client.post(&login.user, &text, &thread).await?;
                println!("posted {} to {}", m.message_id, m.other_threads.join(", "));
            }
            ChatCommand::History {
                thread,
                before,
                limit,
            } => print_messages(&client.history(&thread, before, limit).await?),
            ChatCommand::CatchUp {
                thread,
                after,
                limit,
            } => print_messages(&client.catch_up(&thread, after, limit).await?),
            ChatCommand::Follow { user, thread } => {
                client.follow(&user, &thread).await?;
                println!("{user} follows {thread}");
            }
            ChatCommand::Unfollow { user, thread } => {
                client.unfollow(&user, &thread).await?;
                println!("{user} no longer follows {thread}");
            }
            ChatCommand::Hide { user, thread } => show(&client, &user, &thread, false).await?,
            ChatCommand::Show { user, thread } => show(&client, &user, &thread, true).await?,
            ChatCommand::Threads { user } => {
                for t in client.followed_threads(&user).await? {
                    let state = if t.enabled { "" } else { " (hidden)" };
                    println!("{}{state}", t.thread_id);
                }
            }
            ChatCommand::Load(args) => load(client, args).await?,
        }
        Ok(())
    }

    async fn show(client: &ChatClient, user: &str, thread: &str, enabled: bool) -> Result<()> {
        if !client.set_enabled(user, thread, enabled).await? {
            bail!("{user} does not follow {thread}");
        }
        println!(
            "{thread} {} for {user}",
            if enabled { "shown" } else { "hidden" }
        );
        Ok(())
    }

    fn print_messages(messages: &[Message]) {
        for m in messages {
            let author = m.author_name.as_deref().unwrap_or(&m.author_id);
            let when = ringcache::chat::utc_time(m.posted_at_ms());
            println!("{when}  {}  {author}: {}", m.message_id, m.body);
        }
    }

    async fn load(client: Arc<ChatClient>, a: LoadArgs) -> Result<()> {
        let opts = LoadOptions {
            users: a.users,
            threads: a.threads,
            follows_per_user: a.follows,
            zipf_exponent: a.zipf,
            rate: a.rate,
            duration: Duration::from_secs_f64(a.duration.max(0.0)),
            max_ops: a.ops,
            concurrency: a.concurrency,
            read_share: a.read_share,
            page_size: a.page,
            max_tags: a.max_tags,
            seed: a.seed,
        };
        let report = load::run(client, opts, |p| eprint!("\r{p}")).await?;
        eprintln!();
        println!("{report}");
        if !report.verification.passed() {
            bail!("verification failed");
        }
        Ok(())
    }
}

/// `ringcache bench`: flags to [`ringcache::bench::Options`].
mod bench_cli {
    use std::path::PathBuf;
    use std::time::Duration;

    use anyhow::{anyhow, Result};
    use clap::{Args, ValueEnum};
    use ringcache::bench::workload::Workload;
    use ringcache::bench::Options;

    #[derive(Clone, Copy, ValueEnum)]
    enum WorkloadArg {
        /// The chat history read: the newest --limit messages of a thread.
        Latest,
        /// One user's row.
        Point,
        /// A new message in a thread.
        Write,
        /// History reads and writes on the same threads (--read-share reads).
        Mix,
    }

    /// `ringcache bench` flags.
    #[derive(Args)]
    pub struct BenchArgs {
        /// The endpoint to measure (host:port): ringcache, ScyllaDB or Cassandra.
        #[arg(long, env = "RINGCACHE_CONTACT", default_value = "127.0.0.1:9042")]
        contact: String,
        #[arg(long, value_enum, default_value = "latest")]
        workload: WorkloadArg,
        /// Partitions (threads; users for `point`) the keys range over.
        #[arg(long, default_value_t = 100_000)]
        partitions: usize,
        /// Messages per thread written by --populate.
        #[arg(long, default_value_t = 25)]
        rows: usize,
        /// Messages per history read.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Key popularity: `zipf` or `uniform`.
        #[arg(long, default_value = "zipf", value_parser = ["zipf", "uniform"])]
        distribution: String,
        /// Zipf exponent.
        #[arg(long, default_value_t = 1.0)]
        zipf_exponent: f64,
        /// Share of requests that read, for `mix` (0..1).
        #[arg(long, default_value_t = 0.9)]
        read_share: f64,
        /// Requests in flight in the closed loop.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Connections to the endpoint.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Seconds per measured phase.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Unmeasured seconds before measuring.
        #[arg(long, default_value_t = 3.0)]
        warmup: f64,
        /// Open-loop rate (requests/s); default: --rate-fraction of the closed-loop rate.
        #[arg(long)]
        rate: Option<f64>,
        /// Open-loop rate as a fraction of the closed-loop throughput (0: no open loop).
        #[arg(long, default_value_t = 0.5)]
        rate_fraction: f64,
        /// Create the chat schema if missing and write the data first.
        #[arg(long)]
        populate: bool,
        /// Read every partition once before measuring (fills a cache).
        #[arg(long)]
        prewarm: bool,
        /// Also measure a bare responder in front of the endpoint, and print the ratio.
        #[arg(long)]
        baseline: bool,
        /// Write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// No progress line.
        #[arg(long)]
        quiet: bool,
        /// Send every request to the contact node only (no token-aware routing).
        #[arg(long)]
        pin: bool,
        /// Reach a node the driver learns at LEARNED at REACHED instead
        /// (`LEARNED=REACHED`, both ip:port; repeatable): measures a proxy that passes the
        /// backend's own addresses through to drivers.
        #[arg(long, value_parser = address_pair)]
        translate: Vec<(std::net::SocketAddr, std::net::SocketAddr)>,
        /// With --populate: the chat keyspace's replication factor (SimpleStrategy).
        #[arg(long)]
        replication_factor: Option<usize>,
        /// The measured node's metrics endpoint (host:port), read for its CPU time;
        /// default: the contact's host on port 9180.
        #[arg(long)]
        metrics: Option<String>,
        /// The consistency level of every request, by name (one, quorum, local_quorum ...);
        /// default: the driver's, LOCAL_QUORUM.
        #[arg(long, value_parser = consistency_level)]
        consistency: Option<ringcache::protocol::Consistency>,
    }

    fn address_pair(text: &str) -> Result<(std::net::SocketAddr, std::net::SocketAddr), String> {
        let (learned, reached) = text
            .split_once('=')
            .ok_or_else(|| format!("{text}: expected LEARNED=REACHED"))?;
        let parse = |a: &str| a.parse().map_err(|e| format!("{a}: {e}"));
        Ok((parse(learned)?, parse(reached)?))
    }

    fn consistency_level(name: &str) -> Result<ringcache::protocol::Consistency, String> {
        ringcache::protocol::Consistency::from_name(name)
            .ok_or_else(|| format!("unknown consistency level {name}"))
    }

    pub fn run(args: BenchArgs) -> Result<()> {
        let workload = match args.workload {
            WorkloadArg::Latest => Workload::Latest,
            WorkloadArg::Point => Workload::Point,
            WorkloadArg::Write => Workload::Write,
            WorkloadArg::Mix => Workload::Mix {
                read_share: args.read_share,
            },
        };
        let options = Options {
            contact: args.contact,
            workload,
            partitions: args.partitions.max(1),
            rows_per_partition: args.rows,
            limit: args.limit,
            zipf: (args.distribution == "zipf").then_some(args.zipf_exponent),
            concurrency: args.concurrency,
            connections: args.connections,
            duration: Duration::from_secs_f64(args.duration.max(0.1)),
            warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
            rate: args.rate,
            rate_fraction: args.rate_fraction,
            populate: args.populate,
            prewarm: args.prewarm,
            baseline: args.baseline,
            json: args.json,
            seed: args.seed,
            progress: !args.quiet,
            pin: args.pin,
            translate: args.translate,
            replication_factor: args.replication_factor,
            metrics: args.metrics,
            consistency: args.consistency,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime
            .block_on(ringcache::bench::run(options))
            .map(|_| ())
            .map_err(|e| anyhow!(e))
    }
}

/// `ringcache status`: fetches a node's `GET /status` from its metrics port and prints it.
mod status_cli {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;

    use anyhow::{anyhow, bail, Context, Result};
    use clap::Args;
    use ringcache::metrics::status::Status;

    /// The metrics port a node serves `/status` on unless told otherwise.
    const DEFAULT_PORT: u16 = 9180;

    /// `ringcache status` flags.
    #[derive(Args)]
    pub struct StatusArgs {
        /// The node to ask: `host` or `host:port` of its metrics endpoint.
        #[arg(long, short = 'H', default_value = "127.0.0.1")]
        host: String,
        /// Show effective ownership for this keyspace.
        keyspace: Option<String>,
        /// Print the node's JSON answer instead of the table.
        #[arg(long)]
        json: bool,
    }

    pub fn run(args: StatusArgs) -> Result<()> {
        let target = with_port(&args.host);
        let mut path = "/status".to_owned();
        if let Some(keyspace) = &args.keyspace {
            path = format!("{path}?keyspace={}", encode(keyspace));
        }
        let (code, body) = http("GET", &target, &path)?;
        match code {
            200 if args.json => print!("{body}"),
            200 => {
                let status: Status = serde_json::from_str(&body)
                    .with_context(|| format!("unreadable answer from {target}"))?;
                print!("{}", status.render());
            }
            400 => bail!("{}", body.trim_end()),
            404 => bail!("{target} does not serve /status (not a ringcache node?)"),
            other => bail!("{target} answered HTTP {other}: {}", body.trim_end()),
        }
        Ok(())
    }

    pub fn with_port(host: &str) -> String {
        let bare_v6 = host.matches(':').count() > 1 && !host.starts_with('[');
        match host.rsplit_once(':') {
            Some((_, port)) if !bare_v6 && port.parse::<u16>().is_ok() => host.to_owned(),
            _ if bare_v6 => format!("[{host}]:{DEFAULT_PORT}"),
            _ => format!("{host}:{DEFAULT_PORT}"),
        }
    }

    /// Percent-encodes everything but letters, digits and `_` (keyspace names are those,
    /// unless quoted).
    pub fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }

    /// One HTTP/1.1 request without a body: the status code and the body. The node closes
    /// the connection after its answer.
    pub fn http(method: &str, target: &str, path: &str) -> Result<(u16, String)> {
        let failed = |e: &dyn std::fmt::Display| anyhow!("Failed to connect to '{target}' - {e}.");
        let addr = target
            .to_socket_addrs()
            .map_err(|e| failed(&e))?
            .next()
            .ok_or_else(|| failed(&"no address"))?;
        let timeout = Duration::from_secs(10);
        let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| failed(&e))?;
        stream.set_read_timeout(Some(timeout))?;
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes())?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .with_context(|| format!("reading the answer of {target}"))?;
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| anyhow!("{target} sent no HTTP answer"))?;
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("{target} sent no HTTP status"))?;
        Ok((code, body.to_owned()))
    }
}

/// `ringcache repair`: starts a repair on a node (`POST /repair`), follows it (`GET /repair`)
/// with a progress line, and prints its summary.
mod repair_cli {
    use std::io::{IsTerminal, Write};
    use std::time::{Duration, Instant};

    use anyhow::{bail, Context, Result};
    use clap::Args;
    use ringcache::metrics::status::RepairReport;

    use super::status_cli::{encode, http, with_port};

    /// `ringcache repair` flags.
    #[derive(Args)]
    pub struct RepairArgs {
        /// The node to run it: `host` or `host:port` of its metrics endpoint.
        #[arg(long, short = 'H', default_value = "127.0.0.1")]
        host: String,
        /// `keyspace` or `keyspace.table`; every user table without it.
        target: Option<String>,
        /// Repair among the live replicas when some are down, instead of refusing.
        #[arg(long)]
        force: bool,
        /// Print the final report as JSON instead of the summary.
        #[arg(long)]
        json: bool,
    }

    pub fn run(args: RepairArgs) -> Result<()> {
        let node = with_port(&args.host);
        let mut query = Vec::new();
        if let Some(target) = &args.target {
            let (keyspace, table) = match target.split_once('.') {
                Some((k, t)) => (k, Some(t)),
                None => (target.as_str(), None),
            };
            query.push(format!("keyspace={}", encode(keyspace)));
            if let Some(table) = table {
                query.push(format!("table={}", encode(table)));
            }
        }
        if args.force {
            query.push("force=1".to_owned());
        }
        let started = start(&node, &format!("/repair?{}", query.join("&")))?;
        let report = follow(&node, &started)?;
        print_report(&report, args.json)?;
        match report.state.as_str() {
            "succeeded" => Ok(()),
            _ => bail!("{}", report.error.unwrap_or_else(|| report.state.clone())),
        }
    }

    /// `ringcache decommission` flags.
    #[derive(Args)]
    pub struct DecommissionArgs {
        /// The node to take out: `host` or `host:port` of its metrics endpoint.
        #[arg(long, short = 'H', default_value = "127.0.0.1")]
        host: String,
        /// Print the stream's final report as JSON instead of the summary.
        #[arg(long)]
        json: bool,
    }

    /// Starts the node's decommission, follows its stream, and waits until it stopped.
    pub fn decommission(args: DecommissionArgs) -> Result<()> {
        let node = with_port(&args.host);
        let started = start(&node, "/decommission")?;
        let report = follow(&node, &started)?;
        print_report(&report, args.json)?;
        if report.state != "succeeded" {
            bail!(
                "{}; the node stays in the cluster",
                report.error.unwrap_or_else(|| report.state.clone())
            );
        }
        // The node leaves once its peers have seen it go, then stops: its endpoint closes.
        let deadline = Instant::now() + Duration::from_secs(120);
        while http("GET", &node, "/status").is_ok() {
            if Instant::now() > deadline {
                bail!("{node} handed its ranges over but has not stopped");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if !args.json {
            println!("{node} left the cluster and stopped.");
        }
        Ok(())
    }

    /// The job's final report: as JSON, or its summary.
    fn print_report(report: &RepairReport, json: bool) -> Result<()> {
        match json {
            true => println!("{}", serde_json::to_string_pretty(report)?),
            false => print!("{}", summary(report)),
        }
        Ok(())
    }

    /// `POST path` on `node`: the job's first report.
    fn start(node: &str, path: &str) -> Result<RepairReport> {
        let (code, body) = http("POST", node, path)?;
        match code {
            202 => serde_json::from_str(&body)
                .with_context(|| format!("unreadable answer from {node}")),
            400 | 409 => bail!("{}", body.trim_end()),
            404 => bail!("{node} does not serve {path} (not a ringcache node?)"),
            other => bail!("{node} answered HTTP {other}: {}", body.trim_end()),
        }
    }

    /// Follows the job `started` on `node` (`GET /repair`) with a progress line until it
    /// ends; its last report.
    fn follow(node: &str, started: &RepairReport) -> Result<RepairReport> {
        let tty = std::io::stderr().is_terminal();
        let mut last_line = Instant::now();
        let report = loop {
            let (code, body) = http("GET", node, "/repair")?;
            if code != 200 {
                bail!("{node} answered HTTP {code}: {}", body.trim_end());
            }
            let report: RepairReport = serde_json::from_str(&body)
                .with_context(|| format!("unreadable answer from {node}"))?;
            if report.id != started.id {
                bail!("{node} started another repair ({}) meanwhile", report.id);
            }
            if report.state != "running" {
                if tty {
                    eprintln!();
                }
                break report;
            }
            if tty {
                eprint!("\r{}", progress(&report));
                let _ = std::io::stderr().flush();
            } else if last_line.elapsed() >= Duration::from_secs(5) {
                eprintln!("{}", progress(&report));
                last_line = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        Ok(report)
    }

    /// `[#####.....]  12/48 spans  3.1 MiB streamed  1.0 MiB/s  ks.t`
    fn progress(r: &RepairReport) -> String {
        const WIDTH: u64 = 30;
        let done = (r.spans_done * WIDTH)
            .checked_div(r.spans_total)
            .unwrap_or(0);
        let bar: String = (0..WIDTH)
            .map(|i| if i < done { '#' } else { '.' })
            .collect();
        let rate = r.bytes_streamed as f64 / r.elapsed_secs.max(0.001);
        format!(
            "[{bar}] {}/{} spans  {} streamed  {}/s  {}",
            r.spans_done,
            r.spans_total,
            bytes(r.bytes_streamed as f64),
            bytes(rate),
            r.table.as_deref().unwrap_or("")
        )
    }

    fn summary(r: &RepairReport) -> String {
        let mut out = format!(
            "{} {} of {}: {} in {:.1} s\n",
            match r.scope.as_str() {
                "bootstrap" | "decommission" => "Stream",
                _ => "Repair",
            },
            r.id,
            r.scope,
            r.state,
            r.elapsed_secs
        );
        if !r.left_out.is_empty() {
            out += &format!("  left out (down): {}\n", r.left_out.join(", "));
        }
        out += &format!(
            "  tables {}/{}, token spans {}/{}\n  Merkle leaves compared {}, mismatched {}\n  \
             partitions compared {}, repaired {}\n  streamed {} ({} bytes) in repair writes; \
             read {} ({} bytes) to compare\n",
            r.tables_done,
            r.tables_total,
            r.spans_done,
            r.spans_total,
            r.leaves_compared,
            r.leaves_mismatched,
            r.partitions_compared,
            r.partitions_repaired,
            bytes(r.bytes_streamed as f64),
            r.bytes_streamed,
            bytes(r.bytes_compared as f64),
            r.bytes_compared,
        );
        if let Some(error) = &r.error {
            out += &format!("  error: {error}\n");
        }
        out
    }

    fn bytes(n: f64) -> String {
        match n {
            n if n >= 1024.0 * 1024.0 => format!("{:.1} MiB", n / (1024.0 * 1024.0)),
            n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
            n => format!("{n:.0} B"),
        }
    }
}
