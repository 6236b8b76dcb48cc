"""SELECT answers as Cassandra 4.1 gives them, through the DataStax driver.

`count(column)` over rows with nulls, with a WHERE and with paging; unset and null
`LIMIT ?`; the order of `IN` partitions; selectors on collection elements, user type
fields and casts; the native function families; and the refusals' messages. Each
expectation is the one Cassandra's own CQL tests assert (AggregationTest, SelectLimitTest,
SelectTest, CastFctsTest, TimeFctsTest, BlobTypeFunctionsTest, ...), computed here from
the rows written, never read back from the server.
"""

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Cluster
from cassandra.query import SimpleStatement, UNSET_VALUE

RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"


@pytest.fixture(scope="module")
def session(node):
    cluster = Cluster(contact_points=[node.host], port=node.port)
    s = cluster.connect()
    s.execute(f"CREATE KEYSPACE sel WITH replication = {RF1}")
    s.set_keyspace("sel")
    yield s
    cluster.shutdown()


def table(session, name, definition):
    session.execute(f"DROP TABLE IF EXISTS {name}")
    session.execute(f"CREATE TABLE {name} {definition}")


def one(session, query, *args, fetch_size=None):
    statement = SimpleStatement(query, fetch_size=fetch_size)
    result = session.execute(statement, args or None)
    rows = list(result)
    assert len(rows) == 1, rows
    return result.column_names, tuple(rows[0])


# -- count(column) (AggregationTest.testFunctions) -------------------------------------------


def test_count_of_a_column_counts_its_non_null_values(session):
    table(session, "agg", "(a int, b int, c double, d decimal, e smallint, f tinyint, "
                          "PRIMARY KEY (a, b))")
    assert one(session, "SELECT COUNT(*) FROM agg") == (["count"], (0,))
    for b, c, e in [(1, 11.5, 1), (2, 9.5, 2), (3, 9.0, 3)]:
        session.execute("INSERT INTO agg (a, b, c, e, f) VALUES (1, %s, %s, %s, %s)",
                        (b, c, e, e))
    session.execute("INSERT INTO agg (a, b, d) VALUES (1, 5, 1.0)")
    assert one(session, "SELECT COUNT(*) FROM agg")[1] == (4,)
    assert one(session, "SELECT COUNT(1) FROM agg")[1] == (4,)
    names, values = one(session, "SELECT COUNT(b), count(c), count(e), count(f) FROM agg")
    assert values == (4, 3, 3, 3)
    assert names == ["system.count(b)", "system.count(c)", "system.count(e)",
                     "system.count(f)"]
    assert one(session, "SELECT count(c) AS n FROM agg") == (["n"], (3,))


def test_count_of_a_column_with_a_where_clause_paging_and_deleted_cells(session):
    table(session, "aggw", "(k int, c int, v int, s text static, PRIMARY KEY (k, c))")
    for k in range(3):
        for c in range(10):
            v = None if c % 3 == 0 else c
            session.execute("INSERT INTO aggw (k, c, v) VALUES (%s, %s, %s)", (k, c, v))
    session.execute("UPDATE aggw SET s = 'x' WHERE k = 1")
    session.execute("DELETE v FROM aggw WHERE k = 2 AND c = 1")
    rows = [(k, c, None if c % 3 == 0 or (k, c) == (2, 1) else c)
            for k in range(3) for c in range(10)]

    def expect(predicate):
        chosen = [r for r in rows if predicate(*r)]
        return (len(chosen), sum(1 for r in chosen if r[2] is not None))

    assert one(session, "SELECT count(*), count(v) FROM aggw")[1] == expect(lambda k, c, v: True)
    assert one(session, "SELECT count(*), count(v) FROM aggw WHERE k = 2")[1] == \
        expect(lambda k, c, v: k == 2)
    assert one(session, "SELECT count(*), count(v) FROM aggw WHERE k IN (0, 2) AND c > 4")[1] \
        == expect(lambda k, c, v: k in (0, 2) and c > 4)
    assert one(session, "SELECT count(*), count(v) FROM aggw WHERE v > 4 ALLOW FILTERING")[1] \
        == expect(lambda k, c, v: v is not None and v > 4)
    for fetch_size in (1, 7, 1000):
        assert one(session, "SELECT count(v) FROM aggw", fetch_size=fetch_size)[1] == \
            (expect(lambda k, c, v: True)[1],)
    # A static column counts once per row of its partition.
    assert one(session, "SELECT count(s) FROM aggw")[1] == (10,)


