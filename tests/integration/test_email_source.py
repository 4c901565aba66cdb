"""Mail into a running router (`router serve`), a real SMTP client, real function processes.

Every assertion is on what the fixture function `email_record` wrote (one JSON event per line), on the
on_failure records the dispatcher wrote, or on SMTP reply codes: never on log text.
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from router.sources.email.spool import MailSpool, SpooledMail
from tests.support import RouterProcess, aws_client, free_port

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
invoker: {isolation: "off"}  # the functions write what they receive into the test's folder
functions:
  record:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/email_record"
    timeout_s: 5
    environment: {EMAIL_EVENTS: "${TMP}/events.jsonl", EMAIL_DELAY_S: "${EMAIL_DELAY_S:-0}"}
  failing:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/fail"
    timeout_s: 1
    async: {max_retries: 0, on_failure: {directory: dlq}}
sources:
  inbox:
    kind: email
    port: "${SMTP_PORT}"
    recipients: ["@example.test", "boss@other.test"]
    include_content: true
    max_message_bytes: 65536
    max_recipients: 3
  alerts: {kind: email, port: "${ALERTS_PORT}", recipients: ["alerts@example.test"]}
routes:
  - {source: inbox, function: record}
  - {source: alerts, function: failing}
"""


Reply = dict[str, Any]
INBOX = ["inbox@example.test"]


async def start(make_router: Any, **env: str) -> tuple[RouterProcess, int, int]:
    smtp, alerts = free_port(), free_port()
    router = await make_router(CONFIG, env={"SMTP_PORT": str(smtp), "ALERTS_PORT": str(alerts), **env})
    return router, smtp, alerts


