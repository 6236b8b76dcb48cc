//! Two transports in one process on loopback: requests and answers, the handshake's
//! refusals, deadlines across a cut link, malformed input closing only its connection
//! (before and after the handshake), gossip passing requests that are stuck, and a flood of
//! requests held to the queue and in-flight bounds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use uuid::Uuid;

use super::*;
use crate::cluster::message::{Gossip, RemoteError, Request, Response};

/// Answers Echo with Ack and counts gossip; refuses one host id at admission. While the
/// gate is shut, requests wait at it: `running` counts them, `most` the most at once.
struct Echo {
    gossip: AtomicUsize,
    refuse: Option<Uuid>,
    gate: watch::Sender<bool>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Echo {
    fn shut(&self) {
        self.gate.send_replace(false);
    }

    fn open(&self) {
        self.gate.send_replace(true);
    }
}

impl Inbound for Echo {
    fn request(
        &self,
        _from: Peer,
        request: Request,
    ) -> BoxFuture<'static, Result<Response, RemoteError>> {
        let mut gate = self.gate.subscribe();
        let (running, most) = (self.running.clone(), self.most.clone());
        Box::pin(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let _ = gate.wait_for(|open| *open).await;
            running.fetch_sub(1, Ordering::SeqCst);
            match request {
                Request::Echo => Ok(Response::Ack),
                _ => Err(RemoteError::Failed("only echo here".into())),
            }
        })
    }

    fn gossip(&self, _from: Peer, _message: Gossip) {
        self.gossip.fetch_add(1, Ordering::Relaxed);
    }

    fn admit(&self, peer: &Peer) -> Result<(), String> {
        match self.refuse {
            Some(id) if id == peer.host_id => Err("host id held elsewhere".into()),
            _ => Ok(()),
        }
    }
}

struct Node {
    transport: Transport,
    inbound: Arc<Echo>,
    _shutdown: watch::Sender<bool>,
}

fn settings() -> Settings {
    Settings {
        max_message_bytes: 1 << 20,
        queue_depth: 64,
        max_in_flight_per_connection: 16,
        connect_timeout: Duration::from_secs(2),
    }
}

