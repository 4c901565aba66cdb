"""Each call's lines on the daemon's log, as Lambda prints them, with a real `router serve`: START, the
function's own output, END and REPORT (with Init Duration on the cold call, Status on a timeout), in text
mode (the line is the message, nothing appended) and in JSON mode (the line in `msg`, the figures as fields);
and none of them with --quiet-calls or invoker.log_calls: false."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request

from tests.support import RouterProcess

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
functions:
  chatty: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/chatty", timeout_s: 5}
  sleep: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/sleep", timeout_s: 1}
"""
QUIET = CONFIG.replace("state_dir: state", "state_dir: state\ninvoker: {log_calls: false}")

REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms"
    r"\tMemory Size: 128 MB\tMax Memory Used: [1-9]\d* MB(?P<init>\tInit Duration: \d+\.\d\d ms)?"
    # CPU Time is ours (docs/invoker.md), where the instance's cgroup measures it
    r"(?P<cpu>\tCPU Time: \d+\.\d\d ms)?(?P<status>\tStatus: timeout)?$"
)


def invoke(router: RouterProcess, name: str, payload: dict[str, object]) -> str:
    """Calls the function; returns the call's request id."""
    req = urllib.request.Request(
        f"{router.url}/2015-03-31/functions/{name}/invocations", data=json.dumps(payload).encode()
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()
        return str(resp.headers["x-amzn-RequestId"])


async def lines_of(router: RouterProcess, request_id: str, json_mode: bool) -> list[dict[str, object]]:
    """The log records of one call (JSON mode; in text mode, {"msg": message}), once its REPORT is there."""
    for _ in range(200):
        found: list[dict[str, object]] = []
        for line in router.log_text().splitlines():
            if json_mode:
                record = json.loads(line)
                if record.get("request_id") == request_id:
                    found.append(record)
            elif " INFO    router.function." in line:
                message = line.split(": ", 1)[1]
                if request_id in message or (found and not str(found[-1]["msg"]).startswith("REPORT")):
                    found.append({"msg": message, "line": line})
        if found and str(found[-1]["msg"]).startswith("REPORT"):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no REPORT for {request_id}:\n{router.log_text()[-3000:]}")


async def test_json_lines_of_a_cold_and_a_warm_call(make_router) -> None:
    router = await make_router(CONFIG)
    cold = await asyncio.to_thread(invoke, router, "chatty", {"tag": "one"})
    warm = await asyncio.to_thread(invoke, router, "chatty", {"tag": "two"})
    first = await lines_of(router, cold, json_mode=True)
    second = await lines_of(router, warm, json_mode=True)
    report = REPORT.match(str(first[-1]["msg"]))
    assert report and report["id"] == cold and report["init"]  # the cold call reports its init
    messages = [str(r["msg"]) for r in second]
    assert messages[0] == f"START RequestId: {warm} Version: $LATEST"
    assert messages[-2] == f"END RequestId: {warm}"
    warm_report = REPORT.match(messages[-1])
    assert warm_report and warm_report["id"] == warm and not warm_report["init"]
    output = messages[1:-2]
    assert f"to stdout {warm}" in output and f"to stderr {warm}" in output
    assert "no newline at the end" in output
    assert any(m.startswith("[INFO]\t") and m.endswith(f"\t{warm}\tvia logging two") for m in output)
    fields = second[-1]
    assert {k: fields[k] for k in ("logger", "function", "memory_size", "cold", "outcome", "init")} == {
        "logger": "router.function.chatty",
        "function": "chatty",
        "memory_size": 128,
        "cold": False,
        "outcome": "ok",
        "init": None,
    }
    assert isinstance(fields["duration"], float) and fields["billed"] >= 1 and fields["memory"] >= 1
    assert all(r["function"] == "chatty" and r["logger"] == "router.function.chatty" for r in second)


async def test_json_report_of_a_timeout(make_router) -> None:
    router = await make_router(CONFIG)
    request_id = await asyncio.to_thread(invoke, router, "sleep", {"seconds": 3})
    records = await lines_of(router, request_id, json_mode=True)
    messages = [str(r["msg"]) for r in records]
    assert messages[0].startswith(f"START RequestId: {request_id}")
    assert "Task timed out after 1.00 seconds" in messages[-3]
    assert messages[-2] == f"END RequestId: {request_id}"
    report = REPORT.match(messages[-1])
    assert report and report["status"] and records[-1]["outcome"] == "Sandbox.Timeout"


async def test_text_lines_are_lambdas_own(make_router) -> None:
    router = await make_router(CONFIG, args=("--log-format", "text"))
    await asyncio.to_thread(invoke, router, "chatty", {"tag": "one"})
    request_id = await asyncio.to_thread(invoke, router, "chatty", {"tag": "two"})
    records = await lines_of(router, request_id, json_mode=False)
    messages = [str(r["msg"]) for r in records]
    assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert f"to stdout {request_id}" in messages and messages[-2] == f"END RequestId: {request_id}"
    assert REPORT.match(messages[-1]), messages[-1]  # exactly Lambda's line: no key=value appended
    assert all(" INFO    router.function.chatty: " in str(r["line"]) for r in records)


async def test_quiet_calls(make_router) -> None:
    for how in ({"args": ("--log-format", "json", "--quiet-calls")}, {"config": QUIET}):
        router = await make_router(how.get("config", CONFIG), args=how.get("args", ("--log-format", "json")))
        request_id = await asyncio.to_thread(invoke, router, "chatty", {"tag": "q"})
        await asyncio.to_thread(invoke, router, "chatty", {"tag": "q2"})
        await router.stop()
        text = router.log_text()
        assert "router started" in text
        for absent in ("START RequestId", "END RequestId", "REPORT RequestId", "to stdout", request_id):
            assert absent not in text, (how, absent)
