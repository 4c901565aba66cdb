"""The durable record end to end: a real router, real functions; what it recorded survives a restart, a
request id from a REPORT line leads to its event, and recorded events replay to another function with the
results compared (`router tail`, `router request`, `router replay` run as the user would run them)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.inspect_client import Inspector, invoke
from tests.support import REPO

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
functions:
  echo: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/inspect_echo", timeout_s: 2}
  classify:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/classify"
    environment: {LIMIT: "100"}
  classify_v2:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/classify"
    environment: {LIMIT: "1000"}
sources:
  uploads: {kind: s3, bucket: uploads, directory: bucket, stable_s: 0.05}
routes:
  - {source: uploads, function: classify}
"""


def cli(router: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args, "--endpoint", router.url],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


async def run_cli(router: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, router, *args)


async def test_the_record_survives_a_restart_and_a_report_line_leads_to_its_event(make_router) -> None:
    router = await make_router(CONFIG)
    inspector = Inspector(router.url)
    answers = [await asyncio.to_thread(invoke, router.url, "echo", {"n": n}, log=True) for n in range(3)]
    report = re.search(r"REPORT RequestId: (\S+)", base64.b64decode(answers[1]["log"]).decode())
    assert report is not None
    (Path(router.base_dir) / "bucket" / "a.txt").write_text("x" * 50)
    upload = await inspector.wait("classify", {"source": ["uploads"]})
    before = await inspector.invocations(None)
    assert len(before) == 4

    await router.restart()
    after = await inspector.invocations(None)
    assert [(i["seq"], i["request_id"], i["event"]) for i in after] == [
        (i["seq"], i["request_id"], i["event"]) for i in before
    ]
    tail = await run_cli(router, "tail", "-n", "4", "--max", "4")
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert len(lines) == 4 and [line.split()[2] for line in lines] == [i["request_id"] for i in before]

    # The request id in the REPORT line of the second call leads to its invocation, event and log.
    found = await run_cli(router, "request", report.group(1))
    assert found.returncode == 0, found.stderr
    doc = json.loads(found.stdout)
    (invocation,) = doc["invocations"]
    assert invocation["event"] == {"n": 1} and f"REPORT RequestId: {report.group(1)}" in invocation["log"]
    # An event a route accepted: its position in the source too.
    doc = json.loads((await run_cli(router, "request", upload["request_id"])).stdout)
    (event,) = doc["events"]
    assert (event["source"], event["mode"], event["position"]) == ("uploads", "queued", "s3://uploads/a.txt")
    missing = await run_cli(router, "request", "no-such-request")
    assert missing.returncode == 1 and "404" in missing.stderr

    # The cursor goes on from where it was: a reader's cursor from before the restart stays valid.
    cursor = await inspector.cursor()
    assert cursor == before[-1]["seq"]
    await asyncio.to_thread(invoke, router.url, "echo", {"n": 9})
    assert [i["event"] for i in await inspector.invocations(None, after=cursor)] == [{"n": 9}]


async def test_recorded_events_replay_to_another_version_with_the_results_compared(make_router) -> None:
    router = await make_router(CONFIG)
    inspector = Inspector(router.url)
    sizes = {"tiny.txt": 5, "small.txt": 50, "mid.txt": 200, "large.txt": 500, "huge.txt": 2000}
    bucket = Path(router.base_dir) / "bucket"
    for name, size in sizes.items():
        (bucket / name).write_text("x" * size)
    originals = await inspector.wait_count("classify", len(sizes), {"source": ["uploads"]}, after=0)
    assert {o["result"][0]["key"]: o["result"][0]["class"] for o in originals} == {
        "tiny.txt": "small", "small.txt": "small", "mid.txt": "big", "large.txt": "big", "huge.txt": "big",
    }  # fmt: skip

    dry = await run_cli(router, "replay", "--source", "uploads", "--to", "classify_v2", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout.splitlines()[-1])["total"] == 5
    assert await inspector.invocations("classify_v2") == []

    cursor = await inspector.cursor()
    done = await run_cli(router, "replay", "--source", "uploads", "--since", "1d", "--to", "classify_v2",
                         "--rate", "20")  # fmt: skip
    assert done.returncode == 0, done.stderr
    *progress, last = done.stdout.splitlines()
    summary = json.loads(last)
    assert (summary["total"], summary["replayed"], summary["same"], summary["different"]) == (5, 5, 3, 2)
    assert len(progress) == 5 and progress[0].startswith("[1/5] ")
    replays = await inspector.invocations("classify_v2", after=cursor)
    by_original = {r["replay_of"]: r for r in replays}
    assert set(by_original) == {o["request_id"] for o in originals}
    for original in originals:
        replayed = by_original[original["request_id"]]
        assert replayed["source"] == "replay" and replayed["event"] == original["event"]
        assert replayed["request_id"] != original["request_id"]
        assert replayed["depth"] == original["depth"] + 1  # the replay continues the original's chain
        assert replayed["trace"].split(";")[0] == original["trace"].split(";")[0]  # same Root
    changed = {r["result"][0]["key"] for r in replays if r["result"][0]["class"] == "small"}
    assert changed == {"tiny.txt", "small.txt", "mid.txt", "large.txt"}

    # Replays are not replayed again unless asked for; only failed ones can be picked.
    again = await Inspector(router.url).replay(function="classify_v2", dry_run=True)
    assert again["total"] == 0
    assert (await Inspector(router.url).replay(source="replay", dry_run=True))["total"] == 5
    assert (await Inspector(router.url).replay(source="uploads", outcome="error", dry_run=True))["total"] == 0
