"""Acceptance: what INSERT, UPDATE, DELETE, BATCH and IF conditions accept and refuse,
through the DataStax Python driver, against the behaviour Cassandra 4.1's own tests assert.

Bind markers inside collection, tuple and user type literals prepare with Cassandra's
marker names and bind; the timestamp, date and duration literal forms Cassandra parses are
written; keys over 64 KiB, the reserved timestamp, repeated duration units and oversized
multi-partition batches are refused with Cassandra's messages; `IF ... CONTAINS [KEY]`
conditions decide as Cassandra's InsertUpdateIfConditionCollectionsTest expects.
"""

import datetime
import re

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Cluster
from cassandra.query import BatchStatement, BatchType
from cassandra.util import Duration

RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"


@pytest.fixture(scope="module")
def session(node):
    cluster = Cluster(contact_points=[node.host], port=node.port)
    s = cluster.connect()
    s.execute(f"CREATE KEYSPACE wl WITH replication = {RF1}")
    s.set_keyspace("wl")
    s.execute("CREATE TYPE addr (street text, zip int)")
    s.execute("CREATE TABLE n (k int PRIMARY KEY, l list<int>, m map<text, int>, "
              "st set<int>, tu tuple<int, text>, a frozen<addr>, fl frozen<list<frozen<addr>>>)")
    s.execute("CREATE TABLE lit (k int PRIMARY KEY, d duration, ts timestamp, dt date, b bigint)")
    s.execute("CREATE TABLE kc (k text, c text, v int, PRIMARY KEY (k, c))")
    s.execute("CREATE TABLE c (k int PRIMARY KEY, v text, l list<text>, s set<text>, "
              "m map<text, text>)")
    yield s
    cluster.shutdown()


def test_markers_inside_literals_prepare_with_cassandras_names(session):
    ps = session.prepare(
        "INSERT INTO n (k, l, m, st, tu, a, fl) "
        "VALUES (?, [?, ?], {'a': ?, ?: 2}, {?, ?}, (?, ?), {street: ?, zip: ?}, [{zip: ?}])")
    names = [c.name for c in ps.column_metadata]
    assert names == ["k", "value(l)", "value(l)", "value(m)", "key(m)", "value(st)",
                     "value(st)", "tu[0]", "tu[1]", "a.street", "a.zip", "value(fl).zip"]
    session.execute(ps, (1, 10, 20, 1, "b", 5, 3, 7, "x", "main", 9, 11))
    row = session.execute("SELECT * FROM n WHERE k = 1").one()
    assert row.l == [10, 20]
    assert dict(row.m) == {"a": 1, "b": 2}
    assert sorted(row.st) == [3, 5]
    assert row.tu == (7, "x")
    assert (row.a.street, row.a.zip) == ("main", 9)
    assert [x.zip for x in row.fl] == [11]


def test_markers_inside_literals_bind_unprepared_and_refuse_null(session):
    session.execute("INSERT INTO n (k, l, tu) VALUES (%s, [%s, %s], (%s, %s))", (2, 1, 2, 3, "t"))
    row = session.execute("SELECT l, tu FROM n WHERE k = 2").one()
    assert (row.l, row.tu) == ([1, 2], (3, "t"))
    ps = session.prepare("INSERT INTO n (k, l) VALUES (?, [?, ?])")
    with pytest.raises(InvalidRequest, match="null is not supported inside collections"):
        session.execute(ps, (3, 1, None))


