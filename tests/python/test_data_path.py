"""Acceptance for issue 3, the data path: the DataStax Python driver reads and
writes user tables on a real ringcache node with Cassandra's semantics.

Every expectation here is Cassandra's documented (or source-visible) behaviour,
computed in the test rather than read back from the server: clustering order
follows Cassandra's comparators (marshal/*Type.java), last-write-wins follows
the write timestamps, paging returns every row exactly once. A failure means
the server differs from Cassandra, not that the test should be loosened.

Layout: one module-scoped node (`node`) for the small tests, a second
module-scoped node holding the 100,000-row paging dataset (loaded once, with
concurrent prepared inserts), and fresh nodes from `node_factory` where a
test needs its own configuration.
"""

import datetime
import math
import random
import socket
import struct
import time
import uuid
from decimal import Decimal

import pytest
from cassandra import ConsistencyLevel, InvalidRequest, Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.murmur3 import murmur3
from cassandra.policies import FallthroughRetryPolicy
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType, SimpleStatement
from cassandra.util import Date, Duration, Time

from conftest import RingcacheNode, wait_for_node_clock, write_expiring

RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
EPOCH = datetime.datetime(1970, 1, 1)


def connect(node, **kwargs):
    """A Cluster with default settings (plus `kwargs`) and its session."""
    cluster = Cluster(contact_points=[node.host], port=node.port, **kwargs)
    return cluster, cluster.connect()


@pytest.fixture(scope="module")
def session(node):
    cluster, s = connect(node)
    s.execute(f"CREATE KEYSPACE dp WITH replication = {RF1}")
    s.set_keyspace("dp")
    yield s
    cluster.shutdown()


# -- value model: CQL types, literals, canonical forms --------------------------
#
# A type is a native name ("int") or a tuple: ("list", T), ("set", T),
# ("map", K, V), ("tuple", T...), ("udt", name, ((field, T), ...)).

ADDR_FIELDS = (("street", "text"), ("zip", "int"), ("tags", ("set", "text")))
ADDR = ("udt", "addr", ADDR_FIELDS)
ADDR_DDL = "CREATE TYPE {ks}.addr (street text, zip int, tags frozen<set<text>>)"


def ms(dt):
    """Milliseconds since the epoch of a naive UTC datetime."""
    return (dt - EPOCH) // datetime.timedelta(milliseconds=1)


def lit(t, v):
    """The CQL literal for value `v` of type `t` (what cqlsh users type)."""
    if v is None:
        return "null"
    if isinstance(t, tuple):
        return _lit_composite(t, v)
    if t in ("ascii", "text", "varchar"):
        return "'" + v.replace("'", "''") + "'"
    if t in ("tinyint", "smallint", "int", "bigint", "varint", "decimal"):
        return str(v)
    if t == "blob":
        return "0x" + v.hex()
    if t == "boolean":
        return "true" if v else "false"
    if t in ("float", "double"):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v)
    if t == "date":
        return f"'{v.isoformat()}'"
    if t == "time":
        n = v.nanosecond_time
        return (f"'{n // 3_600_000_000_000:02}:{n // 60_000_000_000 % 60:02}:"
                f"{n // 1_000_000_000 % 60:02}.{n % 1_000_000_000:09}'")
    if t == "timestamp":
        return str(ms(v))
    if t == "duration":
        sign = "-" if min(v.months, v.days, v.nanoseconds) < 0 else ""
        return f"{sign}{abs(v.months)}mo{abs(v.days)}d{abs(v.nanoseconds)}ns"
    if t == "inet":
        return f"'{v}'"
    if t in ("uuid", "timeuuid"):
        return str(v)
    raise AssertionError(f"no literal for {t}")


def _lit_composite(t, v):
    kind = t[0]
    if kind == "list":
        return "[" + ", ".join(lit(t[1], x) for x in v) + "]"
    if kind == "set":
        return "{" + ", ".join(lit(t[1], x) for x in v) + "}"
    if kind == "map":
        return "{" + ", ".join(f"{lit(t[1], k)}: {lit(t[2], x)}" for k, x in v.items()) + "}"
    if kind == "tuple":
        return "(" + ", ".join(lit(st, x) for st, x in zip(t[1:], v)) + ")"
    if kind == "udt":
        return "{" + ", ".join(f"{n}: {lit(ft, x)}" for (n, ft), x in zip(t[2], v)) + "}"
    raise AssertionError(f"no literal for {t}")


def canon(v):
    """A form of a driver value that compares by CQL value identity: NaN equals
    NaN, -0.0 differs from 0.0, decimals keep their scale, dates and times
    compare by their integer encodings, maps keep their pairs."""
    if v is None:
        return None
    if isinstance(v, float):
        return ("float", repr(v))
    if isinstance(v, Decimal):
        return ("decimal", str(v))
    if isinstance(v, Date):
        return ("date", v.days_from_epoch)
    if isinstance(v, datetime.date) and not isinstance(v, datetime.datetime):
        return ("date", (v - datetime.date(1970, 1, 1)).days)
    if isinstance(v, Time):
        return ("time", v.nanosecond_time)
    if isinstance(v, Duration):
        return ("duration", v.months, v.days, v.nanoseconds)
    if isinstance(v, dict) or hasattr(v, "items"):
        return ("map", [(canon(k), canon(x)) for k, x in v.items()])
    if isinstance(v, (str, bytes, bool, int, uuid.UUID, datetime.datetime)):
        return v
    # lists, sets (SortedSet), tuples and UDT values (named tuples)
    return ("seq", [canon(x) for x in v])


# -- 1. every type round-trips --------------------------------------------------

ALL_TYPES = [
    ("a", "ascii", "ascii"), ("bi", "bigint", "bigint"), ("bl", "blob", "blob"),
    ("bo", "boolean", "boolean"), ("d", "date", "date"), ("dec", "decimal", "decimal"),
    ("dbl", "double", "double"), ("dur", "duration", "duration"), ("f", "float", "float"),
    ("ip", "inet", "inet"), ("i", "int", "int"), ("si", "smallint", "smallint"),
    ("t", "text", "text"), ("tm", "time", "time"), ("ts", "timestamp", "timestamp"),
    ("tu", "timeuuid", "timeuuid"), ("ti", "tinyint", "tinyint"), ("u", "uuid", "uuid"),
    ("vc", "varchar", "varchar"), ("vi", "varint", "varint"),
    ("l", "list<int>", ("list", "int")),
    ("s", "set<text>", ("set", "text")),
    ("m", "map<text, int>", ("map", "text", "int")),
    ("fl", "frozen<list<text>>", ("list", "text")),
    ("fs", "frozen<set<int>>", ("set", "int")),
    ("fm", "frozen<map<int, text>>", ("map", "int", "text")),
    ("tup", "tuple<int, text, double>", ("tuple", "int", "text", "double")),
    ("fa", "frozen<addr>", ADDR),
    ("na", "addr", ADDR),
    ("nest", "frozen<map<text, frozen<list<frozen<set<int>>>>>>",
     ("map", "text", ("list", ("set", "int")))),
    ("lm", "list<frozen<map<text, int>>>", ("list", ("map", "text", "int"))),
]

F32_MAX = struct.unpack(">f", bytes.fromhex("7f7fffff"))[0]
F32_TINY = struct.unpack(">f", bytes.fromhex("00000001"))[0]

