"""Acceptance: the PyPI `cqlsh` against a real ringcache server.

DESCRIBE is server-side since Cassandra 4.0 (cqlsh sends the text verbatim
and prints the `create_statement` column), so what cqlsh prints here is
exactly what the server generated. The expected text is Cassandra 4.1's own:
the schemas and golden strings below come from 4.1's DescribeStatementTest:
`testDescribe` (users, "Test", users_mv, has_all_types, keyspace line,
DESCRIBE TABLES order), `testDescribeTypes` (three UDTs, dependency order),
`testDescribeTableAndMaterializedViewWithClustringOrder` (DESC clustering;
simple columns before non-frozen collections),
`testDescribeTableWithInternals` (static column) and `tableParametersCql()`,
the default options block: 4.1 prints `memtable = 'default'` and not 5.0's
`allow_auto_snapshot` and `incremental_backups`. The server reports itself as
4.1 in system.local, and the tests check that it does.
"""

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cassandra.cluster import Cluster

CQLSH = Path(sys.executable).with_name("cqlsh")
CQLSH_TIMEOUT_S = 60

_COMPACTION = ("{'class': 'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy', "
               "'max_threshold': '32', 'min_threshold': '4'}")


def table_params(release_version: str) -> str:
    """Cassandra 4.1's default table options, as DESCRIBE prints them."""
    assert release_version.startswith("4.1"), release_version
    lines = [
        "additional_write_policy = '99p'",
        "bloom_filter_fp_chance = 0.01",
        "caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'}",
        "cdc = false",
        "comment = ''",
        f"compaction = {_COMPACTION}",
        "compression = {'chunk_length_in_kb': '16', "
        "'class': 'org.apache.cassandra.io.compress.LZ4Compressor'}",
        "memtable = 'default'",
        "crc_check_chance = 1.0",
        "default_time_to_live = 0",
        "extensions = {}",
        "gc_grace_seconds = 864000",
        "max_index_interval = 2048",
        "memtable_flush_period_in_ms = 0",
        "min_index_interval = 128",
        "read_repair = 'BLOCKING'",
        "speculative_retry = '99p'",
    ]
    return "\n    AND ".join(lines) + ";"


# The schema, in creation order (types before their users).
SCHEMA = [
    "CREATE KEYSPACE test WITH REPLICATION = {'class' : 'SimpleStrategy', 'replication_factor' : 1}",
    "CREATE TABLE test.users ( userid text PRIMARY KEY, firstname text, lastname text, age int)",
    'CREATE TABLE test."Test" (id int, col int, val text, PRIMARY KEY(id, col))',
    "CREATE TABLE test.users_mv (username varchar, password varchar, gender varchar, "
    "session_token varchar, state varchar, birth_year bigint, PRIMARY KEY (username))",
    "CREATE TABLE test.has_all_types (num int PRIMARY KEY, asciicol ascii, bigintcol bigint, "
    "blobcol blob, booleancol boolean, decimalcol decimal, doublecol double, durationcol duration, "
    "floatcol float, frozenlistcol frozen<list<text>>, frozenmapcol frozen<map<timestamp, timeuuid>>, "
    "frozensetcol frozen<set<bigint>>, intcol int, smallintcol smallint, textcol text, "
    "timestampcol timestamp, tinyintcol tinyint, "
    "tuplecol frozen<tuple<text, int, frozen<tuple<timestamp>>>>, uuidcol uuid, varcharcol varchar, "
    "varintcol varint, listcol list<decimal>, mapcol map<timestamp, timeuuid>, setcol set<tinyint>)",
    "CREATE TABLE test.ordered (pk1 int, pk2 int, ck1 int, ck2 int, reg1 int, reg2 list<int>, "
    "reg3 int, PRIMARY KEY ((pk1, pk2), ck1, ck2)) WITH CLUSTERING ORDER BY (ck1 ASC, ck2 DESC)",
    "CREATE TABLE test.statics (pk1 text, pk2 int, c int, s decimal static, v1 text, v2 int, "
    "v3 int, PRIMARY KEY ((pk1, pk2), c ))",
    "CREATE TYPE test.type_01 (x text, y text)",
    "CREATE TYPE test.type_02 (a text, b frozen<type_01>)",
    "CREATE TYPE test.type_00 (a int, b frozen<type_02>)",
]

