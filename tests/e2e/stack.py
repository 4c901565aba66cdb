"""What the e2e tests know about the stack: its endpoints, its resource names, and how to read back what ran.

Endpoints come only from environment variables (`Stack.from_env`), whoever started the stack: the compose
stack's `e2e` service sets them to service names, tests/e2e/conftest.py to the natively started services.
The stack's functions record every event they get in `s3://router-records/<prefix>/<ms>-<request id>.json`
(compose/functions/recorder); `Records` reads those back, polling until what a test expects is there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support import aws_client

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"

# Every endpoint the suite uses. ROUTER_URL decides the mode: set, the stack is already running.
VARIABLES = (
    "ROUTER_URL",  # control plane: Lambda Invoke API, /healthz
    "ROUTER_HTTP_URL",  # the http source (API Gateway)
    "ROUTER_SMTP_HOST",  # the email source
    "ROUTER_SMTP_PORT",
    "KAFKA_BOOTSTRAP",  # host:port of the Kafka broker
    "AWS_ENDPOINT_URL",  # the AWS emulator (S3, SQS, DynamoDB, Kinesis)
    "ROUTER_UPLOADS_DIR",  # the router's watched folder, as the tests see it
)
TOKEN = "ROUTER_TOKEN"  # optional: the control plane's server.auth_token


def load_init() -> ModuleType:
    """compose/init_stack.py, the stack's init step, which also names every bucket, queue and topic."""
    spec = importlib.util.spec_from_file_location("compose_init_stack", COMPOSE / "init_stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NAMES = load_init()


@dataclass(frozen=True)
class Stack:
    router_url: str
    http_url: str
    smtp_host: str
    smtp_port: int
    kafka: str
    aws: str
    uploads_dir: Path
    token: str  # "" when the control plane asks for none
    started: float  # epoch seconds when the suite began: events older than this are from earlier runs
    context: Callable[[], str] = lambda: ""  # diagnostics for a failed wait (the native router's log)

    @classmethod
    def from_env(cls, started: float, context: Callable[[], str] = lambda: "") -> Stack:
        """The stack named by VARIABLES (KeyError when one is not set)."""
        env = os.environ
        return cls(
            router_url=env["ROUTER_URL"].rstrip("/"),
            http_url=env["ROUTER_HTTP_URL"].rstrip("/"),
            smtp_host=env["ROUTER_SMTP_HOST"],
            smtp_port=int(env["ROUTER_SMTP_PORT"]),
            kafka=env["KAFKA_BOOTSTRAP"],
            aws=env["AWS_ENDPOINT_URL"],
            uploads_dir=Path(env["ROUTER_UPLOADS_DIR"]),
            token=env.get(TOKEN, ""),
            started=started,
            context=context,
        )

    def client(self, service: str, *, per_test: bool = True) -> Any:
        """A boto3 client of the AWS emulator (see tests.support.aws_client for per_test)."""
        return _boto3_client(service, self.aws, os.environ.get("AWS_ACCESS_KEY_ID", "testing"), per_test)

    def lambda_client(self) -> Any:
        """An unmodified AWS SDK pointed at the router; the token, if any, goes as the access key id."""
        return _boto3_client(
            "lambda", self.router_url, self.token or os.environ.get("AWS_ACCESS_KEY_ID", "x")
        )

    def control_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _boto3_client(service: str, endpoint: str, access_key_id: str, per_test: bool = True) -> Any:
    return aws_client(
        service,
        endpoint,
        per_test=per_test,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=access_key_id,
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def unique(prefix: str) -> str:
    """A marker no earlier run against the same stack can have produced."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(
    check: Callable[[], Any], what: str, *, timeout: float = 45.0, context: Callable[[], str]
) -> Any:
    """Poll check until it returns something truthy; fail naming what was awaited (and the router's log)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{context()[-4000:]}")
        time.sleep(0.2)


class Records:
    """The records the stack's functions wrote: {"function", "request_id", "event"} per invocation."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.s3 = stack.client("s3", per_test=False)  # lives as long as the package fixture; closed there
        self.bucket = NAMES.RECORD_BUCKET
        self._read: dict[str, dict[str, Any]] = {}  # key -> record; records never change once written

    def under(self, prefix: str) -> list[dict[str, Any]]:
        """Every record under prefix/ written since the suite began (those read before are cached)."""
        out = []
        since = f"{prefix}/{int(self.stack.started * 1000):013d}"  # keys are <prefix>/<epoch ms>-<request id>
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{prefix}/", StartAfter=since
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"]
                if key not in self._read:
                    body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                    self._read[key] = json.loads(body)
                out.append(self._read[key])
        return out

    def wait_for(
        self, prefix: str, match: Callable[[dict[str, Any]], bool], *, count: int = 1, timeout: float = 45.0
    ) -> list[dict[str, Any]]:
        """Wait until at least `count` records under prefix/ match; return the matching ones."""

        def matching() -> list[dict[str, Any]]:
            found = [r for r in self.under(prefix) if match(r)]
            return found if len(found) >= count else []

        return wait_until(
            matching,
            f"{count} matching record(s) under {prefix}/",
            timeout=timeout,
            context=self.stack.context,
        )
