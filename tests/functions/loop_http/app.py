"""Fixture: calls the router's HTTP gateway ($GATEWAY_URL), which routes back to this function.

It forwards its own trace as X-Amzn-Trace-Id, as an instrumented HTTP client does, so the router can count
the chain; the router's answer is passed back up as the status.
"""

import json
import os
import urllib.error
import urllib.request


def handler(event, context):
    request = urllib.request.Request(
        os.environ["GATEWAY_URL"], headers={"X-Amzn-Trace-Id": os.environ["_X_AMZN_TRACE_ID"]}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, inner = response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        status, inner = e.code, e.read().decode()
    return {"statusCode": 200, "body": json.dumps({"status": status, "inner": inner})}
