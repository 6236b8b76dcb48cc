//! Replacing a dead node (`replace_address`), before this node has an identity: the seeds
//! are asked what the node at that address was (host id, tokens, data centre, rack) and
//! whether it is down, over a short-lived internode connection that proves the cluster
//! secret like any other; then this node records the replacement (`node/replace.rs`) and
//! creates its identity with the dead node's tokens. The rest is a bootstrap
//! (`server/bootstrap.rs`): JOINING with those tokens, every coordinator sends the writes
//! of the dead node's ranges to this node as a pending replica (`cluster/membership.rs`:
//! on the pending ring this node holds them instead of the dead one), it streams them from
//! the live replicas, and once it is NORMAL every node counts the dead one gone (LEFT: out
//! of the ring, `system.peers` and `ringcache status`; drivers get REMOVED_NODE; hints for
//! it dropped) and this node removes it from the metadata log's group.
//!
//! Refused, with the reason: a dead node that is up (as the seeds see it), not NORMAL, in
//! another data centre or rack, unknown to the seeds, or at this node's own address (the
//! same address for both is not supported: peers could not tell the two apart by address).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use crate::cluster::message::{NodeFacts, Request, Response};
use crate::cluster::transport::{LocalIdentity, Settings, Transport};
use crate::config::Config;
use crate::node::replace::Recorded;
use crate::node::NodeIdentity;
use crate::ring::Token;

/// How long the seeds are asked (they may be starting too) before the start fails.
const ASK_FOR: Duration = Duration::from_secs(60);
/// The deadline of each question.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The node this start replaces, if any: what the data directory records (an unfinished
/// replacement resumes, a finished one is remembered), or — on a first start with
/// `replace_address` — the dead node learnt from the seeds, recorded, with this node's
/// identity created from its tokens.
pub async fn prepare(config: &Config) -> Result<Option<Recorded>, String> {
    let data_dir = &config.data_dir;
    let recorded = crate::node::replace::recorded(data_dir)?;
    let has_identity = NodeIdentity::exists(data_dir);
    match (recorded, config.replace_address) {
        (Some(recorded), _) if recorded.finished || has_identity => Ok(Some(recorded)),
        (None, Some(address)) if has_identity => {
            tracing::warn!(%address, "replace_address is set but this node has started before: ignored (a node replaces another only on its first start)");
            Ok(None)
        }
        (None, None) => Ok(None),
        // A first start, or one killed after it recorded the replacement and before it
        // created its identity: learn the dead node, then record before creating.
        (recorded, address) => {
            let Some(address) = address else {
                return Err(format!(
                    "{} records an unfinished replacement but replace_address is not set",
                    data_dir.display()
                ));
            };
            let host_id = Uuid::new_v4();
            let dead = learn(config, host_id, address).await?;
            if recorded.is_some_and(|r| r.host_id != dead.host_id) {
                return Err(format!(
                    "{} records the replacement of another node than the one at {address}",
                    data_dir.display()
                ));
            }
            let io = |e: std::io::Error| format!("cannot record the replacement: {e}");
            crate::node::bootstrap::begin(data_dir).map_err(io)?;
            crate::node::replace::begin(data_dir, dead.host_id).map_err(io)?;
            let tokens = dead.tokens.iter().map(|t| Token(*t)).collect();
            NodeIdentity::create(data_dir, host_id, tokens).map_err(|e| e.to_string())?;
            tracing::info!(
                replaced = %dead.host_id,
                %address,
                %host_id,
                tokens = dead.tokens.len(),
                "replacing the dead node: took its tokens; streaming its data before serving"
            );
            Ok(Some(Recorded {
                host_id: dead.host_id,
                finished: false,
            }))
        }
    }
}

