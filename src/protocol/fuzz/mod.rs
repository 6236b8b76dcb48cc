//! A small mutation fuzzer for the frame and message decoders, on stable Rust.
//!
//! cargo-fuzz needs nightly, which our machines lack, so this is the fuzzer: seeds are
//! whole frames (captured from real drivers in `tests/fuzz/seeds/*.bin`, plus frames our
//! own encoders produce), mutated with the classic tricks (bit flips, interesting bytes,
//! lengths set to huge or negative values, truncation, insertion, splicing, re-compressing
//! a mutated body) and pushed through every decoder the server and our clients use. It
//! runs in-process: a panic anywhere fails the calling test, and the guard below prints
//! the input that caused it.
//!
//! There is no coverage instrumentation; inputs that produce an outcome (a combination of
//! decoder results and error kinds) not seen before join the corpus, which steers the
//! mutations a little deeper than blind mutation would go.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::Path;

use bytes::{Bytes, BytesMut};

use super::codec::{
    decode_request_body, decode_response_frame_full, encode_request_frame, encode_response_frame,
};
use super::compression::Compression;
use super::frame::{decode_header, flags, Opcode};
use super::types::DataType;
use super::wire::Reader;
use super::{ProtocolError, Response, HEADER_LEN};

mod seeds;

pub use seeds::{generated_seeds, load_seed_dir};

/// The server's default frame limit, and a small one so the size check is exercised too.
const MAX_BODIES: [usize; 2] = [16 << 20, 256];
/// Mutated inputs are capped so one execution stays cheap.
const MAX_INPUT: usize = 64 << 10;
/// Corpus growth is capped so a long run does not turn into a memory test.
const MAX_CORPUS: usize = 4096;
const COMPRESSIONS: [Option<Compression>; 3] =
    [None, Some(Compression::Lz4), Some(Compression::Snappy)];

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FuzzStats {
    /// Inputs fed through the decoders.
    pub executions: u64,
    /// Distinct outcome signatures seen.
    pub distinct_outcomes: usize,
    /// Executions in which a request decoded successfully.
    pub requests_decoded: u64,
    /// Executions in which a response frame decoded successfully.
    pub responses_decoded: u64,
    /// Size of the corpus at the end (seeds plus inputs that found new outcomes).
    pub corpus_size: usize,
}

/// Xorshift64*: tiny, deterministic, good enough to pick mutations (the internode fuzzer
/// uses it too).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Mutates seeds `executions` times and decodes every result; panics propagate.
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
        // Half the time start from a pristine seed, so well-formed frames keep being
        // explored once the corpus fills with inputs that only reach error paths.
        let pool = if rng.below(2) == 0 {
            seeds.len().max(1)
        } else {
            corpus.len()
        };
        input.extend_from_slice(corpus.get(rng.below(pool)).map_or(&[][..], Vec::as_slice));
        // Mostly one mutation, sometimes a stack: small steps keep inputs decodable.
        mutate(&mut rng, &corpus, &mut input);
        while rng.below(3) == 0 {
            mutate(&mut rng, &corpus, &mut input);
        }
        let outcome = {
            let _guard = PanicReport(&input);
            execute(&input)
        };
        stats.executions += 1;
        stats.requests_decoded += u64::from(outcome.request_ok);
        stats.responses_decoded += u64::from(outcome.response_ok);
        if seen.insert(outcome.signature) && corpus.len() < MAX_CORPUS {
            corpus.push(input.clone());
        }
    }
    stats.distinct_outcomes = seen.len();
    stats.corpus_size = corpus.len();
    stats
}

/// Prints the offending input if a decoder panics while it is alive.
struct PanicReport<'a>(&'a [u8]);

impl Drop for PanicReport<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("fuzz: decoder panicked on input {:02x?}", self.0);
        }
    }
}

/// The result of decoding one input every way we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Hash of every decoder's result kind.
    pub signature: u64,
    pub request_ok: bool,
    pub response_ok: bool,
}

