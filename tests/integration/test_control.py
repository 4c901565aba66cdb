"""The control plane against a real `router serve`, driven by an unmodified boto3 Lambda client.

Functions are deployed as ZIPs built here with zipfile and run as real Python processes by the invoker.
Covers: deploy / invoke three ways / update / list / delete, function and service errors as botocore parses
them, in-flight calls finishing on the old code after an update, a drain answering ServiceException, the auth
token (SDK, curl-style and the `router invoke` CLI), malicious ZIPs, and surviving restarts and kill -9.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from router.core import errors as E
from tests.support import RouterProcess
from tests.unit.test_control_support import (
    absolute_zip,
    bomb_zip,
    lambda_client,
    make_zip,
    symlink_zip,
    traversal_zip,
)

CONFIG = """
server: {port: "${ROUTER_PORT}", auth_token: "${TOKEN:-}"}
state_dir: state
limits: {drain_grace_s: 30}
invoker: {isolation: "off"}  # the functions signal the test through files in its folder (gate, mark)
functions:
  cfg-echo: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo", timeout_s: 1}
"""

HANDLER = """
import os, time

VERSION = {version}

def handler(event, context):
    gate = event.get("gate")
    if gate:
        while not os.path.exists(gate):
            time.sleep(0.01)
    if event.get("mark"):
        with open(event["mark"], "w") as f:
            f.write(context.aws_request_id)
    if event.get("fail"):
        raise ValueError("asked to fail")
    print("hello from version", VERSION)
    custom = context.client_context.custom if context.client_context else None
    return {{"version": VERSION, "event": event, "custom": custom}}
