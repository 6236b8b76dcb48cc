#!/usr/bin/env bash
# The cluster benchmark recorded in the README (issue 11), reproducible:
#
#   bash scripts/bench_cluster.sh                         # ~6 minutes after the release build
#   BENCH_SECS=5 PARTITIONS=5000 bash scripts/bench_cluster.sh   # a quicker look
#
# Side by side in one run on this machine (nodes and client share its two cores):
#   1. one node (127.0.40.1), the chat keyspace at RF 1: latest-20 history reads and writes;
#   2. three nodes (127.0.41.1-3, same ports, seeds 127.0.41.1), the chat keyspace at RF 3,
#      every request at QUORUM (the driver's default LOCAL_QUORUM is QUORUM in one data
#      centre): the same reads and writes, the driver token-aware (requests go straight to
#      a replica), then pinned to node 1 (every request coordinated there); and the reads
#      at ONE, token-aware (a replica answers from its own cache, as a single node does).
# Each phase prints throughput and latency (`ringcache bench`) and the CPU time all nodes
# used per operation (from /proc, measured around the phase), so a gain that only moved
# work between the two cores shows. Results as JSON in $OUT (default target/bench-cluster/).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RINGCACHE_ROOT"

SECS="${BENCH_SECS:-10}"
PARTITIONS="${PARTITIONS:-20000}"
OUT="${OUT:-$RINGCACHE_ROOT/target/bench-cluster}"
source "$RINGCACHE_ROOT/scripts/nodes.sh"
mkdir -p "$OUT"

# prepare CONTACT ARGS...: writes the data (and reads every partition once), unmeasured.
prepare() {
    local contact="$1"; shift
    "$BIN" bench --contact "$contact" --partitions "$PARTITIONS" --duration 1 --warmup 0 \
        --quiet --populate "$@" >/dev/null
}

# bench NAME CONTACT ARGS...: one measured run (a 1 s warm-up, the closed loop, the open
# loop at half its throughput), with the CPU all nodes used per operation over it. It
# starts once RocksDB on every node has flushed and compacted the writes before it
# (settle_storage): without that the first phase after a write-heavy one pays for its
# flushes and compactions (on two cores they took ~35 % of the CPU in a profile), and which
# phase came first decided the ratios.
bench() {
    local name="$1" contact="$2"; shift 2
    settle_storage "$NET" "$NODES"
    log "bench $name"
    local before after hz ops
    before="$(cpu_ticks)"
    # A phase with failed requests (timeouts under overload) is recorded, not fatal: its
    # errors are in the table.
    "$BIN" bench --contact "$contact" --partitions "$PARTITIONS" --duration "$SECS" \
        --warmup 1 --json "$OUT/$name.json" --quiet "$@" || log "bench $name: requests failed"
    after="$(cpu_ticks)"
    hz="$(getconf CLK_TCK)"
    ops="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["target"]; print(int(r["closed"]["ops"] + r["open"]["ops"]))' "$OUT/$name.json")"
    python3 -c 'import sys; t,h,o=map(float,sys.argv[1:4]); print(f"nodes CPU: {t/h:.1f} s, {1e6*t/h/max(o,1):.1f} us per operation")' \
        "$((after - before))" "$hz" "$ops" | tee "$OUT/$name.cpu"
}

NET=40 NODES=1
start_nodes "$NET" "$NODES"
prepare 127.0.40.1:9042 --workload latest --prewarm
bench single-latest 127.0.40.1:9042 --workload latest
bench single-write 127.0.40.1:9042 --workload write
stop_nodes

NET=41 NODES=3
start_nodes "$NET" "$NODES"
prepare 127.0.41.1:9042 --workload latest --prewarm --replication-factor 3
bench cluster-latest 127.0.41.1:9042 --workload latest
bench cluster-latest-pinned 127.0.41.1:9042 --workload latest --pin
bench cluster-latest-one 127.0.41.1:9042 --workload latest --consistency one
bench cluster-write 127.0.41.1:9042 --workload write
bench cluster-write-pinned 127.0.41.1:9042 --workload write --pin
stop_nodes

python3 - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
def load(name):
    r = json.load(open(os.path.join(out, name + ".json")))["target"]
    cpu = open(os.path.join(out, name + ".cpu")).read().split(",")[1].split()[0]
    errors = r["closed"]["errors"] + r["open"]["errors"]
    return r["closed"]["throughput"], r["open"]["p99_us"], cpu, errors
rows = [("single node, RF 1", "single"), ("3 nodes, RF 3, QUORUM, token-aware", "cluster"),
        ("3 nodes, RF 3, QUORUM, pinned to node 1", "cluster", "-pinned")]
print()
print(f"{'setup':44} {'workload':8} {'op/s':>9} {'ratio':>6} {'open p99 ms':>11} {'us CPU/op':>10} {'errors':>7}")
for workload in ("latest", "write"):
    base = load(f"single-{workload}")[0]
    extra = [("3 nodes, RF 3, ONE, token-aware", "cluster", "-one")] if workload == "latest" else []
    for label, prefix, *suffix in rows + extra:
        name = f"{prefix}-{workload}{suffix[0] if suffix else ''}"
        tput, p99, cpu, errors = load(name)
        print(f"{label:44} {workload:8} {tput:9.0f} {tput / base:6.2f} {p99 / 1000:11.2f} {cpu:>10} {errors:>7}")
EOF
