"""Concurrency counted across the router's processes (`server.processes`), exactly, in shared memory.

With several front processes (router/processes.py) each process runs its own instances, but account and
reserved concurrency are limits of the whole router: a call admitted in one process must count against the
calls in flight in all of them. The `Ledger` is a small file mapped into every process:

* one row per process: the calls it holds from the shared (unreserved) pool, and per reserved function
  (a slot named after it, given out on first use and kept) the calls it holds of that reservation;
* the config generation: the primary bumps it whenever functions, limits or faults change, and the other
  processes catch up before their next call (router/process_main.py).

Admission reads the totals of all rows and adds one to its own cell under an exclusive `flock` of the file
(two system calls), so two processes never both take the last unit. A release subtracts one from its own
cell without the lock: only its process writes a cell (aligned 8-byte words, so a reader sees the old value
or the new one, and an old value only makes it more cautious). When a process dies, the primary zeroes its
row (`clear(index)`) before it starts a replacement: the calls it held ended with it.

`SharedAccounting` is `router.dispatch.concurrency.Accounting` with its counts against the limits kept in the
ledger (`_held`, `_take`, `_give`), so that admission, `available` and `fits` read every process's;
`in_use()` and `unreserved_in_use` are router-wide; `in_use(function)` is this process's own.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from router.dispatch.concurrency import Accounting

MAGIC = 0x524F555445524C31  # "ROUTERL1"
NAME_WORDS = 8  # a slot's name: 64 bytes (Lambda function names are at most 64 characters)
SLOTS = 4096
HEADER = 4  # magic, generation, processes, slots

__all__ = ["Ledger", "SharedAccounting"]


def _size(processes: int) -> int:
    return 8 * (HEADER + processes + SLOTS * (NAME_WORDS + processes))


def _key(name: str) -> bytes:
    raw = name.encode()
    if len(raw) > 8 * NAME_WORDS:
        raw = hashlib.sha256(raw).hexdigest().encode()
    return raw.ljust(8 * NAME_WORDS, b"\0")


class Ledger:
    """One process's handle on the shared counts; `index` is its row."""

    def __init__(self, path: Path, index: int) -> None:
        self.path = Path(path)
        self.index = index
        self._fd = os.open(self.path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, 0)
        self._words = memoryview(self._map).cast("B").cast("q")
        if self._words[0] != MAGIC:
            self.close()
            raise ValueError(f"{self.path}: not a router ledger")
        self.processes = int(self._words[2])
        if not 0 <= index < self.processes:
            self.close()
            raise ValueError(f"{self.path}: no row {index} of {self.processes}")
        self._pool = HEADER  # the pool's cells: HEADER + process
        self._slots = HEADER + self.processes
        self._stride = NAME_WORDS + self.processes
        self._slot_of: dict[str, int] = {}  # function -> the word where its slot's counts start

    @classmethod
    def create(cls, processes: int, folder: str | None = None) -> Ledger:
        """A new ledger file (in /dev/shm when there is one) for `processes` rows; this handle is row 0."""
        if folder is None and Path("/dev/shm").is_dir():
            folder = "/dev/shm"
        fd, name = tempfile.mkstemp(prefix="router-ledger-", dir=folder)
        try:
            os.ftruncate(fd, _size(processes))
            with mmap.mmap(fd, 0) as m:
                header = memoryview(m).cast("B").cast("q")
                header[1], header[2], header[3] = 0, processes, SLOTS
                header[0] = MAGIC
                header.release()
        finally:
            os.close(fd)
        return cls(Path(name), 0)

    def close(self) -> None:
        with contextlib.suppress(AttributeError):
            self._words.release()
        with contextlib.suppress(AttributeError, BufferError):
            self._map.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def remove(self) -> None:
        """Close, and delete the file (the primary, when the router stops)."""
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    # -- the config generation ------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return int(self._words[1])

    def bump(self) -> None:
        """A new generation (the primary: functions, limits or faults changed)."""
        with self._locked():
            self._words[1] += 1

    # -- counts ---------------------------------------------------------------------------------------------

    def _slot(self, function: str) -> int:
        """The first count word of `function`'s slot; called under the lock (it may give one out)."""
        start = self._slot_of.get(function)
        if start is not None:
            return start
        key = _key(function)
        raw = self._map
        for i in range(SLOTS):
            word = self._slots + i * self._stride
            name = raw[8 * word : 8 * (word + NAME_WORDS)]
            if name == key or name[0] == 0:
                if name[0] == 0:
                    raw[8 * word : 8 * (word + NAME_WORDS)] = key
                self._slot_of[function] = word + NAME_WORDS
                return word + NAME_WORDS
        raise RuntimeError(f"the concurrency ledger has no room for more than {SLOTS} reserved functions")

    def admit(self, function: str | None, limit: int) -> bool:
        """Take one unit of `function`'s reservation (None: of the shared pool) if all processes together
        hold fewer than `limit`."""
        if function is None:
            start = self._pool
        else:
            start = self._slot_of.get(function, -1)
            if start < 0:
                with self._locked():
                    start = self._slot(function)
        words, fd = self._words, self._fd
        fcntl.flock(fd, fcntl.LOCK_EX)  # not a context manager: this is on every call's path
        try:
            if sum(words[start : start + self.processes]) >= limit:
                return False
            words[start + self.index] += 1
            return True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def leave(self, function: str | None) -> None:
        """Give back one unit this process holds (no lock: only this process writes its cells)."""
        start = self._pool if function is None else self._slot_of[function]
        self._words[start + self.index] -= 1

    def total(self, function: str | None) -> int:
        """What all processes hold of `function`'s reservation (None: of the shared pool)."""
        if function is None:
            start = self._pool
        else:
            with self._locked():
                start = self._slot(function)
        return int(sum(self._words[start : start + self.processes]))

    def _counts(self) -> Iterator[int]:
        """The first count word of the pool, then of every slot given out so far."""
        yield self._pool
        for i in range(SLOTS):
            word = self._slots + i * self._stride
            if self._words[word] == 0:  # slots are given out in order: the rest are free
                return
            yield word + NAME_WORDS

    def all_held(self) -> int:
        """What every process holds, the pool and every reservation (calls in flight router-wide)."""
        words, n = self._words, self.processes
        return int(sum(sum(words[start : start + n]) for start in self._counts()))

    def held(self, index: int) -> int:
        """What process `index` holds in all (the pool and every reservation)."""
        return int(sum(self._words[start + index] for start in self._counts()))

    def clear(self, index: int) -> None:
        """Zero process `index`'s row: it died, and the calls it held ended with it."""
        with self._locked():
            for start in self._counts():
                self._words[start + index] = 0


class SharedAccounting(Accounting):
    """`Accounting` whose admissions count the calls of every process (the ledger's totals)."""

    def __init__(
        self, ledger: Ledger, account_concurrency: int, reservations: Mapping[str, int] | None = None
    ) -> None:
        self.ledger = ledger
        super().__init__(account_concurrency, reservations)

    def in_use(self, function: str | None = None) -> int:
        """Router-wide for the account (every process), this process's own for one function."""
        if function is None:
            return self.ledger.all_held()
        return super().in_use(function)

    def _held(self, reservation: str | None) -> int:
        return self.ledger.total(reservation)

    def _take(self, reservation: str | None, limit: int) -> bool:
        return self.ledger.admit(reservation, limit)

    def _give(self, reservation: str | None) -> None:
        self.ledger.leave(reservation)
