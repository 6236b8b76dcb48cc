#!/usr/bin/env bash
# The repair benchmark recorded in the README (issue 12), reproducible:
#
#   bash scripts/bench_repair.sh                          # 1M rows; ~10 minutes after the build
#   THREADS=4000 bash scripts/bench_repair.sh             # 100k rows, a quicker look
#
# Three release nodes (127.0.42.1-3, same ports) with hinted handoff off, so nothing but the
# repair brings a replica back. The chat table `messages_by_thread` at RF 3 gets THREADS
# threads of 25 messages (1M rows by default). Then, side by side in one run:
#   1. `ringcache repair` of the table with no divergence: the Merkle pass alone;
#   2. node 3 stopped, 1 % of the threads each given 25 more messages (1 % more rows) on
#      nodes 1 and 2 only, node 3 restarted: the repair that finds and streams them;
#   3. the same repair again: nothing left to stream;
#   4. a fourth node joins (bootstrap): it streams every span it takes over from the three
#      replicas (a repair of those spans into it), then turns NORMAL.
# Each pass prints its time, what it compared and what it streamed, the CPU all nodes used,
# and beside them this machine's limits: sequential disk writes (dd, fdatasync) and one
# loopback TCP stream. Results as JSON in $OUT (default target/bench-repair/).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RINGCACHE_ROOT"

THREADS="${THREADS:-40000}"
ROWS=25
DIVERGENT=$(( (THREADS + 99) / 100 ))
TABLE=chat.messages_by_thread
OUT="${OUT:-$RINGCACHE_ROOT/target/bench-repair}"
source "$RINGCACHE_ROOT/scripts/nodes.sh"
mkdir -p "$OUT"
NODE_ENV=(RINGCACHE_HINTED_HANDOFF_ENABLED=false)

# populate THREADS: writes 25 new messages into each of threads 0..THREADS-1 through node 1
# (at the driver's default LOCAL_QUORUM), creating the chat schema at RF 3 first.
populate() {
    "$BIN" bench --contact 127.0.42.1:9042 --pin --partitions "$1" --rows "$ROWS" \
        --replication-factor 3 --workload latest --duration 0.2 --warmup 0 --quiet --populate \
        >/dev/null
}

# repair NAME: one `ringcache repair` of the table through node 1, timed, with the CPU all
# nodes used; the report as JSON in $OUT/NAME.json.
repair() {
    local name="$1" before after
    log "repair: $name"
    before="$(cpu_ticks)"
    "$BIN" repair -H 127.0.42.1 "$TABLE" --json >"$OUT/$name.json"
    after="$(cpu_ticks)"
    echo "$(( after - before )) $(getconf CLK_TCK)" >"$OUT/$name.cpu"
}

# The machine's limits: sequential writes to the disk the nodes use, and one TCP stream
# over loopback, each for 1 GiB.
limits() {
    local disk
    disk="$(dd if=/dev/zero of="$WORK/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1)"
    rm -f "$WORK/dd.bin"
    echo "disk: $disk" >"$OUT/limits.txt"
    python3 - >>"$OUT/limits.txt" <<'EOF'
import socket, threading, time
total, chunk = 1 << 30, b"\0" * (1 << 20)
server = socket.socket(); server.bind(("127.0.42.9", 0)); server.listen(1)
def sink():
    conn, _ = server.accept()
    while conn.recv_into(bytearray(1 << 20)):
        pass
t = threading.Thread(target=sink); t.start()
client = socket.create_connection(server.getsockname())
started = time.monotonic()
for _ in range(total // len(chunk)):
    client.sendall(chunk)
client.close(); t.join()
print(f"loopback: one TCP stream {total / (time.monotonic() - started) / 1e6:.0f} MB/s")
EOF
}

limits
start_nodes 42 3
log "populating $THREADS threads x $ROWS messages"
started=$SECONDS
populate "$THREADS"
log "populated in $((SECONDS - started)) s"
repair clean

log "node 3 stopped; $DIVERGENT threads get $ROWS more messages on nodes 1 and 2 only"
stop_node 42 3
populate "$DIVERGENT"
start_node 42 3
wait_peers_up 42 3
repair divergent
repair again

# The bootstrap's report is node 4's latest repair job (scope "bootstrap", GET /repair).
log "node 4 joins and streams the ranges it takes over"
before="$(cpu_ticks)"
start_node 42 4
for _ in $(seq 1 36000); do
    curl -s "http://127.0.42.4:9180/repair" >"$OUT/join.json" || true
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(r["scope"] != "bootstrap" or r["state"] == "running")' \
        "$OUT/join.json" 2>/dev/null && break
    sleep 0.1
done
after="$(cpu_ticks)"
echo "$(( after - before )) $(getconf CLK_TCK)" >"$OUT/join.cpu"

python3 - "$OUT" "$THREADS" "$ROWS" "$DIVERGENT" <<'EOF'
import json, os, sys
out, threads, rows, divergent = sys.argv[1], *map(int, sys.argv[2:5])
print()
print(f"{threads * rows:,} rows in {threads:,} threads at RF 3; node 3 missed "
      f"{divergent * rows:,} new rows ({divergent:,} threads)")
print(open(os.path.join(out, "limits.txt")).read().strip())
print(f"{'pass':12} {'seconds':>8} {'spans':>6} {'leaves':>7} {'mismatched':>10} "
      f"{'partitions':>10} {'repaired':>8} {'MB compared':>11} {'MB streamed':>11} "
      f"{'nodes CPU s':>11}")
for name in ("clean", "divergent", "again", "join"):
    r = json.load(open(os.path.join(out, name + ".json")))
    ticks, hz = map(int, open(os.path.join(out, name + ".cpu")).read().split())
    if r["state"] != "succeeded":
        sys.exit(f"repair {name} {r['state']}: {r.get('error')}")
    print(f"{name:12} {r['elapsed_secs']:8.1f} {r['spans_done']:6} {r['leaves_compared']:7} "
          f"{r['leaves_mismatched']:10} {r['partitions_compared']:10} "
          f"{r['partitions_repaired']:8} {r['bytes_compared'] / 1e6:11.1f} "
          f"{r['bytes_streamed'] / 1e6:11.2f} {ticks / hz:11.1f}")
r = json.load(open(os.path.join(out, "join.json")))
print(f"join: node 4 streamed {r['bytes_streamed'] / 1e6:.1f} MB in {r['elapsed_secs']:.1f} s "
      f"({r['bytes_streamed'] / 1e6 / r['elapsed_secs']:.1f} MB/s), "
      f"{r['partitions_repaired']:,} partitions")
EOF
