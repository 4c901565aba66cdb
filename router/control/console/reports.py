"""The REPORT lines of the latest calls, for the console's live list.

The record's listings carry no logs (the durable record reads them only for one request), so the console
keeps each call's REPORT line as the invoker printed it (with `CPU Time` and a timeout's or crash's
`Status`). `ReportLines.record` is a `Dispatcher.on_result` hook: it keeps the log's last bytes, not the
whole log, for the newest `keep` calls; `line(request_id, time)` finds one (None once it has been dropped:
the feed then rebuilds it from the recorded figures, router/control/console/stream.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.core.results import InvocationResult
    from router.dispatch.stats import Call

KEEP = 2048
TAIL = 512  # bytes of the log's end kept: the REPORT line is its last line
MARK = b"REPORT RequestId: "


class ReportLines:
    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._tails: OrderedDict[tuple[str, float], bytes] = OrderedDict()

    def record(self, function: str, call: Call, result: InvocationResult) -> None:
        self._tails[(result.request_id, call.started_at)] = result.log[-TAIL:]
        if len(self._tails) > self.keep:
            self._tails.popitem(last=False)

    def line(self, request_id: str, time: float) -> str | None:
        tail = self._tails.get((request_id, time))
        if tail is None:
            return None
        return report_in(tail)


def report_in(log: bytes) -> str | None:
    """The last REPORT line in a log, None when it has none."""
    at = log.rfind(MARK)
    if at < 0:
        return None
    return log[at:].split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
