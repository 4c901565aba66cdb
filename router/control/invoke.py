"""Lambda Invoke: `POST /2015-03-31/functions/{FunctionName}/invocations`, and `POST /invoke/{name}` for curl.

Request: FunctionName is a name, name:qualifier, or a full or partial ARN (router.control.names; only
$LATEST exists). Headers: `X-Amz-Invocation-Type` RequestResponse (default) | Event | DryRun;
`X-Amz-Log-Type` None | Tail; `X-Amz-Client-Context` (base64 of a JSON object, at most 3583 bytes, passed to
the function's context on synchronous calls); `X-Amzn-Trace-Id` (passed on as the call's trace id).
The body must be JSON (an empty body is `{}`): at most 6 MB for RequestResponse, 1 MB for Event.

Response:
* RequestResponse: 200, the function's response, `X-Amz-Executed-Version: $LATEST`, `x-amzn-RequestId` =
  the invocation's request id. A function error is still 200, with `X-Amz-Function-Error: Unhandled` and
  Lambda's `{errorMessage, errorType, stackTrace}` body. With Tail, `X-Amz-Log-Result` holds the base64 of
  the last 4 KB of the call's log.
* Event: 202, empty body, once the event is durably queued; `x-amzn-RequestId` is its request id.
* DryRun: 204 when the function exists.
* Service errors (the function did not run) in Lambda's shape (router.control.errors): 404
  ResourceNotFoundException, 429 TooManyRequestsException with Reason and Retry-After, 413
  RequestTooLargeException, 400 InvalidRequestContentException (body or client context not JSON), 400
  InvalidParameterValueException (bad header), 415 UnsupportedMediaTypeException (on the Lambda path, a
  Content-Type that is not JSON, text, bytes or form data; the /invoke alias takes any), 500/503
  ServiceException (503 while the router drains).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

import msgspec
from aiohttp import web

from router.control.errors import (
    REQUEST_ID,
    ApiError,
    from_dispatch_error,
    invalid_parameter,
    not_found,
    too_large,
)
from router.control.names import LATEST, function_arn, parse_function_name
from router.control.plane import PLANE_KEY, ControlPlane
from router.control.requests import check_content_type
from router.core.errors import INVALID_REQUEST_CONTENT, DispatchError

INVOCATION_TYPE = "X-Amz-Invocation-Type"
LOG_TYPE = "X-Amz-Log-Type"
CLIENT_CONTEXT = "X-Amz-Client-Context"
TRACE_ID = "X-Amzn-Trace-Id"
FUNCTION_ERROR = "X-Amz-Function-Error"
LOG_RESULT = "X-Amz-Log-Result"
EXECUTED_VERSION = "X-Amz-Executed-Version"

REQUEST_RESPONSE, EVENT, DRY_RUN = "RequestResponse", "Event", "DryRun"
SYNC_LIMIT = 6 * 1024 * 1024
ASYNC_LIMIT = 1024 * 1024
CLIENT_CONTEXT_LIMIT = 3583
LOG_TAIL = 4096


Headers = Mapping[str, str]  # case-insensitive lookups (aiohttp's CIMultiDictProxy; the front's own dict)


def _invocation_type(headers: Headers) -> str:
    kind = headers.get(INVOCATION_TYPE, REQUEST_RESPONSE)
    if kind not in (REQUEST_RESPONSE, EVENT, DRY_RUN):
        raise invalid_parameter(
            f"1 validation error detected: Value '{kind}' at 'invocationType' failed to satisfy constraint: "
            "Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
        )
    return kind


def _log_tail(headers: Headers) -> bool:
    log_type = headers.get(LOG_TYPE, "None")
    if log_type not in ("None", "Tail"):
        raise invalid_parameter(
            f"1 validation error detected: Value '{log_type}' at 'logType' failed to satisfy constraint: "
            "Member must satisfy enum value set: [None, Tail]"
        )
    return log_type == "Tail"


def check_client_context(value: str | None) -> str | None:
    """The header as given, once checked: at most 3583 bytes of base64 of a JSON object."""
    if value is None:
        return None
    if len(value.encode()) > CLIENT_CONTEXT_LIMIT:
        raise invalid_parameter(
            f"Client context must be at most {CLIENT_CONTEXT_LIMIT} bytes, got {len(value)}"
        )
    try:
        decoded = msgspec.json.decode(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        decoded = None
    if not isinstance(decoded, dict):
        raise ApiError(
            400, INVALID_REQUEST_CONTENT, "Client context must be a valid Base64-encoded JSON object."
        )
    return value


async def read_payload(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to pass `limit` (before buffering all of it)."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit, "Invoke")
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise too_large(limit, "Invoke")
    return bytes(body) or b"{}"


def check_json(payload: bytes) -> None:
    try:
        msgspec.json.decode(payload)
    except msgspec.DecodeError as e:
        raise ApiError(
            400,
            INVALID_REQUEST_CONTENT,
            f"Could not parse request body into json: Could not parse payload into json: {e}",
        ) from None


class InvokeCall(msgspec.Struct, kw_only=True):
    """An Invoke request, checked: everything but the payload."""

    name: str
    arn: str
    kind: str  # RequestResponse | Event | DryRun
    tail: bool
    client_context: str | None
    trace: str | None


def prepare(plane: ControlPlane, name: str, qualifier: str | None, headers: Headers) -> InvokeCall:
    """Check an Invoke request's name, qualifier and headers; raises ApiError."""
    account = plane.config.account
    ref = parse_function_name(name, qualifier)
    arn = function_arn(account.region, account.account_id, ref.name, ref.qualifier)
    if not ref.is_latest:
        raise not_found(arn)  # no published versions or aliases
    return InvokeCall(
        name=ref.name,
        arn=arn,
        kind=_invocation_type(headers),
        tail=_log_tail(headers),
        client_context=check_client_context(headers.get(CLIENT_CONTEXT)),
        trace=headers.get(TRACE_ID),
    )


