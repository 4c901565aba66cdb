"""Layers, tags and code from S3 against a real `router serve`, through an unmodified boto3 Lambda client.

Layers: published (ZipFile and S3), listed, read, deleted; functions import modules from them (Python from
/opt/python and its site-packages, Node from /opt/nodejs/node_modules), later layers overriding earlier
ones, a config function with a folder layer; functions keep a deleted layer version across a restart.
Tags: on create, Tag/Untag/ListTags, GetFunction's Tags. S3: CreateFunction, UpdateFunctionCode and
PublishLayerVersion from a moto bucket, and Lambda's error for a missing key.
"""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

from router.core import errors as E
from tests.integration.test_control import call, error_of, payload_of
from tests.support import RouterProcess
from tests.unit.test_control_support import lambda_client, make_zip

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
aws: {endpoint_url: "${MOTO}", region: us-east-1, access_key_id: testing, secret_access_key: testing}
functions:
  cfg-layered:
    runtime: python3.11
    handler: app.handler
    code: ./cfg
    layers: [./cfg-layer]
"""

IMPORTER = """
import importlib

def handler(event, context):
    out = {}
    for name in event["modules"]:
        try:
            out[name] = importlib.import_module(name).VALUE
        except ImportError as e:
            out[name] = "missing: " + str(e)
    return out
