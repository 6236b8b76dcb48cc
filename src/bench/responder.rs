//! The bare responder: the limit this machine sets for a workload, measured in the same run.
//!
//! A benchmark of a server says little until it is set against what the same client, the
//! same runtime and the same frame handling achieve with no server work at all. The bare
//! responder is that: it reads request frames with the server's own header codec and
//! answers each with a reply it already holds, patched with the request's stream id, and
//! writes every reply of a read turn in one write, as the server's per-turn flush does.
//!
//! It works in one of two ways:
//!
//! - **Canned** ([`Responder::canned`]): every frame gets the same reply. Enough for the
//!   connection-layer benchmark (`benches/hotpath.rs`), whose raw client sends one kind of
//!   request.
//! - **Replaying** ([`Responder::replaying`]): a real driver cannot be answered with one
//!   canned frame — its handshake, topology and schema queries and PREPAREs need real
//!   answers. So the responder sits in front of a real node and forwards every frame, until
//!   it is armed: from then on an EXECUTE of a prepared id it has seen answered once is
//!   answered with that recorded reply (same size, same rows) and never reaches the node.
//!   Everything else is still forwarded. `ringcache bench --baseline` points the driver at
//!   it, runs one request of each kind through it, arms it and measures.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::protocol::{FrameHeader, Opcode, HEADER_LEN};

/// Frames larger than this are not parsed, only forwarded (a responder is no validator).
const MAX_FRAME: usize = 256 << 20;
/// The body of an uncompressed v4 frame carries no flags of its own: bit 0 of the header
/// flags says compressed, and then the body cannot be read for an EXECUTE id.
const COMPRESSED: u8 = 0x01;

/// A bare responder listening on loopback. Stops when dropped.
pub struct Responder {
    /// Where clients connect.
    pub addr: SocketAddr,
    replies: Arc<Replies>,
    task: JoinHandle<()>,
}

/// What the responder answers with.
#[derive(Default)]
struct Replies {
    /// Canned mode: the reply to every frame.
    canned: Option<Bytes>,
    /// Replaying mode: the node behind the responder.
    upstream: Option<SocketAddr>,
    /// Replaying mode: once set, known EXECUTEs are answered from `recorded`.
    armed: AtomicBool,
    /// The first reply seen for each prepared id, whole frame.
    recorded: Mutex<HashMap<Bytes, Bytes>>,
}

impl Responder {
    /// Answers every request frame with `reply` (its stream id replaced).
    pub async fn canned(reply: Bytes) -> std::io::Result<Responder> {
        let replies = Replies {
            canned: Some(reply),
            ..Replies::default()
        };
        Responder::start(replies).await
    }

    /// Forwards to `upstream`, recording the reply to each prepared id's first EXECUTE;
    /// once [`Responder::arm`]ed, answers known EXECUTEs from the recording.
    pub async fn replaying(upstream: SocketAddr) -> std::io::Result<Responder> {
        let replies = Replies {
            upstream: Some(upstream),
            ..Replies::default()
        };
        Responder::start(replies).await
    }

    async fn start(replies: Replies) -> std::io::Result<Responder> {
        // On the upstream's address (another port): the driver takes the node's address
        // from the `system.local` the responder forwards, and must find the responder there.
        let ip = replies
            .upstream
            .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |u| u.ip());
        let listener = TcpListener::bind((ip, 0)).await?;
        let addr = listener.local_addr()?;
        let replies = Arc::new(replies);
        let shared = replies.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                let replies = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, replies).await;
                });
            }
        });
        Ok(Responder {
            addr,
            replies,
            task,
        })
    }

    /// From now on, answer EXECUTEs of recorded ids without the node.
    pub fn arm(&self) {
        self.replies.armed.store(true, Ordering::SeqCst);
    }

    /// Prepared ids with a recorded reply, and those replies' sizes in bytes.
    pub fn recorded(&self) -> Vec<usize> {
        let recorded = self.replies.recorded.lock();
        let recorded = recorded.unwrap_or_else(|p| p.into_inner());
        recorded.values().map(Bytes::len).collect()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: TcpStream, replies: Arc<Replies>) -> std::io::Result<()> {
    match replies.upstream {
        None => serve_canned(socket, &replies).await,
        Some(upstream) => serve_replaying(socket, upstream, replies).await,
    }
}

async fn serve_canned(mut socket: TcpStream, replies: &Replies) -> std::io::Result<()> {
    let reply = replies.canned.clone().unwrap_or_default();
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        if socket.read_buf(&mut inbuf).await? == 0 {
            return Ok(());
        }
        while let Some(frame) = next_frame(&mut inbuf) {
            let header = FrameHeader::parse(&frame).unwrap_or_else(empty_header);
            push_reply(&mut out, &reply, header.stream);
        }
        socket.write_all(&out).await?;
        out.clear();
    }
}

