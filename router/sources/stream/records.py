"""What the stream engine's parts share: a record as the engine sees it, what a stream kind tells the engine,
and a mapping's settings.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from router.core.envelope import Envelope
    from router.core.ports import RoutePort

PAYLOAD_CAP = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit


class StreamRecord(msgspec.Struct, eq=False, gc=False):
    """One record of a partition, as the engine sees it.

    A msgspec Struct, not a dataclass: one is made per record read, and its construction is in C. A kind
    that renders its own events (`StreamKind.render`) may leave `envelope` None and keep what it renders
    from in `native`; it then sets `trace` itself (the batch's loop-protection trace comes from its first
    record: `trace`, else the envelope's).
    """

    position: int  # order within the partition: Kafka offset, Kinesis/DynamoDB sequence number
    envelope: Envelope | None
    arrival: float  # epoch seconds the record entered the stream (for max_record_age_s)
    size: int  # approximate bytes the record adds to the event payload
    key: Hashable | None = None  # partition key: records of one key share a lane (parallelization_factor)
    done: bool = False  # settled: delivered, filtered out or given up
    trace: str | None = None  # loop-protection trace header, when the kind knows it without an envelope
    native: Any = None  # the kind's own form of the record (what its `render` encodes)

    @property
    def trace_header(self) -> str | None:
        if self.trace is not None or self.envelope is None:
            return self.trace
        return self.envelope.trace


class StreamKind(Protocol):
    """What a stream source tells the engine about its records.

    A kind may also have `render(partition, records) -> bytes | None`: the event for these records, built
    from their `native` form, byte for byte what the route would render from their envelopes; None when it
    cannot (the route then renders the envelopes). Kafka has one: its records need no envelope at all.
    """

    info_key: str  # the failure record's batch-info key, e.g. "KafkaBatchInfo"

    def batch_info(self, partition: str, records: Sequence[StreamRecord]) -> dict[str, Any]:
        """The failure record's batch info: partition, first and last positions, size, stream name..."""
        ...

    def failed_position(self, identifier: Any, partition: str) -> int | None:
        """The position a `batchItemFailures[].itemIdentifier` names, or None when it is not valid."""
        ...

    def checkpoint(self, partition: str, last: StreamRecord) -> None:
        """Every record up to and including `last` is settled. Must not block; persist asynchronously."""
        ...


@dataclass(frozen=True, kw_only=True)
class MappingSettings:
    batch_size: int = 100
    window_s: float = 0.0
    max_bytes: int = PAYLOAD_CAP
    parallelization_factor: int = 1
    max_retries: int = -1  # -1: until the records expire
    max_record_age_s: float = -1  # -1: records never expire
    bisect: bool = False
    report_batch_item_failures: bool = False
    tumbling_window_s: int = 0  # 0: no tumbling windows (router/sources/stream/windows.py)
    buffer_records: int = 0  # per-partition buffer before the source is told to pause; 0 = derived
    retry_delay_s: float = 0.1  # first pause after a function error, doubled per retry
    retry_delay_max_s: float = 5.0
    throttle_delay_s: float = 0.01  # first pause after a dispatch error, doubled while it lasts
    throttle_delay_max_s: float = 0.5
    region: str = "us-east-1"
    account_id: str = "123456789012"

    @classmethod
    def for_route(
        cls, route: RoutePort, *, default_window_s: float | None = None, **overrides: Any
    ) -> MappingSettings:
        """Settings from a route's `batch` and `on_error`, with the source kind's default window."""
        from router.config import BatchConfig, OnErrorConfig

        if default_window_s is None:
            default_window_s = route.traits.default_window_s
        batch = route.settings.batch or BatchConfig()
        on_error = route.settings.on_error or OnErrorConfig()
        return cls(
            batch_size=route.traits.default_batch_size if batch.size is None else batch.size,
            window_s=default_window_s if batch.window_s is None else batch.window_s,
            max_bytes=min(batch.max_bytes, PAYLOAD_CAP),
            parallelization_factor=batch.parallelization_factor,
            max_retries=on_error.max_retries,
            max_record_age_s=on_error.max_record_age_s,
            bisect=on_error.bisect,
            report_batch_item_failures=on_error.report_batch_item_failures,
            tumbling_window_s=batch.tumbling_window_s,
            **overrides,
        )

    @property
    def buffer_limit(self) -> int:
        """Records buffered per partition before the source pauses it: two full batches per lane."""
        return self.buffer_records or max(2 * self.batch_size * self.parallelization_factor, 500)
