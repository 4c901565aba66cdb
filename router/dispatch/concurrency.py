"""Concurrency accounting as Lambda does it: an account-wide limit, reserved concurrency carved out of it.

* `account.concurrency` is the total of calls in flight across all functions.
* A function with `reserved_concurrency` R may have at most R calls in flight (R = 0 throttles it completely),
  and those R are set aside: nobody else can use them.
* Every function without a reservation shares the rest: `account.concurrency - sum(reservations)`.

A call holds a `Slot` for exactly as long as it runs. `try_acquire` never waits: it returns a Slot or None;
`acquire` raises `Throttled` with Lambda's reason (REASON_RESERVED when the function's own reservation is
full, REASON_ACCOUNT when the shared pool is) and a retry-after hint. A Slot is a context manager and its
`release()` is idempotent, so the counts stay exact under cancellation, timeouts and crashes: whatever ends
the call, leaving the `with` block gives the slot back exactly once.

Reservations can change while calls are in flight (PutFunctionConcurrency, reload). A slot remembers the
pool it came from and returns to it; the new limits apply to the next acquisition. Every release calls the
`on_release` listeners (the async scheduler waits on them for capacity).

In a cluster the limits are the cluster's: `set_share(share)` (router/core/shares.py) makes this node admit
only its part of each, `share.of(reservation)` for a reserved function and `share.of(account concurrency
minus the reservations)` for the shared pool. `reservation()` and `account_concurrency` stay the
cluster-wide numbers (what PutFunctionConcurrency checks against); `limit()` and `unreserved_limit` are what
this node admits. Alone, the share is `WHOLE` and both are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType

from router.core.errors import REASON_ACCOUNT, REASON_RESERVED, Throttled
from router.core.shares import WHOLE, Share

RETRY_AFTER_S = 1.0  # the hint sync callers get with a throttle (Lambda's retryAfterSeconds)


class Slot:
    """One unit of concurrency held by one call. Release it exactly once (leaving `with` does)."""

    __slots__ = ("_accounting", "function", "released", "reserved")

    def __init__(self, accounting: Accounting, function: str, reserved: bool) -> None:
        self._accounting = accounting
        self.function = function
        self.reserved = reserved  # taken from the function's reservation, not the shared pool
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._accounting._release(self)

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class Accounting:
    def __init__(self, account_concurrency: int, reservations: Mapping[str, int] | None = None) -> None:
        self.account_concurrency = account_concurrency
        self._reservations: dict[str, int] = dict(reservations or {})
        self._share: Share = WHOLE
        self._limits: dict[str, int] = dict(self._reservations)  # this node's part of each reservation
        self._unreserved_limit = 0
        self._apply_share()
        self._in_use: dict[str, int] = {}
        self._reserved_in_use = 0  # slots taken from reservations, whatever they are now
        self._unreserved_in_use = 0
        self.on_release: list[Callable[[str], None]] = []

    # -- limits ---------------------------------------------------------------------------------------------

    def set_reservations(self, reservations: Mapping[str, int]) -> None:
        """Replace every function's reserved concurrency (functions absent from the map have none)."""
        self._reservations = dict(reservations)
        self._apply_share()

    def set_account_concurrency(self, concurrency: int) -> None:
        self.account_concurrency = concurrency
        self._apply_share()

    def set_share(self, share: Share) -> None:
        """This node's part of the cluster-wide limits (calls in flight keep their slots)."""
        self._share = share
        self._apply_share()

    @property
    def share(self) -> Share:
        return self._share

    def _apply_share(self) -> None:
        share = self._share
        self._limits = {f: share.of(r) for f, r in self._reservations.items()}
        self._unreserved_limit = share.of(max(0, self.account_concurrency - sum(self._reservations.values())))

    def reservation(self, function: str) -> int | None:
        """The function's reserved concurrency (cluster-wide in a cluster)."""
        return self._reservations.get(function)

    def limit(self, function: str) -> int | None:
        """What this node admits of a reserved function at once; None when it has no reservation."""
        return self._limits.get(function)

    @property
    def unreserved_limit(self) -> int:
        """The shared pool this node admits: (its part of) account concurrency minus every reservation."""
        return self._unreserved_limit

    # -- counts ---------------------------------------------------------------------------------------------

    def in_use(self, function: str | None = None) -> int:
        if function is None:
            return self._reserved_in_use + self._unreserved_in_use
        return self._in_use.get(function, 0)

    @property
    def unreserved_in_use(self) -> int:
        return self._held(None)

    def _held(self, reservation: str | None) -> int:
        """The calls in flight that count against a reserved function's limit (None: the shared pool's).
        Here, this process's; router/dispatch/ledger.py counts every process's."""
        return self._unreserved_in_use if reservation is None else self._in_use.get(reservation, 0)

    def _take(self, reservation: str | None, limit: int) -> bool:
        """Whether one more call fits a reserved function's limit (None: the shared pool's). Here
        `try_acquire` counts it; router/dispatch/ledger.py takes the unit in the ledger."""
        return self._held(reservation) < limit

    def _give(self, reservation: str | None) -> None:
        """One unit back (counted here by `_release` itself)."""

    def fits(self, share: Share) -> bool:
        """Whether the calls in flight fit in `share` of every limit (a cluster re-splitting waits for this
        before it publishes that it made room for another node)."""
        unreserved = max(0, self.account_concurrency - sum(self._reservations.values()))
        if self._held(None) > share.of(unreserved):
            return False
        return all(self._held(f) <= share.of(r) for f, r in self._reservations.items())

    def available(self, function: str) -> int:
        """How many more calls of `function` would be admitted right now."""
        reserved = self._limits.get(function)
        if reserved is not None:
            return max(0, reserved - self._held(function))
        return max(0, self.unreserved_limit - self._held(None))

    # -- acquiring ------------------------------------------------------------------------------------------

    def try_acquire(self, function: str) -> Slot | None:
        reserved = self._limits.get(function)
        if reserved is not None:
            if not self._take(function, reserved):
                return None
            self._reserved_in_use += 1
        else:
            if not self._take(None, self._unreserved_limit):
                return None
            self._unreserved_in_use += 1
        self._in_use[function] = self._in_use.get(function, 0) + 1
        return Slot(self, function, reserved is not None)

    def acquire(self, function: str) -> Slot:
        """A slot for one call of `function`, or `Throttled` at once with Lambda's reason."""
        slot = self.try_acquire(function)
        if slot is not None:
            return slot
        reserved = self._limits.get(function)
        if reserved is not None:
            reason, limit = REASON_RESERVED, f"reserved concurrency of {function} ({reserved})"
        else:
            reason, limit = REASON_ACCOUNT, f"unreserved account concurrency ({self.unreserved_limit})"
        error = Throttled(f"Rate Exceeded. {function}: {limit} in use", reason=reason)
        error.retry_after_s = RETRY_AFTER_S
        raise error

    def _release(self, slot: Slot) -> None:
        self._give(slot.function if slot.reserved else None)
        count = self._in_use.get(slot.function, 0) - 1
        if count > 0:
            self._in_use[slot.function] = count
        else:
            self._in_use.pop(slot.function, None)
        if slot.reserved:
            self._reserved_in_use -= 1
        else:
            self._unreserved_in_use -= 1
        for listener in self.on_release:
            listener(slot.function)
