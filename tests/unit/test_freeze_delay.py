"""How long an idle instance waits before it is frozen (router/invoker/instance_cgroup.py `IdleDelay`, and
the Sandbox's timer in containment.py): `invoker.freeze_after_ms` for a fresh or rarely used instance,
FREEZE_AFTER_MAX_S for one called again within that (in steady use)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from router.invoker.containment import Sandbox
from router.invoker.instance_cgroup import FREEZE_AFTER_MAX_S, IdleDelay, InstanceGroup


def test_a_fresh_instance_waits_the_base() -> None:
    assert IdleDelay(0.01).delay == 0.01


def test_an_instance_called_again_within_the_cap_waits_the_cap_until_a_longer_gap() -> None:
    delay = IdleDelay(0.01)
    delay.reused(0.03)
    assert delay.delay == FREEZE_AFTER_MAX_S
    delay.reused(0.0)
    assert delay.delay == FREEZE_AFTER_MAX_S
    delay.reused(FREEZE_AFTER_MAX_S)  # idle that long: no longer in steady use
    assert delay.delay == 0.01
    delay.reused(3600.0)
    assert delay.delay == 0.01


def test_a_base_over_the_cap_is_the_wait() -> None:
    delay = IdleDelay(0.5)
    for gap in (0.001, 10.0, 0.2):
        delay.reused(gap)
        assert delay.delay == 0.5


class FakeGroup:
    """What a Sandbox asks of its InstanceGroup, counting freezes."""

    kernel_memory = True

    def __init__(self) -> None:
        self.frozen = False
        self.freezes = 0

    def set_cpu(self, vcpus: float | None) -> None:
        pass

    def begin_call(self) -> None:
        pass

    def end_call(self) -> None:
        return None

    def freeze(self) -> None:
        self.frozen, self.freezes = True, self.freezes + 1

    def thaw(self) -> None:
        self.frozen = False

    def kill(self) -> None:
        pass

    def remove(self) -> bool:
        return True


def box(freeze_after_s: float) -> tuple[Sandbox, FakeGroup]:
    group = FakeGroup()
    return Sandbox(cast(InstanceGroup, group), freeze_after_s=freeze_after_s), group


def wait(sandbox: Sandbox) -> float:
    """How long the idle instance waits, as its timer was armed."""
    s = cast(Any, sandbox)
    return float(s._due - s._idle_since)


async def test_an_instance_in_steady_use_waits_longer_and_is_frozen_once_left_idle() -> None:
    sandbox, group = box(0.01)
    sandbox.ready()
    assert wait(sandbox) == pytest.approx(0.01)  # fresh: the base
    for _ in range(3):  # back-to-back calls: in steady use
        sandbox.call_started()
        sandbox.thaw()
        sandbox.call_ended()
        sandbox.idle()
    assert wait(sandbox) == pytest.approx(FREEZE_AFTER_MAX_S)
    assert not group.frozen
    await asyncio.sleep(FREEZE_AFTER_MAX_S * 2)  # left idle: frozen within the cap
    assert group.frozen
    sandbox.release()


async def test_freeze_after_zero_freezes_on_the_answer() -> None:
    sandbox, group = box(0.0)
    sandbox.ready()
    assert group.frozen
    sandbox.call_started()
    sandbox.thaw()
    sandbox.idle()
    assert group.frozen and group.freezes == 2
