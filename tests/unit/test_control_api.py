"""The control-plane API in-process (real app, catalog and dispatcher; fake instances), driven by boto3.

These check what botocore makes of our responses: the exception class, Error.Code, modeled members
(Reason, Type), status codes and headers. The same flows run against a real `router serve` with real
function processes in tests/integration/test_control.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from router.core import errors as E
from tests.unit.test_control_support import ApiHarness, app_zip, make_zip, symlink_zip, traversal_zip

ZIP_V2 = make_zip({"app.py": "def handler(e, c):\n    return 2\n", "v2.txt": "two"})


async def call(fn: Any, /, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, **kw)


async def error_of(fn: Any, /, **kw: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        await call(fn, **kw)
    return info.value


def tree(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*"))


def create_args(name: str = "f1", zip_bytes: bytes | None = None, **kw: Any) -> dict[str, Any]:
    return {"FunctionName": name, "Runtime": "python3.11", "Role": "arn:aws:iam::123456789012:role/x",
            "Handler": "app.handler", "Code": {"ZipFile": zip_bytes or app_zip()}, **kw}  # fmt: skip


async def test_deploy_invoke_update_and_delete(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path) as h:
        c = h.client()
        created = await call(c.create_function, **create_args(Environment={"Variables": {"STAGE": "dev"}}))
        assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:f1"
        assert created["Environment"] == {"Variables": {"STAGE": "dev"}}
        assert (created["Version"], created["State"], created["PackageType"]) == ("$LATEST", "Active", "Zip")
        assert base64.b64decode(created["CodeSha256"]) and created["CodeSize"] == len(app_zip())

        context = base64.b64encode(b'{"custom": {"who": "test"}}').decode()
        out = await call(
            c.invoke, FunctionName="f1", Payload=b'{"n": 1}', LogType="Tail", ClientContext=context
        )
        assert out["StatusCode"] == 200 and out["ExecutedVersion"] == "$LATEST"
        body = json.loads(out["Payload"].read())
        assert body["echo"] == {"n": 1} and body["code"] == ["app.py"] and body["client_context"] == context
        tail = base64.b64decode(out["LogResult"])
        assert len(tail) == 4096 and tail.endswith(f"END {out['ResponseMetadata']['RequestId']}\n".encode())

        queued = await call(c.invoke, FunctionName="f1", InvocationType="Event", Payload=b'{"n": 2}')
        assert queued["StatusCode"] == 202 and queued["ResponseMetadata"]["RequestId"]
        dry = await call(c.invoke, FunctionName="arn:aws:lambda:us-east-1:123456789012:function:f1",
                         InvocationType="DryRun")  # fmt: skip
        assert dry["StatusCode"] == 204

        updated = await call(c.update_function_code, FunctionName="f1", ZipFile=ZIP_V2)
        assert updated["CodeSha256"] != created["CodeSha256"]
        assert updated["RevisionId"] != created["RevisionId"]
        body = json.loads((await call(c.invoke, FunctionName="f1", Payload=b"{}"))["Payload"].read())
        assert body["code"] == ["app.py", "v2.txt"]

        conf = await call(c.update_function_configuration, FunctionName="f1", MemorySize=256, Timeout=5,
                          Handler="app.other")  # fmt: skip
        assert (conf["MemorySize"], conf["Timeout"], conf["Handler"]) == (256, 5, "app.other")
        assert conf["Environment"] == {"Variables": {"STAGE": "dev"}}  # untouched members are kept
        body = json.loads((await call(c.invoke, FunctionName="f1", Payload=b"{}"))["Payload"].read())
        assert body["handler"] == "app.other"

        got = await call(c.get_function, FunctionName="f1")
        assert got["Configuration"]["MemorySize"] == 256
        async with aiohttp.ClientSession() as s, s.get(got["Code"]["Location"]) as r:
            assert r.status == 200 and await r.read() == ZIP_V2

        deleted = await call(c.delete_function, FunctionName="f1")
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
        e = await error_of(c.invoke, FunctionName="f1", Payload=b"{}")
        assert e.response["Error"]["Code"] == E.RESOURCE_NOT_FOUND
        assert list((tmp_path / ".router" / "functions").iterdir()) == []


async def test_function_errors_are_200_with_the_error_header_and_body(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path) as h:
        c = h.client()
        await call(c.create_function, **create_args())
        out = await call(c.invoke, FunctionName="f1", Payload=b'{"fail": true}')
        assert out["StatusCode"] == 200 and out["FunctionError"] == "Unhandled"
        body = json.loads(out["Payload"].read())
        assert body == {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ["app.py:2"]}


async def test_list_functions_paginates_over_config_and_deployed_functions(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n")
    config = "functions:\n  b-config: {runtime: python3.11, handler: app.handler, code: fn}\n"
    async with ApiHarness(tmp_path, config) as h:
        c = h.client()
        for name in ("e", "a", "d", "c"):
            await call(c.create_function, **create_args(name))
        first = await call(c.list_functions, MaxItems=2)
        assert [f["FunctionName"] for f in first["Functions"]] == ["a", "b-config"]
        second = await call(c.list_functions, MaxItems=2, Marker=first["NextMarker"])
        assert [f["FunctionName"] for f in second["Functions"]] == ["c", "d"]
        third = await call(c.list_functions, MaxItems=2, Marker=second["NextMarker"])
        assert [f["FunctionName"] for f in third["Functions"]] == ["e"] and "NextMarker" not in third
        pages = c.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3})
        names = [
            f["FunctionName"] for page in await asyncio.to_thread(list, pages) for f in page["Functions"]
        ]
        assert names == ["a", "b-config", "c", "d", "e"]
        e = await error_of(c.list_functions, Marker="%%%")
        assert e.response["Error"]["Code"] == E.INVALID_PARAMETER_VALUE


async def test_config_functions_are_listed_but_read_only(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n")
    config = (
        "functions:\n  cfg: {runtime: python3.11, handler: app.handler, code: fn, reserved_concurrency: 5}\n"
    )
    async with ApiHarness(tmp_path, config) as h:
        c = h.client()
        got = await call(c.get_function, FunctionName="cfg")
        assert got["Configuration"]["Handler"] == "app.handler" and "Code" not in got
        assert got["Concurrency"] == {"ReservedConcurrentExecutions": 5}
        assert (await call(c.get_function_concurrency, FunctionName="cfg"))[
            "ReservedConcurrentExecutions"
        ] == 5
        for fn, kw in [
            (c.update_function_code, {"ZipFile": app_zip()}),
            (c.update_function_configuration, {"MemorySize": 256}),
            (c.put_function_concurrency, {"ReservedConcurrentExecutions": 1}),
            (c.delete_function, {}),
        ]:
            e = await error_of(fn, FunctionName="cfg", **kw)
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 409
            assert e.response["Error"]["Code"] == E.RESOURCE_CONFLICT
            assert "config file" in e.response["Error"]["Message"]
        e = await error_of(c.create_function, **create_args("cfg"))
        assert e.response["Error"] == {"Code": E.RESOURCE_CONFLICT, "Message": "Function already exist: cfg"}


async def test_reserved_concurrency_throttles_with_reason_and_respects_the_unreserved_minimum(
    tmp_path: Path,
) -> None:
    async with ApiHarness(tmp_path, "account: {concurrency: 10, unreserved_min: 4}\n") as h:
        c = h.client()
        await call(c.create_function, **create_args())
        await call(c.create_function, **create_args("f2"))
        put = await call(c.put_function_concurrency, FunctionName="f1", ReservedConcurrentExecutions=0)
        assert put["ReservedConcurrentExecutions"] == 0
        e = await error_of(c.invoke, FunctionName="f1", Payload=b"{}")
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert e.response["Error"]["Code"] == E.TOO_MANY_REQUESTS
        assert e.response["Reason"] == E.REASON_RESERVED and e.response["Type"] == "User"
        assert e.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"

        await call(c.put_function_concurrency, FunctionName="f2", ReservedConcurrentExecutions=6)
        e = await error_of(c.put_function_concurrency, FunctionName="f1", ReservedConcurrentExecutions=1)
        assert e.response["Error"]["Code"] == E.INVALID_PARAMETER_VALUE
        assert "minimum value of [4]" in e.response["Error"]["Message"]
        settings = await call(c.get_account_settings)
        assert settings["AccountLimit"]["ConcurrentExecutions"] == 10
        assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 4
        assert settings["AccountUsage"]["FunctionCount"] == 2

        await call(c.delete_function_concurrency, FunctionName="f1")
        assert "ReservedConcurrentExecutions" not in await call(c.get_function_concurrency, FunctionName="f1")
        assert (await call(c.invoke, FunctionName="f1", Payload=b"{}"))["StatusCode"] == 200


async def test_invoke_service_errors_have_lambdas_status_type_and_body(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path) as h:
        c = h.client()
        await call(c.create_function, **create_args())
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"FunctionName": "nope"}, 404, E.RESOURCE_NOT_FOUND),
            ({"FunctionName": "f1:prod"}, 404, E.RESOURCE_NOT_FOUND),
            ({"FunctionName": "f1", "Payload": b"{not json"}, 400, E.INVALID_REQUEST_CONTENT),
            ({"FunctionName": "f1", "Payload": b"x" * (6 * 1024 * 1024 + 1)}, 413, E.REQUEST_TOO_LARGE),
            ({"FunctionName": "f1", "Payload": b'"' + b"x" * (1024 * 1024) + b'"', "InvocationType": "Event"},
             413, E.REQUEST_TOO_LARGE),
            ({"FunctionName": "f1", "ClientContext": "!!"}, 400, E.INVALID_REQUEST_CONTENT),
        ]  # fmt: skip
        for kw, status, code in cases:
            e = await error_of(c.invoke, **kw)
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, kw["FunctionName"]
            assert e.response["Error"]["Code"] == code
            assert e.response["Type"] == "User" and e.response["Error"]["Message"]
        e = await error_of(c.invoke, FunctionName="nope")
        assert (
            e.response["Error"]["Message"]
            == "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"
        )


async def test_raw_http_errors_headers_and_the_curl_alias(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path) as h, aiohttp.ClientSession() as s:
        await call(h.client().create_function, **create_args())
        url = f"{h.url}/2015-03-31/functions/f1/invocations"
        async with s.post(url, data=b"{}", headers={"Content-Type": "text/html"}) as r:
            assert r.status == 415 and r.headers["x-amzn-ErrorType"] == E.UNSUPPORTED_MEDIA_TYPE
            assert (await r.json())["Type"] == "User"
        async with s.post(url, data=b"{}", headers={"X-Amz-Invocation-Type": "Sometimes"}) as r:
            assert r.status == 400 and r.headers["x-amzn-ErrorType"] == E.INVALID_PARAMETER_VALUE
        # curl -d sends application/x-www-form-urlencoded: the alias takes it.
        async with s.post(f"{h.url}/invoke/f1", data='{"via": "curl"}',
                          headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:  # fmt: skip
            assert r.status == 200 and (await r.json())["echo"] == {"via": "curl"}
            assert r.headers["x-amzn-RequestId"]
        async with s.post(f"{h.url}/invoke/f1", data=b"") as r:
            assert r.status == 200 and (await r.json())["echo"] == {}
        async with s.get(f"{h.url}/2099-01-01/nothing") as r:
            assert r.status == 404 and r.headers["x-amzn-ErrorType"] == "UnknownOperationException"
            assert r.headers["x-amzn-RequestId"]
        async with s.get(f"{h.url}/metrics") as r:
            text = await r.text()
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert 'router_api_requests_total{operation="POST /invoke/{name}",status="200"} 2.0' in text
        assert 'router_invocations_total{function="f1"' in text


async def test_management_request_errors(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path) as h:
        c = h.client()
        created = await call(c.create_function, **create_args())
        cases: list[tuple[Any, dict[str, Any], int, str, str]] = [
            (c.create_function, create_args("f2", Runtime="cobol"), 400, E.INVALID_PARAMETER_VALUE,
             "runtime"),
            (c.create_function, create_args("f2", Code={"S3Bucket": "bucket"}), 400,
             E.INVALID_PARAMETER_VALUE, "S3Key"),
            (c.create_function, create_args("f2", Code={"ImageUri": "repo/image:1"}), 400,
             E.INVALID_PARAMETER_VALUE, "ImageUri"),
            (c.create_function, create_args("f2", zip_bytes=b"not a zip"), 400, E.INVALID_PARAMETER_VALUE,
             "Could not unzip"),
            (c.create_function, create_args("bad.name"), 400, E.INVALID_PARAMETER_VALUE, "FunctionName"),
            (c.get_function, {"FunctionName": "nope"}, 404, E.RESOURCE_NOT_FOUND, "Function not found"),
            (c.update_function_code, {"FunctionName": "nope", "ZipFile": app_zip()}, 404,
             E.RESOURCE_NOT_FOUND, ""),
            (c.update_function_code, {"FunctionName": "f1", "ZipFile": app_zip(), "RevisionId": "stale"}, 412,
             "PreconditionFailedException", "Revision Id"),
            (c.put_function_concurrency, {"FunctionName": "f1", "ReservedConcurrentExecutions": 10**6}, 400,
             E.INVALID_PARAMETER_VALUE, "UnreservedConcurrentExecution"),
        ]  # fmt: skip
        for fn, kw, status, code, needle in cases:
            e = await error_of(fn, **kw)
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, kw
            assert e.response["Error"]["Code"] == code, kw
            assert needle in e.response["Error"]["Message"], e.response["Error"]["Message"]
        ok = await call(
            c.update_function_code, FunctionName="f1", ZipFile=ZIP_V2, RevisionId=created["RevisionId"]
        )
        assert ok["CodeSize"] == len(ZIP_V2)
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{h.url}/2015-03-31/functions", data=b"{broken") as r:
                assert r.status == 400 and r.headers["x-amzn-ErrorType"] == E.INVALID_REQUEST_CONTENT
            # Values botocore would refuse client-side; other SDKs or curl can send them.
            body = {**create_args("f2"), "MemorySize": 100, "Timeout": 0, "Code": {"ZipFile": ""}}
            async with s.post(f"{h.url}/2015-03-31/functions", json=body) as r:
                assert r.status == 400 and r.headers["x-amzn-ErrorType"] == E.INVALID_PARAMETER_VALUE
                message = (await r.json())["message"]
                assert "'100' at 'memorySize'" in message and "'0' at 'timeout'" in message
            async with s.put(f"{h.url}/2015-03-31/functions/f1/code", json={"ZipFile": 5}) as r:
                assert r.status == 400 and "at `$.ZipFile`" in (await r.json())["message"]


@pytest.mark.parametrize("archive", [traversal_zip("../../../escaped.py"), traversal_zip("/tmp/escaped.py"),
                                     symlink_zip("/etc/passwd")])  # fmt: skip
async def test_malicious_zips_are_refused_and_nothing_is_written(tmp_path: Path, archive: bytes) -> None:
    async with ApiHarness(tmp_path) as h:
        c = h.client()
        before = await asyncio.to_thread(tree, tmp_path)
        e = await error_of(c.create_function, **create_args("evil", zip_bytes=archive))
        assert e.response["Error"]["Code"] == E.INVALID_PARAMETER_VALUE
        assert await asyncio.to_thread(tree, tmp_path) == before
        e = await error_of(c.get_function, FunctionName="evil")
        assert e.response["Error"]["Code"] == E.RESOURCE_NOT_FOUND


async def test_auth_token_is_required_except_for_probes(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path, token="s3cret") as h, aiohttp.ClientSession() as s:
        ok = await call(h.client("s3cret").create_function, **create_args())
        assert ok["FunctionName"] == "f1"
        e = await error_of(h.client("wrong").list_functions)
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert e.response["Error"]["Code"] == "UnrecognizedClientException"
        async with s.post(f"{h.url}/invoke/f1", data=b"{}") as r:
            assert r.status == 401 and r.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
        async with s.post(f"{h.url}/invoke/f1", data=b"{}", headers={"Authorization": "Bearer s3cret"}) as r:
            assert r.status == 200
        async with s.get(f"{h.url}/metrics") as r:
            assert r.status == 401
        for probe in ("/healthz", "/readyz"):
            async with s.get(f"{h.url}{probe}") as r:
                assert r.status == 200


async def test_without_a_token_no_credentials_are_needed(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path) as h, aiohttp.ClientSession() as s:
        async with s.get(f"{h.url}/2015-03-31/functions") as r:
            assert r.status == 200 and await r.json() == {"Functions": []}


async def test_deployed_functions_survive_a_restart_and_config_ones_win_a_name_clash(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path) as h:
        c = h.client()
        await call(c.create_function, **create_args("kept", Description="mine"))
        await call(c.create_function, **create_args("clash"))
        await call(c.put_function_concurrency, FunctionName="kept", ReservedConcurrentExecutions=2)
        before = await call(c.get_function_configuration, FunctionName="kept")
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n")
    config = "functions:\n  clash: {runtime: python3.11, handler: app.handler, code: fn}\n"
    async with ApiHarness(tmp_path, config) as h:
        c = h.client()
        after = await call(c.get_function_configuration, FunctionName="kept")
        for key in ("CodeSha256", "RevisionId", "LastModified", "Description", "Handler", "Runtime"):
            assert after[key] == before[key], key
        assert (await call(c.get_function_concurrency, FunctionName="kept"))[
            "ReservedConcurrentExecutions"
        ] == 2
        assert (await call(c.invoke, FunctionName="kept", Payload=b"{}"))["StatusCode"] == 200
        clash = await call(c.get_function, FunctionName="clash")
        assert "Code" not in clash  # the config function answers, not the deployed one


async def test_bodies_over_max_body_mb_are_refused_with_413(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path, max_body_mb=1) as h:
        big = make_zip({"app.py": "x = 1\n", "blob.bin": os.urandom(1024 * 1024)})
        e = await error_of(h.client().create_function, **create_args("big", zip_bytes=big))
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 413
        assert e.response["Error"]["Code"] == E.REQUEST_TOO_LARGE
        assert "server.max_body_mb" in e.response["Error"]["Message"]


async def test_an_unexpected_failure_is_a_logged_service_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with ApiHarness(tmp_path) as h:
        c = h.client()
        await call(c.create_function, **create_args())

        async def broken(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(h.dispatcher, "invoke", broken)
        e = await error_of(c.invoke, FunctionName="f1", Payload=b"{}")
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert e.response["Error"]["Code"] == E.SERVICE_EXCEPTION and e.response["Type"] == "Service"
        request_id = e.response["ResponseMetadata"]["RequestId"]
        assert any(r.getMessage() == "control plane: unexpected error" and r.exc_info for r in caplog.records)
        assert request_id and "disk on fire" not in e.response["Error"]["Message"]
