"""Email-received source (`kind: email`): an SMTP server (aiosmtpd) that turns mail into SES receipt events.

Contract (see design.md for the source contract in general):

* A client gets 250 after DATA only once the message is durably spooled (`email_spool`: fsync, atomic
  rename) *and* its event was queued by `submit` (the dispatcher's durable queue). A message that got 250
  therefore survives `kill -9`: either its event is in the durable queue, or its spool record is still there
  and the source delivers it again on its next start (at-least-once: a crash between queueing and removing the
  record gives a duplicate, with the same messageId, never a loss).
* Failures answer 4xx, never 250: 452 4.3.1 when the disk is full, 451 4.3.0 when the spool, the S3 store,
  the function or the queue is unavailable (a `DispatchError`). The spooled copy of a refused message is
  removed: the client keeps it and retries.
* The SMTP policy (recipients, sizes, sessions, bare LF, STARTTLS, AUTH) is in `email_smtp`; the event is
  `router.shapes.ses.record` plus what this source adds: the message's location in `receipt.action`
  (`email_store`), verdicts as configured, `ses.content` with `include_content: true` (`email_parse`).
* `aclose()` stops listening, lets messages already in DATA finish for up to `drain_s`, then closes the
  remaining sessions. Idempotent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.config.sources.email import Config
from router.core import timefmt
from router.core.errors import DispatchError
from router.core.retry import Backoff
from router.sources.email.parse import destination, harden, header_message, parse_content, trace_headers
from router.sources.email.smtp import IncomingMail, RecipientPolicy, SmtpServer, SmtpSettings
from router.sources.email.spool import MailSpool, SpooledMail, is_disk_full
from router.sources.email.store import LocalStore, MessageStore, S3Store, StoreUnavailable

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.core.envelope import Envelope
    from router.core.ports import SourceContext, Submit

log = logging.getLogger("router.sources.email")

VERDICT_NAMES = ("spam", "virus", "spf", "dkim", "dmarc")
MAX_REDELIVER_DELAY_S = 300.0
REPLY_QUEUED = "250 2.0.0 Ok: queued as {id}"
REPLY_DISK_FULL = "452 4.3.1 Insufficient system storage, try again later"
REPLY_UNAVAILABLE = "451 4.3.0 Temporary failure ({why}), try again later"
REPLY_SHUTTING_DOWN = "451 4.3.2 Shutting down, try again later"


def new_mail_id(t: float) -> str:
    """Lower-case base32hex of (microseconds, random): SES-like, and sorting by id sorts by arrival."""
    raw = int(t * 1_000_000).to_bytes(8, "big") + secrets.token_bytes(8)
    return base64.b32hexencode(raw).decode("ascii").rstrip("=").lower()


def _protocol(incoming: IncomingMail) -> str:
    return (
        ("ESMTP" if incoming.esmtp else "SMTP")
        + ("S" if incoming.tls else "")
        + ("A" if incoming.auth_user else "")
    )


def check(settings: Config, config: RouterConfig, where: str, problems: list[str]) -> None:
    if not settings.recipients:
        problems.append(
            f"{where}.recipients: empty, so every message would be refused (give addresses or @domain)"
        )
    for i, pattern in enumerate(settings.recipients):
        _, at, domain = pattern.rpartition("@")
        if not at or not domain or "@" in domain or any(c in pattern for c in " ,;<>"):
            problems.append(f"{where}.recipients[{i}]: {pattern!r} is neither an address nor @domain")
    if settings.tls is not None:
        for key in ("cert_file", "key_file"):
            path = config.path(getattr(settings.tls, key))
            if not path.is_file():
                problems.append(f"{where}.tls.{key}: {str(path)!r} does not exist")
    if settings.auth is not None and settings.tls is None and not settings.auth.allow_without_tls:
        problems.append(
            f"{where}.auth: AUTH needs tls (STARTTLS), or auth.allow_without_tls: true for local testing"
        )
    if settings.store.directory is not None and settings.store.s3 is not None:
        problems.append(f"{where}.store: give one of directory, s3 (got both)")


def create(ctx: SourceContext) -> EmailSource:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
    return EmailSource(ctx)


class EmailSource:
    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._config: Config = ctx.config
        base = Path(ctx.base_dir)
        store = self._config.store
        messages = None if store.directory is None else _resolve(base, store.directory)
        self._spool = MailSpool(Path(ctx.state_dir), messages)
        self._store: MessageStore = self._make_store(ctx)
        self._base = base
        self._server: SmtpServer | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._inflight: set[asyncio.Task[str]] = set()
        self._closing = False
        self._closed = asyncio.Event()
        self._submit: Submit = ctx.submit

    def _make_store(self, ctx: SourceContext) -> MessageStore:
        s3 = self._config.store.s3
        if s3 is None:
            return LocalStore()
        return S3Store(
            bucket=s3.bucket,
            prefix=s3.prefix,
            endpoint=s3.endpoint,
            region=s3.region or ctx.region,
            access_key_id=s3.access_key_id or None,
            secret_access_key=s3.secret_access_key or None,
        )

    @property
    def port(self) -> int | None:
        """The bound port (useful with port: 0), once listening."""
        return self._server.port if self._server is not None else None

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        self._submit = self._ctx.submit
        await asyncio.to_thread(self._spool.open)
        backlog = await asyncio.to_thread(self._spool.pending)  # before listening: only crash leftovers
        async with contextlib.AsyncExitStack() as stack:
            await self._store.open(stack)
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                self._server = await self._listen()
                redeliver = tasks.create_task(self._redeliver(backlog)) if backlog else None
                try:
                    self._ctx.ready()
                    await self._closed.wait()
                except asyncio.CancelledError:
                    await self._drain()
                    raise
                finally:
                    if redeliver is not None:
                        redeliver.cancel()
                    for task in list(self._inflight):  # past drain_s: their spool records stay for next start
                        task.cancel()
                    self._server.stop_listening()
                    self._server.close_sessions()

    async def _listen(self) -> SmtpServer:
        from router.sources.email.smtp import server_tls_context, start_server

        cfg = self._config
        tls_context = None
        if cfg.tls is not None:
            tls_context = server_tls_context(
                str(_resolve(self._base, cfg.tls.cert_file)), str(_resolve(self._base, cfg.tls.key_file))
            )
        server = await start_server(
            SmtpSettings(
                host=cfg.host,
                port=cfg.port,
                hostname=cfg.hostname,
                policy=RecipientPolicy(cfg.recipients),
                receive=self._receive,
                max_message_bytes=cfg.max_message_bytes,
                max_recipients=cfg.max_recipients,
                max_sessions=cfg.max_sessions,
                session_timeout_s=cfg.session_timeout_s,
                tls_context=tls_context,
                require_tls=cfg.tls.required if cfg.tls else False,
                users=dict(cfg.auth.users) if cfg.auth else None,
                require_auth=cfg.auth.required if cfg.auth else False,
                auth_without_tls=cfg.auth.allow_without_tls if cfg.auth else False,
                listener=f"email source {self._ctx.name}",
            )
        )
        log.info(
            "email %s: SMTP listening on %s:%d",
            self._ctx.name,
            cfg.host,
            server.port,
            extra={"fields": {"source": self._ctx.name, "port": server.port}},
        )
        return server

    async def aclose(self) -> None:
        await self._drain()
        self._closed.set()

    async def _drain(self) -> None:
        """Stop taking mail, let messages past DATA finish for up to drain_s, hang up on the rest. Once."""
        if self._closing:
            return
        self._closing = True
        if self._server is not None:
            self._server.stop_listening()
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=self._config.drain_s)
        if self._server is not None:
            self._server.close_sessions()

    # -- receiving --------------------------------------------------------------------------------------

    async def _receive(self, incoming: IncomingMail) -> str:
        """The SMTP reply to a complete DATA. The work runs as a task a client cannot cancel by hanging up."""
        if self._closing or self._tasks is None:
            return REPLY_SHUTTING_DOWN
        task = self._tasks.create_task(self._accept(incoming))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def _accept(self, incoming: IncomingMail) -> str:
        received_at = self._ctx.clock.time()
        mail = SpooledMail(
            id=new_mail_id(received_at),
            received_at=received_at,
            mail_from=incoming.mail_from,
            recipients=incoming.recipients,
            helo=incoming.helo,
            peer=incoming.peer,
            tls=incoming.tls,
            auth_user=incoming.auth_user,
        )
        raw = self._stamp(mail, incoming) + incoming.data
        try:
            mail = await asyncio.to_thread(self._spool.put, mail, raw)
        except OSError as e:
            log.error("email %s: cannot spool a message: %s", self._ctx.name, e)
            return REPLY_DISK_FULL if is_disk_full(e) else REPLY_UNAVAILABLE.format(why="spool unavailable")
        try:
            await self._deliver(mail, raw)
        except Exception as e:
            return await self._refuse(mail, e)
        log.info(
            "email %s: accepted %s",
            self._ctx.name,
            mail.id,
            extra={
                "fields": {
                    "source": self._ctx.name,
                    "message_id": mail.id,
                    "size": mail.size,
                    "recipients": len(mail.recipients),
                }
            },
        )
        return REPLY_QUEUED.format(id=mail.id)

    async def _refuse(self, mail: SpooledMail, error: Exception) -> str:
        """The event was not queued: drop the spooled copy (the client retries) and say why, as a 4xx."""
        match error:
            case DispatchError():
                reply = REPLY_UNAVAILABLE.format(why=error.code)
            case StoreUnavailable():
                reply = REPLY_UNAVAILABLE.format(why="message store unavailable")
            case OSError() if is_disk_full(error):
                reply = REPLY_DISK_FULL
            case OSError():
                reply = REPLY_UNAVAILABLE.format(why="queue unavailable")
            case _:
                log.exception("email %s: delivering %s failed", self._ctx.name, mail.id, exc_info=error)
                reply = REPLY_UNAVAILABLE.format(why="internal error")
        log.warning("email %s: refused %s: %s", self._ctx.name, mail.id, error)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self._spool.discard, mail.id)
        return reply

    def _stamp(self, mail: SpooledMail, incoming: IncomingMail) -> bytes:
        return trace_headers(
            mail_from=mail.mail_from,
            helo=incoming.helo,
            peer=incoming.peer,
            hostname=self._config.hostname,
            protocol=_protocol(incoming),
            mail_id=mail.id,
            recipients=mail.recipients,
            date=timefmt.email_date(mail.received_at),
            verdicts={"spam": self._config.verdicts.spam, "virus": self._config.verdicts.virus},
        )

    # -- delivering -------------------------------------------------------------------------------------

    async def _deliver(self, mail: SpooledMail, raw: bytes) -> None:
        """Store, queue, then forget the spool record. Raises when the event was not queued."""
        await self._store.save(mail, raw)
        now = self._ctx.clock.time()
        envelope = await asyncio.to_thread(self.envelope, mail, raw, now)
        await self._submit([envelope])
        try:
            await asyncio.to_thread(self._spool.delivered, mail.id, keep_raw=self._store.keep_local)
        except OSError as e:  # queued already: a leftover record only means a duplicate after a restart
            log.warning("email %s: cannot clear spool record %s: %s", self._ctx.name, mail.id, e)

    def envelope(self, mail: SpooledMail, raw: bytes, now: float) -> Envelope:
        from router.shapes import ses

        record = ses.record(
            header_message(raw),
            mail_from=mail.mail_from,
            destination=destination(raw, mail.recipients),
            recipients=mail.recipients,
            time=mail.received_at,
            message_id=mail.id,
            processing_time_ms=max(0, int((now - mail.received_at) * 1000)),
            region=self._ctx.region,
            account=self._ctx.account_id,
        )
        receipt = record["ses"]["receipt"]
        self._set_verdicts(receipt)
        receipt["action"].update(self._store.location(mail))
        if self._config.include_content:
            record["ses"]["content"] = parse_content(raw)
        return ses.envelope(harden(record), source_name=self._ctx.name, id=mail.id, trace=_trace(record))

    def _set_verdicts(self, receipt: dict[str, Any]) -> None:
        verdicts = self._config.verdicts
        for name in VERDICT_NAMES:
            receipt[f"{name}Verdict"] = {"status": getattr(verdicts, name)}
        receipt.pop("dmarcPolicy", None)
        if verdicts.dmarc == "FAIL":
            receipt["dmarcPolicy"] = verdicts.dmarc_policy

    async def _redeliver(self, backlog: list[SpooledMail]) -> None:
        """Deliver, oldest first, what a previous run spooled but did not queue; back off while refused.

        A refusal (no such function, queue unavailable) is the same for the messages behind the refused one,
        so the loop waits and retries that one, from redeliver_interval_s doubling up to 5 minutes (or up to
        the interval itself, when that is longer).
        """
        pending = list(backlog)
        log.info("email %s: redelivering %d spooled message(s)", self._ctx.name, len(pending))
        first = self._config.redeliver_interval_s
        backoff = Backoff(first, max(first, MAX_REDELIVER_DELAY_S))
        while pending:
            if await self._redeliver_one(pending[0]):
                pending.pop(0)
                backoff.reset()
                continue
            await backoff.sleep(self._ctx.clock)

    async def _redeliver_one(self, mail: SpooledMail) -> bool:
        try:
            raw = await asyncio.to_thread(self._spool.read_raw, mail)
        except FileNotFoundError:
            log.error(
                "email %s: spooled message %s lost its raw file; dropping the record", self._ctx.name, mail.id
            )
            await asyncio.to_thread(self._spool.discard, mail.id)
            return True
        try:
            await self._deliver(mail, raw)
        except (DispatchError, StoreUnavailable, OSError) as e:
            log.warning("email %s: redelivery of %s refused (%s), will retry", self._ctx.name, mail.id, e)
            return False
        except Exception:
            log.exception("email %s: redelivery of %s failed, will retry", self._ctx.name, mail.id)
            return False
        return True


def _trace(record: dict[str, Any]) -> str | None:
    """Loop protection: the X-Amzn-Trace-Id header a function put on a mail it sent (router/trace.py)."""
    from router.core.trace import from_mail_headers

    return from_mail_headers(record["ses"]["mail"].get("headers") or [])


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p