async fn node(ip: [u8; 4], cluster: &str, secret: &str, refuse: Option<Uuid>) -> Node {
    let me = LocalIdentity {
        cluster_name: cluster.into(),
        secret: secret.into(),
        host_id: Uuid::new_v4(),
        listen: SocketAddr::from((ip, 0)),
    };
    let (shutdown, rx) = watch::channel(false);
    let (transport, listener) = Transport::bind(me, settings(), Arc::default(), rx)
        .await
        .expect("bind");
    let inbound = Arc::new(Echo {
        gossip: AtomicUsize::new(0),
        refuse,
        gate: watch::channel(true).0,
        running: Arc::default(),
        most: Arc::default(),
    });
    let serving = transport.clone();
    let handler = inbound.clone();
    tokio::spawn(async move { serving.serve(listener, handler).await });
    Node {
        transport,
        inbound,
        _shutdown: shutdown,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(3)
}

#[tokio::test]
async fn a_request_is_answered_across_the_handshake() {
    let a = node([127, 0, 0, 1], "c", "s", None).await;
    let b = node([127, 0, 0, 1], "c", "s", None).await;
    let to = b.transport.local().listen;
    for _ in 0..3 {
        let answer = a.transport.request(to, Request::Echo, soon()).await;
        assert_eq!(answer, Ok(Response::Ack));
    }
    let failed = a
        .transport
        .request(to, Request::Truncate { table: Uuid::nil() }, soon())
        .await;
    assert!(matches!(
        failed,
        Err(CallError::Remote(RemoteError::Failed(_)))
    ));
    let traffic = a.transport.stats().snapshot();
    assert_eq!(traffic[0].1.messages_sent, 4);
}

#[tokio::test]
async fn a_wrong_secret_or_cluster_name_is_refused_both_ways() {
    let good = node([127, 0, 0, 1], "c", "secret", None).await;
    let wrong_secret = node([127, 0, 0, 1], "c", "guess", None).await;
    let wrong_cluster = node([127, 0, 0, 1], "other", "secret", None).await;
    let to_good = good.transport.local().listen;
    for stranger in [&wrong_secret, &wrong_cluster] {
        let answer = stranger
            .transport
            .request(to_good, Request::Echo, soon())
            .await;
        assert!(
            matches!(answer, Err(CallError::Unreachable { .. })),
            "{answer:?}"
        );
        let back = good
            .transport
            .request(stranger.transport.local().listen, Request::Echo, soon())
            .await;
        assert!(
            matches!(back, Err(CallError::Unreachable { .. })),
            "{back:?}"
        );
    }
}

#[tokio::test]
async fn admission_can_refuse_a_peer_that_proved_the_secret() {
    let a = node([127, 0, 0, 1], "c", "s", None).await;
    let b = node([127, 0, 0, 1], "c", "s", Some(a.transport.local().host_id)).await;
    let answer = a
        .transport
        .request(b.transport.local().listen, Request::Echo, soon())
        .await;
    assert!(
        matches!(answer, Err(CallError::Unreachable { .. })),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_cut_link_times_out_at_the_deadline_and_heals() {
    let a = node([127, 0, 0, 1], "c", "s", None).await;
    let b = node([127, 0, 0, 1], "c", "s", None).await;
    let to = b.transport.local().listen;
    assert_eq!(
        a.transport.request(to, Request::Echo, soon()).await,
        Ok(Response::Ack)
    );
    a.transport.faults().set(to.ip(), LinkFault::Cut);
    let deadline = Instant::now() + Duration::from_millis(200);
    let answer = a.transport.request(to, Request::Echo, deadline).await;
    assert_eq!(answer, Err(CallError::Timeout(to)));
    assert!(Instant::now() >= deadline, "the deadline was honoured");
    a.transport.faults().heal(None);
    assert_eq!(
        a.transport.request(to, Request::Echo, soon()).await,
        Ok(Response::Ack)
    );
}

#[tokio::test]
async fn gossip_is_delivered_one_way() {
    let a = node([127, 0, 0, 1], "c", "s", None).await;
    let b = node([127, 0, 0, 1], "c", "s", None).await;
    let message = Gossip::Ack2 { deltas: Vec::new() };
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.inbound.gossip.load(Ordering::Relaxed) == 0 {
        a.transport.gossip(b.transport.local().listen, &message);
        assert!(Instant::now() < deadline, "gossip never arrived");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    let a = node([127, 0, 0, 1], "c", "s", None).await;
    let b = node([127, 0, 0, 1], "c", "s", None).await;
    let to = b.transport.local().listen;
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0xFF; 64][..],
        &[0, 0, 0, 2, 1, 2][..],
    ] {
        let mut raw = tokio::net::TcpStream::connect(to).await.expect("connect");
        raw.write_all(garbage).await.expect("write");
        let mut sink = Vec::new();
        let closed = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut sink),
        )
        .await;
        assert!(closed.is_ok(), "the node closed the bad connection");
    }
    assert_eq!(
        a.transport.request(to, Request::Echo, soon()).await,
        Ok(Response::Ack)
    );
}

/// Waits (bounded) until `condition` holds.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two nodes; the second's gate shut, so the requests it takes wait at it.
async fn shut_pair() -> (Node, Node, SocketAddr) {
    let a = node([127, 0, 0, 1], "c", "s", None).await;
    let b = node([127, 0, 0, 1], "c", "s", None).await;
    let to = b.transport.local().listen;
    b.inbound.shut();
    (a, b, to)
}

