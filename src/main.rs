//! The `ringcache` command: parses the command line, loads configuration, starts tracing
//! and hands over to the library.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ringcache::config::Config;
use ringcache::server::Server;

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
    /// Once listening, write `{"cql": "ip:port", "metrics": "ip:port"}` to this file
    /// (atomically), so scripts and tests can find ephemeral ports.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn init_tracing() {
    let filter = std::env::var("RINGCACHE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
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
    config.validate()?;
    Ok(config)
}

fn serve(args: ServeArgs) -> Result<()> {
    let config = load_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = Server::start(config).await?;
        if let Some(path) = &args.ready_file {
            write_ready_file(path, &server).context("writing the ready file")?;
        }
        wait_for_signal().await?;
        tracing::info!("shutting down: finishing in-flight requests");
        server.shutdown().await;
        Ok(())
    })
}

fn write_ready_file(path: &std::path::Path, server: &Server) -> Result<()> {
    let json = serde_json::json!({
        "cql": server.cql_addr.to_string(),
        "metrics": server.metrics_addr.to_string(),
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
