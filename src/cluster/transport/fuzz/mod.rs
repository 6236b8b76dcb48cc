//! A mutation fuzzer for the internode decoders, in the manner of the CQL one
//! (`protocol/fuzz/`): stable Rust, no dependencies, run as the ordinary test
//! `fuzz_internode_one_million` (a million executions in `scripts/test.sh`).
//!
//! Seeds are whole frames (`seeds.rs`: one of every envelope, with payloads shaped like
//! real ones, and every handshake message), mutated with the classic tricks plus a few
//! aimed at postcard (varints of edge values written or inserted, counts nudged by one) and
//! at the frame (the length prefix set to edge values or fixed up to the body, frames
//! back to back). Each input goes, as a connection would receive it, through
//! `frame::decode::<Envelope>` at the default `max_message_bytes` and the least one the
//! configuration accepts, through the three handshake decoders (`handshake::fuzz_hook`),
//! and, for every `Request::Meta` / `Response::Meta` that decodes, through the metadata
//! log's own decoder of the body.
//!
//! Every input is fed twice: in one buffer, and cut into pieces at random points (now and
//! then byte by byte), as frames arrive from a socket. The contract checked on each decode
//! call: no panic (the guard prints the input); no more heap held at once than a constant
//! multiple of the bytes buffered plus a bounded constant (`alloc.rs` meters every
//! allocation, postcard's included); a call that needs more bytes consumes nothing and
//! one that yields a message consumes at least its header (so a connection never loops);
//! and both feeds yield the same messages and the same closing error.
//!
//! There is no coverage instrumentation; an input whose outcome (the decoders' results
//! and error kinds) was not seen before joins the corpus, which steers the mutations a
//! little deeper than blind mutation would go.

mod alloc;
mod seeds;

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::BytesMut;

use super::frame::{self, FrameError, HEADER_LEN};
use super::handshake::fuzz_hook;
use crate::cluster::message::{Envelope, Request, Response};
use crate::metadata::rpc::{self, MetaRequest, MetaResponse};
use crate::protocol::fuzz::{overwrite, splice, Rng};

/// The default `max_message_bytes` and the least the configuration accepts.
const LIMITS: [usize; 2] = [64 << 20, 64 << 10];
/// Heap a decode call may hold per byte buffered: the buffer growing (up to 4 bytes a byte
/// when it doubles), and a decoded value's structs against the bytes that describe them (a
/// row or cell write of 100-odd bytes in memory from as few as 4 bytes of postcard).
const ALLOC_PER_BYTE: usize = 64;
/// ... plus this much, whatever the input: serde preallocates a vector for the count the
/// bytes declare, up to 1 MiB (postcard passes a count only when the bytes left could hold
/// it), and vectors nest at most three deep in these messages (updates, rows, cells);
/// `frame::decode` reserves at most `frame::READ_AHEAD` for a body still to come.
const ALLOC_SLACK: usize = 4 << 20;
/// Mutated inputs are capped so one execution stays cheap.
const MAX_INPUT: usize = 64 << 10;
/// Corpus growth is capped so a long run does not turn into a memory test.
const MAX_CORPUS: usize = 4096;
/// Inputs up to this long are fed byte by byte one time in `BYTEWISE_ONE_IN` (a decode
/// call per byte per decoder is most of a run's time when done more often).
const BYTEWISE_INPUT: usize = 512;
const BYTEWISE_ONE_IN: usize = 32;

pub use seeds::all_seeds;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FuzzStats {
    /// Inputs fed through the decoders.
    pub executions: u64,
    /// Distinct outcome signatures seen.
    pub distinct_outcomes: usize,
    /// Envelopes decoded (whole feeds, both limits).
    pub envelopes: u64,
    /// Handshake messages decoded (whole feeds, all three decoders).
    pub handshakes: u64,
    /// Metadata log bodies decoded.
    pub meta_bodies: u64,
    /// The most heap one decode call held, in bytes.
    pub peak_alloc: usize,
    /// Size of the corpus at the end (seeds plus inputs that found new outcomes).
    pub corpus_size: usize,
}

