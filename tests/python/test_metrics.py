"""The Prometheus endpoint serves the series the Grafana dashboard queries
(grafana/dashboards/ringcache.json), after real driver traffic."""

import re
import urllib.request

from cassandra.cluster import Cluster

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