async def call_sync(plane: ControlPlane, call: InvokeCall, payload: bytes) -> tuple[dict[str, str], bytes]:
    """Run a RequestResponse call (payload already checked): the 200 answer's headers and body."""
    try:
        result = await plane.dispatcher.invoke(
            call.name, payload, client_context=call.client_context, trace=call.trace, source="invoke"
        )
    except DispatchError as e:
        raise from_dispatch_error(e, arn=call.arn) from None
    headers = {EXECUTED_VERSION: LATEST, REQUEST_ID: result.request_id, "Content-Type": "application/json"}
    if result.function_error:
        headers[FUNCTION_ERROR] = result.function_error
    if call.tail:
        headers[LOG_RESULT] = base64.b64encode(result.log[-LOG_TAIL:]).decode()
    return headers, result.payload


async def invoke_lambda(request: web.Request) -> web.Response:
    check_content_type(request.headers.get("Content-Type"))
    return await _invoke(request)


async def invoke_alias(request: web.Request) -> web.Response:
    return await _invoke(request)


async def _invoke(request: web.Request) -> web.Response:
    plane = request.app[PLANE_KEY]
    call = prepare(plane, request.match_info["name"], request.query.get("Qualifier"), request.headers)
    payload = await read_payload(request, ASYNC_LIMIT if call.kind == EVENT else SYNC_LIMIT)
    check_json(payload)
    dispatcher = plane.dispatcher
    if call.kind == REQUEST_RESPONSE:
        headers, body = await call_sync(plane, call, payload)
        return web.Response(body=body, status=200, headers=headers)
    try:
        if call.kind == DRY_RUN:
            dispatcher.check(call.name)
            return web.Response(status=204)
        request_id = await dispatcher.enqueue(call.name, payload, trace=call.trace, source="invoke")
    except DispatchError as e:
        raise from_dispatch_error(e, arn=call.arn) from None
    return web.Response(status=202, headers={REQUEST_ID: request_id})


LAMBDA_ROUTE = "/2015-03-31/functions/{name}/invocations"
ALIAS_ROUTE = "/invoke/{name}"


def add_routes(app: web.Application) -> None:
    app.router.add_post(LAMBDA_ROUTE, invoke_lambda)
    app.router.add_post(ALIAS_ROUTE, invoke_alias)
