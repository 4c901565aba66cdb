"""Containment's pure parts: which cgroup hierarchy serves which feature, CPU in proportion to memory, the
mount plan of an isolated instance, function uids, and the config keys (router/invoker/containment.py,
cgroups.py, isolation.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.core.errors import ConfigError
from router.invoker import cgroups, isolation
from router.invoker.containment import lambda_vcpus, vcpus
from router.invoker.types import FunctionSpec
from router.validate import parse_config

ECHO = Path(__file__).resolve().parents[1] / "functions" / "echo"
HYBRID_MOUNTS = """\
31 23 0:28 / {root} rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {root}/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / {root}/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / {root}/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / {root}/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / {root}/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / {root}/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_OWN = "8:pids:/\n6:freezer:/\n4:memory:/svc/a\n2:cpuacct:/\n1:cpu:/\n0::/\n"


def fake_hierarchy(root: Path, v2_controllers: str) -> tuple[str, str]:
    for sub in ("cpu", "cpuacct", "memory/svc/a", "freezer", "pids", "unified"):
        (root / sub).mkdir(parents=True)
    (root / "unified" / "cgroup.controllers").write_text(v2_controllers)
    (root / "unified" / "cgroup.subtree_control").write_text("")
    return HYBRID_MOUNTS.format(root=root), HYBRID_OWN


def test_a_hybrid_machine_takes_controllers_from_v1_and_freezing_from_v2(tmp_path: Path) -> None:
    mountinfo, own = fake_hierarchy(tmp_path, "hugetlb")
    found, line = cgroups.detect(tmp_path / "state", mountinfo=mountinfo, proc_cgroup=own)
    assert found is not None
    versions = {name: h.version for name, h in found.features.items()}
    assert versions == {"memory": 1, "cpu": 1, "cpu time": 2, "pids": 1, "freeze": 2, "kill": 2}
    name = cgroups.router_group_name(tmp_path / "state")
    assert found.memory is not None and found.memory.router == tmp_path / "memory/svc/a" / name
    assert found.missing() == [] and line.startswith("cgroups: memory v1, cpu v1")


def test_no_cgroup_mounted_means_none_with_the_reason(tmp_path: Path) -> None:
    found, line = cgroups.detect(tmp_path, mountinfo="", proc_cgroup="0::/\n")
    assert found is None and line == "cgroups: none writable (no cgroup hierarchy is mounted)"


def test_a_group_outside_the_mount_is_not_used() -> None:
    assert cgroups._inside(Path("/sys/fs/cgroup"), "/docker/x", "/other") is None
    assert cgroups._inside(Path("/sys/fs/cgroup"), "/docker/x", "/docker/x/y") == Path("/sys/fs/cgroup/y")


def test_flat_keyed_counters() -> None:
    oom_control = b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
    assert cgroups.flat_keyed(oom_control, b"oom_kill") == 3
    assert cgroups.flat_keyed(b"max 0\n", b"max") == 0 and cgroups.flat_keyed(b"", b"max") == 0
    # v2's memory.events: a key is matched at the start of a line only, and the last line may lack a newline
    events = b"low 0\nhigh 0\nmax 4\noom 2\ngroup_oom_kill 9\noom_kill 1\noom_group_kill 5"
    assert cgroups.flat_keyed(events, b"oom_kill") == 1 and cgroups.flat_keyed(events, b"max") == 4
    assert cgroups.flat_keyed(events, b"oom_group_kill") == 5 and cgroups.flat_keyed(events, b"kill") == 0


def test_cpu_follows_lambdas_two_published_points() -> None:
    assert lambda_vcpus(1769) == 1.0 and lambda_vcpus(10240) == 6.0
    assert lambda_vcpus(128) == pytest.approx(0.0724, abs=1e-4)
    assert 1 < lambda_vcpus(3008) < 2
    assert vcpus(None, "lambda", 1769) == 1.0
    assert vcpus(None, "unlimited", 128) is None and vcpus(2.5, "lambda", 128) == 2.5
    assert vcpus("unlimited", "lambda", 128) is None and vcpus("lambda", "unlimited", 3538) > 2


def test_the_mount_plan_hides_then_binds_back_what_is_needed(tmp_path: Path) -> None:
    closed = tmp_path / "home"
    runtime = closed / "python"
    runtime.mkdir(parents=True)
    closed.chmod(0o700)
    state, code, other = tmp_path / "cfg/state", tmp_path / "cfg/fn", tmp_path / "cfg/other"
    plan = isolation.mount_plan([code, runtime], [state, tmp_path / "cfg", other])
    kinds = [(op[0], op[1]) for op in plan[:-1]]
    assert plan[-1] == ["proc"]
    first_closed = isolation.closed_ancestor(runtime)  # `home`, or one of the temp folder's own parents
    assert first_closed is not None and _within(closed, first_closed)
    assert ("hide", str(first_closed)) in kinds and ("bind", str(runtime)) in kinds  # past a closed folder
    assert ("bind", str(code)) in kinds and ("hide", str(other)) in kinds and ("hide", str(state)) in kinds
    position = {path: i for i, (_, path) in enumerate(kinds)}
    assert position[str(tmp_path / "cfg")] < min(position[str(code)], position[str(state)])  # shallow first
    assert position["/tmp"] < position[str(tmp_path / "cfg")]


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def test_a_needed_path_is_never_hidden(tmp_path: Path) -> None:
    plan = isolation.mount_plan([tmp_path / "code"], [tmp_path / "code"])
    assert ["hide", str(tmp_path / "code")] not in plan


