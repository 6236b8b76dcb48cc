"""Acceptance for issue 3 item 5: prepared statements.

What is checked, against a real node, per the CQL native protocol v4 spec
(native_protocol_v4.spec §4.1.4-§4.1.6, §4.2.5.4, §9) and Cassandra's behaviour:

* pk_index: the Prepared result names, for each partition-key column in key order,
  the bind marker that sets it, so a driver computes the routing key (and token)
  without schema metadata; a statement that does not bind the whole key has none.
* ids: Cassandra's statement id is MD5(keyspace in effect + query text)
  (QueryProcessor.computeId), so the same text prepared on two connections gives
  the same id and another USE keyspace gives another id.
* an EXECUTE of an id the server does not hold is ERROR Unprepared (0x2500) whose
  body carries the id back, so the driver can re-prepare and retry.
* the server-wide cache evicts statements on ALTER / DROP of their table: the
  driver then re-prepares and sees the new result metadata instead of decoding
  new rows with stale metadata (it executes with skip_metadata under v4).
* skip_metadata (EXECUTE flag 0x02) is honoured: the Rows result has the
  No_metadata flag (0x0004) and no column specs; without it the specs are there.
* the cache is bounded (limits.max_prepared_statements): an evicted id is
  Unprepared, and the driver's transparent re-prepare keeps answers right.

The driver-level tests use the DataStax Python driver; the wire-level ones use a
minimal v4 client over a plain socket (`RawConnection`), uncompressed. Expected
ids, routing keys and rows are computed here, never read back from the server.
"""

import hashlib
import socket
import struct

import pytest
from cassandra.cluster import Cluster

RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"

# Opcodes (spec §2.4) and codes used below.
OP_ERROR, OP_STARTUP, OP_READY, OP_QUERY, OP_RESULT, OP_PREPARE, OP_EXECUTE = (
    0x00, 0x01, 0x02, 0x07, 0x08, 0x09, 0x0A)
RESULT_VOID, RESULT_ROWS, RESULT_PREPARED = 0x0001, 0x0002, 0x0004
ERR_INVALID, ERR_UNPREPARED = 0x2200, 0x2500
CL_ONE = 0x0001
# Rows metadata flags (§4.2.5.2).
GLOBAL_TABLES_SPEC, HAS_MORE_PAGES, NO_METADATA = 0x0001, 0x0002, 0x0004
# Query flags (§4.1.4).
Q_VALUES, Q_SKIP_METADATA = 0x01, 0x02


def statement_id(query: str, keyspace=None) -> bytes:
    """Cassandra's prepared id: MD5 of the keyspace in effect (if any) + the query."""
    return hashlib.md5(((keyspace or "") + query).encode()).digest()


# -- a minimal protocol v4 client ------------------------------------------------

