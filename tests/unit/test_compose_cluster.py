"""The cluster stack's file (compose/cluster.yml): validated and interpolated by Compose v2 itself, then
checked against its rules: three routers that join one cluster, each with its own state and node id,
reachable only through the load balancer, which publishes on loopback by default; the router config they
mount loads with its defaults and names what the init step creates."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.validate import load_config
from tests.e2e.stack import COMPOSE, NAMES
from tests.unit.test_compose import compose_binary

CLUSTER_FILE = COMPOSE / "cluster.yml"
CLUSTER_CONFIG = COMPOSE / "router-cluster.yaml"
LB_CONFIG = COMPOSE / "cluster-lb.conf"
ROUTERS = ("router-1", "router-2", "router-3")


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "COMPOSE_", "DOCKER_"))}
    result = subprocess.run(
        [str(compose_binary()), "-f", str(CLUSTER_FILE), "--profile", "*", "config", "--format", "json"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    assert "not set" not in result.stderr, result.stderr  # every ${VAR} has a default
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_three_routers_a_balancer_and_the_services(stack: dict[str, Any]) -> None:
    assert set(stack["services"]) == {*ROUTERS, "lb", "aws", "kafka", "init"}
    for name in (*ROUTERS, "lb", "aws", "kafka"):
        check = stack["services"][name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    for name in ROUTERS:
        assert "/readyz" in " ".join(stack["services"][name]["healthcheck"]["test"])  # ready = joined
        assert stack["services"]["lb"]["depends_on"][name]["condition"] == "service_healthy"


def test_only_the_balancer_publishes_on_loopback(stack: dict[str, Any]) -> None:
    published = {name: s["ports"] for name, s in stack["services"].items() if s.get("ports")}
    assert set(published) == {"lb"}
    assert {(p["host_ip"], p["published"], p["target"]) for p in published["lb"]} == {
        ("127.0.0.1", "9000", 9000),
        ("127.0.0.1", "8080", 8080),
    }
    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+-alpine", stack["services"]["lb"]["image"])


def test_each_router_has_its_own_state_and_node_id(stack: dict[str, Any]) -> None:
    ids, states = set(), set()
    for name in ROUTERS:
        router = stack["services"][name]
        binds = {m["target"]: Path(m["source"]) for m in router["volumes"] if m["type"] == "bind"}
        assert binds["/etc/router/router.yaml"] == CLUSTER_CONFIG
        volumes = {m["target"]: m["source"] for m in router["volumes"] if m["type"] == "volume"}
        states.add(volumes["/var/lib/router"])
        ids.add(router["environment"]["NODE_ID"])
        values = json.dumps(yaml.safe_load(CLUSTER_CONFIG.read_text()))
        read = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", values))
        assert read <= set(router["environment"]), read - set(router["environment"])
    assert len(ids) == len(states) == 3


def test_the_balancer_spreads_both_ports_over_every_router() -> None:
    text = LB_CONFIG.read_text()
    for port in (9000, 8080):
        assert all(f"server {name}:{port}" in text for name in ROUTERS), port


def test_cluster_config_loads_and_names_what_init_creates() -> None:
    config = load_config(CLUSTER_CONFIG, env={})
    assert config.cluster is not None and config.cluster.kafka.brokers == ["kafka:9092"]
    assert config.cluster.leases.dynamodb.endpoint_url == "http://aws:5000"
    sources = config.sources
    assert (sources["objects"].bucket, sources["objects"].queue) == (
        NAMES.UPLOADS_BUCKET,
        NAMES.UPLOADS_QUEUE,
    )
    assert sources["orders"].table == NAMES.ORDERS_TABLE and sources["events"].stream == NAMES.EVENTS_STREAM
    assert not {s.kind_name() for s in sources.values()} & {"email"}  # per-node sources are left out
