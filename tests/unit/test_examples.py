"""The configs we ship validate, exactly as `router serve` would load them."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.validate import load_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted([*REPO.glob("config/*.yaml"), *REPO.glob("config/examples/*.yaml")])


def test_there_are_examples() -> None:
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_config_validates(path: Path) -> None:
    config = load_config(path, env={})
    assert config.functions and config.sources and config.routes
    for route in config.routes:
        assert route.source in config.sources


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("s3", lambda e: e["Records"][0]["eventSource"] == "aws:s3"),
        ("dynamodb", lambda e: e["Records"][0]["eventSource"] == "aws:dynamodb"),
        ("kinesis", lambda e: e["Records"][0]["eventSource"] == "aws:kinesis"),
        ("kafka", lambda e: e["eventSource"] in ("aws:kafka", "SelfManagedKafka") and e["records"]),
        ("sqs", lambda e: e["Records"][0]["eventSource"] == "aws:sqs"),
        ("sns", lambda e: e["Records"][0]["EventSource"] == "aws:sns"),
        ("ses", lambda e: e["Records"][0]["eventSource"] == "aws:ses"),
        ("schedule", lambda e: e["detail-type"] == "Scheduled Event" and e["source"] == "aws.events"),
        ("http", lambda e: e["version"] == "2.0" and "requestContext" in e),
    ],
)
def test_router_events_prints_each_shape(kind: str, check, capsys) -> None:
    import json

    from router.cli import main

    assert main(["events", "--kind", kind]) == 0
    assert check(json.loads(capsys.readouterr().out))
