"""The instance lifecycle table (router/invoker/lifecycle.py): every allowed move is taken, every other one is
refused with InvalidTransition, over all state pairs; Instance._move and its readings follow the table."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from router.config import BillingConfig
from router.invoker import lifecycle
from router.invoker.instance import Instance
from router.invoker.lifecycle import TRANSITIONS, InvalidTransition, State
from router.invoker.outcomes import DEATHS, End
from router.invoker.types import FunctionSpec

PAIRS = list(itertools.product(State, State))
ALLOWED = [(a, b) for a, b in PAIRS if b in TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in PAIRS if b not in TRANSITIONS[a]]


def test_the_table_covers_every_state_and_the_path_of_a_call() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TRANSITIONS[State.DEAD] == frozenset()
    # The warm path and each way out of it, as instance.py takes them.
    for path in (
        [State.STARTING, State.IDLE, State.BUSY, State.IDLE, State.STOPPING, State.DEAD],
        [State.STARTING, State.IDLE, State.BUSY, State.KILLED, State.DEAD],
        [State.STARTING, State.IDLE, State.DEAD],
        [State.STARTING, State.DEAD],
    ):
        for current, to in itertools.pairwise(path):
            assert to in TRANSITIONS[current], (current, to)
    assert len(ALLOWED) == 9 and len(ALLOWED) + len(REFUSED) == len(State) ** 2


@pytest.mark.parametrize(("current", "to"), ALLOWED)
def test_an_allowed_move_is_taken(current: State, to: State) -> None:
    assert lifecycle.move(current, to) is to


@pytest.mark.parametrize(("current", "to"), REFUSED)
def test_any_other_move_is_refused_with_the_one_error(current: State, to: State) -> None:
    with pytest.raises(InvalidTransition) as refused:
        lifecycle.move(current, to)
    assert (refused.value.current, refused.value.to) == (current, to)
    assert str(refused.value) == f"invalid instance state transition {current} -> {to}"


def test_the_docstring_table_is_the_table() -> None:
    """The table a reader sees in lifecycle.py's docstring names exactly the moves TRANSITIONS allows."""
    doc = lifecycle.__doc__ or ""
    lines = doc.splitlines()
    header = next(i for i, line in enumerate(lines) if "allowed next states" in line)
    column = lines[header].index("allowed next states")
    documented: dict[State, set[State]] = {}
    current: State | None = None
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        name = line[:column].split()[0] if line[:column].strip() else ""
        if name in State.__members__:
            current = State[name]
            documented[current] = set()
        assert current is not None
        documented[current] |= {
            State[w] for w in re.findall(r"\b[A-Z]+\b", line[column:]) if w in State.__members__
        }
    assert documented == {state: set(allowed) for state, allowed in TRANSITIONS.items()}


async def bare_instance() -> Instance:
    """An Instance that was never started (no process): enough to drive its state through _move."""
    spec = FunctionSpec(name="f", runtime="python3.12", handler="h.handler", code_dir=Path("."))
    return Instance(
        spec,
        billing=BillingConfig(),
        init_type="on-demand",
        init_timeout_s=1.0,
        stop_grace_s=0.1,
        memory_sample_s=0.01,
        verify_peer=True,
    )


async def test_instance_moves_through_the_table_and_refuses_the_rest() -> None:
    instance = await bare_instance()
    assert instance.state is State.STARTING
    for current, to in PAIRS:
        instance._state = current
        if to in TRANSITIONS[current]:
            instance._move(to)
            assert instance.state is to
        else:
            with pytest.raises(InvalidTransition):
                instance._move(to)
            assert instance.state is current  # a refused move changes nothing


@pytest.mark.parametrize("state", list(State))
async def test_alive_and_busy_are_readings_of_the_state(state: State) -> None:
    instance = await bare_instance()
    instance._state = state
    assert instance.alive == (state in (State.IDLE, State.BUSY))
    assert instance.busy == (state in (State.BUSY, State.KILLED))
    assert f"{state}>" in repr(instance)


def test_the_deaths_are_the_endings_that_kill_the_instance() -> None:
    assert DEATHS == {End.TIMEOUT, End.OOM, End.EXIT}
    assert {e.value for e in End} == {
        "response",
        "error",
        "too_large",
        "timeout",
        "oom",
        "exit",
        "ready",
        "init_error",
    }
