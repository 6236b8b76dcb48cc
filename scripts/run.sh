#!/usr/bin/env bash
# THE run command: builds ringcache (release) and serves CQL on 9042 and
# Prometheus metrics on 9180 with config/ringcache.toml; data goes to ./data.
#
#   bash scripts/run.sh                 # then: .venv/bin/cqlsh 127.0.0.1 9042
#   bash scripts/run.sh --cql-port 9043 # extra arguments go to `ringcache serve`
#
# Installs missing build packages and the Python clients (.venv, for cqlsh)
# first. RINGCACHE_* environment variables override the config file; Ctrl-C
# (SIGINT) or SIGTERM shuts the server down gracefully.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RINGCACHE_ROOT"

ensure_build_packages
ensure_venv
cargo build --release --bin ringcache
exec target/release/ringcache serve --config config/ringcache.toml "$@"
