"""Storage bounds through the Python driver: tombstone thresholds warn, then fail the
read with Cassandra's ReadFailure, and the node keeps serving; the tombstone-free read
of the same partition's live slice still works."""

import time

import pytest
from cassandra import ReadFailure
from cassandra.cluster import Cluster


@pytest.fixture
def bounded_node(node_factory, monkeypatch):
    monkeypatch.setenv("RINGCACHE_STORAGE__TOMBSTONE_WARN_THRESHOLD", "10")
    monkeypatch.setenv("RINGCACHE_STORAGE__TOMBSTONE_FAILURE_THRESHOLD", "100")
    return node_factory("bounded")


def session_for(node):
    cluster = Cluster([node.host], port=node.port, protocol_version=4)
    return cluster, cluster.connect()


def test_tombstones_past_the_thresholds_warn_then_fail_the_read(bounded_node):
    cluster, session = session_for(bounded_node)
    try:
        session.execute("CREATE KEYSPACE b WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE b.t (k int, c int, v int, PRIMARY KEY (k, c))")
        insert = session.prepare("INSERT INTO b.t (k, c, v) VALUES (?, ?, ?)")
        delete = session.prepare("DELETE FROM b.t WHERE k = ? AND c = ?")
        for c in range(50):
            session.execute(insert, (1, c, c))
            session.execute(delete, (1, c))
        session.execute(insert, (1, 1000, 1))
        # 50 row deletions: past the warning threshold, under the failure threshold.
        rows = list(session.execute("SELECT c FROM b.t WHERE k = 1"))
        assert [r.c for r in rows] == [1000]
        deadline = time.monotonic() + 10
        while "tombstone_warn_threshold" not in bounded_node.log_tail(200):
            assert time.monotonic() < deadline, bounded_node.log_tail()
            time.sleep(0.1)
        for c in range(50, 150):
            session.execute(delete, (1, c))
        with pytest.raises(ReadFailure) as failure:
            session.execute("SELECT c FROM b.t WHERE k = 1")
        assert "tombstones" in str(failure.value)
        # The slice after the tombstones reads fine, and the node still serves.
        rows = list(session.execute("SELECT c FROM b.t WHERE k = 1 AND c >= 1000"))
        assert [r.c for r in rows] == [1000]
    finally:
        cluster.shutdown()


def test_a_paging_state_only_resumes_the_query_it_came_from(node_factory):
    from cassandra import InvalidRequest
    from cassandra.query import SimpleStatement
    node = node_factory("paging")
    cluster, session = session_for(node)
    try:
        session.execute("CREATE KEYSPACE p WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE p.t (k int, c int, PRIMARY KEY (k, c))")
        for k in (1, 2):
            for c in range(3):
                session.execute("INSERT INTO p.t (k, c) VALUES (%s, %s)", (k, c))
        first = session.execute(SimpleStatement("SELECT c FROM p.t WHERE k = 1", fetch_size=1))
        state = first.paging_state
        assert state is not None
        with pytest.raises(InvalidRequest, match="paging state"):
            session.execute(SimpleStatement("SELECT c FROM p.t WHERE k = 2", fetch_size=1),
                            paging_state=state)
        # The same state still resumes its own query.
        rest = session.execute(SimpleStatement("SELECT c FROM p.t WHERE k = 1", fetch_size=10),
                               paging_state=state)
        assert [r.c for r in rest.current_rows] == [1, 2]
    finally:
        cluster.shutdown()


def test_unexecuted_clauses_and_huge_in_lists_are_refused(node_factory):
    from cassandra import InvalidRequest
    node = node_factory("refusals")
    cluster, session = session_for(node)
    try:
        session.execute("CREATE KEYSPACE r WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE r.t (k int, c int, v int, PRIMARY KEY (k, c))")
        for statement, message in [
            ("SELECT k, count(*) FROM r.t GROUP BY k", "GROUP BY"),
            ("SELECT JSON * FROM r.t", "SELECT JSON"),
            ("SELECT max(v) FROM r.t", "max"),
        ]:
            with pytest.raises(InvalidRequest, match=message):
                session.execute(statement)
        keys = ", ".join(str(i) for i in range(400))
        with pytest.raises(InvalidRequest, match="combinations"):
            session.execute(f"DELETE FROM r.t WHERE k IN ({keys}) AND c IN ({keys})")
        session.execute("INSERT INTO r.t (k, c, v) VALUES (1, 1, 1)")
        assert session.execute("SELECT v FROM r.t WHERE k = 1").one().v == 1
    finally:
        cluster.shutdown()
