# syntax=docker/dockerfile:1
# ringcache image: a release build on the Rust image, run on debian-slim.
#   docker build -t ringcache .
#   docker run -p 9042:9042 -p 9180:9180 ringcache
# docker-compose.yml runs three of these with Prometheus and Grafana.

FROM rust:1-bookworm AS build
# clang/libclang: bindgen needs them for the RocksDB storage engine.
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
# Cache mounts keep the registry and build artefacts between image builds;
# the binary is copied out because the target mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ringcache \
 && cp target/release/ringcache /usr/local/bin/ringcache

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/ringcache --shell /usr/sbin/nologin ringcache \
 && mkdir -p /var/lib/ringcache /etc/ringcache \
 && chown ringcache:ringcache /var/lib/ringcache
COPY --from=build /usr/local/bin/ringcache /usr/local/bin/ringcache
COPY config/ringcache.toml /etc/ringcache/ringcache.toml
# Bind all interfaces inside the container; clients are told the address of
# the socket they connected to (system.local.rpc_address).
ENV RINGCACHE_LISTEN_ADDRESS=0.0.0.0 \
    RINGCACHE_DATA_DIR=/var/lib/ringcache \
    RINGCACHE_CONFIG=/etc/ringcache/ringcache.toml
USER ringcache
VOLUME ["/var/lib/ringcache"]
# CQL, Prometheus metrics, internode (reserved for the cluster layer).
EXPOSE 9042 9180 7000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9042"]
# tini forwards SIGTERM so `docker stop` triggers ringcache's graceful shutdown.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/ringcache"]
CMD ["serve"]
