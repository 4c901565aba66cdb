"""The email source's pure parts: recipient policy, bare LF, header fields, content, config checks."""

from __future__ import annotations

import errno
import json
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.core.errors import ConfigError
from router.shapes import ses
from router.sources.email.parse import (
    HEADERS_LIMIT_BYTES,
    destination,
    harden,
    header_message,
    parse_content,
    trace_headers,
)
from router.sources.email.smtp import RecipientPolicy, has_bare_line_ending
from router.sources.email.source import new_mail_id
from router.sources.email.spool import is_disk_full
from router.validate import parse_config


def test_recipient_policy_takes_listed_addresses_and_domains_only() -> None:
    policy = RecipientPolicy(["@example.test", "Boss@Other.test"])
    assert policy.accepts("anyone@example.test")
    assert policy.accepts("ANYONE@EXAMPLE.TEST")
    assert policy.accepts("boss@other.test")
    assert not policy.accepts("someone@other.test")
    assert not policy.accepts("a@mail.example.test")  # no subdomains
    assert not policy.accepts("a@example.test.evil")
    assert not policy.accepts("example.test")
    assert not policy.accepts("@example.test")
    assert not policy.accepts("")


@pytest.mark.parametrize(
    ("data", "bare"),
    [
        (b"a\r\nb\r\n", False),
        (b"", False),
        (b"a\nb\r\n", True),
        (b"a\r\n.\nb\r\n", True),  # the smuggling sequence <LF>.<LF> hides inside CRLF-ended lines
        (b"a\rb\r\n", True),
        (b"a\r\n\n", True),
    ],
)
def test_bare_line_endings(data: bytes, bare: bool) -> None:
    assert has_bare_line_ending(data) is bare


def test_mail_ids_sort_by_time_and_look_like_ses_ids() -> None:
    ids = [new_mail_id(t) for t in (1_700_000_000.0, 1_700_000_000.001, 1_800_000_000.0)]
    assert ids == sorted(ids)
    assert all(i.isalnum() and i == i.lower() and len(i) == 26 for i in ids)
    assert new_mail_id(1.0) != new_mail_id(1.0)


def test_disk_full_errors() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "full"))
    assert not is_disk_full(OSError(errno.EACCES, "denied"))


def test_destination_is_to_and_cc_from_the_headers() -> None:
    raw = b"To: A <a@example.test>, b@example.test\r\nCc: c@x.test\r\nBcc: hidden@x.test\r\n\r\nhi\r\n"
    assert destination(raw, ["a@example.test"]) == ["a@example.test", "b@example.test", "c@x.test"]
    assert destination(b"Subject: none\r\n\r\n", ["env@example.test"]) == ["env@example.test"]


def _record(raw: bytes) -> dict:
    return harden(
        ses.record(header_message(raw), mail_from="s@x.test", destination=["a@example.test"], message_id="m1")
    )


def test_raw_utf8_headers_stay_readable() -> None:
    raw = "From: Zoë <zoe@sender.test>\r\nSubject: Grüße 🎉\r\n\r\nbody".encode() + b"\r\nX-Not: a header\r\n"
    mail = _record(raw)["ses"]["mail"]
    assert mail["commonHeaders"]["subject"] == "Grüße 🎉"
    assert mail["commonHeaders"]["from"] == ["Zoë <zoe@sender.test>"]
    assert {"name": "Subject", "value": "Grüße 🎉"} in mail["headers"]
    assert all(h["name"] != "X-Not" for h in mail["headers"])
    latin1 = _record(b"Subject: caf\xe9\r\n\r\n")["ses"]["mail"]["commonHeaders"]
    assert latin1["subject"] == "caf\ufffd"


def test_header_injection_through_encoded_words_is_neutralised() -> None:
    # =0D=0A decodes to CR LF: a naive function copying the subject into a reply would add a Bcc header.
    raw = (
        b"Subject: =?utf-8?q?hello=0D=0ABcc:_victim@x.test?=\r\n"
        b"From: =?utf-8?q?Eve=0D=0AX:_y?= <e@x.test>\r\n\r\nb\r\n"
    )
    common = _record(raw)["ses"]["mail"]["commonHeaders"]
    assert "\r" not in common["subject"] and "\n" not in common["subject"]
    assert common["subject"].startswith("hello") and "Bcc: victim@x.test" in common["subject"]
    assert all("\n" not in v and "\r" not in v for v in common["from"])


def test_headers_over_10kb_are_truncated_as_on_ses() -> None:
    many = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 200) for i in range(80))
    mail = _record(b"Subject: big\r\n" + many + b"\r\nbody\r\n")["ses"]["mail"]
    assert mail["headersTruncated"] is True
    assert sum(len(h["name"]) + len(h["value"]) + 4 for h in mail["headers"]) <= HEADERS_LIMIT_BYTES
    small = _record(b"Subject: small\r\n\r\nbody\r\n")["ses"]["mail"]
    assert small["headersTruncated"] is False


