"""Connects the DataStax driver with some compression modules hidden.

Run as a subprocess by test_python_driver.py:

    python driver_probe.py HOST PORT [MODULE ...]

Each MODULE (e.g. `lz4`, `snappy`) is made unimportable *before* the driver
is imported, exactly as if it were not installed: the driver decides which
compressions it supports at import time (cassandra/connection.py
`locally_supported_compressions`), so this cannot be done in the pytest
process, which already imported the driver with everything available.

Prints one JSON object: the negotiated protocol version, the compression the
control connection uses (null for none), and a few facts read through it.
"""

import importlib.abc
import json
import sys


class HideModules(importlib.abc.MetaPathFinder):
    """Makes the named top-level modules raise ImportError, as if not installed.

    (A `sys.modules[name] = None` entry is not enough: the driver's
    Cython-compiled import of lz4 gets None back instead of an ImportError.)
    """

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ImportError(f"{fullname} is hidden for this test")
        return None


def main():
    host, port, hidden = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    sys.meta_path.insert(0, HideModules(hidden))

    from cassandra.cluster import Cluster
    from cassandra.connection import locally_supported_compressions

    # Default settings on purpose: no protocol_version (the driver starts at
    # DSE_V2 and must negotiate down to v4 by itself), default compression.
    cluster = Cluster(contact_points=[host], port=port)
    try:
        session = cluster.connect()
        connection = cluster.control_connection._connection
        local = session.execute("SELECT cluster_name, release_version FROM system.local").one()
        session.execute("CREATE KEYSPACE IF NOT EXISTS probe_ks WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE IF NOT EXISTS probe_ks.t (k int PRIMARY KEY, v text)")
        tables = sorted(cluster.metadata.keyspaces["probe_ks"].tables)
        print(json.dumps({
            "local_compressions": list(locally_supported_compressions),
            "protocol_version": cluster.protocol_version,
            "compression": connection._compression_type,
            "compressor_set": connection.compressor is not None,
            "cluster_name": local.cluster_name,
            "release_version": local.release_version,
            "tables": tables,
        }))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