"""


def code(version: int) -> bytes:
    return make_zip({"app.py": HANDLER.format(version=version)})


def create_args(name: str, zip_bytes: bytes | None = None, **kw: Any) -> dict[str, Any]:
    role = "arn:aws:iam::123456789012:role/x"
    return {"FunctionName": name, "Runtime": "python3.11", "Role": role, "Handler": "app.handler",
            "Code": {"ZipFile": zip_bytes or code(1)}, "Timeout": 10, **kw}  # fmt: skip


async def call(fn: Any, /, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, **kw)


async def error_of(fn: Any, /, **kw: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        await call(fn, **kw)
    return info.value.response  # type: ignore[return-value]


def payload_of(out: dict[str, Any]) -> Any:
    return json.loads(out["Payload"].read())


def _written(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def wait_for_file(path: Path) -> str:
    for _ in range(1500):
        if text := await asyncio.to_thread(_written, path):
            return text
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never written")


async def test_deploy_invoke_three_ways_update_list_delete(make_router: Any, tmp_path: Path) -> None:
    router: RouterProcess = await make_router(CONFIG)
    c = lambda_client(router.url)
    created = await call(c.create_function, **create_args("hello", Environment={"Variables": {"STAGE": "t"}}))
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionName"] == "hello" and created["CodeSize"] == len(code(1))

    context = base64.b64encode(json.dumps({"custom": {"who": "sdk"}}).encode()).decode()
    out = await call(
        c.invoke, FunctionName="hello", Payload=b'{"n": 1}', LogType="Tail", ClientContext=context
    )
    assert out["StatusCode"] == 200 and out["ExecutedVersion"] == "$LATEST" and "FunctionError" not in out
    assert payload_of(out) == {"version": 1, "event": {"n": 1}, "custom": {"who": "sdk"}}
    assert b"hello from version 1" in base64.b64decode(out["LogResult"])

    mark = tmp_path / f"async-{uuid.uuid4().hex}"
    queued = await call(c.invoke, FunctionName="hello", InvocationType="Event",
                        Payload=json.dumps({"mark": str(mark)}).encode())  # fmt: skip
    assert queued["StatusCode"] == 202 and queued["Payload"].read() == b""
    assert await wait_for_file(mark) == queued["ResponseMetadata"]["RequestId"]
    assert (await call(c.invoke, FunctionName="hello", InvocationType="DryRun"))["StatusCode"] == 204

    await call(c.update_function_code, FunctionName="hello", ZipFile=code(2))
    assert payload_of(await call(c.invoke, FunctionName="hello", Payload=b"{}"))["version"] == 2

    # The async call's metrics are recorded just after its handler wrote the mark: wait for them.
    metrics = await _metrics_with(
        router, 'router_invocations_total{function="hello",invocation_type="Event"} 1.0'
    )
    for line in (
        'router_invocations_total{function="hello",invocation_type="RequestResponse"} 2.0',
        'router_invocations_total{function="hello",invocation_type="Event"} 1.0',
        'router_cold_starts_total{function="hello"} 2.0',  # the first call, and the first on the new code
        'router_duration_seconds_count{function="hello"} 3.0',
        'router_billed_duration_seconds_count{function="hello"} 3.0',
        'router_concurrent_executions{function="hello"} 0.0',
        'router_async_queue_depth{function="hello"} 0.0',
        'router_api_requests_total{operation="POST /2015-03-31/functions",status="201"} 1.0',
    ):
        assert line in metrics, line
    assert 'router_max_memory_used_mb{function="hello"}' in metrics
    assert 'router_cost_usd_total{function="hello"}' in metrics

    for name in ("b-two", "a-one"):
        await call(c.create_function, **create_args(name))
    first = await call(c.list_functions, MaxItems=2)
    assert [f["FunctionName"] for f in first["Functions"]] == ["a-one", "b-two"]
    rest = await call(c.list_functions, MaxItems=2, Marker=first["NextMarker"])
    assert [f["FunctionName"] for f in rest["Functions"]] == [
        "cfg-echo",
        "hello",
    ] and "NextMarker" not in rest

    await call(c.delete_function, FunctionName="hello")
    response = await error_of(c.invoke, FunctionName="hello", Payload=b"{}")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["Error"]["Code"] == E.RESOURCE_NOT_FOUND
    assert not (router.base_dir / "state" / "functions" / "hello").exists()


async def test_in_flight_calls_finish_on_the_old_code_after_an_update(
    make_router: Any, tmp_path: Path
) -> None:
    router = await make_router(CONFIG)
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("rolling"))
    gate = tmp_path / f"gate-{uuid.uuid4().hex}"
    old_call = asyncio.ensure_future(call(c.invoke, FunctionName="rolling",
                                          Payload=json.dumps({"gate": str(gate)}).encode()))  # fmt: skip
    await _wait_in_flight(router, "rolling")
    await call(c.update_function_code, FunctionName="rolling", ZipFile=code(2))
    assert payload_of(await call(c.invoke, FunctionName="rolling", Payload=b"{}"))["version"] == 2
    assert not old_call.done()
    gate.write_text("open")
    assert payload_of(await old_call)["version"] == 1


async def _metrics_with(router: RouterProcess, needle: str) -> str:
    async with aiohttp.ClientSession() as s:
        for _ in range(1500):
            async with s.get(f"{router.url}/metrics") as r:
                text = await r.text()
            if needle in text:
                return text
            await asyncio.sleep(0.02)
    raise AssertionError(f"{needle!r} never in /metrics")


async def _wait_in_flight(router: RouterProcess, function: str) -> None:
    await _metrics_with(router, f'router_concurrent_executions{{function="{function}"}} 1.0')


async def test_function_and_service_errors_as_the_sdk_sees_them(make_router: Any) -> None:
    router = await make_router(CONFIG)
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("errs"))

    failed = await call(c.invoke, FunctionName="errs", Payload=b'{"fail": true}')
    assert failed["StatusCode"] == 200 and failed["FunctionError"] == "Unhandled"
    body = payload_of(failed)
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "asked to fail"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]

    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"FunctionName": "missing"}, 404, E.RESOURCE_NOT_FOUND),
        ({"FunctionName": "errs", "Payload": b"{oops"}, 400, E.INVALID_REQUEST_CONTENT),
        ({"FunctionName": "errs", "Payload": b"0" * (6 * 1024 * 1024 + 1)}, 413, E.REQUEST_TOO_LARGE),
        ({"FunctionName": "errs", "InvocationType": "Event", "Payload": b"0" * (1024 * 1024 + 1)}, 413,
         E.REQUEST_TOO_LARGE),
    ]  # fmt: skip
    for kw, status, code_name in cases:
        response = await error_of(c.invoke, **kw)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert response["Error"]["Code"] == code_name and response["Type"] == "User"
        assert response["Error"]["Message"] and response["ResponseMetadata"]["RequestId"]

    await call(c.put_function_concurrency, FunctionName="errs", ReservedConcurrentExecutions=0)
    response = await error_of(c.invoke, FunctionName="errs", Payload=b"{}")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert response["Error"]["Code"] == E.TOO_MANY_REQUESTS and response["Reason"] == E.REASON_RESERVED
    assert int(response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1

    async with aiohttp.ClientSession() as s:
        url = f"{router.url}/2015-03-31/functions/cfg-echo/invocations"
        async with s.post(url, data=b"<a/>", headers={"Content-Type": "application/xml"}) as r:
            assert r.status == 415 and r.headers["x-amzn-ErrorType"] == E.UNSUPPORTED_MEDIA_TYPE
            assert set(await r.json()) == {"Type", "message"}
    response = await error_of(c.update_function_configuration, FunctionName="cfg-echo", Timeout=2)
    assert response["Error"]["Code"] == E.RESOURCE_CONFLICT and "config file" in response["Error"]["Message"]


async def test_a_draining_router_answers_service_exception(make_router: Any, tmp_path: Path) -> None:
    router = await make_router(CONFIG)
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("slow"))
    gate = tmp_path / f"gate-{uuid.uuid4().hex}"
    in_flight = asyncio.ensure_future(call(c.invoke, FunctionName="slow",
                                           Payload=json.dumps({"gate": str(gate)}).encode()))  # fmt: skip
    await _wait_in_flight(router, "slow")
    router.send(signal.SIGTERM)  # the router drains, waiting for the gated call
    async with aiohttp.ClientSession() as s:
        for _ in range(1500):
            async with s.get(f"{router.url}/readyz") as r:
                if r.status == 503:
                    break
            await asyncio.sleep(0.02)
    response = await error_of(c.invoke, FunctionName="cfg-echo", Payload=b"{}")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert response["Error"]["Code"] == E.SERVICE_EXCEPTION and response["Type"] == "Service"
    gate.write_text("open")
    assert payload_of(await in_flight)["version"] == 1
    assert router.proc is not None
    assert await asyncio.to_thread(router.proc.wait, 60) == 0


async def test_auth_token_for_sdk_curl_and_cli(make_router: Any) -> None:
    router = await make_router(CONFIG, env={"TOKEN": "s3cret"})
    created = await call(lambda_client(router.url, "s3cret").create_function, **create_args("guarded"))
    assert created["FunctionName"] == "guarded"
    response = await error_of(lambda_client(router.url, "AKIAWRONG").list_functions)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Code"] == "UnrecognizedClientException"
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{router.url}/invoke/guarded", data=b"{}") as r:
            assert r.status == 401 and r.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
            assert (await r.json())["Type"] == "User"
        async with s.post(f"{router.url}/invoke/guarded", data=b'{"k": 1}',
                          headers={"Authorization": "Bearer s3cret"}) as r:  # fmt: skip
            assert r.status == 200 and (await r.json())["event"] == {"k": 1}
    cli = [
        sys.executable,
        "-m",
        "router",
        "invoke",
        "guarded",
        "--payload",
        '{"via": "cli"}',
        "--endpoint",
        router.url,
    ]
    ok = await asyncio.to_thread(subprocess.run, [*cli, "--token", "s3cret"], capture_output=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["event"] == {"via": "cli"}
    env = {k: v for k, v in os.environ.items() if k != "ROUTER_TOKEN"}
    refused = await asyncio.to_thread(subprocess.run, cli, capture_output=True, timeout=60, env=env)
    assert refused.returncode == 1 and b"401 MissingAuthenticationTokenException" in refused.stderr
    queued = await asyncio.to_thread(
        subprocess.run, [*cli, "--token", "s3cret", "--async"], capture_output=True, timeout=60
    )
    assert queued.returncode == 0 and json.loads(queued.stdout)["StatusCode"] == 202


async def test_malicious_zips_are_refused_and_write_nothing(make_router: Any, tmp_path: Path) -> None:
    router = await make_router(CONFIG)
    c = lambda_client(router.url)
    absolute_target = tmp_path / f"escaped-{uuid.uuid4().hex}.py"
    archives = {
        "traversal": traversal_zip("../../../../escaped-traversal.py"),
        "absolute": absolute_zip(str(absolute_target)),
        "symlink": symlink_zip("/etc/passwd"),
        "bomb": bomb_zip(unpacked_mb=260),
    }
    state = router.base_dir / "state"
    before = await asyncio.to_thread(_tree, state)
    for label, archive in archives.items():
        response = await error_of(c.create_function, **create_args(f"evil-{label}", archive))
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, label
        assert response["Error"]["Code"] == E.INVALID_PARAMETER_VALUE, label
    await call(c.create_function, **create_args("victim"))
    response = await error_of(c.update_function_code, FunctionName="victim", ZipFile=archives["traversal"])
    assert (
        response["Error"]["Code"] == E.INVALID_PARAMETER_VALUE and "traversal" in response["Error"]["Message"]
    )
    assert payload_of(await call(c.invoke, FunctionName="victim", Payload=b"{}"))["version"] == 1
    # New since: only the victim's record and its unpacked copy (the invoker's code/<sha256 of the ZIP>).
    victim_code = f"code/{hashlib.sha256(code(1)).hexdigest()}"
    allowed = ("functions", "functions/victim", "code", victim_code)
    after = await asyncio.to_thread(_tree, state)
    new = [p for p in after if p not in before]
    assert [
        p for p in new if p not in allowed and not p.startswith(("functions/victim/", victim_code + "/"))
    ] == []
    assert not absolute_target.exists()
    assert await asyncio.to_thread(lambda: list(tmp_path.rglob("escaped*"))) == []


def _tree(root: Path) -> list[str]:
    """What the state folder holds, but the invoker's records of live process groups (run/)."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name != "queue.db-journal" and p.relative_to(root).parts[0] != "run"
    )


