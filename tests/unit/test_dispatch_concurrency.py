"""Concurrency accounting: reserved concurrency caps and is carved out, the rest is shared, slots exact."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.errors import REASON_ACCOUNT, REASON_RESERVED, Throttled
from router.dispatch.concurrency import Accounting


def test_reserved_concurrency_caps_the_function_with_the_reserved_reason() -> None:
    acc = Accounting(10, {"a": 2})
    slots = [acc.acquire("a"), acc.acquire("a")]
    with pytest.raises(Throttled) as e:
        acc.acquire("a")
    assert e.value.reason == REASON_RESERVED
    assert e.value.retry_after_s and e.value.retry_after_s > 0
    assert acc.in_use("a") == 2
    slots[0].release()
    acc.acquire("a")
    assert acc.in_use("a") == 2


def test_reservations_are_carved_out_of_the_shared_pool() -> None:
    acc = Accounting(5, {"a": 3})
    assert acc.unreserved_limit == 2
    acc.acquire("b")
    acc.acquire("c")
    with pytest.raises(Throttled) as e:
        acc.acquire("b")
    assert e.value.reason == REASON_ACCOUNT
    # The reservation stays available to its function although the shared pool is full.
    for _ in range(3):
        acc.acquire("a")
    assert acc.in_use() == 5


def test_reserved_zero_throttles_completely() -> None:
    acc = Accounting(10, {"off": 0})
    with pytest.raises(Throttled) as e:
        acc.acquire("off")
    assert e.value.reason == REASON_RESERVED
    assert acc.in_use() == 0


def test_release_is_idempotent_and_context_manager_releases_on_error() -> None:
    acc = Accounting(1)
    slot = acc.acquire("a")
    slot.release()
    slot.release()
    assert acc.in_use() == 0
    with pytest.raises(RuntimeError), acc.acquire("a"):
        raise RuntimeError("crash")
    assert acc.in_use() == 0 and acc.unreserved_in_use == 0


def test_a_slot_returns_to_the_pool_it_came_from_after_a_reservation_change() -> None:
    acc = Accounting(4)
    shared = acc.acquire("a")
    acc.set_reservations({"a": 1})
    reserved = acc.acquire("a") if acc.available("a") else None
    assert reserved is None  # a already has one call in flight, its new reservation is 1
    shared.release()
    assert acc.unreserved_in_use == 0 and acc.in_use() == 0
    slot = acc.acquire("a")
    acc.set_reservations({})
    slot.release()
    assert acc.in_use() == 0 and acc.unreserved_in_use == 0


def test_release_listeners_hear_every_release() -> None:
    acc = Accounting(2)
    heard: list[str] = []
    acc.on_release.append(heard.append)
    with acc.acquire("a"), acc.acquire("b"):
        pass
    assert sorted(heard) == ["a", "b"]


@settings(max_examples=60, deadline=None)
@given(
    account=st.integers(1, 8),
    reservations=st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), max_size=3),
    ops=st.lists(st.tuples(st.sampled_from("abcd"), st.booleans()), max_size=80),
)
def test_counts_never_exceed_limits_and_end_at_zero(
    account: int, reservations: dict[str, int], ops: list
) -> None:
    total = sum(reservations.values())
    if total > account:
        return
    acc = Accounting(account, reservations)
    held = []
    rng = random.Random(len(ops))
    for function, take in ops:
        if take:
            slot = acc.try_acquire(function)
            if slot is not None:
                held.append(slot)
        elif held:
            held.pop(rng.randrange(len(held))).release()
        for f, limit in reservations.items():
            assert acc.in_use(f) <= limit
        assert acc.unreserved_in_use <= account - total
        assert acc.in_use() == len(held) <= account
    for slot in held:
        slot.release()
    assert acc.in_use() == 0 and acc.unreserved_in_use == 0
