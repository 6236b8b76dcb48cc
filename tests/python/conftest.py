"""Real ringcache servers for the Python acceptance tests.

Every test talks to a real `ringcache serve` process on 127.0.0.1 with
ephemeral ports (`--cql-port 0 --metrics-port 0`) and a temporary data
directory. The server writes its bound addresses to `--ready-file` once both
listeners accept connections, so the tests never guess ports or sleep.

Processes are always reaped: SIGTERM first (graceful shutdown is part of the
contract), SIGKILL after a timeout, and a session-wide finaliser kills any
node a crashed test left behind.

The binary comes from $RINGCACHE_BIN (scripts/test.sh sets it) or
target/debug/ringcache.

With FRONT_TIER=1 the module-wide `node` is a front tier: a node with
`[backend] engine = "cql"` in front of a node on the embedded store, which it
reaches only over CQL as it would reach ScyllaDB. The suites that use `node`
then run through the front, unchanged (scripts/test.sh runs the client suites
both ways).
"""

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
# Not RINGCACHE_*: the node reads every such variable as configuration.
FRONT_TIER = os.environ.get("FRONT_TIER") == "1"
STOP_TIMEOUT_S = 10.0

# Every node started in this session, so none outlives pytest.
_ALL_NODES = []


def ringcache_binary() -> Path:
    """The server binary under test."""
    path = Path(os.environ.get("RINGCACHE_BIN", REPO_ROOT / "target/debug/ringcache"))
    if not path.is_file():
        pytest.exit(f"ringcache binary not found at {path}: run `cargo build` "
                    "or set RINGCACHE_BIN", returncode=2)
    return path


def _split_addr(addr: str):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


class RingcacheNode:
    """One `ringcache serve` process bound to loopback.

    `start()` may be called again after `stop()`/`kill()`: the node keeps its
    data directory (that is how persistence is tested) and gets new ports.
    """

    def __init__(self, binary: Path, workdir: Path, name: str = "node",
                 listen: str = "127.0.0.1", ports=(0, 0, 0), seeds=None, env=None):
        """`ports` are (cql, metrics, internode), 0 for ephemeral; `seeds` a list of
        addresses; `env` extra environment (RINGCACHE_* overrides)."""
        self.binary = binary
        self.name = name
        self.listen = listen
        self.ports = ports
        self.seeds = seeds or []
        self.env = env or {}
        self.data_dir = workdir / f"{name}-data"
        self.ready_file = workdir / f"{name}-ready.json"
        self.log_path = workdir / f"{name}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.host = None
        self.port = None
        self.metrics_port = None
        _ALL_NODES.append(self)

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT_S):
        """Starts the process and waits (bounded) for its ready file."""
        self.launch()
        self._wait_ready(timeout)
        return self

    def launch(self):
        """Starts the process without waiting for it to serve (see `start`)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.ready_file.unlink(missing_ok=True)
        cql, metrics, internode = self.ports
        cmd = [str(self.binary), "serve",
               "--data-dir", str(self.data_dir),
               "--listen-address", self.listen,
               "--cql-port", str(cql),
               "--metrics-port", str(metrics),
               "--internode-port", str(internode),
               "--ready-file", str(self.ready_file)]
        if self.seeds:
            cmd += ["--seeds", ",".join(self.seeds)]
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # plain logs in reports
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start: {' '.join(cmd)}\n".encode())
            log.flush()
            # Own process group, so a signal to pytest's group (Ctrl-C) does
            # not race our orderly shutdown.
            self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def _wait_ready(self, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before "
                                   f"becoming ready:\n{self.log_tail()}")
            ready = self._read_ready()
            if ready is not None:
                self.host, self.port = _split_addr(ready["cql"])
                self.metrics_port = _split_addr(ready["metrics"])[1]
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} not ready within {timeout} s:\n{self.log_tail()}")

    def _read_ready(self):
        # The server renames the file into place, but tolerate a torn read.
        try:
            data = json.loads(self.ready_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if "cql" in data and "metrics" in data else None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Graceful stop (SIGTERM), then SIGKILL if it does not exit in time.

        Returns the exit code; a server that needed SIGKILL returns -9.
        """
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """kill -9: no chance to flush or clean up (a crash)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(STOP_TIMEOUT_S)

    def restart(self, crash: bool = False):
        """Stops (or kill -9s) and starts again on the same data directory."""
        if crash:
            self.kill()
        else:
            self.stop()
        return self.start()

    # -- helpers -----------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def __repr__(self):
        return f"RingcacheNode({self.name}, {self.address}, data={self.data_dir})"


@pytest.fixture(scope="session")
def ringcache_bin() -> Path:
    return ringcache_binary()


@pytest.fixture(scope="session", autouse=True)
def _reap_all_nodes():
    """Session finaliser: no server outlives the test run, whatever failed."""
    yield
    for node in _ALL_NODES:
        try:
            node.stop(timeout=5)
        except Exception as exc:  # noqa: BLE001 - keep reaping the others
            print(f"failed to stop {node}: {exc}", file=sys.stderr)


@pytest.fixture
def node_factory(ringcache_bin, tmp_path):
    """Makes and starts nodes: `node_factory("a")`; all stopped at test end."""
    made = []

    def make(name: str = "node"):
        node = RingcacheNode(ringcache_bin, tmp_path, name).start()
        made.append(node)
        return node

    yield make
    for node in made:
        node.stop()


@pytest.fixture(scope="module")
def node(ringcache_bin, tmp_path_factory):
    """One server shared by a test module (starting one per test is waste); with
    FRONT_TIER=1, a front node whose `backend` is the embedded node behind it."""
    workdir = tmp_path_factory.mktemp("ringcache")
    backend = None
    if FRONT_TIER:
        backend = RingcacheNode(ringcache_bin, workdir, "backend").start()
        env = {"RINGCACHE_BACKEND__ENGINE": "cql",
               "RINGCACHE_BACKEND__CONTACT_POINTS": backend.address}
        server = RingcacheNode(ringcache_bin, workdir, "front", env=env).start()
    else:
        server = RingcacheNode(ringcache_bin, workdir, "shared").start()
    server.backend = backend
    yield server
    codes = [(n, n.stop()) for n in (server, backend) if n is not None]
    # A clean SIGTERM shutdown exits 0; report otherwise, with the log.
    for n, code in codes:
        assert code == 0, f"{n.name} exited with {code} on SIGTERM:\n{n.log_tail()}"


@pytest.fixture(scope="module")
def cluster(node):
    """A DataStax driver Cluster with default settings, connected to the module's node."""
    from cassandra.cluster import Cluster

    c = Cluster(contact_points=[node.host], port=node.port)
    yield c
    c.shutdown()