"""

NODE = """
exports.handler = async (event) => ({value: require("shared").VALUE, nodePath: process.env.NODE_PATH});
"""


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()  # type: ignore[no-any-return]


def python_layer(files: dict[str, str]) -> bytes:
    return make_zip({f"python/{path}": f"VALUE = {value!r}\n" for path, value in files.items()})


def create_args(name: str, **kw: Any) -> dict[str, Any]:
    return {"FunctionName": name, "Runtime": "python3.11", "Role": "arn:aws:iam::123456789012:role/x",
            "Handler": "app.handler", "Code": {"ZipFile": make_zip({"app.py": IMPORTER})}, **kw}  # fmt: skip


async def imports(c: Any, name: str, *modules: str) -> dict[str, str]:
    out = await call(
        c.invoke, FunctionName=name, Payload=f'{{"modules": {list(modules)!r}}}'.replace("'", '"')
    )
    assert "FunctionError" not in out, payload_of(out)
    return payload_of(out)  # type: ignore[no-any-return]


async def test_layers_are_published_listed_and_imported_in_order(make_router: Any, moto_server: str) -> None:
    files = {"cfg/app.py": IMPORTER, "cfg-layer/python/cfgmod.py": "VALUE = 'from a folder layer'\n"}
    router: RouterProcess = await make_router(CONFIG, files=files, env={"MOTO": moto_server})
    c = lambda_client(router.url)
    one = await call(c.publish_layer_version, LayerName="common", Content={"ZipFile": python_layer(
        {"shared.py": "one"})}, CompatibleRuntimes=["python3.11"], Description="first")  # fmt: skip
    assert one["ResponseMetadata"]["HTTPStatusCode"] == 201 and one["Version"] == 1
    assert one["LayerVersionArn"].endswith(":layer:common:1") and one["Content"]["CodeSize"] > 0
    two = await call(c.publish_layer_version, LayerName="common", Content={"ZipFile": python_layer(
        {"shared.py": "two", "only2.py": "only in two"})})  # fmt: skip
    extra = await call(c.publish_layer_version, LayerName="extra", Content={"ZipFile": python_layer(
        {"shared.py": "extra", "lib/python3.11/site-packages/sitepkg.py": "site"})})  # fmt: skip
    assert two["Version"] == 2 and extra["Version"] == 1

    await call(c.create_function, **create_args("fn", Layers=[one["LayerVersionArn"]]))
    assert await imports(c, "fn", "shared") == {"shared": "one"}
    layers = [two["LayerVersionArn"], extra["LayerVersionArn"]]
    updated = await call(c.update_function_configuration, FunctionName="fn", Layers=layers)
    assert [x["Arn"] for x in updated["Layers"]] == layers and updated["Layers"][1]["CodeSize"] > 0
    got = await imports(c, "fn", "shared", "only2", "sitepkg")
    assert got == {"shared": "extra", "only2": "only in two", "sitepkg": "site"}  # the later layer wins
    assert await imports(c, "cfg-layered", "cfgmod") == {"cfgmod": "from a folder layer"}

    listed = await call(c.list_layers)
    assert [(x["LayerName"], x["LatestMatchingVersion"]["Version"]) for x in listed["Layers"]] == [
        ("common", 2), ("extra", 1)]  # fmt: skip
    matching = await call(c.list_layers, CompatibleRuntime="python3.11")
    assert [(x["LayerName"], x["LatestMatchingVersion"]["Version"]) for x in matching["Layers"]] == [
        ("common", 1)
    ]
    versions = await call(c.list_layer_versions, LayerName="common")
    assert [v["Version"] for v in versions["LayerVersions"]] == [2, 1]
    by_arn = await call(c.get_layer_version_by_arn, Arn=one["LayerVersionArn"])
    assert (
        by_arn["Description"] == "first" and by_arn["Content"]["CodeSha256"] == one["Content"]["CodeSha256"]
    )
    assert await asyncio.to_thread(download, by_arn["Content"]["Location"]) == python_layer(
        {"shared.py": "one"}
    )

    # A deleted layer version is gone from the API, but the function that uses it keeps it (and a restart).
    await call(c.create_function, **create_args("old", Layers=[one["LayerVersionArn"]]))
    await call(c.delete_layer_version, LayerName="common", VersionNumber=1)
    e = await error_of(c.get_layer_version, LayerName="common", VersionNumber=1)
    assert e["Error"]["Code"] == E.RESOURCE_NOT_FOUND
    e = await error_of(c.create_function, **create_args("new", Layers=[one["LayerVersionArn"]]))
    assert e["Error"]["Code"] == E.INVALID_PARAMETER_VALUE and "does not exist" in e["Error"]["Message"]
    await router.kill()
    await router.start()
    c = lambda_client(router.url)
    assert await imports(c, "old", "shared") == {"shared": "one"}
    assert (await call(c.publish_layer_version, LayerName="common", Content={"ZipFile": python_layer(
        {"shared.py": "three"})}))["Version"] == 3  # fmt: skip


async def test_a_node_function_requires_from_a_layer(make_router: Any, moto_server: str) -> None:
    router: RouterProcess = await make_router(CONFIG, files={"cfg/app.py": IMPORTER, "cfg-layer/x": ""},
                                              env={"MOTO": moto_server})  # fmt: skip
    c = lambda_client(router.url)
    layer = await call(c.publish_layer_version, LayerName="node-shared", Content={"ZipFile": make_zip(
        {"nodejs/node_modules/shared/index.js": "exports.VALUE = 'from the layer';\n"})})  # fmt: skip
    await call(c.create_function, FunctionName="nodefn", Runtime="nodejs20.x", Role="arn:aws:iam::1:role/x",
               Handler="index.handler", Code={"ZipFile": make_zip({"index.js": NODE})},
               Layers=[layer["LayerVersionArn"]])  # fmt: skip
    out = payload_of(await call(c.invoke, FunctionName="nodefn", Payload=b"{}"))
    assert out["value"] == "from the layer" and "/nodejs/node_modules" in out["nodePath"]


async def test_tags(make_router: Any, moto_server: str) -> None:
    router: RouterProcess = await make_router(CONFIG, files={"cfg/app.py": IMPORTER, "cfg-layer/x": ""},
                                              env={"MOTO": moto_server})  # fmt: skip
    c = lambda_client(router.url)
    created = await call(c.create_function, **create_args("fn", Tags={"team": "a", "env": "dev"}))
    arn = created["FunctionArn"]
    assert (await call(c.get_function, FunctionName="fn"))["Tags"] == {"team": "a", "env": "dev"}
    await call(c.tag_resource, Resource=arn, Tags={"env": "prod", "cost": "42"})
    assert (await call(c.list_tags, Resource=arn))["Tags"] == {"team": "a", "env": "prod", "cost": "42"}
    await call(c.untag_resource, Resource=arn, TagKeys=["team", "absent"])
    assert (await call(c.list_tags, Resource=arn))["Tags"] == {"env": "prod", "cost": "42"}
    cfg_arn = arn.replace(":function:fn", ":function:cfg-layered")
    assert (await call(c.list_tags, Resource=cfg_arn))["Tags"] == {}
    cases: list[tuple[Any, dict[str, Any], int, str, str]] = [
        (c.tag_resource, {"Resource": f"{arn}:1", "Tags": {"a": "b"}}, 400, E.INVALID_PARAMETER_VALUE,
         "aliases and versions"),
        (c.tag_resource, {"Resource": arn, "Tags": {"aws:x": "b"}}, 400, E.INVALID_PARAMETER_VALUE, "aws:"),
        (c.tag_resource, {"Resource": cfg_arn, "Tags": {"a": "b"}}, 409, E.RESOURCE_CONFLICT, "config file"),
        (c.list_tags, {"Resource": arn.replace(":fn", ":nope")}, 404, E.RESOURCE_NOT_FOUND, "nope"),
    ]  # fmt: skip
    for fn, kw, status, error, needle in cases:
        e = await error_of(fn, **kw)
        assert e["ResponseMetadata"]["HTTPStatusCode"] == status, kw
        assert e["Error"]["Code"] == error, (kw, e["Error"])
        assert needle in e["Error"]["Message"], (kw, e["Error"]["Message"])


async def test_code_and_layers_from_s3(make_router: Any, moto_server: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket="deploys")
    s3.put_object(Bucket="deploys", Key="fn/v1.zip", Body=make_zip({"app.py": IMPORTER}))
    s3.put_object(Bucket="deploys", Key="layers/l.zip", Body=python_layer({"froms3.py": "layer from s3"}))
    router: RouterProcess = await make_router(CONFIG, files={"cfg/app.py": IMPORTER, "cfg-layer/x": ""},
                                              env={"MOTO": moto_server})  # fmt: skip
    c = lambda_client(router.url)
    layer = await call(c.publish_layer_version, LayerName="s3layer",
                       Content={"S3Bucket": "deploys", "S3Key": "layers/l.zip"})  # fmt: skip
    created = await call(c.create_function, **create_args("fn", Layers=[layer["LayerVersionArn"]],
                         Code={"S3Bucket": "deploys", "S3Key": "fn/v1.zip"}))  # fmt: skip
    assert created["CodeSize"] == len(make_zip({"app.py": IMPORTER}))
    assert await imports(c, "fn", "froms3") == {"froms3": "layer from s3"}
    v2 = make_zip({"app.py": "def handler(event, context):\n    return {'from': 's3 v2'}\n"})
    s3.put_object(Bucket="deploys", Key="fn/v2.zip", Body=v2)
    await call(c.update_function_code, FunctionName="fn", S3Bucket="deploys", S3Key="fn/v2.zip")
    assert payload_of(await call(c.invoke, FunctionName="fn", Payload=b"{}")) == {"from": "s3 v2"}
    e = await error_of(c.update_function_code, FunctionName="fn", S3Bucket="deploys", S3Key="nope.zip")
    assert e["Error"]["Code"] == E.INVALID_PARAMETER_VALUE
    assert "Error occurred while GetObject. S3 Error Code: NoSuchKey" in e["Error"]["Message"]
