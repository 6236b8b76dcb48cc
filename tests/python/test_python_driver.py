"""Acceptance: the DataStax Python driver (cassandra-driver from PyPI) with
DEFAULT settings against a real ringcache server.

Default settings matter: the driver starts at protocol 0x42 (DSE_V2) and must
walk down to v4 on its own, picks lz4 compression when the lz4 module is
installed (snappy when only that one is), and runs its full control-connection
sequence (system.local, peers, peers_v2, all system_schema tables, virtual
schema) before `connect()` returns. See docs/design.md §18.5.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cassandra import ProtocolVersion
from cassandra.cluster import Cluster

PROBE = Path(__file__).with_name("driver_probe.py")

UDT_DDL = ("CREATE TYPE {ks}.address (street text, city text, zip int, "
           "phones frozen<set<text>>)")

# A table exercising every part of the data model the driver's metadata
# parser sees: compound partition key, DESC clustering, a static column,
# every native type, collections, frozen collections, tuples and UDTs.
TABLE_DDL = """
CREATE TABLE {ks}.t (
    tenant text, bucket int,
    ts timestamp, id timeuuid,
    s_note text static,
    a ascii, big bigint, bl blob, bo boolean, d date, dec decimal, dbl double,
    dur duration, fl float, ip inet, i int, sm smallint, tm time, ti tinyint,
    u uuid, vc varchar, vi varint,
    l list<text>, st set<int>, m map<text, bigint>,
    fz frozen<list<int>>,
    tp tuple<int, text, frozen<list<int>>>,
    addr frozen<address>,
    addrs map<text, frozen<address>>,
    PRIMARY KEY ((tenant, bucket), ts, id)
) WITH CLUSTERING ORDER BY (ts DESC, id ASC)
"""

# column -> the type string Cassandra stores in system_schema.columns.type
# (varchar is an alias of text; tuples are always frozen).
EXPECTED_TYPES = {
    "tenant": "text", "bucket": "int", "ts": "timestamp", "id": "timeuuid",
    "s_note": "text", "a": "ascii", "big": "bigint", "bl": "blob", "bo": "boolean",
    "d": "date", "dec": "decimal", "dbl": "double", "dur": "duration", "fl": "float",
    "ip": "inet", "i": "int", "sm": "smallint", "tm": "time", "ti": "tinyint",
    "u": "uuid", "vc": "text", "vi": "varint",
    "l": "list<text>", "st": "set<int>", "m": "map<text, bigint>",
    "fz": "frozen<list<int>>",
    "tp": "frozen<tuple<int, text, frozen<list<int>>>>",
    "addr": "frozen<address>",
    "addrs": "map<text, frozen<address>>",
}


@pytest.fixture(scope="module")
def session(cluster):
    return cluster.connect()


def create_keyspace(session, ks):
    session.execute(f"CREATE KEYSPACE {ks} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")


def run_probe(node, *hidden):
    """Runs driver_probe.py with the given modules hidden; returns its JSON."""
    proc = subprocess.run([sys.executable, str(PROBE), node.host, str(node.port), *hidden],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"probe failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- connecting ---------------------------------------------------------------

def test_negotiates_v4_from_default_dse_v2(cluster, session):
    # The driver's default first attempt is DSE_V2; it must end at v4.
    assert Cluster.protocol_version == ProtocolVersion.DSE_V2
    assert cluster.protocol_version == 4
    assert session.execute("SELECT release_version FROM system.local").one() is not None


def test_uses_lz4_when_installed(cluster, session):
    connection = cluster.control_connection._connection
    assert connection._compression_type == "lz4"
    assert connection.compressor is not None
    # Frames really are compressed and decompressed both ways: a query works.
    assert session.execute("SELECT cluster_name FROM system.local").one().cluster_name


def test_connects_without_any_compression_module(node):
    result = run_probe(node, "lz4", "snappy")
    assert result["local_compressions"] == []
    assert result["protocol_version"] == 4
    assert result["compression"] is None
    assert result["tables"] == ["t"]


def test_uses_snappy_when_lz4_missing(node):
    result = run_probe(node, "lz4")
    assert result["local_compressions"] == ["snappy"]
    assert result["protocol_version"] == 4
    assert result["compression"] == "snappy"
    assert result["compressor_set"] is True
    assert result["cluster_name"]


# -- system tables ------------------------------------------------------------

def test_system_local_has_exactly_one_complete_row(session):
    rows = list(session.execute("SELECT * FROM system.local"))
    assert len(rows) == 1
    local = rows[0]
    assert local.key == "local"
    assert local.cluster_name
    # >= 4 makes cqlsh use server-side DESCRIBE; test_cqlsh checks that the
    # DESCRIBE output matches the Cassandra release reported here.
    assert re.fullmatch(r"[45]\.\d+\.\d+", local.release_version), local.release_version
    assert local.partitioner == "org.apache.cassandra.dht.Murmur3Partitioner"
    assert local.tokens and all(-2**63 <= int(t) < 2**63 for t in local.tokens)
    assert local.host_id is not None
    assert local.schema_version is not None
    assert local.data_center and local.rack


def test_system_peers_tables_answer(session):
    assert list(session.execute("SELECT * FROM system.peers")) == []
    assert list(session.execute("SELECT * FROM system.peers_v2")) == []


def test_token_map_is_built(cluster, session):
    create_keyspace(session, "tm_ks")
    cluster.refresh_schema_metadata()
    token_map = cluster.metadata.token_map
    assert token_map is not None
    local = session.execute("SELECT tokens FROM system.local").one()
    assert len(token_map.ring) == len(local.tokens)
    host = next(iter(cluster.metadata.all_hosts()))
    assert set(token_map.token_to_host_owner.values()) == {host}
    # Every token of the ring maps to the single replica for an RF 1 keyspace.
    replicas = token_map.get_replicas("tm_ks", token_map.ring[0])
    assert replicas == [host]


# -- schema metadata ----------------------------------------------------------

def test_table_metadata_matches_ddl(cluster, session):
    create_keyspace(session, "ks")
    session.execute(UDT_DDL.format(ks="ks"))
    session.execute(TABLE_DDL.format(ks="ks"))

    ks = cluster.metadata.keyspaces["ks"]
    assert ks.replication_strategy.replication_factor == 1
    assert ks.durable_writes is True

    udt = ks.user_types["address"]
    assert udt.field_names == ["street", "city", "zip", "phones"]
    assert udt.field_types == ["text", "text", "int", "frozen<set<text>>"]

    table = ks.tables["t"]
    assert {name: col.cql_type for name, col in table.columns.items()} == EXPECTED_TYPES
    assert [c.name for c in table.partition_key] == ["tenant", "bucket"]
    assert [c.name for c in table.clustering_key] == ["ts", "id"]
    assert [c.is_reversed for c in table.clustering_key] == [True, False]
    assert [n for n, c in table.columns.items() if c.is_static] == ["s_note"]
    # Cassandra returns system_schema.columns in clustering order (by name),
    # after the key columns the driver puts first.
    regular = list(table.columns)[4:]
    assert regular == sorted(regular)
    assert table.is_cql_compatible
    assert "WITH CLUSTERING ORDER BY (ts DESC, id ASC)" in table.export_as_string()


def test_drop_table_shows_in_metadata(cluster, session):
    create_keyspace(session, "drop_ks")
    session.execute("CREATE TABLE drop_ks.gone (k int PRIMARY KEY, v text)")
    assert "gone" in cluster.metadata.keyspaces["drop_ks"].tables
    session.execute("DROP TABLE drop_ks.gone")
    assert "gone" not in cluster.metadata.keyspaces["drop_ks"].tables
    session.execute("DROP KEYSPACE drop_ks")
    assert "drop_ks" not in cluster.metadata.keyspaces


def test_use_keyspace(cluster):
    create_keyspace(cluster.connect(), "use_ks")
    session = cluster.connect("use_ks")  # the driver sends USE "use_ks"
    assert session.keyspace == "use_ks"
    session.execute("CREATE TABLE t2 (k int PRIMARY KEY)")
    assert "t2" in cluster.metadata.keyspaces["use_ks"].tables


def test_schema_versions_agree(cluster, session):
    assert cluster.control_connection.wait_for_schema_agreement(wait_time=5)