/// Feeds one input through the server path (header check, then body decode with each
/// compression) and the client path (response frames, bare types).
pub fn execute(input: &[u8]) -> Outcome {
    let mut h = DefaultHasher::new();
    let mut request_ok = false;
    for max in MAX_BODIES {
        request_ok |= server_path(input, max, &mut h);
    }
    let response_ok = client_path(input, &mut h);
    let rest = Bytes::copy_from_slice(input.get(HEADER_LEN..).unwrap_or_default());
    hash_result(
        &DataType::decode(&mut Reader::new(rest)).map(|_| ()),
        &mut h,
    );
    Outcome {
        signature: h.finish(),
        request_ok,
        response_ok,
    }
}

/// The compressions worth trying: all three when the body claims to be compressed,
/// otherwise the argument is never consulted and one pass suffices.
fn compressions_for(frame_flags: u8) -> &'static [Option<Compression>] {
    if frame_flags & flags::COMPRESSION != 0 {
        &COMPRESSIONS
    } else {
        &COMPRESSIONS[..1]
    }
}

fn server_path(input: &[u8], max: usize, h: &mut DefaultHasher) -> bool {
    let header = match decode_header(input, max) {
        Ok(Some(header)) => header,
        Ok(None) => return hash_tag(1, h),
        Err(e) => {
            std::mem::discriminant(&e).hash(h);
            return false;
        }
    };
    // A server only decodes once the declared length is buffered; decode what is here
    // anyway, since the decoders must cope with any body.
    let end = input.len().min(HEADER_LEN + header.length as usize);
    let body = Bytes::copy_from_slice(input.get(HEADER_LEN..end).unwrap_or_default());
    let mut ok = false;
    for c in compressions_for(header.flags) {
        let result = decode_request_body(&header, body.clone(), *c, max);
        if let Ok(request) = &result {
            std::mem::discriminant(request).hash(h);
            ok = true;
        }
        hash_result(&result.map(|_| ()), h);
    }
    ok
}

fn client_path(input: &[u8], h: &mut DefaultHasher) -> bool {
    let flags_byte = input.get(1).copied().unwrap_or(0);
    let mut ok = false;
    for c in compressions_for(flags_byte) {
        let mut buf = BytesMut::from(input);
        let result = decode_response_frame_full(&mut buf, *c);
        ok |= matches!(result, Ok(Some(_)));
        hash_result(
            &result.map(|f| f.map(|f| std::mem::discriminant(&f.response))),
            h,
        );
    }
    // Bare message decoding regardless of the header's version byte.
    if let (Some(op), Some(body)) = (
        input.get(4).copied().and_then(Opcode::from_u8),
        input.get(HEADER_LEN..),
    ) {
        let result = Response::decode(op, Bytes::copy_from_slice(body));
        ok |= result.is_ok();
        hash_result(&result.map(|r| std::mem::discriminant(&r)), h);
    }
    ok
}

fn hash_tag(tag: u8, h: &mut DefaultHasher) -> bool {
    tag.hash(h);
    false
}

fn hash_result<T: Hash>(result: &Result<T, ProtocolError>, h: &mut DefaultHasher) {
    match result {
        Ok(v) => {
            0u8.hash(h);
            v.hash(h);
        }
        Err(e) => {
            std::mem::discriminant(e).hash(h);
            // Where a read ran out says more about how deep the input got than the kind.
            if let ProtocolError::Truncated { what } | ProtocolError::TrailingBytes(what) = e {
                what.hash(h);
            }
        }
    }
}

const INTERESTING_8: [u8; 6] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_16: [u16; 6] = [0x0000, 0x0001, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_32: [u32; 9] = [
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0xffff_fffe,
    0xffff_fffd,
    0x00ff_ffff,
    0x0100_0000,
];

/// Applies one randomly chosen mutation.
fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    let len = input.len();
    let at = rng.below(len);
    match rng.below(12) {
        0 => {
            if let Some(b) = input.get_mut(at) {
                *b ^= 1 << rng.below(8);
            }
        }
        1 => {
            if let (Some(b), Some(v)) = (input.get_mut(at), rng.pick(&INTERESTING_8)) {
                *b = *v;
            }
        }
        2 => overwrite(
            input,
            at,
            &rng.pick(&INTERESTING_16)
                .copied()
                .unwrap_or(0)
                .to_be_bytes(),
        ),
        3 => overwrite(
            input,
            at,
            &rng.pick(&INTERESTING_32)
                .copied()
                .unwrap_or(0)
                .to_be_bytes(),
        ),
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
        9 => mutate_header(rng, input),
        10 => recompress(rng, input),
        _ => fix_length(input),
    }
    input.truncate(MAX_INPUT);
    if rng.below(2) == 0 {
        fix_length(input);
    }
}

