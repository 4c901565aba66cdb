"""Pure parts of the cluster work: shares add up to the limit, commit points never pass an unsettled offset,
`cluster:` and `target:` are checked, a remote call's REPORT line and throttles are read as Lambda's."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.cluster.offsets import PartitionOffsets
from router.core.errors import ConfigError, DispatchError, Throttled
from router.core.results import InvocationResult
from router.core.shares import NOTHING, WHOLE, EvenSplit, Least, from_wire, to_wire
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


class MemoryTable:
    """The lease table's calls Membership makes, in memory (conditions as DynamoDB evaluates them here)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, object]] = {}

    async def put(self, item: dict[str, object], *args: object, **kw: object) -> bool:
        self.items[(str(item["pk"]), str(item["sk"]))] = dict(item)
        return True

    async def query(self, pk: str, prefix: str = "") -> list[dict[str, object]]:
        return [dict(v) for (p, s), v in sorted(self.items.items()) if p == pk and s.startswith(prefix)]

    async def delete(self, pk: str, sk: str, *args: object, **kw: object) -> bool:
        return self.items.pop((pk, sk), None) is not None


async def test_shares_never_add_up_past_a_limit_while_nodes_join_and_leave() -> None:
    from router.cluster.membership import Membership
    from router.config.cluster import ClusterLeases

    table, now = MemoryTable(), [0.0]
    settings = ClusterLeases(lease_timeout_s=3, node_timeout_s=3)

    def node(name: str) -> Membership:
        return Membership(
            table,  # type: ignore[arg-type]
            "c",
            name,
            settings,
            fits=lambda share: True,
            apply=lambda share: None,
            monotonic=lambda: now[0],
        )

    nodes = [node("a"), node("b")]

    async def rounds(count: int, serving: int = 0) -> None:
        """`count` renewal rounds; the first `serving` nodes must keep admitting calls throughout."""
        for _ in range(count):
            for m in nodes:
                await m.cycle()
                for limit in (1, 4, 7, 1000):
                    assert sum(n.share.of(limit) for n in nodes) <= limit, [n.share for n in nodes]
                assert all(n.share.of(1000) > 0 for n in nodes[:serving]), [n.share for n in nodes]
            now[0] += 1.0

    await rounds(3)
    assert [n.share.of(4) for n in nodes] == [2, 2]
    nodes.append(node("c"))
    await rounds(4, serving=2)  # a joining node never stops the others
    assert [n.share.of(6) for n in nodes] == [2, 2, 2]
    await nodes[0].leave()
    nodes.pop(0)
    await rounds(2)
    assert [n.share.of(6) for n in nodes] == [3, 3]
    del nodes[0]  # b dies: its item stays until it is seen not to change for node_timeout_s
    await rounds(5)
    assert nodes[0].members == ["c"] and nodes[0].share.of(6) == 6


def test_front_processes_with_a_cluster_and_shares_on_the_wire(tmp_path: Path) -> None:
    config = parse_config("server: {processes: 2}\n" + CLUSTER, base_dir=tmp_path, env={})
    assert config.server.processes == 2 and config.cluster is not None
    auto = parse_config("server: {processes: auto}\n", base_dir=tmp_path, env={})
    assert auto.server.process_count == len(os.sched_getaffinity(0))
    with pytest.raises(ConfigError) as info:
        parse_config("server: {processes: many}\n", base_dir=tmp_path, env={})
    assert any(p.startswith("server.processes") and "many" in p for p in info.value.problems), (
        info.value.problems
    )
    (tmp_path / "router.yaml").write_text("state_dir: state\n")
    bad = subprocess.run(
        [sys.executable, "-m", "router", "serve", "-c", str(tmp_path / "router.yaml"), "--processes", "0"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "--processes: expected 1 to 64 or auto, got '0'" in bad.stderr, bad.stderr
    shares = [WHOLE, NOTHING, EvenSplit(3, 1), Least(EvenSplit(2, 0), EvenSplit(3, 2, outer=EvenSplit(2, 1)))]
    for share in shares:
        back = from_wire(to_wire(share))
        assert back == share and all(back.of(n) == share.of(n) for n in range(40))
    assert from_wire(["nothing"]) is NOTHING
    with pytest.raises(ValueError, match="not a share"):
        from_wire(["split", "2", 0, ["whole"]])
