"""The email source in-process: a real SMTP session (smtplib over loopback) against a collecting submit."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import smtplib
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from router.core.clock import SystemClock
from router.core.envelope import Envelope
from router.core.errors import FunctionNotFound
from router.core.ports import Delivery, SourceContext
from router.sources import email as email_source
from router.sources.email import spool as email_spool
from router.sources.email.source import EmailSource
from router.sources.email.spool import MailSpool, SpooledMail
from router.validate import parse_config

MESSAGE = b"From: Ann <ann@sender.test>\r\nTo: inbox@example.test\r\nSubject: hello\r\n\r\nHi there.\r\n"


class Collector:
    """A submit that records envelopes. `refuse` makes the next calls raise; `gate` holds calls until set."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse = 0
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    async def __call__(self, envelopes: Sequence[Envelope]) -> Delivery:
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse:
            self.refuse -= 1
            raise FunctionNotFound("no function named 'gone'")
        self.envelopes.extend(envelopes)
        self.arrived.set()
        return Delivery(queued=len(envelopes))

    async def wait_for(self, n: int) -> list[Envelope]:
        while len(self.envelopes) < n:
            self.arrived.clear()
            await self.arrived.wait()
        return self.envelopes


class Running:
    def __init__(self, source: EmailSource, submit: Collector, state: Path) -> None:
        self.source = source
        self.submit = submit
        self.state = state

    @property
    def port(self) -> int:
        assert self.source.port is not None
        return self.source.port

    def pending(self) -> list[SpooledMail]:
        return MailSpool(self.state).pending()