def test_every_cassandra_timestamp_date_and_duration_form_is_written(session):
    expected = datetime.datetime(2011, 2, 3, 4, 5)
    for literal in ["'2011-02-03 04:05:00 UTC'", "'2011-02-03T04:05:00.000Z'",
                    "'2011-02-03 05:05+01:00'", "'2011-02-03T06:05:00+0200'",
                    "1296705900000", "'1296705900000'"]:
        session.execute(f"INSERT INTO lit (k, ts) VALUES (1, {literal})")
        assert session.execute("SELECT ts FROM lit WHERE k = 1").one().ts == expected, literal
    session.execute("INSERT INTO lit (k, dt) VALUES (1, '2147483648')")
    assert str(session.execute("SELECT dt FROM lit WHERE k = 1").one().dt) == "1970-01-01"
    for literal, (months, days, nanos) in [
            ("P1Y2M", (14, 0, 0)), ("PT1H", (0, 0, 3_600_000_000_000)), ("P1W", (0, 7, 0)),
            ("P0001-02-03T04:05:06", (14, 3, 14_706_000_000_000)), ("-P1D", (0, -1, 0))]:
        session.execute(f"INSERT INTO lit (k, d) VALUES (1, {literal})")
        assert session.execute("SELECT d FROM lit WHERE k = 1").one().d == \
            Duration(months, days, nanos), literal


def test_what_cassandra_refuses_is_refused_with_its_messages(session):
    cases = [
        ("INSERT INTO lit (k, d) VALUES (1, 1h1h)",
         "Invalid duration. The hours are specified multiple times"),
        ("INSERT INTO lit (k, b) VALUES (1, '')",
         'Invalid STRING constant () for "b" of type bigint'),
        ("INSERT INTO n (k, a) VALUES (1, {1: 2})",
         "Invalid map literal for a of type frozen<addr>"),
        ("INSERT INTO lit (k, b) VALUES (1, 1) USING TIMESTAMP -9223372036854775808",
         "Out of bound timestamp, must be in [-9223372036854775807, 9223372036854775807]"),
    ]
    for cql, message in cases:
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            session.execute(cql)
    big = "x" * 70_000
    for cql in ["INSERT INTO kc (k, c, v) VALUES (%s, 'a', 1)",
                "INSERT INTO kc (k, c, v) VALUES ('a', %s, 1)"]:
        with pytest.raises(InvalidRequest,
                           match="Key length of 70000 is longer than maximum of 65535"):
            session.execute(cql, (big,))
    assert session.execute("SELECT * FROM kc").one() is None


def test_multi_partition_batches_past_the_fail_threshold_are_refused(session):
    value = "v" * 20_000
    ps = session.prepare("INSERT INTO kc (k, c, v) VALUES (?, ?, 1)")
    # Three partitions of 20 KB: past batch_size_fail_threshold_in_kb (50).
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    for k in range(3):
        batch.add(ps, (f"p{k}", value))
    with pytest.raises(InvalidRequest, match="Batch too large"):
        session.execute(batch)
    assert session.execute("SELECT * FROM kc WHERE k = 'p0'").one() is None
    # One partition is one mutation, whatever its size.
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    for c in range(3):
        batch.add(ps, ("one", f"{c}{value}"))
    session.execute(batch)
    assert len(list(session.execute("SELECT c FROM kc WHERE k = 'one'"))) == 3


def test_contains_conditions_decide_as_cassandra(session):
    session.execute("INSERT INTO c (k, v, l, s, m) VALUES "
                    "(0, 'a', ['foo', 'bar'], {'bar', 'foo'}, {'foo': 'bar'})")

    def applied(condition, *values):
        return session.execute(f"UPDATE c SET v = 'a' WHERE k = 0 IF {condition}",
                               values).was_applied

    assert applied("l CONTAINS 'bar'")
    assert not applied("l CONTAINS 'baz'")
    assert applied("s CONTAINS 'foo' AND s CONTAINS 'bar'")
    assert applied("m CONTAINS 'bar' AND m CONTAINS KEY 'foo'")
    assert not applied("m CONTAINS 'foo'")
    assert not applied("m CONTAINS KEY 'bar'")
    assert applied("v IN (null, 'a')")
    assert applied("l[1] IN (null, 'xxx', 'bar')")
    assert applied("m['foo'] = 'bar'")
    for condition, message in [
            ("v CONTAINS 'a'", "Cannot use CONTAINS on non-collection column v"),
            ("l CONTAINS KEY 'a'", "Cannot use CONTAINS KEY on non-map column l"),
            ("l CONTAINS null", 'Invalid comparison with null for operator "CONTAINS"'),
            ("l[-2] = 'a'", "Invalid negative list index -2")]:
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            applied(condition)
