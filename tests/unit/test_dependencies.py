"""pyproject.toml's pins agree with each other, so `pip install -e '.[test]'` resolves without backtracking.

aiobotocore pins botocore to a handful of releases, and boto3 X.Y.Z requires botocore X.Y.Z. A boto3 range
wider than aiobotocore's botocore range makes pip try every newer boto3 (downloading each) before it finds
one that fits: over two minutes on a fresh machine.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def declared() -> dict[str, SpecifierSet]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    return {r.name: r.specifier for r in map(Requirement, lines)}


def bounds(spec: SpecifierSet) -> tuple[str | None, str | None]:
    low = next((s.version for s in spec if s.operator in (">=", "==", "~=")), None)
    high = next((s.version for s in spec if s.operator in ("<", "==")), None)
    return low, high


def test_boto3_and_botocore_stay_within_what_the_installed_aiobotocore_allows() -> None:
    pins = declared()
    wanted = [Requirement(r) for r in requires("aiobotocore") or []]
    botocore = next(r.specifier for r in wanted if r.name == "botocore" and r.marker is None)
    allowed = bounds(botocore)
    assert allowed[0] is not None and allowed[1] is not None, botocore
    for name in ("boto3", "botocore"):
        low, high = bounds(pins[name])
        assert high is not None, f"{name} has no upper bound in pyproject.toml ({pins[name]})"
        # boto3 and botocore share version numbers, so the same bounds apply to both.
        assert low in botocore and (high == allowed[1] or high in botocore), (name, pins[name], botocore)


def test_aiobotocore_is_held_to_the_release_line_the_pins_were_taken_from() -> None:
    low, high = bounds(declared()["aiobotocore"])
    assert low is not None and high is not None, "aiobotocore needs both bounds, or the pins above drift"
