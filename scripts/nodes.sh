# Shared by the cluster benchmarks (scripts/bench_cluster.sh, scripts/bench_repair.sh):
# start, stop and restart release nodes on loopback, as ccm does — node I of net NET listens
# on 127.0.NET.I with the same ports as every other, and seeds 127.0.NET.1. Sourced, not
# executed, after scripts/lib.sh. Sourcing it sets BIN (RINGCACHE_BIN, or the release build,
# built first) and WORK (a scratch directory, one data directory per node under it, removed
# on exit with every node stopped).
#
# Extra settings reach every node as RINGCACHE_* variables in NODE_ENV (an array of
# NAME=value, set after sourcing), e.g. NODE_ENV=(RINGCACHE_HINTED_HANDOFF_ENABLED=false).

BIN="${RINGCACHE_BIN:-$RINGCACHE_ROOT/target/release/ringcache}"
if [ -z "${RINGCACHE_BIN:-}" ]; then
    ensure_build_packages
    cargo build --release --bin ringcache
fi
WORK="$(mktemp -d)"
trap 'stop_nodes; rm -rf "$WORK"' EXIT

declare -A NODE_PIDS=()
NODE_ENV=()

# start_node NET I: starts node I of NET (its data kept across restarts) and waits until it
# serves CQL.
start_node() {
    local net="$1" i="$2"
    local addr="127.0.$net.$i" dir="$WORK/n$net-$i"
    mkdir -p "$dir"
    rm -f "$dir/ready.json"
    env ${NODE_ENV[@]:+"${NODE_ENV[@]}"} RINGCACHE_LOG=warn RINGCACHE_SEEDS="127.0.$net.1" \
        "$BIN" serve --listen-address "$addr" --data-dir "$dir" --ready-file "$dir/ready.json" \
        >>"$dir/node.log" 2>&1 &
    NODE_PIDS["$net.$i"]=$!
    for _ in $(seq 1 600); do [ -s "$dir/ready.json" ] && return 0; sleep 0.1; done
    log "node $addr did not start:"
    tail -20 "$dir/node.log" >&2
    exit 1
}

# wait_peers_up NET N: until node 1 of NET sees N nodes up and NORMAL (a node new to the
# cluster is JOINING while it streams its ranges).
wait_peers_up() {
    local net="$1" n="$2"
    for _ in $(seq 1 1200); do
        "$BIN" status --json -H "127.0.$net.1" 2>/dev/null | python3 -c '
import json, sys
nodes = json.load(sys.stdin)["nodes"]
sys.exit(sum(1 for x in nodes if x["up"] and x["state"] == "Normal") < int(sys.argv[1]))' "$n" \
            && return 0
        sleep 0.1
    done
    log "127.0.$net.1 does not see $n nodes up and NORMAL"
    exit 1
}

# start_nodes NET N: nodes 1..N of NET, every one seeing the others up before this returns.
start_nodes() {
    local net="$1" n="$2" i
    for i in $(seq 1 "$n"); do start_node "$net" "$i"; done
    wait_peers_up "$net" "$n"
    log "$n node(s) up on 127.0.$net.x"
}

# stop_node NET I: stops node I of NET (SIGTERM, a clean shutdown) and waits for it.
stop_node() {
    local key="$1.$2" pid
    pid="${NODE_PIDS[$key]:-}"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "NODE_PIDS[$key]"
}

# stop_nodes: stops every node started here.
stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    NODE_PIDS=()
}

# cpu_ticks: the CPU time (clock ticks, user + system) every running node has used.
cpu_ticks() {
    local total=0 pid t
    for pid in "${NODE_PIDS[@]}"; do
        t="$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
        total=$((total + t))
    done
    echo "$total"
}

# settle_storage NET N: settles the storage (settle_metrics, scripts/lib.sh) of nodes 1..N
# of NET, whose metrics are on port 9180.
settle_storage() {
    local net="$1" n="$2" addresses=()
    for i in $(seq 1 "$n"); do
        addresses+=("127.0.$net.$i:9180")
    done
    settle_metrics "${addresses[@]}"
}
