"""Python bytecodes the daemon runs per synchronous Invoke: a measure of the hot path that noise hardly moves.

    .venv/bin/python bench/invoke_opcodes.py [--seconds 5] [--top 30] [--source TREE]

CPU time per call moves by 5-10% between runs on a shared machine, so a change that saves 3% cannot be seen
in it (docs/performance.md). The count of Python opcodes the daemon runs per call hardly moves at all, and
on this hot path, where the profile is flat, it is what a change of the code changes. Starts `router
serve` (this checkout, or `--source`, another source tree) with one Python echo function, drives it with
16 connections as bench/invoke_bench.py does, and for `--seconds` turns on `sys.settrace` with opcode
events in the daemon (the daemon runs many times slower meanwhile: figures of time are meaningless here).
Prints the opcodes per call, by module and by function (with calls per Invoke). Requests are counted by the
Invoke front's parse, which runs once per request.

What it does not see: C (msgspec, uvloop, the system calls) and the other processes. The CPU per call
stays the figure of record (bench/invoke_bench.py); this one tells which way a change moves the Python.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path

from invoke_bench import Phase, run_calls
from support import free_port, stop, wait_ready

REPO = Path(__file__).resolve().parent.parent

# Runs `router serve` with SIGUSR1 (start counting) and SIGUSR2 (stop, write the counts to argv[1]).
TRACED = textwrap.dedent(
    """
    import collections, json, signal, sys

    out = sys.argv[1]
    ops, calls = collections.Counter(), collections.Counter()

    def local(frame, event, arg):
        if event == "opcode":
            ops[frame.f_code] += 1
        return local

    def first(frame, event, arg):
        frame.f_trace_opcodes = True
        calls[frame.f_code] += 1
        return local

    def name(code):
        return f"{code.co_filename}:{code.co_firstlineno}({code.co_name})"

    def stop(*_):
        sys.settrace(None)
        with open(out, "w") as f:
            counts = {"ops": ops, "calls": calls}
            json.dump({key: {name(c): n for c, n in found.items()} for key, found in counts.items()}, f)

    signal.signal(signal.SIGUSR1, lambda *_: sys.settrace(first))
    signal.signal(signal.SIGUSR2, stop)
    from router.cli import main

    sys.argv = ["router", "serve", "-c", "router.yaml"]
    sys.exit(main())
    """
)


def start(folder: Path, source: Path, out: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (folder / "echo").mkdir()
    (folder / "echo" / "app.py").write_text("def handler(event, context):\n    return event\n")
    (folder / "router.yaml").write_text(
        textwrap.dedent(
            f"""
            server: {{port: {port}}}
            state_dir: state
            functions:
              echo: {{runtime: python3.11, handler: app.handler, code: echo, memory_mb: 1769, timeout_s: 10}}
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", TRACED, str(out)],
        cwd=folder,
        stdout=open(folder / "router.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(source)},
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/readyz", proc)
    return proc, url


def short(name: str, source: Path) -> str:
    return name.replace(f"{source}/", "").replace(f"{sys.prefix}/", "")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of counting")
    parser.add_argument("--top", type=int, default=30, help="functions to list")
    parser.add_argument("--source", type=Path, default=REPO, help="the router's source tree to measure")
    args = parser.parse_args()
    source = args.source.resolve()
    with tempfile.TemporaryDirectory(prefix="invoke-opcodes-") as tmp:
        out = Path(tmp) / "counts.json"
        folder = Path(tmp) / "router"
        folder.mkdir()
        proc, url = start(folder, source, out)
        try:
            await run_calls(url, 16, 2.0, Phase())  # the instances started, the paths warm
            load = asyncio.ensure_future(run_calls(url, 16, args.seconds + 4, Phase()))
            await asyncio.sleep(1.0)
            os.kill(proc.pid, signal.SIGUSR1)
            await asyncio.sleep(args.seconds)
            os.kill(proc.pid, signal.SIGUSR2)
            await load
            for _ in range(100):
                if out.exists() and out.stat().st_size:
                    break
                await asyncio.sleep(0.1)
            counts = json.loads(out.read_text())
        finally:
            stop(proc)
    ops, calls = counts["ops"], counts["calls"]
    requests = sum(
        n for name, n in calls.items() if "control/front.py:" in name and name.endswith("(_parse)")
    )
    if not requests:
        sys.exit("no Invoke request was counted")
    total = sum(ops.values())
    print(f"{requests} Invoke requests counted; daemon Python opcodes per request: {total / requests:.0f}")
    modules: Counter[str] = Counter()
    for name, n in ops.items():
        modules[short(name.rsplit(":", 1)[0], source)] += n
    print("\nby module (opcodes per request)")
    for module, n in modules.most_common(20):
        print(f"{n / requests:8.0f}  {module}")
    print("\nby function (opcodes per request, calls per request)")
    for name, n in sorted(ops.items(), key=lambda item: -item[1])[: args.top]:
        print(f"{n / requests:8.0f} {calls.get(name, 0) / requests:6.2f}  {short(name, source)}")


if __name__ == "__main__":
    asyncio.run(main())
