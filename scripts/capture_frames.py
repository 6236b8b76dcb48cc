#!/usr/bin/env python3
"""Captures real client->server CQL frames as fuzz seeds.

The protocol fuzz test (src/protocol/fuzz/mod.rs) starts from
tests/fuzz/seeds/*.bin: each file is ONE complete request frame exactly as a
real driver sent it (9-byte header + body; the body is compressed when the
header's flag 0x01 is set, with the compression the file name says). Seeds
from real drivers reach deep into the decoder at once: negotiation attempts at
0x42/0x05, STARTUP maps, QUERY/PREPARE/EXECUTE/BATCH parameter layouts, LZ4
and Snappy bodies.

Two modes:

  proxy:  a transparent TCP proxy that records every complete frame a client
          sends through it.
              capture_frames.py proxy --upstream 127.0.0.1:9042 --client NAME
          then point the client at the printed port.

  drive:  the whole job in one command: starts a ringcache server (temp data
          dir, ephemeral ports), puts one proxy per client in front of it and
          runs the Python driver with lz4, with snappy only, with no
          compression, and cqlsh through them.
              .venv/bin/python scripts/capture_frames.py drive

Frames identical to one already saved for the same client are skipped, so
heartbeats do not pile up. The Rust clients (scylla, cdrs-tokio, each plain
and with lz4) are driven too when examples/drive_clients.rs is built
(`cargo build --example drive_clients`); otherwise drive mode skips them.
"""

import argparse
import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "fuzz" / "seeds"
HEADER_LEN = 9
# Anything longer is not a v3/v4 frame we want as a seed (and bounds memory).
MAX_SEED_BODY = 1 << 20
# Header version bytes real clients send: v1..v6 and DSE_V1/V2 (0x41/0x42).
KNOWN_VERSIONS = {1, 2, 3, 4, 5, 6, 0x41, 0x42}


class FrameRecorder:
    """Splits one direction of a connection into frames and saves them."""

    def __init__(self, out_dir: Path, client: str, seen: set, counter: list):
        self.out_dir, self.client = out_dir, client
        self.seen, self.counter = seen, counter
        self.buf = bytearray()
        self.active = True

    def feed(self, data: bytes):
        if not self.active:
            return
        self.buf += data
        while len(self.buf) >= HEADER_LEN:
            version = self.buf[0] & 0x7F
            length = int.from_bytes(self.buf[5:9], "big")
            if version not in KNOWN_VERSIONS or length > MAX_SEED_BODY:
                # Not a framing we understand (e.g. v5 segments): stop here.
                self.active = False
                return
            if len(self.buf) < HEADER_LEN + length:
                return
            frame = bytes(self.buf[:HEADER_LEN + length])
            del self.buf[:HEADER_LEN + length]
            self.save(frame)

    def save(self, frame: bytes):
        digest = hashlib.sha256(frame).digest()
        if digest in self.seen:
            return
        self.seen.add(digest)
        self.counter[0] += 1
        path = self.out_dir / f"{self.client}-{self.counter[0]:03d}.bin"
        path.write_bytes(frame)


