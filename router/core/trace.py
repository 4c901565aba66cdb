"""The trace header every invocation carries, and its hop counter: what loop protection counts.

An invocation's trace is an X-Ray style header, the one Lambda hands a function as `_X_AMZN_TRACE_ID` and
`Lambda-Runtime-Trace-Id`:

    Root=1-65a1b2c3-0123456789abcdef01234567;Parent=89abcdef01234567;Sampled=0;Lineage=1f2e3d4c:3

`Lineage=<chain id>:<hops>` is the field AWS uses for recursive loop detection; here `hops` counts the
invocations before this one in the same chain of events (0 for an event that came from outside), and the
chain id is a checksum of the Root. Every other field is kept as it came.

* `parse(header)` reads a header (percent-decoded first: botocore quotes it on the wire); None when absent
  or without a Root.
* `next_hop(incoming)` is the trace of an invocation caused by an event that arrived carrying `incoming`
  (the trace of the invocation that produced it, or None for an event from outside): the same Root, a new
  Parent, one hop more; a fresh root at hop 0 when nothing (or nothing readable) came in.
* `depth(trace)` = hops + 1, the invocation's position in its chain; loop protection stops an invocation
  whose depth would pass `limits.max_loop_depth`.

Pure functions, no I/O; `new_root` and `next_hop` draw random ids (injectable for tests).
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable, Iterable
from urllib.parse import unquote

import msgspec

from router.core.ids import random_hex

HEADER = "X-Amzn-Trace-Id"  # HTTP header, Kafka record header, mail header
ENV = "_X_AMZN_TRACE_ID"  # what the function process sees
XATTR = "user.router.trace"  # extended attribute of a file written into a watched folder
LINEAGE = "Lineage"

RandomHex = Callable[[int], str]


_random_hex = random_hex


class Trace(msgspec.Struct, frozen=True, kw_only=True):
    root: str
    parent: str | None = None
    sampled: str = "0"
    hops: int = 0
    extra: tuple[tuple[str, str], ...] = ()  # other fields, kept in order

    @property
    def depth(self) -> int:
        return self.hops + 1

    @property
    def lineage(self) -> str:
        return f"{zlib.crc32(self.root.encode()):08x}:{self.hops}"

    def header(self) -> str:
        parent = f"Parent={self.parent};" if self.parent else ""
        extra = "".join([f"{k}={v};" for k, v in self.extra]) if self.extra else ""
        return f"Root={self.root};{parent}Sampled={self.sampled};{extra}{LINEAGE}={self.lineage}"


def parse(header: str | None) -> Trace | None:
    if not header:
        return None
    fields: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for part in unquote(header).split(";"):
        key, eq, value = part.strip().partition("=")
        if not eq or not key:
            continue
        if key in ("Root", "Parent", "Sampled", LINEAGE):
            fields[key] = value.strip()
        else:
            extra.append((key, value.strip()))
    root = fields.get("Root")
    if not root:
        return None
    return Trace(
        root=root,
        parent=fields.get("Parent") or None,
        sampled=fields.get("Sampled") or "0",
        hops=_hops(fields.get(LINEAGE)),
        extra=tuple(extra),
    )


def _hops(lineage: str | None) -> int:
    """The hop counter of a Lineage value; AWS may list several `id:count` entries (`|`): take the highest."""
    if not lineage:
        return 0
    best = 0
    for entry in lineage.split("|"):
        count = entry.rsplit(":", 1)[-1]
        if count.isdigit():
            best = max(best, int(count))
    return best


def new_root(random_hex: RandomHex = _random_hex, now: float | None = None) -> Trace:
    epoch = int(time.time() if now is None else now)
    noise = random_hex(40)  # the root's 24 digits, then the parent's 16
    return Trace(root=f"1-{epoch:08x}-{noise[:24]}", parent=noise[24:])


def next_hop(incoming: str | None, random_hex: RandomHex = _random_hex) -> Trace:
    parent = parse(incoming)
    if parent is None:
        return new_root(random_hex)
    return msgspec.structs.replace(parent, parent=random_hex(16), hops=parent.hops + 1)


def depth(header: str | None) -> int:
    """The depth of an invocation whose own trace is `header` (1 when it has none)."""
    trace = parse(header)
    return trace.depth if trace is not None else 1


def find_header(pairs: Iterable[tuple[str, str]], name: str = HEADER) -> str | None:
    """The first value of header `name` (any case) in (name, value) pairs; None when absent."""
    wanted = name.lower()
    return next((v for k, v in pairs if k.lower() == wanted), None)


def from_mail_headers(headers: Iterable[dict[str, str]]) -> str | None:
    """The trace header of a mail, from an SES record's `[{name, value}]` headers. Mail clients fold a long
    value without spaces into RFC 2047 encoded words (Python's email package does): they are decoded."""
    value = find_header((h.get("name", ""), h.get("value", "")) for h in headers)
    if value is None or "=?" not in value:
        return value
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError):  # a malformed encoded word: no trace rather than a wrong one
        return None


def from_kafka_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> str | None:
    """The trace header of a Kafka record, from its (name, bytes) headers."""
    if not headers:
        return None
    wanted = HEADER.lower()
    for key, value in headers:
        if key.lower() == wanted and value:
            return value.decode("utf-8", "replace")
    return None


def from_xattr(path: str | os.PathLike[str]) -> str | None:
    """The trace a writer left on a file as the `user.router.trace` extended attribute, if any."""
    try:
        return os.getxattr(path, XATTR).decode("utf-8", "replace") or None
    except (OSError, AttributeError):  # no such attribute, no xattr support, or not on Linux
        return None
