"""SES email receiving (receipt rule with a Lambda action): `{"Records": [{"eventSource": "aws:ses", ...}]}`.

`record(message, mail_from=..., destination=[...])` parses the message's headers (the body is not part of the
event on SES either) into the `mail` block (timestamp, source = SMTP MAIL FROM, messageId, destination = SMTP
RCPT TO, headersTruncated, headers in order with SES's `Return-Path` first, commonHeaders) and the `receipt`
block (timestamp, processingTimeMillis, recipients, the five verdicts, action). Verdict defaults say what a
local inbox can honestly claim: spam and virus PASS (nothing scanned, treated as clean), SPF, DKIM and DMARC
GRAY (not checked); pass `verdicts={...}` to set them. `dmarcPolicy` is added when DMARC is FAIL, as on SES.

`receipt.action.functionArn` names the receiving function; the record is built before routing, so
`wrap(envelopes, function_arn=...)` (through `render(..., function_arn=...)`) sets it per function.
"""

from __future__ import annotations

import copy
import email.header
import email.message
import email.parser
import email.policy
import email.utils
import re
from collections.abc import Mapping, Sequence
from typing import Any

from router.core import timefmt
from router.core.arn import lambda_arn
from router.core.envelope import Envelope
from router.shapes import common

KIND = "ses"
DEFAULT_VERDICTS = {"spam": "PASS", "virus": "PASS", "spf": "GRAY", "dkim": "GRAY", "dmarc": "GRAY"}
VERDICT_STATUSES = ("PASS", "FAIL", "GRAY", "PROCESSING_FAILED")
_FOLD = re.compile(r"\r?\n[ \t]+")
_SPECIALS = set('()<>@,;:\\".[]')
_ADDRESS_HEADERS = {
    "from": "from",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
    "sender": "sender",
    "reply-to": "replyTo",
}


def parse_headers(message: bytes | email.message.Message) -> email.message.Message:
    if isinstance(message, email.message.Message):
        return message
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(message)


def _raw(value: Any) -> str:
    """A header value as it appeared, unfolded (compat32 keeps undecodable bytes as Header objects)."""
    return _FOLD.sub(" ", str(value)).strip()


def _decoded(value: Any) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(_raw(value))))
    except (ValueError, LookupError):
        return _raw(value)


def _addresses(values: list[Any]) -> list[str]:
    out = []
    for name, addr in email.utils.getaddresses([_decoded(v) for v in values]):
        if not addr and not name:
            continue
        if name and _SPECIALS & set(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(f"{name} <{addr}>" if name else addr)
    return out


def common_headers(msg: email.message.Message, mail_from: str) -> dict[str, Any]:
    """commonHeaders: returnPath, from, date, to, cc, bcc, sender, replyTo, messageId, subject, as present."""
    out: dict[str, Any] = {"returnPath": _raw(msg.get("Return-Path", mail_from)).strip("<>")}
    for header, key in _ADDRESS_HEADERS.items():
        values = msg.get_all(header)
        if values:
            out[key] = _addresses(values)
        if header == "from" and msg.get("Date") is not None:
            out["date"] = _raw(msg["Date"])
    if msg.get("Message-ID") is not None:
        out["messageId"] = _raw(msg["Message-ID"])
    if msg.get("Subject") is not None:
        out["subject"] = _decoded(msg["Subject"])
    return out


def _verdicts(verdicts: Mapping[str, str] | None, dmarc_policy: str) -> dict[str, Any]:
    v = {**DEFAULT_VERDICTS, **(verdicts or {})}
    for name, status in v.items():
        if name not in DEFAULT_VERDICTS or status not in VERDICT_STATUSES:
            raise ValueError(
                f"verdict {name}={status!r}: names {list(DEFAULT_VERDICTS)}, statuses {VERDICT_STATUSES}"
            )
    out: dict[str, Any] = {f"{name}Verdict": {"status": v[name]} for name in DEFAULT_VERDICTS}
    if v["dmarc"] == "FAIL":
        out["dmarcPolicy"] = dmarc_policy
    return out


def record(
    message: bytes | email.message.Message,
    *,
    mail_from: str,
    destination: Sequence[str],
    recipients: Sequence[str] | None = None,
    time: float | None = None,
    message_id: str | None = None,
    function_arn: str | None = None,
    invocation_type: str = "Event",
    verdicts: Mapping[str, str] | None = None,
    dmarc_policy: str = "none",
    processing_time_ms: int = 0,
    region: str = common.REGION,
    account: str = common.ACCOUNT,
) -> dict[str, Any]:
    """One SES receipt record. `destination` is every RCPT TO; `recipients` those this rule accepted."""
    msg = parse_headers(message)
    timestamp = timefmt.iso_ms(common.now(time))
    headers = [{"name": str(k), "value": _raw(v)} for k, v in msg.items()]
    if msg.get("Return-Path") is None:
        headers.insert(0, {"name": "Return-Path", "value": f"<{mail_from}>"})
    mail = {
        "timestamp": timestamp,
        "source": mail_from,
        "messageId": message_id or common.alnum_id(20),
        "destination": list(destination),
        "headersTruncated": False,
        "headers": headers,
        "commonHeaders": common_headers(msg, mail_from),
    }
    receipt = {
        "timestamp": timestamp,
        "processingTimeMillis": processing_time_ms,
        "recipients": list(destination if recipients is None else recipients),
        **_verdicts(verdicts, dmarc_policy),
        "action": {
            "type": "Lambda",
            "functionArn": function_arn or lambda_arn("router", region, account),
            "invocationType": invocation_type,
        },
    }
    return {"eventSource": "aws:ses", "eventVersion": "1.0", "ses": {"mail": mail, "receipt": receipt}}


def envelope(
    rec: dict[str, Any],
    *,
    source_name: str,
    id: str | None = None,
    trace: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Envelope:
    mail = rec["ses"]["mail"]
    return Envelope(
        id=id or mail["messageId"],
        source=f"router://sources/{source_name}",
        type="com.amazonaws.ses.EmailReceived",
        subject=mail["commonHeaders"].get("subject") or None,
        time=mail["timestamp"],
        kind=KIND,
        source_name=source_name,
        record=rec,
        trace=trace,
        meta=meta or {},
    )


def wrap(envelopes: Sequence[Envelope], *, function_arn: str | None = None, **_: Any) -> dict[str, Any]:
    records = []
    for e in envelopes:
        rec = e.record
        action = rec.get("ses", {}).get("receipt", {}).get("action", {})
        if function_arn and "functionArn" in action:  # copy: the same envelope goes to every route's function
            rec = copy.deepcopy(rec)
            rec["ses"]["receipt"]["action"]["functionArn"] = function_arn
        records.append(rec)
    return {"Records": records}


SAMPLE_MESSAGE = (
    b"From: Jane Doe <janedoe@example.com>\r\n"
    b"To: johndoe@example.test\r\n"
    b"Date: Wed, 7 Oct 2015 12:34:56 -0700\r\n"
    b"Message-ID: <0123456789@example.com>\r\n"
    b"Subject: Test Subject\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=UTF-8\r\n"
    b"\r\n"
    b"Hello.\r\n"
)


def sample() -> Envelope:
    rec = record(
        SAMPLE_MESSAGE,
        mail_from="janedoe@example.com",
        destination=["johndoe@example.test"],
        time=1_700_000_000.0,
        message_id="o3vrnil0e2ic28trexample",
        processing_time_ms=574,
    )
    return envelope(rec, source_name="inbox")
