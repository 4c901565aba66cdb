"""The processes the router started itself and waits for (`subprocess` reaps them).

A router that is a child subreaper (router/invoker/procs.py, docs/invoker.md "Nothing left behind") treats
every other child of its own as a stray from an instance's process tree: recorded, and killed when the router
stops or by the keeper. Whatever the router starts directly (instances' launchers, zygotes, the keeper,
invoker workers, the record's writer) is added here at its start and taken out once waited for, so that the
orphan sweep leaves it alone. One set per router process, on any layer (a plain set: the router's one
thread adds and removes; the sweep runs on the same loop).
"""

from __future__ import annotations

SPAWNED: set[int] = set()
