"""A test helper for users' own integration tests: a real router on a config, and waits instead of sleeps.

    from router.testing import run_router

    def test_resize(tmp_path):
        with run_router("config/router.yaml") as router:
            cursor = router.cursor()
            (tmp_path / "in" / "cat.jpg").write_bytes(data)          # trigger it for real, or:
            router.inject("uploads", records=[...])                  # inject a native record
            hit = router.wait_for("resize", {"event": {"Records": {"s3": {"object": {"key": ["cat.jpg"]}}}}},
                                  after=cursor)
            assert hit["outcome"] == "success" and hit["result"]["width"] == 128

`run_router(config, *, cwd=None, env=None, port=None, ready_s=30)` starts `python -m router serve -c CONFIG`
as a subprocess (its own process group, JSON logs in `router.log` beside the config), waits until it is
ready, and stops it (SIGTERM, then SIGKILL of its group) when the `with` block ends. `config` is a path, or
the YAML text itself (written to a temporary folder, or to `cwd`). The port is read from the daemon's
"router started" log line, so `server: {port: 0}` works; `port=N` sets `$ROUTER_PORT` for configs that say
`port: ${ROUTER_PORT}`. A `Router`:

* `cursor()`; `invocations(function=None, after=0)`; `wait_for(function, pattern=None, after=None,
  timeout_s=20)`: the first invocation after the cursor whose document (docs/inspect.md: event, result,
  outcome, source, fault, ...) matches the EventBridge pattern (or list of patterns);
  `wait_for_count(function, count, pattern=None, after=None, timeout_s=20)`: the first `count` of them.
  Both raise `RouterTestError` (an AssertionError) on timeout, naming what was waited for.
* `invoke(function, payload)` -> `Invoked(payload, function_error, request_id, log)`;
  `invoke_async(function, payload)` -> request id; `inject(source, **body)` (the inspection API's inject);
  `request(request_id)`: its accepted event and invocations.
* `replay(**plan)`, `redrive(**body)`, `set_faults(function=..|source=.., **settings)`, `clear_faults(...)`,
  `faults()`, `failures(function=None)`.
* `stop()`, `start()` (again, same folder and state), `log_text()`.

With pytest: `pytest_plugins = ["router.testing"]` in a conftest gives the fixture `router_factory`:
`router = router_factory(config, **kw)`; every router it made is stopped after the test. Only the standard
library is used; the router package must be importable by the `python` running the tests.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Invoked", "Router", "RouterTestError", "run_router"]


class RouterTestError(AssertionError):
    """A wait timed out, or the router answered an error: what was expected is in the message."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class Invoked:
    payload: Any  # the decoded JSON answer (or text)
    function_error: str | None  # "Unhandled" when the function failed
    request_id: str
    log: str  # the tail of the call's log (START ... REPORT)