def test_count_of_anything_but_one_is_refused(session):
    table(session, "aggx", "(k int PRIMARY KEY, v int)")
    with pytest.raises(Exception, match=r"Only COUNT\(1\) is supported, got COUNT\(2\)"):
        session.execute("SELECT COUNT(2) FROM aggx")


# -- LIMIT ? unset and null (SelectLimitTest) ---------------------------------------------


def test_an_unset_limit_is_no_limit_and_a_null_one_is_refused(session):
    table(session, "lim", "(k int, c int, PRIMARY KEY (k, c))")
    for k in range(3):
        for c in range(4):
            session.execute("INSERT INTO lim (k, c) VALUES (%s, %s)", (k, c))
    limit = session.prepare("SELECT k, c FROM lim LIMIT ?")
    assert len(list(session.execute(limit, [UNSET_VALUE]))) == 12
    assert len(list(session.execute(limit, [5]))) == 5
    per = session.prepare("SELECT k, c FROM lim PER PARTITION LIMIT ? LIMIT ?")
    assert len(list(session.execute(per, [UNSET_VALUE, UNSET_VALUE]))) == 12
    assert len(list(session.execute(per, [1, UNSET_VALUE]))) == 3
    assert len(list(session.execute(per, [UNSET_VALUE, 2]))) == 2
    for statement, values in [(limit, [None]), (per, [None, 2]), (per, [1, None])]:
        with pytest.raises(InvalidRequest, match="Invalid null value of limit"):
            session.execute(statement, values)
    with pytest.raises(InvalidRequest, match="LIMIT must be strictly positive"):
        session.execute(limit, [0])


# -- IN on the partition key: value order (SelectTest, MultiPartitionPager) ------------------


def pairs(session, query, args=None, fetch_size=None):
    statement = query if not isinstance(query, str) else SimpleStatement(query, fetch_size=fetch_size)
    if fetch_size is not None:
        statement.fetch_size = fetch_size
    return [tuple(r) for r in session.execute(statement, args)]


def test_in_partitions_come_in_the_order_of_their_key_values_across_pages(session):
    table(session, "inord", "(k int, c int, v int, PRIMARY KEY (k, c))")
    table(session, "inord2", "(a text, b bigint, c int, PRIMARY KEY ((a, b), c))")
    for k in range(-5, 6):
        for c in range(3):
            session.execute("INSERT INTO inord (k, c, v) VALUES (%s, %s, 0)", (k, c))
            for a in ("x", "b", "é"):
                session.execute("INSERT INTO inord2 (a, b, c) VALUES (%s, %s, %s)", (a, k, c))
    wanted = [3, -2, 0, 5, 1, -5, 3]
    expected = [(k, c) for k in sorted(set(wanted)) for c in range(3)]
    query = f"SELECT k, c FROM inord WHERE k IN ({', '.join(map(str, wanted))})"
    prepared = session.prepare("SELECT k, c FROM inord WHERE k IN ?")
    for fetch_size in (None, 1, 2, 4, 5000):
        assert pairs(session, query, fetch_size=fetch_size) == expected, fetch_size
        assert pairs(session, prepared, [wanted], fetch_size=fetch_size) == expected
    # Compound keys: the product in the order of the first component, then the second.
    rows = pairs(session, "SELECT a, b, c FROM inord2 WHERE a IN ('x', 'é', 'b') "
                          "AND b IN (2, -3) AND c = 1", fetch_size=1)
    assert rows == [(a, b, 1) for a in ("b", "x", "é") for b in (-3, 2)]
