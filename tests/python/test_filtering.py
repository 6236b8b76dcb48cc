"""Acceptance for issue 4 item 4: ALLOW FILTERING through the DataStax driver.

Regular and clustering columns with =, <, <=, >, >= and IN, CONTAINS and
CONTAINS KEY on collections, static columns, and Cassandra's exact message when
ALLOW FILTERING is missing. Expected rows are computed here from the rows
written, never read back from the server.
"""

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Cluster

RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
NEEDS_FILTERING = (
    "Cannot execute this query as it might involve data filtering and thus may have "
    "unpredictable performance. If you want to execute this query despite the performance "
    "unpredictability, use ALLOW FILTERING"
)

# (k, c, v, tags, attrs): the rows written.
ROWS = [
    (k, c, (k * 10 + c) % 7, {f"t{c % 3}", f"k{k}"}, {f"a{c}": c * k})
    for k in range(4)
    for c in range(5)
]


@pytest.fixture(scope="module")
def session(node):
    cluster = Cluster(contact_points=[node.host], port=node.port)
    s = cluster.connect()
    s.execute(f"CREATE KEYSPACE filt WITH replication = {RF1}")
    s.execute("CREATE TABLE filt.t (k int, c int, v int, tags set<text>, attrs map<text, int>, "
              "owner text static, PRIMARY KEY (k, c))")
    insert = s.prepare("INSERT INTO filt.t (k, c, v, tags, attrs) VALUES (?, ?, ?, ?, ?)")
    for row in ROWS:
        s.execute(insert, row)
    for k in range(4):
        s.execute("UPDATE filt.t SET owner = %s WHERE k = %s", ("even" if k % 2 == 0 else "odd", k))
    yield s
    cluster.shutdown()


def keys(session, where):
    rows = session.execute(f"SELECT k, c FROM filt.t WHERE {where} ALLOW FILTERING")
    return sorted((r.k, r.c) for r in rows)


def expected(predicate):
    return sorted((k, c) for (k, c, v, tags, attrs) in ROWS if predicate(k, c, v, tags, attrs))


@pytest.mark.parametrize("where, predicate", [
    ("v = 3", lambda k, c, v, t, a: v == 3),
    ("v < 3", lambda k, c, v, t, a: v < 3),
    ("v <= 3", lambda k, c, v, t, a: v <= 3),
    ("v > 4", lambda k, c, v, t, a: v > 4),
    ("v >= 4 AND v < 6", lambda k, c, v, t, a: 4 <= v < 6),
    ("v IN (1, 5)", lambda k, c, v, t, a: v in (1, 5)),
    ("c = 2", lambda k, c, v, t, a: c == 2),
    ("c > 2 AND v < 5", lambda k, c, v, t, a: c > 2 and v < 5),
    ("k = 1 AND v > 2", lambda k, c, v, t, a: k == 1 and v > 2),
    ("tags CONTAINS 't1'", lambda k, c, v, t, a: "t1" in t),
    ("tags CONTAINS 'k2' AND c < 3", lambda k, c, v, t, a: "k2" in t and c < 3),
    ("attrs CONTAINS KEY 'a3'", lambda k, c, v, t, a: "a3" in a),
    ("attrs CONTAINS 6", lambda k, c, v, t, a: 6 in a.values()),
    ("owner = 'odd'", lambda k, c, v, t, a: k % 2 == 1),
])
def test_filtered_rows_are_exactly_those_that_match(session, where, predicate):
    assert keys(session, where) == expected(predicate)


def test_prepared_filtering_binds_its_markers(session):
    prepared = session.prepare("SELECT k, c FROM filt.t WHERE v > ? AND tags CONTAINS ? ALLOW FILTERING")
    rows = sorted((r.k, r.c) for r in session.execute(prepared, (2, "t0")))
    assert rows == expected(lambda k, c, v, t, a: v > 2 and "t0" in t)


@pytest.mark.parametrize("where", ["v = 3", "c = 2", "tags CONTAINS 't1'", "k = 1 AND v > 2"])
def test_filtering_without_allow_filtering_gets_cassandras_message(session, where):
    with pytest.raises(InvalidRequest) as raised:
        session.execute(f"SELECT * FROM filt.t WHERE {where}")
    assert NEEDS_FILTERING in str(raised.value)
