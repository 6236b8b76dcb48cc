//! The internode transport: authenticated TCP connections between nodes, over which
//! requests, their answers and gossip travel as framed messages (design §11).
//!
//! **Connections.** A node dials each peer it talks to once per [`Channel`] — one connection
//! for gossip, one for requests, so a heartbeat never queues behind a large read — binding
//! its own listen address as the source, so the peer (and the fault seam) sees which node is
//! calling. Every connection starts with the handshake (`handshake.rs`): both ends prove the
//! cluster secret and agree on cluster name and protocol version, or the connection ends
//! with the reason logged. On the dialled side, requests are handled concurrently up to
//! `max_in_flight_per_connection` and answered on the same connection, in any order, by id.
//!
//! **Bounds and deadlines.** Each outbound connection has a bounded queue; a sender waits for
//! room (backpressure) but never past its request's deadline. Every [`Transport::request`]
//! has a deadline and ends with an answer, a [`CallError::Timeout`], or a connection error —
//! never a hang. A peer that cannot be reached is not dialled again for a short, growing
//! backoff, so requests to a dead node fail fast instead of each paying a connect timeout.
//!
//! **Untrusted input.** A frame larger than `max_message_bytes`, a body that does not
//! decode, or a message of the wrong kind closes that connection and only that one; the
//! node keeps serving (`fuzz/` feeds a million mutated inputs through the frame, envelope
//! and handshake decoders in the test command).
//!
//! **Faults.** Every message in or out passes the [`LinkFaults`] seam first (`faults.rs`).

pub mod faults;
pub mod frame;
pub mod handshake;
mod stats;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::message::{Envelope, Gossip, RemoteError, Request, Response};
pub use faults::{LinkFault, LinkFaults};
pub use handshake::{Channel, LocalIdentity, Peer};
pub use stats::{PeerTraffic, TransportStats};

/// What a node does with what its peers send it.
pub trait Inbound: Send + Sync + 'static {
    /// Answers one request from `from`.
    fn request(
        &self,
        from: Peer,
        request: Request,
    ) -> BoxFuture<'static, Result<Response, RemoteError>>;
    /// Takes one gossip message from `from`.
    fn gossip(&self, from: Peer, message: Gossip);
    /// Whether a dialer that proved the cluster secret may connect (a host id another live
    /// node holds is refused).
    fn admit(&self, peer: &Peer) -> Result<(), String>;
}

/// Transport limits, from `[internode]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_message_bytes: usize,
    pub queue_depth: usize,
    pub max_in_flight_per_connection: usize,
    pub connect_timeout: Duration,
}