# Row 1: maxima; row 2: minima and negatives; row 3: ordinary values with
# unicode and IPv6; row 4: empty values and special floats.
TYPE_ROWS = [
    {"a": "~" * 3, "bi": 2**63 - 1, "bl": bytes(range(256)), "bo": True,
     "d": datetime.date(9999, 12, 31), "dec": Decimal("123456789012345678901234567890.123456789"),
     "dbl": 1.7976931348623157e308, "dur": Duration(2**31 - 1, 2**31 - 1, 2**63 - 1),
     "f": F32_MAX, "ip": "255.255.255.255", "i": 2**31 - 1, "si": 2**15 - 1,
     "t": "z" * 1000, "tm": Time(86_399_999_999_999),
     # Whole seconds: the driver decodes timestamps through a float of seconds,
     # which cannot hold milliseconds exactly this far from the epoch.
     "ts": datetime.datetime(9999, 12, 31, 23, 59, 59),
     "tu": uuid.UUID("ffffffff-ffff-1fff-bfff-ffffffffffff"), "ti": 127,
     "u": uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff"), "vc": "max", "vi": 2**200,
     "l": [2**31 - 1, 1, 1], "s": ["a", "b"], "m": {"k": 2**31 - 1},
     "fl": ["x", "x"], "fs": [2**31 - 1], "fm": {2**31 - 1: "max"},
     "tup": (2**31 - 1, "t", 1e308), "fa": ("main st", 99999, ["a"]),
     "na": ("second", 1, ["b", "c"]), "nest": {"k": [[1, 2], [3]]},
     "lm": [{"a": 1}, {"b": 2}]},
    {"a": "", "bi": -2**63, "bl": b"\x00", "bo": False,
     "d": datetime.date(1, 1, 1), "dec": Decimal("-0.000000000000000000001"),
     "dbl": -1.7976931348623157e308,
     "dur": Duration(-(2**31 - 1), -(2**31 - 1), -(2**63 - 1)),
     "f": -F32_MAX, "ip": "0.0.0.0", "i": -2**31, "si": -2**15,
     "t": "", "tm": Time(0), "ts": datetime.datetime(1, 1, 1),
     "tu": uuid.UUID("00000000-0000-1000-8000-000000000000"), "ti": -128,
     "u": uuid.UUID("00000000-0000-0000-0000-000000000000"), "vc": "", "vi": -(2**200) - 1,
     "l": [-2**31], "s": [""], "m": {"": -2**31},
     "fl": [""], "fs": [-2**31, 0], "fm": {-2**31: ""},
     "tup": (-2**31, "", -1e308), "fa": ("", -2**31, [""]),
     "na": ("", -1, []), "nest": {"": [[]]}, "lm": [{}]},
    {"a": "plain ascii 'quoted'", "bi": 1234567890123, "bl": b"\xde\xad\xbe\xef",
     "bo": True, "d": datetime.date(2024, 2, 29), "dec": Decimal("-1.50"),
     "dbl": 3.141592653589793, "dur": Duration(14, 3, 3_723_004_005_006),
     "f": 1.5, "ip": "2001:db8::ff00:42:8329", "i": 42, "si": -12345,
     "t": "héllo wörld ✓ 日本語 🚀 '", "tm": Time(45_296_789_012_345),
     "ts": datetime.datetime(2024, 2, 29, 12, 34, 56, 789000),
     "tu": uuid.UUID("50554d6e-29bb-11e5-b345-feff819cdc9f"), "ti": 7,
     "u": uuid.UUID("123e4567-e89b-42d3-a456-556642440000"), "vc": "ünïcode ✓",
     "vi": -12345678901234567890123, "l": [3, 1, 2], "s": ["ä", "z", "ß"],
     "m": {"ключ": 1, "key": -1}, "fl": ["b", "a"], "fs": [3, 1, 2],
     "fm": {2: "two", 1: "one"}, "tup": (1, "✓", 2.5),
     "fa": ("rue d'été", 75001, ["x", "y"]), "na": ("1 ✓ lane", 12345, ["p"]),
     "nest": {"a": [[1], [2, 3], []], "b": []}, "lm": [{"ä": 1}]},
    {"a": "x", "bi": 0, "bl": b"", "bo": False, "d": datetime.date(1970, 1, 1),
     "dec": Decimal("0"), "dbl": float("nan"), "dur": Duration(0, 0, 0),
     "f": float("inf"), "ip": "::1", "i": 0, "si": 0, "t": "0", "tm": Time(1),
     "ts": datetime.datetime(1969, 12, 31, 23, 59, 59, 999000),
     "tu": uuid.UUID("00000000-0000-1000-0000-000000000000"), "ti": 0,
     "u": uuid.UUID("00000000-0000-1000-8000-000000000000"), "vc": "v", "vi": 0,
     "l": [0], "s": ["x"], "m": {"x": 0}, "fl": [], "fs": [], "fm": {},
     "tup": (0, "", float("-inf")), "fa": ("", 0, []), "na": ("n", 0, ["t"]),
     "nest": {}, "lm": [{"z": 0}]},
]
SPECIAL_FLOATS = [(-0.0, float("-inf")), (F32_TINY, 5e-324), (float("-inf"), -0.0)]


def create_types_table(session, name):
    cols = ", ".join(f"{c} {cql}" for c, cql, _ in ALL_TYPES)
    session.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, {cols})")


@pytest.fixture(scope="module")
def types_ks(session):
    session.execute(ADDR_DDL.format(ks="dp"))
    return session


def read_back(session, table, k):
    cols = ", ".join(c for c, _, _ in ALL_TYPES)
    row = session.execute(f"SELECT {cols} FROM {table} WHERE k = %s", (k,)).one()
    assert row is not None, f"row {k} of {table} missing"
    return row._asdict()


NON_FROZEN = {"l", "s", "m", "na", "lm"}


def expected_row(values):
    """Cassandra stores an empty non-frozen collection as no cells: it reads
    back as null. Frozen empties are real values."""
    out = {}
    for c, _, t in ALL_TYPES:
        v = values[c]
        if c in NON_FROZEN and isinstance(t, tuple) and t[0] != "udt" and len(v) == 0:
            v = None
        out[c] = canon(v)
    return out


def bind_value(t, v):
    """The Python value the driver serialises for `v` of type `t`. Set
    elements and map keys go out in REVERSE CQL order: Cassandra sorts them
    (a frozen set or map is stored normalised), so the server must too."""
    if isinstance(t, tuple) and t[0] == "set":
        return [bind_value(t[1], x) for x in sorted(v, key=lambda x: sort_key(t[1], x),
                                                    reverse=True)]
    if isinstance(t, tuple) and t[0] == "list":
        return [bind_value(t[1], x) for x in v]
    if isinstance(t, tuple) and t[0] == "map":
        keys = sorted(v, key=lambda k: sort_key(t[1], k), reverse=True)
        return {bind_value(t[1], k): bind_value(t[2], v[k]) for k in keys}
    if isinstance(t, tuple) and t[0] in ("tuple", "udt"):
        return tuple(v)
    return v


def canon_written(t, v):
    """The canonical form of what was written, with sets in CQL order."""
    if isinstance(t, tuple) and t[0] == "set":
        return sorted(v, key=lambda x: sort_key(t[1], x))
    if isinstance(t, tuple) and t[0] == "map":
        return dict(sorted(v.items(), key=lambda kv: sort_key(t[1], kv[0])))
    if isinstance(t, tuple) and t[0] == "list":
        return [canon_written(t[1], x) for x in v]
    if isinstance(t, tuple) and t[0] in ("tuple", "udt"):
        types = t[1:] if t[0] == "tuple" else [ft for _, ft in t[2]]
        return tuple(canon_written(st, x) for st, x in zip(types, v))
    return v


def type_row_problems(session, table, k, values):
    """Every column of row `k` that did not read back as written."""
    want = expected_row({c: canon_written(t, values[c]) for c, _, t in ALL_TYPES})
    got = {c: canon(v) for c, v in read_back(session, table, k).items()}
    return [f"row {k} {c}: expected {want[c]}, got {got[c]}" for c in want if want[c] != got[c]]


