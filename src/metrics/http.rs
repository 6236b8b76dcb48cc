//! The node's HTTP endpoint: `GET /metrics` for Prometheus, `GET /status` for
//! `ringcache status` (JSON), `POST /repair` and `GET /repair` for `ringcache repair`,
//! `POST /decommission` for `ringcache decommission` (followed through `GET /repair`),
//! `POST /flush` (the store's memory tables to disk, as `nodetool flush`), and —
//! only when `[faults] link_control` is on — `POST /faults/...`, the seam through which
//! cluster tests cut and heal internode links.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Metrics;
use crate::cluster::transport::{LinkFault, LinkFaults};

/// What the endpoint serves besides metrics.
#[derive(Clone, Default)]
pub struct Admin {
    /// The link fault seam, when tests may drive it.
    pub faults: Option<Arc<LinkFaults>>,
    /// This node's view of the cluster, as JSON, for `ringcache status`.
    pub status: Option<StatusSource>,
    /// Starts and reports repairs, for `ringcache repair`.
    pub repair: Option<Arc<dyn RepairAdmin>>,
    /// Starts this node's decommission, for `ringcache decommission`.
    pub decommission: Option<DecommissionSource>,
    /// Starts writing the store's memory tables to disk (`POST /flush`, as `nodetool
    /// flush`); `ringcache_storage_memtable_bytes` and `_running_flushes` show it done.
    pub flush: Option<FlushSource>,
}

/// Starts a flush in the background: Err if it cannot start.
pub type FlushSource = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Starts `POST /decommission`: the stream's first report as JSON, or the status line and
/// the reason it was refused. Its progress is `GET /repair`'s.
pub type DecommissionSource = Arc<dyn Fn() -> Result<String, (&'static str, String)> + Send + Sync>;

/// What `/repair` drives.
pub trait RepairAdmin: Send + Sync {
    /// Starts a repair of `keyspace[.table]` (all user tables without one): its report as
    /// JSON, or the status line and reason it did not start.
    fn start(
        &self,
        keyspace: Option<String>,
        table: Option<String>,
        force: bool,
    ) -> Result<String, (&'static str, String)>;
    /// The latest repair's report as JSON, if one ran.
    fn report(&self) -> Option<String>;
}

/// Builds `GET /status[?keyspace=ks]`'s JSON for a keyspace (or none), or says why not.
pub type StatusSource = Arc<dyn Fn(Option<&str>) -> Result<String, String> + Send + Sync>;

/// Serves the endpoint until `shutdown` resolves. Other paths get 404.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    admin: Admin,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let metrics = metrics.clone();
                    let admin = admin.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, &metrics, &admin)).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn answer(mut stream: TcpStream, metrics: &Metrics, admin: &Admin) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let first_line = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let first_line = String::from_utf8_lossy(first_line);
    let mut words = first_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, content_type, body) = route(method, path, metrics, admin);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// The answer to `method path`: status line, content type, body.
