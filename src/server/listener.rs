//! Accepts CQL connections, at most `limits.max_connections` at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::connection::Connection;
use super::{wait_for, Shared};

/// How long open connections get to finish in-flight requests after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accept loop. Returns after shutdown once every connection task has ended.
pub(super) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(shared.config.limits.max_connections));
    let mut connections = JoinSet::new();
    let stop = wait_for(shutdown.clone());
    tokio::pin!(stop);
    loop {
        // Waiting for a permit *before* accepting leaves excess clients in the kernel's
        // backlog instead of holding their sockets open here.
        let permit = tokio::select! {
            _ = &mut stop => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    shared.metrics.connections_open.inc();
                    shared.metrics.connections_total.inc();
                    if let Err(e) = Connection::new(stream, peer, shared.clone())
                        .run(shutdown)
                        .await
                    {
                        tracing::debug!(%peer, error = %e, "connection ended with an I/O error");
                    }
                    shared.metrics.connections_open.dec();
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "connections still open after the grace period; aborting them"
        );
        connections.abort_all();
    }
}
