"""Metering and the per-call log: billed duration, cost, Lambda's START/END/REPORT lines, a bounded log.

* `billed_ms(duration_ms, granularity_ms)`: rounded up to the granularity (Lambda: 1 ms since Dec 2020).
* `cost_usd(billed_ms, memory_mb, billing)`: request price plus GB-seconds at the configured price.
* `start_line`, `end_line`, `report_line`: Lambda's exact formats, REPORT fields separated by tabs (plus
  `CPU Time: X ms` after Lambda's fields when the instance's cgroup measured it).
* `CallLog`: the lines of one call, keeping only the last `limit` bytes (the tail is what callers read).
* `report_fields(result, function)`: the figures of a call, as fields of its REPORT line on the daemon's log
  (router/logs.py CallLines: the one structured line per invocation).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Literal

from router.config import BillingConfig
from router.core.results import InvocationResult

MIB = 1024 * 1024
CALL_LOG_LIMIT = 64 * 1024

# The Status of a REPORT line for a call the platform failed (Lambda prints none for a function error).
ReportStatus = Literal["timeout", "error"]


def billed_ms(duration_ms: float, granularity_ms: int = 1) -> int:
    # A hair of float noise (27.000000001 ms) must not bill a whole extra unit.
    units = math.ceil(round(duration_ms / granularity_ms, 6))
    return max(units, 0) * granularity_ms


def cost_usd(billed: int, memory_mb: int, billing: BillingConfig) -> float:
    return billing.request_usd + billed / 1000 * memory_mb / 1024 * billing.gb_second_usd


def memory_mb_used(peak_bytes: int) -> int:
    return math.ceil(peak_bytes / MIB)


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(result: InvocationResult, *, status: ReportStatus | None = None) -> str:
    """REPORT as Lambda prints it; `status` is "timeout" or "error" (with the error type) when the call failed
    in the platform (timeout, out of memory, crash), as Lambda's newer REPORT lines say."""
    line = (
        f"REPORT RequestId: {result.request_id}\tDuration: {result.duration_ms:.2f} ms\t"
        f"Billed Duration: {result.billed_ms} ms\tMemory Size: {result.memory_mb} MB\t"
        f"Max Memory Used: {result.max_memory_mb} MB"
    )
    if result.init_ms is not None:
        line += f"\tInit Duration: {result.init_ms:.2f} ms"
    if result.cpu_ms is not None:
        line += f"\tCPU Time: {result.cpu_ms:.2f} ms"  # ours, not Lambda's: where a cgroup measures it
    if status == "timeout":
        line += "\tStatus: timeout"
    elif status == "error":
        line += f"\tStatus: error\tError Type: {result.error_type}"
    return line


def init_report_line(init_ms: float, error_type: str) -> str:
    return (
        f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error\tError Type: {error_type}"
    )


class CallLog:
    """The lines of one call; only the last `limit` bytes are kept."""

    def __init__(self, limit: int = CALL_LOG_LIMIT) -> None:
        self._limit = limit
        self._lines: deque[bytes] = deque()
        self._size = 0

    def add(self, line: bytes) -> None:
        if not line.endswith(b"\n"):
            line += b"\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size > self._limit:
            self._trim()

    def add_text(self, text: str) -> None:
        """A line of the router's own (START, END, REPORT): `add` in one step, as every call adds three."""
        line = text.encode() if text.endswith("\n") else (text + "\n").encode()
        self._lines.append(line)
        self._size += len(line)
        if self._size > self._limit:
            self._trim()

    def _trim(self) -> None:
        """Back within the limit: the last line (the one just added) cut to its last `limit` bytes, then the
        oldest lines dropped."""
        last = self._lines[-1]
        if len(last) > self._limit:
            self._lines[-1] = last[-self._limit :]
            self._size -= len(last) - self._limit
        while self._size > self._limit:
            self._size -= len(self._lines.popleft())

    def take(self) -> bytes:
        data = b"".join(self._lines)
        self._lines.clear()
        self._size = 0
        return data


def report_fields(result: InvocationResult, function: str) -> dict[str, Any]:
    """The figures of a call as fields of its REPORT line (JSON logs): the one structured line per call."""
    return {
        "function": function,
        "duration": round(result.duration_ms, 2),
        "billed": result.billed_ms,
        "memory": result.max_memory_mb,
        "memory_size": result.memory_mb,
        "init": None if result.init_ms is None else round(result.init_ms, 2),
        "cpu": None if result.cpu_ms is None else round(result.cpu_ms, 2),
        "cold": result.cold,
        "cost_usd": result.cost_usd,
        "outcome": "ok" if result.ok else (result.error_type or "error"),
    }
