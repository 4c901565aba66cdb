"""Published versions and aliases against a real `router serve`, through an unmodified boto3 Lambda client.

Covers: PublishVersion (snapshots that keep running their own code, no new version when nothing changed,
the CodeSha256 and RevisionId preconditions), ListVersionsByFunction, GetFunction* with a qualifier, the
alias calls with weighted routing (a 90/10 alias observed to split), what the function sees (its version,
the ARN it was invoked by), DeleteFunction of a version, the errors Lambda answers, ListFunctions with
FunctionVersion=ALL, surviving kill -9, and a config-file route pinned to an alias.
"""

from __future__ import annotations

import asyncio
import collections
import json
import urllib.request
from typing import Any

from router.core import errors as E
from tests.integration.test_control import call, error_of, payload_of
from tests.support import RouterProcess
from tests.unit.test_control_support import lambda_client, make_zip

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
"""

HANDLER = """
import os

def handler(event, context):
    return {{"code": {code}, "version": context.function_version, "arn": context.invoked_function_arn,
            "env": os.environ["AWS_LAMBDA_FUNCTION_VERSION"], "memory": context.memory_limit_in_mb}}
"""


def code(n: int) -> bytes:
    return make_zip({"app.py": HANDLER.format(code=n)})


def create_args(name: str, n: int = 1, **kw: Any) -> dict[str, Any]:
    return {"FunctionName": name, "Runtime": "python3.11", "Role": "arn:aws:iam::123456789012:role/x",
            "Handler": "app.handler", "Code": {"ZipFile": code(n)}, "Timeout": 10, **kw}  # fmt: skip


async def invoke(c: Any, name: str, qualifier: str | None = None) -> tuple[str, Any]:
    kw = {"Qualifier": qualifier} if qualifier else {}
    out = await call(c.invoke, FunctionName=name, Payload=b"{}", **kw)
    return out["ExecutedVersion"], payload_of(out)


async def test_versions_and_a_weighted_alias(make_router: Any) -> None:
    router: RouterProcess = await make_router(CONFIG)
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("fn"))
    v1 = await call(c.publish_version, FunctionName="fn", Description="first")
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert v1["Version"] == "1" and v1["FunctionArn"].endswith(":function:fn:1")
    assert v1["Description"] == "first"
    await call(c.update_function_code, FunctionName="fn", ZipFile=code(2))
    await call(c.update_function_configuration, FunctionName="fn", MemorySize=256)
    v2 = await call(c.publish_version, FunctionName="fn")
    assert v2["Version"] == "2" and v2["MemorySize"] == 256 and v2["CodeSha256"] != v1["CodeSha256"]
    again = await call(c.publish_version, FunctionName="fn")  # nothing changed: the same version
    assert again["Version"] == "2"

    # Each version runs its own snapshot; $LATEST is unchanged.
    assert await invoke(c, "fn", "1") == ("1", {"code": 1, "version": "1", "env": "1", "memory": "128",
                                                "arn": v1["FunctionArn"]})  # fmt: skip
    assert (await invoke(c, "fn", "2"))[1]["code"] == 2
    version, body = await invoke(c, "fn")
    assert version == "$LATEST" and body["version"] == "$LATEST" and body["code"] == 2
    assert (await invoke(c, "fn:1"))[0] == "1"  # the qualifier in the name

    alias = await call(c.create_alias, FunctionName="fn", Name="live", FunctionVersion="1",
                       RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})  # fmt: skip
    assert alias["AliasArn"].endswith(":function:fn:live") and alias["RevisionId"]
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(200):
        executed, body = await invoke(c, "fn", "live")
        assert body["version"] == executed and body["arn"] == alias["AliasArn"]
        seen[executed] += 1
    assert set(seen) == {"1", "2"}, seen
    assert 4 <= seen["2"] <= 50, seen  # 10% of 200: mean 20, sd 4.2

    got = await call(c.get_function_configuration, FunctionName="fn", Qualifier="live")
    assert got["Version"] == "1" and got["FunctionArn"] == alias["AliasArn"]
    got = await call(c.get_function, FunctionName="fn", Qualifier="2")
    assert got["Configuration"]["Version"] == "2" and got["Configuration"]["MemorySize"] == 256
    versions = await call(c.list_versions_by_function, FunctionName="fn")
    assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1", "2"]
    everything = await call(c.list_functions, FunctionVersion="ALL")
    assert [f["FunctionArn"].rsplit(":", 1)[-1] for f in everything["Functions"]] == ["fn", "1", "2"]
    assert [f["FunctionName"] for f in (await call(c.list_functions))["Functions"]] == ["fn"]

    # Aliases: list, update with RevisionId, errors.
    updated = await call(c.update_alias, FunctionName="fn", Name="live", FunctionVersion="2",
                         RoutingConfig={"AdditionalVersionWeights": {}},
                         RevisionId=alias["RevisionId"])  # fmt: skip
    assert updated["FunctionVersion"] == "2" and "RoutingConfig" not in updated
    assert {(await invoke(c, "fn", "live"))[0] for _ in range(5)} == {"2"}
    listed = await call(c.list_aliases, FunctionName="fn")
    assert [a["Name"] for a in listed["Aliases"]] == ["live"]
    await call(c.delete_function, FunctionName="fn", Qualifier="1")  # no alias uses it any more
    listed = await call(c.list_versions_by_function, FunctionName="fn")
    assert [v["Version"] for v in listed["Versions"]] == ["$LATEST", "2"]
    v3 = await call(c.publish_version, FunctionName="fn", Description="after a deletion")
    assert v3["Version"] == "2"  # nothing changed since 2
    await call(c.update_function_configuration, FunctionName="fn", Timeout=20)
    assert (await call(c.publish_version, FunctionName="fn"))["Version"] == "3"  # never reuses 1


async def test_version_and_alias_errors(make_router: Any) -> None:
    router: RouterProcess = await make_router(CONFIG)
    c = lambda_client(router.url)
    created = await call(c.create_function, **create_args("fn"))
    await call(c.publish_version, FunctionName="fn")
    await call(c.create_alias, FunctionName="fn", Name="live", FunctionVersion="1")
    cases: list[tuple[Any, dict[str, Any], int, str, str]] = [
        (c.invoke, {"FunctionName": "fn", "Qualifier": "9"}, 404, E.RESOURCE_NOT_FOUND, "fn:9"),
        (c.invoke, {"FunctionName": "fn", "Qualifier": "nope"}, 404, E.RESOURCE_NOT_FOUND, "fn:nope"),
        (c.get_function, {"FunctionName": "fn", "Qualifier": "7"}, 404, E.RESOURCE_NOT_FOUND, "fn:7"),
        (c.get_alias, {"FunctionName": "fn", "Name": "nope"}, 404, E.RESOURCE_NOT_FOUND, "Alias not found"),
        (c.create_alias, {"FunctionName": "fn", "Name": "live", "FunctionVersion": "1"}, 409,
         E.RESOURCE_CONFLICT, "Alias already exists"),
        (c.create_alias, {"FunctionName": "fn", "Name": "other", "FunctionVersion": "5"}, 404,
         E.RESOURCE_NOT_FOUND, "fn:5"),
        (c.create_alias, {"FunctionName": "fn", "Name": "123", "FunctionVersion": "1"}, 400,
         E.INVALID_PARAMETER_VALUE, "not only digits"),
        (c.create_alias, {"FunctionName": "fn", "Name": "w", "FunctionVersion": "$LATEST",
                          "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}}, 400,
         E.INVALID_PARAMETER_VALUE, "$LATEST is not supported"),
        (c.create_alias, {"FunctionName": "fn", "Name": "w", "FunctionVersion": "1",
                          "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}}, 400,
         E.INVALID_PARAMETER_VALUE, "both the primary"),
        (c.update_alias, {"FunctionName": "fn", "Name": "live", "RevisionId": "stale"}, 412,
         "PreconditionFailedException", "Revision Id"),
        (c.delete_function, {"FunctionName": "fn", "Qualifier": "1"}, 409, E.RESOURCE_CONFLICT, "live"),
        (c.delete_function, {"FunctionName": "fn", "Qualifier": "$LATEST"}, 400, E.INVALID_PARAMETER_VALUE,
         "$LATEST"),
        (c.publish_version, {"FunctionName": "fn", "CodeSha256": "AAAA"}, 400, E.INVALID_PARAMETER_VALUE,
         "CodeSHA256"),
        (c.publish_version, {"FunctionName": "fn", "RevisionId": "stale"}, 412, "PreconditionFailedException",
         "Revision Id"),
        (c.publish_version, {"FunctionName": "nope"}, 404, E.RESOURCE_NOT_FOUND, "Function not found"),
    ]  # fmt: skip
    for fn, kw, status, error, needle in cases:
        e = await error_of(fn, **kw)
        assert e["ResponseMetadata"]["HTTPStatusCode"] == status, kw
        assert e["Error"]["Code"] == error, (kw, e["Error"])
        assert needle in e["Error"]["Message"], (kw, e["Error"]["Message"])
    revision = (await call(c.get_function, FunctionName="fn"))["Configuration"]["RevisionId"]
    sha = created["CodeSha256"]
    ok = await call(c.publish_version, FunctionName="fn", CodeSha256=sha, RevisionId=revision)
    assert ok["Version"] == "1"
    await call(c.delete_alias, FunctionName="fn", Name="live")
    gone = await error_of(c.invoke, FunctionName="fn", Qualifier="live")
    assert gone["Error"]["Code"] == E.RESOURCE_NOT_FOUND


async def test_versions_survive_kill_9_and_go_with_the_function(make_router: Any) -> None:
    router: RouterProcess = await make_router(CONFIG)
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("fn", Publish=True))
    await call(c.update_function_code, FunctionName="fn", ZipFile=code(2), Publish=True)
    await call(c.create_alias, FunctionName="fn", Name="live", FunctionVersion="1",
               RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})  # fmt: skip
    await router.kill()
    await router.start()
    c = lambda_client(router.url)
    assert (await invoke(c, "fn", "1"))[1]["code"] == 1
    assert (await invoke(c, "fn", "2"))[1]["code"] == 2
    alias = await call(c.get_alias, FunctionName="fn", Name="live")
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    await call(c.delete_function, FunctionName="fn")
    await call(c.create_function, **create_args("fn", 3))
    assert (await call(c.list_versions_by_function, FunctionName="fn"))["Versions"][1:] == []
    assert (await call(c.list_aliases, FunctionName="fn"))["Aliases"] == []
    assert (await call(c.publish_version, FunctionName="fn"))["Version"] == "1"


ROUTED = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
functions:
  web-echo: {runtime: python3.11, handler: app.handler, code: ./web}
sources:
  web: {kind: http, port: "${WEB_PORT}"}
routes:
  - {source: web, function: "web-echo:live", http: {method: GET, path: /hello}}
"""

WEB = """
import os

def handler(event, context):
    return {"version": context.function_version, "label": os.environ.get("LABEL", "")}
"""


async def test_a_config_route_pinned_to_an_alias(make_router: Any) -> None:
    from tests.support import free_port

    port = free_port()
    router: RouterProcess = await make_router(ROUTED, files={"web/app.py": WEB}, env={"WEB_PORT": str(port)})
    c = lambda_client(router.url)
    published = await call(c.publish_version, FunctionName="web-echo")
    assert published["Version"] == "1"
    assert (await error_of(c.update_function_code, FunctionName="web-echo", ZipFile=code(1)))["Error"][
        "Code"] == E.RESOURCE_CONFLICT  # fmt: skip
    await call(c.create_alias, FunctionName="web-echo", Name="live", FunctionVersion="1")

    def get() -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=10) as r:
            return json.loads(r.read())

    assert await asyncio.to_thread(get) == {"version": "1", "label": ""}