def send(
    port: int, data: bytes, rcpts: list[str], sender: str = "ann@sender.test", utf8: bool = False
) -> Reply:
    """One transaction with raw DATA bytes; every reply code, and the id from a 250."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        out: dict[str, Any] = {"mail": client.mail(sender, ["SMTPUTF8"] if utf8 else [])[0]}
        out["rcpt"] = [client.rcpt(r)[0] for r in rcpts]
        if 250 not in out["rcpt"]:
            return out
        client.putcmd("data")
        assert client.getreply()[0] == 354
        data = data.replace(b"\r\n.", b"\r\n..")
        client.send(data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))
        out["data"], text = client.getreply()
        if out["data"] == 250:
            out["id"] = text.decode().rsplit(" ", 1)[1]
        return out


async def events(router: RouterProcess, count: int) -> dict[str, dict]:
    """Wait until the function recorded `count` distinct messages; {messageId: record}."""
    path = router.base_dir / "events.jsonl"
    for _ in range(3000):
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            records = {e["Records"][0]["ses"]["mail"]["messageId"]: e["Records"][0] for e in lines}
            if len(records) >= count:
                return records
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} events not recorded:\n{router.log_text()[-3000:]}")


def plain() -> bytes:
    return b"From: Ann <ann@sender.test>\r\nTo: inbox@example.test\r\nSubject: plain\r\n\r\nJust text.\r\n"


def multipart() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoë Ünï <zoe@sender.test>"
    msg["To"] = "inbox@example.test"
    msg["Cc"] = "Bé <copy@example.test>"
    msg["Subject"] = "Grüße 🎉 multipart"
    msg["Message-ID"] = "<multi-1@sender.test>"
    msg.set_content("Grüße aus Köln\n")
    msg.add_alternative("<p>Grüße aus <b>Köln</b></p>\n", subtype="html")
    msg.add_attachment(
        bytes(range(256)) * 4, maintype="application", subtype="octet-stream", filename="data.bin"
    )
    msg.add_attachment("a,b\n1,2\n", subtype="csv", filename="résumé.csv")
    return msg.as_bytes(policy=email.policy.SMTP)


MALFORMED = (  # hostile headers, unknown charset, broken base64, no closing boundary
    b"From: <<<@@@>>>\r\nTo: ,,,;;;\r\nSubject: =?bogus?x?zz?=\r\n"
    b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
    b"Content-Type: text/plain; charset=x-no-such\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!*\r\n"
)


def utf8_raw() -> bytes:
    head = "From: Jürgen <jurgen@sender.test>\r\nTo: inbox@example.test\r\nSubject: Ça marche 🚀\r\n"
    return (head + "\r\nnaïve café\r\n").encode()


async def test_mail_becomes_ses_events(make_router: Any) -> None:
    router, port, _ = await start(make_router)
    many = ["a@example.test", "x@nowhere.test", "boss@other.test", "b@example.test", "c@example.test"]
    transactions: dict[str, tuple[Any, ...]] = {
        "plain": (plain(), INBOX),
        "multipart": (multipart(), [*INBOX, "copy@example.test"]),
        "utf8": (utf8_raw(), INBOX, "jürgen@sender.test", True),  # SMTPUTF8, raw UTF-8 headers
        "many": (plain().replace(b"plain", b"many"), many),
        "malformed": (MALFORMED, INBOX),
        "oversize": (plain() + (b"x" * 998 + b"\r\n") * 70, INBOX),
        "bare_lf": (plain() + b"\n.\nRCPT TO:<x@y.test>\r\n", INBOX),
        "nobody": (plain(), ["x@nowhere.test"]),
    }
    replies = {name: await asyncio.to_thread(send, port, *args) for name, args in transactions.items()}
    assert replies["many"]["rcpt"] == [250, 550, 250, 250, 452]
    assert replies["oversize"]["data"] == 552 and replies["bare_lf"]["data"] == 550
    assert replies["nobody"]["rcpt"] == [550] and "data" not in replies["nobody"]
    accepted = [k for k, r in replies.items() if r.get("data") == 250]
    assert accepted == ["plain", "multipart", "utf8", "many", "malformed"]

    got = await events(router, 5)
    assert set(got) == {replies[k]["id"] for k in accepted}  # nothing from the refused ones
    for record in got.values():
        assert record["eventSource"] == "aws:ses" and record["eventVersion"] == "1.0"
        assert record["ses"]["receipt"]["action"]["functionArn"].endswith(":function:record")

    simple = got[replies["plain"]["id"]]["ses"]
    assert simple["mail"]["source"] == "ann@sender.test"
    assert simple["mail"]["commonHeaders"]["subject"] == "plain"
    assert simple["content"]["text"] == "Just text.\r\n"
    stored = await asyncio.to_thread(Path(simple["receipt"]["action"]["messagePath"]).read_bytes)
    assert stored.endswith(plain()) and stored.startswith(b"Return-Path: <ann@sender.test>\r\n")

    multi = got[replies["multipart"]["id"]]["ses"]
    assert multi["mail"]["commonHeaders"]["subject"] == "Grüße 🎉 multipart"
    assert multi["mail"]["commonHeaders"]["from"] == ["Zoë Ünï <zoe@sender.test>"]
    assert multi["mail"]["commonHeaders"]["messageId"] == "<multi-1@sender.test>"
    assert multi["mail"]["destination"] == ["inbox@example.test", "copy@example.test"]
    assert multi["receipt"]["recipients"] == ["inbox@example.test", "copy@example.test"]
    assert multi["content"]["text"] == "Grüße aus Köln\r\n"
    assert multi["content"]["html"] == "<p>Grüße aus <b>Köln</b></p>\r\n"
    files = {a["filename"]: (a["contentType"], a["size"]) for a in multi["content"]["attachments"]}
    # the csv's lines were sent with CRLF endings: 10 bytes
    assert files == {"data.bin": ("application/octet-stream", 1024), "résumé.csv": ("text/csv", 10)}

    raw_utf8 = got[replies["utf8"]["id"]]["ses"]
    assert raw_utf8["mail"]["source"] == "jürgen@sender.test"
    assert raw_utf8["mail"]["commonHeaders"]["subject"] == "Ça marche 🚀"
    assert raw_utf8["content"]["text"] == "naïve café\r\n"

    broken = got[replies["malformed"]["id"]]["ses"]
    assert broken["content"]["malformed"] is True
    assert broken["mail"]["commonHeaders"]["subject"] == "=?bogus?x?zz?="

    fanned = got[replies["many"]["id"]]["ses"]
    assert fanned["receipt"]["recipients"] == ["a@example.test", "boss@other.test", "b@example.test"]


async def test_failing_function_lands_in_on_failure(make_router: Any) -> None:
    router, _, alerts = await start(make_router)
    reply = await asyncio.to_thread(send, alerts, plain(), ["alerts@example.test"])
    assert reply["data"] == 250
    dlq = router.base_dir / "dlq"
    for _ in range(3000):
        files = sorted(dlq.glob("*.json")) if dlq.exists() else []
        if files:
            break
        await asyncio.sleep(0.02)
    [path] = files
    record = json.loads(path.read_text())
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestPayload"]["Records"][0]["ses"]["mail"]["messageId"] == reply["id"]
    assert record["responsePayload"]["errorType"] == "ValueError"


async def test_message_answered_250_survives_kill_9(make_router: Any) -> None:
    # The function takes a second, so the router dies while the event is queued or running, not done.
    router, port, _ = await start(make_router, EMAIL_DELAY_S="1")
    reply = await asyncio.to_thread(send, port, plain(), ["inbox@example.test"])
    assert reply["data"] == 250
    await router.kill()
    assert not (router.base_dir / "events.jsonl").exists()
    await router.start()
    got = await events(router, 1)
    assert list(got) == [reply["id"]]


async def test_spooled_but_unqueued_message_is_delivered_on_start(make_router: Any) -> None:
    # What a kill -9 between the spool's fsync and the queue leaves behind: a spool record, nothing queued.
    smtp, alerts = free_port(), free_port()
    router = await make_router(CONFIG, env={"SMTP_PORT": str(smtp), "ALERTS_PORT": str(alerts)}, start=False)
    spool = MailSpool(router.base_dir / "state" / "sources" / "inbox")
    spool.open()
    spool.put(
        SpooledMail(
            id="00000crashed0",
            received_at=1_700_000_000.0,
            mail_from="ann@sender.test",
            recipients=["inbox@example.test"],
        ),
        plain(),
    )
    await router.start()
    got = await events(router, 1)
    assert got["00000crashed0"]["ses"]["mail"]["commonHeaders"]["subject"] == "plain"
    for _ in range(3000):
        if not spool.pending():
            break
        await asyncio.sleep(0.02)
    assert spool.pending() == []


S3_CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
invoker: {isolation: "off"}  # the functions write what they receive into the test's folder
functions:
  record:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/email_record"
    timeout_s: 5
    environment: {EMAIL_EVENTS: "${TMP}/events.jsonl"}
sources:
  inbox:
    kind: email
    port: "${SMTP_PORT}"
    recipients: ["@example.test"]
    store: {s3: {bucket: "${BUCKET}", endpoint: "${S3_ENDPOINT}", prefix: "mail/"}}
routes:
  - {source: inbox, function: record}
"""


