"""The Node.js bootstrap's `_X_AMZN_TRACE_ID` (runtimes/node_bootstrap.js wrapEnvironment): each call's trace
in process.env, its keys and child processes, while every other variable stays the real environment (TZ
still takes effect), and without the memory glibc's setenv(3) keeps for every value it was given (setting
process.env's variable on every call grew a process by ~140 bytes a call). Real node processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

BOOTSTRAP = Path(__file__).resolve().parents[2] / "router" / "invoker" / "runtimes" / "node_bootstrap.js"

SCRIPT = r"""
const [mode, bootstrap] = process.argv.slice(1);
if (mode === "wrapped") require(bootstrap).wrapEnvironment();
const { execFileSync } = require("child_process");
const rss = () => process.memoryUsage().rss;
const trace = (i) =>
  "Root=1-5759e988-bd862e3fe1be46a9" + i.toString(16).padStart(8, "0") + ";Parent=53995c3f42cd8ad8;Sampled=0";
const PRINT = "process.stdout.write(process.env._X_AMZN_TRACE_ID || '')";
const child = () => execFileSync(process.execPath, ["-e", PRINT]).toString();
for (let i = 0; i < 5000; i++) process.env._X_AMZN_TRACE_ID = trace(i);
global.gc();
const before = rss();
for (let i = 0; i < 100000; i++) process.env._X_AMZN_TRACE_ID = trace(i);
global.gc();
const out = { growth_kb: Math.round((rss() - before) / 1024), started: process.env.STARTED_WITH };
const name = "_X_AMZN_TRACE_ID";
out.seen = [process.env[name], name in process.env, Object.keys(process.env).includes(name),
            { ...process.env }[name], child()];
process.env.TZ = "America/New_York";
out.tz_offset = new Date(0).getTimezoneOffset();
process.env.OTHER = 7;
out.other = [process.env.OTHER, typeof process.env.OTHER];
delete process.env._X_AMZN_TRACE_ID;
out.deleted = [process.env._X_AMZN_TRACE_ID === undefined, "_X_AMZN_TRACE_ID" in process.env, child()];
console.log(JSON.stringify(out));
"""


def run(mode: str) -> dict[str, object]:
    env = {**os.environ, "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", "STARTED_WITH": "yes", "TZ": "UTC"}
    done = subprocess.run(
        ["node", "--expose-gc", "-e", SCRIPT, mode, str(BOOTSTRAP)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_each_calls_trace_is_in_process_env_and_child_processes_without_growing_memory() -> None:
    out = run("wrapped")
    last = "Root=1-5759e988-bd862e3fe1be46a9" + f"{99_999:08x}" + ";Parent=53995c3f42cd8ad8;Sampled=0"
    assert out["seen"] == [last, True, True, last, last]
    assert out["started"] == "yes" and out["other"] == ["7", "string"]  # the rest is the real environment
    assert out["tz_offset"] == 300  # and TZ still takes effect
    assert out["deleted"] == [True, False, ""]
    assert isinstance(out["growth_kb"], int) and out["growth_kb"] < 4096, out


def test_what_setenv_on_every_call_costs() -> None:
    """The baseline the first test guards against: setting process.env's variable is setenv(3)."""
    assert run("plain")["growth_kb"] > 8192  # ~14 MB for 100,000 values
