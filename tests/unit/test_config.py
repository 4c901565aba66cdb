"""Config loading: interpolation, decoding, and every problem reported with its path."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from router.config import Config
from router.config.loader import interpolate
from router.core.errors import ConfigError
from router.validate import load_config, parse_config

FN = """
functions:
  f:
    runtime: python3.11
    handler: app.handler
    code: fn
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "index.js").write_text("exports.handler = async (e) => e;\n")
    return tmp_path


def problems(text: str, base: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, base_dir=base, env=env or {})
    return info.value.problems


def test_minimal_config_defaults(base: Path) -> None:
    config = parse_config(FN, base_dir=base, env={})
    f = config.functions["f"]
    assert (f.memory_mb, f.timeout_s, f.event_format, f.async_.max_retries) == (128, 3, "aws", 2)
    assert config.server.port == 9000 and config.account.concurrency == 1000
    assert config.path("fn") == base / "fn"


def test_empty_file_is_a_valid_empty_config(base: Path) -> None:
    assert parse_config("", base_dir=base, env={}) == Config(base_dir=str(base))


def test_interpolation_with_defaults_and_env() -> None:
    errs: list[str] = []
    out = interpolate(
        {"a": "${X}", "b": ["${Y:-dflt}", "x${X}y"], "c": "${EMPTY:-d}"}, {"X": "1", "EMPTY": ""}, errs
    )
    assert out == {"a": "1", "b": ["dflt", "x1y"], "c": "d"}
    assert errs == []


def test_missing_variable_names_its_path(base: Path) -> None:
    assert problems("server: {port: '${NOPE}'}", base) == [
        "server.port: environment variable NOPE is not set (use ${NOPE:-default})"
    ]


def test_interpolated_numbers_are_converted(base: Path) -> None:
    config = parse_config("server: {port: '${P:-9100}'}\n" + FN, base_dir=base, env={"P": "9200"})
    assert config.server.port == 9200


def test_memory_error_message_names_key_range_and_value(base: Path) -> None:
    assert problems(FN + "    memory_mb: big\n", base) == [
        "functions.f.memory_mb: expected an integer between 128 and 10240, got 'big'"
    ]


def test_all_problems_of_one_function_are_listed(base: Path) -> None:
    got = problems(FN + "    memory_mb: 64\n    timeout_s: 0\n    colour: red\n", base)
    assert got[0] == "functions.f.memory_mb: expected an integer between 128 and 10240, got 64"
    assert got[1] == "functions.f.timeout_s: expected an integer between 1 and 900, got 0"
    assert got[2].startswith("functions.f.colour: unknown key (known keys: runtime, handler, code,")


def test_a_function_with_a_bad_value_is_still_checked_further(base: Path) -> None:
    text = FN.replace("code: fn", "code: missing") + "    memory_mb: big\n"
    text += "routes: [{source: nowhere, function: f, batch: {size: 0}}]\n"
    assert problems(text, base) == [
        "functions.f.memory_mb: expected an integer between 128 and 10240, got 'big'",
        "routes[0].batch.size: expected an integer between 1 and 10000, got 0",
        "functions.f.code: 'missing' does not exist",
        "routes[0].source: no source named 'nowhere' (sources: none defined)",
    ]


def test_zip_code_handler_check(base: Path) -> None:
    with zipfile.ZipFile(base / "code.zip", "w") as z:
        z.writestr("main.py", "def handler(e, c): return 1\n")
    ok = FN.replace("code: fn", "code: code.zip").replace("app.handler", "main.handler")
    assert parse_config(ok, base_dir=base, env={}).functions["f"].code == "code.zip"
    bad = FN.replace("code: fn", "code: code.zip")
    assert problems(bad, base) == [
        "functions.f.handler: module 'app' not found in the code (looked for app.py, app/__init__.py)"
    ]


