"""The browser tier: the console in headless Chromium (Debian's `chromium`), driven by Playwright for Python
through its `executable_path` (no browser is ever downloaded: `playwright install` is not run).

* `chromium_path` (session): /usr/bin/chromium; when it is missing and the tests run as root, it is
  installed with `apt-get install -y chromium` once (one pytest-xdist worker at a time); where that cannot
  be done, the browser tests fail with the reason (install Debian's chromium, or run as root): a missing
  browser is never a silent pass of the console's tier.
* `browser`: a fresh headless Chromium (Playwright gives it its own empty profile; the flags a root user needs
  on this kind of machine: no sandbox, no background networking), closed after the test.
* `shots`: the folder the tests save their screenshots in (artefacts under pytest's temp folder; printed at
  the end of the run).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
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
        # pytest-xdist workers may get here at once: one installs, the others wait for it and find it there
        with open(Path(tempfile.gettempdir()) / "router-tests-chromium.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            reason = "" if Path(CHROMIUM).exists() else _install()
        if reason:
            pytest.fail(f"the console's browser tests need Debian's chromium: {reason}", pytrace=False)
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


def _shots_folder(base: Path) -> Path:
    """One folder for the whole run: pytest-xdist workers have their own temp folders under the run's."""
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "console-screenshots"


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = _shots_folder(tmp_path_factory.getbasetemp())
    folder.mkdir(exist_ok=True)
    return folder


def pytest_terminal_summary(terminalreporter: Any) -> None:
    factory = getattr(terminalreporter.config, "_tmp_path_factory", None)
    if factory is not None and not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = _shots_folder(factory.getbasetemp())
        if folder.is_dir() and any(folder.iterdir()):
            terminalreporter.write_line(f"console screenshots: {folder}")
