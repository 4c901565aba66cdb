"""Logging refusals without letting a flood of bad requests flood the log.

`RejectLog(listener).refused(peer, status, reason)` writes one INFO line per refused request:

    http source api: refused 431 from 127.0.0.1: a header line is longer than 8190 bytes

with the fields `listener`, `peer`, `status`, `reason` (and `suppressed`, see below). No traceback: the
client sent something wrong and the router is fine. Lines are budgeted by a token bucket (`Budget`):
`burst` lines may go out at once, then `per_s` per second; a refusal over budget is only counted, and the
next line that goes out carries `suppressed=N` ("N more refused since"). So 10,000 bad requests in a second
cost a dozen lines, and a slow trickle is logged in full.

`RateLimitFilter` puts the same budget on a library's own logger (aiosmtpd warns once per unrecognised
command), dropping what is over it and noting the count on the next record let through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("router.edge")

BURST = 20
PER_S = 2.0


class Budget:
    """A token bucket: `take()` is True while lines may go out; `dropped` counts the refusals since."""

    def __init__(
        self, *, burst: int = BURST, per_s: float = PER_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst, self.per_s, self.clock = burst, per_s, clock
        self.tokens = float(burst)
        self.at = clock()
        self.dropped = 0

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.per_s)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.dropped += 1
        return False

    def claim_dropped(self) -> int:
        dropped, self.dropped = self.dropped, 0
        return dropped


class RejectLog:
    """One INFO line per refused request at most, rate-limited per listener."""

    def __init__(self, listener: str, *, logger: logging.Logger | None = None, budget: Budget | None = None):
        self.listener = listener
        self.logger = logger or log
        self.budget = budget or Budget()
        self.count = 0  # every refusal, logged or not

    def refused(self, peer: str | None, status: int | str, reason: str) -> None:
        self.count += 1
        if not self.budget.take():
            return
        fields: dict[str, object] = {
            "listener": self.listener,
            "peer": peer or "?",
            "status": status,
            "reason": reason,
        }
        suppressed = self.budget.claim_dropped()
        if suppressed:
            fields["suppressed"] = suppressed
        more = f" ({suppressed} more refused since the last line)" if suppressed else ""
        self.logger.info(
            "%s: refused %s from %s: %s%s",
            self.listener,
            status,
            peer or "?",
            reason,
            more,
            extra={"fields": fields},
        )


class RateLimitFilter(logging.Filter):
    """Lets a logger's records through within a `Budget`; the next one let through notes how many were not."""

    def __init__(self, budget: Budget | None = None) -> None:
        super().__init__()
        self.budget = budget or Budget()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.budget.take():
            return False
        suppressed = self.budget.claim_dropped()
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar lines left out)"
        return True


def limit_logger(name: str) -> None:
    """Put a RateLimitFilter on the named logger, once."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RateLimitFilter) for f in logger.filters):
        logger.addFilter(RateLimitFilter())
