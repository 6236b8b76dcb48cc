#!/usr/bin/env bash
# What an idle client connection costs the node (issue 13), reproducible:
#
#   bash scripts/bench_idle.sh                 # 3,000 connections
#   CONNECTIONS=1000 bash scripts/bench_idle.sh
#
# One release node (127.0.43.1). CONNECTIONS client connections each send STARTUP and get
# READY, then wait, as a driver's pooled connections do between requests. Measured side by
# side in one run, from the node's own heap gauge (`ringcache_heap_allocated_bytes`, live
# bytes of its Rust allocations) and its resident memory (VmRSS): the heap each connection
# adds right after READY, after it has been idle for 2 s (longer than the 1 s after which a
# connection gives its buffers back), and after each has sent one query and gone idle again.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RINGCACHE_ROOT"

CONNECTIONS="${CONNECTIONS:-3000}"
source "$RINGCACHE_ROOT/scripts/nodes.sh"
NODE_ENV=(RINGCACHE_LIMITS__MAX_CONNECTIONS=$((CONNECTIONS + 100)))

start_node 43 1
PID="${NODE_PIDS[43.1]}"
log "opening $CONNECTIONS idle connections to 127.0.43.1"
python3 - "$CONNECTIONS" "$PID" <<'EOF'
import resource, socket, struct, sys, time, urllib.request

n, pid = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))


def heap():
    text = urllib.request.urlopen("http://127.0.43.1:9180/metrics", timeout=10).read().decode()
    line = next(l for l in text.splitlines() if l.startswith("ringcache_heap_allocated_bytes "))
    return int(float(line.split()[1]))


def rss():
    with open(f"/proc/{pid}/status") as status:
        line = next(l for l in status if l.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def frame(stream, opcode, body):
    return struct.pack(">BBhBi", 4, 0, stream, opcode, len(body)) + body


def string(s):
    return struct.pack(">H", len(s)) + s.encode()


def receive(sock):
    header = b""
    while len(header) < 9:
        header += sock.recv(9 - len(header))
    length = struct.unpack(">i", header[5:9])[0]
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return header[4], body


STARTUP = frame(0, 0x01, struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0"))
text = "SELECT release_version FROM system.local"
QUERY = frame(1, 0x07, struct.pack(">i", len(text)) + text.encode() + struct.pack(">HB", 1, 0))


def settle():
    # Longer than the node's 1 s idle release, and until the gauge stops moving.
    time.sleep(2.0)
    last = heap()
    for _ in range(20):
        time.sleep(0.5)
        now = heap()
        if abs(now - last) < 64 * 1024:
            return now
        last = now
    return last


base_heap, base_rss = settle(), rss()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.43.1", 9042))
    s.sendall(STARTUP)
    op, _ = receive(s)
    assert op == 0x02, f"expected READY, got opcode {op:#x}"
    socks.append(s)
ready_heap, ready_rss = heap(), rss()
idle_heap, idle_rss = settle(), rss()
for s in socks:
    s.sendall(QUERY)
for s in socks:
    op, _ = receive(s)
    assert op == 0x08, f"expected RESULT, got opcode {op:#x}"
after_query_heap = heap()
queried_idle_heap, queried_idle_rss = settle(), rss()
for s in socks:
    s.close()
closed_heap = settle()

kib = lambda b: b / n / 1024
print(f"{n} connections, heap per connection (node's own gauge) and resident memory per connection:")
print(f"  right after READY          {kib(ready_heap - base_heap):7.1f} KiB heap  {kib(ready_rss - base_rss):7.1f} KiB RSS")
print(f"  idle 2 s after READY       {kib(idle_heap - base_heap):7.1f} KiB heap  {kib(idle_rss - base_rss):7.1f} KiB RSS")
print(f"  right after one query      {kib(after_query_heap - base_heap):7.1f} KiB heap")
print(f"  idle 2 s after the query   {kib(queried_idle_heap - base_heap):7.1f} KiB heap  {kib(queried_idle_rss - base_rss):7.1f} KiB RSS")
print(f"  all closed                 {kib(closed_heap - base_heap):7.1f} KiB heap")
print(f"  idle / right after READY:  {(idle_heap - base_heap) / max(1, ready_heap - base_heap):.2f}")
EOF
