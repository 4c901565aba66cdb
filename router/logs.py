"""Logging set-up: one line per record, JSON when stderr is not a terminal (for log shippers), text otherwise.

Extra fields passed with `logger.info(msg, extra={"fields": {...}})` are merged into the JSON object (and
appended as key=value in text mode).

Each call's own lines go to logger `router.function.<name>` through a `CallLines` (one per function): START,
the function's output, END and REPORT (INIT_REPORT for an init that failed), the text exactly as Lambda
prints it. In text mode that text is the message after the usual `time level logger:` prefix, with nothing
appended; in JSON mode it is `msg`, with `request_id` and `function` (and, on REPORT, the call's figures:
duration, billed, memory, memory_size, init, cold, cost_usd, outcome) as fields. They are on the hot path,
so once `setup_logging` has installed the daemon's handler, `CallLines.emit` formats them itself, and all
the lines emitted in one turn of the event loop reach the handler's stream in one write (a LogRecord and a
write per line would cost about 13 us each; a write per call is a system call per call); without it (the
router used as a library, tests) they are ordinary log records.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import msgspec

from router.core import timefmt

_encode = msgspec.json.Encoder(enc_hook=str).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": timefmt.iso_ms(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _encode(out).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


class _Handler(logging.StreamHandler[TextIO]):
    """The daemon's handler: a record waits for the call lines pending before it (the log keeps its order)."""

    sink: _Sink | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.sink is not None and self.sink.pending:
            self.sink.drain()
        super().emit(record)

    def flush(self) -> None:
        if self.sink is not None and self.sink.pending:
            self.sink.drain()  # drain flushes the stream itself
            return
        super().flush()


class _Sink:
    """The daemon's handler, written to directly by CallLines.

    Lines emitted on a running event loop wait in `pending` until the loop has run what is ready: every
    call that finished in that iteration reaches the stream in one write (stderr is line-buffered, so a
    write per emit would be a system call per call). Anything else logged in between drains them first,
    as does the handler's flush (logging's shutdown)."""

    def __init__(self, handler: _Handler, json_format: bool) -> None:
        self.handler = handler
        self.json = json_format
        self.pending: list[str] = []
        self._second = -1
        self._stamp = ""

    def _time(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            if self.json:
                self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            else:
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._second = second
        millis = int((now - second) * 1000)
        return f"{self._stamp}.{millis:03d}Z" if self.json else f"{self._stamp},{millis:03d}"

    def write(
        self, logger: str, lines: Sequence[str], fields: dict[str, Any], last: Mapping[str, Any]
    ) -> None:
        """`lines` (at least one) as call lines; `fields` (CallLines': request_id, function) on each, updated
        with `last` on the last one (REPORT's figures). Neither holds a line's own keys (time, level, logger,
        msg)."""
        stamp = self._time(time.time())
        if self.json:
            # Each line is {"time", "level", "logger", "msg", **fields}: the parts around the message are
            # encoded once for all the lines.
            head = f'{{"time":"{stamp}","level":"info","logger":{_encode(logger).decode()},"msg":'
            rest = "," + _encode(fields).decode()[1:] if fields else "}"
            final = "," + _encode({**fields, **last}).decode()[1:] if fields or last else "}"
            last_at = len(lines) - 1
            parts = [f"{head}{_encode(line).decode()}{rest}\n" for line in lines[:last_at]]
            parts.append(f"{head}{_encode(lines[last_at]).decode()}{final}\n")
            text = "".join(parts)
        else:
            prefix = f"{stamp} INFO    {logger}: "
            text = "".join(prefix + line + "\n" for line in lines)
        if not self.pending:
            try:
                asyncio.get_running_loop().call_soon(self.drain)
            except RuntimeError:  # no loop running in this thread: at once
                self.pending.append(text)
                self.drain()
                return
        self.pending.append(text)

    def drain(self) -> None:
        """Write what is pending, in one write."""
        if not self.pending:
            return
        handler = self.handler
        handler.acquire()
        try:
            pending, self.pending = self.pending, []
            text = "".join(pending)
            handler.stream.write(text)
            handler.stream.flush()
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": text}))
        finally:
            handler.release()


_sink: _Sink | None = None


class CallLines:
    """One function's per-call lines on the daemon's log (see the module docstring)."""

    __slots__ = ("function", "logger")

    def __init__(self, function: str) -> None:
        self.function = function
        self.logger = logging.getLogger(f"router.function.{function}")

    def emit(
        self, lines: Sequence[str], request_id: str | None, last: Mapping[str, Any] | None = None
    ) -> None:
        """Log `lines` of the call `request_id` (None: outside any call, e.g. during init); `last` holds the
        fields of the last line (REPORT's figures)."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        fields = {"request_id": request_id, "function": self.function}
        sink = _sink
        if sink is not None:
            sink.write(self.logger.name, lines, fields, last or {})
            return
        for i, line in enumerate(lines):
            extra = {**fields, **last} if last and i == len(lines) - 1 else fields
            self.logger.info("%s", line, extra=extra)


def current_format() -> tuple[str, bool]:
    """(level, JSON?) of the daemon's log as setup_logging set it up (for processes that log alike)."""
    level = logging.getLevelName(logging.getLogger().level).lower()
    return level, _sink.json if _sink is not None else True


def setup_logging(level: str = "info", json_format: bool | None = None) -> None:
    global _sink
    if json_format is None:
        json_format = not sys.stderr.isatty()
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    # One log line per invocation is on the hot path: skip the caller lookup and the thread/process fields
    # that no formatter here prints.
    setattr(logging, "_srcfile", None)  # noqa: B010 - private, not in every typeshed
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _sink = handler.sink = _Sink(handler, json_format)
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "botocore", "aiobotocore", "mail.log", "watchfiles", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
