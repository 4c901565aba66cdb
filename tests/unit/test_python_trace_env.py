"""The Python bootstrap's `_X_AMZN_TRACE_ID` (runtimes/python_bootstrap.py TraceEnv): each call's trace in
os.environ, in the C environment and in child processes, without the memory glibc's setenv(3) keeps for
every value it was given (os.environ[...] = value grew a process by ~140 bytes a call). Run in a child
Python, since it changes its process's environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUNTIMES = Path(__file__).resolve().parents[2] / "router" / "invoker" / "runtimes"

SCRIPT = r"""
import json, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
import python_bootstrap

def rss_kb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

def trace(i):
    return f"Root=1-5759e988-bd862e3fe1be46a9{i:08x};Parent=53995c3f42cd8ad8;Sampled=0"

def seen():
    child = subprocess.run(["/bin/sh", "-c", 'printf %s "$_X_AMZN_TRACE_ID"'], capture_output=True, text=True)
    return [os.environ.get("_X_AMZN_TRACE_ID"), child.stdout]

set_trace = python_bootstrap.TraceEnv().set if sys.argv[2] == "bootstrap" else (
    lambda v: os.environ.__setitem__("_X_AMZN_TRACE_ID", v))
out = {}
for i in range(2000):
    set_trace(trace(i))
before = rss_kb()
for i in range(100_000):
    set_trace(trace(i))
out["growth_kb"] = rss_kb() - before
out["last"] = seen()
if sys.argv[2] == "bootstrap":
    os.environ["_X_AMZN_TRACE_ID"] = "set-by-the-handler"
    set_trace("Root=after-the-handler")
    out["after_handler"] = seen()
    os.environ.pop("_X_AMZN_TRACE_ID")
    set_trace("Root=" + "x" * 700)
    out["long"] = [len(v) for v in seen()]
    set_trace(None)
    out["none"] = seen()
print(json.dumps(out))
"""


def run(kind: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(RUNTIMES), kind], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_each_calls_trace_is_in_os_environ_and_the_c_environment_without_growing_memory() -> None:
    out = run("bootstrap")
    last = "Root=1-5759e988-bd862e3fe1be46a9" + f"{99_999:08x}" + ";Parent=53995c3f42cd8ad8;Sampled=0"
    assert out["last"] == [last, last]
    assert out["after_handler"] == ["Root=after-the-handler"] * 2
    assert out["long"] == [705, 705]
    assert out["none"] == [None, ""]
    assert isinstance(out["growth_kb"], int) and out["growth_kb"] < 1024, out


def test_what_os_environ_alone_would_cost() -> None:
    """The baseline the first test guards against: setenv(3) keeps every value (glibc)."""
    assert run("environ")["growth_kb"] > 5 * 1024  # ~14 MB for 100,000 values
