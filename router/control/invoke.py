"""Lambda Invoke: `POST /2015-03-31/functions/{FunctionName}/invocations`, and `POST /invoke/{name}` for curl.

Request: FunctionName is a name, name:qualifier, or a full or partial ARN (router.control.names); the
qualifier (or `?Qualifier=`) is $LATEST, a published version or an alias, whose weights pick the version.
Headers: `X-Amz-Invocation-Type` RequestResponse (default) | Event | DryRun;
`X-Amz-Log-Type` None | Tail; `X-Amz-Client-Context` (base64 of a JSON object, at most 3583 bytes, passed to
the function's context on synchronous calls); `X-Amzn-Trace-Id` (passed on as the call's trace id).
The body must be JSON (an empty body is `{}`, nesting is capped at about 1,000 levels): at most 6 MB for
RequestResponse, 1 MB for Event, also once a gzip or deflate Content-Encoding is decoded.

Response:
* RequestResponse: 200, the function's response, `X-Amz-Executed-Version` (the version that ran: `$LATEST`
  or a number), `x-amzn-RequestId` =
  the invocation's request id. A function error is still 200, with `X-Amz-Function-Error: Unhandled` and
  Lambda's `{errorMessage, errorType, stackTrace}` body. With Tail, `X-Amz-Log-Result` holds the base64 of
  the last 4 KB of the call's log.
* Event: 202, empty body, once the event is durably queued; `x-amzn-RequestId` is its request id.
* DryRun: 204 when the function exists.
* Service errors (the function did not run) in Lambda's shape (router.control.errors): 404
  ResourceNotFoundException, 429 TooManyRequestsException with Reason and Retry-After, 413
  RequestTooLargeException, 400 InvalidRequestContentException (body or client context not JSON, or a
  Content-Encoding body that does not decode), 400 InvalidParameterValueException (bad header), 415
  UnsupportedMediaTypeException (on the Lambda path, a Content-Type that is not JSON, text, bytes or form
  data, the /invoke alias takes any; on both, a Content-Encoding other than gzip or deflate), 408
  RequestTimeoutException (a body not received within server.body_timeout_s), 500/503 ServiceException
  (503 while the router drains).
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
    too_large,
)
from router.control.names import function_arn, parse_function_name
from router.control.plane import PLANE_KEY, ControlPlane
from router.control.requests import check_content_type
from router.core.errors import INVALID_REQUEST_CONTENT, DispatchError
from router.edge.bodies import BodyRefused, read_body

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
    """The body, its Content-Encoding decoded (router.edge.bodies), refused with 413 as soon as it is known
    to pass `limit` (before buffering or decoding all of it)."""
    timeout_s = request.app[PLANE_KEY].config.server.body_timeout_s
    try:
        body = await read_body(request, limit=limit, timeout_s=timeout_s)
    except BodyRefused as e:
        if e.status == 413:
            raise too_large(limit, "Invoke") from None
        raise
    return body or b"{}"


def check_json(payload: bytes) -> None:
    try:
        msgspec.json.decode(payload)
    except msgspec.DecodeError as e:
        raise ApiError(
            400,
            INVALID_REQUEST_CONTENT,
            f"Could not parse request body into json: Could not parse payload into json: {e}",
        ) from None
    except RecursionError:
        # JSON depth is capped at the decoder's recursion limit (about 1,000 levels), as Python's json is.
        raise ApiError(
            400,
            INVALID_REQUEST_CONTENT,
            "Could not parse request body into json: Could not parse payload into json: nested too deeply",
        ) from None


class InvokeCall(msgspec.Struct, kw_only=True):
    """An Invoke request, checked: everything but the payload."""

    name: str
    qualifier: str | None  # a published version or alias; None for $LATEST
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
    return InvokeCall(
        name=ref.name,
        qualifier=None if ref.is_latest else ref.qualifier,
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
            call.name,
            payload,
            client_context=call.client_context,
            trace=call.trace,
            source="invoke",
            qualifier=call.qualifier,
        )
    except DispatchError as e:
        raise from_dispatch_error(e, arn=call.arn) from None
    headers = {
        EXECUTED_VERSION: result.executed_version,
        REQUEST_ID: result.request_id,
        "Content-Type": "application/json",
    }
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
            dispatcher.check(call.name, call.qualifier)
            return web.Response(status=204)
        request_id = await dispatcher.enqueue(
            call.name, payload, trace=call.trace, source="invoke", qualifier=call.qualifier
        )
    except DispatchError as e:
        raise from_dispatch_error(e, arn=call.arn) from None
    return web.Response(status=202, headers={REQUEST_ID: request_id})


LAMBDA_ROUTE = "/2015-03-31/functions/{name}/invocations"
ALIAS_ROUTE = "/invoke/{name}"


def add_routes(app: web.Application) -> None:
    app.router.add_post(LAMBDA_ROUTE, invoke_lambda)
    app.router.add_post(ALIAS_ROUTE, invoke_alias)
