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


# -- CAST (CastFctsTest) -------------------------------------------------------------------


def test_numeric_casts_in_the_selection_clause(session):
    from decimal import Decimal
    table(session, "casts", "(a tinyint PRIMARY KEY, b smallint, c int, d bigint, e float, "
                            "f double, g decimal, h varint, i int)")
    session.execute("INSERT INTO casts (a, b, c, d, e, f, g, h) "
                    "VALUES (1, 2, 3, 4, 5.2, 6.3, 6.3, 4)")
    names, _ = one(session, "SELECT CAST(b AS int), CAST(c AS int), CAST(d AS double) FROM casts")
    assert names == ["cast(b as int)", "c", "cast(d as double)"]
    columns = "abcdefghi"

    def cast_all(ty):
        selectors = ", ".join(f"CAST({c} AS {ty})" for c in columns)
        return one(session, f"SELECT {selectors} FROM casts")[1]

    assert cast_all("tinyint") == (1, 2, 3, 4, 5, 6, 6, 4, None)
    assert cast_all("smallint") == (1, 2, 3, 4, 5, 6, 6, 4, None)
    assert cast_all("int") == (1, 2, 3, 4, 5, 6, 6, 4, None)
    assert cast_all("bigint") == (1, 2, 3, 4, 5, 6, 6, 4, None)
    floats = cast_all("float")
    assert [round(x, 5) for x in floats[:8]] == [1.0, 2.0, 3.0, 4.0, 5.2, 6.3, 6.3, 4.0]
    import struct
    f52 = struct.unpack(">f", struct.pack(">f", 5.2))[0]  # (double) 5.2F
    assert cast_all("double") == (1.0, 2.0, 3.0, 4.0, f52, 6.3, 6.3, 4.0, None)
    assert cast_all("decimal") == (Decimal("1.0"), Decimal("2.0"), Decimal("3.0"),
                                   Decimal("4.0"), Decimal(repr(f52)), Decimal("6.3"),
                                   Decimal("6.3"), Decimal("4.0"), None)
    texts = ("1", "2", "3", "4", "5.2", "6.3", "6.3", "4", None)
    assert cast_all("ascii") == texts
    assert cast_all("text") == texts
    with pytest.raises(InvalidRequest, match="a cannot be cast to boolean"):
        session.execute("SELECT CAST(a AS boolean) FROM casts")


def test_time_and_other_casts_in_the_selection_clause(session):
    import datetime
    table(session, "tcasts", "(a timeuuid PRIMARY KEY, b timestamp, c date, d time, "
                             "e inet, f boolean, g ascii)")
    session.execute("INSERT INTO tcasts (a, b, c, d, e, f, g) VALUES "
                    "(maxTimeuuid('2015-05-21 11:03:02+0000'), '2015-05-21 11:03:02+00', "
                    "'2015-05-21', '11:03:02', '127.0.0.1', true, 'test')")
    instant = datetime.datetime(2015, 5, 21, 11, 3, 2)
    day = datetime.date(2015, 5, 21)
    _, values = one(session, "SELECT CAST(a AS timestamp), CAST(b AS timestamp), "
                             "CAST(c AS timestamp) FROM tcasts")
    assert values == (instant, instant, datetime.datetime(2015, 5, 21))
    _, values = one(session, "SELECT CAST(a AS date), CAST(b AS date), CAST(c AS date) FROM tcasts")
    assert [v.date() if hasattr(v, "date") else v for v in values] == [day, day, day]
    _, values = one(session, "SELECT CAST(b AS text), CAST(c AS text), CAST(d AS text), "
                             "CAST(e AS text), CAST(f AS text), CAST(g AS text) FROM tcasts")
    assert values == ("2015-05-21T11:03:02.000Z", "2015-05-21", "11:03:02.000000000",
                      "127.0.0.1", "true", "test")
    # A cast to the type a value already has is the value itself, named as it.
    assert one(session, "SELECT CAST(CAST(f AS text) AS text) FROM tcasts") == \
        (["cast(f as text)"], ("true",))
    with pytest.raises(InvalidRequest, match=r"cast\(f as text\) cannot be cast to ascii"):
        session.execute("SELECT CAST(CAST(f AS text) AS ascii) FROM tcasts")


# -- typeAsBlob / blobAsType, time functions (BlobTypeFunctionsTest, TimeFctsTest) ----------