/// Client → node: forwards each frame, or answers it from the recording when armed.
/// Node → client runs in its own task; both write the client socket through one channel.
async fn serve_replaying(
    socket: TcpStream,
    upstream: SocketAddr,
    replies: Arc<Replies>,
) -> std::io::Result<()> {
    let node = TcpStream::connect(upstream).await?;
    node.set_nodelay(true)?;
    let (mut client_rd, mut client_wr) = socket.into_split();
    let (mut node_rd, mut node_wr) = node.into_split();
    let (to_client, mut outbox) = mpsc::unbounded_channel::<Bytes>();
    // Ids of EXECUTEs in flight to the node, by stream, to record their replies.
    let pending: Arc<Mutex<HashMap<i16, Bytes>>> = Arc::default();
    let writer = tokio::spawn(async move {
        while let Some(first) = outbox.recv().await {
            // Replies ready together go out in one write, as the server flushes per turn.
            let bytes = match outbox.try_recv() {
                Err(_) => first,
                Ok(second) => {
                    let mut batch = BytesMut::from(&first[..]);
                    batch.extend_from_slice(&second);
                    while let Ok(more) = outbox.try_recv() {
                        batch.extend_from_slice(&more);
                    }
                    batch.freeze()
                }
            };
            if client_wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let relay = {
        let (replies, pending, to_client) = (replies.clone(), pending.clone(), to_client.clone());
        tokio::spawn(async move {
            let mut inbuf = BytesMut::with_capacity(64 * 1024);
            while node_rd.read_buf(&mut inbuf).await.unwrap_or(0) > 0 {
                while let Some(frame) = next_frame(&mut inbuf) {
                    replies.record(&pending, &frame);
                    if to_client.send(frame).is_err() {
                        return;
                    }
                }
            }
        })
    };
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut forward = BytesMut::with_capacity(64 * 1024);
    let mut answered = BytesMut::with_capacity(64 * 1024);
    while client_rd.read_buf(&mut inbuf).await? > 0 {
        while let Some(frame) = next_frame(&mut inbuf) {
            let header = FrameHeader::parse(&frame).unwrap_or_else(empty_header);
            match replies.answer(&header, &frame, &pending) {
                Some(reply) => push_reply(&mut answered, &reply, header.stream),
                None => forward.extend_from_slice(&frame),
            }
        }
        if !answered.is_empty() && to_client.send(answered.split().freeze()).is_err() {
            break;
        }
        if !forward.is_empty() {
            node_wr.write_all(&forward).await?;
            forward.clear();
        }
    }
    relay.abort();
    writer.abort();
    Ok(())
}

impl Replies {
    /// The recorded reply to `frame` if armed and known; otherwise notes an EXECUTE's id so
    /// its reply is recorded, and returns None (forward it).
    fn answer(
        &self,
        header: &FrameHeader,
        frame: &Bytes,
        pending: &Mutex<HashMap<i16, Bytes>>,
    ) -> Option<Bytes> {
        let id = execute_id(header, frame)?;
        if self.armed.load(Ordering::Relaxed) {
            let recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(reply) = recorded.get(&id) {
                return Some(reply.clone());
            }
        }
        let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.insert(header.stream, id);
        None
    }

    /// Records `frame` as the reply to the EXECUTE in flight on its stream, the first time.
    fn record(&self, pending: &Mutex<HashMap<i16, Bytes>>, frame: &Bytes) {
        let Some(header) = FrameHeader::parse(frame) else {
            return;
        };
        let id = {
            let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.remove(&header.stream)
        };
        let Some(id) = id else { return };
        if header.opcode != Opcode::Result as u8 {
            return;
        }
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        recorded.entry(id).or_insert_with(|| frame.clone());
    }
}

/// The prepared id of an uncompressed EXECUTE frame (its body opens with `[short bytes]`).
fn execute_id(header: &FrameHeader, frame: &Bytes) -> Option<Bytes> {
    if header.opcode != Opcode::Execute as u8 || header.flags & COMPRESSED != 0 {
        return None;
    }
    let body = frame.get(HEADER_LEN..)?;
    let len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    body.get(2..2 + len)
        .map(|id| frame.slice_ref(id))
        .filter(|id| !id.is_empty())
}

/// Splits one whole frame off the front of `buf`, if one is buffered.
fn next_frame(buf: &mut BytesMut) -> Option<Bytes> {
    let header = FrameHeader::parse(buf)?;
    let total = HEADER_LEN + (header.length as usize).min(MAX_FRAME);
    (buf.len() >= total).then(|| buf.split_to(total).freeze())
}

/// Appends `reply` with its stream id set to `stream`.
fn push_reply(out: &mut BytesMut, reply: &[u8], stream: i16) {
    let start = out.len();
    out.extend_from_slice(reply);
    if out.len() >= start + 4 {
        out[start + 2..start + 4].copy_from_slice(&stream.to_be_bytes());
    }
}

fn empty_header() -> FrameHeader {
    FrameHeader {
        version: 0,
        flags: 0,
        stream: 0,
        opcode: 0,
        length: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execute_frame_yields_its_prepared_id() {
        let mut frame = vec![4, 0, 0, 7, Opcode::Execute as u8, 0, 0, 0, 6];
        frame.extend_from_slice(&[0, 2, 0xAB, 0xCD, 0, 1]);
        let frame = Bytes::from(frame);
        let header = FrameHeader::parse(&frame).expect("header");
        assert_eq!(
            execute_id(&header, &frame).as_deref(),
            Some(&[0xAB, 0xCD][..])
        );
        let mut compressed = header;
        compressed.flags = COMPRESSED;
        assert_eq!(execute_id(&compressed, &frame), None);
    }

    #[test]
    fn frames_are_split_only_when_whole_and_replies_take_the_stream() {
        let mut buf = BytesMut::from(&[4u8, 0, 0, 1, 5, 0, 0, 0, 2, 9][..]);
        assert!(next_frame(&mut buf).is_none());
        buf.extend_from_slice(&[9, 4]);
        let frame = next_frame(&mut buf).expect("frame");
        assert_eq!(frame.len(), 11);
        assert_eq!(&buf[..], &[4]);
        let mut out = BytesMut::new();
        push_reply(&mut out, &frame, -3);
        assert_eq!(&out[2..4], &(-3i16).to_be_bytes());
    }
}
