"""The browser tier: the console in headless Chromium (Debian's `chromium`), driven by Playwright for Python
through its `executable_path` (no browser is ever downloaded: `playwright install` is not run).

* `chromium_path` (session): /usr/bin/chromium; when it is missing and the tests run as root, it is
  installed with `apt-get install -y chromium` once; where that cannot be done, the browser tests are skipped
  with the reason (the only skip in the suite).
* `browser`: a fresh headless Chromium (Playwright gives it its own empty profile; the flags a root user needs
  on this kind of machine: no sandbox, no background networking), closed after the test.
* `shots`: the folder the tests save their screenshots in (artefacts under pytest's temp folder; printed at
  the end of the run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _install() -> str:
    """Why Chromium could not be installed ("" once it is there)."""
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and the tests are not run as root (install Debian's chromium package)"
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it with"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed: {done.stderr.strip()[-500:]}"
    return "" if Path(CHROMIUM).exists() else f"chromium was installed but {CHROMIUM} is still missing"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        reason = _install()
        if reason:
            pytest.skip(f"the console's browser tests need Debian's chromium: {reason}")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path,
            args=FLAGS,
            headless=True,
        )
        try:
            yield launched
        finally:
            await launched.close()


_SHOTS: list[Path] = []


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("console-screenshots")
    _SHOTS.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in _SHOTS:
        terminalreporter.write_line(f"console screenshots: {folder}")
