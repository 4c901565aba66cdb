"""Config loading cannot crash or hang on any file: issue 17's corpus, a mutation fuzz, generated configs.

Whatever the file, `load_config` (what `router validate` and `serve` run) returns a Config or raises
ConfigError whose every problem names where it is; nothing else escapes, and `router validate` exits 2.
The mutation fuzz takes the repository's own configs and breaks them 1,000 ways (tests/fuzz/mutations.py),
as the issue measured it (123 tracebacks and 35 hangs on main); the mutants sit where their seed sits, so
relative paths still resolve.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.config.loader import MAX_ALIASES, MAX_DEPTH, MAX_VALUES
from router.config.model import FunctionConfig, RouteConfig, ServerConfig
from router.config.sources import KINDS, SETTINGS
from router.core.errors import ConfigError
from router.validate import load_config, parse_config
from tests.fuzz.mutations import mutants

REPO = Path(__file__).resolve().parents[2]
SEEDS = [
    "config/router.yaml",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "config" / "examples").glob("*.yaml")),
    "compose/router.yaml",
]
FN = "functions:\n  f: {runtime: python3.11, handler: app.handler, code: fn}\n"


def laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# (name, file content, a piece of the problem reported)
CORPUS: list[tuple[str, bytes, str]] = [
    ("non-utf8", b"server: {port: 9000}\nstate_dir: caf\xe9\n", "not UTF-8 text (byte 0xe9 on line 2)"),
    ("deep-flow-20000", b"a: " + b"[" * 20000 + b"]" * 20000 + b"\n", f"nested more than {MAX_DEPTH} levels"),
    ("deep-block", "".join(" " * i + f"k{i}:\n" for i in range(300)).encode(), f"more than {MAX_DEPTH}"),
    ("kind-is-a-list", b"sources: {s: {kind: [1]}}\n", "sources.s.kind: unknown source kind [1]"),
    ("billion-laughs-9x9", laughs(9).encode(), f"more than {MAX_VALUES} values"),
    ("too-many-aliases", b"a: &a 1\nb: [" + b", ".join([b"*a"] * (MAX_ALIASES + 1)) + b"]\n", "aliases"),
    ("recursive-alias", b"functions: &f {f: *f}\n", "an alias refers to a node that contains it"),
    ("int-of-5000-digits", b"server: {port: " + b"9" * 5000 + b"}\n", "cannot load a value"),
    ("impossible-date", b"state_dir: 2001-13-45\n", "cannot load a value"),
    ("larger-than-4mb", b"#" * (4 * 1024 * 1024 + 1), "larger than 4 MB"),
    ("blank-token", b'server: {auth_token: "   "}\n', "server.auth_token: blank"),
    ("token-with-spaces", b'server: {auth_token: " s3cret "}\n', "server.auth_token: leading or trailing"),
    (
        "code-name-too-long",
        FN.replace("code: fn", "code: " + "x" * 5000).encode(),
        "functions.f.code: cannot",
    ),
    (
        "code-is-root",
        FN.replace("code: fn", "code: /").encode(),
        "functions.f.handler: module 'app' not found",
    ),
    ("code-escapes", FN.replace("app.handler", "..app.handler").encode(), "functions.f.handler"),
    ("corrupt-zip", FN.replace("code: fn", "code: broken.zip").encode(), "not a readable ZIP file"),
    (
        "tls-name-too-long",
        b"sources: {m: {kind: email, recipients: [a@b.c], tls: {cert_file: '"
        + b"c" * 5000
        + b"', key_file: k}}}\n",
        "sources.m: cannot check",
    ),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n")
    with zipfile.ZipFile(tmp_path / "good.zip", "w") as z:
        z.writestr("app.py", "x = 1\n")
    data = (tmp_path / "good.zip").read_bytes()
    # The end record still says ZIP (zipfile.is_zipfile), the central directory it points at does not.
    (tmp_path / "broken.zip").write_bytes(data.replace(b"PK\x01\x02", b"PK\x09\x09"))
    return tmp_path


@pytest.mark.parametrize(("name", "content", "problem"), CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_gives_a_problem_with_its_place(folder: Path, name: str, content: bytes, problem: str) -> None:
    path = folder / "router.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert all(": " in p for p in info.value.problems)


def test_a_folder_or_a_missing_file_is_a_problem_too(tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "missing.yaml"):
        with pytest.raises(ConfigError) as info:
            load_config(path, env={})
        assert info.value.problems[0].startswith(f"{path}: cannot read config")


@pytest.mark.parametrize("name", ["non-utf8", "deep-flow-20000", "billion-laughs-9x9", "kind-is-a-list"])
def test_router_validate_exits_2_with_the_problem(folder: Path, name: str) -> None:
    _, content, problem = next(c for c in CORPUS if c[0] == name)
    (folder / "router.yaml").write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "router", "validate", "-c", "router.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 2, done.stderr
    assert problem in done.stderr and "Traceback" not in done.stderr


def _check(path: Path) -> None:
    try:
        load_config(path, env={})
    except ConfigError as e:
        assert e.problems and all(isinstance(p, str) and ": " in p for p in e.problems), e.problems


def test_a_thousand_mutated_configs_give_problems_never_a_crash(tmp_path: Path) -> None:
    tree = tmp_path / "repo"
    for seed in SEEDS:
        (tree / seed).parent.mkdir(parents=True, exist_ok=True)
    (tree / "functions").symlink_to(REPO / "functions")
    (tree / "compose" / "functions").symlink_to(REPO / "compose" / "functions")
    seeds = {seed: (REPO / seed).read_bytes() for seed in SEEDS}
    crashed: list[str] = []
    for name, data in mutants(seeds, n=1000, seed=17):
        path = tree / (name.split(":")[1] + ".mutant.yaml")
        path.write_bytes(data)
        try:
            _check(path)
        except Exception as e:  # anything but ConfigError is what this test is for
            crashed.append(f"{name}: {type(e).__name__}: {str(e)[:200]}")
    assert not crashed, "\n".join(crashed[:20])


# Generated configs: the right section and field names, values of any type.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        [
            "python3.11",
            "nodejs20.x",
            "provided",
            "app.handler",
            "$default",
            "GET /x/{id}",
            "fn",
            "cron(0 3 * * ? *)",
            "rate(1 minute)",
            "${X:-1}",
            "/",
            "..",
            "0.0.0.0",
            "*",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


def _fields(struct: Any) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(struct)]


def _struct_like(struct: Any, extra: dict[str, Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.sampled_from([*_fields(struct), "unknown"])
    return st.dictionaries(keys, VALUES, max_size=6).map(lambda d: {**d, **(extra or {})})


SOURCES = st.sampled_from([*KINDS, "nope"]).flatmap(
    lambda kind: _struct_like(SETTINGS.get(kind, ServerConfig), {"kind": kind})
)
CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "server": _struct_like(ServerConfig) | VALUES,
        "functions": st.dictionaries(
            st.sampled_from(["f", "g", "bad name", ""]), _struct_like(FunctionConfig)
        ),
        "sources": st.dictionaries(st.sampled_from(["s", "t"]), SOURCES | VALUES, max_size=2),
        "routes": st.lists(_struct_like(RouteConfig), max_size=3) | VALUES,
        "account": VALUES,
        "limits": VALUES,
        "inspect": VALUES,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS)
def test_generated_configs_give_problems_never_a_crash(config: dict[str, Any]) -> None:
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    try:
        parse_config(text, base_dir=REPO / "config", env={})
    except ConfigError as e:
        assert e.problems and all(": " in p for p in e.problems), e.problems
