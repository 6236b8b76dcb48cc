# Shared by scripts/test.sh and scripts/run.sh: make a fresh Debian machine
# able to build and test ringcache, installing only what is missing so that
# a re-run costs a few seconds. Sourced, not executed.
#
# What may be installed:
#   - Debian packages: clang + libclang-dev (bindgen, for RocksDB), strace
#     (the durability tests count the node's fsync/fdatasync calls with it),
#     and python3 + python3-venv when `python3 -m venv` cannot work.
#     `apt-get update` runs at most once per script run, and only when
#     something is actually missing.
#   - .venv/ (gitignored): the pinned Python clients of
#     tests/python/requirements.txt (DataStax driver, cqlsh, lz4, snappy,
#     pytest). A stamp file holding the requirements' hash makes re-runs
#     skip pip entirely.

RINGCACHE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$RINGCACHE_ROOT/.venv"
REQUIREMENTS="$RINGCACHE_ROOT/tests/python/requirements.txt"
APT_UPDATED=0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the given Debian packages; runs `apt-get update` first, once.
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# True when every named Debian package is installed.
dpkg_has() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || return 1
    done
}

# The C toolchain pieces the Rust build needs beyond gcc: bindgen (used by
# the RocksDB crate) loads libclang at build time. And strace, which the
# durability tests run the node under to see its syncs reach the kernel.
ensure_build_packages() {
    command -v cargo >/dev/null 2>&1 || {
        log "cargo not found: install the Rust toolchain (rustup) first"
        return 1
    }
    local missing=()
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
    command -v clang >/dev/null 2>&1 || missing+=(clang)
    dpkg_has libclang-dev || missing+=(libclang-dev)
    command -v strace >/dev/null 2>&1 || missing+=(strace)
    if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# A Python 3 interpreter whose venv module works (Debian splits ensurepip
# into python3-venv, so a bare python3 cannot create virtual environments).
ensure_python() {
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
}

# Hash of the requirements file: the stamp that says .venv is complete.
requirements_hash() {
    { cat "$REQUIREMENTS"; python3 --version; } | sha256sum | cut -d' ' -f1
}

# Creates .venv with the pinned Python clients unless it is already current.
ensure_venv() {
    ensure_python
    local want stamp="$VENV/.ringcache-requirements"
    want="$(requirements_hash)"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    if [ ! -x "$VENV/bin/pip" ]; then
        rm -rf "$VENV"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            apt_install python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    local started=$SECONDS
    log "pip install -r tests/python/requirements.txt"
    # The driver ships manylinux wheels; if pip ever falls back to the sdist,
    # skip its optional Cython extensions (minutes of compiling, no benefit).
    CASS_DRIVER_NO_CYTHON=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$VENV/bin/pip" install --quiet -r "$REQUIREMENTS"
    log "python packages installed in $((SECONDS - started)) s"
    echo "$want" >"$stamp"
}

# settle_metrics HOST:PORT...: flushes RocksDB's memory tables on each node whose metrics
# endpoint is given (POST /flush) and waits until they are on disk with no compaction debt
# and no compaction or flush running (their /metrics), so a measured phase does not pay for
# the writes of the one before it. Logs how long that took.
settle_metrics() {
    python3 - "$@" <<'PY' || exit 1
import sys, time, urllib.request
addresses = sys.argv[1:]
# Busy while above these: an empty memory table still takes a few KiB.
busy = {"ringcache_storage_pending_compaction_bytes": 0, "ringcache_storage_running_compactions": 0,
        "ringcache_storage_running_flushes": 0, "ringcache_storage_memtable_bytes": 1 << 20}
started = time.monotonic()
for address in addresses:
    request = urllib.request.Request(f"http://{address}/flush", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
while True:
    left = {}
    for address in addresses:
        text = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in busy and float(value) > busy[name]:
                left[f"{address} {name}"] = float(value)
    if not left:
        print(f"[storage settled in {time.monotonic() - started:.1f} s]", file=sys.stderr)
        break
    if time.monotonic() - started > 600:
        sys.exit(f"storage did not settle within 600 s: {left}")
    time.sleep(0.5)
PY
}