def check_type_rows(session, table, write):
    """Writes every TYPE_ROWS row with `write(k, values)` and reads each back;
    reports every refused write and every wrong column, not just the first."""
    problems = []
    for k, values in enumerate(TYPE_ROWS):
        try:
            write(k, values)
        except Exception as exc:  # noqa: BLE001 - a refused write is a finding
            problems.append(f"row {k} write refused: {exc}")
            continue
        problems.extend(type_row_problems(session, table, k, values))
    assert not problems, f"{table}:\n" + "\n".join(problems)


def test_every_type_round_trips_unprepared(types_ks):
    session = types_ks
    create_types_table(session, "types_lit")
    cols = ", ".join(c for c, _, _ in ALL_TYPES)

    def write(k, values):
        literals = ", ".join(lit(t, values[c]) for c, _, t in ALL_TYPES)
        session.execute(f"INSERT INTO types_lit (k, {cols}) VALUES ({k}, {literals})")

    check_type_rows(session, "types_lit", write)


def test_every_type_round_trips_prepared(types_ks):
    session = types_ks
    create_types_table(session, "types_prep")
    cols = ", ".join(c for c, _, _ in ALL_TYPES)
    marks = ", ".join("?" for _ in ALL_TYPES)
    insert = session.prepare(f"INSERT INTO types_prep (k, {cols}) VALUES (?, {marks})")

    def write(k, values):
        session.execute(insert, [k] + [bind_value(t, values[c]) for c, _, t in ALL_TYPES])

    check_type_rows(session, "types_prep", write)
    # A prepared SELECT with a bind marker reads the same values.
    select = session.prepare("SELECT dbl, f, bl, t FROM types_prep WHERE k = ?")
    row = session.execute(select, [3]).one()
    assert math.isnan(row.dbl) and row.f == float("inf") and row.bl == b"" and row.t == "0"


def test_special_floats_round_trip(session):
    session.execute("CREATE TABLE floats (k int PRIMARY KEY, f float, d double)")
    insert = session.prepare("INSERT INTO floats (k, f, d) VALUES (?, ?, ?)")
    for k, (f, d) in enumerate(SPECIAL_FLOATS):
        session.execute(insert, (k, f, d))
        session.execute(f"INSERT INTO floats (k, f, d) VALUES ({k + 100}, {lit('float', f)}, "
                        f"{lit('double', d)})")
    for k, (f, d) in enumerate(SPECIAL_FLOATS):
        for key in (k, k + 100):
            row = session.execute("SELECT f, d FROM floats WHERE k = %s", (key,)).one()
            assert (repr(row.f), repr(row.d)) == (repr(f), repr(d)), key


def test_nulls_round_trip(types_ks):
    session = types_ks
    create_types_table(session, "types_null")
    cols = [c for c, _, _ in ALL_TYPES]
    insert = session.prepare(f"INSERT INTO types_null (k, {', '.join(cols)}) "
                             f"VALUES (?, {', '.join('?' for _ in cols)})")
    session.execute(insert, [1] + [None] * len(cols))
    session.execute(f"INSERT INTO types_null (k, {', '.join(cols)}) "
                    f"VALUES (2, {', '.join('null' for _ in cols)})")
    for k in (1, 2):
        row = read_back(session, "types_null", k)
        assert all(v is None for v in row.values()), row
    # Writing null over a value deletes it.
    session.execute(insert, [3] + [bind_value(t, TYPE_ROWS[2][c]) for c, _, t in ALL_TYPES])
    session.execute(insert, [3] + [None] * len(cols))
    assert all(v is None for v in read_back(session, "types_null", 3).values())


def test_unset_leaves_previous_value(session):
    session.execute("CREATE TABLE unset_t (k int PRIMARY KEY, a int, b text, c list<int>)")
    insert = session.prepare("INSERT INTO unset_t (k, a, b, c) VALUES (?, ?, ?, ?)")
    session.execute(insert, (1, 10, "keep", [1, 2]))
    session.execute(insert, (1, 11, UNSET_VALUE, UNSET_VALUE))
    row = session.execute("SELECT a, b, c FROM unset_t WHERE k = 1").one()
    assert (row.a, row.b, row.c) == (11, "keep", [1, 2])
    update = session.prepare("UPDATE unset_t SET a = ?, b = ? WHERE k = ?")
    session.execute(update, (UNSET_VALUE, "new", 1))
    row = session.execute("SELECT a, b, c FROM unset_t WHERE k = 1").one()
    assert (row.a, row.b, row.c) == (11, "new", [1, 2])


# -- 2. clustering order per type -------------------------------------------------

def java_double_key(v):
    """Double.compare: -0.0 < 0.0, NaN after +Infinity."""
    if math.isnan(v):
        return (1, 0.0, 0)
    return (0, v, math.copysign(1, v))


def signed_bytes(bs):
    return tuple(b - 256 if b >= 128 else b for b in bs)


def sort_key(t, v):
    """Cassandra's comparator for type `t`, as a Python sort key."""
    if isinstance(t, tuple):
        return _composite_key(t, v)
    if t in ("ascii", "text", "varchar"):
        return v.encode()  # UTF8Type/AsciiType: unsigned bytes
    if t in ("float", "double"):
        return java_double_key(v)
    if t == "inet":
        family = socket.AF_INET6 if ":" in v else socket.AF_INET
        return socket.inet_pton(family, v)  # InetAddressType: unsigned bytes
    if t == "timeuuid":
        # TimeUUIDType: 60-bit time, then the low 8 bytes as SIGNED bytes.
        return (v.time, signed_bytes(v.bytes[8:]))
    if t == "uuid":
        # UUIDType: version, then time for version 1, then unsigned bytes.
        version = v.bytes[6] >> 4  # whatever the variant, as Cassandra reads it
        return (version, v.time if version == 1 else 0, v.bytes)
    if t == "date":
        return canon(v)
    if t == "time":
        return v.nanosecond_time
    return v  # ints, varint, decimal, boolean, blob, timestamp: natural order


def _composite_key(t, v):
    kind = t[0]
    if kind == "list":
        return tuple(sort_key(t[1], x) for x in v)
    if kind == "set":
        return tuple(sorted(sort_key(t[1], x) for x in v))
    if kind == "map":
        return tuple(sorted((sort_key(t[1], k), sort_key(t[2], x)) for k, x in v.items()))
    types = t[1:] if kind == "tuple" else [ft for _, ft in t[2]]
    # TupleType: component by component, a null component first.
    return tuple((0,) if x is None else (1, sort_key(st, x)) for st, x in zip(types, v))


def v1(time_100ns, lsb):
    """A version-1 UUID with the given 60-bit time and low 8 bytes."""
    low, mid, hi = time_100ns & 0xFFFFFFFF, (time_100ns >> 32) & 0xFFFF, time_100ns >> 48
    msb = struct.pack(">IHH", low, mid, 0x1000 | hi)
    return uuid.UUID(bytes=msb + lsb)


