"""The SMTP side of the email source: aiosmtpd sessions with our policy, served on the daemon's event loop.

Contract (what a client sees; the source decides what happens to an accepted message):

* Not an open relay: RCPT TO is accepted only for addresses `RecipientPolicy` matches (550 5.1.1 otherwise);
  past `max_recipients` in one transaction RCPT gets 452 4.5.3 (RFC 5321: the client sends the rest later).
* Message size: SIZE is announced in EHLO; a MAIL FROM declaring more, or DATA carrying more, gets 552.
* Bare line endings: a message whose data holds a LF not preceded by CR, or a CR not followed by LF, is
  refused with 550 5.6.0. aiosmtpd 1.4.6 already ends DATA only on CRLF.CRLF, but a message stored with bare
  LFs could be cut differently by the next server that relays it (SMTP smuggling), so we do not take it.
* Concurrent sessions: past `max_sessions` a new connection gets 421 4.7.0 and is closed at once.
* After DATA, `receive(IncomingMail)` decides the reply (250 once safe, else 4xx); the session never answers
  250 on its own. Optional STARTTLS (tls_context) and AUTH PLAIN/LOGIN (users) are aiosmtpd's.
* Malformed input gets a 5xx reply and the session goes on (RFC 5321 4.2.2): an address the parser cannot
  take (`MAIL FROM:x@`, `RCPT TO:<@[`) gets 501 5.1.3 (the stdlib's parser raises IndexError and the like
  on some of them, which aiosmtpd would answer `500 Error: (IndexError) ...` with a traceback in the log);
  aiosmtpd answers the rest itself (500 for an unknown command or a line over 512 bytes, 501 for bad
  parameters, 503 for a bad sequence). Refusals are logged once each at most, rate-limited
  (router.edge.rejects), aiosmtpd's own warnings too. An error that is not the client's is logged with
  its traceback (rate-limited) and answered 451 4.3.0, never with the exception's text.

aiosmtpd is imported inside `start_server`, so importing this module stays cheap.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import ssl
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from router.edge.rejects import Budget, RejectLog, limit_logger

log = logging.getLogger("router.sources.email")

BARE_LINE_ENDING = re.compile(rb"(?<!\r)\n|\r(?!\n)")

REPLY_BARE_LF = "550 5.6.0 Message refused: bare LF or CR in message data (lines must end with CRLF)"
REPLY_TOO_MANY_SESSIONS = b"421 4.7.0 Too many concurrent sessions, try again later\r\n"
REPLY_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
REPLY_RECIPIENT_OK = "250 2.1.5 OK"
REPLY_BAD_ADDRESS = "501 5.1.3 Bad address syntax"
REPLY_INTERNAL_ERROR = "451 4.3.0 Internal error, try again later"
AIOSMTPD_LOGGER = "mail.log"


def has_bare_line_ending(data: bytes) -> bool:
    return BARE_LINE_ENDING.search(data) is not None


class RecipientPolicy:
    """Which RCPT TO addresses this server takes: exact addresses, or `@domain` for every address there.

    Matching ignores case (domains are case-insensitive; local parts are in practice) and never matches
    subdomains: `@example.test` takes `a@example.test`, not `a@mail.example.test`.
    """

    def __init__(self, patterns: list[str]) -> None:
        self.addresses = {p.lower() for p in patterns if not p.startswith("@")}
        self.domains = {p[1:].lower() for p in patterns if p.startswith("@")}

    def accepts(self, address: str) -> bool:
        address = address.strip().lower()
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            return False
        return address in self.addresses or domain in self.domains


@dataclass(frozen=True)
class IncomingMail:
    """One message as the SMTP transaction delivered it."""

    mail_from: str
    recipients: list[str]
    data: bytes
    helo: str = ""
    peer: str = ""
    tls: bool = False
    auth_user: str | None = None
    esmtp: bool = True


Receive = Callable[[IncomingMail], Awaitable[str]]


@dataclass
class SmtpSettings:
    host: str
    port: int
    hostname: str
    policy: RecipientPolicy
    receive: Receive
    max_message_bytes: int
    max_recipients: int
    max_sessions: int
    session_timeout_s: float
    tls_context: ssl.SSLContext | None = None
    require_tls: bool = False
    users: dict[str, str] | None = None
    require_auth: bool = False
    auth_without_tls: bool = False
    listener: str = "smtp"  # names the server in refusal log lines


class AddressSyntax(Exception):
    """A MAIL/RCPT/VRFY address the parser cannot take; answered 501 by MailHandler.handle_exception."""

    def __init__(self, peer: str, arg: str) -> None:
        super().__init__(f"bad address syntax: {arg[:100]!r}")
        self.peer = peer


class MailHandler:
    """aiosmtpd hooks: recipient policy, recipient limit, bare-LF refusal, handing DATA to `receive`, and
    the answer to an exception in a session (`handle_exception`)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.rejects = RejectLog(settings.listener)
        self._errors = Budget()

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, AddressSyntax):
            self.rejects.refused(error.peer, 501, str(error))
            return REPLY_BAD_ADDRESS
        if self._errors.take():
            log.error("%s: SMTP session error", self.settings.listener, exc_info=error)
        return REPLY_INTERNAL_ERROR

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if not self.settings.policy.accepts(address):
            return "550 5.1.1 Recipient address rejected: not accepted here"
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return REPLY_TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return REPLY_RECIPIENT_OK

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or b""
        if has_bare_line_ending(data):
            return REPLY_BARE_LF
        peer = _peer(session)
        auth = session.auth_data if session.authenticated else None
        incoming = IncomingMail(
            mail_from=envelope.mail_from or "",
            recipients=list(envelope.rcpt_tos),
            data=data,
            helo=session.host_name or "",
            peer=peer,
            tls=session.ssl is not None,
            auth_user=auth if isinstance(auth, str) else None,
            esmtp=bool(session.extended_smtp),
        )
        return await self.settings.receive(incoming)


