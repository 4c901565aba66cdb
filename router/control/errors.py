"""Lambda's service-error wire shape, and the middleware that gives every control-plane response a request id.

An AWS SDK decides which exception to raise from the `x-amzn-ErrorType` header (botocore's rest-json parser
reads it before the body), takes the message from `message` or `Message` in the JSON body, and copies the
modeled members of that error (`Type`, `Reason`, `retryAfterSeconds` from `Retry-After`) into the response.
So every service error here is:

    HTTP <status>
    x-amzn-ErrorType: <ErrorName>
    x-amzn-RequestId: <uuid>
    Content-Type: application/json

    {"Type": "User" | "Service", "message": "...", ...extra members}

with the message key spelled as Lambda's model spells it for that error (`Message` for
ResourceNotFoundException and ServiceException, `message` for the others).

Handlers raise `ApiError`; `error_middleware` turns it (and aiohttp's own 404/405/413, a body refused by
router.edge.bodies, and any unexpected exception, as a logged ServiceException) into that shape. Requests
refused before they reach a handler (malformed HTTP, router.edge.http) get the same shape from `refusal`:
400 InvalidRequestContentException, 408 RequestTimeoutException, 413/414/431 RequestTooLargeException,
415 UnsupportedMediaTypeException, 5xx ServiceException. Every refusal of malformed input is logged by
the app's `RejectLog` (REJECTS_KEY): one rate-limited line, no traceback. A `DispatchError` (the function
did not run) maps through `from_dispatch_error`, keeping its status, error name, and throttle reason.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from router.core import errors as E
from router.edge.bodies import BodyRefused
from router.edge.rejects import RejectLog

log = logging.getLogger("router.control")

REQUEST_ID = "x-amzn-RequestId"
ERROR_TYPE = "x-amzn-ErrorType"
RETRY_AFTER = "Retry-After"
REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("request_id", str)
MAX_BODY_KEY: web.AppKey[int] = web.AppKey("max_body_bytes", int)
REJECTS_KEY: web.AppKey[RejectLog] = web.AppKey("rejects", RejectLog)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Errors whose model spells the message member with a capital M (botocore reads either; SDKs in other
# languages read the modeled one).
_CAPITAL_MESSAGE = {E.RESOURCE_NOT_FOUND, E.SERVICE_EXCEPTION, E.INVALID_ZIP_FILE, E.PRECONDITION_FAILED}


class ApiError(Exception):
    """A Lambda service error: HTTP status, error name (x-amzn-ErrorType), message, extra body members."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        key = "Message" if self.error in _CAPITAL_MESSAGE else "message"
        return {"Type": "User" if self.status < 500 else "Service", key: self.message, **self.extra}

    def wire(self, request_id: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of the answer, for the front (router/control/front.py)."""
        headers = {
            ERROR_TYPE: self.error,
            REQUEST_ID: request_id,
            "Content-Type": "application/json; charset=utf-8",
        }
        headers.update(self.headers)
        return self.status, headers, json.dumps(self.body()).encode()

    def response(self, request_id: str) -> web.Response:
        status, headers, body = self.wire(request_id)
        return web.Response(body=body, status=status, headers=headers)


def invalid_parameter(message: str) -> ApiError:
    return ApiError(400, E.INVALID_PARAMETER_VALUE, message)


def query_number(request: web.Request, key: str, default: float, low: float, high: float) -> float:
    """A number from the query string, `default` when absent; 400 InvalidParameterValueException when it is
    not a number from `low` to `high`."""
    raw = request.query.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise invalid_parameter(f"{key}: expected a number, got {raw!r}") from None
    if not low <= value <= high:
        raise invalid_parameter(f"{key}: expected a number from {low:g} to {high:g}, got {raw!r}")
    return value


def not_found(arn: str) -> ApiError:
    return ApiError(404, E.RESOURCE_NOT_FOUND, f"Function not found: {arn}")


def conflict(message: str) -> ApiError:
    return ApiError(409, E.RESOURCE_CONFLICT, message)


def too_large(limit: int, operation: str) -> ApiError:
    return ApiError(
        413, E.REQUEST_TOO_LARGE, f"Request must be smaller than {limit} bytes for the {operation} operation"
    )


def precondition_failed() -> ApiError:
    return ApiError(
        412,
        E.PRECONDITION_FAILED,
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    )


def invalid_json() -> ApiError:
    return ApiError(400, E.INVALID_REQUEST_CONTENT, "Could not parse request body into json")


def refusal(status: int, reason: str) -> ApiError:
    """The Lambda error for input refused at the edge: malformed HTTP, or a body that is not taken."""
    if status in (413, 414, 431):
        error = E.REQUEST_TOO_LARGE
    elif status == 415:
        error = E.UNSUPPORTED_MEDIA_TYPE
    elif status == 408:
        error = E.REQUEST_TIMEOUT
    elif status >= 500:
        error = E.SERVICE_EXCEPTION
    else:
        error = E.INVALID_REQUEST_CONTENT
    return ApiError(status, error, f"The request was refused: {reason}")


def render_refusal(status: int, reason: str) -> web.Response:
    """`refusal` as a response, for requests refused before any handler (router.edge.http.Guard.render)."""
    return refusal(status, reason).response(str(uuid.uuid4()))


def from_dispatch_error(e: E.DispatchError, *, arn: str | None = None) -> ApiError:
    """The Lambda API error for a call that did not run (throttled, no such function, shutting down)."""
    if isinstance(e, E.FunctionNotFound) and arn is not None:
        return not_found(arn)
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if e.reason:
        extra["Reason"] = e.reason
    retry_after = getattr(e, "retry_after_s", None)
    if e.status == 429:
        # SDKs back off on 429; a whole-second hint, as Lambda sends it.
        headers[RETRY_AFTER] = str(max(1, math.ceil(retry_after or 1)))
    return ApiError(e.status, e.api_error, e.message, extra=extra, headers=headers)


def _from_http_exception(e: web.HTTPException, request: web.Request) -> ApiError:
    if e.status == 413:
        limit = request.app.get(MAX_BODY_KEY, 0)
        return ApiError(
            413, E.REQUEST_TOO_LARGE, f"Request must be smaller than {limit} bytes (server.max_body_mb)"
        )
    if e.status in (404, 405):
        return ApiError(
            e.status,
            E.UNKNOWN_OPERATION,
            f"No operation at {request.method} {request.path} (router implements "
            "Invoke, function management, concurrency and account settings of the Lambda API)",
        )
    return ApiError(e.status, E.INVALID_PARAMETER_VALUE if e.status < 500 else E.SERVICE_EXCEPTION, e.reason)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id, and answer every failure in Lambda's error shape with that id."""
    request_id = str(uuid.uuid4())
    request[REQUEST_ID_KEY] = request_id
    try:
        response = await handler(request)
    except ApiError as e:
        return e.response(request_id)
    except BodyRefused as e:
        rejects = request.app.get(REJECTS_KEY)
        if rejects is not None:
            rejects.refused(request.remote, e.status, e.reason)
        return refusal(e.status, e.reason).response(request_id)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        response = _from_http_exception(e, request).response(request_id)
        if request.method == "CONNECT":
            response.force_close()  # aiohttp would keep a CONNECT's connection open as a tunnel
        return response
    except Exception:
        log.exception(
            "control plane: unexpected error",
            extra={"fields": {"path": request.path, "request_id": request_id}},
        )
        return ApiError(500, E.SERVICE_EXCEPTION, "The router failed to process the request").response(
            request_id
        )
    response.headers.setdefault(REQUEST_ID, request_id)
    return response