# Times whose time_low bytes sort opposite to the time itself (bytes order
# != time order), and equal times whose low bytes differ in sign.
TIMEUUIDS = [
    v1(0x1_0000_0000, bytes.fromhex("8000000000000000")),
    v1(0x0_FFFF_FFFF, bytes.fromhex("8000000000000000")),
    v1(0x0_0000_0001, bytes.fromhex("8000000000000000")),
    v1(0x1_0000_0000_0000, bytes.fromhex("8000000000000000")),
    v1(0x5_0000, bytes.fromhex("807f000000000000")),
    v1(0x5_0000, bytes.fromhex("8080000000000000")),
    v1(0x5_0000, bytes.fromhex("00ffffffffffffff")),
    v1(0x5_0000, bytes.fromhex("7f00000000000000")),
    v1(0x5_0000, bytes.fromhex("ff00000000000000")),
    v1(0x0FFF_FFFF_FFFF_FFFF, bytes.fromhex("bfffffffffffffff")),
]
UUIDS = [
    uuid.UUID("00000000-0000-0000-0000-000000000000"),
    uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff"),
    uuid.UUID("123e4567-e89b-42d3-a456-556642440000"),
    uuid.UUID("ffffffff-0000-4000-8000-000000000000"),
    uuid.UUID("00000001-0000-4000-8000-000000000000"),
    uuid.uuid5(uuid.NAMESPACE_DNS, "ringcache"),
    uuid.uuid3(uuid.NAMESPACE_DNS, "ringcache"),
    TIMEUUIDS[0], TIMEUUIDS[1], TIMEUUIDS[6], TIMEUUIDS[8],
]

CLUSTERING_CASES = {
    "ascii": ("ascii", ["", "A", "a", "aa", "b", "~", "Z", "0"]),
    "bigint": ("bigint", [-2**63, -1, 0, 1, 2**63 - 1, 255, -256]),
    "blob": ("blob", [b"", b"\x00", b"\x00\x00", b"\x01", b"\x7f", b"\x80", b"\xff", b"\xff\x00"]),
    "boolean": ("boolean", [True, False]),
    "date": ("date", [datetime.date(1, 1, 1), datetime.date(1969, 12, 31),
                      datetime.date(1970, 1, 1), datetime.date(2024, 2, 29),
                      datetime.date(9999, 12, 31)]),
    "decimal": ("decimal", [Decimal("-100"), Decimal("-1.5"), Decimal("-0.001"), Decimal("0"),
                            Decimal("0.0001"), Decimal("1.25"), Decimal("9.99"), Decimal("10.5"),
                            Decimal("1e20"), Decimal("-1e20"), Decimal("123456789.123456789")]),
    "double": ("double", [float("-inf"), -1e300, -1.5, -0.0, 0.0, 5e-324, 1.5, 1e300,
                          float("inf"), float("nan")]),
    "float": ("float", [float("-inf"), -F32_MAX, -1.5, -0.0, 0.0, F32_TINY, 1.5, F32_MAX,
                        float("inf"), float("nan")]),
    "inet": ("inet", ["0.0.0.0", "1.2.3.4", "127.0.0.1", "255.255.255.255", "::", "::1",
                      "2001:db8::1", "fe80::1", "ffff::"]),
    "int": ("int", [-2**31, -65536, -1, 0, 1, 256, 2**31 - 1]),
    "smallint": ("smallint", [-2**15, -1, 0, 1, 2**15 - 1, 255]),
    "text": ("text", ["", "a", "B", "b", "é", "z", "ä", "日本", "🚀", "\u00ff", "aa", "a\u0000"]),
    "time": ("time", [Time(0), Time(1), Time(1_000_000_000), Time(86_399_999_999_999)]),
    "timestamp": ("timestamp", [datetime.datetime(1, 1, 1), datetime.datetime(1969, 12, 31, 23, 59, 59),
                                EPOCH, datetime.datetime(2024, 2, 29, 12, 0, 0, 1000),
                                datetime.datetime(9999, 12, 31)]),
    "timeuuid": ("timeuuid", TIMEUUIDS),
    "tinyint": ("tinyint", [-128, -1, 0, 1, 127]),
    "uuid": ("uuid", UUIDS),
    "varchar": ("varchar", ["", "x", "X", "xy", "\u00e9"]),
    "varint": ("varint", [-(2**100), -(2**64), -256, -255, -129, -128, -1, 0, 1, 127, 128, 255,
                          256, 2**63, 2**64, 2**100]),
    "frozen<list<int>>": (("list", "int"), [[], [0], [0, 0], [-1], [1], [1, -5], [2**31 - 1]]),
    "frozen<set<text>>": (("set", "text"), [[], ["a"], ["a", "b"], ["b"], ["ab"], ["B"]]),
    "frozen<map<int, text>>": (("map", "int", "text"),
                               [{}, {-1: "a"}, {1: "a"}, {1: "b"}, {1: "a", 2: "a"}, {0: "z"}]),
    "tuple<int, text>": (("tuple", "int", "text"),
                         [(0, "a"), (-1, "z"), (0, ""), (1, ""), (0, None), (None, "a")]),
    "frozen<pt>": (("udt", "pt", (("x", "int"), ("y", "text"))),
                   [(0, "a"), (-1, "z"), (0, ""), (1, ""), (-2**31, "q")]),
    "frozen<list<frozen<tuple<int, blob>>>>": (
        ("list", ("tuple", "int", "blob")),
        [[], [(0, b"")], [(0, b"\x00")], [(0, b""), (0, b"")], [(-1, b"\xff")], [(1, b"")]]),
}


@pytest.fixture(scope="module")
def order_ks(session):
    session.execute(f"CREATE KEYSPACE ord WITH replication = {RF1}")
    session.execute("CREATE TYPE ord.pt (x int, y text)")
    return session


def canon_order(t, values):
    return [canon(canon_written(t, v)) for v in values]


@pytest.mark.parametrize("cql", list(CLUSTERING_CASES))
def test_clustering_order(order_ks, cql):
    session = order_ks
    t, values = CLUSTERING_CASES[cql]
    name = "o_" + "".join(ch for ch in cql if ch.isalnum())
    session.execute(f"CREATE TABLE ord.{name} (pk int, c {cql}, PRIMARY KEY (pk, c))")
    session.execute(f"CREATE TABLE ord.{name}_d (pk int, c {cql}, PRIMARY KEY (pk, c)) "
                    "WITH CLUSTERING ORDER BY (c DESC)")
    ascending = sorted(values, key=lambda v: sort_key(t, v))
    shuffled = list(values)
    random.Random(cql).shuffle(shuffled)
    for table in (name, name + "_d"):
        insert = session.prepare(f"INSERT INTO ord.{table} (pk, c) VALUES (0, ?)")
        for v in shuffled:
            session.execute(insert, [bind_value(t, v)])
    want = canon_order(t, ascending)

    def read(table, order=""):
        rows = session.execute(f"SELECT c FROM ord.{table} WHERE pk = 0 {order}")
        return [canon(r.c) for r in rows]

    assert read(name) == want, f"{cql} ASC table"
    assert read(name, "ORDER BY c DESC") == want[::-1], f"{cql} ASC table, ORDER BY c DESC"
    assert read(name + "_d") == want[::-1], f"{cql} DESC table"
    assert read(name + "_d", "ORDER BY c ASC") == want, f"{cql} DESC table, ORDER BY c ASC"


# -- 3. paging ------------------------------------------------------------------

PARTITIONS, ROWS_PER_PARTITION = 1000, 100
ALL_KEYS = {(pk, ck) for pk in range(PARTITIONS) for ck in range(ROWS_PER_PARTITION)}


@pytest.fixture(scope="module")
def paging_node(ringcache_bin, tmp_path_factory):
    """A node holding paging.t: 100,000 rows in 1,000 partitions."""
    server = RingcacheNode(ringcache_bin, tmp_path_factory.mktemp("paging"), "paging").start()
    cluster, session = connect(server)
    try:
        session.execute(f"CREATE KEYSPACE paging WITH replication = {RF1}")
        session.execute("CREATE TABLE paging.t (pk int, ck int, v text, PRIMARY KEY (pk, ck))")
        insert = session.prepare("INSERT INTO paging.t (pk, ck, v) VALUES (?, ?, ?)")
        # One unlogged batch of prepared inserts per partition, 64 in flight:
        # ten times faster than 100,000 single inserts through this driver.
        batches = []
        for pk in range(PARTITIONS):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for ck in range(ROWS_PER_PARTITION):
                batch.add(insert, (pk, ck, f"v{pk}.{ck}"))
            batches.append((batch, None))
        results = execute_concurrent(session, batches, concurrency=64, raise_on_first_error=True)
        assert all(r.success for r in results)
    finally:
        cluster.shutdown()
    yield server
    server.stop()