# -- clusters -------------------------------------------------------------------------
#
# A cluster is laid out as ccm does: node i on its own loopback address 127.0.X.i, every
# node on the same CQL, metrics and internode ports (drivers reach a peer they learn from
# system.peers on the contact point's port), seeded on node 1. X comes from a random base
# plus a counter in 100..140 and the ports are random; every address and port is bound once to
# check it is free, so clusters of this run, of the Rust suite and of other runs on the
# machine do not collide.

_CLUSTER_COUNTER = itertools.count()
_CLUSTER_BASE = random.randrange(41)
PROBE_KEYSPACE = "cluster_probe"


def _free_cluster_layout(n: int):
    """(subnet, (cql, metrics, internode)) free on 127.0.subnet.1..n."""
    for _ in range(200):
        subnet = 100 + (_CLUSTER_BASE + next(_CLUSTER_COUNTER)) % 41
        first = random.randrange(20000, 32000)
        ports = (first, first + 1, first + 2)
        try:
            for i in range(1, n + 1):
                for port in ports:
                    with socket.socket() as probe:
                        probe.bind((f"127.0.{subnet}.{i}", port))
        except OSError:
            continue
        return subnet, ports
    raise RuntimeError("no free cluster addresses and ports after 200 tries")


class RingcacheCluster:
    """`n` real nodes started at the same moment, seeded on node 1 (nodes numbered from 1)."""

    def __init__(self, binary: Path, workdir: Path, n: int, env=None):
        self.subnet, self.ports = _free_cluster_layout(n)
        secret = f"test-{self.subnet}-{random.getrandbits(64)}"
        base_env = {"RINGCACHE_FAULTS__LINK_CONTROL": "true",
                    "RINGCACHE_CLUSTER_SECRET": secret, **(env or {})}
        self.nodes = [
            RingcacheNode(binary, workdir, f"n{i}", listen=self.ip(i), ports=self.ports,
                          seeds=[self.ip(1)] if i > 1 else [], env=base_env)
            for i in range(1, n + 1)]

    def ip(self, i: int) -> str:
        return f"127.0.{self.subnet}.{i}"

    @property
    def cql_port(self) -> int:
        return self.ports[0]

    def node(self, i: int) -> RingcacheNode:
        return self.nodes[i - 1]

    def start(self, timeout: float = READY_TIMEOUT_S):
        """Launches every node, then waits for each one's ready file."""
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node._wait_ready(timeout)
        return self

    def stop(self):
        for node in self.nodes:
            node.kill()

    def connect(self, i: int, **cluster_args):
        """A driver Cluster and Session that send every request to node i alone, with no
        retries (errors arrive as the node sent them). Shut the Cluster down after."""
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy

        profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([self.ip(i)]),
                                   retry_policy=FallthroughRetryPolicy())
        cluster = Cluster(contact_points=[self.ip(i)], port=self.cql_port,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile}, **cluster_args)
        return cluster, cluster.connect()

    def wait_all_up(self, timeout: float = 60.0):
        """Until every node lists every peer with its tokens and a write at ALL to a
        keyspace replicated on every node succeeds through it (so it believes every
        replica alive, and each answered)."""
        n = len(self.nodes)
        cluster, session = self.connect(1)
        try:
            session.execute(f"CREATE KEYSPACE IF NOT EXISTS {PROBE_KEYSPACE} WITH replication = "
                            f"{{'class': 'SimpleStrategy', 'replication_factor': {n}}}")
            session.execute(f"CREATE TABLE IF NOT EXISTS {PROBE_KEYSPACE}.up (k int PRIMARY KEY)")
        finally:
            cluster.shutdown()
        deadline = time.monotonic() + timeout
        for i in range(1, n + 1):
            while (why := self._sees_all_up(i)) is not None:
                assert time.monotonic() < deadline, f"node {i} never saw every node up: {why}"
                time.sleep(0.1)

    def _sees_all_up(self, i: int):
        """None when node i sees every node up, else why not."""
        from cassandra import ConsistencyLevel
        from cassandra.query import SimpleStatement

        try:
            cluster, session = self.connect(i)
        except Exception as exc:  # noqa: BLE001 - a node still starting
            return f"cannot connect: {exc}"
        try:
            peers = session.execute("SELECT rpc_address, tokens FROM system.peers").all()
            serving = [p for p in peers if p.rpc_address and p.tokens]
            if len(serving) != len(self.nodes) - 1:
                return f"{len(serving)} serving peers"
            write = SimpleStatement(f"INSERT INTO {PROBE_KEYSPACE}.up (k) VALUES ({i})",
                                    consistency_level=ConsistencyLevel.ALL)
            session.execute(write)
            return None
        except Exception as exc:  # noqa: BLE001 - the reason is reported on timeout
            return repr(exc)
        finally:
            cluster.shutdown()


