"""Pagination as the Lambda API does it: `MaxItems` per page and an opaque `Marker` (the `NextMarker` of the
previous page), for every List* operation.

`page(request, items, key)` takes the items in their listing order and the key of each (unique, e.g. a
function name, or name and version); the marker is the base64 of the last key returned, and a page starts
after the item with that key. A marker that is not one of ours is InvalidParameterValueException.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from aiohttp import web

from router.control.errors import invalid_parameter

T = TypeVar("T")
DEFAULT_PAGE = 50


def max_items(value: str | None, default: int = DEFAULT_PAGE, limit: int = 10000) -> int:
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        raise invalid_parameter(f"MaxItems must be an integer, got {value!r}") from None
    if not 1 <= n <= limit:
        raise invalid_parameter(f"MaxItems must be between 1 and {limit}, got {n}")
    return n


def encode_marker(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode()


def decode_marker(marker: str) -> str:
    try:
        return base64.b64decode(marker.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_parameter(
            f"Invalid Marker {marker!r}: pass the NextMarker of a previous page"
        ) from None


def page(
    request: web.Request, items: Sequence[T], key: Callable[[T], str], *, default: int = DEFAULT_PAGE
) -> tuple[list[T], str | None]:
    """One page of `items` and the NextMarker (None on the last page)."""
    limit = max_items(request.query.get("MaxItems"), default)
    start = 0
    marker = request.query.get("Marker")
    if marker:
        after = decode_marker(marker)
        keys = [key(item) for item in items]
        start = keys.index(after) + 1 if after in keys else _after(keys, after)
    chunk = list(items[start : start + limit])
    more = start + limit < len(items)
    return chunk, (encode_marker(key(chunk[-1])) if more and chunk else None)


def _after(keys: list[str], after: str) -> int:
    """The marker's item is gone (deleted meanwhile): continue after where it would sort."""
    return next((i for i, k in enumerate(keys) if k > after), len(keys))
