"""Helpers for the control-plane tests (unit and integration): ZIP builders, an in-process router API.

* `make_zip(files, ...)` builds a deployment package in memory; `symlink_zip`, `absolute_zip`,
  `traversal_zip`, `bomb_zip` build the malicious ones.
* `ApiHarness` runs the real control-plane app (real catalog, real dispatcher) in-process on a free port,
  behind the front as the daemon serves it (router/control/front.py), with instances faked by
  `EchoInstance` (no processes): good for boto3-level checks of request parsing and error shapes.
  Integration tests use a real `router serve` instead.
"""

from __future__ import annotations

import asyncio
import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

from aiohttp import web
from botocore.config import Config as BotoConfig

from router.control.app import create_app
from router.control.catalog import FunctionCatalog
from router.control.front import Front
from router.control.plane import ControlPlane
from router.core.results import InvocationResult
from router.dispatch.dispatcher import Dispatcher
from router.invoker.types import FunctionSpec, InvokeRequest
from router.metrics import Metrics
from router.validate import parse_config
from tests.support import aws_client

HANDLER_V1 = "def handler(event, context):\n    return {'version': 1, 'event': event}\n"
HANDLER_V2 = "def handler(event, context):\n    return {'version': 2, 'event': event}\n"


def make_zip(files: dict[str, str | bytes], *, modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((modes or {}).get(name, stat.S_IFREG | 0o644)) << 16
            z.writestr(info, content)
    return buf.getvalue()


def app_zip(version: int = 1) -> bytes:
    return make_zip({"app.py": HANDLER_V1 if version == 1 else HANDLER_V2})


def traversal_zip(target: str = "../../escaped.py") -> bytes:
    return make_zip({"app.py": HANDLER_V1, target: "owned = True\n"})


def absolute_zip(target: str) -> bytes:
    return make_zip({"app.py": HANDLER_V1, target: "owned = True\n"})


def symlink_zip(link_target: str = "/etc/passwd") -> bytes:
    return make_zip({"app.py": HANDLER_V1, "link": link_target}, modes={"link": stat.S_IFLNK | 0o777})


def bomb_zip(unpacked_mb: int = 260) -> bytes:
    """An honest zip bomb: `unpacked_mb` MB of zeros in one small file (about 1000:1)."""
    buf = io.BytesIO()
    zeros = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("app.py", HANDLER_V1)
        with z.open("zeros.bin", "w", force_zip64=True) as f:
            for _ in range(unpacked_mb):
                f.write(zeros)
    return buf.getvalue()


def lying_bomb_zip(real_mb: int = 8, declared: int = 10) -> bytes:
    """A bomb whose headers claim `declared` bytes for an entry that inflates to `real_mb` MB."""
    data = bytearray(make_zip({"app.py": HANDLER_V1, "zeros.bin": b"\0" * (real_mb * 1024 * 1024)}))
    real = (real_mb * 1024 * 1024).to_bytes(4, "little")
    fake = declared.to_bytes(4, "little")
    # The uncompressed size appears in the local header and the central directory (after the CRC and the
    # compressed size); patch every occurrence that follows the entry's CRC.
    crc = zipfile.crc32(b"\0" * (real_mb * 1024 * 1024)).to_bytes(4, "little")
    start = 0
    while (i := data.find(crc, start)) >= 0:
        if data[i + 8 : i + 12] == real:
            data[i + 8 : i + 12] = fake
        start = i + 4
    return bytes(data)


# -- an in-process control plane -------------------------------------------------------------------------


class EchoInstance:
    """Answers {"fail": true} with a function error, anything else with {"echo": event}; logs a line."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.alive = True

    async def invoke(self, request: InvokeRequest) -> InvocationResult:
        event: Any = json.loads(request.payload)
        log = f"START RequestId: {request.request_id}\n{'x' * 5000}\nEND {request.request_id}\n".encode()
        if isinstance(event, dict) and event.get("fail"):
            body = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ["app.py:2"]}
            return InvocationResult(
                request_id=request.request_id, payload=json.dumps(body).encode(), function_error="Unhandled",
                error_type="ValueError", log=log,
            )  # fmt: skip
        code = sorted(p.name for p in self.spec.code_dir.iterdir())
        out = {
            "echo": event,
            "handler": self.spec.handler,
            "code": code,
            "client_context": request.client_context,
        }
        return InvocationResult(request_id=request.request_id, payload=json.dumps(out).encode(), log=log)

    async def stop(self) -> None:
        self.alive = False


async def echo_factory(spec: FunctionSpec, init_type: str, *_: object) -> EchoInstance:
    return EchoInstance(spec)


class ApiHarness:
    """`async with ApiHarness(tmp_path, config_yaml) as h:` then `h.client()` is a boto3 Lambda client."""

    def __init__(self, base: Path, config_yaml: str = "", *, token: str = "", max_body_mb: int = 16) -> None:
        self.base = base
        server = f"server: {{host: 127.0.0.1, port: 0, auth_token: '{token}', max_body_mb: {max_body_mb}}}\n"
        self.config = parse_config(server + config_yaml, base_dir=base, env={})
        self.token = token
        self.url = ""

    async def __aenter__(self) -> ApiHarness:
        state = self.config.state_path
        state.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.dispatcher = Dispatcher(
            self.config, state_dir=state, metrics=self.metrics, instance_factory=echo_factory
        )
        self.catalog = FunctionCatalog(self.config, state, self.dispatcher)
        await self.catalog.start()
        await self.dispatcher.start()
        plane = ControlPlane(config=self.config, dispatcher=self.dispatcher, metrics=self.metrics,
                             is_ready=lambda: True, catalog=self.catalog)  # fmt: skip
        self.runner = web.AppRunner(create_app(plane), access_log=None)
        await self.runner.setup()
        assert self.runner.server is not None
        # Served as the daemon serves it: through the front (Invoke on its lean path, the rest by the app).
        self.front = Front(plane, self.runner.server)
        self.listener = await asyncio.get_running_loop().create_server(self.front.protocol, "127.0.0.1", 0)
        self.port = int(self.listener.sockets[0].getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.listener.close()
        self.front.close()
        await self.runner.cleanup()
        await self.dispatcher.aclose()

    def client(self, key: str | None = None) -> Any:
        return lambda_client(self.url, key if key is not None else (self.token or "testing"))


def lambda_client(url: str, key: str = "testing") -> Any:
    """A boto3 Lambda client for `url` that does not retry (so a 429 reaches the test)."""
    return aws_client(
        "lambda", url, aws_access_key_id=key, aws_secret_access_key="x",
        config=BotoConfig(retries={"total_max_attempts": 1}, read_timeout=30),
    )  # fmt: skip