def test_cli_validate_ok_and_exit_codes(base: Path) -> None:
    good = base / "good.yaml"
    good.write_text(FN)
    ok = subprocess.run(
        [sys.executable, "-m", "router", "validate", "-c", str(good)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok (1 functions, 0 sources, 0 routes)" in ok.stdout
    bad = base / "bad.yaml"
    bad.write_text(FN + "    memory_mb: big\n")
    out = subprocess.run(
        [sys.executable, "-m", "router", "validate", "-c", str(bad)], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "functions.f.memory_mb: expected an integer between 128 and 10240, got 'big'" in out.stderr
    assert "Traceback" not in out.stderr


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read config" in info.value.problems[0]


# Each broken config, and the problem lines it must produce (each names the path of the culprit).
BROKEN: list[tuple[str, list[str]]] = [
    ("functions: [1, 2]", ["functions: expected a mapping of name to settings"]),
    ("{{", ["<yaml> line 1"]),
    ("- a\n- b", ["<root>: expected a mapping of sections, got list"]),
    ("server: {port: 70000}", ["server.port: expected an integer between 0 and 65535, got 70000"]),
    ("server: {hots: x}", ["server.hots: unknown key"]),
    ("account: {concurrency: 0}", ["account.concurrency: expected an integer between 1 and 100000, got 0"]),
    ("account: {concurrency: 50, unreserved_min: 100}", ["account.unreserved_min: 100 is more than"]),
    (
        "billing: {granularity_ms: 0}",
        ["billing.granularity_ms: expected an integer between 1 and 60000, got 0"],
    ),
    (FN + "    runtime: ruby3.2\n", ["functions.f.runtime: unknown runtime 'ruby3.2'"]),
    (FN.replace("code: fn", "code: missing"), ["functions.f.code: 'missing' does not exist"]),
    (FN.replace("app.handler", "nodot"), ["functions.f.handler: 'nodot' is not of the form module.function"]),
    (FN.replace("app.handler", "other.handler"), ["functions.f.handler: module 'other' not found"]),
    (FN + "    timeout_s: 901\n", ["functions.f.timeout_s: expected an integer between 1 and 900, got 901"]),
    (
        FN + "    event_format: xml\n",
        ["functions.f.event_format: expected one of 'aws', 'cloudevents', got 'xml'"],
    ),
    (
        FN + "    async: {max_retries: 3}\n",
        ["functions.f.async.max_retries: expected an integer between 0 and 2"],
    ),
    (
        FN + "    async: {max_event_age_s: 10}\n",
        ["functions.f.async.max_event_age_s: expected an integer between 60"],
    ),
    (
        FN + "    reserved_concurrency: -1\n",
        ["functions.f.reserved_concurrency: expected an integer >= 0, got -1"],
    ),
    (
        FN + "    reserved_concurrency: 1\n    provisioned_concurrency: 2\n",
        ["functions.f.provisioned_concurrency: 2 is more than reserved_concurrency 1"],
    ),
    (FN + "    reserved_concurrency: 950\n", ["functions: reserved_concurrency adds up to 950"]),
    (FN + "    environment: {A: [1]}\n", ["functions.f.environment.A: expected a string, got [1]"]),
    (
        FN + "    environment: {BIG: '" + "x" * 5000 + "'}\n",
        ["functions.f.environment: 5003 bytes, over Lambda's 4 KB"],
    ),
    (
        FN + "    async: {on_failure: {}}\n",
        ["functions.f.async.on_failure: give exactly one of directory, function"],
    ),
    (
        FN + "    async: {on_failure: {function: ghost}}\n",
        ["functions.f.async.on_failure.function: no function named"],
    ),
    (FN.replace("f:\n", "bad name!:\n"), ["functions.bad name!: invalid function name"]),
    (
        "sources: {x: {kind: ftp}}",
        ["sources.x.kind: unknown source kind 'ftp' (known kinds: dynamodb, email,"],
    ),
    ("sources: {x: {directory: d}}", ["sources.x.kind: unknown source kind None"]),
    ("sources: {x: {kind: http, port: 9000}}", ["sources.x.port: 9000 is already used by server"]),
    (FN + "routes: [{source: nowhere, function: f}]", ["routes[0].source: no source named 'nowhere'"]),
    (
        FN + "sources: {s: {kind: http, port: 9001}}\nroutes: [{source: s, function: g, http: {path: /}}]",
        ["routes[0].function: no function named 'g'"],
    ),
    (
        FN + "sources: {s: {kind: http, port: 9001}}\nroutes: [{source: s, function: f}]",
        ["routes[0].http: routes from an http source need http"],
    ),
    ("routes: {a: 1}", ["routes: expected a list of routes"]),
    ("routes: [{source: a}]", ["routes[0]: missing required key 'function'"]),
    ("state_dir: [1]", ["state_dir: expected a string, got [1]"]),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN, ids=[f"broken{i}" for i in range(len(BROKEN))])
def test_broken_configs_name_every_problem(base: Path, text: str, expected: list[str]) -> None:
    got = problems(text, base)
    for want in expected:
        assert any(p.startswith(want) for p in got), f"{want!r} not in {got}"


def test_cli_validate_never_tracebacks_on_broken_configs(base: Path) -> None:
    """`router validate` on every broken config: exit 2, problems listed, no traceback."""
    for i, (text, expected) in enumerate(BROKEN):
        path = base / f"broken{i}.yaml"
        path.write_text(text)
        out = subprocess.run(
            [sys.executable, "-m", "router", "validate", "-c", str(path)], capture_output=True, text=True
        )
        assert out.returncode == 2, (text, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        assert expected[0] in out.stderr
