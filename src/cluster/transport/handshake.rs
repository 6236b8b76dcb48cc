//! The internode handshake: both ends prove they know the cluster secret, without sending
//! it, and agree on the cluster name and protocol version before any message flows.
//!
//! ```text
//! dialer                                          listener
//!   Hello { magic, version, cluster, host_id, listen, channel, nonce_d }  ──▶
//!        ◀──  Challenge { version, host_id, listen, nonce_l, proof_l } | Refused { reason }
//!   (checks proof_l)   Proof { proof_d }  ──▶
//!        ◀──  Welcome | Refused { reason }          (checks proof_d, admits the peer)
//!
//! proof_l = HMAC-SHA256(secret, "listener" | cluster | nonce_d | nonce_l | id_d | id_l)
//! proof_d = HMAC-SHA256(secret, "dialer"   | cluster | nonce_l | nonce_d | id_d | id_l)
//! ```
//!
//! Each side's proof covers the other side's fresh random nonce, so a recorded handshake
//! cannot be replayed, and the role label keeps one side's proof from being reflected back
//! as the other's. Proofs are compared in constant time (`Mac::verify_slice`). A wrong
//! secret, another cluster's name, another protocol version, or an admission refusal (a
//! host id that a live node at another address already holds) ends the connection with the
//! reason logged on both sides where it can be told; nothing of the peer is admitted.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use super::frame;
use crate::cluster::message::PROTOCOL_VERSION;

/// The first bytes of every internode connection: not a CQL frame, not HTTP.
const MAGIC: [u8; 4] = *b"RCIN";
/// Handshake messages are small; anything larger is not a peer.
const MAX_HANDSHAKE_BYTES: usize = 4096;

/// Which traffic a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Channel {
    /// Gossip only, so heartbeats never wait behind data.
    Gossip,
    /// Replica requests and their answers.
    Requests,
}

/// Who this node is, for the handshake.
#[derive(Debug, Clone)]
pub struct LocalIdentity {
    pub cluster_name: String,
    pub secret: String,
    pub host_id: Uuid,
    /// The internode address peers reach this node at.
    pub listen: SocketAddr,
}

/// The authenticated other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub host_id: Uuid,
    /// The internode address the peer listens on (not the connection's source port).
    pub listen: SocketAddr,
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("connection failed during the handshake: {0}")]
    Io(String),
    #[error("handshake timed out")]
    Timeout,
    #[error("not a ringcache node: {0}")]
    NotAPeer(String),
    #[error("peer refused the connection: {0}")]
    Refused(String),
    #[error("{0}")]
    Rejected(String),
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(Hash))]
struct Hello {
    magic: [u8; 4],
    version: u16,
    cluster_name: String,
    host_id: Uuid,
    listen: SocketAddr,
    channel: Channel,
    nonce: [u8; 32],
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(Hash))]
enum Reply {
    Challenge {
        version: u16,
        host_id: Uuid,
        listen: SocketAddr,
        nonce: [u8; 32],
        proof: Vec<u8>,
    },
    Welcome,
    Refused {
        reason: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(Hash))]
struct Proof {
    proof: Vec<u8>,
}

/// What the listener's admission check sees of a dialer, after its proof checked out.
pub type Admit<'a> = &'a (dyn Fn(&Peer) -> Result<(), String> + Send + Sync);

/// Runs the dialer's side on a fresh connection to `expected` (the address dialled).
pub async fn dial(
    stream: &mut TcpStream,
    me: &LocalIdentity,
    channel: Channel,
    limit: Duration,
) -> Result<Peer, HandshakeError> {
    tokio::time::timeout(limit, dial_steps(stream, me, channel))
        .await
        .map_err(|_| HandshakeError::Timeout)?
}

