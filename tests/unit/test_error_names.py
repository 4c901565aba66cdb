"""Error type names are spelled once, in router/core/errors.py: no module of router repeats one as a literal.

The runtimes under router/invoker/runtimes/ are exempt: they run inside function processes, where router is
not importable, and spell Lambda's names themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

from router.core import errors

ROUTER = Path(errors.__file__).resolve().parents[1]
EXEMPT = {ROUTER / "core" / "errors.py"}
EXEMPT_DIRS = {ROUTER / "invoker" / "runtimes"}

NAMES = {
    value
    for name, value in vars(errors).items()
    if name.isupper() and isinstance(value, str) and not name.startswith("_")
}


def literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES
    ]


def test_error_names_are_constants_of_core_errors() -> None:
    assert "Sandbox.Timeout" in NAMES and "ResourceNotFoundException" in NAMES and "Unhandled" in NAMES
    found = [
        f"{path.relative_to(ROUTER.parent)}:{line}: {value!r}"
        for path in sorted(ROUTER.rglob("*.py"))
        if path not in EXEMPT and not any(d in path.parents for d in EXEMPT_DIRS)
        for line, value in literals(path)
    ]
    assert found == [], "use the router.core.errors constant instead of:\n" + "\n".join(found)


def test_the_check_finds_a_literal(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        '"""Sandbox.Timeout in prose is fine."""\n\nkind = "Sandbox.Timeout"\nother = "Sandbox"\n'
    )
    assert literals(source) == [(3, "Sandbox.Timeout")]