def test_only_what_lies_inside_a_hidden_folder_is_bound_back() -> None:
    hidden, inside, beside = Path("/srv/x/a"), Path("/srv/x/a/code"), Path("/srv/x/ab")  # ab: a prefix only
    plan = isolation.mount_plan([inside, beside], [hidden])
    assert ["hide", "/srv/x/a"] in plan and ["bind", "/srv/x/a/code"] in plan
    assert not any(op[1:] == ["/srv/x/ab"] for op in plan)
    assert ["bind", "/srv/x/a/code"] in isolation.mount_plan([inside], [Path("/")])  # under the root too


def _spec(name: str, code: Path) -> FunctionSpec:
    return FunctionSpec(name=name, runtime="python3.11", handler="app.handler", code_dir=code)


def _hidden(plan: dict[str, Any]) -> set[str]:
    return {op[1] for op in plan["mounts"] if op[0] == "hide"}


def test_plans_are_made_with_the_functions_and_follow_their_changes(tmp_path: Path) -> None:
    codes = {name: tmp_path / "cfg" / name for name in ("a", "b", "c")}
    for code in codes.values():
        code.mkdir(parents=True)
    policy = isolation.Isolation(state_dir=tmp_path / "cfg" / "state")
    policy.functions([_spec("a", codes["a"]), _spec("b", codes["b"])])
    first = policy.plan(_spec("a", codes["a"]))
    assert str(codes["b"]) in _hidden(first) and str(codes["a"]) not in _hidden(first)
    first["mounts"].clear()  # what a caller does with its plan does not reach the next one
    assert policy.plan(_spec("a", codes["a"]))["mounts"]
    # A function planned for the first time (not yet announced) is hidden from the others' next plans.
    assert str(codes["a"]) in _hidden(policy.plan(_spec("c", codes["c"])))
    assert str(codes["c"]) in _hidden(policy.plan(_spec("a", codes["a"])))
    # New code for a function: its own plan binds the new folder, the others hide it.
    moved = tmp_path / "cfg" / "b2"
    moved.mkdir()
    policy.functions([_spec("a", codes["a"]), _spec("b", moved)])
    assert str(moved) in _hidden(policy.plan(_spec("a", codes["a"])))
    assert ["bind", str(moved)] in policy.plan(_spec("b", moved))["mounts"]


def test_function_uids_are_stable_and_distinct(tmp_path: Path) -> None:
    policy = isolation.Isolation(state_dir=tmp_path)
    assert policy.uid("a") == policy.uid("a") == isolation.function_uid(tmp_path, "a")
    assert policy.uid("a") != policy.uid("b")
    assert isolation.UID_BASE <= policy.uid("b") < isolation.UID_BASE + isolation.UID_SPAN


def test_the_new_invoker_and_function_keys() -> None:
    config = parse_config(
        "invoker: {cgroups: required, isolation: 'off', cpu: 2, freeze: false}\n"
        f"functions: {{f: {{runtime: python3.11, handler: app.handler, code: {ECHO}, cpu: unlimited}}}}\n"
    )
    assert config.invoker.cgroups == "required" and config.invoker.cpu == 2.0 and not config.invoker.freeze
    assert config.functions["f"].cpu == "unlimited" and config.invoker.isolation_mode == "off"
    unquoted = parse_config("invoker: {cgroups: off, isolation: on}").invoker  # YAML: false and true
    assert unquoted.cgroups_mode == "off" and unquoted.isolation_mode == "auto"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "invoker: {cgroups: maybe}",
            "invoker.cgroups: expected one of 'auto', 'off', 'required' or true or false, got 'maybe'",
        ),
        (
            "invoker: {cpu: fast}",
            "invoker.cpu: expected one of 'lambda', 'unlimited' or a number between 0.05 and 64, got 'fast'",
        ),
        (
            "functions: {f: {runtime: python3.11, handler: app.handler, code: ., cpu: 0.01}}",
            "functions.f.cpu: expected one of 'lambda', 'unlimited' or a number between 0.05 and 64, "
            "got 0.01",
        ),
    ],
)
def test_bad_values_are_named(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert problem in e.value.problems


def test_no_network_needs_isolation() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(
            "invoker: {isolation: 'off'}\n"
            f"functions: {{f: {{runtime: python3.11, handler: app.handler, code: {ECHO}, network: false}}}}\n"
        )
    assert e.value.problems == ["functions.f.network: false needs isolation, and invoker.isolation is off"]