async fn dial_steps(
    stream: &mut TcpStream,
    me: &LocalIdentity,
    channel: Channel,
) -> Result<Peer, HandshakeError> {
    let mut buf = BytesMut::new();
    let nonce: [u8; 32] = rand::random();
    let hello = Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        cluster_name: me.cluster_name.clone(),
        host_id: me.host_id,
        listen: me.listen,
        channel,
        nonce,
    };
    send(stream, &hello).await?;
    let (peer, their_nonce, proof) = match receive(stream, &mut buf).await? {
        Reply::Challenge {
            version,
            host_id,
            listen,
            nonce,
            proof,
        } => {
            if version != PROTOCOL_VERSION {
                return Err(HandshakeError::Rejected(format!(
                    "peer speaks internode protocol {version}, this node {PROTOCOL_VERSION}"
                )));
            }
            (Peer { host_id, listen }, nonce, proof)
        }
        Reply::Refused { reason } => return Err(HandshakeError::Refused(reason)),
        Reply::Welcome => return Err(HandshakeError::NotAPeer("welcome before proof".into())),
    };
    let expected = mac(
        me,
        Role::Listener,
        &nonce,
        &their_nonce,
        me.host_id,
        peer.host_id,
    );
    if expected.verify_slice(&proof).is_err() {
        return Err(HandshakeError::Rejected(format!(
            "peer {} at {} does not know this cluster's secret",
            peer.host_id, peer.listen
        )));
    }
    let ours = mac(
        me,
        Role::Dialer,
        &their_nonce,
        &nonce,
        me.host_id,
        peer.host_id,
    );
    send(
        stream,
        &Proof {
            proof: ours.finalize().into_bytes().to_vec(),
        },
    )
    .await?;
    match receive(stream, &mut buf).await? {
        Reply::Welcome => Ok(peer),
        Reply::Refused { reason } => Err(HandshakeError::Refused(reason)),
        Reply::Challenge { .. } => Err(HandshakeError::NotAPeer("second challenge".into())),
    }
}

/// Runs the listener's side on an accepted connection: the dialer and the channel it asked
/// for, once it proved the secret and `admit` accepted it.
pub async fn accept(
    stream: &mut TcpStream,
    me: &LocalIdentity,
    admit: Admit<'_>,
    limit: Duration,
) -> Result<(Peer, Channel), HandshakeError> {
    tokio::time::timeout(limit, accept_steps(stream, me, admit))
        .await
        .map_err(|_| HandshakeError::Timeout)?
}

async fn accept_steps(
    stream: &mut TcpStream,
    me: &LocalIdentity,
    admit: Admit<'_>,
) -> Result<(Peer, Channel), HandshakeError> {
    let mut buf = BytesMut::new();
    let hello: Hello = receive(stream, &mut buf).await?;
    if hello.magic != MAGIC {
        return Err(HandshakeError::NotAPeer("bad magic".into()));
    }
    let peer = Peer {
        host_id: hello.host_id,
        listen: hello.listen,
    };
    let refusal = if hello.version != PROTOCOL_VERSION {
        Some(format!(
            "internode protocol {} is not this node's {PROTOCOL_VERSION}",
            hello.version
        ))
    } else if hello.cluster_name != me.cluster_name {
        Some(format!(
            "cluster name {:?} is not this node's {:?}",
            hello.cluster_name, me.cluster_name
        ))
    } else if hello.host_id == me.host_id {
        Some(format!("host id {} is this node's own", hello.host_id))
    } else {
        None
    };
    if let Some(reason) = refusal {
        return refuse(stream, reason).await;
    }
    let nonce: [u8; 32] = rand::random();
    let proof = mac(
        me,
        Role::Listener,
        &hello.nonce,
        &nonce,
        peer.host_id,
        me.host_id,
    );
    let challenge = Reply::Challenge {
        version: PROTOCOL_VERSION,
        host_id: me.host_id,
        listen: me.listen,
        nonce,
        proof: proof.finalize().into_bytes().to_vec(),
    };
    send(stream, &challenge).await?;
    let Proof { proof } = receive(stream, &mut buf).await?;
    let expected = mac(
        me,
        Role::Dialer,
        &nonce,
        &hello.nonce,
        peer.host_id,
        me.host_id,
    );
    if expected.verify_slice(&proof).is_err() {
        return refuse(stream, "wrong cluster secret".into()).await;
    }
    if let Err(reason) = admit(&peer) {
        return refuse(stream, reason).await;
    }
    send(stream, &Reply::Welcome).await?;
    Ok((peer, hello.channel))
}

async fn refuse<T>(stream: &mut TcpStream, reason: String) -> Result<T, HandshakeError> {
    // The peer may already be gone; the refusal is logged here either way.
    let _ = send(
        stream,
        &Reply::Refused {
            reason: reason.clone(),
        },
    )
    .await;
    Err(HandshakeError::Rejected(reason))
}

#[derive(Clone, Copy)]
enum Role {
    Dialer,
    Listener,
}

/// The keyed hash one side proves: over its role, the cluster, both nonces (the prover's
/// peer's first) and both host ids (dialer's first).
fn mac(
    me: &LocalIdentity,
    role: Role,
    first_nonce: &[u8; 32],
    second_nonce: &[u8; 32],
    dialer: Uuid,
    listener: Uuid,
) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(me.secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(match role {
        Role::Dialer => b"dialer",
        Role::Listener => b"listener",
    });
    mac.update(&(me.cluster_name.len() as u32).to_be_bytes());
    mac.update(me.cluster_name.as_bytes());
    mac.update(first_nonce);
    mac.update(second_nonce);
    mac.update(dialer.as_bytes());
    mac.update(listener.as_bytes());
    mac
}