/// One of `items`, drawn as [`Rng::pick`] draws.
fn pick<T: Copy + Default>(rng: &mut Rng, items: &[T]) -> T {
    rng.pick(items).copied().unwrap_or_default()
}

/// Mutates seeds `executions` times and decodes every result; a broken contract panics.
pub fn run(seeds: &[Vec<u8>], executions: u64, rng_seed: u64) -> FuzzStats {
    let mut rng = Rng::new(rng_seed);
    let mut corpus: Vec<Vec<u8>> = if seeds.is_empty() {
        vec![Vec::new()]
    } else {
        seeds.to_vec()
    };
    let mut seen = HashSet::new();
    let mut stats = FuzzStats::default();
    let mut input = Vec::new();
    for _ in 0..executions {
        input.clear();
        // Half the time from a pristine seed, so well-formed frames keep being explored
        // once the corpus fills with inputs that only reach error paths.
        let pool = if rng.below(2) == 0 {
            seeds.len().max(1)
        } else {
            corpus.len()
        };
        input.extend_from_slice(&corpus[rng.below(pool)]);
        mutate(&mut rng, &corpus, &mut input);
        while rng.below(3) == 0 {
            mutate(&mut rng, &corpus, &mut input);
        }
        let cuts = cuts(&mut rng, input.len());
        let outcome = {
            let _guard = PanicReport(&input, &cuts);
            execute(&input, &cuts)
        };
        stats.executions += 1;
        stats.envelopes += outcome.envelopes;
        stats.handshakes += outcome.handshakes;
        stats.meta_bodies += outcome.meta_bodies;
        stats.peak_alloc = stats.peak_alloc.max(outcome.peak_alloc);
        if seen.insert(outcome.signature) && corpus.len() < MAX_CORPUS {
            corpus.push(input.clone());
        }
    }
    stats.distinct_outcomes = seen.len();
    stats.corpus_size = corpus.len();
    stats
}

/// Where to cut an input of `len` bytes for the piecewise feed: a few random points, or
/// (for a short input, now and then) every byte.
fn cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    if len <= 1 {
        return Vec::new();
    }
    if len <= BYTEWISE_INPUT && rng.below(BYTEWISE_ONE_IN) == 0 {
        return (1..len).collect();
    }
    let mut cuts: Vec<usize> = (0..1 + rng.below(4))
        .map(|_| 1 + rng.below(len - 1))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Prints the offending input if a decoder panics, or a check fails, while it is alive.
struct PanicReport<'a>(&'a [u8], &'a [usize]);

impl Drop for PanicReport<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "fuzz: internode decoder failed on input {:02x?} (cut at {:?})",
                self.0, self.1
            );
        }
    }
}

/// The result of decoding one input every way a node does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Hash of every decoder's results and error kinds.
    pub signature: u64,
    /// Envelopes decoded (whole feed, both limits).
    pub envelopes: u64,
    /// Handshake messages decoded (whole feed, all three decoders).
    pub handshakes: u64,
    /// Metadata log bodies decoded.
    pub meta_bodies: u64,
    /// The most heap one decode call held, in bytes.
    pub peak_alloc: usize,
}

/// Feeds `input` whole and cut at `cuts` through every internode decoder, checking the
/// contract (module docs) on each call.
pub fn execute(input: &[u8], cuts: &[usize]) -> Outcome {
    let mut h = DefaultHasher::new();
    let mut outcome = Outcome::default();
    for max in LIMITS {
        let decode = |buf: &mut BytesMut| frame::decode::<Envelope>(buf, max);
        let whole = feed_both_ways(input, cuts, decode);
        outcome.envelopes += whole.messages.len() as u64;
        outcome.peak_alloc = outcome.peak_alloc.max(whole.peak_alloc);
        whole.hash_with(&mut h, envelope_shape);
        for envelope in &whole.messages {
            let (decoded, peak) = meta_body(envelope, &mut h);
            outcome.meta_bodies += u64::from(decoded);
            outcome.peak_alloc = outcome.peak_alloc.max(peak);
        }
    }
    for decode in fuzz_hook::DECODERS {
        let whole = feed_both_ways(input, cuts, decode);
        outcome.handshakes += whole.messages.len() as u64;
        outcome.peak_alloc = outcome.peak_alloc.max(whole.peak_alloc);
        whole.hash_with(&mut h, |_, _| {});
    }
    outcome.signature = h.finish();
    outcome
}

