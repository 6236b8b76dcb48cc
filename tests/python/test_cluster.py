"""Acceptance: the DataStax Python driver against a three-node ringcache cluster.

Schema through the metadata log: nodes started at the same moment end with one
schema_version; DDL through node 1 passes the driver's schema agreement wait and is usable
at once through node 3; concurrent CREATE TABLE IF NOT EXISTS of one name through three
nodes makes one table, with one id everywhere; with two of three nodes down, DDL fails
cleanly with Unavailable (no majority for the log) while reads and writes at ONE work.

Routing: with its default token-aware policy the driver sends at least 95 % of prepared
reads and writes to a replica of their partition (the nodes' own
ringcache_coordinator_partitions_total says where each was coordinated); the same
statements through a round-robin policy do not, so the metric can tell.

Events: from one contact point the driver discovers all three hosts, and receives
STATUS_CHANGE DOWN and UP when a node is killed and restarted (its control connection's
handler is wrapped to record them), with `Host.is_up` and its host state listeners
following.
"""

import threading
import time
import urllib.request

import pytest
from cassandra import ConsistencyLevel, Unavailable
from cassandra.cluster import ControlConnection
from cassandra.policies import HostStateListener
from cassandra.query import SimpleStatement

RF3 = "{'class': 'SimpleStrategy', 'replication_factor': 3}"


def wait_for(what, condition, timeout=60.0):
    """Polls `condition` until true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def schema_versions(c, i):
    """Node i's own schema_version and those it reports for its peers."""
    cluster, session = c.connect(i)
    try:
        local = session.execute("SELECT schema_version FROM system.local").one().schema_version
        peers = [p.schema_version for p in session.execute("SELECT schema_version FROM system.peers")]
        return [local, *peers]
    finally:
        cluster.shutdown()


def test_nodes_started_together_end_with_one_schema_version(three_node_cluster):
    c = three_node_cluster

    def agreed():
        seen = [v for i in (1, 2, 3) for v in schema_versions(c, i)]
        return len(seen) == 9 and None not in seen and len(set(seen)) == 1

    wait_for("all three nodes report one schema_version", agreed)


def test_ddl_through_node_1_is_used_at_once_through_node_3(three_node_cluster):
    c = three_node_cluster
    c.wait_all_up()
    cluster1, s1 = c.connect(1)
    cluster3, s3 = c.connect(3)
    try:
        for ddl in (f"CREATE KEYSPACE agree WITH replication = {RF3}",
                    "CREATE TABLE agree.t (k int PRIMARY KEY, v text)"):
            rs = s1.execute(ddl)
            assert rs.response_future.is_schema_agreed, f"no schema agreement after {ddl}"
        # No wait of any kind: node 3 serves the table the moment the DDL returned.
        insert = s3.prepare("INSERT INTO agree.t (k, v) VALUES (?, ?)")
        insert.consistency_level = ConsistencyLevel.QUORUM
        s3.execute(insert, (1, "one"))
        read = SimpleStatement("SELECT v FROM agree.t WHERE k = 1",
                               consistency_level=ConsistencyLevel.QUORUM)
        assert s3.execute(read).one().v == "one"
        assert s1.execute(read).one().v == "one"
    finally:
        cluster1.shutdown()
        cluster3.shutdown()


def test_concurrent_create_table_if_not_exists_makes_one_table_id(three_node_cluster):
    c = three_node_cluster
    c.wait_all_up()
    connections = [c.connect(i) for i in (1, 2, 3)]
    try:
        connections[0][1].execute(f"CREATE KEYSPACE IF NOT EXISTS race WITH replication = {RF3}")
        start = threading.Barrier(3)
        errors = []

        def create(session):
            start.wait()
            try:
                session.execute("CREATE TABLE IF NOT EXISTS race.same (k int PRIMARY KEY, v int)")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))

        threads = [threading.Thread(target=create, args=(s,)) for _, s in connections]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors

        def ids():
            found = set()
            for _, session in connections:
                rows = session.execute("SELECT id FROM system_schema.tables WHERE "
                                       "keyspace_name = 'race' AND table_name = 'same'").all()
                if len(rows) != 1:
                    return None
                found.add(rows[0].id)
            return found

        # Each CREATE returned after its node applied it; the others apply the same log
        # entry, so one id everywhere (polled only for a node still applying).
        wait_for("every node has the table", lambda: ids() is not None)
        assert len(ids()) == 1, f"table ids differ between nodes: {ids()}"
    finally:
        for cluster, _ in connections:
            cluster.shutdown()


def replica_share(c, op):
    """(partitions coordinated on one of their replicas, all partitions) for `op` (read or
    write), summed over the nodes' metrics."""
    local = total = 0.0
    for node in c.nodes:
        url = f"http://{node.host}:{node.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        for line in text.splitlines():
            if line.startswith("ringcache_coordinator_partitions_total{") and f'op="{op}"' in line:
                value = float(line.rsplit(" ", 1)[1])
                total += value
                if 'local_replica="true"' in line:
                    local += value
    return local, total