async def test_deployed_functions_survive_restart_and_kill(make_router: Any) -> None:
    router = await make_router(CONFIG)
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("durable", code(1)))
    await call(c.update_function_code, FunctionName="durable", ZipFile=code(2))
    await call(c.put_function_concurrency, FunctionName="durable", ReservedConcurrentExecutions=3)
    before = await call(c.get_function_configuration, FunctionName="durable")

    await router.restart()
    after = await call(c.get_function_configuration, FunctionName="durable")
    assert {k: after[k] for k in ("CodeSha256", "RevisionId", "LastModified")} == {
        k: before[k] for k in ("CodeSha256", "RevisionId", "LastModified")
    }
    assert payload_of(await call(c.invoke, FunctionName="durable", Payload=b"{}"))["version"] == 2

    await router.kill()
    await router.start()
    assert payload_of(await call(c.invoke, FunctionName="durable", Payload=b"{}"))["version"] == 2
    concurrency = await call(c.get_function_concurrency, FunctionName="durable")
    assert concurrency["ReservedConcurrentExecutions"] == 3
    names = [f["FunctionName"] for f in (await call(c.list_functions))["Functions"]]
    assert names == ["cfg-echo", "durable"]


async def test_a_config_reload_keeps_deployed_functions(make_router: Any) -> None:
    router = await make_router(CONFIG)
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("deployed"))
    added = CONFIG + '  cfg-two: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo"}\n'
    await asyncio.to_thread(router.config_path.write_text, added)
    router.send(signal.SIGHUP)
    for _ in range(1500):
        names = [f["FunctionName"] for f in (await call(c.list_functions))["Functions"]]
        if "cfg-two" in names:
            break
        await asyncio.sleep(0.02)
    assert names == ["cfg-echo", "cfg-two", "deployed"]
    assert payload_of(await call(c.invoke, FunctionName="deployed", Payload=b"{}"))["version"] == 1
    assert (await call(c.invoke, FunctionName="cfg-two", Payload=b"{}"))["StatusCode"] == 200
