"""Helpers for the per-source filter and CloudEvents tests: a router config with one function that records
what it got (`inspect_echo`), and native events of each kind: an HTTP request, a mail over SMTP, a file in a
watched folder, a schedule that fires at start. Kafka, Kinesis and DynamoDB helpers are in stream_support.
"""

from __future__ import annotations

import json
import smtplib
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

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
        with e:  # an HTTPError holds the open response: close it, don't leave the socket to the GC
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


def announced(log_text: str, key: str) -> bool:
    """The s3 folder source logged that it announced `key` (submitted: filtered or queued)."""
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("msg") == "announced s3 object" and record.get("key") == key:
            return True
    return False