class Proxy:
    """A loopback TCP proxy recording client->server frames for one client name."""

    def __init__(self, upstream: tuple, out_dir: Path, client: str):
        self.upstream, self.out_dir, self.client = upstream, out_dir, client
        self.seen, self.counter = set(), [0]
        self.server = None

    async def start(self) -> int:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def close(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        recorder = FrameRecorder(self.out_dir, self.client, self.seen, self.counter)
        await asyncio.gather(self._pump(client_reader, up_writer, recorder),
                             self._pump(up_reader, client_writer, None))

    @staticmethod
    async def _pump(reader, writer, recorder):
        try:
            while data := await reader.read(65536):
                if recorder is not None:
                    recorder.feed(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except RuntimeError:
                pass


# -- the client workload (run in a subprocess, see `workload` mode) ----------

WORKLOAD_STATEMENTS = [
    "SELECT * FROM system.local",
    "SELECT peer, rpc_address, tokens FROM system.peers",
    "CREATE KEYSPACE IF NOT EXISTS seed_ks WITH replication = "
    "{'class': 'SimpleStrategy', 'replication_factor': 1}",
    "CREATE TYPE IF NOT EXISTS seed_ks.address (street text, zip int, tags frozen<set<text>>)",
    "CREATE TABLE IF NOT EXISTS seed_ks.t (tenant text, bucket int, ts timestamp, id timeuuid, "
    "s text static, l list<text>, m map<text, bigint>, tp tuple<int, text>, "
    "addr frozen<address>, PRIMARY KEY ((tenant, bucket), ts, id)) "
    "WITH CLUSTERING ORDER BY (ts DESC, id ASC)",
    "USE seed_ks",
    "DESCRIBE KEYSPACES",
    "DESCRIBE TABLE seed_ks.t",
    "SELECT keyspace_name, table_name FROM system_schema.tables WHERE keyspace_name = 'seed_ks'",
]


def run_workload(host: str, port: int, hidden: list):
    """The Python driver, default settings, sending a broad mix of requests."""
    sys.path.insert(0, str(REPO_ROOT / "tests" / "python"))
    from driver_probe import HideModules

    sys.meta_path.insert(0, HideModules(hidden))
    import uuid
    from datetime import datetime, timezone

    from cassandra.cluster import Cluster
    from cassandra.query import BatchStatement, SimpleStatement

    cluster = Cluster(contact_points=[host], port=port)
    session = cluster.connect()

    def attempt(fn, *args):
        # DML may not be implemented yet: the request frame is the seed.
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001
            print(f"  ({type(exc).__name__}: {str(exc)[:100]})", file=sys.stderr)

    for stmt in WORKLOAD_STATEMENTS:
        attempt(session.execute, stmt)
    attempt(session.execute, SimpleStatement("SELECT * FROM system_schema.columns", fetch_size=7))
    attempt(session.execute, "SELECT * FROM system.local WHERE key = %s", ["local"])
    row = ("acme", 1, datetime(2024, 1, 2, tzinfo=timezone.utc), uuid.uuid1(), "static",
           ["a", "b"], {"k": 2**40}, (7, "seven"))
    insert = ("INSERT INTO seed_ks.t (tenant, bucket, ts, id, s, l, m, tp) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL 60")

    def prepared_select():
        select = session.prepare("SELECT * FROM system.local WHERE key = ?")
        session.execute(select, ["local"])

    def prepared_insert():
        prepared = session.prepare(insert)
        session.execute(prepared, row)

    def batch():
        # Simple statements with values: a BATCH frame even where PREPARE fails.
        b = BatchStatement()
        b.add(SimpleStatement(insert.replace("?", "%s")), row)
        b.add(SimpleStatement("DELETE FROM seed_ks.t WHERE tenant = %s AND bucket = %s"),
              ("acme", 1))
        session.execute(b)

    attempt(prepared_select)
    attempt(prepared_insert)
    attempt(batch)
    attempt(session.execute, "DROP TABLE seed_ks.t")
    attempt(session.execute, "DROP KEYSPACE seed_ks")
    cluster.shutdown()


# -- drive mode ---------------------------------------------------------------

def start_server(binary: Path, workdir: Path):
    ready = workdir / "ready.json"
    log = open(workdir / "server.log", "wb")
    proc = subprocess.Popen([str(binary), "serve", "--data-dir", str(workdir / "data"),
                             "--listen-address", "127.0.0.1", "--cql-port", "0",
                             "--metrics-port", "0", "--ready-file", str(ready)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=REPO_ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}; see {workdir / 'server.log'}")
        try:
            host, _, port = json.loads(ready.read_text())["cql"].rpartition(":")
            return proc, (host, int(port))
        except (FileNotFoundError, ValueError, KeyError):
            time.sleep(0.05)
    proc.kill()
    sys.exit("server not ready within 30 s")


async def run_client(upstream, out_dir, client, argv_for_port):
    proxy = Proxy(upstream, out_dir, client)
    port = await proxy.start()
    argv = argv_for_port(port)
    print(f"{client}: {' '.join(argv)}", file=sys.stderr)
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.wait_for(proc.wait(), timeout=180)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
    await proxy.close()
    print(f"{client}: {proxy.counter[0]} frames saved", file=sys.stderr)


async def drive(binary: Path, out_dir: Path, rust_example: Path):
    py = sys.executable
    me = str(Path(__file__).resolve())
    cqlsh = str(Path(py).with_name("cqlsh"))
    with tempfile.TemporaryDirectory(prefix="ringcache-capture-") as tmp:
        workdir = Path(tmp)
        server, upstream = start_server(binary, workdir)
        script = workdir / "cqlsh.cql"
        script.write_text(";\n".join(WORKLOAD_STATEMENTS[2:5] + [
            "DESCRIBE KEYSPACE seed_ks", "USE seed_ks", "DESCRIBE TABLES",
            "SELECT * FROM system.local", "DROP KEYSPACE seed_ks"]) + ";\n")
        clients = [
            ("python-lz4", lambda p: [py, me, "workload", "127.0.0.1", str(p)]),
            ("python-snappy", lambda p: [py, me, "workload", "127.0.0.1", str(p), "lz4"]),
            ("python-plain", lambda p: [py, me, "workload", "127.0.0.1", str(p), "lz4", "snappy"]),
            ("cqlsh", lambda p: [cqlsh, "127.0.0.1", str(p), "-f", str(script)]),
        ]
        if rust_example.exists():
            clients += [(name, lambda p, n=name: [str(rust_example), f"127.0.0.1:{p}", n])
                        for name in ("scylla", "scylla-lz4", "cdrs", "cdrs-lz4")]
        else:
            print(f"skipping the Rust clients: {rust_example} is not built", file=sys.stderr)
        try:
            for name, argv in clients:
                await run_client(upstream, out_dir, name, argv)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


async def proxy_forever(upstream, out_dir, client):
    proxy = Proxy(upstream, out_dir, client)
    port = await proxy.start()
    print(f"listening on 127.0.0.1:{port}, recording '{client}' frames to {out_dir}",
          flush=True)
    await asyncio.Event().wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("proxy", help="record frames from any client")
    p.add_argument("--upstream", required=True, help="ringcache HOST:PORT")
    p.add_argument("--client", required=True, help="seed file name prefix")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    d = sub.add_parser("drive", help="start a server and capture the Python clients")
    d.add_argument("--bin", type=Path, default=Path(os.environ.get(
        "RINGCACHE_BIN", REPO_ROOT / "target" / "debug" / "ringcache")))
    d.add_argument("--out", type=Path, default=DEFAULT_OUT)
    d.add_argument("--rust-example", type=Path,
                   default=REPO_ROOT / "target" / "debug" / "examples" / "drive_clients")
    w = sub.add_parser("workload", help=argparse.SUPPRESS)
    w.add_argument("host")
    w.add_argument("port", type=int)
    w.add_argument("hidden", nargs="*")
    args = parser.parse_args()

    if args.mode == "workload":
        run_workload(args.host, args.port, args.hidden)
    elif args.mode == "drive":
        asyncio.run(drive(args.bin, args.out, args.rust_example))
    else:
        host, _, port = args.upstream.rpartition(":")
        try:
            asyncio.run(proxy_forever((host, int(port)), args.out, args.client))
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
