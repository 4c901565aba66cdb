"""The e2e suite's stack: already running (endpoints from the environment), or started here natively.

* `ROUTER_URL` set: the stack is running elsewhere (the compose stack; its `e2e` service sets every variable
  in `tests.e2e.stack.VARIABLES` to service names). Nothing is started; a missing variable fails the suite.
* otherwise (CI, the README's `pytest`): the same services are started natively on free loopback ports:
  moto and a tansu Kafka broker (the session fixtures of tests/conftest.py), then the stack's own init step
  (compose/init_stack.py), then `router serve -c compose/router.yaml`, the very file the compose stack
  mounts, its endpoints given through the ${VARS} it reads. The variables are exported for the tests and
  everything started here is stopped after the last e2e test.

The stack is package-scoped: it lives while tests/e2e runs, not for the rest of the session.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import COMPOSE, TOKEN, VARIABLES, Records, Stack
from tests.support import RouterProcess, free_port

# The schedule fires on the minute: waiting for it last lets the other tests' time count towards the wait.
LAST = ("test_schedule",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within this folder's tests (kept together, so the stack starts once), the LAST modules go last."""
    here = Path(__file__).parent
    slots = [i for i, item in enumerate(items) if item.path.parent == here]
    ordered = sorted((items[i] for i in slots), key=lambda item: item.path.stem in LAST)
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item


@pytest.fixture(scope="package")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = time.time()
    if os.environ.get("ROUTER_URL"):
        missing = [name for name in VARIABLES if not os.environ.get(name)]
        if missing:
            pytest.fail(
                "ROUTER_URL is set, so the suite runs against a stack already running, but these endpoint "
                f"variables are not: {', '.join(missing)} (see compose/README.md)",
                pytrace=False,
            )
        yield Stack.from_env(started)
        return
    moto: str = request.getfixturevalue("moto_server")
    kafka: str = request.getfixturevalue("kafka_broker")
    base = tmp_path_factory.mktemp("stack")
    yield from _native(base, moto, kafka, started)


@pytest.fixture(scope="package")
def records(stack: Stack) -> Iterator[Records]:
    records = Records(stack)
    yield records
    records.s3.close()


def _native(base: Path, moto: str, kafka: str, started: float) -> Iterator[Stack]:
    ports = {name: free_port() for name in ("ROUTER_PORT", "ROUTER_HTTP_PORT", "ROUTER_SMTP_PORT")}
    uploads = base / "uploads"
    uploads.mkdir()
    env = {
        **{name: str(port) for name, port in ports.items()},
        "ROUTER_BIND": "127.0.0.1",
        "ROUTER_TOKEN": f"e2e-{secrets.token_hex(8)}",  # the control plane's auth on, as a deployment would
        "ROUTER_STATE_DIR": str(base / "state"),
        "ROUTER_UPLOADS_DIR": str(uploads),
        "AWS_ENDPOINT_URL": moto,
        "KAFKA_BOOTSTRAP": kafka,
    }
    _init(base, env)
    config = COMPOSE / "router.yaml"
    router = RouterProcess(base, config.read_text(), env)  # leaves a copy in base for the curious
    router.config_path = config  # but runs the compose file itself: its relative paths are compose/'s
    exported = {
        "ROUTER_URL": router.url,
        "ROUTER_HTTP_URL": f"http://127.0.0.1:{ports['ROUTER_HTTP_PORT']}",
        "ROUTER_SMTP_HOST": "127.0.0.1",
        "ROUTER_SMTP_PORT": str(ports["ROUTER_SMTP_PORT"]),
        "KAFKA_BOOTSTRAP": kafka,
        "AWS_ENDPOINT_URL": moto,
        "ROUTER_UPLOADS_DIR": str(uploads),
        TOKEN: env[TOKEN],
    }
    assert set(exported) == {*VARIABLES, TOKEN}
    with pytest.MonkeyPatch.context() as patch:
        try:
            asyncio.run(router.start(timeout=60))
            for name, value in exported.items():
                patch.setenv(name, value)
            yield Stack.from_env(started, context=router.log_text)
        finally:
            _stop(router)


def _init(base: Path, env: dict[str, str]) -> None:
    """compose/init_stack.py, as the compose stack's init service runs it."""
    log = base / "init.log"
    with open(log, "wb") as out:
        code = subprocess.call(
            [sys.executable, str(COMPOSE / "init_stack.py")],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    if code != 0:
        pytest.fail(f"the stack's init step failed ({code}):\n{log.read_text()}", pytrace=False)


def _stop(router: RouterProcess) -> None:
    try:
        asyncio.run(router.stop(timeout=30))
    finally:
        router.cleanup()  # whatever is left: the daemon and its instances' process groups