def _peer(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")


def make_authenticator(users: dict[str, str]) -> Callable[..., Any]:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        if mechanism not in ("LOGIN", "PLAIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        expected = users.get(login)
        ok = expected is not None and hmac.compare_digest(expected.encode(), auth_data.password)
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    return authenticate


class _Refuse(asyncio.Protocol):
    """Stands in for a session past max_sessions: say 421 and hang up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(REPLY_TOO_MANY_SESSIONS)
        transport.close()


@dataclass
class SmtpServer:
    server: asyncio.Server
    sessions: set[Any] = field(default_factory=set)

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    def stop_listening(self) -> None:
        self.server.close()

    def close_sessions(self) -> None:
        for session in list(self.sessions):
            transport = getattr(session, "transport", None)
            if transport is not None:
                transport.close()


async def start_server(settings: SmtpSettings) -> SmtpServer:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    sessions: set[Any] = set()
    handler = MailHandler(settings)
    limit_logger(AIOSMTPD_LOGGER)  # it warns once per unrecognised command: a flood for a bad client
    authenticator = make_authenticator(settings.users) if settings.users else None

    class Session(SMTP):
        def connection_lost(self, error: Exception | None) -> None:
            sessions.discard(self)
            super().connection_lost(error)

        def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
            try:
                address, rest = super()._getaddr(arg)
            except Exception:  # the stdlib's address parser raises IndexError & co. on some bad input
                address, rest = None, None
            if address is None:
                raise AddressSyntax(_peer(self.session), arg)
            return address, rest

    def factory() -> asyncio.BaseProtocol:
        if len(sessions) >= settings.max_sessions:
            return _Refuse()
        with warnings.catch_warnings():
            # aiosmtpd warns when AUTH may go without TLS; the config asked for it (auth.allow_without_tls)
            warnings.simplefilter("ignore")
            session = Session(
                handler,
                hostname=settings.hostname,
                ident="router ESMTP",
                data_size_limit=settings.max_message_bytes,
                enable_SMTPUTF8=True,
                decode_data=False,
                tls_context=settings.tls_context,
                require_starttls=settings.require_tls,
                timeout=settings.session_timeout_s,
                auth_required=settings.require_auth,
                auth_require_tls=not settings.auth_without_tls,
                authenticator=authenticator,
                loop=loop,
            )
        sessions.add(session)
        return session

    server = await loop.create_server(factory, host=settings.host, port=settings.port)
    return SmtpServer(server=server, sessions=sessions)


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context