fn route(
    method: &str,
    path: &str,
    metrics: &Metrics,
    admin: &Admin,
) -> (&'static str, &'static str, String) {
    let not_found = (
        "404 Not Found",
        "text/plain",
        "not found: try /metrics or /status\n".to_owned(),
    );
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        ("GET", "/status") => match &admin.status {
            Some(status) => match status(query_value(query, "keyspace").as_deref()) {
                Ok(json) => ("200 OK", "application/json", json),
                Err(why) => ("400 Bad Request", "text/plain", format!("{why}\n")),
            },
            None => not_found,
        },
        ("POST", "/repair") => match &admin.repair {
            Some(repair) => match repair.start(
                query_value(query, "keyspace"),
                query_value(query, "table"),
                query_value(query, "force").is_some_and(|f| f == "1" || f == "true"),
            ) {
                Ok(json) => ("202 Accepted", "application/json", json),
                Err((status, why)) => (status, "text/plain", format!("{why}\n")),
            },
            None => not_found,
        },
        ("POST", "/decommission") => match &admin.decommission {
            Some(start) => match start() {
                Ok(json) => ("202 Accepted", "application/json", json),
                Err((status, why)) => (status, "text/plain", format!("{why}\n")),
            },
            None => not_found,
        },
        ("POST", "/flush") => match &admin.flush {
            Some(flush) => match flush() {
                Ok(()) => ("202 Accepted", "text/plain", "flush started\n".to_owned()),
                Err(why) => (
                    "500 Internal Server Error",
                    "text/plain",
                    format!("{why}\n"),
                ),
            },
            None => not_found,
        },
        ("GET", "/repair") => match admin.repair.as_ref().map(|r| r.report()) {
            Some(Some(json)) => ("200 OK", "application/json", json),
            Some(None) => (
                "404 Not Found",
                "text/plain",
                "no repair has run on this node since it started\n".to_owned(),
            ),
            None => not_found,
        },
        ("POST", fault) if fault.starts_with("/faults/") => match &admin.faults {
            Some(faults) => match apply_fault(faults, &fault["/faults/".len()..]) {
                Ok(done) => ("200 OK", "text/plain", done),
                Err(bad) => ("400 Bad Request", "text/plain", bad),
            },
            None => (
                "403 Forbidden",
                "text/plain",
                "link faults are off ([faults] link_control)\n".to_owned(),
            ),
        },
        _ => not_found,
    }
}

/// The value of `name` in a query string, percent-decoded (a quoted keyspace name may hold
/// any character); None when absent or empty.
fn query_value(query: &str, name: &str) -> Option<String> {
    let raw = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)?
        .1;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    let value = String::from_utf8_lossy(&out).into_owned();
    (!value.is_empty()).then_some(value)
}

/// `cut/<ip>`, `delay/<ip>/<ms>`, `heal/<ip>`, `heal`.
fn apply_fault(faults: &LinkFaults, command: &str) -> Result<String, String> {
    let parts: Vec<&str> = command.split('/').collect();
    let ip = |s: &str| {
        s.parse::<std::net::IpAddr>()
            .map_err(|e| format!("bad address {s:?}: {e}\n"))
    };
    match parts.as_slice() {
        ["cut", peer] => faults.set(ip(peer)?, LinkFault::Cut),
        ["delay", peer, ms] => {
            let ms: u64 = ms.parse().map_err(|e| format!("bad delay {ms:?}: {e}\n"))?;
            faults.set(ip(peer)?, LinkFault::Delay(Duration::from_millis(ms)));
        }
        ["heal", peer] => faults.heal(Some(ip(peer)?)),
        ["heal"] => faults.heal(None),
        _ => return Err(format!("unknown fault command {command:?}\n")),
    }
    Ok("ok\n".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_takes_its_keyspace_from_the_query_string() {
        let status: StatusSource = Arc::new(|ks: Option<&str>| match ks {
            Some("nope") => Err("The keyspace nope, does not exist".to_owned()),
            other => Ok(format!("{other:?}")),
        });
        let admin = Admin {
            status: Some(status),
            ..Admin::default()
        };
        let metrics = Metrics::new();
        let get = |path: &str| route("GET", path, &metrics, &admin);
        assert_eq!(get("/status").2, "None");
        assert_eq!(get("/status?keyspace=ks1").2, "Some(\"ks1\")");
        assert_eq!(get("/status?x=1&keyspace=My%20Ks").2, "Some(\"My Ks\")");
        assert_eq!(get("/status?keyspace=").2, "None");
        let refused = get("/status?keyspace=nope");
        assert_eq!(refused.0, "400 Bad Request");
        assert!(refused.2.contains("does not exist"));
        let without = Admin::default();
        assert_eq!(
            route("GET", "/status", &metrics, &without).0,
            "404 Not Found"
        );
    }
}
