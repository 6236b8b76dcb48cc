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
#   2. front:   the same through the front (pass-through: the front has no cache yet);
#   3. shotover: the same through Shotover 0.7 (CassandraSinkCluster: it rewrites
#               system.local/peers to describe itself, as the front does), when
#               SHOTOVER_BIN names its binary (scripts/build_shotover.sh builds it).
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
rm -f "$OUT"/*.json "$OUT"/*.cpu

SHOTOVER_PID=""
trap 'stop_nodes; [ -z "$SHOTOVER_PID" ] || kill "$SHOTOVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

pid_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

# net_ticks NET: CPU ticks (user + system) of the nodes of NET (46: Shotover).
net_ticks() {
    local total=0 key
    if [ "$1" = 46 ]; then
        [ -z "$SHOTOVER_PID" ] || pid_ticks "$SHOTOVER_PID"
        [ -n "$SHOTOVER_PID" ] || echo 0
        return
    fi
    for key in "${!NODE_PIDS[@]}"; do
        [[ "$key" == "$1".* ]] || continue
        total=$((total + $(pid_ticks "${NODE_PIDS[$key]}")))
    done
    echo "$total"
}

start_shotover() {
    mkdir -p "$WORK/shotover"
    cat >"$WORK/shotover/topology.yaml" <<YAML
---
sources:
  - Cassandra:
      name: "cassandra"
      listen_addr: "127.0.46.1:9042"
      chain:
        - CassandraSinkCluster:
            first_contact_points: ["127.0.44.1:9042"]
            local_shotover_host_id: "2dd022d6-2937-4754-89d6-02d2933a8f7a"
            shotover_nodes:
              - address: "127.0.46.1:9042"
                data_center: "datacenter1"
                rack: "rack1"
                host_id: "2dd022d6-2937-4754-89d6-02d2933a8f7a"
            connect_timeout_ms: 3000
YAML
    cat >"$WORK/shotover/config.yaml" <<YAML
---
main_log_level: "warn"
observability_interface: "127.0.46.1:9001"
YAML
    "$SHOTOVER_BIN" --topology-file "$WORK/shotover/topology.yaml" \
        --config-file "$WORK/shotover/config.yaml" >"$WORK/shotover/log" 2>&1 &
    SHOTOVER_PID=$!
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.46.1/9042) 2>/dev/null && return 0
        sleep 0.1
    done
    log "shotover did not start:"; tail -20 "$WORK/shotover/log" >&2; exit 1
}

bench() {
    local name="$1" contact="$2"; shift 2
    settle_storage 44 1
    log "bench $name"
    local backend_before front_before backend_after front_after front_net=45
    [[ "$name" != shotover-* ]] || front_net=46
    backend_before="$(net_ticks 44)"
    front_before="$(net_ticks "$front_net")"
    "$BIN" bench --contact "$contact" --partitions "$PARTITIONS" --duration "$SECS" \
        --warmup 1 --json "$OUT/$name.json" --quiet "$@" || log "bench $name: requests failed"
    backend_after="$(net_ticks 44)"
    front_after="$(net_ticks "$front_net")"
    echo "$((backend_after - backend_before)) $((front_after - front_before)) $(getconf CLK_TCK)" \
        >"$OUT/$name.cpu"
}

start_nodes 44 1
"$BIN" bench --contact 127.0.44.1:9042 --partitions "$PARTITIONS" --duration 1 --warmup 0 \
    --quiet --populate --workload latest --prewarm >/dev/null
NODE_ENV=(RINGCACHE_BACKEND__ENGINE=cql RINGCACHE_BACKEND__CONTACT_POINTS=127.0.44.1:9042)
start_nodes 45 1

[ -z "${SHOTOVER_BIN:-}" ] || start_shotover
for workload in latest write; do
    bench "direct-$workload" 127.0.44.1:9042 --workload "$workload" --pin
    bench "front-$workload" 127.0.45.1:9042 --workload "$workload" --pin
    # The scylla driver learns the node behind Shotover at the backend's address (seen with
    # 0.7.4), so it is told to reach that address at Shotover's (--translate); the table
    # says if the load went around the proxy anyway.
    [ -z "${SHOTOVER_BIN:-}" ] ||
        bench "shotover-$workload" 127.0.46.1:9042 --workload "$workload" \
            --translate 127.0.44.1:9042=127.0.46.1:9042
done
stop_nodes

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
print()
print(f"{'path':28} {'workload':8} {'op/s':>9} {'ratio':>6} {'open p99 ms':>11} "
      f"{'backend us CPU/op':>17} {'proxy us CPU/op':>15} {'errors':>7}")
for workload in ("latest", "write"):
    base = None
    for label, name in (("straight to the backend", "direct"), ("through the front", "front"),
                        ("through Shotover", "shotover")):
        if not os.path.exists(os.path.join(out, f"{name}-{workload}.json")):
            continue
        r = json.load(open(os.path.join(out, f"{name}-{workload}.json")))["target"]
        backend, front, hz = map(float, open(os.path.join(out, f"{name}-{workload}.cpu")).read().split())
        ops = max(r["closed"]["ops"] + r["open"]["ops"], 1)
        tput = r["closed"]["throughput"]
        base = base or tput
        errors = r["closed"]["errors"] + r["open"]["errors"]
        proxy_us = 1e6 * front / hz / ops
        print(f"{label:28} {workload:8} {tput:9.0f} {tput / base:6.2f} {r['open']['p99_us'] / 1000:11.2f} "
              f"{1e6 * backend / hz / ops:17.1f} {proxy_us:15.1f} {errors:>7}")
        if name != "direct" and proxy_us < 1:
            print(f"  ^ not valid: the proxy used no CPU, so the driver went around it to the backend")
PY
