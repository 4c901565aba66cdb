"""The README's quick start, line by line, on what a fresh clone holds (the files git tracks).

The commands of the quick start's second shell block run as written, with two changes only: the ports are
free ones (the default config reads them from ROUTER_PORT, ROUTER_HTTP_PORT and ROUTER_SMTP_PORT, `router
invoke` from ROUTER_ENDPOINT) and
`.venv/bin/router` / `python3` are this interpreter. The upload is written before the daemon first starts, as
a newcomer who runs the lines out of order would.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.inspect_client import Inspector
from tests.support import RouterProcess, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def shell_blocks(markdown: str) -> list[list[str]]:
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", markdown, re.S)]


def fresh_clone(target: Path) -> None:
    """Copy the tracked files a quick start touches (config, functions, data), as `git clone` would."""
    tracked = (
        subprocess.run(
            ["git", "ls-files", "-z", "config", "functions", "data"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, tracked):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target / rel)


def localise(line: str, ports: dict[str, int]) -> str:
    command = line.split("  #", 1)[0].strip()
    for default, port in ports.items():
        command = command.replace(f":{default}", f":{port}").replace(f"', {default})", f"', {port})")
    python = shlex.quote(sys.executable)
    return command.replace(".venv/bin/router", f"{python} -m router").replace("python3 -c", f"{python} -c")


async def test_readme_quick_start_runs_line_by_line_on_a_fresh_clone(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    install, commands = shell_blocks(readme)[:2]
    assert install[0].endswith("router serve -c config/router.yaml")
    fresh_clone(tmp_path)
    ports = {"9000": free_port(), "8080": free_port(), "2525": free_port()}
    env = {
        "ROUTER_PORT": str(ports["9000"]),
        "ROUTER_HTTP_PORT": str(ports["8080"]),
        "ROUTER_SMTP_PORT": str(ports["2525"]),
        "ROUTER_STATE_DIR": str(tmp_path / "state"),
    }
    shell_env = {**os.environ, **env, "ROUTER_ENDPOINT": f"http://127.0.0.1:{ports['9000']}"}
    lines = [localise(line, ports) for line in commands]
    upload = next(line for line in lines if "data/uploads" in line)
    subprocess.run(["bash", "-c", upload], cwd=tmp_path, check=True)  # before the daemon ever ran
    config = tmp_path / "config" / "router.yaml"
    router = RouterProcess(config.parent, config.read_text(), env)
    try:
        await router.start()
        for line in lines:
            if line is not upload:
                done = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, env=shell_env)
                assert done.returncode == 0, (line, done.stdout, done.stderr)
        inspector = Inspector(router.url)
        uploaded: Any = await inspector.wait("on_upload", after=0)
        assert uploaded["event"]["Records"][0]["s3"]["object"]["key"] == "note.txt"
        mail: Any = await inspector.wait("on_mail", after=0)
        headers = mail["event"]["Records"][0]["ses"]["mail"]["commonHeaders"]
        assert headers["from"] == ["me@x.test"] and headers["subject"] == "hi"
        assert (await inspector.wait("hello", after=0))["event"]["rawPath"] == "/hello/you"
        assert (await inspector.wait("echo_node", after=0))["event"] == {"a": 1}
    finally:
        router.cleanup()