impl Settings {
    /// The settings the configuration names.
    pub fn from_config(config: &crate::config::Internode) -> Settings {
        Settings {
            max_message_bytes: config.max_message_bytes,
            queue_depth: config.queue_depth,
            max_in_flight_per_connection: config.max_in_flight_per_connection,
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No answer before the deadline.
    #[error("no answer from {0} in time")]
    Timeout(SocketAddr),
    /// The peer could not be reached (connection refused, handshake failed, backing off).
    #[error("{peer} is unreachable: {reason}")]
    Unreachable { peer: SocketAddr, reason: String },
    /// The connection broke with the request in flight.
    #[error("connection to {0} was lost")]
    ConnectionLost(SocketAddr),
    /// The request could not be framed (too large).
    #[error("{0}")]
    Frame(String),
    /// The peer answered with a failure.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// The node's end of every internode connection.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    me: LocalIdentity,
    settings: Settings,
    faults: Arc<LinkFaults>,
    stats: TransportStats,
    outbound: Mutex<HashMap<(SocketAddr, Channel), Arc<Outbound>>>,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

/// One dialled connection: its queue, the requests awaiting answers, and whether it is
/// usable or backing off after a failure.
struct Outbound {
    queue: mpsc::Sender<Bytes>,
    pending: Pending,
    state: Mutex<OutboundState>,
}

#[derive(Clone, Copy)]
enum OutboundState {
    Live,
    /// Dialling failed or the connection broke: no new dial before `until`.
    Failed {
        until: Instant,
        backoff: Duration,
    },
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Response, CallError>>>>>;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl Transport {
    /// Binds the internode listener on `me.listen`. Serving starts with [`Transport::serve`].
    pub async fn bind(
        mut me: LocalIdentity,
        settings: Settings,
        faults: Arc<LinkFaults>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<(Transport, TcpListener)> {
        let listener = TcpListener::bind(me.listen).await?;
        // With port 0 the kernel chose one: peers must be told the real one.
        me.listen = listener.local_addr()?;
        let inner = Inner {
            me,
            settings,
            faults,
            stats: TransportStats::default(),
            outbound: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shutdown,
        };
        Ok((
            Transport {
                inner: Arc::new(inner),
            },
            listener,
        ))
    }

    /// Accepts peers on `listener` until shutdown, handing what they send to `inbound`.
    pub async fn serve(&self, listener: TcpListener, inbound: Arc<dyn Inbound>) {
        let mut shutdown = self.inner.shutdown.clone();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.changed() => return,
            };
            match accepted {
                Ok((stream, from)) => {
                    let inner = self.inner.clone();
                    let inbound = inbound.clone();
                    tokio::spawn(async move { serve_peer(inner, stream, from, inbound).await });
                }
                Err(error) => {
                    tracing::warn!(%error, "internode accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// This node's identity as peers see it.
    pub fn local(&self) -> &LocalIdentity {
        &self.inner.me
    }

    /// The fault seam.
    pub fn faults(&self) -> &Arc<LinkFaults> {
        &self.inner.faults
    }

    /// Traffic counters per peer.
    pub fn stats(&self) -> &TransportStats {
        &self.inner.stats
    }

    /// Sends `request` to the node listening on `to` and waits for its answer until
    /// `deadline`.
    pub async fn request(
        &self,
        to: SocketAddr,
        request: Request,
        deadline: Instant,
    ) -> Result<Response, CallError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(&Envelope::Request { id, request })?;
        let (tx, rx) = oneshot::channel();
        let outbound = self.outbound(to, Channel::Requests)?;
        outbound.pending.lock().expect("pending").insert(id, tx);
        let sent = self.enqueue(&outbound, to, frame, deadline).await;
        let answer = match sent {
            Ok(()) => tokio::time::timeout_at(deadline.into(), rx).await,
            Err(e) => Ok(Ok(Err(e))),
        };
        outbound.pending.lock().expect("pending").remove(&id);
        match answer {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::ConnectionLost(to)),
            Err(_) => Err(CallError::Timeout(to)),
        }
    }

    /// Sends a gossip message to `to` without waiting: dropped (and counted) when the
    /// link is cut, the peer unreachable, or its queue full — the next round retries.
    pub fn gossip(&self, to: SocketAddr, message: &Gossip) {
        let Ok(frame) = self.encode(&Envelope::Gossip(message.clone())) else {
            return;
        };
        let Ok(outbound) = self.outbound(to, Channel::Gossip) else {
            return;
        };
        if self.inner.faults.is_cut(to.ip()) {
            return;
        }
        let len = frame.len();
        if outbound.queue.try_send(frame).is_ok() {
            self.inner.stats.sent(to, len);
        }
    }

    fn encode(&self, envelope: &Envelope) -> Result<Bytes, CallError> {
        let mut out = BytesMut::new();
        frame::encode(envelope, self.inner.settings.max_message_bytes, &mut out)
            .map_err(|e| CallError::Frame(e.to_string()))?;
        Ok(out.freeze())
    }

    /// Puts a request's frame on `outbound`'s queue, waiting for room until `deadline`. A cut
    /// link swallows it (the caller then times out, as across a partition).
    async fn enqueue(
        &self,
        outbound: &Outbound,
        to: SocketAddr,
        frame: Bytes,
        deadline: Instant,
    ) -> Result<(), CallError> {
        if self.inner.faults.is_cut(to.ip()) {
            return Ok(());
        }
        if let Some(delay) = self.inner.faults.delay(to.ip()) {
            tokio::time::sleep(delay).await;
        }
        let len = frame.len();
        match tokio::time::timeout_at(deadline.into(), outbound.queue.send(frame)).await {
            Ok(Ok(())) => {
                self.inner.stats.sent(to, len);
                Ok(())
            }
            Ok(Err(_)) => Err(CallError::ConnectionLost(to)),
            Err(_) => Err(CallError::Timeout(to)),
        }
    }

    /// The live connection to `to` on `channel`, dialling a new one unless the last attempt
    /// failed too recently.
    fn outbound(&self, to: SocketAddr, channel: Channel) -> Result<Arc<Outbound>, CallError> {
        let mut map = self.inner.outbound.lock().expect("outbound");
        if let Some(existing) = map.get(&(to, channel)) {
            match *existing.state.lock().expect("state") {
                OutboundState::Live if !existing.queue.is_closed() => return Ok(existing.clone()),
                OutboundState::Failed { until, .. } if Instant::now() < until => {
                    return Err(CallError::Unreachable {
                        peer: to,
                        reason: "backing off after a failed connection".into(),
                    })
                }
                _ => {}
            }
        }
        let backoff = map.get(&(to, channel)).map_or(MIN_BACKOFF, |o| {
            match *o.state.lock().expect("state") {
                OutboundState::Failed { backoff, .. } => (backoff * 2).min(MAX_BACKOFF),
                OutboundState::Live => MIN_BACKOFF,
            }
        });
        let (queue, rx) = mpsc::channel(self.inner.settings.queue_depth);
        let outbound = Arc::new(Outbound {
            queue,
            pending: Pending::default(),
            state: Mutex::new(OutboundState::Live),
        });
        map.insert((to, channel), outbound.clone());
        let inner = self.inner.clone();
        let task = outbound.clone();
        tokio::spawn(async move { run_outbound(inner, to, channel, rx, task, backoff).await });
        Ok(outbound)
    }
}

/// Dials `to`, then writes queued frames and completes answered requests until the
/// connection breaks; then fails what is pending and marks the connection for backoff.
async fn run_outbound(
    inner: Arc<Inner>,
    to: SocketAddr,
    channel: Channel,
    mut rx: mpsc::Receiver<Bytes>,
    outbound: Arc<Outbound>,
    backoff: Duration,
) {
    let error = match dial(&inner, to, channel).await {
        Ok((stream, peer)) => {
            tracing::debug!(%to, host_id = %peer.host_id, ?channel, "internode connection up");
            run_connection(&inner, stream, to, &mut rx, &outbound.pending).await
        }
        Err(reason) => CallError::Unreachable { peer: to, reason },
    };
    tracing::debug!(%to, ?channel, %error, "internode connection down");
    let failed = OutboundState::Failed {
        until: Instant::now() + backoff,
        backoff,
    };
    *outbound.state.lock().expect("state") = failed;
    rx.close();
    let pending: Vec<_> = outbound.pending.lock().expect("pending").drain().collect();
    for (_, waiter) in pending {
        let _ = waiter.send(Err(error.clone()));
    }
}

async fn dial(
    inner: &Inner,
    to: SocketAddr,
    channel: Channel,
) -> Result<(TcpStream, Peer), String> {
    if inner.faults.is_cut(to.ip()) {
        return Err("link cut".into());
    }
    let limit = inner.settings.connect_timeout;
    let socket = match to {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| e.to_string())?;
    // The source address is this node's own, so the peer sees who is calling.
    socket
        .bind(SocketAddr::new(inner.me.listen.ip(), 0))
        .map_err(|e| e.to_string())?;
    let mut stream = tokio::time::timeout(limit, socket.connect(to))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let peer = handshake::dial(&mut stream, &inner.me, channel, limit)
        .await
        .map_err(|e| {
            if matches!(
                e,
                handshake::HandshakeError::Rejected(_) | handshake::HandshakeError::Refused(_)
            ) {
                tracing::warn!(%to, error = %e, "internode handshake failed");
            }
            e.to_string()
        })?;
    Ok((stream, peer))
}

/// Writes queued frames (several per write when they pile up) and reads answers.
async fn run_connection(
    inner: &Inner,
    stream: TcpStream,
    to: SocketAddr,
    rx: &mut mpsc::Receiver<Bytes>,
    pending: &Pending,
) -> CallError {
    let (mut read, mut write) = stream.into_split();
    let writer = async {
        let mut out = BytesMut::new();
        while let Some(frame) = rx.recv().await {
            out.extend_from_slice(&frame);
            gather(rx, &mut out).await;
            if write.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
        }
    };
    let reader = async {
        let mut buf = BytesMut::with_capacity(8192);
        loop {
            match frame::decode::<Envelope>(&mut buf, inner.settings.max_message_bytes) {
                Ok(Some(Envelope::Response { id, response })) => {
                    inner.stats.decoded(to);
                    if inner.faults.is_cut(to.ip()) {
                        continue;
                    }
                    let waiter = pending.lock().expect("pending").remove(&id);
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(response.map_err(CallError::Remote));
                    }
                    continue;
                }
                Ok(Some(other)) => {
                    tracing::warn!(%to, message = ?kind(&other), "unexpected internode message; closing");
                    return;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%to, %error, "bad internode frame; closing the connection");
                    return;
                }
            }
            match read.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => inner.stats.received(to, n),
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
    CallError::ConnectionLost(to)
}

/// Appends to `out` every frame queued behind the first, letting the tasks that are ready
/// to run first run once, so that what they are about to send (the other requests of the
/// same burst, the other answers of the same read) leaves in the same write: on loopback
/// and under load, a system call per message is most of an internode message's cost.
async fn gather(rx: &mut mpsc::Receiver<Bytes>, out: &mut BytesMut) {
    let drain = |rx: &mut mpsc::Receiver<Bytes>, out: &mut BytesMut| {
        while let Ok(more) = rx.try_recv() {
            out.extend_from_slice(&more);
        }
    };
    drain(rx, out);
    tokio::task::yield_now().await;
    drain(rx, out);
}

/// Serves one accepted connection: handshake, then requests (answered concurrently, within
/// the in-flight bound) or gossip, until it closes or the node shuts down.
async fn serve_peer(
    inner: Arc<Inner>,
    mut stream: TcpStream,
    from: SocketAddr,
    inbound: Arc<dyn Inbound>,
) {
    if inner.faults.is_cut(from.ip()) {
        return;
    }
    let _ = stream.set_nodelay(true);
    let admit = |peer: &Peer| inbound.admit(peer);
    let limit = inner.settings.connect_timeout;
    let (peer, channel) = match handshake::accept(&mut stream, &inner.me, &admit, limit).await {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::warn!(%from, %error, "refused an internode connection");
            return;
        }
    };
    let (mut read, mut write) = stream.into_split();
    let (replies, mut outgoing) = mpsc::channel::<Bytes>(inner.settings.queue_depth);
    let writer = async move {
        let mut out = BytesMut::new();
        while let Some(frame) = outgoing.recv().await {
            out.extend_from_slice(&frame);
            gather(&mut outgoing, &mut out).await;
            if write.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    };
    let permits = Arc::new(Semaphore::new(inner.settings.max_in_flight_per_connection));
    let reader = read_requests(&inner, &mut read, peer, channel, &inbound, replies, permits);
    let mut shutdown = inner.shutdown.clone();
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
        _ = shutdown.changed() => {}
    }
}

async fn read_requests(
    inner: &Arc<Inner>,
    read: &mut tokio::net::tcp::OwnedReadHalf,
    peer: Peer,
    channel: Channel,
    inbound: &Arc<dyn Inbound>,
    replies: mpsc::Sender<Bytes>,
    permits: Arc<Semaphore>,
) {
    let mut buf = BytesMut::with_capacity(8192);
    let from = peer.listen;
    loop {
        let message = match frame::decode::<Envelope>(&mut buf, inner.settings.max_message_bytes) {
            Ok(Some(message)) => {
                inner.stats.decoded(from);
                message
            }
            Ok(None) => {
                match read.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => inner.stats.received(from, n),
                }
                continue;
            }
            Err(error) => {
                tracing::warn!(%from, %error, "bad internode frame; closing the connection");
                return;
            }
        };
        if inner.faults.is_cut(from.ip()) {
            continue;
        }
        match (message, channel) {
            (Envelope::Gossip(gossip), Channel::Gossip) => inbound.gossip(peer, gossip),
            (Envelope::Request { id, request }, Channel::Requests) => {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let answer = inbound.request(peer, request);
                let replies = replies.clone();
                let inner = inner.clone();
                tokio::spawn(async move {
                    let response = answer.await;
                    drop(permit);
                    reply(&inner, from, &replies, id, response).await;
                });
            }
            (other, _) => {
                tracing::warn!(%from, message = ?kind(&other), ?channel, "unexpected internode message; closing");
                return;
            }
        }
    }
}

async fn reply(
    inner: &Inner,
    to: SocketAddr,
    replies: &mpsc::Sender<Bytes>,
    id: u64,
    response: Result<Response, RemoteError>,
) {
    if inner.faults.is_cut(to.ip()) {
        return;
    }
    if let Some(delay) = inner.faults.delay(to.ip()) {
        tokio::time::sleep(delay).await;
    }
    let max = inner.settings.max_message_bytes;
    let mut out = BytesMut::new();
    if let Err(error) = frame::encode(&Envelope::Response { id, response }, max, &mut out) {
        let failure = Envelope::Response {
            id,
            response: Err(RemoteError::Failed(error.to_string())),
        };
        out.clear();
        if frame::encode(&failure, max, &mut out).is_err() {
            return;
        }
    }
    let len = out.len();
    if replies.send(out.freeze()).await.is_ok() {
        inner.stats.sent(to, len);
    }
}

/// A message's kind, for logs (never its contents).
fn kind(envelope: &Envelope) -> &'static str {
    match envelope {
        Envelope::Request { .. } => "request",
        Envelope::Response { .. } => "response",
        Envelope::Gossip(_) => "gossip",
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
