"""The fuzz tier's daemon: one `router serve` per test module, with every listener, shared by its tests.

`daemon` starts it once per module (control plane served by two processes, so that connections land on a
front process as well as the primary: docs/processes.md; an http source with a `$default` route and an email
source, all to the echo fixture function), with short body and idle timeouts so that stalled clients are
answered quickly; `listeners` is that daemon for one test. Tests send it malformed input and assert the
answer, then `assert_clean(listeners)`: no traceback and no ERROR line in what the test made it log, and
still healthy.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support import FUNCTIONS, RouterProcess, free_port

CONFIG = """
server: {port: "${ROUTER_PORT}", body_timeout_s: 1, idle_timeout_s: 2, processes: 2}
functions:
  echo: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo", timeout_s: 10}
sources:
  api: {kind: http, port: "${HTTP_PORT}", body_timeout_s: 1, idle_timeout_s: 2}
  inbox: {kind: email, port: "${SMTP_PORT}", recipients: ["@example.test"]}
routes:
  - {source: api, function: echo, http: {method: ANY, path: "$default"}}
  - {source: inbox, function: echo}
"""


@dataclass
class Listeners:
    router: RouterProcess
    control: int
    gateway: int
    smtp: int
    since: int = 0  # where the current test's part of the log starts

    def log(self) -> str:
        return self.router.log_text()

    def invocations(self) -> int:
        """Calls of the echo function so far (one REPORT-style line each)."""
        return sum(1 for line in self.log().splitlines() if '"outcome"' in line or "outcome=" in line)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listeners]:
    base = tmp_path_factory.mktemp("listeners")
    ports = {"ROUTER_PORT": free_port(), "HTTP_PORT": free_port(), "SMTP_PORT": free_port()}
    env = {"FUNCTIONS": str(FUNCTIONS), "TMP": str(base), **{k: str(v) for k, v in ports.items()}}
    router = RouterProcess(base, CONFIG, env)
    asyncio.run(router.start())
    try:
        yield Listeners(router, ports["ROUTER_PORT"], ports["HTTP_PORT"], ports["SMTP_PORT"])
    finally:
        router.cleanup()


@pytest.fixture
def listeners(daemon: Listeners) -> Listeners:
    daemon.since = len(daemon.log())
    return daemon


def assert_clean(listeners: Listeners) -> None:
    """No traceback and no ERROR line since the test began, and the daemon still answers /healthz."""
    text = listeners.log()[listeners.since :]
    assert "Traceback" not in text, text[-3000:]
    assert '"level":"error"' not in text, [line for line in text.splitlines() if '"level":"error"' in line]
    with urllib.request.urlopen(f"http://127.0.0.1:{listeners.control}/healthz", timeout=30) as r:
        assert r.status == 200
