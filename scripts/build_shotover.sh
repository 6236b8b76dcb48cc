#!/usr/bin/env bash
# Builds Shotover (the CQL proxy people use in front of Cassandra today) from its crate on
# crates.io, for scripts/bench_backend.sh to measure beside ringcache's pass-through:
#
#   bash scripts/build_shotover.sh        # prints the binary's path; ~20 minutes cold
#
# Shotover ships as a library whose runner is the proxy; the binary is the three-line
# main its documentation gives, in a Cargo project under target/shotover (only the
# Cassandra protocol compiled in). Not part of the test command.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RINGCACHE_ROOT"

SHOTOVER_VERSION="${SHOTOVER_VERSION:-0.7.4}"
DIR="$RINGCACHE_ROOT/target/shotover"
mkdir -p "$DIR/src"
cat >"$DIR/Cargo.toml" <<TOML
[package]
name = "shotover-bench"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
shotover = { version = "=$SHOTOVER_VERSION", default-features = false, features = ["cassandra"] }

[workspace]
TOML
cat >"$DIR/src/main.rs" <<'RS'
fn main() {
    shotover::runner::Shotover::new().run_block();
}
RS
ensure_build_packages
log "building shotover $SHOTOVER_VERSION in $DIR"
(cd "$DIR" && cargo build --release >&2)
echo "$DIR/target/release/shotover-bench"
