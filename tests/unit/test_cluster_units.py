"""Pure parts of the cluster work: shares add up to the limit, commit points never pass an unsettled offset,
`cluster:` and `target:` are checked, a remote call's REPORT line and throttles are read as Lambda's."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.cluster.offsets import PartitionOffsets
from router.core.errors import ConfigError, DispatchError, Throttled
from router.core.results import InvocationResult
from router.core.shares import WHOLE, EvenSplit
from router.dispatch.concurrency import Accounting
from router.invoker.remote import _dispatch_error, _meter
from router.validate import parse_config

CLUSTER = """
cluster:
  name: prod
  kafka: {brokers: ["127.0.0.1:9092"]}
  leases: {lease_timeout_s: 3, node_timeout_s: 3}
"""


@given(st.integers(0, 5000), st.integers(1, 9), st.integers(1, 5))
def test_even_splits_add_up_to_the_limit_even_nested(limit: int, nodes: int, workers: int) -> None:
    parts = [EvenSplit(nodes, i) for i in range(nodes)]
    assert sum(p.of(limit) for p in parts) == limit
    nested = [EvenSplit(workers, w, outer=p) for p in parts for w in range(workers)]
    assert sum(p.of(limit) for p in nested) == limit
    assert WHOLE.of(limit) == limit


def test_accounting_admits_its_share_and_knows_when_it_fits() -> None:
    accounting = Accounting(10, {"f": 4})
    accounting.set_share(EvenSplit(2, 0))
    slots = [accounting.try_acquire("f") for _ in range(3)]
    assert [s is not None for s in slots] == [True, True, False]
    assert accounting.reservation("f") == 4 and accounting.limit("f") == 2
    assert accounting.fits(EvenSplit(2, 1)) and not accounting.fits(EvenSplit(3, 2))
    with pytest.raises(Throttled) as info:
        accounting.acquire("f")
    assert info.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"


@given(st.permutations(list(range(20))))
def test_commit_point_never_passes_an_unsettled_offset(order: list[int]) -> None:
    offsets = PartitionOffsets()
    for offset in range(20):
        offsets.hold(offset)
    settled: set[int] = set()
    for offset in order:
        offsets.settle(offset)
        settled.add(offset)
        point = offsets.commit_point()
        assert set(range(point)) <= settled and (point == 20 or point not in settled)


def test_cluster_and_target_are_checked(tmp_path: Path) -> None:
    config = parse_config(CLUSTER, base_dir=tmp_path, env={})
    assert config.cluster is not None and config.cluster.node()
    bad = CLUSTER.replace("lease_timeout_s: 3", "lease_timeout_s: 3, renew_s: 2").replace(
        '"127.0.0.1:9092"', ""
    )
    with pytest.raises(ConfigError) as info:
        parse_config(bad, base_dir=tmp_path, env={})
    text = "\n".join(info.value.problems)
    assert "cluster.kafka.brokers" in text and "cluster.leases.lease_timeout_s" in text
    remote = "functions:\n  f: {target: {lambda: {function_name: g}}, runtime: python3.11}\n  h: {}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(remote, base_dir=tmp_path, env={})
    assert any("functions.f.runtime" in p for p in info.value.problems), info.value.problems
    assert any("functions.h: missing required key 'runtime'" in p for p in info.value.problems)


def test_a_remote_report_line_meters_the_call() -> None:
    result = InvocationResult(request_id="r", payload=b"{}", duration_ms=900.0, memory_mb=128)
    tail = b"START RequestId: x\nREPORT RequestId: x\tDuration: 12.50 ms\tBilled Duration: 13 ms\t"
    tail += b"Memory Size: 256 MB\tMax Memory Used: 40 MB\tInit Duration: 80.10 ms\n"
    _meter(result, base64.b64decode(base64.b64encode(tail)))
    assert (result.duration_ms, result.billed_ms, result.memory_mb) == (12.5, 13, 256)
    assert (result.max_memory_mb, result.init_ms, result.cold) == (40, 80.1, True)


def test_remote_throttles_and_failures_are_dispatch_errors() -> None:
    class Refused(Exception):
        def __init__(self, response: dict[str, object]) -> None:
            self.response = response

    throttle = Refused(
        {
            "Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"},
            "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            "ResponseMetadata": {"HTTPStatusCode": 429},
        }
    )
    error = _dispatch_error(throttle, "g")
    assert (
        isinstance(error, Throttled) and error.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    )
    gone = _dispatch_error(OSError("connection refused"), "g")
    assert type(gone) is DispatchError and "connection refused" in str(gone)