class Router:
    def __init__(self, config_path: Path, *, env: dict[str, str] | None = None) -> None:
        self.config_path = Path(config_path).resolve()
        self.cwd = self.config_path.parent
        self.log_path = self.cwd / "router.log"
        self.env = {**os.environ, **(env or {})}
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self, ready_s: float = 30.0) -> Router:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "router", "serve", "-c", str(self.config_path), "--log-format",
                 "json"],
                cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.url = f"http://127.0.0.1:{self._port(offset, ready_s)}"
        self._until(lambda: self._status("/readyz") == 200, "the router to be ready", ready_s)
        return self

    def _port(self, offset: int, within_s: float) -> int:
        found: list[int] = []

        def started() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RouterTestError(
                    f"the router exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}"
                )
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                for line in log:
                    with contextlib.suppress(ValueError):
                        entry = json.loads(line)
                        if entry.get("msg") == "router started":
                            found.append(int(entry["control_port"]))
                            return True
            return False

        self._until(started, "the router to start", within_s)
        return found[0]

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait for the drain; SIGKILL the group after `timeout_s`. Returns the exit code."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return int(proc.returncode or 0)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- HTTP -----------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, *, timeout_s: float = 60.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            answer: Any = e.read().decode(errors="replace")
            with contextlib.suppress(ValueError):
                answer = json.loads(answer)
            kind = e.headers.get("x-amzn-ErrorType", "")
            raise RouterTestError(f"{method} {path}: {e.code} {kind}: {answer}", e.code, answer) from None
        return json.loads(raw) if raw else None

    def _status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            e.close()
            return e.code
        except OSError:
            return 0

    def _until(self, check: Callable[[], bool], what: str, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while not check():
            if time.monotonic() > deadline:
                raise RouterTestError(f"timed out after {within_s:g}s waiting for {what}")
            time.sleep(0.05)

    # -- the record -----------------------------------------------------------------------------------------

    def cursor(self) -> int:
        return int(self.call("GET", "/inspect/cursor")["cursor"])

    def invocations(self, function: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        path = f"/inspect/functions/{_q(function)}/invocations" if function else "/inspect/invocations"
        return list(self.call("GET", f"{path}?after={after}")["invocations"])

    def wait_for(
        self, function: str | None, pattern: Any = None, *, after: int | None = None, timeout_s: float = 20.0
    ) -> dict[str, Any]:
        """The first invocation after the cursor matching the pattern (EventBridge syntax)."""
        return self.wait_for_count(function, 1, pattern, after=after, timeout_s=timeout_s)[0]

    def wait_for_count(
        self,
        function: str | None,
        count: int,
        pattern: Any = None,
        *,
        after: int | None = None,
        timeout_s: float = 20.0,
    ) -> list[dict[str, Any]]:
        path = f"/inspect/functions/{_q(function)}/wait" if function else "/inspect/wait"
        cursor = self.cursor() if after is None else after
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while len(found) < count:
            body = {"pattern": pattern, "after": cursor, "timeout_s": max(0.0, deadline - time.monotonic())}
            try:
                hit = self.call("POST", path, body, timeout_s=timeout_s + 10)
            except RouterTestError as e:
                if e.status != 408:
                    raise
                what = f"invocation(s) of {function or 'any function'} matching {pattern}"
                raise RouterTestError(
                    f"{len(found)} of {count} {what} after cursor {after} within {timeout_s:g}s"
                ) from None
            found.append(hit["invocation"])
            cursor = hit["cursor"]
        return found

    def request(self, request_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/inspect/requests/{_q(request_id)}"))

    # -- calls ----------------------------------------------------------------------------------------------

    def invoke(self, function: str, payload: Any = None) -> Invoked:
        request = urllib.request.Request(
            f"{self.url}/2015-03-31/functions/{_q(function)}/invocations",
            data=json.dumps(payload if payload is not None else {}).encode(),
            headers={"X-Amz-Log-Type": "Tail", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=930) as response:
                raw, headers = response.read(), response.headers
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            kind = e.headers.get("x-amzn-ErrorType", "")
            raise RouterTestError(f"invoke {function}: {e.code} {kind}: {text}", e.code, text) from None
        try:
            answer: Any = json.loads(raw) if raw else None
        except ValueError:
            answer = raw.decode(errors="replace")
        log = base64.b64decode(headers.get("X-Amz-Log-Result", "")).decode(errors="replace")
        return Invoked(answer, headers.get("X-Amz-Function-Error"), headers.get("x-amzn-RequestId", ""), log)

    def invoke_async(self, function: str, payload: Any = None) -> str:
        request = urllib.request.Request(
            f"{self.url}/2015-03-31/functions/{_q(function)}/invocations",
            data=json.dumps(payload if payload is not None else {}).encode(),
            headers={"X-Amz-Invocation-Type": "Event"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return str(response.headers.get("x-amzn-RequestId", ""))

    def inject(self, source: str, **body: Any) -> dict[str, Any]:
        return dict(self.call("POST", f"/inspect/sources/{_q(source)}/inject", body))

    def replay(self, **plan: Any) -> dict[str, Any]:
        return dict(self.call("POST", "/inspect/replay", plan, timeout_s=24 * 3600))

    def redrive(self, **body: Any) -> dict[str, Any]:
        return dict(self.call("POST", "/inspect/redrive", body, timeout_s=24 * 3600))

    def failures(self, function: str | None = None) -> list[dict[str, Any]]:
        path = f"/inspect/functions/{_q(function)}/failures" if function else "/inspect/failures"
        return list(self.call("GET", path)["destinations"])

    def faults(self) -> dict[str, Any]:
        return dict(self.call("GET", "/inspect/faults"))

    def set_faults(self, *, function: str | None = None, source: str | None = None, **settings: Any) -> Any:
        key, name = ("functions", function) if function is not None else ("sources", source)
        return self.call("PUT", "/inspect/faults", {key: {name: settings}})

    def clear_faults(self, *, function: str | None = None, source: str | None = None) -> Any:
        key, name = ("functions", function) if function is not None else ("sources", source)
        return self.call("PUT", "/inspect/faults", {key: {name: None}})


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


@contextlib.contextmanager
def run_router(
    config: str | Path,
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
    ready_s: float = 30.0,
) -> Iterator[Router]:
    """A started router on `config` (a file, or YAML text); stopped when the block ends."""
    with contextlib.ExitStack() as stack:
        path = Path(config) if not _is_yaml_text(config) else None
        if path is None:
            folder = (
                Path(cwd) if cwd is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
            )
            path = folder / "router.yaml"
            path.write_text(str(config))
        extra = dict(env or {})
        if port is not None:
            extra["ROUTER_PORT"] = str(port)
        router = stack.enter_context(Router(path, env=extra))
        router.start(ready_s)
        yield router


def _is_yaml_text(config: str | Path) -> bool:
    return isinstance(config, str) and "\n" in config


try:  # the pytest fixture, when pytest is there (`pytest_plugins = ["router.testing"]`)
    import pytest
except ImportError:  # pragma: no cover - the helper works without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def router_factory(tmp_path: Path) -> Iterator[Callable[..., Router]]:
        """`router_factory(config, **run_router_kw)`: a started Router, stopped after the test. YAML text is
        written to a folder of its own in the test's tmp_path (relative paths in it resolve there)."""
        numbers = itertools.count()
        with contextlib.ExitStack() as stack:

            def make(config: str | Path, **kw: Any) -> Router:
                if "cwd" not in kw:
                    kw["cwd"] = tmp_path / f"router{next(numbers)}"
                    kw["cwd"].mkdir()
                return stack.enter_context(run_router(config, **kw))

            yield make
