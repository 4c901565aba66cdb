"""`router tail [FUNCTION]`: print invocations as they happen, from a running daemon's inspection API.

It reads the cursor (or, with `--last N`, the N newest invocations held), then long-polls
`GET /inspect/.../invocations?after=CURSOR&wait_s=20` and prints one line per invocation:

    2024-05-01T10:00:00.123Z resize 3f1c...e9 src=uploads Event#1 success 12.3ms depth=1

`--events` adds the event and the result as JSON lines under it; `--max N` exits after N invocations (for
scripts). Exit codes: 0 (Ctrl-C or --max reached), 1 when the daemon cannot be reached or answers an error.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any, TextIO

POLL_S = 20


class TailError(Exception):
    pass


class InspectClient:
    def __init__(self, endpoint: str, token: str = "") -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token = token

    def get(self, path: str, timeout: float = POLL_S + 10) -> Any:
        return self.call("GET", path, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None, *, timeout: float = POLL_S + 10) -> Any:
        """One request to the API, its JSON answer; TailError on an error answer or no answer."""
        with self.open(method, path, body, timeout=timeout) as response:
            return json.loads(response.read())

    def open(
        self, method: str, path: str, body: Any = None, *, timeout: float = POLL_S + 10, accept: str = ""
    ) -> Any:
        """The response of one request (a file-like object to read or iterate by line)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.endpoint}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if accept:
            request.add_header("Accept", accept)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            raise TailError(f"{e.code}: {e.read().decode(errors='replace')}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise TailError(f"cannot reach {self.endpoint}: {getattr(e, 'reason', e)}") from None


def invocations_path(function: str | None) -> str:
    if function is None:
        return "/inspect/invocations"
    return f"/inspect/functions/{urllib.parse.quote(function, safe='')}/invocations"


def follow(client: InspectClient, function: str | None, last: int = 0) -> Iterator[dict[str, Any]]:
    """Every invocation from now on (after the `last` newest already held), in order, forever."""
    path = invocations_path(function)
    if last > 0:
        page = client.get(f"{path}?limit={last}")
        yield from page["invocations"]
        cursor = page["cursor"]
    else:
        cursor = client.get("/inspect/cursor")["cursor"]
        if function is not None:
            client.get(f"{path}?after={cursor}")  # a 404 for an unknown function, before waiting
    while True:
        page = client.get(f"{path}?after={cursor}&wait_s={POLL_S}")
        yield from page["invocations"]
        cursor = page["cursor"]


def line(invocation: dict[str, Any]) -> str:
    i = invocation
    kind = "Event" if i["invocation_type"] == "Event" else "Sync"
    attempt = f"#{i['attempt']}" if i["invocation_type"] == "Event" else ""
    outcome = i["outcome"] if not i.get("error_type") else f"{i['outcome']}({i['error_type']})"
    cold = " cold" if i.get("cold") else ""
    return (
        f"{i['time']} {i['function']} {i['request_id'] or '-'} src={i['source'] or '-'} {kind}{attempt} "
        f"{outcome} {i['duration_ms']:.1f}ms depth={i['depth'] or '-'}{cold}"
    )


def run(
    endpoint: str, function: str | None, *, token: str = "", last: int = 0, events: bool = False,
    max_count: int = 0, out: TextIO = sys.stdout,
) -> int:  # fmt: skip
    printed = 0
    try:
        for invocation in follow(InspectClient(endpoint, token), function, last):
            print(line(invocation), file=out)
            if events:
                print(f"  event:  {json.dumps(invocation['event'])}", file=out)
                print(f"  result: {json.dumps(invocation['result'])}", file=out)
            out.flush()
            printed += 1
            if max_count and printed >= max_count:
                return 0
    except TailError as e:
        print(f"router tail: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