/// Asks the seeds, as `host_id`, about the node at `address`, until one knows it.
async fn learn(config: &Config, host_id: Uuid, address: IpAddr) -> Result<NodeFacts, String> {
    if address == config.listen_address {
        return Err(format!(
            "replace_address {address} is this node's own listen_address: replacing a node at \
             its own address is not supported; start the replacement on a new address"
        ));
    }
    let me = SocketAddr::new(config.listen_address, config.internode_port);
    let seeds: Vec<SocketAddr> = config
        .seed_addrs()
        .into_iter()
        .filter(|s| *s != me)
        .collect();
    if seeds.is_empty() {
        return Err(
            "replace_address needs seeds: nodes of the running cluster that know the dead node"
                .into(),
        );
    }
    let identity = LocalIdentity {
        cluster_name: config.cluster_name.clone(),
        secret: config.cluster_secret.clone(),
        host_id,
        listen: SocketAddr::new(config.listen_address, 0),
    };
    let (_stop, stopped) = watch::channel(false);
    let settings = Settings::from_config(&config.internode);
    let (transport, _listener) = Transport::bind(identity, settings, Arc::default(), stopped)
        .await
        .map_err(|e| format!("cannot open an internode connection to the seeds: {e}"))?;
    let until = Instant::now() + ASK_FOR;
    let mut last = String::new();
    loop {
        for seed in &seeds {
            let ask = Request::DescribeNode { address };
            match transport
                .request(*seed, ask, Instant::now() + ASK_TIMEOUT)
                .await
            {
                Ok(Response::Node(Some(facts))) => return check(config, address, facts),
                Ok(Response::Node(None)) => {
                    last = format!("seed {seed} knows no node at {address}")
                }
                Ok(_) => last = format!("seed {seed} answered with the wrong message"),
                Err(e) => last = format!("seed {seed}: {e}"),
            }
        }
        if Instant::now() >= until {
            return Err(format!(
                "cannot learn the node to replace at {address} from the seeds: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The dead node, if it may be replaced by this one.
fn check(config: &Config, address: IpAddr, dead: NodeFacts) -> Result<NodeFacts, String> {
    let who = format!("the node at {address} ({})", dead.host_id);
    if dead.alive {
        return Err(format!(
            "{who} is up: only a dead node can be replaced (stop it first)"
        ));
    }
    if dead.status != "NORMAL" {
        return Err(format!(
            "{who} is {}, not NORMAL: only a node that owned its ranges can be replaced",
            dead.status
        ));
    }
    if (dead.data_center.as_str(), dead.rack.as_str())
        != (config.data_center.as_str(), config.rack.as_str())
    {
        return Err(format!(
            "{who} was in data centre {:?}, rack {:?}; this node is configured for {:?}, {:?}",
            dead.data_center, dead.rack, config.data_center, config.rack
        ));
    }
    if dead.tokens.is_empty() {
        return Err(format!("{who} advertises no tokens"));
    }
    Ok(dead)
}

/// Stops this node (through `left`) once a NORMAL node advertises that it replaced this one:
/// this node was declared dead and replaced, and came back on its old data directory. Its
/// tokens belong to its replacement now; it records that it left (it never starts on this
/// data directory again) and stops, as Cassandra refuses a replaced node's return.
pub async fn stop_if_replaced(
    membership: Arc<crate::cluster::membership::Membership>,
    data_dir: std::path::PathBuf,
    left: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = membership.ownership_changes();
    loop {
        let view = membership.view();
        let replacement = view
            .nodes
            .values()
            .find(|n| n.replaces == Some(view.local) && n.status.owns_ranges());
        if let Some(replacement) = replacement {
            tracing::error!(
                replacement = %replacement.host_id,
                address = %replacement.internode,
                "this node was replaced while it was down: it is no longer part of the cluster; \
                 stopping (start it with an empty data_dir to join as a new node)"
            );
            let why = format!("it was replaced by {}", replacement.host_id);
            if let Err(error) = crate::node::bootstrap::record_left(&data_dir, &why) {
                tracing::error!(%error, "cannot record that this node was replaced");
            }
            left.send_replace(true);
            return;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}
