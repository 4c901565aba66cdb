"""The daemon's call lines: what one turn of the event loop emits reaches the log in one write, in order."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest

from router import logs


class Stream(io.StringIO):
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stream]:
    out = Stream()
    handler = logs._Handler(out)
    handler.setFormatter(logs.TextFormatter())
    handler.sink = logs._Sink(handler, json_format=False)
    monkeypatch.setattr(logs, "_sink", handler.sink)
    logger = logging.getLogger("router.test_batching")
    monkeypatch.setattr(logger, "handlers", [handler])
    monkeypatch.setattr(logger, "propagate", False)
    logger.setLevel(logging.INFO)
    calls = logging.getLogger("router.function")
    level = calls.level
    calls.setLevel(logging.INFO)
    yield out
    calls.setLevel(level)
    logger.setLevel(logging.NOTSET)


def test_lines_of_one_loop_turn_go_out_in_one_write(stream: Stream) -> None:
    async def main() -> None:
        logs.CallLines("a").emit(["START RequestId: 1", "END RequestId: 1"], "1")
        logs.CallLines("b").emit(["REPORT RequestId: 2"], "2")
        assert stream.writes == []
        await asyncio.sleep(0)
        assert len(stream.writes) == 1
        assert [line.split(": ", 1)[1] for line in stream.writes[0].splitlines()] == [
            "START RequestId: 1",
            "END RequestId: 1",
            "REPORT RequestId: 2",
        ]

    asyncio.run(main())


def test_a_record_logged_in_between_comes_after_the_lines_before_it(stream: Stream) -> None:
    async def main() -> None:
        logs.CallLines("a").emit(["REPORT RequestId: 1"], "1")
        logging.getLogger("router.test_batching").warning("after the report")
        logs.CallLines("a").emit(["REPORT RequestId: 2"], "2")
        await asyncio.sleep(0)

    asyncio.run(main())
    text = stream.getvalue()
    assert text.index("RequestId: 1") < text.index("after the report") < text.index("RequestId: 2")


def test_without_a_running_loop_lines_are_written_at_once(stream: Stream) -> None:
    logs.CallLines("a").emit(["REPORT RequestId: 3"], "3")
    assert len(stream.writes) == 1 and "RequestId: 3" in stream.writes[0]


def test_flush_writes_what_is_pending(stream: Stream) -> None:
    async def main() -> None:
        logs.CallLines("a").emit(["REPORT RequestId: 4"], "4")
        assert logs._sink is not None
        logs._sink.handler.flush()
        assert "RequestId: 4" in stream.getvalue()

    asyncio.run(main())
