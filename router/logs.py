"""Logging set-up: one line per record, JSON when stderr is not a terminal (for log shippers), text otherwise.

Extra fields passed with `logger.info(msg, extra={"fields": {...}})` are merged into the JSON object (and
appended as key=value in text mode), so one invocation is one structured line, like Lambda's REPORT line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

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


def setup_logging(level: str = "info", json_format: bool | None = None) -> None:
    if json_format is None:
        json_format = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    # One log line per invocation is on the hot path: skip the caller lookup and the thread/process fields
    # that no formatter here prints.
    setattr(logging, "_srcfile", None)  # noqa: B010 - private, not in every typeshed
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "botocore", "aiobotocore", "mail.log", "watchfiles", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