def test_blob_conversions_round_trip_and_refuse_bad_bytes(session):
    table(session, "blobs", "(k int PRIMARY KEY, i int, t text, b blob, l bigint)")
    session.execute("INSERT INTO blobs (k, i, t, b, l) VALUES "
                    "(1, 7, 'hé', textAsBlob('abc'), blobAsBigint(0x000000000000002a))")
    names, values = one(session, "SELECT intAsBlob(i), blobAsText(textAsBlob(t)), "
                                 "blobAsVarchar(b), bigintAsBlob(l), blobAsInt(0x00000009) "
                                 "FROM blobs")
    assert values == (b"\x00\x00\x00\x07", "hé", "abc", b"\x00" * 7 + b"*", 9)
    assert names == ["system.intasblob(i)", "system.blobastext(system.textasblob(t))",
                     "system.blobasvarchar(b)", "system.bigintasblob(l)",
                     "system.blobasint(0x00000009)"]
    assert one(session, "SELECT k FROM blobs WHERE k = blobAsInt(0x00000001)")[1] == (1,)
    assert one(session, "SELECT blobAsInt(null), intAsBlob(null) FROM blobs") == \
        (["system.blobasint(null)", "system.intasblob(null)"], (None, None))
    with pytest.raises(InvalidRequest, match="In call to function blobasint, value 0x0102 is "
                                             "not a valid binary representation for type int"):
        session.execute("SELECT blobAsInt(0x0102) FROM blobs")
    with pytest.raises(InvalidRequest, match="Type error: l cannot be passed as argument 0 of "
                                             "function system.intasblob of type int"):
        session.execute("SELECT intAsBlob(l) FROM blobs")


def test_time_functions_of_every_time_type(session):
    import datetime
    table(session, "times", "(k int PRIMARY KEY, u timeuuid, ts timestamp, d date)")
    session.execute("INSERT INTO times (k, u, ts, d) VALUES (1, "
                    "minTimeuuid('2021-01-01 01:00:00+0000'), '2021-01-01 01:00:00+0000', "
                    "'2021-01-01')")
    ms = 1609462800000
    day_ms = 1609459200000
    _, values = one(session, "SELECT dateOf(u), unixTimestampOf(u), toDate(u), toTimestamp(u), "
                             "toUnixTimestamp(u), toDate(ts), toUnixTimestamp(ts), "
                             "toTimestamp(d), toUnixTimestamp(d) FROM times")
    instant = datetime.datetime(2021, 1, 1, 1)
    assert values[0] == instant and values[3] == instant
    assert (values[1], values[4], values[6]) == (ms, ms, ms)
    assert str(values[2]) == "2021-01-01" and str(values[5]) == "2021-01-01"
    assert values[7] == datetime.datetime(2021, 1, 1) and values[8] == day_ms
    # Written through INSERT values and used in WHERE values.
    session.execute("INSERT INTO times (k, ts, d) VALUES (2, toTimestamp(toDate('2021-01-01 "
                    "05:00:00+0000')), toDate(toTimestamp(minTimeuuid('2021-01-02 00:00+0000'))))")
    _, values = one(session, "SELECT ts, d FROM times WHERE k = 2")
    assert values[0] == datetime.datetime(2021, 1, 1) and str(values[1]) == "2021-01-02"
    rows = session.execute("SELECT k FROM times WHERE ts = toTimestamp(toDate("
                           "'2021-01-01 05:00:00+0000')) ALLOW FILTERING")
    assert [r.k for r in rows] == [2]
    with pytest.raises(InvalidRequest, match="Ambiguous call to function system.tounixtimestamp"):
        session.execute("SELECT toUnixTimestamp('2021-01-01') FROM times")


def test_unknown_functions_are_refused_when_prepared_and_executed(session):
    table(session, "unk", "(k int PRIMARY KEY, v int)")
    for query, message in [
        ("SELECT k FROM unk WHERE k = nosuchfn(?)", "Unknown function nosuchfn called"),
        ("INSERT INTO unk (k, v) VALUES (?, nosuchfn())", "Unknown function nosuchfn called"),
        ("UPDATE unk SET v = nosuchfn(1) WHERE k = ?", "Unknown function nosuchfn called"),
        ("SELECT nosuchfn(v) FROM unk", "Unknown function 'nosuchfn'"),
    ]:
        with pytest.raises(InvalidRequest, match=message):
            session.prepare(query)
        with pytest.raises(InvalidRequest, match=message):
            session.execute(query.replace("?", "1"))
    # A write's marker inside a function's arguments is refused when prepared, not miscounted.
    with pytest.raises(InvalidRequest, match="Bind markers in function arguments are not "
                                             "supported yet by this ringcache build"):
        session.prepare("INSERT INTO unk (k, v) VALUES (?, blobAsInt(?))")


