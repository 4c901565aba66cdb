"""Helpers for the per-source filter and CloudEvents tests: a router config with one function that records
what it got (`inspect_echo`), and native events of each kind: an HTTP request, a mail over SMTP, a file in a
watched folder, a schedule that fires at start, a Kafka record, a Kinesis stream and a DynamoDB table (moto).
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import boto3

HOURLY = "cron(0 * * * ? *)"


def router_config(sources: str, routes: str, *, event_format: str = "aws") -> str:
    return f"""
server: {{port: "${{ROUTER_PORT}}"}}
state_dir: state
functions:
  seen:
    runtime: python3.11
    handler: app.handler
    code: "${{FUNCTIONS}}/inspect_echo"
    timeout_s: 2
    event_format: {event_format}
sources:
{sources}
routes:
{routes}
"""


def http_call(url: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def send_mail(port: int, subject: str, to: str = "inbox@example.test") -> None:
    """Send one mail; returns once the router answered 250 (the mail was filtered or queued by then)."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "sender@example.test", to, subject
    message.set_content("hello\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)


def missed_tick_state(hours_ago: float = 3) -> str:
    """A schedule's state as a router stopped hours ago leaves it: its start fires the missed tick."""
    last = time.time() - hours_ago * 3600 - 60
    return json.dumps(
        {"expression": HOURLY, "timezone": "UTC", "anchor": last, "last_tick": last, "pending": []}
    )


def last_tick(base: Path, source: str) -> float:
    return float(json.loads((base / "state" / "sources" / source / "schedule.json").read_text())["last_tick"])


async def wait_until(check: Callable[[], bool], what: str, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def announced(log_text: str, key: str) -> bool:
    """The s3 folder source logged that it announced `key` (submitted: filtered or queued)."""
    return any(
        '"announced s3 object"' in line and f'"key": "{key}"' in line for line in log_text.splitlines()
    )


def aws_source(kind: str, settings: str) -> str:
    return f"  stream: {{kind: {kind}, poll_interval_s: 0.05, shard_refresh_s: 0.5, {settings}}}"


def kinesis_stream(endpoint: str, name: str) -> Any:
    client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
    client.create_stream(StreamName=name, ShardCount=1)
    return client


def dynamodb_table(endpoint: str, name: str) -> Any:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return client
