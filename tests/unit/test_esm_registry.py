"""Event source mappings in the control plane, without a daemon: Lambda's value rules, a mapping as a source
and route, config-file routes as read-only mappings, and the State a mapping reports as the daemon (a fake
port here) catches up; persisted records survive a new registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from router.config.sources import KafkaConfig, KinesisConfig, SqsConfig
from router.control.errors import ApiError, not_found
from router.control.mappings.model import CreateIn, MappingRecord, UpdateIn, check
from router.control.mappings.port import MappedSource, Running
from router.control.mappings.registry import MappingNotFound, MappingRegistry
from router.control.mappings.translate import config_mappings, mapped_source, source_name
from router.sources.sqs import route_problems
from router.validate import parse_config

QUEUE = "arn:aws:sqs:eu-west-1:123456789012:orders"
STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"


def config(tmp_path: Path, extra: str = "") -> Any:
    (tmp_path / "app.py").write_text("def handler(e, c): return e\n")
    return parse_config(
        f"""
aws: {{endpoint_url: "http://127.0.0.1:5000", access_key_id: k, secret_access_key: s}}
functions:
  fn: {{runtime: python3.11, handler: app.handler, code: "{tmp_path}"}}
{extra}""",
        base_dir=tmp_path,
    )


def problems(kind: str, **fields: Any) -> str:
    record = MappingRecord(uuid="u", function_name="fn", **fields)
    with pytest.raises(ApiError) as e:
        check(record, kind, fifo=bool(fields.pop("fifo", False)))
    assert e.value.error == "InvalidParameterValueException"
    return e.value.message


def test_lambdas_value_rules() -> None:
    assert "between 1 and 10000" in problems("sqs", batch_size=20000)
    assert "greater than 0 if maximum batch size is greater than 10" in problems("sqs", batch_size=20)
    assert "StartingPosition is not valid for SQS" in problems(
        "sqs", batch_size=10, starting_position="LATEST"
    )
    assert "Unsupported MaximumRetryAttempts" in problems("sqs", batch_size=10, max_retries=3)
    assert "Unsupported DestinationConfig" in problems("sqs", batch_size=10, on_failure="arn:aws:sqs:x:1:q")
    assert "StartingPosition is required" in problems("kinesis")
    assert "StartingPositionTimestamp is required" in problems("kinesis", starting_position="AT_TIMESTAMP")
    assert "must be one of TRIM_HORIZON, LATEST" in problems("dynamodb", starting_position="AT_TIMESTAMP")
    assert "not JSON" in problems("kinesis", starting_position="LATEST", filters=["{nope"])
    assert "ScalingConfig applies to SQS" in problems(
        "kinesis", starting_position="LATEST", max_concurrency=5
    )
    check(MappingRecord(uuid="u", function_name="fn", batch_size=100, starting_position="LATEST"), "kinesis")


def test_a_fifo_queue_takes_batches_of_ten_at_most() -> None:
    record = MappingRecord(uuid="u", function_name="fn", batch_size=11, window_s=1)
    check(record, "sqs")
    with pytest.raises(ApiError, match="FIFO"):
        check(record, "sqs", fifo=True)


def test_a_mapping_runs_as_a_source_and_route_of_its_kind(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    sqs = mapped_source(
        "esm-1",
        MappingRecord(
            uuid="1", function_name="fn", event_source_arn=QUEUE, batch_size=5,
            response_types=["ReportBatchItemFailures"], max_concurrency=3,
            filters=['{"body": {"t": ["order"]}}'],
        ),
        cfg,
    )  # fmt: skip
    assert isinstance(sqs.settings, SqsConfig)
    assert (sqs.settings.queue_arn, sqs.settings.region, sqs.settings.max_concurrency) == (
        QUEUE,
        "eu-west-1",
        3,
    )
    assert sqs.settings.endpoint == "http://127.0.0.1:5000" and sqs.settings.access_key_id == "k"
    assert sqs.route.batch.size == 5 and sqs.route.on_error.report_batch_item_failures
    assert sqs.route.filter == [{"body": {"t": ["order"]}}]
    assert route_problems(sqs.route, "r") == []  # what the SQS kind accepts from a config file

    kinesis = mapped_source(
        "esm-2",
        MappingRecord(
            uuid="2", function_name="fn", event_source_arn=STREAM, starting_position="TRIM_HORIZON",
            max_retries=2, bisect=True, on_failure="arn:aws:lambda:us-east-1:123456789012:function:fn",
        ),
        cfg,
    )  # fmt: skip
    assert (
        isinstance(kinesis.settings, KinesisConfig) and kinesis.settings.starting_position == "TRIM_HORIZON"
    )
    assert kinesis.route.on_error.max_retries == 2 and kinesis.route.on_error.bisect
    assert kinesis.route.on_error.destination.function == "fn"

    kafka = mapped_source(
        "esm-3",
        MappingRecord(
            uuid="3", function_name="fn", kafka_brokers=["b:9092"], topics=["t"], starting_position="LATEST"
        ),
        cfg,
    )
    assert isinstance(kafka.settings, KafkaConfig)
    assert (kafka.settings.brokers, kafka.settings.topics, kafka.settings.group) == (["b:9092"], ["t"], "3")


def test_config_routes_are_listed_with_stable_uuids(tmp_path: Path) -> None:
    extra = """