def test_markers_in_function_arguments_of_where_values(session):
    import datetime
    table(session, "evts", "(k int, t timeuuid, v int, PRIMARY KEY (k, t))")
    for minute in range(10):
        session.execute("INSERT INTO evts (k, t, v) VALUES (0, maxTimeuuid(%s), %s)",
                        (datetime.datetime(2021, 1, 1, 0, minute), minute))
    prepared = session.prepare("SELECT v FROM evts WHERE k = blobAsInt(?) AND "
                               "t > maxTimeuuid(?) AND t < minTimeuuid(?)")
    names = [c.name for c in prepared.column_metadata]
    assert names == ["arg0(system.blobasint)", "arg0(system.maxtimeuuid)",
                     "arg0(system.mintimeuuid)"]
    rows = session.execute(prepared, [b"\x00\x00\x00\x00", datetime.datetime(2021, 1, 1, 0, 2),
                                      datetime.datetime(2021, 1, 1, 0, 6)])
    assert [r.v for r in rows] == [3, 4, 5]
    with pytest.raises(InvalidRequest, match="Ambiguous call to function system.todate"):
        session.prepare("SELECT v FROM evts WHERE k = 0 AND t > minTimeuuid(toDate(?))")


# -- element, slice and field selectors, token() values ------------------------------------


def test_collection_element_and_slice_selectors(session):
    table(session, "coll", "(k int PRIMARY KEY, m map<text, int>, s set<int>, "
                           "fm frozen<map<int, text>>, l list<int>)")
    session.execute("INSERT INTO coll (k, m, s, fm, l) VALUES (0, {'a': 1, 'b': 2, 'c': 3, "
                    "'d': 4}, {1, 5, 9}, {1: 'x', 2: 'y'}, [1])")
    names, values = one(session, "SELECT m['b'], m['z'], s[5], s[6], fm[2], m['b'..'c'], "
                                 "m['c'..], m[..'a'], s[2..9], m['x'..'z'], fm[3..] FROM coll")
    assert names == ["m['b']", "m['z']", "s[5]", "s[6]", "fm[2]", "m['b'..'c']", "m['c'..]",
                     "m[..'a']", "s[2..9]", "m['x'..'z']", "fm[3..]"]
    assert values[:5] == (2, None, 5, None, "y")
    assert dict(values[5]) == {"b": 2, "c": 3}
    assert dict(values[6]) == {"c": 3, "d": 4}
    assert dict(values[7]) == {"a": 1}
    assert sorted(values[8]) == [5, 9]
    assert values[9] is None  # an empty slice of a non-frozen map is null
    assert not values[10]  # an empty slice of a frozen map is empty
    with pytest.raises(InvalidRequest, match="Element selection is only allowed on sets and "
                                             "maps, but l is a list"):
        session.execute("SELECT l[0] FROM coll")
    with pytest.raises(InvalidRequest, match="Invalid element selection: k of type int is not "
                                             "a collection"):
        session.execute("SELECT k[0] FROM coll")


def test_user_type_fields_and_their_writetime_and_ttl(session):
    session.execute("CREATE TYPE IF NOT EXISTS addr (street text, zip int)")
    table(session, "udts", "(k int PRIMARY KEY, a addr, fa frozen<addr>)")
    session.execute("INSERT INTO udts (k, a, fa) VALUES (0, {street: 'main', zip: 1}, "
                    "{street: 'side', zip: 2}) USING TIMESTAMP 1000")
    session.execute("UPDATE udts USING TIMESTAMP 2000 AND TTL 600 SET a.zip = 7 WHERE k = 0")
    names, values = one(session, "SELECT a.street, a.zip, fa.zip, writetime(a.street), "
                                 "writetime(a.zip), ttl(a.street), ttl(a.zip), "
                                 "writetime(fa.zip) FROM udts")
    assert names == ["a.street", "a.zip", "fa.zip", "writetime(a.street)", "writetime(a.zip)",
                     "ttl(a.street)", "ttl(a.zip)", "writetime(fa.zip)"]
    assert values[:5] == ("main", 7, 2, 1000, 2000)
    assert values[5] is None and 590 <= values[6] <= 600 and values[7] == 1000
    with pytest.raises(InvalidRequest, match="a of type .*addr has no field nope"):
        session.execute("SELECT a.nope FROM udts")
    with pytest.raises(InvalidRequest, match="Invalid field selection: k of type int is not a "
                                             "user type"):
        session.execute("SELECT k.x FROM udts")


