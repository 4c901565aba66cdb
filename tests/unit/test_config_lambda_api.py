"""Config keys of the Lambda API features: the aws: endpoint, SQS/SNS/EventBridge destinations and dead
letters, layers, and routes pinned to a version or alias; each problem named with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.core.errors import ConfigError
from router.validate import parse_config

QUEUE = "arn:aws:sqs:us-east-1:123456789012:failures"
TOPIC = "arn:aws:sns:us-east-1:123456789012:done"
BUS = "arn:aws:events:us-east-1:123456789012:event-bus/results"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "layer" / "python").mkdir(parents=True)
    return tmp_path


def function(extra: str) -> str:
    return f"""
functions:
  f:
    runtime: python3.11
    handler: app.handler
    code: fn
{extra}
"""


def problems(text: str, base: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, base_dir=base, env={})
    return info.value.problems


def test_aws_section_destinations_dead_letter_layers_and_pinned_routes(base: Path) -> None:
    text = """
aws: {endpoint_url: "http://127.0.0.1:4566", region: eu-west-1, access_key_id: k, secret_access_key: s}
sources:
  web: {kind: http, port: 0}
routes:
  - {source: web, function: "f:live", http: {method: GET, path: /}}
""" + function(f"""    layers: [layer, "arn:aws:lambda:us-east-1:123456789012:layer:common:3"]
    async:
      on_failure: {{sqs: "{QUEUE}"}}
      on_success: {{eventbridge: "{BUS}"}}
      dead_letter: {{sns: "{TOPIC}"}}""")
    config = parse_config(text, base_dir=base, env={})
    assert config.aws.client_args("us-east-1") == {
        "region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:4566",
        "aws_access_key_id": "k", "aws_secret_access_key": "s"}  # fmt: skip
    f = config.functions["f"]
    assert f.async_.on_failure and f.async_.on_failure.sqs == QUEUE
    assert f.async_.dead_letter and f.async_.dead_letter.sns == TOPIC
    assert f.layers[0] == "layer" and config.routes[0].function == "f:live"


def test_problems_are_named(base: Path) -> None:
    text = """
sources:
  web: {kind: http, port: 0}
  k: {kind: kafka, brokers: ["127.0.0.1:1"], topics: [t]}
routes:
  - {source: web, function: "nope:live", http: {method: GET, path: /}}
  - {source: k, function: f, on_error: {destination: {sqs: "arn:aws:sqs:us-east-1:123456789012:q"}}}
""" + function("""    layers: [missing-folder, "arn:aws:lambda:us-east-1:1:layer:bad", a, b, c, d]
    async:
      on_failure: {sns: "not-an-arn"}
      on_success: {sqs: "arn:aws:sqs:us-east-1:123456789012:q", function: f}
      dead_letter: {eventbridge: "default"}""")
    found = problems(text, base)
    expected = [
        "routes[0].function: no function named 'nope'",
        "routes[1].on_error.destination: give exactly one of directory, function, kafka (got sqs)",
        "functions.f.layers: 6 layers, Lambda's limit is 5",
        "functions.f.layers[0]: 'missing-folder' does not exist",
        "functions.f.layers[1]: 'arn:aws:lambda:us-east-1:1:layer:bad' is not a layer version ARN",
        "functions.f.async.on_failure.sns: 'not-an-arn' is not an sns ARN",
        "functions.f.async.on_success: give exactly one of directory, function, kafka, sqs, sns, eventbridge",
        "functions.f.async.dead_letter: give exactly one of sqs, sns (got eventbridge)",
    ]
    for needle in expected:
        assert any(needle in p for p in found), (needle, found)