# DescribeStatementTest.keyspaceOutput() in 4.1: the strategy by its simple name
# (ReplicationParams.appendCqlTo shortens classes of org.apache.cassandra.locator);
# system_schema.keyspaces keeps the full class name (ReplicationParams.asMap).
KEYSPACE_OUT = ("CREATE KEYSPACE test WITH replication = {'class': 'SimpleStrategy', "
                "'replication_factor': '1'}  AND durable_writes = true;")

TYPES_OUT = {
    "type_01": "CREATE TYPE test.type_01 (\n    x text,\n    y text\n);",
    "type_02": "CREATE TYPE test.type_02 (\n    a text,\n    b frozen<type_01>\n);",
    "type_00": "CREATE TYPE test.type_00 (\n    a int,\n    b frozen<type_02>\n);",
}


def tables_out(params: str) -> dict:
    """name -> DESCRIBE TABLE output, in Cassandra's (case-insensitive) name order."""
    return {
        "has_all_types": (
            "CREATE TABLE test.has_all_types (\n"
            "    num int PRIMARY KEY,\n"
            "    asciicol ascii,\n"
            "    bigintcol bigint,\n"
            "    blobcol blob,\n"
            "    booleancol boolean,\n"
            "    decimalcol decimal,\n"
            "    doublecol double,\n"
            "    durationcol duration,\n"
            "    floatcol float,\n"
            "    frozenlistcol frozen<list<text>>,\n"
            "    frozenmapcol frozen<map<timestamp, timeuuid>>,\n"
            "    frozensetcol frozen<set<bigint>>,\n"
            "    intcol int,\n"
            "    smallintcol smallint,\n"
            "    textcol text,\n"
            "    timestampcol timestamp,\n"
            "    tinyintcol tinyint,\n"
            "    tuplecol frozen<tuple<text, int, frozen<tuple<timestamp>>>>,\n"
            "    uuidcol uuid,\n"
            "    varcharcol text,\n"
            "    varintcol varint,\n"
            "    listcol list<decimal>,\n"
            "    mapcol map<timestamp, timeuuid>,\n"
            "    setcol set<tinyint>\n"
            ") WITH " + params),
        "ordered": (
            "CREATE TABLE test.ordered (\n"
            "    pk1 int,\n"
            "    pk2 int,\n"
            "    ck1 int,\n"
            "    ck2 int,\n"
            "    reg1 int,\n"
            "    reg3 int,\n"
            "    reg2 list<int>,\n"
            "    PRIMARY KEY ((pk1, pk2), ck1, ck2)\n"
            ") WITH CLUSTERING ORDER BY (ck1 ASC, ck2 DESC)\n"
            "    AND " + params),
        "statics": (
            "CREATE TABLE test.statics (\n"
            "    pk1 text,\n"
            "    pk2 int,\n"
            "    c int,\n"
            "    s decimal static,\n"
            "    v1 text,\n"
            "    v2 int,\n"
            "    v3 int,\n"
            "    PRIMARY KEY ((pk1, pk2), c)\n"
            ") WITH CLUSTERING ORDER BY (c ASC)\n"
            "    AND " + params),
        '"Test"': (
            'CREATE TABLE test."Test" (\n'
            "    id int,\n"
            "    col int,\n"
            "    val text,\n"
            "    PRIMARY KEY (id, col)\n"
            ") WITH CLUSTERING ORDER BY (col ASC)\n"
            "    AND " + params),
        "users": (
            "CREATE TABLE test.users (\n"
            "    userid text PRIMARY KEY,\n"
            "    age int,\n"
            "    firstname text,\n"
            "    lastname text\n"
            ") WITH " + params),
        "users_mv": (
            "CREATE TABLE test.users_mv (\n"
            "    username text PRIMARY KEY,\n"
            "    birth_year bigint,\n"
            "    gender text,\n"
            "    password text,\n"
            "    session_token text,\n"
            "    state text\n"
            ") WITH " + params),
    }