def scan(session, fetch_size, query="SELECT pk, ck, v FROM paging.t"):
    """Every (pk, ck) a paged full scan returns, in order."""
    rows = session.execute(SimpleStatement(query, fetch_size=fetch_size))
    return [(r.pk, r.ck) for r in rows]


# Page size 1 pages every row one round trip at a time, so it scans the lowest eighth of the
# ring only (~12,500 rows in ~125 partitions: every partition boundary still a page
# boundary), which keeps it to seconds where the whole table took minutes.
EIGHTH = -(2**63) + 2**61


def token_of(pk):
    return murmur3(struct.pack(">i", pk))


@pytest.mark.parametrize("fetch_size", [1, 7, 5000])
def test_full_scan_pages_every_row_once(paging_node, fetch_size):
    query, keys = "SELECT pk, ck, v FROM paging.t", ALL_KEYS
    if fetch_size == 1:
        query += f" WHERE token(pk) < {EIGHTH}"
        keys = {(pk, ck) for pk, ck in ALL_KEYS if token_of(pk) < EIGHTH}
        assert 50 < len(keys) // ROWS_PER_PARTITION < 250, "an eighth of 1,000 partitions"
    cluster, session = connect(paging_node)
    try:
        seen = scan(session, fetch_size, query)
    finally:
        cluster.shutdown()
    assert len(seen) == len(set(seen)), f"duplicates at page size {fetch_size}"
    assert set(seen) == keys, (f"page size {fetch_size}: missing {len(keys - set(seen))}, "
                               f"extra {len(set(seen) - keys)}")
    # Token order, then clustering order within a partition.
    tokens = [token_of(pk) for pk, _ in seen]
    assert tokens == sorted(tokens)
    assert seen == sorted(seen, key=lambda pc: (token_of(pc[0]), pc[1]))


def first_page(session, fetch_size=7):
    rs = session.execute(SimpleStatement("SELECT pk, ck FROM paging.t", fetch_size=fetch_size))
    assert rs.has_more_pages and rs.paging_state
    return [(r.pk, r.ck) for r in rs.current_rows], rs.paging_state


def next_page(session, paging_state, fetch_size=7):
    rs = session.execute(SimpleStatement("SELECT pk, ck FROM paging.t", fetch_size=fetch_size),
                         paging_state=paging_state)
    return [(r.pk, r.ck) for r in rs.current_rows]


def scan_order():
    return sorted(ALL_KEYS, key=lambda pc: (murmur3(struct.pack(">i", pc[0])), pc[1]))


def test_paging_state_resumes_on_another_session(paging_node):
    order = scan_order()
    a_cluster, a = connect(paging_node)
    b_cluster, b = connect(paging_node)
    try:
        page1, state = first_page(a)
        assert page1 == order[:7]
        assert next_page(b, state) == order[7:14]
        # Prepared statements resume the same way, across sessions too.
        prepared_a = a.prepare("SELECT pk, ck FROM paging.t")
        prepared_a.fetch_size = 50
        rs = a.execute(prepared_a)
        assert [(r.pk, r.ck) for r in rs.current_rows] == order[:50]
        prepared_b = b.prepare("SELECT pk, ck FROM paging.t")
        prepared_b.fetch_size = 50
        rs = b.execute(prepared_b, paging_state=rs.paging_state)
        assert [(r.pk, r.ck) for r in rs.current_rows] == order[50:100]
    finally:
        a_cluster.shutdown()
        b_cluster.shutdown()


def test_paging_state_resumes_after_restart(paging_node):
    order = scan_order()
    cluster, session = connect(paging_node)
    try:
        page1, state = first_page(session, fetch_size=1000)
        assert page1 == order[:1000]
    finally:
        cluster.shutdown()
    paging_node.restart()
    cluster, session = connect(paging_node)
    try:
        assert next_page(session, state, fetch_size=1000) == order[1000:2000]
    finally:
        cluster.shutdown()


