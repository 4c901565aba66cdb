"""Control plane, pure logic: FunctionName parsing, the token check, Lambda's error shape, client context."""

from __future__ import annotations

import base64

import pytest

from router.control.auth import check_token, presented_token
from router.control.errors import ApiError, from_dispatch_error
from router.control.invoke import check_client_context
from router.control.names import parse_function_name
from router.control.requests import check_settings
from router.core import errors as E


@pytest.mark.parametrize(
    ("value", "query", "name", "qualifier"),
    [
        ("resize", None, "resize", None),
        ("resize:$LATEST", None, "resize", "$LATEST"),
        ("resize:prod", None, "resize", "prod"),
        ("arn:aws:lambda:us-west-2:123456789012:function:resize", None, "resize", None),
        ("arn:aws:lambda:us-west-2:123456789012:function:resize:$LATEST", None, "resize", "$LATEST"),
        ("123456789012:function:resize", None, "resize", None),
        ("function:resize", None, "resize", None),
        ("resize", "$LATEST", "resize", "$LATEST"),
        ("resize:v1", "v1", "resize", "v1"),
    ],
)
def test_function_names_parse_like_lambda(
    value: str, query: str | None, name: str, qualifier: str | None
) -> None:
    ref = parse_function_name(value, query)
    assert (ref.name, ref.qualifier) == (name, qualifier)


@pytest.mark.parametrize(
    ("value", "query", "needle"),
    [
        ("bad name", None, "regular expression"),
        ("a/b", None, "regular expression"),
        ("", None, "1 to 256"),
        ("resize:v1", "v2", "does not match"),
        ("resize", "bad qualifier!", "Qualifier"),
    ],
)
def test_malformed_function_names_are_invalid_parameters(value: str, query: str | None, needle: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_function_name(value, query)
    assert info.value.status == 400
    assert info.value.error == E.INVALID_PARAMETER_VALUE
    assert needle in info.value.message


def test_latest_is_the_only_existing_qualifier() -> None:
    assert parse_function_name("f:$LATEST").is_latest
    assert parse_function_name("f").is_latest
    assert not parse_function_name("f:prod").is_latest


def test_bearer_and_sigv4_present_the_token() -> None:
    assert presented_token("Bearer s3cret") == "s3cret"
    assert presented_token("bearer  s3cret ") == "s3cret"
    sig = (
        "AWS4-HMAC-SHA256 Credential=s3cret/20240101/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    assert presented_token(sig) == "s3cret"
    assert presented_token("Basic dXNlcjpwYXNz") is None


def test_token_check_answers_401_without_and_403_with_wrong_credentials() -> None:
    assert check_token("Bearer s3cret", "s3cret") is None
    missing = check_token(None, "s3cret")
    assert missing is not None and missing.status == 401
    assert missing.error == "MissingAuthenticationTokenException"
    wrong = check_token("Bearer nope", "s3cret")
    assert wrong is not None and (wrong.status, wrong.error) == (403, "UnrecognizedClientException")
    other_key = check_token(
        "AWS4-HMAC-SHA256 Credential=AKIAOTHER/20240101/us-east-1/lambda/aws4_request", "s3cret"
    )
    assert other_key is not None and other_key.status == 403


def test_error_bodies_spell_message_as_the_lambda_model_does() -> None:
    assert ApiError(404, E.RESOURCE_NOT_FOUND, "gone").body() == {"Type": "User", "Message": "gone"}
    assert ApiError(500, E.SERVICE_EXCEPTION, "oops").body() == {"Type": "Service", "Message": "oops"}
    assert ApiError(400, E.INVALID_REQUEST_CONTENT, "bad").body() == {"Type": "User", "message": "bad"}


def test_throttle_maps_to_429_with_reason_and_retry_after() -> None:
    error = E.Throttled("Rate Exceeded.", reason=E.REASON_RESERVED)
    error.retry_after_s = 0.2
    api = from_dispatch_error(error)
    assert (api.status, api.error) == (429, E.TOO_MANY_REQUESTS)
    assert api.body() == {"Type": "User", "message": "Rate Exceeded.", "Reason": E.REASON_RESERVED}
    assert api.headers["Retry-After"] == "1"


def test_not_found_and_shutting_down_map_to_lambda_errors() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:nope"
    api = from_dispatch_error(E.FunctionNotFound("no such function"), arn=arn)
    assert (api.status, api.error, api.message) == (404, E.RESOURCE_NOT_FOUND, f"Function not found: {arn}")
    down = from_dispatch_error(E.ShuttingDown("the router is shutting down"))
    assert (down.status, down.error, down.body()["Type"]) == (503, E.SERVICE_EXCEPTION, "Service")


def test_client_context_must_be_base64_json_object_within_3583_bytes() -> None:
    good = base64.b64encode(b'{"custom": {"k": "v"}}').decode()
    assert check_client_context(good) == good
    assert check_client_context(None) is None
    for bad in ("not base64!", base64.b64encode(b"[1, 2]").decode(), base64.b64encode(b"{oops").decode()):
        with pytest.raises(ApiError) as info:
            check_client_context(bad)
        assert (info.value.status, info.value.error) == (400, E.INVALID_REQUEST_CONTENT)
    big = base64.b64encode(b'{"k": "' + b"x" * 3000 + b'"}').decode()
    with pytest.raises(ApiError) as info:
        check_client_context(big)
    assert (info.value.status, info.value.error) == (400, E.INVALID_PARAMETER_VALUE)


def test_settings_checks_list_every_problem() -> None:
    with pytest.raises(ApiError) as info:
        check_settings(
            runtime="cobol", memory_size=64, timeout=901, environment={"AWS_REGION": "x", "1BAD": "y"}
        )
    message = info.value.message
    for needle in (
        "'cobol' at 'runtime'",
        "'64' at 'memorySize'",
        "'901' at 'timeout'",
        "AWS_REGION",
        "'1BAD'",
    ):
        assert needle in message
    with pytest.raises(ApiError, match="4KB"):
        check_settings(environment={"BIG": "x" * 4100})
    check_settings(runtime="provided.al2023", handler="bootstrap", memory_size=10240, timeout=900,
                   environment={"AWS_ACCESS_KEY_ID": "local"})  # fmt: skip
