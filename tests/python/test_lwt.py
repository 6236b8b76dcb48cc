"""Acceptance: lightweight transactions seen through the DataStax Python driver.

The driver reads `[applied]` into `ResultSet.was_applied`, and on failure the
row carries the current values of the condition columns (every column for
IF NOT EXISTS), exactly as against Cassandra. Concurrent clients race
IF NOT EXISTS and a conditional counter; a keyspace with RF 3 is refused.
"""

import threading

import pytest
from cassandra import ConsistencyLevel, InvalidRequest, Unavailable
from cassandra.cluster import Cluster, NoHostAvailable
from cassandra.query import BatchStatement, SimpleStatement

RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
RF3 = "{'class': 'SimpleStrategy', 'replication_factor': 3}"


@pytest.fixture(scope="module")
def session(node):
    cluster = Cluster(contact_points=[node.host], port=node.port)
    s = cluster.connect()
    s.execute(f"CREATE KEYSPACE lwt WITH replication = {RF1}")
    s.execute("CREATE TABLE lwt.users (name text PRIMARY KEY, email text, "
              "logins int, tags map<text, int>)")
    s.execute("CREATE TABLE lwt.posts (author text, id int, title text, "
              "count int static, PRIMARY KEY (author, id))")
    s.execute("CREATE TABLE lwt.counter (k int PRIMARY KEY, v int)")
    yield s
    cluster.shutdown()


def test_was_applied_and_current_values_on_failure(session):
    rs = session.execute(
        "INSERT INTO lwt.users (name, email, logins) VALUES ('ann', 'a@x', 1) IF NOT EXISTS")
    assert rs.was_applied
    assert rs.column_names == ["[applied]"]

    rs = session.execute(
        "INSERT INTO lwt.users (name, email, logins) VALUES ('ann', 'b@x', 9) IF NOT EXISTS")
    assert not rs.was_applied
    # Every column of the existing row, in SELECT * order.
    assert rs.column_names == ["[applied]", "name", "email", "logins", "tags"]
    row = rs.one()
    assert (row.name, row.email, row.logins, row.tags) == ("ann", "a@x", 1, None)

    rs = session.execute("UPDATE lwt.users SET email = 'c@x' WHERE name = 'ann' "
                         "IF email = 'zzz' AND logins = 1")
    assert not rs.was_applied
    assert rs.column_names == ["[applied]", "email", "logins"]
    assert (rs.one().email, rs.one().logins) == ("a@x", 1)

    assert session.execute("UPDATE lwt.users SET tags = {'x': 1} WHERE name = 'ann' "
                           "IF EXISTS").was_applied
    assert session.execute("UPDATE lwt.users SET logins = 2 WHERE name = 'ann' "
                           "IF tags['x'] = 1 AND logins IN (1, 5)").was_applied
    rs = session.execute("UPDATE lwt.users SET logins = 3 WHERE name = 'ann' IF logins > 2")
    assert not rs.was_applied and rs.one().logins == 2

    rs = session.execute("DELETE FROM lwt.users WHERE name = 'bob' IF EXISTS")
    assert not rs.was_applied
    assert rs.column_names == ["[applied]"]


def test_prepared_conditional_statements(session):
    insert = session.prepare(
        "INSERT INTO lwt.users (name, email) VALUES (?, ?) IF NOT EXISTS")
    update = session.prepare(
        "UPDATE lwt.users SET email = ? WHERE name = ? IF email = ?")
    assert [c.name for c in update.column_metadata] == ["email", "name", "email"]
    assert session.execute(insert, ("cid", "1@x")).was_applied
    assert not session.execute(insert, ("cid", "2@x")).was_applied
    assert session.execute(update, ("3@x", "cid", "1@x")).was_applied
    rs = session.execute(update, ("4@x", "cid", "1@x"))
    assert not rs.was_applied and rs.one().email == "3@x"