# -- running cqlsh ------------------------------------------------------------

def run_cqlsh(node, *args, env_home=None) -> subprocess.CompletedProcess:
    """Runs `cqlsh HOST PORT ARGS...` with bounded timeouts."""
    env = dict(os.environ)
    # A private HOME: no user cqlshrc, and history files land in a temp dir.
    if env_home is not None:
        env["HOME"] = str(env_home)
    cmd = [str(CQLSH), node.host, str(node.port),
           "--connect-timeout", "20", "--request-timeout", "30", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=CQLSH_TIMEOUT_S,
                          env=env, stdin=subprocess.DEVNULL)


def cqlsh(node, *args, env_home=None) -> str:
    """Runs cqlsh, asserts success; returns stdout without the version warning."""
    proc = run_cqlsh(node, *args, env_home=env_home)
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        f"cqlsh {' '.join(args)} failed ({proc.returncode}):\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    # Cosmetic: cqlsh 6.2 says it was built against 5.0.0 when the server is 4.1.
    lines = [ln for ln in proc.stdout.splitlines()
             if not ln.startswith("WARNING: cqlsh was built against")]
    return "\n".join(lines)


def described(output: str) -> list:
    """The create statements cqlsh printed (one blank line around each)."""
    return [block for block in output.strip("\n").split("\n\n") if block.strip()]


def assert_same_statements(actual: list, expected: list):
    """Equal lists of statements, or a line diff that shows where they differ."""
    if actual != expected:
        diff = difflib.unified_diff("\n\n".join(expected).splitlines(),
                                    "\n\n".join(actual).splitlines(),
                                    "expected (Cassandra)", "actual (ringcache)", lineterm="")
        pytest.fail("DESCRIBE output differs:\n" + "\n".join(diff), pytrace=False)


def create_schema(node, home):
    script = home / "schema.cql"
    script.write_text(";\n".join(SCHEMA) + ";\n")
    cqlsh(node, "-f", str(script), env_home=home)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("cqlsh-home")


@pytest.fixture(scope="module")
def release_version(node):
    cluster = Cluster(contact_points=[node.host], port=node.port)
    try:
        return cluster.connect().execute("SELECT release_version FROM system.local").one()[0]
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def schema_node(node, home):
    """The shared node with the golden schema created through cqlsh -f."""
    create_schema(node, home)
    return node


@pytest.fixture(scope="module")
def golden(release_version):
    params = table_params(release_version)
    tables = tables_out(params)
    keyspace = ([KEYSPACE_OUT]
                + [TYPES_OUT[n] for n in ("type_01", "type_02", "type_00")]
                + list(tables.values()))
    return {"tables": tables, "keyspace": keyspace}


# -- tests --------------------------------------------------------------------

def test_select_system_local_prints_one_row(node, home):
    out = cqlsh(node, "-e", "SELECT * FROM system.local", env_home=home)
    assert "(1 rows)" in out.splitlines()
    assert "cluster_name" in out and "release_version" in out


def test_describe_keyspaces_lists_user_and_system_keyspaces(schema_node, home):
    out = cqlsh(schema_node, "-e", "DESCRIBE KEYSPACES", env_home=home)
    names = out.split()
    for ks in ("system", "system_schema", "system_virtual_schema", "test"):
        assert ks in names, out


def test_describe_keyspaces_rows_sorted_like_cassandra(schema_node):
    # cqlsh columnizes, so check the server's row order through the driver.
    cluster = Cluster(contact_points=[schema_node.host], port=schema_node.port)
    try:
        rows = list(cluster.connect().execute("DESCRIBE KEYSPACES"))
    finally:
        cluster.shutdown()
    names = [r.name for r in rows]
    assert names == sorted(names, key=str.lower)
    assert all(r.type == "keyspace" and r.keyspace_name == r.name for r in rows)


