//! Two transports in one process on loopback: requests and answers, the handshake's
//! refusals, deadlines across a cut link, and malformed input closing only its connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use uuid::Uuid;

use super::*;
use crate::cluster::message::{Gossip, RemoteError, Request, Response};

/// Answers Echo with Ack and counts gossip; refuses one host id at admission.
struct Echo {
    gossip: AtomicUsize,
    refuse: Option<Uuid>,
}

impl Inbound for Echo {
    fn request(
        &self,
        _from: Peer,
        request: Request,
    ) -> BoxFuture<'static, Result<Response, RemoteError>> {
        Box::pin(async move {
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