def test_trace_headers_cannot_be_split_by_the_client() -> None:
    block = trace_headers(
        mail_from="a@x.test\x0bX-Evil: 1",
        helo="evil\tname",
        peer="127.0.0.1",
        hostname="mx.test",
        protocol="ESMTP",
        mail_id="abc",
        recipients=["r@example.test"],
        date="Mon, 1 Jan 2024 00:00:00 +0000",
        verdicts={"spam": "PASS", "virus": "FAIL"},
    )
    lines = block.decode().split("\r\n")
    names = [line.split(":", 1)[0] for line in lines if line and not line.startswith(" ")]
    assert names == ["Return-Path", "Received", "X-SES-Spam-Verdict", "X-SES-Virus-Verdict"]
    assert "X-SES-Virus-Verdict: FAIL" in lines


def multipart() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoë <zoe@sender.test>"
    msg["To"] = "inbox@example.test"
    msg["Subject"] = "Grüße 🎉"
    msg.set_content("plain ünïcode\n")
    msg.add_alternative("<p>html ünïcode</p>\n", subtype="html")
    msg.add_attachment(
        b"\x00\x01\x02" * 100, maintype="application", subtype="octet-stream", filename="d.bin"
    )
    msg.add_attachment("a,b\n1,2\n", subtype="csv", filename="résumé.csv")
    return msg.as_bytes()


def test_content_of_a_multipart_message() -> None:
    content = parse_content(multipart())
    assert content["text"] == "plain ünïcode\n"
    assert content["html"] == "<p>html ünïcode</p>\n"
    files = {a["filename"]: a for a in content["attachments"]}
    assert files["d.bin"]["size"] == 300 and files["d.bin"]["contentType"] == "application/octet-stream"
    assert files["résumé.csv"]["contentType"] == "text/csv"
    assert "malformed" not in content


@pytest.mark.parametrize(
    "raw",
    [
        b"Content-Type: multipart/mixed; boundary=zzz\r\n\r\n--zzz\r\nContent-Type: text/plain\r\n\r\nno end",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all\r\n",
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nbytes \xff\xfe\r\n",
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64***\r\n",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n",
        b"From: <<<@@@>>>\r\nTo: ,,,;;;\r\nSubject: =?bogus?x?zz?=\r\n\r\n",
        b"\xff\xfe\x00garbage without headers",
    ],
)
def test_malformed_mime_yields_an_event(raw: bytes) -> None:
    record = _record(raw)
    json.dumps(record)  # serialisable
    content = parse_content(raw)
    json.dumps(content)
    assert set(content) >= {"text", "html", "attachments"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_parsing_never_raises(raw: bytes) -> None:
    message = b"Content-Type: multipart/mixed; boundary=b\r\nSubject: x\r\n\r\n--b\r\n" + raw
    for data in (raw, message):
        json.dumps(_record(data))
        json.dumps(parse_content(data))
        destination(data, ["a@example.test"])


def _source(text: str) -> list[str]:
    try:
        parse_config("sources:\n  inbox:\n" + text)
    except ConfigError as e:
        return e.problems
    return []


def test_config_checks_name_the_culprit(tmp_path) -> None:
    assert _source("    {kind: email, recipients: ['@example.test', 'a@b.test']}") == []
    assert _source("    {kind: email}") == [
        "sources.inbox.recipients: empty, so every message would be refused (give addresses or @domain)"
    ]
    assert _source("    {kind: email, recipients: ['nobody']}") == [
        "sources.inbox.recipients[0]: 'nobody' is neither an address nor @domain"
    ]
    problems = _source("    {kind: email, recipients: ['@x.test'], auth: {users: {u: p}}}")
    assert problems == [
        "sources.inbox.auth: AUTH needs tls (STARTTLS), or auth.allow_without_tls: true for local testing"
    ]
    problems = _source(
        f"    {{kind: email, recipients: ['@x.test'], tls: {{cert_file: {tmp_path}/c, key_file: k}}}}"
    )
    assert problems[0] == f"sources.inbox.tls.cert_file: '{tmp_path}/c' does not exist"
    problems = _source("    {kind: email, recipients: ['@x.test'], store: {directory: d, s3: {bucket: b}}}")
    assert problems == ["sources.inbox.store: give one of directory, s3 (got both)"]
    problems = _source("    {kind: email, recipients: ['@x.test'], verdicts: {spam: MAYBE}}")
    assert problems == [
        "sources.inbox.verdicts.spam: expected one of "
        "'DISABLED', 'FAIL', 'GRAY', 'PASS', 'PROCESSING_FAILED', got 'MAYBE'"
    ]
