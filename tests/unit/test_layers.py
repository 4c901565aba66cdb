"""The layering rules of router/, checked on the import graph (every import counts: at module level, inside
functions, and under TYPE_CHECKING).

* core imports nothing of the router but core;
* sources never import invoker or control (nor dispatch: they reach functions only through route ports);
* dispatch never imports sources or control;
* invoker never imports sources, dispatch or control;
* config never imports sources, dispatch or invoker (nor anything above it);
* shapes are pure builders: core only;
* edge (what listeners share to refuse bad input) imports core only; sources and control may use it;
* cluster (the shared backends, router/cluster/) never imports control;
* no import cycles between modules of router/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "router"

# part -> the parts it may import (besides itself). Parts are router's first-level packages and modules.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "config": {"core"},
    "shapes": {"core"},
    "metrics": {"core"},
    "logs": {"core"},
    "edge": {"core"},
    "invoker": {"core", "config", "metrics", "logs"},
    "dispatch": {"core", "config", "shapes", "invoker", "metrics", "logs"},
    "sources": {"core", "config", "shapes", "metrics", "logs", "edge"},
    "record": {"core", "config", "dispatch", "shapes"},
    "cluster": {"core", "config", "dispatch", "sources", "metrics", "logs"},
    "control": {
        "core",
        "config",
        "shapes",
        "invoker",
        "dispatch",
        "record",
        "sources",
        "metrics",
        "logs",
        "edge",
    },
}
# the top: may import every part
TOP = {
    "daemon",
    "mapped_sources",
    "backends",
    "validate",
    "cli",
    "tail",
    "commands",
    "testing",
    "__main__",
    "processes",
    "process_main",
}


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of router/ that `name` imports, resolved to the deepest known module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(name, path, known) for name, path in found.items()}


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_part_is_known() -> None:
    unknown = {part(m) for m in graph()} - set(ALLOWED) - TOP - {""}
    assert not unknown, f"parts of router/ with no layering rule: {sorted(unknown)}"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    broken = []
    for module, targets in graph().items():
        if part(module) != layer:
            continue
        for target in sorted(targets):
            other = part(target)
            if other and other != layer and other not in ALLOWED[layer]:
                broken.append(f"{module} -> {target}")
    assert not broken, f"{layer} may import only {sorted(ALLOWED[layer])}:\n" + "\n".join(broken)


def test_no_import_cycles() -> None:
    g = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            # A package's __init__ importing its own submodules is how a package exports; a submodule
            # importing its parent package back is what makes that a cycle.
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from router.dispatch.dispatcher import Dispatcher\n"
        "def f():\n    from router.control import app\n"
    )
    known = set(modules())
    found = imports("router.sources.fake", source, known)
    assert found == {"router.dispatch.dispatcher", "router.control.app"}
