"""The email driver: an event is one mail sent with smtplib (in a thread) whose Subject is its key.

Acknowledged = the sender got 250 after DATA. A refusal is the sender's to retry, as SMTP works: the source
answers 451 (and keeps no copy), and the driver sends the same mail again.
"""

from __future__ import annotations

import asyncio
import smtplib
from typing import Any

from tests.contract.drivers.base import Event, KindDriver

SENDER, RECIPIENT = "ann@sender.test", "inbox@example.test"


def send_mail(port: int, subject: str) -> int:
    """One SMTP transaction; the reply code to DATA (250, or the 4xx/5xx of a refusal)."""
    message = f"From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: {subject}\r\n\r\nHello.\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        try:
            client.sendmail(SENDER, [RECIPIENT], message)
        except smtplib.SMTPDataError as e:
            return e.smtp_code
    return 250


class EmailDriver(KindDriver):
    kind = "email"
    name = "email"
    pushed = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.port = 0
        self.sending: list[asyncio.Task[int]] = []

    def source_yaml(self) -> str:
        return "port: 0\nrecipients: ['@example.test']\ndrain_s: 1"

    async def started(self, source: Any) -> None:
        self.port = source.port

    async def produce(self) -> Event:
        return self._send(self.token())

    def _send(self, key: str) -> Event:
        task = asyncio.create_task(asyncio.to_thread(send_mail, self.port, key))
        self.sending.append(task)
        return Event(key, task)

    def keys(self, event: Any) -> list[str]:
        return [r["ses"]["mail"]["commonHeaders"]["subject"] for r in event["Records"]]

    async def acknowledged(self, event: Event) -> bool:
        return bool(event.handle.done() and event.handle.result() == 250)

    async def retry(self, event: Event) -> Event:
        code = await event.handle
        assert code == 451, f"a refused mail is answered 451 (try again later), got {code}"
        return self._send(event.key)

    async def close(self) -> None:
        await asyncio.gather(*self.sending, return_exceptions=True)
