"""Which functions the zygote may fork (pure logic; the forking itself is in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.dispatch.registry import definitions_from_config
from router.invoker import launch
from router.invoker.types import FunctionSpec
from router.invoker.zygote import Zygotes
from router.validate import parse_config

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"


def spec(**fields: object) -> FunctionSpec:
    values: dict[str, object] = {"name": "f", "runtime": "python3.11", "handler": "app.handler"}
    values.update(fields)
    values.setdefault("code_dir", FUNCTIONS / "echo")
    return FunctionSpec(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "environment",
    [
        {"PYTHONPATH": "/x"},
        {"LD_PRELOAD": "/x.so"},
        {"LC_ALL": "C"},
        {"LANG": "C"},
        {"MALLOC_ARENA_MAX": "2"},
    ],
)
def test_variables_read_at_process_start_need_a_fresh_interpreter(environment: dict[str, str]) -> None:
    reason = launch.zygote_unfit(spec(environment=environment))
    assert reason is not None and next(iter(environment)) in reason


def test_ordinary_functions_are_forked() -> None:
    assert (
        launch.zygote_unfit(spec(environment={"STAGE": "dev", "TZ": "Europe/Paris", "LANGFUSE": "1"})) is None
    )
    assert launch.zygote_unfit(spec(environment={"LANG": "en_US.UTF-8"})) is None  # the zygote's own


def test_a_lib_folder_or_another_runtime_need_a_fresh_start(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    assert "lib folder" in (launch.zygote_unfit(spec(code_dir=tmp_path)) or "")
    assert "not Python" in (launch.zygote_unfit(spec(runtime="nodejs20.x")) or "")


def test_the_router_setting_and_the_function_setting() -> None:
    on, off = Zygotes(enabled=True), Zygotes(enabled=False)
    assert on.wants(spec()) and not on.wants(spec(python_zygote=False))
    assert not off.wants(spec()) and off.wants(spec(python_zygote=True))
    assert not on.wants(spec(python_zygote=True, environment={"PYTHONHASHSEED": "0"}))


def test_config_keys_reach_the_spec(tmp_path: Path) -> None:
    config = parse_config(
        f"""
        state_dir: {tmp_path}
        invoker: {{python_zygote: false}}
        functions:
          a: {{runtime: python3.11, handler: app.handler, code: {FUNCTIONS / "echo"}, python_zygote: true}}
          b: {{runtime: python3.11, handler: app.handler, code: {FUNCTIONS / "echo"}}}
        """
    )
    assert config.invoker.python_zygote is False
    defs = definitions_from_config(config)
    assert defs["a"].spec.python_zygote is True and defs["b"].spec.python_zygote is None