pub(crate) fn overwrite(input: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = input.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// This input's prefix followed by another corpus entry's suffix.
pub(crate) fn splice(rng: &mut Rng, corpus: &[Vec<u8>], input: &mut Vec<u8>, at: usize) {
    if let Some(other) = rng.pick(corpus) {
        let from = rng.below(other.len());
        input.truncate(at);
        input.extend_from_slice(other.get(from..).unwrap_or_default());
    }
}

/// Header fields the decoders branch on: version, flags, opcode.
fn mutate_header(rng: &mut Rng, input: &mut [u8]) {
    const VERSIONS: [u8; 8] = [0x04, 0x84, 0x03, 0x05, 0x41, 0x42, 0x00, 0xff];
    const FLAGS: [u8; 7] = [0x00, 0x01, 0x02, 0x04, 0x08, 0x0f, 0xff];
    let field = rng.below(3);
    let (at, value) = match field {
        0 => (0, rng.pick(&VERSIONS).copied().unwrap_or(4)),
        1 => (1, rng.pick(&FLAGS).copied().unwrap_or(0)),
        _ => (4, rng.below(0x12) as u8),
    };
    if let Some(b) = input.get_mut(at) {
        *b = value;
    }
}

/// Compresses the (mutated) body and sets flag 0x01, so mutations reach the message
/// decoders through the decompression path too.
fn recompress(rng: &mut Rng, input: &mut Vec<u8>) {
    if input.len() < HEADER_LEN {
        return;
    }
    let c = if rng.below(2) == 0 {
        Compression::Lz4
    } else {
        Compression::Snappy
    };
    let packed = c.compress(&input[HEADER_LEN..]);
    input.truncate(HEADER_LEN);
    input.extend_from_slice(&packed);
    input[1] |= flags::COMPRESSION;
}

/// Sets the header's length to the body actually present.
fn fix_length(input: &mut [u8]) {
    if input.len() >= HEADER_LEN {
        let n = u32::try_from(input.len() - HEADER_LEN).unwrap_or(u32::MAX);
        input[5..9].copy_from_slice(&n.to_be_bytes());
    }
}

/// Encodes `request` as a frame (for seeds).
fn request_frame(request: &super::Request, stream: i16, c: Option<Compression>) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_request_frame(&mut out, stream, request, c);
    out.to_vec()
}

/// Encodes `response` as a frame (for seeds).
fn response_frame(response: &Response, warnings: &[String], c: Option<Compression>) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_response_frame(&mut out, 1, response, warnings, c);
    out.to_vec()
}

/// Loads `tests/fuzz/seeds` of this crate plus the generated seeds.
pub fn all_seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds");
    let mut seeds = load_seed_dir(&dir);
    seeds.extend(generated_seeds());
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_decoders_one_million() {
        let executions = std::env::var("RINGCACHE_FUZZ_EXECS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(20_000u64);
        let seeds = all_seeds();
        let started = std::time::Instant::now();
        let stats = run(&seeds, executions, 0x5eed_cafe);
        eprintln!(
            "fuzz: {} executions, {} distinct outcomes, 0 panics ({} seeds, corpus {}, {} requests and {} responses decoded, {:.1?})",
            stats.executions,
            stats.distinct_outcomes,
            seeds.len(),
            stats.corpus_size,
            stats.requests_decoded,
            stats.responses_decoded,
            started.elapsed()
        );
        assert_eq!(stats.executions, executions);
        assert!(stats.requests_decoded > 0 && stats.responses_decoded > 0);
    }

    #[test]
    fn every_generated_seed_decodes_cleanly() {
        for seed in generated_seeds() {
            let outcome = execute(&seed);
            assert!(
                outcome.request_ok || outcome.response_ok,
                "seed {seed:02x?} decodes nowhere"
            );
        }
    }

    #[test]
    fn runs_are_deterministic() {
        let seeds = generated_seeds();
        assert_eq!(run(&seeds, 2000, 7), run(&seeds, 2000, 7));
    }
}
