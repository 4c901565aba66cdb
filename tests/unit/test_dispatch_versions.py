"""The dispatcher with published versions and aliases: a pool per version, alias weights, one reservation
across versions, qualified async events and their settings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pytest

from router.config import AsyncConfig
from router.core.errors import REASON_RESERVED, FunctionNotFound, Throttled
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.registry import AliasRouting, FunctionDefinition
from tests.unit.dispatch_fakes import FakeFactory, definition, directory, router_config, until


def with_versions(tmp: Path, **kw: object) -> FunctionDefinition:
    latest = definition("f", tmp, **kw)  # type: ignore[arg-type]
    versions = {}
    for n in ("1", "2"):
        v = definition("f", tmp, code_sha=f"sha{n}", **kw)  # type: ignore[arg-type]
        versions[n] = msgspec.structs.replace(v, spec=msgspec.structs.replace(v.spec, version=n))
    aliases = {"live": AliasRouting(version="1", weights={"2": 0.25}), "new": AliasRouting(version="2")}
    return msgspec.structs.replace(latest, versions=versions, aliases=aliases)


async def make(tmp: Path, defn: FunctionDefinition) -> tuple[Dispatcher, FakeFactory]:
    factory = FakeFactory()
    d = Dispatcher(router_config(tmp), state_dir=tmp, instance_factory=factory, retry_delays_s=(0.0, 0.0))
    await d.set_functions({"f": defn})
    await d.start()
    return d, factory


async def test_each_version_has_its_own_instances_and_says_which_ran(tmp_path: Path) -> None:
    d, factory = await make(tmp_path, with_versions(tmp_path))
    try:
        latest = await d.invoke("f", b"{}")
        one = await d.invoke("f", b"{}", qualifier="1")
        two = await d.invoke("f", b"{}", qualifier="new")
        assert (latest.executed_version, one.executed_version, two.executed_version) == ("$LATEST", "1", "2")
        assert sorted(i.spec.version for i in factory.live("f")) == ["$LATEST", "1", "2"]
        arns = [r.function_arn for r in factory.requests]
        assert arns[0] is None and arns[1].endswith(":function:f:1") and arns[2].endswith(":function:f:new")
        with pytest.raises(FunctionNotFound, match="f:9"):
            await d.invoke("f", b"{}", qualifier="9")
    finally:
        await d.aclose()


async def test_alias_weights_choose_per_call(tmp_path: Path) -> None:
    d, _ = await make(tmp_path, with_versions(tmp_path))
    draws = iter([0.1, 0.3, 0.24, 0.99])
    d._draw = lambda: next(draws)  # deterministic draws: below 0.25 -> version 2
    try:
        ran = [(await d.invoke("f", b"{}", qualifier="live")).executed_version for _ in range(4)]
        assert ran == ["2", "1", "2", "1"]
    finally:
        await d.aclose()


async def test_reserved_concurrency_counts_every_version(tmp_path: Path) -> None:
    d, factory = await make(tmp_path, with_versions(tmp_path, reserved_concurrency=1))
    try:
        held = asyncio.ensure_future(d.invoke("f", json.dumps({"gate": "g"}).encode(), qualifier="1"))
        await until(lambda: d.accounting.in_use("f") == 1, "the first call holds the slot")
        for qualifier in (None, "2", "live"):
            with pytest.raises(Throttled) as e:
                await d.invoke("f", b"{}", qualifier=qualifier)
            assert e.value.reason == REASON_RESERVED
        factory.open("g")
        assert (await held).executed_version == "1"
    finally:
        await d.aclose()


async def test_async_events_keep_their_qualifier_and_follow_its_settings(tmp_path: Path) -> None:
    failures = tmp_path / "failures"
    defn = with_versions(tmp_path)
    live = AliasRouting(version="1", async_=AsyncConfig(max_retries=0, on_failure=directory(failures)))
    defn = msgspec.structs.replace(defn, aliases={**defn.aliases, "live": live})
    d, factory = await make(tmp_path, defn)
    try:
        request_id = await d.enqueue("f", json.dumps({"fail": True}).encode(), qualifier="live")
        await d.settled([request_id])
        [record_file] = list(failures.iterdir())
        record = json.loads(record_file.read_text())
        assert record["requestContext"]["functionArn"].endswith(":function:f:1")
        assert record["responseContext"]["executedVersion"] == "1"
        assert record["requestContext"]["approximateInvokeCount"] == 1  # the alias's max_retries: 0
        assert [r.function_arn for r in factory.requests][-1].endswith(":f:live")
    finally:
        await d.aclose()


async def test_removing_a_version_retires_its_pool(tmp_path: Path) -> None:
    defn = with_versions(tmp_path)
    d, factory = await make(tmp_path, defn)
    try:
        await d.invoke("f", b"{}", qualifier="2")
        fewer = msgspec.structs.replace(defn, versions={"1": defn.versions["1"]}, aliases={})
        await d.set_functions({"f": fewer})
        await until(lambda: [i.spec.version for i in factory.live("f")] == [], "version 2's instance stopped")
        with pytest.raises(FunctionNotFound):
            await d.invoke("f", b"{}", qualifier="2")
    finally:
        await d.aclose()
