"""Shared fixtures: real backing services on free loopback ports, and `make_router` (a daemon subprocess).

* `moto_server`: endpoint URL of a moto server (S3, SQS, DynamoDB + Streams, Kinesis), one per session.
* `kafka_broker`: "127.0.0.1:PORT" of a tansu Kafka broker (in-memory storage), one per session.
* `make_router`: `router = await make_router(config_yaml, files={...}, env={...})` writes the config (and
  files, paths relative to a fresh temp folder) and runs `python -m router serve -c router.yaml` there,
  waiting for /readyz. The config may use ${ROUTER_PORT} (a free port the fixture picks for server.port),
  ${FUNCTIONS} (the fixture functions folder, tests/functions) and ${TMP} (the temp folder).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support import (
    FUNCTIONS,
    RouterProcess,
    Service,
    close_aws_clients,
    free_port,
    start_moto,
    start_tansu,
)

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    service: Service = start_moto()
    yield f"http://127.0.0.1:{service.port}"
    service.stop()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    service = start_tansu()
    yield f"127.0.0.1:{service.port}"
    service.stop()


MakeRouter = Callable[..., Awaitable[RouterProcess]]


@pytest.fixture
async def make_router(tmp_path: Path) -> AsyncIterator[MakeRouter]:
    made: list[RouterProcess] = []

    async def make(
        config_yaml: str,
        *,
        files: dict[str, str | bytes] | None = None,
        env: dict[str, str] | None = None,
        start: bool = True,
        name: str = "",
        args: Sequence[str] = ("--log-format", "json"),
    ) -> RouterProcess:
        base = tmp_path / (name or f"router{len(made)}")
        base.mkdir(parents=True, exist_ok=True)
        for rel, content in (files or {}).items():
            target = base / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        full_env = {
            "ROUTER_PORT": str(free_port()),
            "FUNCTIONS": str(FUNCTIONS),
            "TMP": str(base),
            **(env or {}),
        }
        router = RouterProcess(base, config_yaml, full_env, args)
        made.append(router)
        if start:
            await router.start()
        return router

    yield make
    for router in made:
        router.cleanup()


@pytest.fixture
def functions_dir() -> Path:
    return FUNCTIONS


@pytest.fixture(autouse=True)
def _close_aws_clients() -> Iterator[None]:
    yield
    close_aws_clients()
