"""Acceptance for issue 4, item 6: cqlsh `COPY TO` / `COPY FROM` against ringcache.

COPY is the tool users reach for to move a table in and out, and it exercises
parts of the protocol that hand-written queries rarely do at once:

- COPY TO splits the ring into token ranges taken from the driver's token map
  (system.local / system.peers) and has worker processes run
  `SELECT cols FROM ks.t WHERE token(k) > ? AND token(k) <= ?` (literal
  tokens, simple statements), paged with PAGESIZE (default 1000) at the
  shell's consistency level;
- COPY FROM prepares `INSERT INTO ks.t (cols) VALUES (?, ...)` in each worker
  and sends UNLOGGED BATCH messages of that prepared id (MAXBATCHSIZE rows,
  grouped by replica), retrying a failed batch up to MAXATTEMPTS times.

The acceptance line is the 50,000-row round trip: COPY a table out, COPY the
file into an empty table with the same schema, and both tables hold the same
rows. Values are chosen to survive CSV text exactly as they do in Cassandra
(doubles with at most 12 significant digits, because COPY TO prints doubles
with DOUBLEPRECISION=12; millisecond timestamps), so any difference is a
server bug, not a formatting artefact.

cqlsh runs with TZ=UTC so timestamps are written and parsed in one zone.
"""

import datetime
import os
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.murmur3 import murmur3

CQLSH = Path(sys.executable).with_name("cqlsh")
RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
BIG_ROWS = 50_000
ROWS_PER_PARTITION = 5
# COPY of 50,000 rows takes well under a minute on a debug build; the bound
# only stops a hung worker from eating the whole pytest timeout.
COPY_TIMEOUT_S = 240
UUID_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
TS_BASE = datetime.datetime(2020, 2, 29, 23, 59, 58)

COLUMNS = "k, c, name, big, score, flag, ts, id, data, tags, attrs, nums, home"
TABLE_BODY = ("(k int, c int, name text, big bigint, score double, flag boolean, "
              "ts timestamp, id uuid, data blob, tags set<text>, attrs map<text, int>, "
              "nums list<int>, home frozen<addr>, PRIMARY KEY (k, c))")


# -- cqlsh and driver helpers ---------------------------------------------------

