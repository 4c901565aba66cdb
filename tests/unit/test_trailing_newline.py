"""A value with a trailing newline is refused wherever a pattern checks a name.

Python's `$` also matches just before a final newline, so `re.match(r"^name$", "name\\n")` succeeds: a
function named "echo\\n" (CreateFunction), a handler "app.handler\\n", an environment variable "A\\n", an
account id or a reply header name with a newline passed these checks and broke later (paths, headers, the
handler lookup). The patterns now end in `\\Z`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from router.control.errors import ApiError
from router.control.names import parse_function_name
from router.control.requests import check_settings
from router.core.errors import ConfigError
from router.validate import parse_config

ECHO = Path(__file__).resolve().parents[1] / "functions" / "echo"
FUNCTION = f"{{runtime: python3.11, handler: app.handler, code: {ECHO}}}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f'functions: {{"echo\\n": {FUNCTION}}}', "invalid function name"),
        ('account: {account_id: "123456789012\\n"}', "account.account_id"),
        (
            f"functions: {{f: {FUNCTION}}}\n"
            'sources: {web: {kind: http, port: 0, request_id_header: "X-Id\\n"}}',
            "sources.web.request_id_header",
        ),
        (
            f'functions: {{f: {FUNCTION}}}\nsources: {{web: {{kind: http, port: 0, stage: "prod\\n"}}}}',
            "sources.web.stage",
        ),
        (
            f'functions: {{f: {FUNCTION}}}\nsources: {{b: {{kind: s3, bucket: "photos\\n", directory: .}}}}',
            "sources.b.bucket",
        ),
    ],
)
def test_config_names_with_a_trailing_newline_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert problem in str(caught.value)


def test_the_config_message_shows_the_pattern_as_usual() -> None:
    with pytest.raises(ConfigError, match=r"expected a string matching \^\[0-9\]\{12\}\$, got '1234'"):
        parse_config('account: {account_id: "1234"}')


ARN = "arn:aws:lambda:us-east-1:123456789012:function:echo"


@pytest.mark.parametrize("name", ["echo\n", "echo:live\n", f"{ARN}\n"])
def test_function_names_with_a_trailing_newline_are_refused(name: str) -> None:
    assert parse_function_name(name.rstrip("\n")).name == "echo"
    with pytest.raises(ApiError) as caught:
        parse_function_name(name)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "settings",
    [{"handler": "app.handler\n"}, {"runtime": "python3.11\n"}, {"environment": {"STAGE\n": "x"}}],
)
def test_function_settings_with_a_trailing_newline_are_refused(settings: dict[str, object]) -> None:
    fixed = {k: v.rstrip("\n") if isinstance(v, str) else {"STAGE": "x"} for k, v in settings.items()}
    check_settings(**fixed)  # type: ignore[arg-type]
    with pytest.raises(ApiError) as caught:
        check_settings(**settings)  # type: ignore[arg-type]
    assert caught.value.status == 400
