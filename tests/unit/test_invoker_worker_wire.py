"""The invoker workers' messages (router/invoker/worker.py): every message survives the msgpack round trip
(a FunctionSpec's Path included), and frames are found however the stream cuts them."""

from __future__ import annotations

from pathlib import Path

from router.core.results import InvocationResult
from router.invoker.types import FunctionSpec, InvokeRequest
from router.invoker.worker import (
    ENCODE,
    HEADER,
    TO_DAEMON,
    TO_WORKER,
    Cancel,
    Channel,
    Died,
    InitFailedMsg,
    Invoke,
    LaunchError,
    Prepare,
    Result,
    Start,
    Started,
    Stop,
    Stopped,
)

SPEC = FunctionSpec(name="f", runtime="python3.11", handler="app.handler", code_dir=Path("/srv/f"))
RESULT = InvocationResult(request_id="r1", payload=b'{"ok": true}', duration_ms=1.5, log=b"START\n")


def test_messages_round_trip() -> None:
    to_worker = [
        Start(1, SPEC, "on-demand", "r0"),
        Invoke(1, InvokeRequest(request_id="r1", payload=b"{}", trace_id="Root=1-a-b")),
        Cancel(1),
        Stop(1),
        Prepare([SPEC]),
    ]
    for message in to_worker:
        assert TO_WORKER.decode(ENCODE(message)) == message
    assert isinstance(TO_WORKER.decode(ENCODE(to_worker[0])).spec.code_dir, Path)  # type: ignore[union-attr]
    to_daemon = [Started(1, 42), InitFailedMsg(1, RESULT), LaunchError(1, "no"), Result(1, RESULT, True)]
    to_daemon += [Stopped(1), Died(1)]
    for message in to_daemon:
        assert TO_DAEMON.decode(ENCODE(message)) == message


def test_frames_are_found_across_any_cut() -> None:
    messages = [Started(n, n) for n in range(5)]
    stream = b"".join(HEADER.pack(len(body)) + body for body in map(ENCODE, messages))
    for cut in (1, 3, 4, 7, len(stream)):
        assert received(stream, cut) == messages, cut


def received(stream: bytes, cut: int) -> list[object]:
    got: list[object] = []
    channel = Channel(lambda body: got.append(TO_DAEMON.decode(body)), lambda: None)
    for i in range(0, len(stream), cut):
        channel.data_received(stream[i : i + cut])
    return got
