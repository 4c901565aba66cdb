"""Request bodies with every cap a listener needs: size, time, and the cost of decoding them.

`await read_body(request, limit=..., timeout_s=...)` returns the whole body of an aiohttp request, or raises
`BodyRefused(status, reason)`:

* 413 when Content-Length says more than `limit` (nothing is read), or the body grows past it;
* 408 when the whole body has not arrived within `timeout_s` (a stalled or trickling client);
* 400 when the framing is broken (chunked encoding, a connection that ends early);
* 415 for a Content-Encoding other than gzip, x-gzip, deflate or identity (RFC 7694), checked before
  reading; stacked codings ("gzip, gzip") are not taken either;
* for gzip and deflate, the body is decoded here (the listeners run aiohttp with auto_decompress off, so
  aiohttp never decodes on its own): 400 when it does not decode (not compressed, corrupt, truncated,
  trailing garbage), 413 when the decoded body passes `limit` (a decompression bomb stops there, having cost
  at most `limit` bytes), 400 when decoding takes longer than `decode_timeout_s`. Decoding runs in steps of
  256 KB of output and yields to the event loop between them, so one body never holds up other requests.

"deflate" is the zlib format (RFC 9110); a raw deflate stream, which some clients send instead, is taken
too (detected by its first bytes, as browsers and aiohttp do). Concatenated gzip members are one body.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING

from aiohttp.http_exceptions import HttpProcessingError

if TYPE_CHECKING:
    from aiohttp import web
    from multidict import CIMultiDictProxy

CODINGS = ("gzip", "x-gzip", "deflate")
DECODE_STEP = 256 * 1024
DECODE_TIMEOUT_S = 10.0
READ_CHUNK = 256 * 1024


class BodyRefused(Exception):
    """The body is not taken: `status` is the HTTP status to answer with, `reason` says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def content_coding(headers: CIMultiDictProxy[str]) -> str | None:
    """The one content coding to undo (None for none or identity); 415 for any other."""
    if "Content-Encoding" not in headers:
        return None
    raw = ",".join(headers.getall("Content-Encoding"))
    codings = [c.strip().lower() for c in raw.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in CODINGS:
        raise BodyRefused(415, f"unsupported Content-Encoding {raw[:100]!r} (gzip or deflate, once)")
    return codings[0]


async def read_body(
    request: web.BaseRequest,
    *,
    limit: int,
    timeout_s: float,
    decode_timeout_s: float = DECODE_TIMEOUT_S,
) -> bytes:
    """The body, decoded, at most `limit` bytes; else BodyRefused (see the module docstring)."""
    coding = content_coding(request.headers)
    if request.content_length is not None and request.content_length > limit:
        raise BodyRefused(413, f"Content-Length {request.content_length} is over the limit of {limit} bytes")
    try:
        raw = await _read_raw(request, limit, timeout_s)
    except TimeoutError:
        raise BodyRefused(408, f"the body did not arrive within {timeout_s:g}s") from None
    except HttpProcessingError as e:
        raise BodyRefused(400, f"malformed body: {_one_line(e.message)}") from None
    except ConnectionError:
        raise BodyRefused(400, "the connection ended before the body did") from None
    if coding is None or not raw:
        return raw
    return await decode(raw, coding, limit=limit, timeout_s=decode_timeout_s)


async def _read_raw(request: web.BaseRequest, limit: int, timeout_s: float) -> bytes:
    if not request.body_exists:
        return b""
    content = request.content
    if content.is_eof():
        # The whole body came with the head (most small requests): nothing to wait for, no timer to arm.
        raw = content.read_nowait(-1)
        if len(raw) > limit:
            raise BodyRefused(413, f"the body is over the limit of {limit} bytes")
        return raw
    body = bytearray()
    async with asyncio.timeout(timeout_s):
        async for chunk in content.iter_chunked(READ_CHUNK):
            body += chunk
            if len(body) > limit:
                raise BodyRefused(413, f"the body is over the limit of {limit} bytes")
    return bytes(body)


async def decode(data: bytes, coding: str, *, limit: int, timeout_s: float = DECODE_TIMEOUT_S) -> bytes:
    """`data` decoded from gzip or deflate, at most `limit` bytes, within `timeout_s`; else BodyRefused."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    inflater = _inflater(coding, data)
    out = bytearray()
    while True:
        try:
            chunk = inflater.decompress(data, DECODE_STEP)
        except zlib.error as e:
            raise BodyRefused(400, f"the body is not valid {coding} ({e})") from None
        out += chunk
        if len(out) > limit:
            raise BodyRefused(413, f"the {coding} body decodes to more than {limit} bytes")
        data = inflater.unconsumed_tail
        if inflater.eof:
            if not inflater.unused_data:
                return bytes(out)
            if coding == "deflate":
                raise BodyRefused(400, "data after the end of the deflate stream")
            data = inflater.unused_data  # the next gzip member
            inflater = _inflater(coding, data)
        elif not data and not chunk:
            raise BodyRefused(400, f"the {coding} body is truncated")
        if loop.time() > deadline:
            raise BodyRefused(400, f"the {coding} body did not decode within {timeout_s:g}s")
        await asyncio.sleep(0)


def _inflater(coding: str, data: bytes) -> zlib._Decompress:
    if coding != "deflate":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]
