"""Function definitions (revisions, code metadata) and destination records."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path

import msgspec
import pytest

from router.core.errors import ConfigError
from router.core.results import InvocationResult
from router.dispatch import destinations
from router.dispatch.registry import code_digest, definitions_from_config, revision_of
from router.validate import parse_config
from tests.unit.dispatch_fakes import function_config

HANDLER = "def handler(event, context):\n    return event\n"


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def test_revision_changes_with_code_and_launch_settings_only() -> None:
    base = function_config()
    rev = revision_of(base, "sha-1")
    assert revision_of(base, "sha-2") != rev
    for launch in ({"memory_mb": 256}, {"timeout_s": 9}, {"environment": {"A": "1"}}, {"handler": "x.y"}):
        assert revision_of(msgspec.structs.replace(base, **launch), "sha-1") != rev
    same = function_config(reserved_concurrency=3, provisioned_concurrency=1, idle_timeout_s=5,
                           async_={"max_retries": 0})  # fmt: skip
    assert revision_of(same, "sha-1") == rev


def test_definitions_from_config_for_a_folder_and_a_zip(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(HANDLER)
    data = make_zip({"app.py": HANDLER})
    (tmp_path / "code.zip").write_bytes(data)
    config = parse_config(
        """
account: {region: eu-west-1, account_id: "111122223333"}
functions:
  folder: {runtime: python3.11, handler: app.handler, code: src}
  zipped: {runtime: python3.11, handler: app.handler, code: code.zip, memory_mb: 256}
""",
        base_dir=tmp_path,
    )
    defs = definitions_from_config(config, tmp_path / "state")
    folder, zipped = defs["folder"], defs["zipped"]
    assert folder.spec.code_dir == (tmp_path / "src").resolve()
    assert (zipped.spec.code_dir / "app.py").read_text() == HANDLER
    assert zipped.spec.code_dir.is_relative_to(tmp_path / "state")
    assert zipped.code_sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert zipped.code_size == len(data) and folder.code_size == len(HANDLER)
    assert zipped.spec.arn == "arn:aws:lambda:eu-west-1:111122223333:function:zipped"
    assert zipped.spec.memory_mb == 256 and zipped.origin == "config"
    assert zipped.spec.revision == zipped.revision
    assert folder.last_modified.endswith("+0000")
    # Same code, same settings: the same revision on every load (a reload keeps warm instances).
    assert definitions_from_config(config, tmp_path / "state")["zipped"].revision == zipped.revision


def test_a_folder_digest_follows_its_files(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    first = code_digest(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"\0")
    assert code_digest(tmp_path) == first  # byte code does not make a new revision
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_digest(tmp_path) != first


def test_broken_code_is_a_config_error_naming_the_function(tmp_path: Path) -> None:
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    config = parse_config("functions: {}", base_dir=tmp_path)
    config = msgspec.structs.replace(config, functions={"bad": function_config(code="bad.zip")})
    with pytest.raises(ConfigError) as e:
        definitions_from_config(config, tmp_path / "state")
    assert e.value.problems[0].startswith("functions.bad.code:")


def test_invocation_record_shape_and_atomic_file(tmp_path: Path) -> None:
    result = InvocationResult(
        request_id="r-1", payload=b"not json", function_error="Unhandled", error_type="X"
    )
    record = destinations.invocation_record(
        request_id="r-1", function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        condition=destinations.CONDITION_RETRIES_EXHAUSTED, invoke_count=3, request_payload=b'{"a": 1}',
        timestamp=1_700_000_000.25, result=result,
    )  # fmt: skip
    assert record["timestamp"] == "2023-11-14T22:13:20.250Z"
    assert record["requestContext"]["functionArn"].endswith(":function:f:$LATEST")
    assert record["requestPayload"] == {"a": 1}
    assert record["responsePayload"] == "not json"
    path = destinations.write_record_file(
        tmp_path / "dlq", record, name=destinations.record_file_name(record)
    )
    assert path.name == "20231114T221320.250Z-r-1.json"
    assert json.loads(path.read_text()) == record
    assert [p.name for p in (tmp_path / "dlq").iterdir()] == [path.name]  # no temporary file left


async def test_a_destination_that_cannot_take_the_record_raises(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("in the way")
    record = destinations.invocation_record(
        request_id="r", function_arn="arn", condition="Success", invoke_count=1, request_payload=b"{}",
        timestamp=0, result=InvocationResult(request_id="r", payload=b"{}"),
    )  # fmt: skip

    async def enqueue(*_: object, **__: object) -> str:
        raise AssertionError("not a function destination")

    target = destinations.Destination(directory=str(tmp_path / "file" / "sub"))
    with pytest.raises(destinations.DestinationError, match="directory"):
        await destinations.deliver(target, record, resolve=Path, enqueue=enqueue)