@contextlib.asynccontextmanager
async def running(tmp_path: Path, extra: str = "", submit: Collector | None = None) -> AsyncIterator[Running]:
    text = "sources:\n  inbox:\n    kind: email\n    port: 0\n    recipients: ['@example.test']\n" + extra
    cfg = parse_config(text, base_dir=tmp_path)
    submit = submit or Collector()
    ready = asyncio.Event()
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    ctx = SourceContext(
        name="inbox",
        config=cfg.sources["inbox"],
        routes=[],
        state_dir=state,
        clock=SystemClock(),
        submit=submit,
        ready=ready.set,
        base_dir=tmp_path,
    )
    source = email_source.create(ctx)
    task = asyncio.create_task(source.run())
    ready_wait = asyncio.create_task(ready.wait())
    await asyncio.wait([task, ready_wait], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready_wait.cancel()
        task.result()
    try:
        yield Running(source, submit, state)
    finally:
        await source.aclose()
        await task


async def until(predicate: Callable[[], Any]) -> None:
    """Poll until predicate() is truthy (the per-test timeout bounds it)."""
    for _ in range(100_000):
        if predicate():
            return
        await asyncio.sleep(0.01)


def transact(
    port: int, data: bytes, rcpts: Sequence[str] = ("inbox@example.test",), **kw: Any
) -> dict[str, Any]:
    """One SMTP transaction with raw DATA bytes (no line-ending fixes): every reply code."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return transaction(client, data, rcpts, **kw)


def transaction(
    client: smtplib.SMTP,
    data: bytes,
    rcpts: Sequence[str] = ("inbox@example.test",),
    sender: str = "ann@sender.test",
) -> dict[str, Any]:
    client.ehlo("client.test")
    out: dict[str, Any] = {"mail": client.mail(sender)[0], "rcpt": [client.rcpt(r)[0] for r in rcpts]}
    if 250 not in out["rcpt"]:
        client.rset()
        return out
    client.putcmd("data")
    assert client.getreply()[0] == 354
    data = data.replace(b"\r\n.", b"\r\n..")
    client.send(data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))
    out["data"], text = client.getreply()
    out["text"] = text.decode()
    return out


async def test_plain_message_is_answered_250_once_queued(tmp_path: Path) -> None:
    async with running(tmp_path) as r:
        reply = await asyncio.to_thread(transact, r.port, MESSAGE)
        assert reply["data"] == 250
        [envelope] = r.submit.envelopes
        assert reply["text"] == f"2.0.0 Ok: queued as {envelope.id}"
        mail = envelope.record["ses"]["mail"]
        assert (mail["source"], mail["messageId"], mail["destination"]) == (
            "ann@sender.test",
            envelope.id,
            ["inbox@example.test"],
        )
        assert mail["commonHeaders"]["subject"] == "hello"
        action = envelope.record["ses"]["receipt"]["action"]
        raw = await asyncio.to_thread(Path(action["messagePath"]).read_bytes)
        assert raw.startswith(b"Return-Path: <ann@sender.test>\r\nReceived: from client.test")
        assert raw.endswith(MESSAGE)
        assert r.pending() == []


async def test_dispatch_error_answers_451_and_keeps_no_copy(tmp_path: Path) -> None:
    async with running(tmp_path) as r:
        r.submit.refuse = 1
        reply = await asyncio.to_thread(transact, r.port, MESSAGE)
        assert reply["data"] == 451 and "Router.FunctionNotFound" in reply["text"]
        assert r.pending() == [] and list((r.state / "messages").iterdir()) == []
        assert (await asyncio.to_thread(transact, r.port, MESSAGE))["data"] == 250


async def test_queue_out_of_disk_answers_452(tmp_path: Path) -> None:
    class FullQueue(Collector):
        async def __call__(self, envelopes: Sequence[Envelope]) -> Delivery:
            raise OSError(errno.ENOSPC, "No space left on device")

    async with running(tmp_path, submit=FullQueue()) as r:
        assert (await asyncio.to_thread(transact, r.port, MESSAGE))["data"] == 452
        assert r.pending() == []


@pytest.mark.parametrize(("code", "reply"), [(errno.ENOSPC, 452), (errno.EDQUOT, 452), (errno.EACCES, 451)])
async def test_spool_failures_answer_4xx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, reply: int
) -> None:
    def failing(path: Path, data: bytes) -> None:
        raise OSError(code, "simulated")

    async with running(tmp_path) as r:
        monkeypatch.setattr(email_spool, "write_durably", failing)
        assert (await asyncio.to_thread(transact, r.port, MESSAGE))["data"] == reply
        assert r.submit.envelopes == []


async def test_bare_lf_is_refused_and_the_session_goes_on(tmp_path: Path) -> None:
    smuggled = MESSAGE + b"\n.\nMAIL FROM:<evil@x.test>\r\n"

    def two_transactions(port: int) -> tuple[dict[str, Any], dict[str, Any]]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            return transaction(client, smuggled), transaction(client, MESSAGE)

    async with running(tmp_path) as r:
        first, second = await asyncio.to_thread(two_transactions, r.port)
        assert first["data"] == 550 and "bare LF" in first["text"]
        assert second["data"] == 250
        assert len(r.submit.envelopes) == 1 and r.pending() == []


async def test_oversize_is_refused_with_552(tmp_path: Path) -> None:
    async with running(tmp_path, "    max_message_bytes: 2048\n") as r:
        big = MESSAGE + b"x" * 70 + b"\r\n"
        assert (await asyncio.to_thread(transact, r.port, big * 40))["data"] == 552

        def declared() -> int:
            with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as client:
                client.ehlo("client.test")
                assert client.has_extn("size") and client.esmtp_features["size"] == "2048"
                return client.mail("ann@sender.test", ["SIZE=999999"])[0]

        assert await asyncio.to_thread(declared) == 552
        assert r.submit.envelopes == []


async def test_recipients_refused_unknown_and_past_the_limit(tmp_path: Path) -> None:
    rcpts = ["a@example.test", "x@other.test", "b@example.test", "c@example.test"]
    async with running(tmp_path, "    max_recipients: 2\n") as r:
        reply = await asyncio.to_thread(transact, r.port, MESSAGE, rcpts)
        assert reply["rcpt"] == [250, 550, 250, 452] and reply["data"] == 250
        [envelope] = r.submit.envelopes
        assert envelope.record["ses"]["receipt"]["recipients"] == ["a@example.test", "b@example.test"]
        nobody = await asyncio.to_thread(transact, r.port, MESSAGE, ["x@other.test"])
        assert nobody["rcpt"] == [550] and "data" not in nobody


async def test_sessions_past_the_limit_get_421(tmp_path: Path) -> None:
    async with running(tmp_path, "    max_sessions: 1\n") as r:
        first = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", r.port, timeout=10)
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", r.port, timeout=10)
        assert refused.value.smtp_code == 421
        await asyncio.to_thread(first.quit)
        while True:  # the server notices the hang-up asynchronously
            try:
                later = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", r.port, timeout=10)
                break
            except smtplib.SMTPConnectError:
                await asyncio.sleep(0.01)
        assert (await asyncio.to_thread(transaction, later, MESSAGE))["data"] == 250
        await asyncio.to_thread(later.quit)


def spool_one(state: Path, mail_id: str = "0000000000abc") -> SpooledMail:
    spool = MailSpool(state)
    spool.open()
    return spool.put(
        SpooledMail(
            id=mail_id,
            received_at=1_700_000_000.0,
            mail_from="ann@sender.test",
            recipients=["inbox@example.test"],
        ),
        MESSAGE,
    )


async def test_spooled_messages_are_delivered_on_start_oldest_first(tmp_path: Path) -> None:
    newer = spool_one(tmp_path / "state", "0000000000abd")
    older = spool_one(tmp_path / "state", "0000000000abc")
    async with running(tmp_path) as r:
        first, second = await r.submit.wait_for(2)
        assert (first.id, second.id) == (older.id, newer.id)
        assert first.record["ses"]["mail"]["timestamp"] == "2023-11-14T22:13:20.000Z"
        await until(lambda: not r.pending())


async def test_redelivery_retries_until_the_event_is_taken(tmp_path: Path) -> None:
    spool_one(tmp_path / "state")
    submit = Collector()
    submit.refuse = 2
    async with running(tmp_path, "    redeliver_interval_s: 0.01\n", submit) as r:
        await r.submit.wait_for(1)
        await until(lambda: not r.pending())
        assert submit.refuse == 0 and len(submit.envelopes) == 1


async def test_client_hanging_up_after_data_does_not_lose_the_message(tmp_path: Path) -> None:
    submit = Collector()
    submit.gate = asyncio.Event()

    def send_and_hang_up() -> None:
        with socket.create_connection(("127.0.0.1", r.port), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()
            for line in (
                b"EHLO c\r\n",
                b"MAIL FROM:<a@x.test>\r\n",
                b"RCPT TO:<b@example.test>\r\n",
                b"DATA\r\n",
            ):
                s.sendall(line)
                while f.readline()[3:4] == b"-":  # multi-line reply
                    pass
            s.sendall(MESSAGE + b".\r\n")

    async with running(tmp_path, submit=submit) as r:
        await asyncio.to_thread(send_and_hang_up)
        await until(r.pending)  # spooled, waiting for submit
        submit.gate.set()
        await submit.wait_for(1)
        await until(lambda: not r.pending())


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_starttls_and_auth(tmp_path: Path) -> None:
    self_signed(tmp_path)
    extra = (
        "    tls: {cert_file: cert.pem, key_file: key.pem, required: true}\n"
        "    auth: {users: {ann: s3cret}}\n"
    )
    client_tls = ssl.create_default_context()
    client_tls.check_hostname = False
    client_tls.verify_mode = ssl.CERT_NONE

    def session(password: str | None, starttls: bool = True) -> tuple[int, Any]:
        with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as client:
            client.ehlo("client.test")
            if not starttls:
                return client.mail("ann@sender.test")[0], None
            client.starttls(context=client_tls)
            client.ehlo("client.test")
            if password is None:
                return client.mail("ann@sender.test")[0], None
            try:
                client.login("ann", password)
            except smtplib.SMTPAuthenticationError as e:
                return e.smtp_code, None
            return 235, transaction(client, MESSAGE)

    async with running(tmp_path, extra) as r:
        assert (await asyncio.to_thread(session, None, starttls=False))[0] == 530  # TLS first
        assert (await asyncio.to_thread(session, None))[0] == 530  # then AUTH
        assert (await asyncio.to_thread(session, "wrong"))[0] == 535
        code, reply = await asyncio.to_thread(session, "s3cret")
        assert code == 235 and reply["data"] == 250
        [envelope] = r.submit.envelopes
        received = next(
            h["value"] for h in envelope.record["ses"]["mail"]["headers"] if h["name"] == "Received"
        )
        assert " with ESMTPSA id " in received


async def test_verdicts_and_content_as_configured(tmp_path: Path) -> None:
    extra = (
        "    include_content: true\n"
        "    verdicts: {spam: FAIL, virus: DISABLED, dmarc: FAIL, dmarc_policy: reject}\n"
    )
    async with running(tmp_path, extra) as r:
        assert (await asyncio.to_thread(transact, r.port, MESSAGE))["data"] == 250
        ses = r.submit.envelopes[0].record["ses"]
        receipt = ses["receipt"]
        statuses = {k: v["status"] for k, v in receipt.items() if k.endswith("Verdict")}
        assert statuses == {
            "spamVerdict": "FAIL",
            "virusVerdict": "DISABLED",
            "spfVerdict": "PASS",
            "dkimVerdict": "PASS",
            "dmarcVerdict": "FAIL",
        }
        assert receipt["dmarcPolicy"] == "reject"
        assert ses["content"] == {"text": "Hi there.\r\n", "html": None, "attachments": []}
        spam = next(h["value"] for h in ses["mail"]["headers"] if h["name"] == "X-SES-Spam-Verdict")
        assert spam == "FAIL"


async def test_close_is_idempotent_and_stops_listening(tmp_path: Path) -> None:
    async with running(tmp_path) as r:
        port = r.port
        await r.source.aclose()
        await r.source.aclose()
        with pytest.raises(OSError):
            await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 2)


async def test_cancelling_run_stops_it(tmp_path: Path) -> None:
    cfg = parse_config("sources:\n  inbox: {kind: email, port: 0, recipients: ['@example.test']}\n")
    submit = Collector()
    ready = asyncio.Event()
    ctx = SourceContext(
        name="inbox",
        config=cfg.sources["inbox"],
        routes=[],
        state_dir=tmp_path,
        clock=SystemClock(),
        submit=submit,
        ready=ready.set,
    )
    source = email_source.create(ctx)
    task = asyncio.create_task(source.run())
    await ready.wait()
    port = source.port
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await source.aclose()
    with pytest.raises(OSError):
        await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 2)
