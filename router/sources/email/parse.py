"""Reading a received message: the trace headers we add, header-derived fields, and the optional content.

Contract: nothing here raises on malformed input. A message whose MIME structure or headers are broken still
yields an event: unparseable address lists fall back to a plain split, unknown charsets decode as UTF-8 with
replacement characters, and a part that cannot be decoded is listed without its text.

* `trace_headers(...)`: the headers SES puts on top of a message it receives (Return-Path, Received,
  X-SES-Spam-Verdict, X-SES-Virus-Verdict); the source prepends them to the stored raw message, so the raw
  file and the event's `headers` list agree, as on SES.
* `header_message(raw)`: what `router.shapes.ses.record` is given, so raw UTF-8 headers stay readable.
* `destination(raw, recipients)`: SES's `mail.destination`, the addr-specs of the To and Cc headers (the
  envelope recipients when the headers name none).
* `harden(record)`: applied to the record `router.shapes.ses.record` built. Decoded values in commonHeaders
  (an encoded-word subject can carry CR LF) get their control characters replaced by spaces, so a function
  copying a subject into a reply cannot be made to add headers; the `headers` list stops past 10 KB with
  `headersTruncated: true`, as SES does.
* `parse_content(raw)`: `{text, html, attachments: [{filename, contentType, size, disposition, contentId}]}`
  for `include_content: true`, plus `malformed: true` when the parser recorded defects.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import email.utils
import re
from email.message import Message
from typing import Any

HEADERS_LIMIT_BYTES = 10 * 1024  # SES truncates the headers list of the notification past 10 KB
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def clean(value: str) -> str:
    """A decoded header value safe to copy into another message: no CR, LF or other control characters."""
    return _CONTROL.sub(" ", value).strip()


def _ascii_safe(value: str) -> str:
    return clean(value).replace("\t", " ")


def trace_headers(
    *,
    mail_from: str,
    helo: str,
    peer: str,
    hostname: str,
    protocol: str,
    mail_id: str,
    recipients: list[str],
    date: str,
    verdicts: dict[str, str],
) -> bytes:
    """Return-Path, Received and SES's verdict headers, CRLF-terminated, to prepend to the raw message."""
    rcpt = f" for <{_ascii_safe(recipients[0])}>" if len(recipients) == 1 else ""
    lines = [
        f"Return-Path: <{_ascii_safe(mail_from)}>",
        f"Received: from {_ascii_safe(helo) or 'unknown'} ([{peer}])\r\n by {hostname} with {protocol}"
        f" id {mail_id}{rcpt};\r\n {date}",
        f"X-SES-Spam-Verdict: {verdicts['spam']}",
        f"X-SES-Virus-Verdict: {verdicts['virus']}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def header_message(raw: bytes) -> Message:
    """The header block as a compat32 Message with real Unicode values.

    Parsed from text decoded as UTF-8 (RFC 6532 allows raw UTF-8 in headers; SMTPUTF8 clients send it), with
    U+FFFD for bytes that are not UTF-8. Parsing the bytes instead would keep non-ASCII as opaque 8-bit
    data, which ends up as replacement characters in the event.
    """
    head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    return email.parser.Parser(policy=email.policy.compat32).parsestr(
        head.decode("utf-8", "replace"), headersonly=True
    )


def _addr_specs(msg: Message, name: str) -> list[str]:
    values = [str(v) for v in msg.get_all(name) or []]
    try:
        pairs = email.utils.getaddresses(values)
    except Exception:  # hostile input has found parser edge cases before; a plain split still helps
        pairs = [("", v) for value in values for v in value.split(",")]
    return [clean(addr) for _, addr in pairs if addr and "@" in addr]


def destination(raw: bytes, recipients: list[str]) -> list[str]:
    msg = header_message(raw)
    found: list[str] = []
    for header in ("To", "Cc"):
        for addr in _addr_specs(msg, header):
            if addr not in found:
                found.append(addr)
    return found or list(recipients)


def harden(record: dict[str, Any]) -> dict[str, Any]:
    mail = record["ses"]["mail"]
    common = mail.get("commonHeaders", {})
    for key, value in list(common.items()):
        if isinstance(value, str):
            common[key] = clean(value)
        elif isinstance(value, list):
            common[key] = [clean(v) if isinstance(v, str) else v for v in value]
    kept, size = [], 0
    for header in mail.get("headers", []):
        size += len(header["name"]) + len(header["value"]) + 4
        if size > HEADERS_LIMIT_BYTES:
            mail["headersTruncated"] = True
            break
        kept.append(header)
    mail["headers"] = kept
    return record


def _part_text(part: Message) -> str | None:
    """A text part decoded by its charset; UTF-8 when it names none or ASCII (RFC 6532 mail is UTF-8)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return None
    if not isinstance(payload, bytes):
        return None
    charset = part.get_content_charset() or "utf-8"
    if charset in ("us-ascii", "ascii"):
        charset = "utf-8"  # a superset: the same text when the part is ASCII, readable when it is not
    try:
        return payload.decode(charset, "replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", "replace")


def _attachment(part: Message) -> dict[str, Any]:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    info: dict[str, Any] = {
        "filename": clean(part.get_filename() or ""),
        "contentType": part.get_content_type(),
        "size": len(payload) if isinstance(payload, bytes) else 0,
        "disposition": part.get_content_disposition() or "attachment",
    }
    content_id = part.get("Content-ID")
    if content_id:
        info["contentId"] = clean(str(content_id))
    return info


def parse_content(raw: bytes) -> dict[str, Any]:
    """The body as `include_content` puts it in the event; never raises."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [p for p in msg.walk() if not p.is_multipart()]
        defects = bool(msg.defects) or any(p.defects for p in msg.walk())
    except Exception:
        return {"text": raw.decode("utf-8", "replace"), "html": None, "attachments": [], "malformed": True}
    text: str | None = None
    html: str | None = None
    attachments: list[dict[str, Any]] = []
    for part in parts:
        try:
            disposition = part.get_content_disposition()
            ctype = part.get_content_type()
            named = bool(part.get_filename())
        except Exception:
            defects = True
            continue
        if disposition == "attachment" or (disposition == "inline" and named):
            attachments.append(_attachment(part))
        elif ctype == "text/plain" and text is None:
            text = _part_text(part)
        elif ctype == "text/html" and html is None:
            html = _part_text(part)
        elif not ctype.startswith("text/"):
            attachments.append(_attachment(part))
    out: dict[str, Any] = {"text": text, "html": html, "attachments": attachments}
    if defects:
        out["malformed"] = True
    return out