sources:
  q: {kind: sqs, queue: orders}
  k: {kind: kafka, brokers: ["b:1"], topic: t, group: g}
  s: {kind: schedule, expression: "rate(1 minute)"}
routes:
  - {source: q, function: fn, batch: {size: 4}}
  - {source: k, function: fn}
  - {source: k, function: fn, enabled: false}
  - {source: s, function: fn}
"""
    listed = config_mappings(config(tmp_path, extra))
    assert [(m.source, m.route_enabled) for m in listed] == [("q", True), ("k", True), ("k", False)]
    q, k1, k2 = (m.record for m in listed)
    assert q.event_source_arn == "arn:aws:sqs:us-east-1:123456789012:orders" and q.batch_size == 4
    assert (k1.consumer_group_id, k2.consumer_group_id) == (
        "g-fn",
        "g-fn-2",
    )  # as the Kafka source names them
    again = config_mappings(config(tmp_path, extra))
    assert [m.record.uuid for m in again] == [q.uuid, k1.uuid, k2.uuid]


class FakePort:
    def __init__(self) -> None:
        self.wanted: dict[str, MappedSource | None] = {}
        self.running: dict[str, Running] = {}

    def apply(self, mappings: Mapping[str, MappedSource | None]) -> None:
        self.wanted = dict(mappings)

    def status(self, name: str) -> Running:
        return self.running.get(name, Running())

    def catch_up(self) -> None:
        self.running = {n: Running(m, ready=True) for n, m in self.wanted.items() if m is not None}


class Catalog:
    """The FunctionCatalog calls the registry makes: the config's functions stand in for definitions."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def require(self, name: str) -> Any:
        if name not in self.cfg.functions:
            raise not_found(name)
        return SimpleNamespace(config=self.cfg.functions[name])

    def arn(self, name: str, qualifier: str | None = None) -> str:
        return name


async def test_states_follow_the_daemon_and_records_persist(tmp_path: Path) -> None:
    cfg, port = config(tmp_path), FakePort()
    registry = MappingRegistry(cfg, tmp_path / "state", Catalog(cfg), port)  # type: ignore[arg-type]
    await registry.start()
    req = CreateIn(function_name="fn", event_source_arn=STREAM, starting_position="LATEST")
    created = await registry.create(req)
    uid = created["UUID"]
    assert created["State"] == "Creating" and source_name(uid) in port.wanted
    assert registry.describe(uid)["State"] == "Creating"
    port.catch_up()
    assert registry.describe(uid)["State"] == "Enabled"

    updated = await registry.update(uid, UpdateIn(batch_size=50))
    assert updated["State"] == "Updating" and registry.describe(uid)["State"] == "Updating"
    port.catch_up()
    assert registry.describe(uid)["State"] == "Enabled"

    assert (await registry.update(uid, UpdateIn(enabled=False)))["State"] == "Disabling"
    assert port.wanted[source_name(uid)] is None
    assert registry.describe(uid)["State"] == "Disabling"
    port.catch_up()
    assert registry.describe(uid)["State"] == "Disabled"

    reopened = MappingRegistry(cfg, tmp_path / "state", Catalog(cfg), FakePort())  # type: ignore[arg-type]
    await reopened.start()
    assert reopened.describe(uid)["BatchSize"] == 50

    assert (await registry.delete(uid))["State"] == "Deleting"
    assert source_name(uid) not in port.wanted
    with pytest.raises(MappingNotFound):
        registry.describe(uid)
    assert not list((tmp_path / "state" / "event-source-mappings").glob("*.json"))
