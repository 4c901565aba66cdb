"""Hot reload through `router serve`: a config function's code folder edited takes effect on its next call
(warm instances replaced); `invoker.hot_reload: false` keeps them; `serve --watch` reloads the config file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_daemon import invoke, wait_for_log
from tests.support import RouterProcess

pytestmark = pytest.mark.integration

APP = "import os\n\ndef handler(event, context):\n    return {{'version': {version}, 'pid': os.getpid()}}\n"


def config(code: Path, hot_reload: bool = True) -> str:
    return f"""
server: {{port: "${{ROUTER_PORT}}"}}
state_dir: state
invoker: {{hot_reload: {str(hot_reload).lower()}}}
functions:
  fn: {{runtime: python3.11, handler: app.handler, code: "{code}", timeout_s: 2}}
"""


def write_code(folder: Path, version: int) -> None:
    (folder / "app.py").write_text(APP.format(version=version))


async def call(router: RouterProcess) -> dict[str, Any]:
    status, body = await asyncio.to_thread(invoke, router, "fn", {})
    assert status == 200, body
    return body


async def until_version(router: RouterProcess, folder: Path, version: int) -> dict[str, Any]:
    """Call until the answer comes from `version`, saving the file again before each call: the watcher
    may have started after the first save."""
    for _ in range(600):
        write_code(folder, version)
        body = await call(router)
        if body["version"] == version:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"version {version} never answered:\n{router.log_text()[-3000:]}")


async def test_an_edited_code_folder_answers_from_new_instances(make_router, tmp_path: Path) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    write_code(code, 1)
    watching = await make_router(config(code), name="watching")
    fixed = await make_router(config(code, hot_reload=False), name="fixed")
    first, kept = await call(watching), await call(fixed)
    assert first["version"] == kept["version"] == 1

    second = await until_version(watching, code, 2)
    assert second["pid"] != first["pid"]  # the warm instance was replaced, not re-imported
    await wait_for_log(watching, "hot reload: fn: code changed")
    again = await call(watching)
    assert again == second  # one new instance, warm from then on

    # Without hot reload the warm instance runs the code it started with, though the folder changed.
    assert await call(fixed) == kept
    assert "hot reload: watching" not in fixed.log_text()


SECOND = """
  second: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo", timeout_s: 2}
"""


async def test_serve_watch_reloads_the_config_file_when_it_changes(make_router, tmp_path: Path) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    write_code(code, 1)
    router = await make_router(config(code), start=False)
    router.serve_args = ("--watch",)
    await router.start()
    status, _ = await asyncio.to_thread(invoke, router, "second", {})
    assert status == 404
    for attempt in range(1, 200):  # the watch may start after the first save: save until it is seen
        router.config_path.write_text(config(code) + SECOND + f"# save {attempt}\n")
        if "config file changed: reloading" in router.log_text():
            break
        await asyncio.sleep(0.1)
    await wait_for_log(router, "reload: applied")
    status, body = await asyncio.to_thread(invoke, router, "second", {"n": 1})
    assert status == 200 and body["event"] == {"n": 1}
    # An editor that truncates the file before it writes: the empty file is never applied (an empty
    # config is valid and would stop everything).
    router.config_path.write_text("")
    await wait_for_log(router, "kept the running config")
    status, body = await asyncio.to_thread(invoke, router, "second", {"n": 2})
    assert status == 200 and body["event"] == {"n": 2}
    assert await router.stop() == 0