def forged_states(real):
    rng = random.Random(7)
    yield "random 1 byte", bytes([rng.randrange(256)])
    for n in (8, 16, 64, 300):
        yield f"random {n} bytes", bytes(rng.randrange(256) for _ in range(n))
    for cut in sorted({1, len(real) // 2, len(real) - 1}):
        yield f"truncated to {cut}", real[:cut]
    for i in range(len(real)):
        flipped = bytearray(real)
        flipped[i] ^= 0x01
        yield f"bit flipped in byte {i}", bytes(flipped)


def test_forged_paging_state_is_invalid(paging_node):
    cluster, session = connect(paging_node)
    try:
        _, real = first_page(session)
        not_invalid = []
        for label, forged in forged_states(real):
            try:
                next_page(session, forged)
                not_invalid.append((label, "accepted"))
            except InvalidRequest:
                pass
            except Exception as exc:  # noqa: BLE001 - the wrong error is the finding
                not_invalid.append((label, repr(exc)))
        # The node still answers, on the same session and a new one.
        assert next_page(session, real) == scan_order()[7:14]
    finally:
        cluster.shutdown()
    cluster, session = connect(paging_node)
    try:
        assert session.execute("SELECT pk FROM paging.t WHERE pk = 1 LIMIT 1").one().pk == 1
    finally:
        cluster.shutdown()
    assert not not_invalid, f"forged paging states not refused with Invalid: {not_invalid}"


def test_unpaged_query_never_has_more_pages(paging_node):
    cluster, session = connect(paging_node)
    try:
        rs = session.execute(SimpleStatement("SELECT pk, ck FROM paging.t WHERE pk IN (1, 2, 3)",
                                             fetch_size=None))
        assert not rs.has_more_pages and rs.paging_state is None
        assert sorted((r.pk, r.ck) for r in rs.current_rows) == \
            sorted((pk, ck) for pk in (1, 2, 3) for ck in range(ROWS_PER_PARTITION))
        rs = session.execute(SimpleStatement("SELECT pk, ck FROM paging.t LIMIT 20000",
                                             fetch_size=None))
        assert not rs.has_more_pages and len(rs.current_rows) == 20000
    finally:
        cluster.shutdown()


def test_unpaged_select_over_limit_is_invalid(node_factory, monkeypatch):
    monkeypatch.setenv("RINGCACHE_LIMITS__MAX_UNPAGED_ROWS", "1000")
    small = node_factory("unpaged")
    cluster, session = connect(small)
    try:
        session.execute(f"CREATE KEYSPACE up WITH replication = {RF1}")
        session.execute("CREATE TABLE up.t (pk int, ck int, PRIMARY KEY (pk, ck))")
        insert = session.prepare("INSERT INTO up.t (pk, ck) VALUES (?, ?)")
        execute_concurrent_with_args(session, insert, [(p, c) for p in range(15) for c in range(100)],
                                     concurrency=64, raise_on_first_error=True)
        with pytest.raises(InvalidRequest):
            session.execute(SimpleStatement("SELECT * FROM up.t", fetch_size=None))
        # Under the limit, or paged, the same data is served.
        rs = session.execute(SimpleStatement("SELECT * FROM up.t WHERE pk = 3", fetch_size=None))
        assert len(rs.current_rows) == 100 and not rs.has_more_pages
        assert len(list(session.execute(SimpleStatement("SELECT * FROM up.t", fetch_size=500)))) == 1500
    finally:
        cluster.shutdown()


# -- 4. TTL -----------------------------------------------------------------------
#
# Judged by the node's clock (conftest.write_expiring): each write is read back when it
# cannot have expired yet, and its expiry is checked once the node's clock has passed it.

def test_ttl_and_writetime_report(session):
    session.execute("CREATE TABLE ttl_w (k int PRIMARY KEY, v int, w int)")

    def write(ttl):
        session.execute(f"INSERT INTO ttl_w (k, v, w) VALUES ({ttl}, 5, 6) "
                        f"USING TTL {ttl} AND TIMESTAMP 1234567")

    def read(ttl):
        return session.execute("SELECT k, ttl(v), writetime(v), ttl(w), writetime(w) FROM ttl_w "
                               "WHERE k = %s", (ttl,)).one()

    written = write_expiring(session, write, read)
    row = written.seen
    assert row[0] == written.ttl, row
    assert row[1] in written.remaining, (row, written.remaining)
    assert row[2] == 1234567
    assert row[3] in written.remaining and row[4] == 1234567
    session.execute("INSERT INTO ttl_w (k, v) VALUES (100, 1) USING TIMESTAMP 42")
    row = session.execute("SELECT ttl(v), writetime(v) FROM ttl_w WHERE k = 100").one()
    assert row[0] is None and row[1] == 42
    # Prepared TTL/TIMESTAMP bind markers.
    insert = session.prepare("INSERT INTO ttl_w (k, v) VALUES (?, ?) USING TTL ? AND TIMESTAMP ?")
    written = write_expiring(
        session,
        lambda ttl: session.execute(insert, (101, 9, ttl, 777)),
        lambda ttl: session.execute("SELECT ttl(v), writetime(v) FROM ttl_w WHERE k = 101").one(),
        ttls=(1000,))
    row = written.seen
    assert row[0] in written.remaining and row[1] == 777, (row, written.remaining)
    # Aliases on selectors.
    row = session.execute("SELECT writetime(v) AS wt, v AS value FROM ttl_w WHERE k = 101").one()
    assert (row.wt, row.value) == (777, 9)


def test_ttl_expires_cells_and_rows(session):
    session.execute("CREATE TABLE ttl_e (k int, c int, v int, w int, PRIMARY KEY (k, c))")

    def write(ttl):
        # One partition per attempt: k = ttl.
        session.execute(f"INSERT INTO ttl_e (k, c, v, w) VALUES ({ttl}, 1, 10, 20) USING TTL {ttl}")
        session.execute(f"INSERT INTO ttl_e (k, c, v) VALUES ({ttl}, 2, 30)")
        session.execute(f"UPDATE ttl_e USING TTL {ttl} SET v = 31 WHERE k = {ttl} AND c = 2")

    def read(ttl):
        return session.execute("SELECT c, v, w FROM ttl_e WHERE k = %s", (ttl,)).all()

    written = write_expiring(session, write, read)
    k = written.ttl
    assert [(r.c, r.v, r.w) for r in written.seen] == [(1, 10, 20), (2, 31, None)], written.seen
    wait_for_node_clock(session, written.expired_from)
    rows = session.execute("SELECT c, v, w FROM ttl_e WHERE k = %s", (k,)).all()
    # The row inserted with a TTL is gone entirely; the updated cell is null but
    # its row (made live by an INSERT without TTL) remains.
    assert [(r.c, r.v, r.w) for r in rows] == [(2, None, None)], rows
    assert session.execute("SELECT * FROM ttl_e WHERE k = %s AND c = 1", (k,)).one() is None
    assert session.execute("SELECT count(*) FROM ttl_e WHERE k = %s", (k,)).one()[0] == 1


def test_update_with_ttl_leaves_other_columns(session):
    session.execute("CREATE TABLE ttl_u (k int PRIMARY KEY, a int, b int)")

    def write(ttl):
        # One partition per attempt: k = ttl.
        session.execute(f"INSERT INTO ttl_u (k, a, b) VALUES ({ttl}, 1, 2)")
        session.execute(f"UPDATE ttl_u USING TTL {ttl} SET a = 3 WHERE k = {ttl}")

    written = write_expiring(session, write, lambda ttl: session.execute(
        "SELECT a, b, ttl(a), ttl(b) FROM ttl_u WHERE k = %s", (ttl,)).one())
    row = written.seen
    assert (row.a, row.b) == (3, 2), row
    assert row[2] in written.remaining and row[3] is None, (row, written.remaining)
    wait_for_node_clock(session, written.expired_from)
    row = session.execute("SELECT a, b FROM ttl_u WHERE k = %s", (written.ttl,)).one()
    assert row is not None and row.a is None and row.b == 2, row


# -- 5. timestamps ----------------------------------------------------------------

def test_older_timestamp_loses_even_when_last(session):
    session.execute("CREATE TABLE ts_t (k int PRIMARY KEY, v int)")
    session.execute("INSERT INTO ts_t (k, v) VALUES (1, 1) USING TIMESTAMP 2000")
    session.execute("INSERT INTO ts_t (k, v) VALUES (1, 2) USING TIMESTAMP 1000")
    assert session.execute("SELECT v, writetime(v) FROM ts_t WHERE k = 1").one() == (1, 2000)
    session.execute("UPDATE ts_t USING TIMESTAMP 1999 SET v = 3 WHERE k = 1")
    assert session.execute("SELECT v FROM ts_t WHERE k = 1").one().v == 1
    session.execute("INSERT INTO ts_t (k, v) VALUES (1, 4) USING TIMESTAMP 2001")
    assert session.execute("SELECT v FROM ts_t WHERE k = 1").one().v == 4


def test_delete_with_older_timestamp_does_not_delete(session):
    session.execute("CREATE TABLE ts_d (k int, c int, v int, PRIMARY KEY (k, c))")
    session.execute("INSERT INTO ts_d (k, c, v) VALUES (1, 1, 1) USING TIMESTAMP 5000")
    session.execute("DELETE FROM ts_d USING TIMESTAMP 4000 WHERE k = 1 AND c = 1")
    session.execute("DELETE v FROM ts_d USING TIMESTAMP 4999 WHERE k = 1 AND c = 1")
    session.execute("DELETE FROM ts_d USING TIMESTAMP 4000 WHERE k = 1")
    assert session.execute("SELECT v FROM ts_d WHERE k = 1 AND c = 1").one() == (1,)
    # A delete at a newer timestamp wins, and an older write after it stays hidden.
    session.execute("DELETE FROM ts_d USING TIMESTAMP 6000 WHERE k = 1")
    session.execute("INSERT INTO ts_d (k, c, v) VALUES (1, 1, 2) USING TIMESTAMP 5500")
    assert session.execute("SELECT * FROM ts_d WHERE k = 1").one() is None
    session.execute("INSERT INTO ts_d (k, c, v) VALUES (1, 1, 3) USING TIMESTAMP 6001")
    assert session.execute("SELECT v FROM ts_d WHERE k = 1 AND c = 1").one() == (3,)


def test_client_default_timestamp_is_honoured(node, session):
    session.execute("CREATE TABLE ts_c (k int PRIMARY KEY, v int)")
    fixed = 1_600_000_000_000_000
    cluster, client = connect(node, timestamp_generator=lambda: fixed)
    try:
        client.execute("INSERT INTO dp.ts_c (k, v) VALUES (1, 1)")
        insert = client.prepare("INSERT INTO dp.ts_c (k, v) VALUES (?, ?)")
        client.execute(insert, (2, 2))
        # USING TIMESTAMP in the statement overrides the protocol's default.
        client.execute("INSERT INTO dp.ts_c (k, v) VALUES (3, 3) USING TIMESTAMP 17")
    finally:
        cluster.shutdown()
    got = {r.k: r[1] for r in session.execute("SELECT k, writetime(v) FROM ts_c")}
    assert got == {1: fixed, 2: fixed, 3: 17}
    # A write whose client timestamp is older than the stored cell's loses.
    cluster, client = connect(node, timestamp_generator=lambda: fixed - 1)
    try:
        client.execute("INSERT INTO dp.ts_c (k, v) VALUES (1, 100)")
    finally:
        cluster.shutdown()
    assert session.execute("SELECT v FROM ts_c WHERE k = 1").one().v == 1


# -- 6. statements ----------------------------------------------------------------

def test_delete_column_row_partition(session):
    session.execute("CREATE TABLE del (k int, c int, a int, b int, PRIMARY KEY (k, c))")
    for k in (1, 2):
        for c in (1, 2, 3):
            session.execute("INSERT INTO del (k, c, a, b) VALUES (%s, %s, %s, %s)", (k, c, c, c))
    session.execute("DELETE a FROM del WHERE k = 1 AND c = 1")
    assert session.execute("SELECT a, b FROM del WHERE k = 1 AND c = 1").one() == (None, 1)
    session.execute("DELETE FROM del WHERE k = 1 AND c = 2")
    assert [r.c for r in session.execute("SELECT c FROM del WHERE k = 1")] == [1, 3]
    session.execute("DELETE FROM del WHERE k = 2")
    assert list(session.execute("SELECT * FROM del WHERE k = 2")) == []
    assert sorted((r.k, r.c) for r in session.execute("SELECT k, c FROM del")) == [(1, 1), (1, 3)]
    # A row made by UPDATE (no row marker) disappears when its last cell goes.
    session.execute("UPDATE del SET a = 5 WHERE k = 3 AND c = 1")
    assert session.execute("SELECT a FROM del WHERE k = 3 AND c = 1").one() == (5,)
    session.execute("DELETE a FROM del WHERE k = 3 AND c = 1")
    assert session.execute("SELECT * FROM del WHERE k = 3").one() is None
    # A row made by INSERT stays with only its key once its cells are deleted.
    session.execute("DELETE a, b FROM del WHERE k = 1 AND c = 3")
    assert session.execute("SELECT k, c, a, b FROM del WHERE k = 1 AND c = 3").one() == \
        (1, 3, None, None)


def test_static_columns(session):
    session.execute("CREATE TABLE st (k int, c int, s text static, v int, PRIMARY KEY (k, c))")
    session.execute("INSERT INTO st (k, c, v) VALUES (1, 1, 10)")
    session.execute("INSERT INTO st (k, c, v) VALUES (1, 2, 20)")
    session.execute("UPDATE st SET s = 'shared' WHERE k = 1")
    rows = list(session.execute("SELECT k, c, s, v FROM st WHERE k = 1"))
    assert [(r.c, r.s, r.v) for r in rows] == [(1, "shared", 10), (2, "shared", 20)]
    session.execute("INSERT INTO st (k, c, s, v) VALUES (1, 3, 'changed', 30)")
    assert {r.s for r in session.execute("SELECT s FROM st WHERE k = 1")} == {"changed"}
    session.execute("INSERT INTO st (k, s) VALUES (2, 'only static')")
    rows = list(session.execute("SELECT k, c, s, v FROM st WHERE k = 2"))
    assert [tuple(r) for r in rows] == [(2, None, "only static", None)]
    distinct = sorted(tuple(r) for r in session.execute("SELECT DISTINCT k, s FROM st"))
    assert distinct == [(1, "changed"), (2, "only static")]
    # Deleting the rows leaves the static row, shown as one row.
    session.execute("DELETE FROM st WHERE k = 1 AND c IN (1, 2, 3)")
    assert [tuple(r) for r in session.execute("SELECT k, c, s, v FROM st WHERE k = 1")] == \
        [(1, None, "changed", None)]


@pytest.fixture(scope="module")
def grid(session):
    """grid: pk 0..4, (c1, c2) in 0..3 x 0..3, v = pk*100 + c1*10 + c2."""
    session.execute("CREATE TABLE grid (pk int, c1 int, c2 int, v int, PRIMARY KEY (pk, c1, c2))")
    insert = session.prepare("INSERT INTO grid (pk, c1, c2, v) VALUES (?, ?, ?, ?)")
    args = [(p, a, b, p * 100 + a * 10 + b) for p in range(5) for a in range(4) for b in range(4)]
    execute_concurrent_with_args(session, insert, args, concurrency=32, raise_on_first_error=True)
    return session


def rows_of(session, query, params=None):
    return [tuple(r) for r in session.execute(query, params)]


def test_in_and_clustering_slices(grid):
    s = grid
    cells = [(a, b) for a in range(4) for b in range(4)]
    assert rows_of(s, "SELECT c1, c2 FROM grid WHERE pk = 1 AND (c1, c2) > (1, 2)") == \
        [x for x in cells if x > (1, 2)]
    prepared = s.prepare("SELECT c1, c2 FROM grid WHERE pk = ? AND (c1, c2) >= (?, ?) "
                         "AND (c1, c2) < (?, ?)")
    assert rows_of(s, prepared, (1, 1, 3, 2, 1)) == [x for x in cells if (1, 3) <= x < (2, 1)]
    named = s.prepare("SELECT c1, c2 FROM grid WHERE pk = :p AND c1 = :a AND c2 > :b")
    assert rows_of(s, named, {"p": 2, "a": 3, "b": 1}) == [(3, 2), (3, 3)]
    assert rows_of(s, "SELECT c1, c2 FROM grid WHERE pk = 0 AND c1 > 1 AND c1 <= 2") == \
        [x for x in cells if 1 < x[0] <= 2]
    assert rows_of(s, "SELECT c1, c2 FROM grid WHERE pk = 0 AND c1 = 2 ORDER BY c1 DESC") == \
        [(2, 3), (2, 2), (2, 1), (2, 0)]
    assert rows_of(s, "SELECT c1, c2 FROM grid WHERE pk = 0 AND c1 IN (3, 0) AND c2 = 1") == \
        [(0, 1), (3, 1)]
    assert sorted(rows_of(s, "SELECT pk, v FROM grid WHERE pk IN (4, 0) AND c1 = 1 AND c2 = 1")) == \
        [(0, 11), (4, 411)]


def test_multi_column_in(grid):
    rows = rows_of(grid, "SELECT c1, c2 FROM grid WHERE pk = 0 AND (c1, c2) IN ((2, 2), (0, 1))")
    assert rows == [(0, 1), (2, 2)]


def test_limit_per_partition_limit_distinct_count(grid):
    s = grid
    assert len(rows_of(s, "SELECT * FROM grid LIMIT 5")) == 5
    assert rows_of(s, "SELECT c1, c2 FROM grid WHERE pk = 2 LIMIT 3") == [(0, 0), (0, 1), (0, 2)]
    per = rows_of(s, "SELECT pk, c1, c2 FROM grid PER PARTITION LIMIT 2")
    assert sorted(per) == sorted((p, 0, b) for p in range(5) for b in (0, 1))
    assert len(rows_of(s, "SELECT pk FROM grid PER PARTITION LIMIT 2 LIMIT 3")) == 3
    assert sorted(rows_of(s, "SELECT DISTINCT pk FROM grid")) == [(p,) for p in range(5)]
    assert rows_of(s, "SELECT COUNT(*) FROM grid") == [(80,)]
    assert rows_of(s, "SELECT count(*) FROM grid WHERE pk = 3 AND c1 >= 2") == [(8,)]
    assert rows_of(s, "SELECT count(*) AS n FROM grid WHERE pk = 99") == [(0,)]


def test_token_ranges(grid):
    s = grid
    token = {p: murmur3(struct.pack(">i", p)) for p in range(5)}
    got = {r.pk: r[1] for r in s.execute("SELECT pk, token(pk) FROM grid")}
    assert got == token
    ordered = sorted(token, key=token.get)
    pivot = token[ordered[2]]
    above = rows_of(s, "SELECT DISTINCT pk FROM grid WHERE token(pk) > %s", (pivot,))
    assert [p for (p,) in above] == ordered[3:]
    prepared = s.prepare("SELECT DISTINCT pk FROM grid WHERE token(pk) > ? AND token(pk) <= ?")
    assert [p for (p,) in rows_of(s, prepared, (token[ordered[0]], pivot))] == ordered[1:3]
    assert rows_of(s, prepared, (pivot, pivot)) == []


def test_batches(session):
    session.execute("CREATE TABLE bt (k int, c int, v text, PRIMARY KEY (k, c))")
    session.execute("BEGIN BATCH "
                    "INSERT INTO bt (k, c, v) VALUES (1, 1, 'a'); "
                    "INSERT INTO bt (k, c, v) VALUES (2, 1, 'b'); "
                    "UPDATE bt SET v = 'c' WHERE k = 1 AND c = 2; "
                    "APPLY BATCH")
    insert = session.prepare("INSERT INTO bt (k, c, v) VALUES (?, ?, ?)")
    delete = session.prepare("DELETE FROM bt WHERE k = ? AND c = ?")
    for kind in (BatchType.LOGGED, BatchType.UNLOGGED):
        batch = BatchStatement(batch_type=kind)
        batch.add(insert, (3, int(kind == BatchType.LOGGED), "p"))
        batch.add(insert, (4, 1, "q"))
        batch.add(delete, (2, 1))
        batch.add(SimpleStatement("UPDATE bt SET v = %s WHERE k = %s AND c = %s"), ("r", 5, 1))
        session.execute(batch)
    got = sorted(rows_of(session, "SELECT k, c, v FROM bt"))
    assert got == [(1, 1, "a"), (1, 2, "c"), (3, 0, "p"), (3, 1, "p"), (4, 1, "q"), (5, 1, "r")]
    session.execute("BEGIN UNLOGGED BATCH USING TIMESTAMP 10 "
                    "INSERT INTO bt (k, c, v) VALUES (6, 1, 'old'); APPLY BATCH")
    assert rows_of(session, "SELECT writetime(v) FROM bt WHERE k = 6 AND c = 1") == [(10,)]


def test_truncate_empties_table(session):
    session.execute("CREATE TABLE tr (k int PRIMARY KEY, v int)")
    for k in range(20):
        session.execute("INSERT INTO tr (k, v) VALUES (%s, %s)", (k, k))
    session.execute("TRUNCATE tr")
    assert list(session.execute("SELECT * FROM tr")) == []
    session.execute("INSERT INTO tr (k, v) VALUES (1, 1)")
    assert rows_of(session, "SELECT k, v FROM tr") == [(1, 1)]
    session.execute("TRUNCATE TABLE dp.tr")
    assert rows_of(session, "SELECT count(*) FROM tr") == [(0,)]


def test_counter_tables_refused(session):
    try:
        session.execute("CREATE TABLE ctr (k int PRIMARY KEY, n counter)")
    except InvalidRequest:
        return  # refused at CREATE: fine
    with pytest.raises(InvalidRequest):
        session.execute("UPDATE ctr SET n = n + 1 WHERE k = 1")


def timeuuid_ms(u):
    return (u.time - 0x01B21DD213814000) // 10_000


def test_time_functions(session):
    session.execute("CREATE TABLE fn (k int, c timeuuid, PRIMARY KEY (k, c))")
    before = int(time.time() * 1000)
    session.execute("INSERT INTO fn (k, c) VALUES (1, now())")
    session.execute("INSERT INTO fn (k, c) VALUES (1, now())")
    row = session.execute("SELECT now(), uuid(), toTimestamp(now()), currentTimestamp(), "
                          "minTimeuuid('2020-01-01 00:00:00+0000'), "
                          "maxTimeuuid('2020-01-01 00:00:00+0000') FROM fn WHERE k = 1 LIMIT 1").one()
    after = int(time.time() * 1000)
    now, rnd, now_ts, current, lo, hi = row
    assert now.version == 1 and rnd.version == 4
    # Clock sanity with a generous window: the server's clock is this machine's.
    assert before - 60_000 <= timeuuid_ms(now) <= after + 60_000
    assert before - 60_000 <= ms(now_ts) <= after + 60_000
    assert before - 60_000 <= ms(current) <= after + 60_000
    jan1 = ms(datetime.datetime(2020, 1, 1))
    # maxTimeuuid's clock-and-node bytes are Cassandra's MAX_CLOCK_SEQ_AND_NODE (0x7f...),
    # outside the RFC 4122 variant, so Python reports no version for it, as for Cassandra's.
    assert lo.version == 1 and hi.bytes[6] >> 4 == 1
    assert lo.time == jan1 * 10_000 + 0x01B21DD213814000 and lo.bytes[8:] == b"\x80" * 8
    assert hi.time == lo.time + 9_999 and hi.bytes[8:] == b"\x7f" * 8
    # now() is unique per call: two inserts made two rows.
    stamps = [r.c for r in session.execute("SELECT c FROM fn WHERE k = 1")]
    assert len(stamps) == 2 and stamps[0] != stamps[1]
    assert rows_of(session, "SELECT count(*) FROM fn WHERE k = 1 AND c > minTimeuuid(%s) "
                   "AND c < maxTimeuuid(%s)", (before - 60_000, after + 60_000)) == [(2,)]
    assert rows_of(session, "SELECT count(*) FROM fn WHERE k = 1 AND c < minTimeuuid(%s)",
                   (before - 60_000,)) == [(0,)]


# -- 7. consistency ---------------------------------------------------------------

def test_quorum_on_rf3_single_node_is_unavailable(node, session):
    session.execute("CREATE KEYSPACE rf3 WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    session.execute("CREATE TABLE rf3.t (k int PRIMARY KEY, v int)")

    def profile(cl):
        return ExecutionProfile(consistency_level=cl, retry_policy=FallthroughRetryPolicy())

    cluster = Cluster(contact_points=[node.host], port=node.port, execution_profiles={
        EXEC_PROFILE_DEFAULT: profile(ConsistencyLevel.ONE),
        "quorum": profile(ConsistencyLevel.QUORUM), "all": profile(ConsistencyLevel.ALL)})
    try:
        s = cluster.connect()
        s.execute("INSERT INTO rf3.t (k, v) VALUES (1, 1)")
        assert rows_of(s, "SELECT v FROM rf3.t WHERE k = 1") == [(1,)]
        for statement in ("INSERT INTO rf3.t (k, v) VALUES (2, 2)", "SELECT v FROM rf3.t WHERE k = 1"):
            with pytest.raises(Unavailable) as err:
                s.execute(statement, execution_profile="quorum")
            assert (err.value.consistency, err.value.required_replicas, err.value.alive_replicas) == \
                (ConsistencyLevel.QUORUM, 2, 1), statement
            with pytest.raises(Unavailable) as err:
                s.execute(statement, execution_profile="all")
            assert (err.value.required_replicas, err.value.alive_replicas) == (3, 1), statement
        # The refused write did not happen.
        assert rows_of(s, "SELECT v FROM rf3.t WHERE k = 2") == []
    finally:
        cluster.shutdown()
