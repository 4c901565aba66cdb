"""Fixture for the HTTP gateway: answers as the request's `mode` query parameter says (v1 and v2 events).

mode=echo (default): 200, the event as a JSON body, two Set-Cookie headers (cookies for 2.0,
    multiValueHeaders for 1.0) and an X-Mode header.
mode=binary: the request body's bytes back, base64 with isBase64Encoded, as application/octet-stream.
mode=status&code=N: an empty reply with status N.
mode=plain: {"plain": "object"} without statusCode (200 JSON with 2.0, malformed with 1.0).
mode=malformed: a statusCode that is no HTTP status.
mode=error: raises RuntimeError.
mode=sleep&seconds=S: sleeps S seconds, then echoes.
mode=hold&file=PATH[&started=PATH2]: creates PATH2 (if given), waits (up to 20 s) until PATH exists, then
    echoes; tests release held calls.
"""

import base64
import json
import os
import time


def _query(event):
    return event.get("queryStringParameters") or {}


def _body_bytes(event):
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


def _echo(event):
    reply = {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Mode": "echo"},
        "body": json.dumps(event),
    }
    if event.get("version") == "2.0":
        reply["cookies"] = ["session=abc; Path=/", "theme=dark"]
    else:
        reply["multiValueHeaders"] = {"Set-Cookie": ["session=abc; Path=/", "theme=dark"]}
    return reply


def handler(event, context):
    query = _query(event)
    mode = query.get("mode", "echo")
    if mode == "binary":
        data = _body_bytes(event)
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(data).decode("ascii"),
            "isBase64Encoded": True,
        }
    if mode == "status":
        return {"statusCode": int(query.get("code", "200")), "body": ""}
    if mode == "plain":
        return {"plain": "object"}
    if mode == "malformed":
        return {"statusCode": "not a status", "body": "x"}
    if mode == "error":
        raise RuntimeError("the function failed")
    if mode == "sleep":
        time.sleep(float(query.get("seconds", "1")))
    if mode == "hold":
        if "started" in query:
            open(query["started"], "w").close()
        deadline = time.monotonic() + 20
        while not os.path.exists(query["file"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    return _echo(event)
