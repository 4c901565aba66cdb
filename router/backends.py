"""Today's backends: every seam of router/core/backends.py with its single-node implementation.

`local(state_dir, ring_size=..., max_payload_bytes=...)` builds the `Backends` the daemon uses unless it is
given others: the SQLite async queue `<state_dir>/queue.db` (router/dispatch/queue.py), the inspection
record in memory (router/record/memory.py), and for sources a checkpoint file per stream mapping, this node
owning every shard, and each schedule's state file (router/sources/stream/, router/sources/schedule/).
The local source seams keep their files in the source's own folder, `<state_dir>/sources/<name>`.

It sits above the layers (it imports dispatch, record and sources) as the daemon does.
"""

from __future__ import annotations

from pathlib import Path

from router.core.backends import Backends, SourceBackends
from router.dispatch.queue import DurableQueue
from router.record.memory import InspectStore
from router.sources.schedule.state import open_schedule_file
from router.sources.stream.checkpoints import open_checkpoint_file
from router.sources.stream.ownership import sole_owner


def local_sources() -> SourceBackends:
    """The seams sources use, as one router alone keeps them: files in each source's folder."""
    return SourceBackends(checkpoints=open_checkpoint_file, ownership=sole_owner, ticks=open_schedule_file)


def local(state_dir: Path, *, ring_size: int = 100, max_payload_bytes: int = 256 * 1024) -> Backends:
    """Today's backends under `state_dir`; `ring_size` and `max_payload_bytes` bound the inspection record."""
    return Backends(
        queue=DurableQueue(Path(state_dir) / "queue.db"),
        record=InspectStore(ring_size=ring_size, max_payload_bytes=max_payload_bytes),
        sources=local_sources(),
    )
