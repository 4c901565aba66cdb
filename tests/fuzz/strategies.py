"""Hypothesis strategies for malformed requests: HTTP messages broken in every part, SMTP command lines.

`http_requests(paths)` builds raw requests from parts that are each sometimes valid and sometimes not: the
method (known, unknown, garbage), the target (one of `paths`, or long, spaced, percent-broken, NUL), the
version, line endings, header names and values (Content-Length right, wrong or junk; chunked framing right
or broken; Content-Encoding gzip/deflate/unknown with bodies that are or are not compressed), the body.
Content-Length is mostly the real length, so that most requests end and are answered rather than waited on.
"""

from __future__ import annotations

import gzip
import zlib

from hypothesis import strategies as st

METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "PROPFIND"]
TOKENS = st.text(alphabet=st.characters(codec="ascii"), min_size=0, max_size=12)


def _target(paths: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(paths),
        st.sampled_from(paths).map(lambda p: p + "?" + "&" * 3 + "a=%zz&b=%00"),
        st.text(max_size=40).map(lambda t: "/" + t),
        st.sampled_from(["*", "http://[::1", "example.test:443", "/" + "a" * 9000, "//../../etc/passwd"]),
    )


def _body() -> st.SearchStrategy[tuple[bytes, str | None]]:
    raw = st.binary(max_size=300)
    return st.one_of(
        raw.map(lambda b: (b, None)),
        st.sampled_from([b"{}", b'{"a": [1, 2]}', b"[" * 2000 + b"]" * 2000, b"null"]).map(
            lambda b: (b, None)
        ),
        raw.map(lambda b: (gzip.compress(b), "gzip")),
        raw.map(lambda b: (zlib.compress(b), "deflate")),
        raw.map(lambda b: (zlib.compress(b)[:-3], "deflate")),
        st.tuples(
            raw, st.sampled_from(["gzip", "deflate", "br", "zstd", "gzip, deflate", "x-gzip", "identity"])
        ),
    )


def _chunked(body: bytes, broken: bool) -> bytes:
    if not broken:
        return (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    return b"zz\r\n" + body + b"\r\n0\r\n\r\n"


PARTS = ["nothing", "method", "target", "version", "eol", "host", "headers", "framing", "body", "all"]


@st.composite
def http_requests(draw: st.DrawFn, paths: list[str]) -> bytes:
    """A request with one part broken (or none, or all), so that every layer of a listener gets its share."""
    broken = draw(st.sampled_from(PARTS))
    if broken == "all" and draw(st.booleans()):
        return draw(st.binary(min_size=1, max_size=200)) + b"\r\n\r\n"  # not HTTP at all

    def part(name: str, good: st.SearchStrategy[str], junk: st.SearchStrategy[str]) -> str:
        return draw(junk if broken in (name, "all") else good)

    method = part(
        "method", st.sampled_from(["GET", "POST", "PUT", "DELETE"]), st.sampled_from(METHODS) | TOKENS
    )
    target = part("target", st.sampled_from(paths), _target(paths))
    version = part(
        "version", st.just("HTTP/1.1"), st.sampled_from(["HTTP/1.0", "HTTP/2.0", "HTTP/1.x", "", "http/1.1"])
    )
    eol = part("eol", st.just("\r\n"), st.sampled_from(["\n", "\r\n\r\n", " \r\n"]))
    body, encoding = (
        draw(_body()) if broken in ("body", "all") else (draw(st.sampled_from([b"{}", b"", b"[1]"])), None)
    )
    headers = [] if broken in ("host", "all") and draw(st.booleans()) else [("Host", "fuzz.test")]
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    framing = part(
        "framing", st.just("length"), st.sampled_from(["chunked", "broken-chunked", "junk", "none"])
    )
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "junk":
        headers.append(
            ("Content-Length", draw(st.sampled_from(["-1", "1x", "0x10", "1_0", " ", "+3", "9" * 30])))
        )
    elif framing != "none":
        headers.append(("Transfer-Encoding", "chunked"))
        body = _chunked(body, broken=framing == "broken-chunked")
    if broken in ("headers", "all"):
        names = TOKENS | st.sampled_from(["Expect", "Connection", "Content-Type", "X-A b", "X-" + "h" * 9000])
        headers += draw(st.lists(st.tuples(names, st.text(max_size=30)), max_size=4))
    head = f"{method} {target} {version}".rstrip() + "".join(f"{eol}{k}: {v}" for k, v in headers)
    return head.encode("utf-8", "surrogateescape") + (eol + eol).encode() + body


SMTP_LINES = st.one_of(
    st.sampled_from(
        ["MAIL FROM:", "RCPT TO:", "VRFY ", "EHLO ", "HELO ", "AUTH ", "STARTTLS", "DATA", "BDAT "]
    ).flatmap(lambda verb: st.text(max_size=60).map(lambda arg: verb + arg)),
    st.text(max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
)
