"""Daemon.reload in process: what a changed config restarts, adds, removes and keeps."""

from __future__ import annotations

from pathlib import Path

from router.daemon import Daemon
from router.validate import parse_config

BASE = """
server: {port: 0}
state_dir: state
functions:
  f: {runtime: python3.11, handler: app.handler, code: fn}
sources:
  keep: {kind: schedule, expression: "rate(1 hour)"}
  change: {kind: schedule, expression: "rate(1 hour)"}
routes:
  - {source: keep, function: f}
  - {source: change, function: f}
"""

CHANGED = """
server: {port: 0}
state_dir: state
functions:
  f: {runtime: python3.11, handler: app.handler, code: fn}
  g: {runtime: python3.11, handler: app.handler, code: fn, memory_mb: 256}
sources:
  keep: {kind: schedule, expression: "rate(1 hour)"}
  change: {kind: schedule, expression: "rate(2 hours)"}
  added: {kind: schedule, expression: "rate(1 day)"}
routes:
  - {source: keep, function: f}
  - {source: change, function: f}
  - {source: added, function: g}
"""

REMOVED = """
server: {port: 0}
state_dir: state
functions:
  g: {runtime: python3.11, handler: app.handler, code: fn}
sources:
  added: {kind: schedule, expression: "rate(1 day)"}
routes:
  - {source: added, function: g}
"""


def config(text: str, base: Path):
    (base / "fn").mkdir(exist_ok=True)
    (base / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n")
    return parse_config(text, base_dir=base, env={})


async def test_reload_restarts_only_what_changed(tmp_path: Path) -> None:
    async with Daemon(config(BASE, tmp_path)) as daemon:
        assert daemon.control_port and daemon.control_port > 0
        keep_task = daemon.sources["keep"].task
        change_task = daemon.sources["change"].task
        assert daemon.dispatcher is not None
        assert set(daemon.dispatcher.functions()) == {"f"}

        await daemon.reload(config(CHANGED, tmp_path))
        assert set(daemon.sources) == {"keep", "change", "added"}
        assert daemon.sources["keep"].task is keep_task  # unchanged source: not restarted
        assert daemon.sources["change"].task is not change_task  # changed settings: restarted
        assert change_task is not None and change_task.done()
        assert set(daemon.dispatcher.functions()) == {"f", "g"}
        assert daemon.dispatcher.functions()["g"].config.memory_mb == 256

        await daemon.reload(config(REMOVED, tmp_path))
        assert set(daemon.sources) == {"added"}
        assert keep_task is not None and keep_task.done()
        assert set(daemon.dispatcher.functions()) == {"g"}


async def test_reload_keeps_server_settings_until_restart(tmp_path: Path) -> None:
    async with Daemon(config(BASE, tmp_path)) as daemon:
        port = daemon.config.server.port
        await daemon.reload(config(BASE.replace("port: 0", "port: 1"), tmp_path))
        assert daemon.config.server.port == port


async def test_a_failing_source_is_restarted_and_the_daemon_survives(tmp_path: Path, monkeypatch) -> None:
    import asyncio

    from router import sources
    from router.config import sources as settings
    from tests.unit import flaky_source

    monkeypatch.setitem(settings.SETTINGS, "flaky", flaky_source.Config)
    monkeypatch.setitem(sources.PACKAGES, "flaky", "tests.unit.flaky_source")
    flaky_source.RUNS.clear()
    text = BASE.replace('change: {kind: schedule, expression: "rate(1 hour)"}', "change: {kind: flaky}")
    async with Daemon(config(text, tmp_path)) as daemon:
        for _ in range(200):
            if daemon.is_ready():
                break
            await asyncio.sleep(0.02)
        assert daemon.is_ready()
        assert flaky_source.RUNS == ["run", "close", "run"]  # failed, closed, started again
    assert flaky_source.RUNS == ["run", "close", "run", "close"]
