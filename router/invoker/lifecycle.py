"""The life of one instance as a state table: the states, the moves allowed between them, one refusal.

As the Lambda Runtime Interface Emulator keeps a state object per runtime and refuses every transition it
does not allow, `Instance` (router/invoker/instance.py) holds one `State` and changes it only through
`move(current, to)`, which returns `to` or raises `InvalidTransition`. Nothing else flips a flag.

    state      what it means                                   allowed next states
    ---------  ----------------------------------------------  -----------------------------------------
    STARTING   launched; init runs until the first /next       IDLE (init done), DEAD (init failed or
                                                               cancelled: the group is gone)
    IDLE       initialised, no call in flight                  BUSY (invoke), STOPPING (stop()),
                                                               DEAD (the process exited on its own)
    BUSY       one call in flight                              IDLE (the call ended, reusable),
                                                               KILLED (deadline, memory, exit, cancelled
                                                               call, or stop() during the call)
    KILLED     the group is killed or being stopped, and the   DEAD (the call returned its result)
               call in flight is still returning its result
    STOPPING   stop() is ending an idle instance               DEAD (the group is gone)
    DEAD       the group is gone; nothing runs here again      (none)

The public reading of a state: `alive` (can take a call now or after the one in flight) is IDLE or BUSY;
`busy` (a call is in flight, a second one is refused) is BUSY or KILLED. A move is two dict/set lookups
and allocates nothing, so the warm path (IDLE -> BUSY -> IDLE per call) stays as cheap as the flags were.
"""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    KILLED = "killed"
    STOPPING = "stopping"
    DEAD = "dead"


# The members as module names too: on Python 3.11 reading `State.IDLE` goes through the enum's descriptor
# (~120 ns), a module global costs ~20 ns, and the warm path reads a few per call.
STARTING, IDLE, BUSY, KILLED = State.STARTING, State.IDLE, State.BUSY, State.KILLED
STOPPING, DEAD = State.STOPPING, State.DEAD

TRANSITIONS: dict[State, frozenset[State]] = {
    State.STARTING: frozenset({State.IDLE, State.DEAD}),
    State.IDLE: frozenset({State.BUSY, State.STOPPING, State.DEAD}),
    State.BUSY: frozenset({State.IDLE, State.KILLED}),
    State.KILLED: frozenset({State.DEAD}),
    State.STOPPING: frozenset({State.DEAD}),
    State.DEAD: frozenset(),
}

ALIVE = frozenset({State.IDLE, State.BUSY})
IN_CALL = frozenset({State.BUSY, State.KILLED})


class InvalidTransition(RuntimeError):
    """A move the table does not allow: a bug in the instance's bookkeeping, never an expected outcome."""

    def __init__(self, current: State, to: State) -> None:
        super().__init__(f"invalid instance state transition {current} -> {to}")
        self.current = current
        self.to = to


def move(current: State, to: State) -> State:
    """`to` if the table allows current -> to; raises InvalidTransition otherwise."""
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(current, to)
    return to
