"""Shares of cluster-wide concurrency limits: what part of a limit this node (or this process) may use.

Account, reserved and provisioned concurrency are limits of the whole cluster (docs/cluster.md). Each node
applies its `Share` of every limit to its own local accounting (router/dispatch/concurrency.py), so that the
in-flight calls of all nodes together never exceed the limit without any call asking the others.

* `Share.of(limit)` is this holder's part of `limit`, between 0 and `limit`. The parts of all holders of a
  split add up to `limit` exactly.
* `WHOLE`: a single node holds every limit whole (today's behaviour, and the default).
* `EvenSplit(parts, index, outer)`: `outer`'s part split evenly in `parts`; holder `index` (0-based) gets
  one more when it does not divide, the lowest indexes first. Splits nest: a node's share
  (`EvenSplit(len(nodes), rank)`) can itself be split among the node's worker processes
  (`EvenSplit(workers, w, outer=node_share)`), and the parts still add up to the limit.
* `NOTHING`: no part of any limit (a front process keeps no provisioned instances: router/processes.py).
* `Least(a, b)`: the smaller of two shares, limit by limit (a node moving from one split to another holds
  the lesser of both until the move is safe).

`to_wire(share)` / `from_wire(data)`: a share as plain lists, to hand a node's share to its front processes
(router/processes.py).

Pure arithmetic: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["NOTHING", "WHOLE", "EvenSplit", "Least", "Nothing", "Share", "Whole", "from_wire", "to_wire"]


@runtime_checkable
class Share(Protocol):
    def of(self, limit: int) -> int: ...


@dataclass(frozen=True)
class Whole:
    """Every limit whole: one node alone."""

    def of(self, limit: int) -> int:
        return limit


WHOLE = Whole()


@dataclass(frozen=True)
class Nothing:
    """No part of any limit."""

    def of(self, limit: int) -> int:
        return 0


NOTHING = Nothing()


@dataclass(frozen=True)
class EvenSplit:
    """Part `index` of `outer`'s share split in `parts`."""

    parts: int
    index: int
    outer: Share = WHOLE

    def __post_init__(self) -> None:
        if self.parts < 1 or not 0 <= self.index < self.parts:
            raise ValueError(f"part {self.index} of {self.parts}: no such part")

    def of(self, limit: int) -> int:
        base, extra = divmod(self.outer.of(limit), self.parts)
        return base + (1 if self.index < extra else 0)


@dataclass(frozen=True)
class Least:
    """The smaller of two shares, limit by limit."""

    a: Share
    b: Share

    def of(self, limit: int) -> int:
        return min(self.a.of(limit), self.b.of(limit))


def to_wire(share: Share) -> list[Any]:
    match share:
        case Whole():
            return ["whole"]
        case Nothing():
            return ["nothing"]
        case EvenSplit(parts, index, outer):
            return ["split", parts, index, to_wire(outer)]
        case Least(a, b):
            return ["least", to_wire(a), to_wire(b)]
    raise TypeError(f"{share!r}: not a share this module knows")


def from_wire(data: list[Any]) -> Share:
    match data:
        case ["whole"]:
            return WHOLE
        case ["nothing"]:
            return NOTHING
        case ["split", int(parts), int(index), list(outer)]:
            return EvenSplit(parts, index, from_wire(outer))
        case ["least", list(a), list(b)]:
            return Least(from_wire(a), from_wire(b))
    raise ValueError(f"{data!r}: not a share")
