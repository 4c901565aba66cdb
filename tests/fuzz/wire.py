"""Raw-socket clients for the fuzz tier: send bytes no well-behaved client library would, read the reply.

`http_exchange(port, raw)` sends a raw request and reads one HTTP reply (None when the server closed the
connection without answering); `closed_after` says whether the server closed the connection after it.
`smtp_session(port, lines)` opens an SMTP session, sends each line, and returns each reply.
Timeouts here only stop a test that would otherwise hang; they are not measurements.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

HANG_S = 30.0


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    closed_after: bool

    def json(self) -> Any:
        return json.loads(self.body)


def http_exchange(port: int, raw: bytes, *, check_closed: bool = False) -> HttpReply | None:
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_S) as s:
        try:
            s.sendall(raw)
        except OSError:
            pass  # answered and closed before the whole request was sent: read what came back
        reader = s.makefile("rb")
        try:
            reply = _read_reply(reader, head=raw.startswith(b"HEAD "))
        except (OSError, ValueError):
            return None
        if reply is None:
            return None
        if check_closed:
            s.settimeout(5.0)
            try:
                reply.closed_after = reader.read(1) == b""
            except OSError:
                reply.closed_after = False
        return reply


def _read_reply(reader: Any, *, head: bool) -> HttpReply | None:
    """One reply; the answer to a HEAD request has no body, whatever its Content-Length says."""
    status_line = reader.readline(65536)
    if not status_line:
        return None
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {status_line[:100]!r}")
    headers: dict[str, str] = {}
    while True:
        line = reader.readline(65536)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b"" if head else reader.read(int(headers.get("content-length", "0")))
    return HttpReply(int(parts[1]), headers, body, closed_after=False)


def smtp_session(port: int, lines: list[bytes]) -> list[str]:
    """The greeting, then one reply per line sent (a multi-line reply as its last line), until the server
    closes the session."""
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_S) as s:
        reader = s.makefile("rb")
        replies = [_smtp_reply(reader)]
        for line in lines:
            try:
                s.sendall(line + b"\r\n")
                reply = _smtp_reply(reader)
            except OSError:
                break
            if not reply:
                break
            replies.append(reply)
        return replies


def _smtp_reply(reader: Any) -> str:
    while True:
        line = reader.readline(4096).decode("latin-1")
        if len(line) < 4 or line[3] != "-":
            return line.rstrip("\r\n")
