"""Numbers in requests, configs and function results are ASCII digits.

`str.isdigit()` is also true of superscripts and circled digits ("²", "①"), which `int()` refuses: a check
with isdigit alone let them through to an `int()` that raised ValueError where a clear refusal was due
(a 500 instead of a 400, a config error without its key, a dropped connection on the Invoke front:
tests/unit/test_control_front.py). Each check now also asks for ASCII.
"""

from __future__ import annotations

import pytest

from router.config.loader import decode_config
from router.control.errors import ApiError
from router.control.layers import _number
from router.control.names import parse_function_name
from router.control.requests import RUNTIMES
from router.sources.http.response import MalformedResult, _status
from router.sources.schedule.expr import ExpressionError, parse_expression


@pytest.mark.parametrize(
    "expression", ["rate(² minutes)", "cron(1² * * * ? *)", "cron(0/² * * * ? *)", "cron(0 0 ? * 1#² *)"]
)
def test_schedule_expressions(expression: str) -> None:
    with pytest.raises(ExpressionError, match=r"not a|must be"):
        parse_expression(expression)


def test_a_layer_version_number() -> None:
    with pytest.raises(ApiError) as e:
        _number("①")
    assert e.value.status == 400
    assert _number("12") == 12


def test_a_gateway_status_code_from_the_function() -> None:
    with pytest.raises(MalformedResult):
        _status("2⁰⁰")
    assert _status("201") == 201


@pytest.mark.parametrize(
    "yaml",
    [
        'account: {account_id: "١٢٣٤٥٦٧٨٩٠١٢"}',  # Arabic-Indic digits: \d took them
        "record: {retention: ٣h}",
    ],
)
def test_config_numbers_are_ascii(yaml: str) -> None:
    loaded = decode_config(yaml)
    assert loaded.config is None and "expected a string matching" in loaded.problems[0]


def test_runtime_names_are_ascii() -> None:
    assert RUNTIMES.match("python3.11") and not RUNTIMES.match("python3.\u0661\u0661")


def test_an_arn_account_is_ascii_digits() -> None:
    account = "\u0661" * 12  # Arabic-Indic digits: \d took them in the FunctionName pattern
    with pytest.raises(ApiError) as e:
        parse_function_name(f"arn:aws:lambda:us-east-1:{account}:function:echo")
    assert e.value.status == 400
    assert parse_function_name("arn:aws:lambda:us-east-1:123456789012:function:echo").name == "echo"
