"""Acceptance for issue 4 item 1: non-frozen collections, through the DataStax driver.

Each operation's result is Cassandra's documented semantics (CQL reference,
"Collections"), computed here: list append, prepend, set and delete by index,
removal by value; set add and remove; map put and remove by key; whole
overwrites; `writetime()` and `ttl()` of frozen values versus elements. And the
point of storing elements as cells: two clients changing different elements of
the same collection at the same time both survive.
"""

import threading

import pytest
from cassandra import InvalidRequest

from conftest import wait_for_node_clock, write_expiring

RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"


@pytest.fixture(scope="module")
def session(cluster):
    s = cluster.connect()
    s.execute(f"CREATE KEYSPACE coll WITH replication = {RF1}")
    s.execute("CREATE TABLE coll.t (k int PRIMARY KEY, l list<int>, s set<text>, "
              "m map<text, int>, f frozen<list<int>>)")
    return s


def value(session, column, k):
    row = session.execute(f"SELECT {column} FROM coll.t WHERE k = %s", (k,)).one()
    return getattr(row, column) if row else None


def test_list_operations_follow_cassandra(session):
    session.execute("INSERT INTO coll.t (k, l) VALUES (1, [1, 2, 3])")
    session.execute("UPDATE coll.t SET l = l + [4, 5] WHERE k = 1")
    assert value(session, "l", 1) == [1, 2, 3, 4, 5]
    session.execute("UPDATE coll.t SET l = [-1, 0] + l WHERE k = 1")
    session.execute("UPDATE coll.t SET l = [-2] + l WHERE k = 1")
    assert value(session, "l", 1) == [-2, -1, 0, 1, 2, 3, 4, 5]
    session.execute("UPDATE coll.t SET l[3] = 10 WHERE k = 1")
    assert value(session, "l", 1) == [-2, -1, 0, 10, 2, 3, 4, 5]
    session.execute("DELETE l[0] FROM coll.t WHERE k = 1")
    assert value(session, "l", 1) == [-1, 0, 10, 2, 3, 4, 5]
    session.execute("UPDATE coll.t SET l = l + [2, 2] WHERE k = 1")
    session.execute("UPDATE coll.t SET l = l - [2, 99] WHERE k = 1")
    assert value(session, "l", 1) == [-1, 0, 10, 3, 4, 5]
    prepared = session.prepare("UPDATE coll.t SET l[?] = ? WHERE k = ?")
    session.execute(prepared, (0, 7, 1))
    assert value(session, "l", 1) == [7, 0, 10, 3, 4, 5]
    with pytest.raises(InvalidRequest, match="List index 6 out of bound, list has size 6"):
        session.execute("UPDATE coll.t SET l[6] = 1 WHERE k = 1")
    with pytest.raises(InvalidRequest, match="Attempted to set an element on a list which is null"):
        session.execute("UPDATE coll.t SET l[0] = 1 WHERE k = 404")
    with pytest.raises(InvalidRequest, match="Attempted to delete an element from a list which is null"):
        session.execute("DELETE l[0] FROM coll.t WHERE k = 404")
    # Overwrite: the old elements are gone, the new ones in order.
    session.execute("UPDATE coll.t SET l = [8, 9] WHERE k = 1")
    assert value(session, "l", 1) == [8, 9]


def test_set_and_map_operations_follow_cassandra(session):
    session.execute("INSERT INTO coll.t (k, s, m) VALUES (2, {'b', 'a'}, {'x': 1})")
    session.execute("UPDATE coll.t SET s = s + {'c', 'a'}, m = m + {'y': 2} WHERE k = 2")
    assert value(session, "s", 2) == {"a", "b", "c"}
    session.execute("UPDATE coll.t SET s = s - {'b'}, m['x'] = 10 WHERE k = 2")
    session.execute("DELETE m['y'] FROM coll.t WHERE k = 2")
    assert value(session, "s", 2) == {"a", "c"}
    assert value(session, "m", 2) == {"x": 10}
    session.execute("UPDATE coll.t SET m = m - {'x'} WHERE k = 2")
    assert value(session, "m", 2) is None
    session.execute("UPDATE coll.t SET s = {'z'} WHERE k = 2")
    assert value(session, "s", 2) == {"z"}


def test_writetime_and_ttl_are_per_frozen_value_and_refused_on_elements(session):
    session.execute("INSERT INTO coll.t (k, f) VALUES (3, [1, 2]) USING TIMESTAMP 1000 AND TTL 500")
    row = session.execute("SELECT writetime(f), ttl(f) FROM coll.t WHERE k = 3").one()
    assert row[0] == 1000 and 490 <= row[1] <= 500
    with pytest.raises(InvalidRequest, match="non-frozen collection l"):
        session.execute("SELECT writetime(l) FROM coll.t WHERE k = 3")
    # Elements written with a TTL expire on their own, by the node's clock.
    session.execute("UPDATE coll.t SET s = s + {'kept'} WHERE k = 3")
    brief = write_expiring(
        session,
        lambda ttl: session.execute(f"UPDATE coll.t USING TTL {ttl} SET s = s + {{'brief'}} WHERE k = 3"),
        lambda ttl: value(session, "s", 3))
    assert brief.seen == {"brief", "kept"}
    wait_for_node_clock(session, brief.expired_from)
    assert value(session, "s", 3) == {"kept"}


def test_two_clients_changing_different_elements_both_survive(cluster, session):
    session.execute("INSERT INTO coll.t (k, s, m, l) VALUES (4, {}, {}, [])")
    second = cluster.connect()
    errors = []

    def client(s, name, n):
        try:
            add = s.prepare("UPDATE coll.t SET s = s + ?, m[?] = ?, l = l + ? WHERE k = 4")
            for i in range(n):
                s.execute(add, ({f"{name}{i}"}, f"{name}{i}", i, [i]))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(s, name, 200))
               for s, name in ((session, "a"), (second, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    expected = {f"{n}{i}" for n in "ab" for i in range(200)}
    assert value(session, "s", 4) == expected
    assert value(session, "m", 4) == {f"{n}{i}": i for n in "ab" for i in range(200)}
    appended = value(session, "l", 4)
    assert sorted(appended) == sorted(list(range(200)) * 2)
    second.shutdown()
