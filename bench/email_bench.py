"""Email source throughput: messages per second with a durable spool, against a bare aiosmtpd server.

    /tmp/venv/bin/python bench/email_bench.py [--connections 4] [--messages 100] [--rounds 5]

* baseline: a bare aiosmtpd server on the same event loop, with a handler that answers 250 at once (no
  spool, no event). This is the floor: the SMTP protocol, smtplib and the loopback.
* source: the email source (`router.sources.email.source`) with a submit that only counts. Each message is
  spooled (two files written, fsynced, renamed, folders fsynced), its SES event is built, and its spool
  record is removed. Only then does it get 250.

`connections` smtplib clients (threads), each sending `messages` messages on one connection. Rounds
alternate baseline and source so both see the same load on a shared machine. The script prints the medians
and the ratio source / baseline. The source pays for three fsyncs per message, so the ratio shows what
durability costs on this disk.
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.core.clock import SystemClock
from router.core.envelope import Envelope
from router.core.ports import Delivery, SourceContext
from router.sources import email as email_source
from router.validate import parse_config

MESSAGE = (
    b"From: Ann <ann@sender.test>\r\nTo: inbox@example.test\r\nSubject: bench\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"Some text of a typical length.\r\n" * 60
)


def client(port: int, messages: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for _ in range(messages):
            smtp.sendmail("ann@sender.test", ["inbox@example.test"], MESSAGE)


async def drive(port: int, connections: int, messages: int) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(asyncio.to_thread(client, port, messages) for _ in range(connections)))
    return connections * messages / (time.perf_counter() - start)


class Bare:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def baseline_server() -> tuple[asyncio.Server, int]:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Bare(), hostname="bench", enable_SMTPUTF8=True, loop=loop), "127.0.0.1", 0
    )
    return server, server.sockets[0].getsockname()[1]


async def source_server(state: Path) -> tuple[email_source.EmailSource, asyncio.Task[None], int]:
    cfg = parse_config("sources:\n  inbox: {kind: email, port: 0, recipients: ['@example.test']}\n")
    count = 0

    async def submit(envelopes: Sequence[Envelope]) -> Delivery:
        nonlocal count
        count += len(envelopes)
        return Delivery(queued=len(envelopes))

    ready = asyncio.Event()
    ctx = SourceContext(
        name="inbox",
        config=cfg.sources["inbox"],
        routes=[],
        state_dir=state,
        clock=SystemClock(),
        submit=submit,
        ready=ready.set,
    )
    source = email_source.create(ctx)
    task = asyncio.create_task(source.run())
    await ready.wait()
    assert source.port is not None
    return source, task, source.port


async def main(connections: int, messages: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bare, bare_port = await baseline_server()
        source, task, source_port = await source_server(Path(tmp))
        await drive(bare_port, 1, 5)  # warm-up: imports, first connections
        await drive(source_port, 1, 5)
        base, spooled = [], []
        for _ in range(rounds):
            base.append(await drive(bare_port, connections, messages))
            spooled.append(await drive(source_port, connections, messages))
        await source.aclose()
        await task
        bare.close()
    b, s = statistics.median(base), statistics.median(spooled)
    print(f"message size {len(MESSAGE)} B, {connections} connections x {messages} messages, {rounds} rounds")
    print(f"baseline (bare aiosmtpd, 250 at once): {b:8.0f} msg/s")
    print(f"email source (spool + event + 250):    {s:8.0f} msg/s")
    print(f"ratio source / baseline: {s / b:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.connections, args.messages, args.rounds))