/// What a connection made of a byte stream: the messages in order, the error that closed
/// it (none if the stream just ended), and the bytes left over (a frame still incomplete).
#[derive(Debug, PartialEq)]
struct Transcript<T> {
    messages: Vec<T>,
    error: Option<FrameError>,
    leftover: usize,
    /// Not compared between feeds: the most heap one call held.
    peak_alloc: usize,
}

impl<T> Transcript<T> {
    fn hash_with(&self, h: &mut DefaultHasher, shape: impl Fn(&T, &mut DefaultHasher)) {
        // The first few messages' shapes: more says little, and keeps the corpus from
        // filling with repeats of one frame.
        self.messages.len().min(4).hash(h);
        self.messages.iter().take(4).for_each(|m| shape(m, h));
        // The error's kind and postcard's message (a fixed text per kind), not lengths.
        match &self.error {
            None => 0u8.hash(h),
            Some(FrameError::TooLarge { .. }) => 1u8.hash(h),
            Some(FrameError::Malformed(why)) => why.hash(h),
        }
        (self.leftover > 0).hash(h);
    }
}

/// The whole feed's transcript, after checking the piecewise feed's matches it.
fn feed_both_ways<T: PartialEq + std::fmt::Debug>(
    input: &[u8],
    cuts: &[usize],
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, FrameError>,
) -> Transcript<T> {
    let whole = feed(input, &[], &mut decode);
    if !cuts.is_empty() {
        let mut pieces = feed(input, cuts, &mut decode);
        pieces.peak_alloc = whole.peak_alloc;
        assert_eq!(
            pieces, whole,
            "a frame arriving in pieces decodes as it does whole"
        );
    }
    whole
}

/// Feeds `input` to `decode` as a connection does: the bytes up to each cut arrive, then
/// every whole frame is decoded, until one is incomplete or fails.
fn feed<T>(
    input: &[u8],
    cuts: &[usize],
    decode: &mut impl FnMut(&mut BytesMut) -> Result<Option<T>, FrameError>,
) -> Transcript<T> {
    let mut buf = BytesMut::new();
    let mut transcript = Transcript {
        messages: Vec::new(),
        error: None,
        leftover: 0,
        peak_alloc: 0,
    };
    let mut from = 0;
    for &to in cuts.iter().chain([input.len()].iter()) {
        buf.extend_from_slice(&input[from..to]);
        from = to;
        loop {
            let buffered = buf.len();
            let (result, peak) = alloc::measure(|| decode(&mut buf));
            check_alloc(peak, buffered);
            transcript.peak_alloc = transcript.peak_alloc.max(peak);
            match result {
                Ok(Some(message)) => {
                    assert!(
                        buf.len() + HEADER_LEN <= buffered,
                        "a decoded frame is consumed"
                    );
                    transcript.messages.push(message);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), buffered, "an incomplete frame is left whole");
                    break;
                }
                Err(error) => {
                    transcript.error = Some(error);
                    return transcript;
                }
            }
        }
    }
    transcript.leftover = buf.len();
    transcript
}

fn check_alloc(peak: usize, buffered: usize) {
    let bound = ALLOC_PER_BYTE * buffered + ALLOC_SLACK;
    assert!(
        peak <= bound,
        "a decode of {buffered} buffered bytes held {peak} heap bytes (bound {bound})"
    );
}

fn envelope_shape(envelope: &Envelope, h: &mut DefaultHasher) {
    std::mem::discriminant(envelope).hash(h);
    match envelope {
        Envelope::Request { request, .. } => std::mem::discriminant(request).hash(h),
        Envelope::Response { response, .. } => match response {
            Ok(response) => std::mem::discriminant(response).hash(h),
            Err(error) => std::mem::discriminant(error).hash(h),
        },
        Envelope::Gossip(gossip) => std::mem::discriminant(gossip).hash(h),
    }
}

