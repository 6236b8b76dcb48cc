"""Range tombstones through the Python driver (issue 4, item 2): DELETE with a clustering
slice, a prefix, or IN on a prefix hides exactly the rows it covers, by timestamp; a newer
write shows again; ASC and DESC tables agree; reads in either order and paged at any size
(pages resuming inside a deleted range) see the same rows. Static columns survive a range
deletion, as in Cassandra."""

import itertools

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Cluster
from cassandra.query import SimpleStatement

KS = "rt"


@pytest.fixture(scope="module")
def session(node):
    cluster = Cluster([node.host], port=node.port, protocol_version=4)
    session = cluster.connect()
    session.execute(f"CREATE KEYSPACE {KS} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute(f"CREATE TABLE {KS}.up (k int, c int, v int, s int static, "
                    "PRIMARY KEY (k, c))")
    session.execute(f"CREATE TABLE {KS}.down (k int, c int, v int, PRIMARY KEY (k, c)) "
                    "WITH CLUSTERING ORDER BY (c DESC)")
    session.execute(f"CREATE TABLE {KS}.two (k int, c1 int, c2 text, v int, "
                    "PRIMARY KEY (k, c1, c2)) WITH CLUSTERING ORDER BY (c1 ASC, c2 DESC)")
    yield session
    cluster.shutdown()


_partition = itertools.count(1)


def fresh_partition():
    """A partition no other test touched."""
    return next(_partition)


def fill(session, table, k, cs, ts=None):
    using = f" USING TIMESTAMP {ts}" if ts is not None else ""
    insert = session.prepare(f"INSERT INTO {KS}.{table} (k, c, v) VALUES (?, ?, ?){using}")
    for c in cs:
        session.execute(insert, (k, c, c))


def cs(session, table, k, where="", desc=None, fetch_size=None):
    order = "" if desc is None else f" ORDER BY c {'DESC' if desc else 'ASC'}"
    query = SimpleStatement(f"SELECT c FROM {KS}.{table} WHERE k = {k}{where}{order}",
                            fetch_size=fetch_size)
    return [r.c for r in session.execute(query)]


def both_orders(session, table, k, expected):
    """`expected` (ascending) read ascending and descending, whole and in small pages."""
    for desc in (False, True):
        want = sorted(expected, reverse=desc)
        assert cs(session, table, k, desc=desc) == want
        for size in (1, 2, 3):
            assert cs(session, table, k, desc=desc, fetch_size=size) == want, (desc, size)


@pytest.mark.parametrize("table", ["up", "down"])
def test_a_slice_deletes_exactly_its_rows(session, table):
    k = fresh_partition()
    fill(session, table, k, range(20))
    session.execute(f"DELETE FROM {KS}.{table} WHERE k = {k} AND c > 3 AND c <= 8")
    both_orders(session, table, k, [c for c in range(20) if not 3 < c <= 8])
    session.execute(f"DELETE FROM {KS}.{table} WHERE k = {k} AND c >= 15")
    session.execute(f"DELETE FROM {KS}.{table} WHERE k = {k} AND c < 1")
    both_orders(session, table, k, [c for c in range(1, 15) if not 3 < c <= 8])
    # Other partitions are untouched.
    other = fresh_partition()
    fill(session, table, other, range(3))
    assert cs(session, table, other) == sorted(range(3), reverse=table == "down")


@pytest.mark.parametrize("table", ["up", "down"])
def test_a_newer_write_shows_again_an_older_one_stays_hidden(session, table):
    k = fresh_partition()
    fill(session, table, k, range(10), ts=1000)
    session.execute(f"DELETE FROM {KS}.{table} USING TIMESTAMP 2000 "
                    f"WHERE k = {k} AND c >= 2 AND c < 8")
    both_orders(session, table, k, [0, 1, 8, 9])
    fill(session, table, k, [3], ts=2000)  # the deletion's own timestamp: still covered
    fill(session, table, k, [4, 6], ts=2001)
    fill(session, table, k, [5], ts=1500)  # late and older: stays hidden
    both_orders(session, table, k, [0, 1, 4, 6, 8, 9])
    # A range deleted with an older timestamp hides nothing newer.
    session.execute(f"DELETE FROM {KS}.{table} USING TIMESTAMP 500 WHERE k = {k} AND c > 0")
    both_orders(session, table, k, [0, 1, 4, 6, 8, 9])


def test_overlapping_and_nested_ranges_apply_the_newest_covering_deletion(session):
    k = fresh_partition()
    fill(session, "up", k, range(30), ts=100)
    run = session.execute
    run(f"DELETE FROM {KS}.up USING TIMESTAMP 300 WHERE k = {k} AND c >= 0 AND c < 25")
    run(f"DELETE FROM {KS}.up USING TIMESTAMP 50 WHERE k = {k} AND c >= 5 AND c < 10")
    run(f"DELETE FROM {KS}.up USING TIMESTAMP 500 WHERE k = {k} AND c >= 10 AND c <= 12")
    fill(session, "up", k, range(0, 30, 2), ts=400)
    # Even rows written at 400 beat the [0, 25) deletion at 300, except inside [10, 12].
    expected = [c for c in range(30) if c >= 25 or (c % 2 == 0 and not 10 <= c <= 12)]
    both_orders(session, "up", k, expected)


def test_prefix_deletes_and_in_on_a_prefix(session):
    k = fresh_partition()
    insert = session.prepare(f"INSERT INTO {KS}.two (k, c1, c2, v) VALUES (?, ?, ?, ?)")
    for c1 in range(4):
        for c2 in "abc":
            session.execute(insert, (k, c1, c2, c1))

    def keys():
        rows = session.execute(f"SELECT c1, c2 FROM {KS}.two WHERE k = {k}")
        return [(r.c1, r.c2) for r in rows]

    session.execute(f"DELETE FROM {KS}.two WHERE k = {k} AND c1 = 1")
    assert keys() == [(c1, c2) for c1 in (0, 2, 3) for c2 in "cba"]
    session.execute(f"DELETE FROM {KS}.two WHERE k = {k} AND c1 IN (0, 3) AND c2 > 'a'")
    assert keys() == [(0, "a")] + [(2, c2) for c2 in "cba"] + [(3, "a")]
    prepared = session.prepare(f"DELETE FROM {KS}.two WHERE k = ? AND c1 = ? AND c2 <= ?")
    session.execute(prepared, (k, 2, "b"))
    assert keys() == [(0, "a"), (2, "c"), (3, "a")]
    # Paged reads agree.
    rows = session.execute(SimpleStatement(f"SELECT c1, c2 FROM {KS}.two WHERE k = {k}",
                                           fetch_size=1))
    assert [(r.c1, r.c2) for r in rows] == [(0, "a"), (2, "c"), (3, "a")]


def test_static_columns_survive_a_range_deletion_a_partition_deletion_does_not(session):
    k = fresh_partition()
    session.execute(f"INSERT INTO {KS}.up (k, c, v, s) VALUES ({k}, 1, 1, 7)")
    fill(session, "up", k, [2, 3])
    session.execute(f"DELETE FROM {KS}.up WHERE k = {k} AND c >= 0")
    rows = list(session.execute(f"SELECT c, s FROM {KS}.up WHERE k = {k}"))
    # Cassandra shows a partition with only static data as one row with null clustering.
    assert [(r.c, r.s) for r in rows] == [(None, 7)]
    session.execute(f"DELETE FROM {KS}.up WHERE k = {k}")
    assert list(session.execute(f"SELECT c, s FROM {KS}.up WHERE k = {k}")) == []


@pytest.mark.parametrize("table", ["up", "down"])
def test_paging_through_many_range_deletions(session, table):
    k = fresh_partition()
    fill(session, table, k, range(60))
    deleted = set()
    for lo in range(0, 60, 7):
        session.execute(f"DELETE FROM {KS}.{table} WHERE k = {k} AND c > {lo} AND c < {lo + 4}")
        deleted.update(range(lo + 1, lo + 4))
    expected = [c for c in range(60) if c not in deleted]
    both_orders(session, table, k, expected)
    # Slices starting inside a deleted range, in both orders.
    for desc in (False, True):
        got = cs(session, table, k, where=" AND c >= 16 AND c <= 30", desc=desc, fetch_size=2)
        assert got == sorted((c for c in expected if 16 <= c <= 30), reverse=desc)


def test_refusals_match_cassandra(session):
    k = fresh_partition()
    cases = [
        (f"DELETE v FROM {KS}.up WHERE k = {k} AND c > 1",
         "Range deletions are not supported for specific columns"),
        (f"DELETE FROM {KS}.up WHERE k = {k} AND c > 1 AND c > 2",
         "More than one restriction was found for the start bound on c"),
        (f"DELETE FROM {KS}.two WHERE k = {k} AND c2 > 'a'",
         'PRIMARY KEY column "c2" cannot be restricted as preceding column "c1" is not restricted'),
        (f"DELETE FROM {KS}.two WHERE k = {k} AND c1 > 1 AND c2 = 'a'",
         'Clustering column "c2" cannot be restricted (preceding column is restricted by a '
         'non-EQ relation)'),
    ]
    for cql, message in cases:
        with pytest.raises(InvalidRequest) as refused:
            session.execute(cql)
        assert message in str(refused.value), cql
