"""Request ids: random (version 4) UUIDs in their usual text form, as Lambda's are.

`new_request_id()` builds the text from 16 random bytes directly: a third of `str(uuid.uuid4())`'s cost
(no UUID object, no integer round trip), and it is made for every call.
"""

from __future__ import annotations

import os

# The variant nibble: 10xx in binary (RFC 4122), from any random hex digit.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_request_id() -> str:
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
