"""The Prometheus endpoint serves the series the Grafana dashboard queries
(grafana/dashboards/ringcache.json), after real driver traffic: a single node's
families, and on a two-node cluster every series any panel queries."""

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster

from conftest import READY_TIMEOUT_S, REPO_ROOT, RingcacheNode

DASHBOARD_SERIES = [
    "ringcache_requests_total",
    "ringcache_request_duration_seconds_bucket",
    "ringcache_errors_total",
    "ringcache_connections_open",
    "ringcache_cache_hits_total",
    "ringcache_cache_misses_total",
    "ringcache_cache_coalesced_total",
    "ringcache_cache_bypassed_total",
    "ringcache_cache_stale_total",
    "ringcache_cache_evictions_total",
    "ringcache_cache_invalidations_total",
    "ringcache_cache_bytes",
    "ringcache_cache_capacity_bytes",
    "ringcache_storage_partition_reads_total",
    "ringcache_heap_allocated_bytes",
    "ringcache_process_resident_bytes",
]


def scrape(node) -> str:
    url = f"http://{node.host}:{node.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def test_metrics_expose_dashboard_series(node):
    cluster = Cluster(contact_points=[node.host], port=node.port)
    try:
        session = cluster.connect()
        session.execute("SELECT * FROM system.local")
        # A user-table read twice: a miss that fills the cache, then a hit.
        for _ in range(2):
            session.execute("SELECT * FROM chat.threads WHERE thread_id = 'lobby'")
        try:
            session.execute("SELECT * FROM no_such_ks.no_such_table")
        except Exception:  # noqa: BLE001 - the error is the point: errors_total{code}
            pass
        text = scrape(node)
        opened = re.search(r"^ringcache_connections_open (\d+)", text, re.M)
        assert opened and int(opened.group(1)) >= 1, text
    finally:
        cluster.shutdown()
    for series in DASHBOARD_SERIES:
        assert re.search(rf"^{series}[{{ ]", text, re.M), f"{series} missing:\n{text}"
    assert re.search(r'^ringcache_requests_total\{opcode="[A-Za-z_]+"\} [1-9]', text, re.M), text
    labels = 'keyspace="chat",table="threads"'
    assert re.search(rf"^ringcache_cache_misses_total\{{{labels}\}} 1$", text, re.M), text
    assert re.search(rf"^ringcache_cache_hits_total\{{{labels}\}} 1$", text, re.M), text
    heap = re.search(r"^ringcache_heap_allocated_bytes (\d+)", text, re.M)
    assert heap and int(heap.group(1)) > 0, "the counting allocator reports nothing"


# -- the cluster panels ------------------------------------------------------

DASHBOARD = Path(__file__).resolve().parents[2] / "grafana/dashboards/ringcache.json"


def dashboard_series() -> set:
    """Every ringcache_* series a panel (or the node variable) queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    texts = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    texts += [v["definition"] for v in dashboard["templating"]["list"]]
    # The backend's panels are fed by nodes with [backend] engine = "cql" only; the Rust test
    # cluster::front checks a front node exports each of them.
    return {name for text in texts for name in re.findall(r"\bringcache_[a-z_]+", text)
            if not name.startswith("ringcache_backend_")}


class ClusterNode(RingcacheNode):
    """A node on its own loopback address with the usual ports, as ccm runs them, so the
    driver finds its peers on the contact point's port."""

    def __init__(self, binary, workdir, address, seed=None):
        super().__init__(binary, workdir, address)
        self.address_ip = address
        self.seed = seed

    def start(self, timeout: float = READY_TIMEOUT_S):
        self.ready_file.unlink(missing_ok=True)
        cmd = [str(self.binary), "serve", "--data-dir", str(self.data_dir),
               "--listen-address", self.address_ip, "--ready-file", str(self.ready_file)]
        if self.seed:
            cmd += ["--seeds", self.seed]
        env = dict(os.environ, RINGCACHE_CLUSTER_SECRET="test-metrics", NO_COLOR="1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self._wait_ready(timeout)
        return self


def wait_for(what, condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def both_normal(ringcache_bin, host) -> bool:
    status = subprocess.run([ringcache_bin, "status", "--json", "-H", host],
                            capture_output=True, text=True, timeout=30)
    if status.returncode != 0:
        return False
    nodes = json.loads(status.stdout)["nodes"]
    return sum(1 for n in nodes if n["up"] and n["state"] == "Normal") == 2


def test_cluster_metrics_expose_every_series_the_dashboard_queries(ringcache_bin, tmp_path):
    nodes = [ClusterNode(ringcache_bin, tmp_path, "127.0.21.1").start()]
    try:
        nodes.append(ClusterNode(ringcache_bin, tmp_path, "127.0.21.2", seed="127.0.21.1").start())
        # Node 2 is new to the cluster: it joins (UJ), streams, then serves (UN).
        for node in nodes:
            wait_for(f"{node.host} sees both nodes up and NORMAL",
                     lambda n=node: both_normal(ringcache_bin, n.host))
        cluster = Cluster(contact_points=["127.0.21.1"], port=9042)
        try:
            session = cluster.connect()
            session.execute("CREATE KEYSPACE IF NOT EXISTS rf2 WITH replication = "
                            "{'class': 'SimpleStrategy', 'replication_factor': 2}")
            session.execute("CREATE TABLE IF NOT EXISTS rf2.kv (k int PRIMARY KEY, v int)")
            insert = session.prepare("INSERT INTO rf2.kv (k, v) VALUES (?, ?)")
            select = session.prepare("SELECT v FROM rf2.kv WHERE k = ?")
            # QUORUM both ways, so each read sees the write before it.
            insert.consistency_level = select.consistency_level = ConsistencyLevel.QUORUM
            for k in range(20):
                session.execute(insert, (k, k))
                assert session.execute(select, (k,)).one().v == k
        finally:
            cluster.shutdown()
        # A repair, so the repair families (last success per table included) have series.
        repair = subprocess.run([ringcache_bin, "repair", "rf2", "-H", "127.0.21.1"],
                                capture_output=True, text=True, timeout=120)
        assert repair.returncode == 0, repair.stderr
        assert "succeeded" in repair.stdout, repair.stdout
        texts = [scrape(node) for node in nodes]
    finally:
        for node in nodes:
            node.stop()
    exposed = {m for text in texts for m in re.findall(r"^(ringcache_[a-z_]+)[{ ]", text, re.M)}
    missing = sorted(dashboard_series() - exposed)
    assert not missing, f"the dashboard queries series no node exposes: {missing}"
    for text, peer in zip(texts, ["127.0.21.2", "127.0.21.1"]):
        assert re.search(rf'^ringcache_peer_up\{{peer="{peer}"\}} 1$', text, re.M), text
        assert re.search(r"^ringcache_schema_agreement_nodes 2$", text, re.M), text
        assert re.search(r"^ringcache_metadata_leader_known 1$", text, re.M), text
    both = "\n".join(texts)
    assert re.search(r'^ringcache_coordinator_requests_total\{consistency="QUORUM",outcome="ok"\} \d+',
                     both, re.M), both
