"""Request ids: random (version 4) UUIDs in their usual text form, as Lambda's are; random hex for trace ids.

`new_request_id()` builds the text from 16 random bytes directly: a third of `str(uuid.uuid4())`'s cost
(no UUID object, no integer round trip), and it is made for every call. `random_bytes(n)` and
`random_hex(n)` draw from the kernel's generator (os.urandom) `POOL` bytes at a time, so a call's three ids
(request id, trace root and parent) cost no system call each. A forked child starts with an empty pool
(it never hands out what its parent also holds).
"""

from __future__ import annotations

import os

POOL = 4096

# The variant nibble: 10xx in binary (RFC 4122), from any random hex digit.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}

_pool = b""
_at = 0


def _reset() -> None:
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_reset)


def random_bytes(n: int) -> bytes:
    """n bytes from os.urandom, taken from a pool refilled POOL bytes at a time."""
    global _pool, _at
    end = _at + n
    if end > len(_pool):
        _pool, _at, end = os.urandom(max(POOL, n)), 0, n
    out = _pool[_at:end]
    _at = end
    return out


def random_hex(n: int) -> str:
    """n random hex digits."""
    return random_bytes((n + 1) // 2).hex()[:n]


def new_request_id() -> str:
    h = random_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