def run_cqlsh(node, home, statement, timeout=COPY_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Runs `cqlsh HOST PORT -e STATEMENT` with a private HOME and TZ=UTC."""
    env = dict(os.environ, HOME=str(home), TZ="UTC")
    cmd = [str(CQLSH), node.host, str(node.port),
           "--connect-timeout", "20", "--request-timeout", "60", "-e", statement]
    # cwd: COPY FROM writes its import_<ks>_<table>.err file there.
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=home, stdin=subprocess.DEVNULL)


def cqlsh_ok(node, home, statement) -> str:
    """Runs cqlsh, asserts it succeeded with nothing on stderr; returns stdout."""
    started = time.monotonic()
    proc = run_cqlsh(node, home, statement)
    print(f"cqlsh -e {statement!r}: {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        f"cqlsh -e {statement!r} failed ({proc.returncode}):\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\nserver log:\n{node.log_tail(30)}")
    return proc.stdout


def exported(stdout: str) -> int:
    """The N of cqlsh's "N rows exported to 1 files in ..." line."""
    return _count(stdout, "rows exported to")


def imported(stdout: str) -> int:
    """The N of cqlsh's "N rows imported from 1 files in ..." line."""
    return _count(stdout, "rows imported from")


def _count(stdout: str, phrase: str) -> int:
    lines = [ln for ln in stdout.splitlines() if phrase in ln]
    assert len(lines) == 1, f"no '{phrase}' line in cqlsh output:\n{stdout}"
    return int(lines[0].split()[0])


def canonical(value):
    """A hashable, order-independent form of a driver value for set comparison.

    Sets and maps compare by content (the driver's SortedSet and
    OrderedMapSerializedKey); lists and UDTs (namedtuples) by position.
    """
    if isinstance(value, (str, bytes)) or value is None:
        return value
    if hasattr(value, "items"):
        return ("map", tuple(sorted((canonical(k), canonical(v)) for k, v in value.items())))
    if isinstance(value, (set, frozenset)) or type(value).__name__ == "SortedSet":
        return ("set", tuple(sorted(canonical(v) for v in value)))
    if isinstance(value, (list, tuple)):
        return tuple(canonical(v) for v in value)
    return value


def table_rows(session, table: str) -> set:
    """Every row of `table`, read with paging, as a set of canonical tuples."""
    result = session.execute(f"SELECT {COLUMNS} FROM {table}")
    rows = [tuple(canonical(v) for v in row) for row in result]
    assert len(rows) == len(set(rows)), f"{table}: a row was returned twice"
    return set(rows)


def create_table(session, name: str):
    session.execute(f"CREATE TABLE {name} {TABLE_BODY}")


# -- the data set ---------------------------------------------------------------

def row_values(i: int) -> tuple:
    """Row i of the data set: every column type, with nulls spread over them.

    Doubles are multiples of 0.25 (exact, few digits) and timestamps whole
    milliseconds, so CSV text round-trips them exactly; text has a comma,
    quotes and non-ASCII to exercise CSV quoting.
    """
    k, c = divmod(i, ROWS_PER_PARTITION)
    name = None if i % 97 == 0 else f'name {i}, "q" \u00e9'
    big = i * 1_000_003 - 2**40
    score = (i % 4001) * 0.25 - 500.0
    flag = None if i % 89 == 0 else i % 3 == 0
    ts = TS_BASE + datetime.timedelta(milliseconds=i * 12_347)
    ident = uuid.uuid5(UUID_NS, str(i))
    data = None if i % 7 == 0 else i.to_bytes(4, "big") + b"\x00\xff"
    tags = None if i % 13 == 0 else {f"t{i % 7}", f"u,{i % 11}", "x'y"}
    attrs = None if i % 19 == 0 else {f"a{i % 5}": i, "z": -i}
    nums = None if i % 23 == 0 else [i, -1, i]
    home = None if i % 17 == 0 else (f"{i % 100} Main St", None if i % 2 else i)
    return (k, c, name, big, score, flag, ts, ident, data, tags, attrs, nums, home)


def expected_rows(count: int) -> set:
    """The data set in canonical form, as the driver reads it back."""
    return {tuple(canonical(v) for v in row_values(i)) for i in range(count)}


def load(session, table: str, count: int):
    """Inserts rows 0..count with concurrent prepared INSERTs."""
    placeholders = ", ".join("?" for _ in COLUMNS.split(","))
    insert = session.prepare(f"INSERT INTO {table} ({COLUMNS}) VALUES ({placeholders})")
    results = execute_concurrent_with_args(session, insert, (row_values(i) for i in range(count)),
                                           concurrency=64, raise_on_first_error=True)
    assert all(ok for ok, _ in results)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private HOME for cqlsh: no user cqlshrc, history in a temp dir."""
    return tmp_path_factory.mktemp("cqlsh-home")


@pytest.fixture(scope="module")
def session(node):
    cluster = Cluster(contact_points=[node.host], port=node.port)
    s = cluster.connect()
    s.default_timeout = 60
    s.default_fetch_size = 5000
    s.execute(f"CREATE KEYSPACE cp WITH replication = {RF1}")
    s.execute("CREATE TYPE cp.addr (street text, zip int)")
    yield s
    cluster.shutdown()


def assert_server_up(node, session):
    assert node.proc.poll() is None, f"server exited:\n{node.log_tail()}"
    assert session.execute("SELECT release_version FROM system.local").one() is not None


# -- tests ----------------------------------------------------------------------

def test_copy_50k_rows_to_csv_and_back(node, session, home, tmp_path):
    started = time.monotonic()
    create_table(session, "cp.big")
    load(session, "cp.big", BIG_ROWS)
    print(f"loaded {BIG_ROWS} rows in {time.monotonic() - started:.1f} s")

    # The acceptance line's exact form: no column list, so both COPYs use the
    # table's column order from the driver's schema metadata.
    csv_path = tmp_path / "big.csv"
    out = cqlsh_ok(node, home, f"COPY cp.big TO '{csv_path}'")
    lines = csv_path.read_text().splitlines()
    print(f"COPY TO: cqlsh says {exported(out)} rows, the file has {len(lines)} lines")
    assert exported(out) == BIG_ROWS
    assert len(lines) == BIG_ROWS

    create_table(session, "cp.big2")
    out = cqlsh_ok(node, home, f"COPY cp.big2 FROM '{csv_path}'")
    print(f"COPY FROM: cqlsh says {imported(out)} rows imported")
    assert imported(out) == BIG_ROWS

    started = time.monotonic()
    original, copied = table_rows(session, "cp.big"), table_rows(session, "cp.big2")
    print(f"read back {len(original)} + {len(copied)} rows in {time.monotonic() - started:.1f} s")
    assert original == expected_rows(BIG_ROWS), "the driver-loaded table is not what was written"
    missing, extra = original - copied, copied - original
    assert not missing and not extra, (
        f"{len(missing)} rows missing from the copy, {len(extra)} rows extra; "
        f"e.g. missing {sorted(missing, key=repr)[:3]}, extra {sorted(extra, key=repr)[:3]}")


def test_copy_to_with_header_and_copy_from_with_small_batches(node, session, home, tmp_path):
    rows = 1_000
    create_table(session, "cp.small")
    load(session, "cp.small", rows)

    csv_path = tmp_path / "small.csv"
    # COPY runs at the shell's consistency level; QUORUM of RF 1 is one replica.
    out = cqlsh_ok(node, home, f"CONSISTENCY QUORUM; COPY cp.small ({COLUMNS}) TO '{csv_path}' "
                               "WITH HEADER = true AND PAGESIZE = 77")
    assert exported(out) == rows
    lines = csv_path.read_text().splitlines()
    assert lines[0] == COLUMNS.replace(" ", "")
    assert len(lines) == rows + 1

    create_table(session, "cp.small2")
    out = cqlsh_ok(node, home, f"CONSISTENCY LOCAL_QUORUM; COPY cp.small2 ({COLUMNS}) "
                               f"FROM '{csv_path}' WITH HEADER = true AND MAXBATCHSIZE = 3 "
                               "AND MINBATCHSIZE = 1 AND CHUNKSIZE = 50")
    assert imported(out) == rows
    assert table_rows(session, "cp.small2") == table_rows(session, "cp.small")
    assert table_rows(session, "cp.small2") == expected_rows(rows)


def test_copy_to_between_tokens_exports_exactly_that_range(node, session, home, tmp_path):
    # BEGINTOKEN/ENDTOKEN cut the ring's ranges at user bounds: every query
    # then has both `token(k) > a` and `token(k) <= b`, and the file must hold
    # exactly the rows whose Murmur3 token lies in (begin, end].
    rows, begin, end = 2_000, -(2**62), 2**61 + 12345
    create_table(session, "cp.tokens")
    load(session, "cp.tokens", rows)
    csv_path = tmp_path / "tokens.csv"
    out = cqlsh_ok(node, home, f"COPY cp.tokens (k, c) TO '{csv_path}' "
                               f"WITH BEGINTOKEN = {begin} AND ENDTOKEN = {end}")
    got = {tuple(map(int, ln.split(","))) for ln in csv_path.read_text().splitlines()}
    want = {divmod(i, ROWS_PER_PARTITION) for i in range(rows)
            if begin < murmur3(struct.pack(">i", i // ROWS_PER_PARTITION)) <= end}
    print(f"token range ({begin}, {end}]: {len(got)} of {rows} rows")
    assert 0 < len(want) < rows
    assert exported(out) == len(want)
    assert got == want


def test_copy_from_with_header_maps_columns_by_name_order(node, session, home, tmp_path):
    # A subset of columns in a different order than the table's: the prepared
    # INSERT names exactly these columns, the rest stay null.
    session.execute("CREATE TABLE cp.sub (k int, c int, name text, score double, "
                    "PRIMARY KEY (k, c))")
    csv_path = tmp_path / "sub.csv"
    csv_path.write_text("score,c,k,name\n1.5,0,1,one\n-2.25,1,1,\n0.0,0,2,two\n")
    out = cqlsh_ok(node, home, f"COPY cp.sub (score, c, k, name) FROM '{csv_path}' "
                               "WITH HEADER = true AND CHUNKSIZE = 1 AND MAXBATCHSIZE = 1")
    assert imported(out) == 3
    got = {tuple(r) for r in session.execute("SELECT k, c, name, score FROM cp.sub")}
    assert got == {(1, 0, "one", 1.5), (1, 1, None, -2.25), (2, 0, "two", 0.0)}


def test_copy_from_bad_values_reports_errors_and_server_stays_up(node, session, home, tmp_path):
    session.execute("CREATE TABLE cp.bad (k int PRIMARY KEY, v int, t text)")
    # Row 2 is not an int: cqlsh's own ParseError, the other rows still go in
    # (row 4's 70,000-character text value is legal in a regular column).
    huge = "x" * 70_000
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(f"1,10,a\n2,notanint,b\n3,30,c\n4,40,{huge}\n5,50,e\n")
    # A partition key over 64 KiB only the server can refuse (Cassandra:
    # "Key length of 70000 is longer than maximum of 65535").
    session.execute("CREATE TABLE cp.badtext (t text PRIMARY KEY, v int)")
    text_csv = tmp_path / "badtext.csv"
    text_csv.write_text(f"ok,1\n{huge},2\nfine,3\n")

    proc = run_cqlsh(node, home, f"COPY cp.bad (k, v, t) FROM '{csv_path}' WITH MAXBATCHSIZE = 1 "
                                 "AND MINBATCHSIZE = 1 AND MAXATTEMPTS = 2")
    print(proc.stdout, proc.stderr)
    assert proc.returncode != 0, proc.stdout
    assert "Failed to import 1 rows: ParseError" in proc.stderr, proc.stderr
    assert "notanint" in proc.stderr
    assert imported(proc.stdout) == 4  # the server accepts a 70,000-char text value
    assert {tuple(r) for r in session.execute("SELECT k, v FROM cp.bad")} == {
        (1, 10), (3, 30), (4, 40), (5, 50)}
    assert_server_up(node, session)

    proc = run_cqlsh(node, home, f"COPY cp.badtext (t, v) FROM '{text_csv}' WITH MAXBATCHSIZE = 1 "
                                 "AND MINBATCHSIZE = 1 AND MAXATTEMPTS = 2")
    print(proc.stdout, proc.stderr)
    assert proc.returncode != 0, proc.stdout
    # The server refuses the key (InvalidRequest), cqlsh retries, then gives up.
    assert "Failed to import 1 rows: InvalidRequest" in proc.stderr, proc.stderr
    assert "given up after 2 attempts" in proc.stderr, proc.stderr
    assert imported(proc.stdout) == 2
    assert {tuple(r) for r in session.execute("SELECT t, v FROM cp.badtext")} == {
        ("ok", 1), ("fine", 3)}
    assert_server_up(node, session)