def test_system_schema_keeps_full_strategy_class(schema_node):
    # Only DESCRIBE text shortens the class; the stored map is ReplicationParams.asMap,
    # which uses the full class name (drivers match either form).
    cluster = Cluster(contact_points=[schema_node.host], port=schema_node.port)
    try:
        row = cluster.connect().execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'test'").one()
    finally:
        cluster.shutdown()
    assert row.replication == {"class": "org.apache.cassandra.locator.SimpleStrategy",
                               "replication_factor": "1"}


@pytest.mark.parametrize("name", ["has_all_types", "ordered", "statics", '"Test"', "users",
                                  "users_mv"])
def test_describe_table_matches_cassandra(schema_node, home, golden, name):
    out = cqlsh(schema_node, "-e", f"DESCRIBE TABLE test.{name}", env_home=home)
    assert_same_statements(described(out), [golden["tables"][name]])


@pytest.mark.parametrize("name", ["type_00", "type_01", "type_02"])
def test_describe_type_matches_cassandra(schema_node, home, name):
    out = cqlsh(schema_node, "-e", f"DESCRIBE TYPE test.{name}", env_home=home)
    assert_same_statements(described(out), [TYPES_OUT[name]])


def test_describe_keyspace_matches_cassandra(schema_node, home, golden):
    out = cqlsh(schema_node, "-e", "DESCRIBE KEYSPACE test", env_home=home)
    assert_same_statements(described(out), golden["keyspace"])


def test_use_then_describe_tables(schema_node, home):
    out = cqlsh(schema_node, "-e", "USE test; DESCRIBE TABLES", env_home=home)
    # With a current keyspace cqlsh prints just the names (no "Keyspace" header),
    # in the server's order: Cassandra sorts names case-insensitively.
    assert out.split() == ["has_all_types", "ordered", "statics", '"Test"', "users", "users_mv"]


def test_use_then_describe_types(schema_node, home):
    out = cqlsh(schema_node, "-e", "USE test; DESCRIBE TYPES", env_home=home)
    assert out.split() == ["type_00", "type_01", "type_02"]


def test_describe_output_replays_into_fresh_node(schema_node, node_factory, home, tmp_path):
    original = cqlsh(schema_node, "-e", "DESCRIBE KEYSPACE test", env_home=home)
    script = tmp_path / "replay.cql"
    script.write_text(original + "\n")

    fresh = node_factory("fresh")
    cqlsh(fresh, "-f", str(script), env_home=home)
    replayed = cqlsh(fresh, "-e", "DESCRIBE KEYSPACE test", env_home=home)
    assert_same_statements(described(replayed), described(original))


def test_schema_survives_kill_9(node_factory, home):
    victim = node_factory("victim")
    create_schema(victim, home)
    before = cqlsh(victim, "-e", "DESCRIBE KEYSPACE test", env_home=home)
    assert len(described(before)) == 10  # keyspace, 3 types, 6 tables

    victim.restart(crash=True)  # SIGKILL: no graceful flush
    after = cqlsh(victim, "-e", "DESCRIBE KEYSPACE test", env_home=home)
    assert_same_statements(described(after), described(before))


def test_schema_survives_graceful_restart(node_factory, home):
    n = node_factory("graceful")
    create_schema(n, home)
    before = cqlsh(n, "-e", "DESCRIBE KEYSPACE test", env_home=home)
    n.restart()
    assert n.proc.returncode is None
    after = cqlsh(n, "-e", "DESCRIBE KEYSPACE test", env_home=home)
    assert_same_statements(described(after), described(before))


def test_describe_unknown_table_is_an_error(schema_node, home):
    proc = run_cqlsh(schema_node, "-e", "DESCRIBE TABLE test.nope", env_home=home)
    assert "CREATE" not in proc.stdout
    # Cassandra: "'users2' not found in keyspace 'test'" (DescribeStatementTest),
    # "Table 'mv' not found in keyspace ..." in trunk for DESCRIBE TABLE.
    assert "'nope' not found in keyspace 'test'" in proc.stderr, proc.stderr
