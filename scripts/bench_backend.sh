#!/usr/bin/env bash
# The CQL backend benchmark recorded in the README (issue 14), reproducible:
#
#   bash scripts/bench_backend.sh          # ~3 minutes after the release build
#   BENCH_SECS=5 bash scripts/bench_backend.sh
#
# No ScyllaDB or Cassandra can be installed where this is measured, so the backend is a
# ringcache node on the embedded store (127.0.44.1), which the front reaches only over
# CQL, with its own replica cache on as ScyllaDB has its row cache. The front is one
# ringcache node with [backend] engine = "cql" (127.0.45.1). Side by side in one run, for
# latest-20 chat reads (Zipf over PARTITIONS threads, prepared, concurrency 64) and for
# writes:
#   1. direct:  the application straight to the backend;
#   2. front:   the same through the front (pass-through: the front has no cache yet).
# Each phase prints closed-loop op/s, the open-loop p99 at half that rate, and the CPU per
# operation of the backend and of the front separately (from /proc): on two cores shared by
# client, front and backend, a front's throughput cost is mostly the CPU it takes from the
# backend.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RINGCACHE_ROOT"

SECS="${BENCH_SECS:-10}"
PARTITIONS="${PARTITIONS:-20000}"
OUT="${OUT:-$RINGCACHE_ROOT/target/bench-backend}"
source "$RINGCACHE_ROOT/scripts/nodes.sh"
mkdir -p "$OUT"

# net_ticks NET: CPU ticks (user + system) of the nodes of NET.
net_ticks() {
    local total=0 key t
    for key in "${!NODE_PIDS[@]}"; do
        [[ "$key" == "$1".* ]] || continue
        t="$(awk '{print $14 + $15}' "/proc/${NODE_PIDS[$key]}/stat" 2>/dev/null || echo 0)"
        total=$((total + t))
    done
    echo "$total"
}

bench() {
    local name="$1" contact="$2"; shift 2
    settle_storage 44 1
    log "bench $name"
    local backend_before front_before backend_after front_after
    backend_before="$(net_ticks 44)"
    front_before="$(net_ticks 45)"
    "$BIN" bench --contact "$contact" --partitions "$PARTITIONS" --duration "$SECS" \
        --warmup 1 --json "$OUT/$name.json" --quiet "$@" || log "bench $name: requests failed"
    backend_after="$(net_ticks 44)"
    front_after="$(net_ticks 45)"
    echo "$((backend_after - backend_before)) $((front_after - front_before)) $(getconf CLK_TCK)" \
        >"$OUT/$name.cpu"
}

start_nodes 44 1
"$BIN" bench --contact 127.0.44.1:9042 --partitions "$PARTITIONS" --duration 1 --warmup 0 \
    --quiet --populate --workload latest --prewarm >/dev/null
NODE_ENV=(RINGCACHE_BACKEND__ENGINE=cql RINGCACHE_BACKEND__CONTACT_POINTS=127.0.44.1:9042)
start_nodes 45 1

for workload in latest write; do
    bench "direct-$workload" 127.0.44.1:9042 --workload "$workload"
    bench "front-$workload" 127.0.45.1:9042 --workload "$workload"
done
stop_nodes

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
print()
print(f"{'path':28} {'workload':8} {'op/s':>9} {'ratio':>6} {'open p99 ms':>11} "
      f"{'backend us CPU/op':>17} {'front us CPU/op':>15} {'errors':>7}")
for workload in ("latest", "write"):
    base = None
    for label, name in (("straight to the backend", "direct"), ("through the front", "front")):
        r = json.load(open(os.path.join(out, f"{name}-{workload}.json")))["target"]
        backend, front, hz = map(float, open(os.path.join(out, f"{name}-{workload}.cpu")).read().split())
        ops = max(r["closed"]["ops"] + r["open"]["ops"], 1)
        tput = r["closed"]["throughput"]
        base = base or tput
        errors = r["closed"]["errors"] + r["open"]["errors"]
        print(f"{label:28} {workload:8} {tput:9.0f} {tput / base:6.2f} {r['open']['p99_us'] / 1000:11.2f} "
              f"{1e6 * backend / hz / ops:17.1f} {1e6 * front / hz / ops:15.1f} {errors:>7}")
PY
