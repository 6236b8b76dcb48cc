#!/usr/bin/env bash
# The replica cache benchmark recorded in the README (issue 6), reproducible:
#
#   bash scripts/bench_cache.sh            # ~10 minutes after the release build
#   BENCH_SECS=5 PARTITIONS=20000 bash scripts/bench_cache.sh   # a quicker look
#   CACHE_BYTES=268435456 bash scripts/bench_cache.sh            # the default 256 MiB cache
#
# One release node with the embedded store, data written once, then measured
# with `ringcache bench` on this same machine (client and server share its
# cores):
#   1. cache on (CACHE_BYTES, default 2 GiB: every partition's latest-20 fits; about
#                 12 KB each as the weigher counts them), every partition read once first
#                 (--prewarm), then Zipf latest-20 history reads over PARTITIONS chat partitions,
#                 closed loop at concurrency 64, then open loop at half that
#                 throughput; the bare responder in front of the node in the
#                 same run (--baseline, its open loop at the same rate), and the ratio.
#   2. cache on:  the same reads mixed with writes to the same threads (--workload mix).
#   3. the node restarted on the same data with the cache off
#      (RINGCACHE_CACHE__ENABLED=false), and 1 and 2 again.
#   4. `ringcache chat load` (its own mix: logins, follows, posts, history,
#      catch-up, every write verified) against the cache-on and cache-off node.
#   5. cold: the node restarted with the default 256 MiB cache and nothing read
#      yet, latest-20 reads for COLD_SECS (default 60) with no prewarm, and the
#      hit ratio the node counted over that minute; then the same against the
#      cache-off node.
# BENCH_NODE_BIN=path runs that binary as the node (the benchmark client is still
# target/release/ringcache), to measure two builds of the node with one client.
# Before each measured phase the node flushes its memory table and the script waits until
# no flush or compaction runs (settle_metrics, scripts/lib.sh).
# Results go to stdout and, as JSON, to $OUT (default target/bench-cache/).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RINGCACHE_ROOT"

SECS="${BENCH_SECS:-10}"
PARTITIONS="${PARTITIONS:-100000}"
CACHE_BYTES="${CACHE_BYTES:-2147483648}"
OUT="${OUT:-$RINGCACHE_ROOT/target/bench-cache}"
COLD_SECS="${COLD_SECS:-60}"
BIN="$RINGCACHE_ROOT/target/release/ringcache"
NODE_BIN="${BENCH_NODE_BIN:-$BIN}"

ensure_build_packages
cargo build --release --bin ringcache
mkdir -p "$OUT"
WORK="$(mktemp -d)"
NODE_PID=""

stop_node() {
    if [ -n "$NODE_PID" ]; then
        kill -TERM "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
        NODE_PID=""
    fi
}
trap 'stop_node; rm -rf "$WORK"' EXIT

# start_node [ENV=VALUE...]: a node on ephemeral loopback ports over $WORK/data.
start_node() {
    rm -f "$WORK/ready.json"
    env "$@" RINGCACHE_LOG=warn "$NODE_BIN" serve --listen-address 127.0.0.1 \
        --cql-port 0 --metrics-port 0 --data-dir "$WORK/data" \
        --ready-file "$WORK/ready.json" >"$WORK/node.log" 2>&1 &
    NODE_PID=$!
    for _ in $(seq 1 300); do
        [ -s "$WORK/ready.json" ] && break
        sleep 0.1
    done
    CQL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cql"])' "$WORK/ready.json")"
    METRICS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metrics"])' "$WORK/ready.json")"
    log "node up: CQL $CQL, metrics $METRICS ($*)"
}

cache_line() {
    curl -s "http://$METRICS/metrics" | grep -E '^ringcache_cache_(hits|misses|coalesced|stale|rows_reused)_total\{keyspace="chat",table="messages_by_thread"|^ringcache_cache_(bytes|entries) |^ringcache_(heap_allocated|process_resident)_bytes' || true
}

bench() {
    local name="$1"; shift
    # Every phase but the populating one starts with the writes before it flushed and
    # compacted (their background work otherwise lands in whichever phase comes next).
    [ "$name" = populate ] || settle_metrics "$METRICS"
    log "bench $name"
    "$BIN" bench --contact "$CQL" --metrics "$METRICS" --partitions "$PARTITIONS" \
        --json "$OUT/$name.json" --quiet "$@"
    cache_line
}

chat_load() {
    local name="$1"
    log "chat load $name"
    "$BIN" chat --contact "$CQL" load --users 1000 --threads 2000 --rate 0 \
        --concurrency 64 --duration "$SECS" --read-share 0.8 2>/dev/null | tee "$OUT/$name.txt"
}

start_node RINGCACHE_CACHE__CAPACITY_BYTES="$CACHE_BYTES"
bench populate --populate --duration 1 --warmup 0 >/dev/null
bench latest-cache-on --duration "$SECS" --prewarm --baseline
bench mix-cache-on --duration "$SECS" --workload mix --baseline
chat_load chat-load-cache-on
stop_node

start_node RINGCACHE_CACHE__ENABLED=false
bench latest-cache-off --duration "$SECS" --prewarm
bench mix-cache-off --duration "$SECS" --workload mix
chat_load chat-load-cache-off
stop_node

# The first minute of a cold node: default capacity, nothing read before, the
# closed loop alone (its hits and misses are the node's counters after it).
start_node
bench cold-cache-on --duration "$COLD_SECS" --warmup 0 --rate-fraction 0
stop_node
start_node RINGCACHE_CACHE__ENABLED=false
bench cold-cache-off --duration "$COLD_SECS" --warmup 0 --rate-fraction 0
stop_node
log "JSON results in $OUT"