def test_token_of_literals_in_where_and_selectors(session):
    table(session, "tok", "(k int PRIMARY KEY, v int)")
    for k in range(50):
        session.execute("INSERT INTO tok (k, v) VALUES (%s, %s)", (k, k))
    by_token = {r.k: r.t for r in session.execute("SELECT k, token(k) AS t FROM tok")}
    limit = by_token[32]
    rows = session.execute("SELECT k FROM tok WHERE token(k) >= token(32)")
    assert sorted(r.k for r in rows) == sorted(k for k, t in by_token.items() if t >= limit)
    prepared = session.prepare("SELECT k FROM tok WHERE token(k) > token(?)")
    rows = session.execute(prepared, [32])
    assert sorted(r.k for r in rows) == sorted(k for k, t in by_token.items() if t > limit)
    # As a selector, token() is Cassandra's function of the key's types: any int hashes,
    # a value of another type is a type error.
    assert one(session, "SELECT token(v) FROM tok WHERE k = 32")[1] == (limit,)
    assert one(session, "SELECT token(32) FROM tok WHERE k = 0") == (["system.token(32)"],
                                                                     (limit,))
    table(session, "tok2", "(k int PRIMARY KEY, t text)")
    with pytest.raises(InvalidRequest, match="Type error: t cannot be passed as argument 0 of "
                                             "function system.token of type int"):
        session.execute("SELECT token(t) FROM tok2")
    with pytest.raises(InvalidRequest, match=r"The token\(\) function must be applied to all "
                                             "partition key components or none of them"):
        session.execute("SELECT k FROM tok WHERE token(v) > 0")
    with pytest.raises(InvalidRequest, match="Invalid number of arguments in call to function "
                                             "system.token: 1 required but 2 provided"):
        session.execute("SELECT k FROM tok WHERE token(k) > token(1, 2)")


def test_typed_literals_are_selectors_and_untyped_ones_are_refused(session):
    table(session, "lits", "(k int PRIMARY KEY)")
    session.execute("INSERT INTO lits (k) VALUES (0)")
    assert one(session, "SELECT (int)1, (text)'a' FROM lits") == (["(int)1", "(text)'a'"],
                                                                 (1, "a"))
    with pytest.raises(InvalidRequest, match="Cannot infer type for term 1 in selection clause"):
        session.execute("SELECT 1 FROM lits")


def test_elements_and_slices_of_empty_frozen_and_clustering_collections(session):
    # CollectionsTest.testSelectionOfEmptyCollections, testMapReversed, testSetReversed.
    for frozen in (True, False):
        m, s = ("frozen<map<text, int>>", "frozen<set<int>>") if frozen else \
            ("map<text, int>", "set<int>")
        table(session, "empt", f"(k int PRIMARY KEY, m {m}, s {s})")
        session.execute("INSERT INTO empt (k) VALUES (0)")
        session.execute("INSERT INTO empt (k, m, s) VALUES (1, {}, {})")
        session.execute("INSERT INTO empt (k, m, s) VALUES (3, {'2': 2}, {2})")
        empty = ({}, set()) if frozen else (None, None)
        for k, whole in [(0, (None, None)), (1, empty), (3, ({"2": 2}, {2}))]:
            def get(selectors):
                values = one(session, f"SELECT {selectors} FROM empt WHERE k = {k}")[1]
                return tuple(None if v is None else (dict(v) if hasattr(v, "items") else set(v))
                             for v in values)
            assert get("m['0'], s[0]") == (None, None)
            sliced = (None, None) if k == 0 else empty
            assert get("m['0'..'1'], s[0..1]") == sliced, (frozen, k)
            assert get("m['0'..'1']['3'..'5'], s[0..1][3..5]") == sliced, (frozen, k)
            assert get("m, s") == whole, (frozen, k)
    table(session, "rev", "(k int, c frozen<map<text, int>>, d frozen<set<text>>, v int, "
                          "PRIMARY KEY (k, c, d)) WITH CLUSTERING ORDER BY (c DESC, d DESC)")
    session.execute("INSERT INTO rev (k, c, d, v) VALUES (1, {'t1': 1, 't2': 2, 't3': 3, "
                    "'t4': 4}, {'t1', 't2', 't3', 't4'}, 2)")
    for selector, want_map, want_set in [
        ("['nonexisting']", None, None),
        ("['t1']", 1, "t1"),
        ("['t1'..'t3']", {"t1": 1, "t2": 2, "t3": 3}, {"t1", "t2", "t3"}),
        ("['t3'..'t5']", {"t3": 3, "t4": 4}, {"t3", "t4"}),
        ("[..'t2']", {"t1": 1, "t2": 2}, {"t1", "t2"}),
        ("['t3'..]", {"t3": 3, "t4": 4}, {"t3", "t4"}),
    ]:
        got_map, got_set = one(session, f"SELECT c{selector}, d{selector} FROM rev")[1]
        if isinstance(want_map, dict):
            got_map, got_set = dict(got_map), set(got_set)
        assert (got_map, got_set) == (want_map, want_set), selector
