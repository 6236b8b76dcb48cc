use super::*;

#[test]
fn fuzz_internode_one_million() {
    let executions = std::env::var("RINGCACHE_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(20_000u64);
    let seeds = all_seeds();
    let started = std::time::Instant::now();
    let stats = run(&seeds, executions, 0x1a7e_40de);
    eprintln!(
        "fuzz (internode): {} executions, {} distinct outcomes, 0 panics ({} seeds, corpus {}, \
         {} envelopes, {} handshake messages and {} metadata log bodies decoded, at most {} \
         heap bytes held by one decode, {:.1?})",
        stats.executions,
        stats.distinct_outcomes,
        seeds.len(),
        stats.corpus_size,
        stats.envelopes,
        stats.handshakes,
        stats.meta_bodies,
        stats.peak_alloc,
        started.elapsed()
    );
    assert_eq!(stats.executions, executions);
    assert!(stats.envelopes > 0 && stats.handshakes > 0 && stats.meta_bodies > 0);
}

#[test]
fn every_envelope_seed_decodes_to_itself() {
    let mut meta_bodies = 0;
    for envelope in seeds::envelopes() {
        let frame = seeds::frame_of(&envelope);
        // The header apart, then the body in two.
        let mut cuts = vec![HEADER_LEN, (HEADER_LEN + frame.len()) / 2];
        cuts.dedup();
        let outcome = execute(&frame, &cuts);
        assert_eq!(outcome.envelopes, LIMITS.len() as u64, "{envelope:?}");
        meta_bodies += outcome.meta_bodies;
        let decoded = frame::decode::<Envelope>(&mut BytesMut::from(&frame[..]), LIMITS[0]);
        assert_eq!(decoded, Ok(Some(envelope)));
    }
    // Every Request::Meta and Response::Meta seed, under both limits.
    assert_eq!(meta_bodies, 2 * 16);
}

#[test]
fn every_handshake_seed_decodes() {
    for frame in fuzz_hook::seed_frames() {
        let outcome = execute(&frame, &[1]);
        assert!(
            outcome.handshakes > 0,
            "{frame:02x?} decodes as no handshake message"
        );
    }
}

#[test]
fn runs_are_deterministic() {
    let seeds = all_seeds();
    assert_eq!(run(&seeds, 500, 7), run(&seeds, 500, 7));
}
