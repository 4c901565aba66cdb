"""The shared concurrency ledger (router/dispatch/ledger.py): admissions are exact across handles (each
handle is a process's row, with its own open file and lock), reasons are Lambda's, a dead row is cleared,
the generation is shared, and another real process's counts are seen."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from router.core.errors import REASON_ACCOUNT, REASON_RESERVED, Throttled
from router.dispatch.ledger import Ledger, SharedAccounting


@pytest.fixture
def ledgers() -> Iterator[tuple[Ledger, Ledger]]:
    first = Ledger.create(2)
    second = Ledger(first.path, 1)
    yield first, second
    second.close()
    first.remove()


def test_reservations_and_the_pool_are_exact_across_processes(ledgers: tuple[Ledger, Ledger]) -> None:
    a = SharedAccounting(ledgers[0], 10, {"r": 3})
    b = SharedAccounting(ledgers[1], 10, {"r": 3})
    held = [a.acquire("r"), a.acquire("r"), b.acquire("r")]
    assert b.available("r") == 0 and a.available("r") == 0
    with pytest.raises(Throttled) as e:
        b.acquire("r")
    assert e.value.reason == REASON_RESERVED
    held[0].release()
    held[0].release()  # idempotent: one unit back, not two
    assert b.available("r") == 1
    held.append(b.acquire("r"))
    assert b.try_acquire("r") is None
    # The shared pool: account 10 minus the reservation of 3.
    pool = [a.acquire("x") for _ in range(4)] + [b.acquire("y") for _ in range(3)]
    with pytest.raises(Throttled) as e:
        a.acquire("z")
    assert e.value.reason == REASON_ACCOUNT
    assert a.in_use("x") == 4 and b.in_use("y") == 3 and a.in_use("r") == 1  # per function: its own
    assert a.in_use() == b.in_use() == 10 and a.unreserved_in_use == 7  # the account: every process's
    pool.pop().release()
    assert a.try_acquire("z") is not None


def test_a_dead_process_row_is_cleared(ledgers: tuple[Ledger, Ledger]) -> None:
    a = SharedAccounting(ledgers[0], 4, {"r": 2})
    b = SharedAccounting(ledgers[1], 4, {"r": 2})
    b.acquire("r"), b.acquire("r"), b.acquire("x")
    assert a.try_acquire("r") is None and ledgers[0].held(1) == 3
    ledgers[0].clear(1)
    assert ledgers[0].held(1) == 0
    assert (
        a.try_acquire("r") is not None and a.try_acquire("r") is not None and a.try_acquire("x") is not None
    )


def test_generation_and_long_names(ledgers: tuple[Ledger, Ledger]) -> None:
    first, second = ledgers
    assert second.generation == 0
    first.bump()
    first.bump()
    assert second.generation == 2
    long_a, long_b = "f" * 70 + "a", "f" * 70 + "b"  # the same first 64 bytes: still two slots
    assert first.admit(long_a, 1) and not second.admit(long_a, 1) and second.admit(long_b, 1)
    assert first.total(long_a) == 1 and first.total(long_b) == 1


def test_another_process_counts(ledgers: tuple[Ledger, Ledger]) -> None:
    first, _ = ledgers
    script = (
        "import sys; from router.dispatch.ledger import Ledger\n"
        "l = Ledger(sys.argv[1], 1)\n"
        "print(l.admit('r', 5), l.admit('r', 5), l.admit(None, 1), l.admit(None, 1))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(first.path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "True", "True", "False"]
    assert first.total("r") == 2 and first.total(None) == 1 and not first.admit(None, 1)
    first.clear(1)  # that process ended without giving its units back
    assert first.total("r") == 0 and first.admit(None, 1)


def test_not_a_ledger(tmp_path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(ValueError, match="not a router ledger"):
        Ledger(path, 0)