def test_static_conditions_and_conditional_batches(session):
    assert session.execute("UPDATE lwt.posts SET count = 0 WHERE author = 'al' "
                           "IF count = null").was_applied
    rs = session.execute("UPDATE lwt.posts SET count = 5 WHERE author = 'al' IF count = 3")
    assert not rs.was_applied and rs.one().count == 0

    batch = BatchStatement()
    batch.add("INSERT INTO lwt.posts (author, id, title) VALUES ('al', 1, 'one') IF NOT EXISTS")
    batch.add("UPDATE lwt.posts SET count = 1 WHERE author = 'al' IF count = 0")
    assert session.execute(batch).was_applied

    batch = BatchStatement()
    batch.add("INSERT INTO lwt.posts (author, id, title) VALUES ('al', 1, 'again') IF NOT EXISTS")
    batch.add("UPDATE lwt.posts SET count = 2 WHERE author = 'al' IF count = 1")
    rs = session.execute(batch)
    assert not rs.was_applied
    row = rs.one()
    assert (row.author, row.id, row.title, row.count) == ("al", 1, "one", 1)
    assert session.execute("SELECT count FROM lwt.posts WHERE author = 'al'").one().count == 1

    batch = BatchStatement()
    batch.add("INSERT INTO lwt.posts (author, id, title) VALUES ('al', 2, 'x') IF NOT EXISTS")
    batch.add("INSERT INTO lwt.posts (author, id, title) VALUES ('bo', 2, 'x')")
    with pytest.raises(InvalidRequest, match="cannot span multiple partitions"):
        session.execute(batch)


def test_concurrent_clients_if_not_exists_and_a_conditional_counter(node, session):
    clusters = [Cluster(contact_points=[node.host], port=node.port) for _ in range(4)]
    sessions = [c.connect() for c in clusters]
    try:
        results = []
        lock = threading.Lock()

        def create(i):
            s = sessions[i % len(sessions)]
            rs = s.execute("INSERT INTO lwt.users (name, logins) VALUES ('race', %s) "
                           "IF NOT EXISTS", (i,))
            with lock:
                results.append((i, rs.was_applied))

        threads = [threading.Thread(target=create, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, won in results if won]
        assert len(results) == 50 and len(winners) == 1
        stored = session.execute("SELECT logins FROM lwt.users WHERE name = 'race'").one()
        assert stored.logins == winners[0]

        session.execute("INSERT INTO lwt.counter (k, v) VALUES (0, 0)")
        applied = []

        def count(i):
            s = sessions[i % len(sessions)]
            stmt = s.prepare("UPDATE lwt.counter SET v = ? WHERE k = 0 IF v = ?")
            current = s.execute("SELECT v FROM lwt.counter WHERE k = 0").one().v
            done = 0
            while done < 10:
                rs = s.execute(stmt, (current + 1, current))
                if rs.was_applied:
                    done += 1
                    current += 1
                else:
                    current = rs.one().v
            with lock:
                applied.append(done)

        threads = [threading.Thread(target=count, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(applied) == 200
        assert session.execute("SELECT v FROM lwt.counter WHERE k = 0").one().v == 200
    finally:
        for c in clusters:
            c.shutdown()


def test_serial_levels_and_rf3_on_one_node_is_unavailable(session):
    stmt = SimpleStatement("INSERT INTO lwt.users (name) VALUES ('sl') IF NOT EXISTS",
                           serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL)
    assert session.execute(stmt).was_applied
    read = SimpleStatement("SELECT name FROM lwt.users WHERE name = 'sl'",
                           consistency_level=ConsistencyLevel.SERIAL)
    assert session.execute(read).one().name == "sl"

    session.execute(f"CREATE KEYSPACE lwt3 WITH replication = {RF3}")
    session.execute("CREATE TABLE lwt3.t (k int PRIMARY KEY, v int)")
    # RF 3 on one node: Paxos needs a quorum of the three replicas the keyspace asks for,
    # and only one exists, so the transaction is Unavailable, as Cassandra answers.
    # (The driver's retry policy tries the next host on Unavailable: there is none.)
    with pytest.raises(NoHostAvailable) as refused:
        session.execute("INSERT INTO lwt3.t (k, v) VALUES (1, 1) IF NOT EXISTS")
    [error] = refused.value.errors.values()
    assert isinstance(error, Unavailable), error
    assert (error.consistency, error.required_replicas, error.alive_replicas) == (
        ConsistencyLevel.SERIAL, 2, 1)
