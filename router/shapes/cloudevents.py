"""CloudEvents 1.0: structured-mode JSON out, and the HTTP binding (binary, structured, batched) in.

* `structured(envelope, data)` is what a function with `event_format: cloudevents` receives for one envelope:
  specversion, id, source, type, subject (when set), time, datacontenttype and `data`, the AWS-shaped event
  the function would otherwise get. A batch is a JSON array of these (application/cloudevents-batch+json).
* `from_http(headers, body)` reads a CloudEvent from an HTTP request as the binding says: Content-Type
  `application/cloudevents-batch+json` -> a list, `application/cloudevents+json` (structured) -> the event,
  otherwise binary mode (`ce-*` headers, body = data, Content-Type = datacontenttype). `is_cloudevent` tells
  whether a request is one at all. Invalid events raise `ValueError` naming what is wrong.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from router.core.envelope import Envelope

SPECVERSION = "1.0"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
_HEADER_PREFIX = "ce-"

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def structured(envelope: Envelope, data: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": envelope.specversion,
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
    }
    if envelope.subject is not None:
        event["subject"] = envelope.subject
    event["time"] = envelope.time
    event["datacontenttype"] = envelope.datacontenttype
    event["data"] = data
    return event


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k).lower(), str(v)) for k, v in items]


def _content_type(pairs: list[tuple[str, str]]) -> str:
    return next((v for k, v in pairs if k == "content-type"), "")


def is_cloudevent(headers: Headers) -> bool:
    pairs = _pairs(headers)
    ctype = _content_type(pairs).lower()
    return ctype.startswith("application/cloudevents") or any(k == "ce-specversion" for k, _ in pairs)


def problems(event: Any) -> list[str]:
    """What makes a decoded structured event invalid (empty when it is a valid CloudEvent 1.0)."""
    if not isinstance(event, dict):
        return [f"a CloudEvent is a JSON object, got {type(event).__name__}"]
    out = [
        f"missing required attribute '{a}'"
        for a in REQUIRED
        if not isinstance(event.get(a), str) or not event[a]
    ]
    if event.get("specversion") not in (None, SPECVERSION) and isinstance(event.get("specversion"), str):
        out.append(f"specversion {event['specversion']!r} is not supported (only {SPECVERSION})")
    if "data" in event and "data_base64" in event:
        out.append("'data' and 'data_base64' are mutually exclusive")
    return out


def _checked(event: Any) -> dict[str, Any]:
    found = problems(event)
    if found:
        raise ValueError("invalid CloudEvent: " + "; ".join(found))
    return event


def from_http(headers: Headers, body: bytes) -> dict[str, Any] | list[dict[str, Any]]:
    pairs = _pairs(headers)
    ctype = _content_type(pairs)
    mime = ctype.split(";", 1)[0].strip().lower()
    if mime in (STRUCTURED, BATCH):
        try:
            decoded = json.loads(body or b"null")
        except ValueError as e:
            raise ValueError(f"invalid CloudEvent: body is not JSON ({e})") from None
        except RecursionError:
            raise ValueError("invalid CloudEvent: body is JSON nested too deeply") from None
        if mime == BATCH:
            if not isinstance(decoded, list):
                raise ValueError("invalid CloudEvent batch: expected a JSON array")
            return [_checked(e) for e in decoded]
        return _checked(decoded)
    return _binary(pairs, ctype, body)


def _binary(pairs: list[tuple[str, str]], ctype: str, body: bytes) -> dict[str, Any]:
    event: dict[str, Any] = {
        k[len(_HEADER_PREFIX) :]: unquote(v) for k, v in pairs if k.startswith(_HEADER_PREFIX)
    }
    if ctype:
        event["datacontenttype"] = ctype
    if body:
        event.update(_data(body, ctype))
    return _checked(event)


def _data(body: bytes, ctype: str) -> dict[str, Any]:
    mime = ctype.split(";", 1)[0].strip().lower()
    if not mime or mime == "application/json" or mime.endswith("+json"):
        try:
            return {"data": json.loads(body)}
        except (ValueError, RecursionError):  # not JSON, or nested too deeply to decode: keep it as is
            pass
    if not mime or mime.startswith("text/") or mime.endswith(("/xml", "+xml")):
        try:
            return {"data": body.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"data_base64": base64.b64encode(body).decode("ascii")}