/// `n` echo requests from `a` to `to`, each on its own task, all with `deadline`.
fn echoes(
    a: &Node,
    to: SocketAddr,
    n: usize,
    deadline: Instant,
) -> Vec<tokio::task::JoinHandle<Result<Response, CallError>>> {
    (0..n)
        .map(|_| {
            let a = a.transport.clone();
            tokio::spawn(async move { a.request(to, Request::Echo, deadline).await })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_passes_requests_that_are_stuck() {
    let (a, b, to) = shut_pair().await;
    let stuck = echoes(&a, to, 200, Instant::now() + Duration::from_secs(5));
    // b runs its in-flight limit of them and reads no further request: the request
    // connection is full behind them.
    let limit = settings().max_in_flight_per_connection;
    until("b runs its in-flight limit", || {
        b.inbound.running.load(Ordering::SeqCst) == limit
    })
    .await;
    let message = Gossip::Ack2 { deltas: Vec::new() };
    until("gossip arrives past the stuck requests", || {
        a.transport.gossip(to, &message);
        b.inbound.gossip.load(Ordering::Relaxed) > 0
    })
    .await;
    assert_eq!(b.inbound.running.load(Ordering::SeqCst), limit);
    b.inbound.open();
    for request in stuck {
        assert_eq!(request.await.expect("task"), Ok(Response::Ack));
    }
    assert_eq!(b.inbound.most.load(Ordering::SeqCst), limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_requests_is_held_to_the_queue_and_ends_at_its_deadlines() {
    let (a, b, to) = shut_pair().await;
    let deadline = Instant::now() + Duration::from_millis(500);
    let flood = echoes(&a, to, 5_000, deadline);
    for request in flood {
        let answer = tokio::time::timeout(Duration::from_secs(5), request)
            .await
            .expect("every request ends by its deadline")
            .expect("task");
        assert_eq!(answer, Err(CallError::Timeout(to)));
    }
    assert!(Instant::now() >= deadline);
    // The receiver never ran more of one peer's requests at once than its limit (the rest
    // waited in the sender's bounded queue and the socket, not in the receiver's memory).
    let limit = settings().max_in_flight_per_connection;
    assert_eq!(b.inbound.most.load(Ordering::SeqCst), limit);
    b.inbound.open();
    until("the stuck requests are let go", || {
        b.inbound.running.load(Ordering::SeqCst) == 0
    })
    .await;
    assert_eq!(
        a.transport.request(to, Request::Echo, soon()).await,
        Ok(Response::Ack)
    );
}

/// A raw connection to `to` that has passed the handshake on `channel` with the secret `s`.
async fn authenticated(to: SocketAddr, channel: Channel) -> tokio::net::TcpStream {
    let me = LocalIdentity {
        cluster_name: "c".into(),
        secret: "s".into(),
        host_id: Uuid::new_v4(),
        listen: SocketAddr::from(([127, 0, 0, 1], 1)),
    };
    let mut raw = tokio::net::TcpStream::connect(to).await.expect("connect");
    handshake::dial(&mut raw, &me, channel, Duration::from_secs(2))
        .await
        .expect("handshake");
    raw
}

/// Whether the node closes `raw` (within a bound) after it is sent `bytes`.
async fn closed_after(raw: &mut tokio::net::TcpStream, bytes: &[u8]) -> bool {
    raw.write_all(bytes).await.expect("write");
    let mut sink = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(raw, &mut sink),
    )
    .await
    .is_ok()
}

/// Whether the echo request `echo` (id 7) sent on `raw` is answered with Ack.
async fn answered(raw: &mut tokio::net::TcpStream, echo: &[u8]) -> bool {
    raw.write_all(echo).await.expect("write");
    let mut buf = BytesMut::new();
    loop {
        match frame::decode::<Envelope>(&mut buf, 1 << 20) {
            Ok(Some(answer)) => {
                return matches!(
                    answer,
                    Envelope::Response {
                        id: 7,
                        response: Ok(Response::Ack)
                    }
                )
            }
            Ok(None) => {}
            Err(_) => return false,
        }
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_buf(raw, &mut buf),
        )
        .await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            return false;
        }
    }
}

fn framed(envelope: &Envelope) -> Vec<u8> {
    let mut out = BytesMut::new();
    frame::encode(envelope, 1 << 20, &mut out).expect("encode");
    out.to_vec()
}

#[tokio::test]
async fn bad_frames_after_the_handshake_close_only_their_connection() {
    let a = node([127, 0, 0, 1], "c", "s", None).await;
    let b = node([127, 0, 0, 1], "c", "s", None).await;
    let to = b.transport.local().listen;
    let echo = framed(&Envelope::Request {
        id: 7,
        request: Request::Echo,
    });

    // The control: an authenticated raw connection is served, request after request.
    let mut good = authenticated(to, Channel::Requests).await;
    assert!(answered(&mut good, &echo).await);
    assert!(answered(&mut good, &echo).await);

    let too_large = (settings().max_message_bytes as u32 + 1).to_be_bytes();
    let garbage = [&16u32.to_be_bytes()[..], &[0xFF; 16]].concat();
    let gossip = framed(&Envelope::Gossip(Gossip::Ack2 { deltas: Vec::new() }));
    for (channel, bytes, what) in [
        (Channel::Requests, &too_large[..], "an oversized frame"),
        (
            Channel::Requests,
            &garbage[..],
            "a body that does not decode",
        ),
        (
            Channel::Requests,
            &gossip[..],
            "gossip on the request connection",
        ),
        (
            Channel::Gossip,
            &echo[..],
            "a request on the gossip connection",
        ),
    ] {
        let mut raw = authenticated(to, channel).await;
        assert!(closed_after(&mut raw, bytes).await, "{what} was kept");
    }
    // Only those connections: the good one and the transports' own still answer.
    assert!(answered(&mut good, &echo).await);
    assert_eq!(
        a.transport.request(to, Request::Echo, soon()).await,
        Ok(Response::Ack)
    );
}