class Reader:
    """Cursor over a response body, with the spec's [notation] readers."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n):
        assert self.pos + n <= len(self.data), "body shorter than its fields"
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def string(self):
        return self.take(self.short()).decode()

    def short_bytes(self):
        return self.take(self.short())

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def option(self):
        """A type [option]; returns a nested tuple naming the type."""
        kind = self.short()
        if kind == 0x0000:
            return ("custom", self.string())
        if kind in (0x0020, 0x0022):  # list, set
            return (kind, self.option())
        if kind == 0x0021:  # map
            return (kind, self.option(), self.option())
        if kind == 0x0030:  # UDT
            ks, name = self.string(), self.string()
            return (kind, ks, name, tuple((self.string(), self.option())
                                          for _ in range(self.short())))
        if kind == 0x0031:  # tuple
            return (kind, tuple(self.option() for _ in range(self.short())))
        return kind

    def at_end(self):
        return self.pos == len(self.data)


class ServerError(Exception):
    def __init__(self, code, message, body):
        super().__init__(f"ERROR 0x{code:04x}: {message}")
        self.code, self.message, self.body = code, message, body


def short_bytes(b: bytes) -> bytes:
    return struct.pack(">H", len(b)) + b


def long_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def values(*cells) -> bytes:
    """[short n] then n [bytes] values (already serialized)."""
    out = struct.pack(">H", len(cells))
    for c in cells:
        out += struct.pack(">i", len(c)) + c
    return out


def int_cell(v: int) -> bytes:
    return struct.pack(">i", v)


class RawConnection:
    """One uncompressed v4 connection: STARTUP, then request/response on stream 1."""

    def __init__(self, node, keyspace=None):
        self.sock = socket.create_connection((node.host, node.port), timeout=10)
        body = struct.pack(">H", 1) + short_bytes(b"CQL_VERSION") + short_bytes(b"3.0.0")
        opcode, _ = self.request(OP_STARTUP, body)
        assert opcode == OP_READY, f"STARTUP answered with opcode {opcode:#x}"
        if keyspace:
            self.query(f'USE "{keyspace}"')

    def close(self):
        self.sock.close()

    def _recv_exactly(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "server closed the connection"
            buf += chunk
        return buf

    def request(self, opcode, body, stream=1):
        """Sends one frame; returns (opcode, body) of the response on that stream."""
        self.sock.sendall(struct.pack(">BBhBi", 0x04, 0, stream, opcode, len(body)) + body)
        while True:
            version, flags, got_stream, op, length = struct.unpack(
                ">BBhBi", self._recv_exactly(9))
            payload = self._recv_exactly(length)
            if got_stream == stream:  # stream -1 would be an EVENT; none registered
                assert version == 0x84, f"response version byte {version:#x}"
                assert flags & 0x01 == 0, "compressed response without negotiation"
                return op, payload

    def checked(self, opcode, body):
        """Like request(), but raises ServerError for an ERROR response."""
        op, payload = self.request(opcode, body)
        if op == OP_ERROR:
            r = Reader(payload)
            code = r.int()
            raise ServerError(code, r.string(), payload)
        assert op == OP_RESULT, f"unexpected opcode {op:#x}"
        return Reader(payload)

    def query(self, cql):
        return self.checked(OP_QUERY, long_string(cql) + struct.pack(">HB", CL_ONE, 0))

    def prepare(self, cql):
        """PREPARE; returns (id, pk_indexes, bind column names, result column names)."""
        r = self.checked(OP_PREPARE, long_string(cql))
        assert r.int() == RESULT_PREPARED
        query_id = r.short_bytes()
        # Prepared metadata: flags, columns_count, pk_count, pk_index..., [global], specs.
        flags, count, pk_count = r.int(), r.int(), r.int()
        pk_indexes = [r.short() for _ in range(pk_count)]
        binds = read_column_specs(r, flags, count)
        result_flags, result_count = r.int(), r.int()
        result_columns = ([] if result_flags & NO_METADATA
                          else read_column_specs(r, result_flags, result_count))
        assert r.at_end(), "trailing bytes after the Prepared result"
        return query_id, pk_indexes, [c[2] for c in binds], [c[2] for c in result_columns]

    def execute(self, query_id, body_values=b"", flags=0):
        """EXECUTE: [short bytes id][consistency][flags][values...]; returns the Reader."""
        body = short_bytes(query_id) + struct.pack(">HB", CL_ONE, flags) + body_values
        return self.checked(OP_EXECUTE, body)


def read_column_specs(r, flags, count):
    """`count` column specs as (keyspace, table, name, type)."""
    if flags & GLOBAL_TABLES_SPEC:
        ks, table = r.string(), r.string()
    specs = []
    for _ in range(count):
        if not flags & GLOBAL_TABLES_SPEC:
            ks, table = r.string(), r.string()
        specs.append((ks, table, r.string(), r.option()))
    return specs


def read_rows(r):
    """A Rows result: (metadata flags, column count, column specs or None, rows)."""
    assert r.int() == RESULT_ROWS
    flags, count = r.int(), r.int()
    if flags & HAS_MORE_PAGES:
        r.bytes()
    specs = None if flags & NO_METADATA else read_column_specs(r, flags, count)
    rows = [[r.bytes() for _ in range(count)] for _ in range(r.int())]
    assert r.at_end(), "trailing bytes after the rows"
    return flags, count, specs, rows


@pytest.fixture
def raw(node):
    conn = RawConnection(node)
    yield conn
    conn.close()


# -- driver fixtures -----------------------------------------------------------

@pytest.fixture(scope="module")
def session(cluster):
    s = cluster.connect()
    s.execute(f"CREATE KEYSPACE prep WITH replication = {RF1}")
    s.execute(f"CREATE KEYSPACE prep2 WITH replication = {RF1}")
    s.execute("CREATE TABLE prep.compound (a int, b text, c int, v text, "
              "PRIMARY KEY ((a, b), c))")
    return s


# -- pk_index --------------------------------------------------------------------

def composite_key(*components: bytes) -> bytes:
    """A compound partition key as Cassandra serializes it (CompositeType):
    each component as [short length][bytes][end-of-component 0x00]."""
    return b"".join(struct.pack(">H", len(c)) + c + b"\x00" for c in components)


def test_pk_index_gives_the_driver_routing_key_indexes(node, session):
    # No schema metadata: the driver's fallback (computing the indexes from its own
    # table metadata) cannot hide a missing or wrong pk_index from the server.
    c = Cluster(contact_points=[node.host], port=node.port, schema_metadata_enabled=False)
    try:
        s = c.connect()
        assert "prep" not in c.metadata.keyspaces
        select = s.prepare("SELECT c, v FROM prep.compound WHERE b = ? AND a = ?")
        assert select.routing_key_indexes == [1, 0]
        insert = s.prepare("INSERT INTO prep.compound (c, b, v, a) VALUES (?, ?, ?, ?)")
        assert insert.routing_key_indexes == [3, 1]
        update = s.prepare("UPDATE prep.compound SET v = ? WHERE a = ? AND b = ? AND c = ?")
        assert update.routing_key_indexes == [1, 2]
        delete = s.prepare("DELETE FROM prep.compound WHERE c = ? AND b = ? AND a = ?")
        assert delete.routing_key_indexes == [2, 1]

        # The routing key the driver builds from them is the partition key itself.
        bound = select.bind(("bee", 7))
        assert bound.routing_key == composite_key(b"\x00\x00\x00\x07", b"bee")
        bound = insert.bind((1, "bee", "x", 7))
        assert bound.routing_key == composite_key(b"\x00\x00\x00\x07", b"bee")

        # Half a key (b is a literal) or no key markers at all: nothing to route by.
        half = s.prepare("SELECT v FROM prep.compound WHERE a = ? AND b = 'lit' AND c = ?")
        assert not half.routing_key_indexes
        assert half.bind((7, 1)).routing_key is None
        no_key = s.prepare("UPDATE prep.compound SET v = ? WHERE a = 1 AND b = 'x' AND c = ?")
        assert not no_key.routing_key_indexes

        # The statements work, and the row lands where the routing key says.
        s.execute(insert, (3, "bee", "hello", 7))
        assert [tuple(r) for r in s.execute(select, ("bee", 7))] == [(3, "hello")]
    finally:
        c.shutdown()


def test_pk_index_on_the_wire(session, raw):
    # The same, as the Prepared result's bytes say (spec §4.2.5.4), for one statement
    # of each shape; single-column keys too.
    session.execute("CREATE TABLE prep.single (k int PRIMARY KEY, v text)")
    cases = {
        "SELECT v FROM prep.compound WHERE b = ? AND a = ?": [1, 0],
        "INSERT INTO prep.compound (c, b, v, a) VALUES (?, ?, ?, ?)": [3, 1],
        "SELECT v FROM prep.compound WHERE a = ? AND b = 'lit'": [],
        "SELECT v FROM prep.single WHERE k = ?": [0],
        "UPDATE prep.single SET v = ? WHERE k = ?": [1],
        "SELECT v FROM prep.single WHERE k = 4": [],
    }
    for cql, want in cases.items():
        _, pk_indexes, _, _ = raw.prepare(cql)
        assert pk_indexes == want, cql


# -- ids ---------------------------------------------------------------------------

def test_ids_are_stable_across_clusters_and_depend_on_the_keyspace(node, session):
    session.execute("CREATE TABLE prep.ids (k int PRIMARY KEY, v int)")
    session.execute("CREATE TABLE prep2.ids (k int PRIMARY KEY, v int)")
    qualified = "SELECT v FROM prep.ids WHERE k = ?"
    bare = "SELECT v FROM ids WHERE k = ?"
    clusters = [Cluster(contact_points=[node.host], port=node.port) for _ in range(2)]
    try:
        first, second = (c.connect() for c in clusters)
        a, b = first.prepare(qualified), second.prepare(qualified)
        assert a.query_id == b.query_id == statement_id(qualified)

        # The same text under USE prep and USE prep2: Cassandra hashes the keyspace in.
        in_prep = clusters[0].connect("prep").prepare(bare)
        in_prep2 = clusters[1].connect("prep2").prepare(bare)
        assert in_prep.query_id == statement_id(bare, "prep")
        assert in_prep2.query_id == statement_id(bare, "prep2")
        assert in_prep.query_id != in_prep2.query_id

        # Each runs against its own keyspace's table.
        session.execute("INSERT INTO prep.ids (k, v) VALUES (1, 10)")
        session.execute("INSERT INTO prep2.ids (k, v) VALUES (1, 20)")
        assert clusters[0].connect("prep").execute(in_prep, (1,)).one().v == 10
        assert clusters[1].connect("prep2").execute(in_prep2, (1,)).one().v == 20
    finally:
        for c in clusters:
            c.shutdown()


def test_an_id_prepared_on_one_connection_executes_on_another(node, session):
    session.execute("CREATE TABLE prep.shared (k int PRIMARY KEY, v int)")
    session.execute("INSERT INTO prep.shared (k, v) VALUES (5, 50)")
    cql = "SELECT v FROM prep.shared WHERE k = ?"
    one, other = RawConnection(node), RawConnection(node)
    try:
        query_id, _, _, _ = one.prepare(cql)
        assert query_id == statement_id(cql)
        _, _, _, rows = read_rows(other.execute(query_id, values(int_cell(5)), Q_VALUES))
        assert rows == [[int_cell(50)]]
    finally:
        one.close()
        other.close()


# -- Unprepared --------------------------------------------------------------------

def test_unknown_id_is_unprepared_with_the_id(raw):
    made_up = bytes(range(0xA0, 0xB0))
    with pytest.raises(ServerError) as err:
        raw.execute(made_up)
    assert err.value.code == ERR_UNPREPARED
    r = Reader(err.value.body)
    assert r.int() == ERR_UNPREPARED
    r.string()
    assert r.short_bytes() == made_up
    assert r.at_end()
    # The connection is still usable after the error.
    _, _, _, rows = read_rows(raw.query("SELECT key FROM system.local"))
    assert rows == [[b"local"]]


def test_unknown_id_in_a_batch_is_unprepared(raw):
    # BATCH (0x0D) of one prepared statement (kind 1) with an id the server lacks.
    made_up = hashlib.md5(b"never prepared").digest()
    body = (struct.pack(">BHB", 0, 1, 1) + short_bytes(made_up) + struct.pack(">H", 0)
            + struct.pack(">HB", CL_ONE, 0))
    op, payload = raw.request(0x0D, body)
    assert op == OP_ERROR
    r = Reader(payload)
    assert r.int() == ERR_UNPREPARED
    r.string()
    assert r.short_bytes() == made_up


# -- eviction on ALTER / DROP --------------------------------------------------------

def test_alter_table_evicts_and_the_driver_sees_the_new_column(session):
    session.execute("CREATE TABLE prep.alt (k int PRIMARY KEY, v text)")
    session.execute("INSERT INTO prep.alt (k, v) VALUES (1, 'one')")
    stmt = session.prepare("SELECT * FROM prep.alt WHERE k = ?")
    row = session.execute(stmt, (1,)).one()
    assert row._fields == ("k", "v") and tuple(row) == (1, "one")

    session.execute("ALTER TABLE prep.alt ADD extra text")
    session.execute("INSERT INTO prep.alt (k, v, extra) VALUES (2, 'two', 'more')")
    row = session.execute(stmt, (2,)).one()
    assert row._fields == ("k", "extra", "v")  # key, then regular columns by name
    assert tuple(row) == (2, "more", "two")
    assert tuple(session.execute(stmt, (1,)).one()) == (1, None, "one")


def test_alter_table_evicts_on_the_wire(session, raw):
    session.execute("CREATE TABLE prep.alt_wire (k int PRIMARY KEY, v int)")
    cql = "SELECT * FROM prep.alt_wire WHERE k = ?"
    query_id, _, _, columns = raw.prepare(cql)
    assert columns == ["k", "v"]
    session.execute("ALTER TABLE prep.alt_wire ADD w int")
    with pytest.raises(ServerError) as err:
        raw.execute(query_id, values(int_cell(1)), Q_VALUES | Q_SKIP_METADATA)
    assert err.value.code == ERR_UNPREPARED
    again, _, _, columns = raw.prepare(cql)
    assert again == query_id  # same keyspace and text: same id
    assert columns == ["k", "v", "w"]


def test_drop_and_recreate_never_serves_the_old_statement(node, session, raw):
    session.execute("CREATE TABLE prep.dropped (k int PRIMARY KEY, v text)")
    session.execute("INSERT INTO prep.dropped (k, v) VALUES (1, 'old')")
    cql = "SELECT * FROM prep.dropped WHERE k = ?"
    stmt = session.prepare(cql)
    assert tuple(session.execute(stmt, (1,)).one()) == (1, "old")
    old_id, _, _, _ = raw.prepare(cql)
    assert old_id == stmt.query_id

    session.execute("DROP TABLE prep.dropped")
    session.execute("CREATE TABLE prep.dropped (k int PRIMARY KEY, n bigint, w text)")
    session.execute("INSERT INTO prep.dropped (k, n, w) VALUES (1, 9000000000, 'new')")

    # The old id, with skip_metadata as a driver would send it: an error, not rows.
    with pytest.raises(ServerError) as err:
        raw.execute(old_id, values(int_cell(1)), Q_VALUES | Q_SKIP_METADATA)
    assert err.value.code in (ERR_UNPREPARED, ERR_INVALID), err.value
    if err.value.code == ERR_UNPREPARED:
        r = Reader(err.value.body)
        r.int(), r.string()
        assert r.short_bytes() == old_id

    # The driver's old statement object: Unprepared, re-prepare, new result metadata.
    row = session.execute(stmt, (1,)).one()
    assert row._fields == ("k", "n", "w") and tuple(row) == (1, 9_000_000_000, "new")
    # And a fresh prepare on another session.
    c = Cluster(contact_points=[node.host], port=node.port)
    try:
        fresh = c.connect().prepare(cql)
        assert tuple(c.connect().execute(fresh, (1,)).one()) == (1, 9_000_000_000, "new")
    finally:
        c.shutdown()


def test_drop_keyspace_evicts(session, raw):
    session.execute(f"CREATE KEYSPACE prep_gone WITH replication = {RF1}")
    session.execute("CREATE TABLE prep_gone.t (k int PRIMARY KEY, v int)")
    query_id, _, _, _ = raw.prepare("SELECT v FROM prep_gone.t WHERE k = ?")
    session.execute("DROP KEYSPACE prep_gone")
    with pytest.raises(ServerError) as err:
        raw.execute(query_id, values(int_cell(1)), Q_VALUES)
    assert err.value.code in (ERR_UNPREPARED, ERR_INVALID), err.value


# -- skip_metadata ---------------------------------------------------------------------

def test_skip_metadata_is_honoured(session, raw):
    session.execute("CREATE TABLE prep.skip (k int, c int, v text, PRIMARY KEY (k, c))")
    for c in range(3):
        session.execute("INSERT INTO prep.skip (k, c, v) VALUES (%s, %s, %s)",
                        (1, c, f"v{c}"))
    query_id, _, _, columns = raw.prepare("SELECT c, v FROM prep.skip WHERE k = ?")
    assert columns == ["c", "v"]
    want_rows = [[int_cell(c), f"v{c}".encode()] for c in range(3)]

    flags, count, specs, rows = read_rows(
        raw.execute(query_id, values(int_cell(1)), Q_VALUES | Q_SKIP_METADATA))
    assert flags & NO_METADATA, f"flags {flags:#x} lack No_metadata"
    assert specs is None
    assert count == 2  # columns_count stays, so the rows can be read
    assert rows == want_rows

    flags, count, specs, rows = read_rows(raw.execute(query_id, values(int_cell(1)), Q_VALUES))
    assert not flags & NO_METADATA, f"flags {flags:#x} have No_metadata"
    assert count == 2
    assert [(s[0], s[1], s[2], s[3]) for s in specs] == [
        ("prep", "skip", "c", 0x0009), ("prep", "skip", "v", 0x000D)]
    assert rows == want_rows


def test_the_driver_executes_prepared_selects_with_skip_metadata(session):
    # The driver sets skip_metadata whenever the Prepared result had result metadata,
    # and decodes with its cached copy: the results must still be right.
    session.execute("CREATE TABLE prep.drv (k int PRIMARY KEY, v text)")
    session.execute("INSERT INTO prep.drv (k, v) VALUES (1, 'x')")
    stmt = session.prepare("SELECT v, k FROM prep.drv WHERE k = ?")
    assert [c[2] for c in stmt.result_metadata] == ["v", "k"]  # (ks, table, name, type)
    future = session.execute_async(stmt, (1,))
    rows = future.result()
    assert future.message.skip_meta is True
    assert [tuple(r) for r in rows] == [("x", 1)]


# -- the bound ---------------------------------------------------------------------------

CACHE_BOUND = 20


@pytest.fixture
def small_cache_node(node_factory, monkeypatch):
    with monkeypatch.context() as m:
        m.setenv("RINGCACHE_LIMITS__MAX_PREPARED_STATEMENTS", str(CACHE_BOUND))
        return node_factory("small-cache")


def test_cache_is_bounded_and_the_driver_reprepares(small_cache_node):
    c = Cluster(contact_points=[small_cache_node.host], port=small_cache_node.port)
    raw = RawConnection(small_cache_node)
    try:
        s = c.connect()
        s.execute(f"CREATE KEYSPACE bound WITH replication = {RF1}")
        s.execute("CREATE TABLE bound.t (k int PRIMARY KEY, v int)")
        s.execute("INSERT INTO bound.t (k, v) VALUES (1, 7)")
        # 10x the bound of distinct statements (distinct texts, distinct ids).
        texts = [f"SELECT v FROM bound.t WHERE k = ? LIMIT {i + 1}"
                 for i in range(10 * CACHE_BOUND)]
        ids = [raw.prepare(t)[0] for t in texts]
        assert ids == [statement_id(t) for t in texts]
        held = 0
        for query_id in ids:
            try:
                _, _, _, rows = read_rows(raw.execute(query_id, values(int_cell(1)), Q_VALUES))
                assert rows[0][0] == int_cell(7)
                held += 1
            except ServerError as err:
                assert err.code == ERR_UNPREPARED, err
                assert Reader(err.body).int() == ERR_UNPREPARED
        # moka applies the bound in maintenance batches: allow slack, not 10x.
        assert held <= 2 * CACHE_BOUND, f"{held} of {len(ids)} ids still prepared"
        # Through the driver every statement still answers right, re-prepared as needed.
        stmts = [s.prepare(t) for t in texts[:3 * CACHE_BOUND]]
        for stmt in stmts:
            assert [tuple(r) for r in s.execute(stmt, (1,))] == [(7,)]
    finally:
        raw.close()
        c.shutdown()
