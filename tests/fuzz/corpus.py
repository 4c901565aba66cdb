"""Malformed inputs that broke a listener once (issue 17), or could: the regression corpus of the fuzz tier.

Each HTTP case is a whole raw request with `{path}` and `{host}` to fill in, and what each HTTP listener
must answer: the control plane (status and Lambda error type, on the Invoke path) and the gateway (status,
API Gateway's `{"message"}` form, on a `$default` route). `SMTP_CASES` are command lines with the reply
code that must come back, the session going on. bench/soak.py sends these over and over.
"""

from __future__ import annotations

import functools
import gzip
import random
import zlib
from dataclasses import dataclass

INVOKE_PATH = "/2015-03-31/functions/echo/invocations"
TOO_LARGE = "RequestTooLargeException"
BAD_CONTENT = "InvalidRequestContentException"
MEDIA_TYPE = "UnsupportedMediaTypeException"
SERVICE = "ServiceException"
UNKNOWN = "UnknownOperationException"


@dataclass(frozen=True)
class HttpCase:
    name: str
    head: str  # request line and headers, without the blank line; {path} and {host} are filled in
    body: bytes = b""
    control: tuple[int, str] = (400, BAD_CONTENT)  # status and x-amzn-ErrorType on the Invoke path
    gateway: int = 400

    def raw(self, path: str, host: str = "127.0.0.1") -> bytes:
        head = self.head.format(path=path, host=host)
        if self.body and "Content-Length" not in head and "Transfer-Encoding" not in head:
            head += f"\r\nContent-Length: {len(self.body)}"
        return head.encode("latin-1") + b"\r\n\r\n" + self.body


@functools.cache
def _truncated_deflate() -> bytes:
    """A 1 MB deflate stream (of incompressible bytes) cut short: it never ends (issue 17, finding 2)."""
    return zlib.compress(random.Random(17).randbytes(1024 * 1024))[:-100]


@functools.cache
def _deflate_bomb() -> bytes:
    return zlib.compress(b"\0" * (20 * 1024 * 1024), 9)  # 20 KB that decode to 20 MB


GET = "GET {path} HTTP/1.1\r\nHost: {host}"
POST = "POST {path} HTTP/1.1\r\nHost: {host}"
LONG = "a" * 9000
LARGE = (413, TOO_LARGE)


def _post(encoding: str) -> str:
    return f"{POST}\r\nContent-Type: application/json\r\nContent-Encoding: {encoding}"


def http_cases() -> list[HttpCase]:
    return [
        HttpCase("gzip-not-compressed", _post("gzip"), b'{"a": 1}'),
        HttpCase("deflate-not-compressed", _post("deflate"), b'{"a": 1}'),
        HttpCase("deflate-1mb-truncated", _post("deflate"), _truncated_deflate()),
        HttpCase("gzip-corrupt", _post("gzip"), gzip.compress(b'{"a": 1}')[:-6] + b"garbage"),
        HttpCase("deflate-bomb", _post("deflate"), _deflate_bomb(), LARGE, 413),
        HttpCase("encoding-br", _post("br"), b"{}", (415, MEDIA_TYPE), 415),
        HttpCase("encoding-stacked", _post("gzip, gzip"), gzip.compress(b"{}"), (415, MEDIA_TYPE), 415),
        HttpCase(
            "url-too-long", f"GET /{LONG} HTTP/1.1\r\nHost: {{host}}", control=(414, TOO_LARGE), gateway=414
        ),
        HttpCase("header-too-long", f"{GET}\r\nX-Long: {LONG}", control=(431, TOO_LARGE), gateway=431),
        HttpCase("header-name-too-long", f"{GET}\r\nX-{LONG}: 1", control=(431, TOO_LARGE), gateway=431),
        HttpCase(
            "too-many-headers",
            GET + "".join(f"\r\nX-H{i}: {i}" for i in range(200)),
            control=(431, TOO_LARGE),
            gateway=431,
        ),
        HttpCase("bad-request-line", "GARBAGE"),
        HttpCase("bad-method", "G(T {path} HTTP/1.1\r\nHost: {host}"),
        HttpCase("unknown-method", "FROB {path} HTTP/1.1\r\nHost: {host}"),
        HttpCase("invalid-url", "GET http://[::1 HTTP/1.1\r\nHost: {host}"),
        HttpCase("nul-in-url", "GET /a\x00b HTTP/1.1\r\nHost: {host}"),
        HttpCase("bad-version", "GET {path} HTTP/9.9\r\nHost: {host}", control=(505, SERVICE), gateway=505),
        HttpCase(
            "http-2-in-text", "GET {path} HTTP/2.0\r\nHost: {host}", control=(505, SERVICE), gateway=505
        ),
        HttpCase("http-0.9", "GET {path}\r\nHost: {host}", control=(505, SERVICE), gateway=505),
        HttpCase("no-host", "GET {path} HTTP/1.1"),
        HttpCase("bad-content-length", f"{POST}\r\nContent-Length: 1x", b"{}"),
        HttpCase("two-content-lengths", f"{POST}\r\nContent-Length: 2\r\nContent-Length: 3", b"{}"),
        HttpCase(
            "chunked-and-content-length",
            f"{POST}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
            b"0\r\n\r\n",
        ),
        HttpCase("bad-chunk-size", f"{POST}\r\nTransfer-Encoding: chunked", b"zz\r\n{}\r\n0\r\n\r\n"),
        HttpCase("tls-on-plain-port", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
        HttpCase("header-without-colon", GET + "\r\nno colon here"),
        HttpCase("unknown-expect", f"{POST}\r\nExpect: 0", b"{}", control=(417, BAD_CONTENT), gateway=417),
    ]


def deep_json(depth: int = 100_000) -> bytes:
    """`[` x depth then `]` x depth: a RecursionError in the JSON decoder once (issue 17, finding 3)."""
    return b"[" * depth + b"]" * depth


SMTP_CASES: list[tuple[str, str]] = [
    ("MAIL FROM:x@", "501"),  # issue 17: `500 Error: (IndexError)` and a traceback
    ("MAIL FROM:<@[ ", "501"),
    ("RCPT TO:x@", "501"),
    ("RCPT TO:<x@", "501"),
    ("VRFY <@", "501"),
    ("MAIL FROM:<" + "a" * 600 + "@example.test>", "500"),  # command line too long
    ("FROB", "500"),
    ("\x00\xff", "500"),
    ("MAIL FROM:<a@example.test> SIZE=x", "501"),
    ("DATA", "503"),
]
