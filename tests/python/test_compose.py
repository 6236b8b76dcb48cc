"""docker-compose.yml runs one three-node cluster: there is no Docker daemon here, so
this reads the compose file as Docker would (anchors, merge keys, ${VAR:-default},
the Dockerfile's ENV beneath the service's environment) and hands each node's
variables to the real binary's config loader (`ringcache serve --check-config`,
which loads, validates and prints the configuration without serving)."""

import ipaddress
import os
import re
import subprocess
import tomllib
from pathlib import Path

import yaml  # PyYAML, pinned in requirements.txt

REPO_ROOT = Path(__file__).resolve().parents[2]
# The Dockerfile copies config/ringcache.toml to the path its RINGCACHE_CONFIG names.
IMAGE_CONFIG = "/etc/ringcache/ringcache.toml"


def interpolate(value: str) -> str:
    """Compose's interpolation: ${VAR:-default}, ${VAR}, and $$ for a literal $."""
    def sub(m):
        name, default = m.group(1), m.group(3)
        return os.environ.get(name) or (default if default is not None else "")
    value = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", sub, str(value))
    return value.replace("$$", "$")


def dockerfile_env() -> dict:
    """The image's ENV settings (the variables every container starts with)."""
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def compose():
    with open(REPO_ROOT / "docker-compose.yml") as f:
        return yaml.safe_load(f)


def node_services(doc) -> dict:
    """The ringcache services: name -> (environment, address on the compose network)."""
    nodes = {}
    for name, service in doc["services"].items():
        env = {k: interpolate(v) for k, v in (service.get("environment") or {}).items()}
        if not any(k.startswith("RINGCACHE_") for k in env):
            continue
        address = service["networks"]["default"]["ipv4_address"]
        nodes[name] = (env, address)
    return nodes


def check_config(ringcache_bin, env: dict, tmp_path) -> subprocess.CompletedProcess:
    """`ringcache serve --check-config` with exactly the container's variables."""
    env = {**dockerfile_env(), **env}
    if env.get("RINGCACHE_CONFIG") == IMAGE_CONFIG:
        env["RINGCACHE_CONFIG"] = str(REPO_ROOT / "config/ringcache.toml")
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    return subprocess.run([str(ringcache_bin), "serve", "--check-config"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_compose_nodes_form_one_cluster_with_settings_the_binary_accepts(ringcache_bin, tmp_path):
    doc = compose()
    nodes = node_services(doc)
    assert sorted(nodes) == ["node1", "node2", "node3"], nodes
    subnet = ipaddress.ip_network(doc["networks"]["default"]["ipam"]["config"][0]["subnet"])
    by_address = {address: name for name, (_, address) in nodes.items()}
    configs = {}
    for name, (env, address) in nodes.items():
        run = check_config(ringcache_bin, env, tmp_path)
        assert run.returncode == 0, f"{name}: the config loader refused {env}:\n{run.stderr}"
        config = tomllib.loads(run.stdout)
        configs[name] = config
        assert config["listen_address"] == address, f"{name} must listen on its own address"
        assert ipaddress.ip_address(address) in subnet
        assert config["cluster_secret"], f"{name} has no cluster_secret"
    assert len({c["cluster_name"] for c in configs.values()}) == 1
    assert len({c["cluster_secret"] for c in configs.values()}) == 1, "one cluster_secret"
    assert len(by_address) == 3, "every node has its own address"
    founders = []
    for name, config in configs.items():
        seeds = config["seeds"]
        assert seeds, f"{name} has no seeds"
        named = [by_address.get(seed.split(":")[0]) for seed in seeds]
        assert None not in named, f"{name}'s seeds {seeds} must name services of the file"
        if named == [name]:
            founders.append(name)
        else:
            assert name not in named and named, f"{name} joins through other services: {named}"
    # Exactly one node founds the cluster (seeds: only itself); a second founder would
    # make a second cluster.
    assert founders == ["node1"], founders
    # The dashboard's Prometheus scrapes every node's metrics port.
    prometheus = yaml.safe_load((REPO_ROOT / "prometheus/prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    ports = {c["metrics_port"] for c in configs.values()}
    assert sorted(targets) == sorted(f"{n}:{p}" for n in nodes for p in ports)


def test_the_check_refuses_a_variable_the_loader_does_not_know(ringcache_bin, tmp_path):
    env, _ = node_services(compose())["node2"]
    run = check_config(ringcache_bin, {**env, "RINGCACHE_SEEDZ": "172.28.0.11"}, tmp_path)
    assert run.returncode != 0
    assert "unknown field `seedz`" in run.stderr
