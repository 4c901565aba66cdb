"""Lambda Invoke: `POST /2015-03-31/functions/{name}/invocations` and the curl alias `POST /invoke/{name}`."""

from __future__ import annotations

import base64
import json

from aiohttp import web

from router.errors import DispatchError
from router.control.app import PLANE_KEY

INVOCATION_TYPE = "X-Amz-Invocation-Type"
LOG_TYPE = "X-Amz-Log-Type"
FUNCTION_ERROR = "X-Amz-Function-Error"
LOG_RESULT = "X-Amz-Log-Result"
EXECUTED_VERSION = "X-Amz-Executed-Version"
CLIENT_CONTEXT = "X-Amz-Client-Context"


def lambda_error(status: int, error_type: str, message: str, **extra: str) -> web.Response:
    headers = {"x-amzn-ErrorType": error_type}
    body = {"Type": "User" if status < 500 else "Service", "message": message, **extra}
    return web.json_response(body, status=status, headers=headers)


async def invoke(request: web.Request) -> web.Response:
    plane = request.app[PLANE_KEY]
    name = request.match_info["name"].rsplit(":function:", 1)[-1]
    kind = request.headers.get(INVOCATION_TYPE, "RequestResponse")
    payload = await request.read() or b"{}"
    try:
        json.loads(payload)
    except ValueError:
        return lambda_error(400, "InvalidRequestContentException", "Could not parse request body into json")
    try:
        if kind == "Event":
            await plane.dispatcher.enqueue(name, payload, source="invoke")
            return web.Response(status=202)
        if kind == "DryRun":
            plane.dispatcher.check(name)
            return web.Response(status=204)
        result = await plane.dispatcher.invoke(name, payload, client_context=request.headers.get(CLIENT_CONTEXT))
    except DispatchError as e:
        extra = {"Reason": e.reason} if e.reason else {}
        return lambda_error(e.status, e.api_error, e.message, **extra)
    headers = {EXECUTED_VERSION: "$LATEST", "Content-Type": "application/json"}
    if result.function_error:
        headers[FUNCTION_ERROR] = result.function_error
    if request.headers.get(LOG_TYPE) == "Tail":
        headers[LOG_RESULT] = base64.b64encode(result.log[-4096:]).decode()
    return web.Response(body=result.payload, status=200, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/2015-03-31/functions/{name}/invocations", invoke)
    app.router.add_post("/invoke/{name}", invoke)