@pytest.fixture
def cluster_factory(ringcache_bin, tmp_path):
    """Makes and starts clusters: `cluster_factory(3)`; every node killed at test end."""
    made = []

    def make(n: int = 3, env=None):
        c = RingcacheCluster(ringcache_bin, tmp_path / f"cluster{len(made)}", n, env).start()
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.fixture(scope="module")
def three_node_cluster(ringcache_bin, tmp_path_factory):
    """Three nodes started at the same moment, shared by a test module."""
    c = RingcacheCluster(ringcache_bin, tmp_path_factory.mktemp("cluster"), 3).start()
    yield c
    c.stop()


def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of every live server log to the report."""
    if call.when == "call" and call.excinfo is not None:
        for node in _ALL_NODES:
            if node.proc is not None:
                item.add_report_section("call", f"ringcache log {node.name}", node.log_tail())


# -- TTLs against the node's clock --------------------------------------------------
#
# A cell written with TTL t at node second W expires at W + t: a read at node second R
# sees it while R < W + t (`storage/cell.rs`). The test's clock and the time a request
# takes say nothing about W or R, so TTL tests ask the node: a write made between two
# readings of the node's clock, `before` and `after`, expires at a second in
# [before + t, after + t].

#: TTLs tried in turn: a longer one when the machine was too slow to read a write back
#: before it could have expired.
TTLS = (2, 4, 8, 16, 32)


def node_secs(session):
    """The node's clock in whole seconds, the clock TTLs expire by."""
    millis = session.execute("SELECT toUnixTimestamp(now()) FROM system.local").one()[0]
    return millis // 1000


def wait_for_node_clock(session, secs, timeout=60):
    """Waits until the node's clock reads `secs` or later."""
    deadline = time.monotonic() + timeout
    while node_secs(session) < secs:
        assert time.monotonic() < deadline, f"the node's clock did not reach {secs} in {timeout} s"
        time.sleep(0.05)


class Expiring:
    """A write with a TTL read back before it can have expired, by the node's clock.

    `seen` is what the read returned; `remaining` the range `ttl()` must lie in for that
    read; `expired_from` a node second by which the write has certainly expired."""

    def __init__(self, ttl, seen, remaining, expired_from):
        self.ttl, self.seen, self.remaining, self.expired_from = ttl, seen, remaining, expired_from


def write_expiring(session, write, read, ttls=TTLS):
    """Calls write(ttl), then read(ttl), with the first TTL in `ttls` for which the read
    is certain to have come before the expiry. Each attempt must write afresh: another
    key per TTL, or over what the attempt before wrote. Returns an Expiring."""
    for ttl in ttls:
        before = node_secs(session)
        write(ttl)
        after = node_secs(session)
        seen = read(ttl)
        read_by = node_secs(session)
        if read_by < before + ttl:
            # W >= before and R <= read_by, so ttl() = W + ttl - R >= before + ttl - read_by;
            # W <= after <= R, so ttl() <= ttl.
            return Expiring(ttl, seen, range(before + ttl - read_by, ttl + 1), after + ttl)
    pytest.fail(f"no read came back before its TTL expired, even with {ttls[-1]} s")