async fn send<T: Serialize>(stream: &mut TcpStream, message: &T) -> Result<(), HandshakeError> {
    let mut out = BytesMut::new();
    frame::encode(message, MAX_HANDSHAKE_BYTES, &mut out)
        .map_err(|e| HandshakeError::Io(e.to_string()))?;
    stream
        .write_all(&out)
        .await
        .map_err(|e| HandshakeError::Io(e.to_string()))
}

async fn receive<T: serde::de::DeserializeOwned>(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<T, HandshakeError> {
    loop {
        match frame::decode(buf, MAX_HANDSHAKE_BYTES) {
            Ok(Some(message)) => return Ok(message),
            Ok(None) => {}
            Err(e) => return Err(HandshakeError::NotAPeer(e.to_string())),
        }
        let read = stream
            .read_buf(buf)
            .await
            .map_err(|e| HandshakeError::Io(e.to_string()))?;
        if read == 0 {
            return Err(HandshakeError::Io("connection closed".into()));
        }
    }
}

/// The internode fuzz test's view of the handshake (`fuzz/`), whose message types are
/// private: their decoders, each reading the next frame exactly as [`receive`] does and
/// answering with a hash of the message (so decodes can be compared without naming the
/// types), and one encoded frame of every message.
#[cfg(test)]
pub(super) mod fuzz_hook {
    use std::hash::{DefaultHasher, Hash, Hasher};

    use super::*;

    /// What one decoder made of the front of a buffer: a message's hash, "need more
    /// bytes", or the error that would end the handshake.
    pub type Decoded = Result<Option<u64>, frame::FrameError>;

    /// `Hello` (the listener's first read), `Reply` (the dialer's), `Proof` (the
    /// listener's second).
    pub const DECODERS: [fn(&mut BytesMut) -> Decoded; 3] =
        [decode_as::<Hello>, decode_as::<Reply>, decode_as::<Proof>];

    fn decode_as<T: serde::de::DeserializeOwned + Hash>(buf: &mut BytesMut) -> Decoded {
        let message = frame::decode::<T>(buf, MAX_HANDSHAKE_BYTES)?;
        Ok(message.map(|m| {
            let mut h = DefaultHasher::new();
            m.hash(&mut h);
            h.finish()
        }))
    }

    /// One frame of each message a real handshake sends, proofs computed as `dial` and
    /// `accept` compute them.
    pub fn seed_frames() -> Vec<Vec<u8>> {
        let me = LocalIdentity {
            cluster_name: "Test Cluster".into(),
            secret: "s3cret".into(),
            host_id: Uuid::from_u128(0x5eed_0001),
            listen: ([127, 0, 0, 1], 7000).into(),
        };
        let dialer = Uuid::from_u128(0x5eed_0002);
        let (nonce_d, nonce_l) = ([0xd1; 32], [0x1e; 32]);
        let proof = |role, first, second| {
            let mac = mac(&me, role, first, second, dialer, me.host_id);
            mac.finalize().into_bytes().to_vec()
        };
        let mut frames: Vec<Vec<u8>> = [Channel::Gossip, Channel::Requests]
            .into_iter()
            .map(|channel| {
                frame_of(&Hello {
                    magic: MAGIC,
                    version: PROTOCOL_VERSION,
                    cluster_name: me.cluster_name.clone(),
                    host_id: dialer,
                    listen: "[::1]:7000".parse().expect("address"),
                    channel,
                    nonce: nonce_d,
                })
            })
            .collect();
        frames.push(frame_of(&Reply::Challenge {
            version: PROTOCOL_VERSION,
            host_id: me.host_id,
            listen: me.listen,
            nonce: nonce_l,
            proof: proof(Role::Listener, &nonce_d, &nonce_l),
        }));
        frames.push(frame_of(&Proof {
            proof: proof(Role::Dialer, &nonce_l, &nonce_d),
        }));
        frames.push(frame_of(&Reply::Welcome));
        frames.push(frame_of(&Reply::Refused {
            reason: "cluster name \"Other\" is not this node's \"Test Cluster\"".into(),
        }));
        frames
    }

    fn frame_of<T: Serialize>(message: &T) -> Vec<u8> {
        let mut out = BytesMut::new();
        frame::encode(message, MAX_HANDSHAKE_BYTES, &mut out).expect("a handshake message fits");
        out.to_vec()
    }
}