async def test_s3_store_puts_the_message_where_the_event_says(make_router: Any, moto_server: str) -> None:
    s3 = aws_client("s3", moto_server)
    await asyncio.to_thread(s3.create_bucket, Bucket="mailbox")
    port = free_port()
    router = await make_router(
        S3_CONFIG, env={"SMTP_PORT": str(port), "BUCKET": "mailbox", "S3_ENDPOINT": moto_server}
    )
    reply = await asyncio.to_thread(send, port, plain(), ["inbox@example.test"])
    assert reply["data"] == 250
    action = (await events(router, 1))[reply["id"]]["ses"]["receipt"]["action"]
    assert (action["bucketName"], action["objectKeyPrefix"], action["objectKey"]) == (
        "mailbox",
        "mail/",
        f"mail/{reply['id']}",
    )
    body = (await asyncio.to_thread(s3.get_object, Bucket="mailbox", Key=action["objectKey"]))["Body"].read()
    assert body.endswith(plain()) and body.startswith(b"Return-Path: <ann@sender.test>\r\n")
    assert list((router.base_dir / "state" / "sources" / "inbox" / "messages").iterdir()) == []

    # No such bucket: the message cannot be stored, so it is not accepted.
    env = {"SMTP_PORT": str(free_port()), "BUCKET": "no-such-bucket", "S3_ENDPOINT": moto_server}
    missing = await make_router(S3_CONFIG, env=env, name="missing")
    refused = await asyncio.to_thread(send, int(missing.env["SMTP_PORT"]), plain(), ["inbox@example.test"])
    assert refused["data"] == 451
    assert MailSpool(missing.base_dir / "state" / "sources" / "inbox").pending() == []