def test_token_aware_routing_sends_requests_to_replicas(three_node_cluster):
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, RoundRobinPolicy, TokenAwarePolicy

    c = three_node_cluster
    c.wait_all_up()
    admin, s1 = c.connect(1)
    try:
        # At RF 1 a third of the partitions are on each node: routing is what puts a
        # request on the right one.
        s1.execute("CREATE KEYSPACE IF NOT EXISTS routed WITH replication = "
                   "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        s1.execute("CREATE TABLE IF NOT EXISTS routed.kv (k int PRIMARY KEY, v int)")
    finally:
        admin.shutdown()

    def share(policy, first_key):
        profile = ExecutionProfile(load_balancing_policy=policy)
        cluster = Cluster(contact_points=[c.ip(1)], port=c.cql_port,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile})
        try:
            session = cluster.connect()
            wait_for("the driver sees every host up",
                     lambda: len([h for h in cluster.metadata.all_hosts() if h.is_up]) == 3)
            insert = session.prepare("INSERT INTO routed.kv (k, v) VALUES (?, ?)")
            select = session.prepare("SELECT v FROM routed.kv WHERE k = ?")
            keys = range(first_key, first_key + 300)
            shares = {}
            for op, run in (("write", lambda k: session.execute(insert, (k, k))),
                            ("read", lambda k: session.execute(select, (k,)))):
                before = replica_share(c, op)
                for k in keys:
                    run(k)
                after = replica_share(c, op)
                local, total = after[0] - before[0], after[1] - before[1]
                assert total == 300, f"{op}: {total} partitions planned for 300 requests"
                shares[op] = local / total
            return shares
        finally:
            cluster.shutdown()

    routed = share(TokenAwarePolicy(DCAwareRoundRobinPolicy()), 0)
    assert routed["write"] >= 0.95 and routed["read"] >= 0.95, routed
    unrouted = share(RoundRobinPolicy(), 1000)
    assert unrouted["write"] < 0.8 and unrouted["read"] < 0.8, unrouted


class Recorder(HostStateListener):
    """Host state changes the driver announces, as (event, address)."""

    def __init__(self):
        self.seen = []

    def on_up(self, host):
        self.seen.append(("up", host.address))

    def on_down(self, host):
        self.seen.append(("down", host.address))

    def on_add(self, host):
        self.seen.append(("add", host.address))

    def on_remove(self, host):
        self.seen.append(("remove", host.address))


def test_driver_discovers_all_hosts_and_receives_down_and_up(three_node_cluster, monkeypatch):
    from cassandra.cluster import Cluster

    c = three_node_cluster
    c.wait_all_up()
    status_events = []
    handle = ControlConnection._handle_status_change

    def recording(self, event):
        status_events.append((event["change_type"], event["address"][0]))
        return handle(self, event)

    # Wrapped before connecting: the control connection registers the bound method.
    monkeypatch.setattr(ControlConnection, "_handle_status_change", recording)
    cluster = Cluster(contact_points=[c.ip(1)], port=c.cql_port)
    listener = Recorder()
    cluster.register_listener(listener)
    try:
        session = cluster.connect()
        addresses = sorted(h.address for h in cluster.metadata.all_hosts())
        assert addresses == sorted(c.ip(i) for i in (1, 2, 3)), addresses
        wait_for("every host is up", lambda: all(h.is_up for h in cluster.metadata.all_hosts()))
        host3 = next(h for h in cluster.metadata.all_hosts() if h.address == c.ip(3))

        c.node(3).kill()
        wait_for("a DOWN event for node 3", lambda: ("DOWN", c.ip(3)) in status_events)
        wait_for("the driver marks node 3 down", lambda: host3.is_up is False)
        assert ("down", c.ip(3)) in listener.seen
        session.execute(SimpleStatement(
            "INSERT INTO cluster_probe.up (k) VALUES (9)",
            consistency_level=ConsistencyLevel.QUORUM))

        c.node(3).start()
        wait_for("an UP event for node 3", lambda: ("UP", c.ip(3)) in status_events)
        wait_for("the driver marks node 3 up", lambda: host3.is_up is True)
        assert ("up", c.ip(3)) in listener.seen
        assert len(cluster.metadata.all_hosts()) == 3
    finally:
        cluster.shutdown()
    c.wait_all_up()


def test_ddl_without_a_majority_fails_cleanly_while_one_still_works(cluster_factory):
    c = cluster_factory(3)
    c.wait_all_up()
    cluster, session = c.connect(1)
    try:
        session.execute(f"CREATE KEYSPACE lonely WITH replication = {RF3}")
        session.execute("CREATE TABLE lonely.t (k int PRIMARY KEY, v text)")
        c.node(2).kill()
        c.node(3).kill()

        started = time.monotonic()
        with pytest.raises(Unavailable):
            session.execute("CREATE TABLE lonely.u (k int PRIMARY KEY)")
        took = time.monotonic() - started
        assert took < 8.0, f"the DDL took {took:.1f} s to fail"

        one = ConsistencyLevel.ONE
        session.execute(SimpleStatement("INSERT INTO lonely.t (k, v) VALUES (1, 'still')",
                                        consistency_level=one))
        row = session.execute(SimpleStatement("SELECT v FROM lonely.t WHERE k = 1",
                                              consistency_level=one)).one()
        assert row.v == "still"
    finally:
        cluster.shutdown()