/// Decodes a metadata log body the way its receiver does, if `envelope` carries one:
/// whether it decoded, and the most heap the decode held.
fn meta_body(envelope: &Envelope, h: &mut DefaultHasher) -> (bool, usize) {
    let (result, peak, len) = match envelope {
        Envelope::Request {
            request: Request::Meta(body),
            ..
        } => {
            let (result, peak) = alloc::measure(|| rpc::decode::<MetaRequest>(body));
            let result = result.map(|m| std::mem::discriminant(&m));
            (result.map(|d| d.hash(h)), peak, body.len())
        }
        Envelope::Response {
            response: Ok(Response::Meta(body)),
            ..
        } => {
            let (result, peak) = alloc::measure(|| rpc::decode::<MetaResponse>(body));
            let result = result.map(|m| std::mem::discriminant(&m));
            (result.map(|d| d.hash(h)), peak, body.len())
        }
        _ => return (false, 0),
    };
    check_alloc(peak, len);
    if let Err(why) = &result {
        why.hash(h);
    }
    (result.is_ok(), peak)
}

const INTERESTING_8: [u8; 7] = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff];
/// Counts, lengths and discriminants at the edges of what a varint holds.
const INTERESTING_VARINT: [u64; 13] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0x3fff,
    0x4000,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    i64::MAX as u64,
    u64::MAX,
];
/// Frame lengths around the limits: the handshake's, the least configurable, the default.
const INTERESTING_LEN: [u32; 12] = [
    0,
    1,
    4095,
    4096,
    4097,
    (64 << 10) - 1,
    64 << 10,
    (64 << 10) + 1,
    (64 << 20) - 1,
    64 << 20,
    (64 << 20) + 1,
    u32::MAX,
];

/// Applies one randomly chosen mutation.
fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    let len = input.len();
    let at = rng.below(len);
    match rng.below(13) {
        0 => {
            if let Some(b) = input.get_mut(at) {
                *b ^= 1 << rng.below(8);
            }
        }
        1 => {
            if let Some(b) = input.get_mut(at) {
                *b = pick(rng, &INTERESTING_8);
            }
        }
        2 => {
            let v = varint(pick(rng, &INTERESTING_VARINT));
            overwrite(input, at, &v);
        }
        3 => {
            let v = varint(pick(rng, &INTERESTING_VARINT));
            input.splice(at..at, v);
        }
        4 => input.truncate(at),
        5 => {
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
        }
        6 => {
            let end = (at + 1 + rng.below(32)).min(len);
            input.drain(at..end);
        }
        7 => splice(rng, corpus, input, at),
        8 => {
            let end = (at + 1 + rng.below(64)).min(len);
            let chunk = input.get(at..end).unwrap_or_default().to_vec();
            let to = rng.below(input.len() + 1);
            input.splice(to..to, chunk);
        }
        9 => overwrite(input, 0, &pick(rng, &INTERESTING_LEN).to_be_bytes()),
        10 => {
            // A second frame behind the first, as a busy connection delivers them.
            let other = &corpus[rng.below(corpus.len())];
            input.extend_from_slice(other);
        }
        11 => {
            // A count or discriminant off by one: the neighbours of valid values.
            if let Some(b) = input.get_mut(at) {
                *b = if rng.below(2) == 0 {
                    b.wrapping_add(1)
                } else {
                    b.wrapping_sub(1)
                };
            }
        }
        _ => fix_length(input),
    }
    input.truncate(MAX_INPUT);
    if rng.below(2) == 0 {
        fix_length(input);
    }
}

/// `v` as postcard writes integers: LEB128, seven bits a byte, low bits first.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// Sets the length prefix to the body actually present, so the body is decoded rather
/// than waited for.
fn fix_length(input: &mut [u8]) {
    if input.len() >= HEADER_LEN {
        let n = u32::try_from(input.len() - HEADER_LEN).unwrap_or(u32::MAX);
        input[..HEADER_LEN].copy_from_slice(&n.to_be_bytes());
    }
}

#[cfg(test)]
mod tests;
