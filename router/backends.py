"""Today's backends: every seam of router/core/backends.py with its single-node implementation.

`local(state_dir, record=..., ring_size=..., max_payload_bytes=...)` builds the `Backends` the daemon uses
unless it is given others: the SQLite async queue `<state_dir>/queue.db` (router/dispatch/queue.py), the
invocation record (`record.enabled`, the default: `<state_dir>/record.db` and blobs, router/record/sqlite.py;
otherwise rings of `ring_size` in memory, router/record/memory.py), and for sources a checkpoint file per
stream mapping, this node owning every shard, and each schedule's state file (router/sources/stream/,
router/sources/schedule/).
The local source seams keep their files in the source's own folder, `<state_dir>/sources/<name>`.

It sits above the layers (it imports dispatch, record and sources) as the daemon does.
"""

from __future__ import annotations

from pathlib import Path

from router.config import RecordConfig
from router.core.backends import Backends, InvocationRecord, SourceBackends
from router.core.timefmt import duration_s
from router.dispatch.queue import DurableQueue
from router.record.memory import InspectStore
from router.record.sqlite import SqliteRecord
from router.sources.schedule.state import open_schedule_file
from router.sources.stream.checkpoints import open_checkpoint_file
from router.sources.stream.ownership import sole_owner


def local_sources() -> SourceBackends:
    """The seams sources use, as one router alone keeps them: files in each source's folder."""
    return SourceBackends(checkpoints=open_checkpoint_file, ownership=sole_owner, ticks=open_schedule_file)


def local(
    state_dir: Path,
    *,
    record: RecordConfig | None = None,
    ring_size: int = 100,
    max_payload_bytes: int = 256 * 1024,
) -> Backends:
    """Today's backends under `state_dir`. Without `record` (or with `record.enabled` false) the record is
    in memory, `ring_size` invocations per function; `max_payload_bytes` cuts what its views show."""
    return Backends(
        queue=DurableQueue(Path(state_dir) / "queue.db"),
        record=local_record(state_dir, record, ring_size=ring_size, max_payload_bytes=max_payload_bytes),
        sources=local_sources(),
    )


def local_record(
    state_dir: Path, settings: RecordConfig | None, *, ring_size: int, max_payload_bytes: int
) -> InvocationRecord:
    if settings is None or not settings.enabled:
        log_bytes = settings.log_kb * 1024 if settings is not None else 4096
        return InspectStore(ring_size=ring_size, max_payload_bytes=max_payload_bytes, log_bytes=log_bytes)
    return SqliteRecord(
        Path(state_dir) / "record.db",
        retention_s=duration_s(settings.retention),
        max_bytes=settings.max_mb * 1024 * 1024,
        flush_ms=settings.flush_ms,
        max_payload_bytes=max_payload_bytes,
        log_bytes=settings.log_kb * 1024,
    )
