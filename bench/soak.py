"""Soak: N malformed requests per listener against one running router; every one answered, nothing logged.

    .venv/bin/python bench/soak.py [--n 10000] [--deadline-s 1.0]

Starts `router serve` (a subprocess) with every listener: the control plane (Lambda API), an HTTP gateway
with a `$default` route, an SMTP server, and a custom-runtime function whose runtime attacks its own
Runtime API (tests/functions/runtime_fuzz). Then, all four at once:

* control plane and gateway: N raw requests each, cycling through the regression corpus of the fuzz tier
  (tests/fuzz/corpus.py: broken encodings and framing, bombs, long lines, bad methods, versions, URLs),
  each on a fresh connection; each must be answered with the status the corpus expects, in the listener's
  form (Lambda's x-amzn-ErrorType, API Gateway's {"message"}), within `deadline_s`;
* SMTP: N malformed command lines, ten per session, each answered with its 5xx code within `deadline_s`;
* Runtime API: the function is invoked with {"n": N}: its runtime sends N malformed requests to its own
  Runtime API and reports each status and the slowest answer.

Afterwards the daemon must be healthy (/healthz, a valid invoke, a valid gateway request, a valid mail),
its log must hold no traceback and no ERROR line, and its memory must have grown by less than 200 MB. Prints
one line per listener and exits 1 on any failure. The fuzz tier (tests/fuzz/test_soak.py) runs it with a
small N; docs/hardening.md records a run with N = 10,000.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the corpus is the fuzz tier's: tests/fuzz/corpus.py

from tests.fuzz.corpus import INVOKE_PATH, SMTP_CASES, HttpCase, deep_json, http_cases  # noqa: E402
from tests.fuzz.wire import http_exchange, smtp_session  # noqa: E402


@dataclass
class Tally:
    listener: str
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    slowest: str = ""  # what the slowest answer was to
    late: int = 0

    def record(self, got: str, want: str, took: float, deadline_s: float, what: str) -> None:
        self.sent += 1
        self.statuses[got] += 1
        if took > self.slowest_s:
            self.slowest_s, self.slowest = took, what
        if took > deadline_s:
            self.late += 1
        if got != want and len(self.wrong) < 5:
            self.wrong.append(f"{what}: got {got}, expected {want}")

    @property
    def ok(self) -> bool:
        return (
            self.sent > 0 and not self.wrong and self.late == 0 and sum(self.statuses.values()) == self.sent
        )

    def line(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        verdict = "ok" if self.ok else "FAILED " + "; ".join(self.wrong)
        return (
            f"{self.listener:13s} sent {self.sent:6d}  slowest {self.slowest_s * 1000:7.1f} ms"
            f"{' (' + self.slowest + ')' if self.slowest else ''}  "
            f"over deadline {self.late}  [{counts}]  {verdict}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_router(folder: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    ports = {"control": free_port(), "gateway": free_port(), "smtp": free_port()}
    functions = REPO / "tests" / "functions"
    (folder / "router.yaml").write_text(
        textwrap.dedent(
            f"""
            server: {{port: {ports["control"]}}}
            functions:
              echo: {{runtime: python3.11, handler: app.handler, code: "{functions / "echo"}", timeout_s: 10}}
              fuzz: {{runtime: provided, handler: none.handler, code: "{functions / "runtime_fuzz"}",
                      timeout_s: 900}}
            sources:
              api: {{kind: http, port: {ports["gateway"]}}}
              inbox: {{kind: email, port: {ports["smtp"]}, recipients: ["@example.test"]}}
            routes:
              - {{source: api, function: echo, http: {{method: ANY, path: "$default"}}}}
              - {{source: inbox, function: echo}}
            """
        )
    )
    log = open(folder / "router.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "-c", "router.yaml", "--log-format", "json"],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"router exited:\n{(folder / 'router.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['control']}/readyz", timeout=1):
                return proc, ports
        except OSError:
            time.sleep(0.1)
    raise SystemExit("router not ready after 60 s")


def http_soak(listener: str, port: int, n: int, deadline_s: float) -> Tally:
    cases = http_cases()
    path = INVOKE_PATH if listener == "control" else "/items/1"
    extra = (
        [HttpCase("deep-json", f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: x", deep_json())]
        if listener == "control"
        else [HttpCase("connect", "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443", gateway=501)]
    )
    cases += extra
    raws = [case.raw(path) for case in cases]
    tally = Tally(listener)
    for i in range(n):
        case = cases[i % len(cases)]
        started = time.monotonic()
        reply = http_exchange(port, raws[i % len(cases)])
        took = time.monotonic() - started
        want = case.control[0] if listener == "control" else case.gateway
        got = "none" if reply is None else str(reply.status)
        if reply is not None and not _in_form(listener, reply.headers, reply.body):
            got += "-wrong-form"
        tally.record(got, str(want), took, deadline_s, case.name)
    return tally


def _in_form(listener: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    if listener == "control":
        return "x-amzn-errortype" in headers and parsed.get("Type") in ("User", "Service")
    return set(parsed) == {"message"} and "apigw-requestid" in headers


def smtp_soak(port: int, n: int, deadline_s: float) -> Tally:
    """Sessions of malformed commands: RCPT ones after a valid MAIL FROM, the others right after EHLO."""
    tally = Tally("smtp")
    rcpt = [c for c in SMTP_CASES if c[0].startswith("RCPT")]
    sessions = [
        ([b"EHLO soak.test"], [c for c in SMTP_CASES if c not in rcpt]),
        ([b"EHLO soak.test", b"MAIL FROM:<a@example.test>"], rcpt),
    ]
    while tally.sent < n:
        for opening, cases in sessions:
            batch = cases[: n - tally.sent]
            lines = [*opening, *(line.encode("utf-8", "surrogateescape") for line, _ in batch)]
            started = time.monotonic()
            replies = smtp_session(port, lines)[1 + len(opening) :]
            took = (time.monotonic() - started) / len(lines)  # per command: a session is one at a time
            for i, (line, code) in enumerate(batch):
                got = replies[i][:3] if i < len(replies) else "none"
                tally.record(got, code, took, deadline_s, line[:30])
    return tally


def runtime_soak(control: int, n: int, deadline_s: float) -> Tally:
    request = urllib.request.Request(
        f"http://127.0.0.1:{control}/2015-03-31/functions/fuzz/invocations",
        data=json.dumps({"n": n}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=3600) as r:
        result = json.loads(r.read())
    tally = Tally("runtime API", sent=result["sent"], slowest_s=result["slowest_s"])
    tally.statuses.update(result["statuses"])
    if result["unanswered"]:
        tally.statuses["none"] += result["unanswered"]
        tally.wrong.append(f"{result['unanswered']} unanswered")
    tally.wrong += [f"status {s}" for s in result["statuses"] if not 400 <= int(s) < 500]
    tally.late = 1 if result["slowest_s"] > deadline_s else 0
    return tally


def health(ports: dict[str, int]) -> list[str]:
    """What is wrong with the daemon after the soak (empty when it is healthy)."""
    problems = []
    base = f"http://127.0.0.1:{ports['control']}"
    checks = [
        (f"{base}/healthz", None),
        (f"{base}{INVOKE_PATH}", b'{"after": "soak"}'),
        (f"http://127.0.0.1:{ports['gateway']}/after/soak", None),
    ]
    for url, data in checks:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as r:
                if r.status != 200:
                    problems.append(f"{url}: {r.status}")
        except OSError as e:
            problems.append(f"{url}: {e}")
    try:
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as smtp:
            smtp.sendmail("a@example.test", ["b@example.test"], "Subject: after soak\r\n\r\nstill here\r\n")
    except (OSError, smtplib.SMTPException) as e:
        problems.append(f"smtp: {e}")
    return problems


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="malformed requests per listener")
    parser.add_argument("--deadline-s", type=float, default=1.0, help="the longest an answer may take")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        proc, ports = start_router(folder)
        try:
            rss_before = rss_mb(proc.pid)
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                jobs = [
                    pool.submit(http_soak, "control", ports["control"], args.n, args.deadline_s),
                    pool.submit(http_soak, "gateway", ports["gateway"], args.n, args.deadline_s),
                    pool.submit(smtp_soak, ports["smtp"], args.n, args.deadline_s),
                    pool.submit(runtime_soak, ports["control"], args.n, args.deadline_s),
                ]
                tallies = [job.result() for job in jobs]
            elapsed = time.monotonic() - started
            problems = health(ports)
            rss_after = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
        log = (folder / "router.log").read_text(errors="replace")
    for tally in tallies:
        print(tally.line())
    refusal_lines = sum(1 for line in log.splitlines() if '"logger":"router.edge"' in line)
    tracebacks = log.count("Traceback")
    errors = sum(1 for line in log.splitlines() if '"level":"error"' in line)
    grown = rss_after - rss_before
    print(
        f"{sum(t.sent for t in tallies)} requests in {elapsed:.1f} s; daemon RSS {rss_before:.0f} -> "
        f"{rss_after:.0f} MB; log: {refusal_lines} refusal lines, {tracebacks} tracebacks, {errors} errors"
    )
    if grown > 200:
        problems.append(f"memory grew by {grown:.0f} MB")
    if tracebacks or errors:
        problems.append("tracebacks or ERROR lines in the log")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 0 if all(t.ok for t in tallies) and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
