"""Request ids are version-4 UUIDs in canonical text form, and random."""

from __future__ import annotations

import os
import uuid

from router.core.ids import POOL, new_request_id, random_bytes, random_hex


def test_request_ids_are_random_v4_uuids() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_a_forked_child_draws_other_bytes_than_its_parent() -> None:
    random_bytes(1)  # the pool holds bytes now; the child must not hand out the same ones
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, random_bytes(64))
        os._exit(0)
    os.close(write)
    child = b""
    while chunk := os.read(read, 64):
        child += chunk
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 64 and child != random_bytes(64)


def test_the_pool_refills_and_hands_out_what_is_asked() -> None:
    drawn = [random_bytes(48) for _ in range(2 * POOL // 48)]
    assert all(len(b) == 48 for b in drawn) and len(set(drawn)) == len(drawn)
    assert len(random_bytes(POOL + 5)) == POOL + 5
    assert all(c in "0123456789abcdef" for c in random_hex(7)) and len(random_hex(7)) == 7
