"""Lambda's reserved environment variables (router/core/lambda_env.py): the Lambda API refuses the same names
the invoker keeps for itself, and both let a function bring its own credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.control.errors import ApiError
from router.control.requests import check_settings
from router.core import lambda_env
from router.invoker import launch
from router.invoker.types import FunctionSpec

NOT_RESERVED = {"PATH", "LANG", "TZ", "LD_LIBRARY_PATH", "HOME", "NODE_PATH"}


def environment(tmp_path: Path, runtime: str, own: dict[str, str]) -> dict[str, str]:
    spec = FunctionSpec(name="fn", runtime=runtime, handler="app.handler", code_dir=tmp_path, environment=own)
    return launch.environment(spec, runtime_api="127.0.0.1:1", init_type="on-demand", log_stream="s")


@pytest.mark.parametrize("name", sorted(lambda_env.PROTECTED))
def test_the_api_refuses_each_protected_name(name: str) -> None:
    with pytest.raises(ApiError, match=f"Reserved keys used in this request: {name}$"):
        check_settings(environment={name: "x"})


def test_the_api_and_the_invoker_let_credentials_through(tmp_path: Path) -> None:
    credentials = {name: "local" for name in lambda_env.ROLE_CREDENTIALS}
    check_settings(environment=credentials)
    env = environment(tmp_path, "python3.11", credentials)
    assert {k: env[k] for k in credentials} == credentials


@pytest.mark.parametrize("runtime", ["python3.11", "nodejs20.x", "provided.al2023"])
def test_the_invoker_sets_only_reserved_names_and_drops_a_functions_own(tmp_path: Path, runtime: str) -> None:
    plain = environment(tmp_path, runtime, {})
    assert set(plain) - NOT_RESERVED <= lambda_env.PROTECTED
    # The runtimes set the trace per call; Lambda sets no AWS_EXECUTION_ENV for a custom runtime.
    expected = lambda_env.PROTECTED - {"_X_AMZN_TRACE_ID"}
    if runtime.startswith("provided"):
        expected -= {"AWS_EXECUTION_ENV"}
    assert set(plain) - NOT_RESERVED == expected

    spoofed = environment(tmp_path, runtime, {name: "spoof" for name in lambda_env.PROTECTED})
    assert "spoof" not in spoofed.values()
    assert spoofed == plain
