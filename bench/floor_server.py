"""The floor: the least a router of this design can do per call, to measure the router against.

    python bench/floor_server.py PORT [--instances 16]

A Lambda Invoke endpoint (`POST /2015-03-31/functions/{name}/invocations`) with the router's design and
nothing else: an asyncio HTTP/1.1 front (uvloop when installed, as `router serve` runs) hands each request's
body to one of N function processes over a Unix socket, one call per process at a time, and answers with
what comes back. Each process runs the same echo handler the benches use (`json.loads`, the handler,
`json.dumps`) in a blocking loop, as the router's Python bootstrap does.

What it leaves out is everything the router promises besides: the Runtime API's HTTP (a 4-byte length
frame instead), request ids, the context, timeouts, memory and CPU metering, REPORT lines and metrics,
concurrency accounting, the record, cgroups, isolation, cold starts (the processes start with the server).
So its CPU per call (front plus function processes) is a lower bound for any router that keeps each
function in a process of its own and speaks HTTP to its callers, in Python on this machine: see
docs/performance.md, "The floor". bench/invoke_bench.py `--floor` measures it beside the router.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
import subprocess
import sys

# The function process: argv[1] is the descriptor of its end of the socket pair. The marker argument
# "floor-bootstrap" tells the benches' CPU accounting that it is a function process (as "bootstrap" in the
# router's instances' command lines does).
FUNCTION = r"""
import json, socket, struct, sys
sock = socket.socket(fileno=int(sys.argv[1]))
handler = lambda event, context: event
buf = bytearray()
while True:
    while len(buf) < 4 or len(buf) < 4 + struct.unpack_from("!I", buf)[0]:
        chunk = sock.recv(262144)
        if not chunk:
            sys.exit(0)
        buf += chunk
    n = struct.unpack_from("!I", buf)[0]
    event = json.loads(bytes(buf[4 : 4 + n]))
    del buf[: 4 + n]
    out = json.dumps(handler(event, None), separators=(",", ":")).encode()
    sock.sendall(struct.pack("!I", len(out)) + out)
"""

PREFIX = b"/2015-03-31/functions/"


class Function(asyncio.Protocol):
    """The front's end of one function process's socket."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.caller: Caller | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) < 4:
            return
        n = struct.unpack_from("!I", self.buf)[0]
        if len(self.buf) < 4 + n:
            return
        body = bytes(self.buf[4 : 4 + n])
        del self.buf[: 4 + n]
        caller, self.caller = self.caller, None
        self.front.idle(self)
        if caller is not None:
            caller.answer(body)

    def call(self, caller: Caller, body: bytes) -> None:
        assert self.transport is not None
        self.caller = caller
        self.transport.write(struct.pack("!I", len(body)) + body)


class Front:
    def __init__(self) -> None:
        self.free: list[Function] = []
        self.waiting: collections.deque[tuple[Caller, bytes]] = collections.deque()

    def call(self, caller: Caller, body: bytes) -> None:
        if self.free:
            self.free.pop().call(caller, body)
        else:
            self.waiting.append((caller, body))

    def idle(self, function: Function) -> None:
        if self.waiting:
            caller, body = self.waiting.popleft()
            function.call(caller, body)
        else:
            self.free.append(function)


class Caller(asyncio.Protocol):
    """One client connection: one request at a time, keep-alive."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.next()

    def next(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line[15:])
        if len(self.buf) < end + 4 + length:
            return
        if not head.startswith(b"post " + PREFIX):
            self.reply(b"404 Not Found", b'{"message":"not found"}')
            del self.buf[: end + 4 + length]
            return
        body = bytes(self.buf[end + 4 : end + 4 + length]) or b"{}"
        del self.buf[: end + 4 + length]
        self.busy = True
        self.front.call(self, body)

    def answer(self, body: bytes) -> None:
        self.busy = False
        self.reply(b"200 OK", body)
        if self.buf:
            self.next()

    def reply(self, status: bytes, body: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (status, len(body), body)
            )


async def serve(port: int, instances: int) -> None:
    loop = asyncio.get_running_loop()
    front = Front()
    procs = []
    for _ in range(instances):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        procs.append(
            subprocess.Popen(  # noqa: ASYNC220 - at start, before the server takes calls
                [sys.executable, "-S", "-c", FUNCTION, str(theirs.fileno()), "floor-bootstrap"],
                pass_fds=[theirs.fileno()],
            )
        )
        theirs.close()
        _, function = await loop.create_unix_connection(lambda: Function(front), sock=ours)
        front.free.append(function)
    server = await loop.create_server(lambda: Caller(front), "127.0.0.1", port)
    try:
        await server.serve_forever()
    finally:
        for proc in procs:
            proc.kill()


def main() -> None:
    port = int(sys.argv[1])
    instances = int(sys.argv[sys.argv.index("--instances") + 1]) if "--instances" in sys.argv else 16
    try:
        import uvloop

        uvloop.run(serve(port, instances))
    except ImportError:
        asyncio.run(serve(port, instances))


if __name__ == "__main__":
    main()
