"""Fault injection end to end, written with the users' test helper (router/testing.py): a seeded run gives the
same faults twice; each injected fault looks to the caller as the real one does and is marked in the record
and the metrics; faults change at run time (`router faults`); source faults duplicate and drop acks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from router.testing import Router, RouterTestError, run_router
from tests.support import FUNCTIONS, REPO

CONFIG = """
server: {port: 0}
state_dir: state
functions:
  echo:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/echo"
    timeout_s: 1
    faults:
      error_rate: 0.2
      crash_rate: 0.1
      timeout_rate: 0.05
      throttle_rate: 0.1
      latency_ms: {p: 0.2, add: 30}
      seed: 7
sources:
  uploads: {kind: s3, bucket: uploads, directory: bucket}
routes:
  - {source: uploads, function: echo}
"""
CALLS = 40


def run(router: Router) -> list[tuple[str, str | None]]:
    """CALLS calls one after another; (outcome, fault) of each, as the record has them."""
    cursor = router.cursor()
    for n in range(CALLS):
        try:
            router.invoke("echo", {"n": n})
        except RouterTestError as e:
            assert e.status == 429 and "TooManyRequestsException" in str(e)
    recorded = router.wait_for_count("echo", CALLS, after=cursor)
    assert [r["event"]["n"] for r in recorded] == list(range(CALLS))
    return [(r["outcome"], r["fault"]) for r in recorded]


def metric(router: Router, kind: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"{router.url}/metrics") as response:
        text = response.read().decode()
    want = f'router_faults_injected_total{{function="echo",kind="{kind}",source="invoke"}}'
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(want)), 0.0)


def test_a_seeded_run_gives_the_same_faults_twice(tmp_path: Any) -> None:
    with run_router(CONFIG, cwd=tmp_path, env={"FUNCTIONS": str(FUNCTIONS)}) as router:
        first = run(router)
        kinds = {fault for _, fault in first}
        assert kinds == {None, "error", "crash", "timeout", "throttle", "latency"}, first
        assert metric(router, "crash") == sum(1 for _, f in first if f == "crash")
        router.stop()
        router.start()  # a new process: the draws start over from the seed
        assert run(router) == first


def test_injected_faults_look_like_the_real_ones(tmp_path: Any) -> None:
    with run_router(CONFIG, cwd=tmp_path, env={"FUNCTIONS": str(FUNCTIONS)}) as router:
        seen: dict[str, Any] = {}
        for n in range(CALLS):
            try:
                answer = router.invoke("echo", {"n": n})
            except RouterTestError as e:
                seen.setdefault("throttle", e)
                continue
            if answer.function_error:
                seen.setdefault(answer.payload["errorType"], answer)
            elif "crash-next" in seen and "after-crash" not in seen:
                seen["after-crash"] = answer
            if answer.payload.get("errorType") == "Runtime.ExitError":
                seen["crash-next"] = True
        crash = seen["Runtime.ExitError"]
        assert crash.function_error == "Unhandled"
        assert crash.payload["errorMessage"].endswith("Runtime exited with error: signal: killed")
        assert "Status: error\tError Type: Runtime.ExitError" in crash.log
        timeout = seen["Sandbox.Timeout"]
        assert "Task timed out after 1.00 seconds" in timeout.payload["errorMessage"]
        assert seen["InjectedFault"].payload["errorMessage"] == "injected fault (faults.error_rate)"
        assert seen["throttle"].status == 429
        # A crash kills the instance: the call after it starts a new one (a cold start, Init Duration).
        after = router.request(seen["after-crash"].request_id)["invocations"][0]
        assert after["cold"] is True and "Init Duration" in after["log"]


def faults_cli(router: Router, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", "faults", *args, "--endpoint", router.url],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def test_faults_change_at_run_time_and_sources_duplicate_and_drop_acks(tmp_path: Any) -> None:
    config = CONFIG.replace("    faults:\n", "    no_faults:\n").split("    no_faults:")[0] + (
        "sources:\n  uploads: {kind: s3, bucket: uploads, directory: bucket}\n"
        "routes:\n  - {source: uploads, function: echo}\n"
    )
    with run_router(config, cwd=tmp_path, env={"FUNCTIONS": str(FUNCTIONS)}) as router:
        assert router.faults() == {"functions": {}, "sources": {}}
        assert router.invoke("echo", {"n": 1}).function_error is None
        done = faults_cli(router, "set", "--function", "echo", "error_rate=1", "seed=3")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["functions"]["echo"]["seed"] == 3
        assert router.invoke("echo", {"n": 2}).payload["errorType"] == "InjectedFault"
        assert faults_cli(router, "clear", "--function", "echo").returncode == 0
        assert router.invoke("echo", {"n": 3}).function_error is None
        bad = faults_cli(router, "set", "--function", "echo", "error_rate=0.9", "crash_rate=0.9")
        assert bad.returncode == 1 and "more than 1" in bad.stderr
        assert faults_cli(router, "set", "--function", "nope", "error_rate=1").returncode == 1

        router.set_faults(source="uploads", duplicate=1.0, seed=1)
        cursor = router.cursor()
        injected = router.inject("uploads", record=_full_s3_record("twice.txt"))
        assert injected["queued"] == 1  # one delivery, as the source sees it ...
        both = router.wait_for_count("echo", 2, {"source": ["uploads"]}, after=cursor)  # ... made twice
        assert {b["event"]["Records"][0]["s3"]["object"]["key"] for b in both} == {"twice.txt"}
        assert injected["request_ids"][0] in {b["request_id"] for b in both}
        marks = sorted(str(e["fault"]) for b in both for e in router.request(b["request_id"])["events"])
        assert marks == ["None", "duplicate"]

        router.set_faults(source="uploads", drop_ack=1.0, seed=1)
        cursor = router.cursor()
        with pytest.raises(RouterTestError) as dropped:
            router.inject("uploads", record=_full_s3_record("dropped.txt"))
        assert dropped.value.status == 503 and "acknowledgement dropped" in str(dropped.value)
        hit = router.wait_for("echo", {"event": {"Records": {"s3": {"object": {"key": ["dropped.txt"]}}}}},
                              after=cursor)  # fmt: skip
        assert hit["outcome"] == "success"  # it was delivered: only the acknowledgement was lost
        assert router.faults()["sources"]["uploads"]["drop_ack"] == 1.0


def _full_s3_record(key: str) -> dict[str, Any]:
    from router.shapes import s3

    return s3.record("uploads", key, size=1, etag="e", sequencer="0A", time=time.time())
