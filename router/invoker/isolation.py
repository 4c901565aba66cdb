"""Function isolation: each function's instances under a uid of their own, seeing only what they need.

Available when the router runs as root and may create mount namespaces (`probe()`); then, by default, each
instance (carried out by the child itself, runtimes/confine.py):

* runs as the function's own uid and gid, no supplementary groups, no_new_privs, no capabilities. One uid
  per function, not per instance: the instances of a function share its code, configuration and secrets
  anyway, a stable uid lets files it leaves in its code folder or /tmp stay its own across instances, and
  every instance is still unable to read another's memory or environment (changing uid makes a process
  non-dumpable: /proc/PID/environ and ptrace need privileges then, even for the same uid). The uid is
  `UID_BASE` + a 24-bit hash of (state_dir, function name), probing on when two functions of one router
  collide; it has no /etc/passwd entry;
* gets a mount namespace of its own in which: the router's state_dir (queue, tokens, uploaded and unpacked
  ZIPs) and its config folder are covered by empty read-only tmpfs, and so is every other function's code;
  its own code folder and what its runtime needs (the interpreter's prefix, site-packages, the router's
  runtimes folder, node's prefix) are bound back read-only where they were, as is any folder on their way
  that others cannot traverse (e.g. a Python installed under /root, whose other contents stay hidden);
  /tmp and /dev/shm are private tmpfs (`TMP_MB`, `SHM_MB`; their pages count against the instance's
  memory); /proc shows only processes of its own uid (hidepid=2);
* with `network: false`, a network namespace of its own with only a loopback, where its Runtime API listens
  (router/invoker/netns.py).

`Isolation.plan(spec)` is the part of the child's plan that does this: {"uid", "gid", "mounts": [...]}.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.core import writes
from router.invoker import launch, runtime_api
from router.invoker.types import FunctionSpec

UID_BASE = 2_000_000_000
UID_SPAN = 1 << 24
TMP_MB = 512  # Lambda's default ephemeral storage
SHM_MB = 64
PROBE = "import ctypes, sys; sys.exit(ctypes.CDLL(None, use_errno=True).unshare(0x00020000) != 0)"


def probe() -> str | None:
    """Why isolation is not available here (None: it is)."""
    if os.geteuid() != 0:
        return "the router does not run as root"
    try:
        done = subprocess.run([sys.executable, "-S", "-c", PROBE], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot probe mount namespaces: {e}"
    return None if done.returncode == 0 else "mount namespaces cannot be created here (unshare failed)"


def function_uid(state_dir: Path, name: str) -> int:
    digest = hashlib.sha256(f"{Path(state_dir).resolve()}\0{name}".encode()).digest()
    return UID_BASE + int.from_bytes(digest[:8], "big") % UID_SPAN


def runtime_paths(spec: FunctionSpec) -> list[Path]:
    """What the function's runtime reads besides its code."""
    if launch.PYTHON.match(spec.runtime):
        found = {sys.base_prefix, sys.prefix, sys.exec_prefix, *launch.site_dirs()}
        found.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
        return [Path(p) for p in sorted(found)] + [launch.RUNTIMES_DIR]
    if launch.NODE.match(spec.runtime):
        node = shutil.which("node")
        prefix = [Path(os.path.realpath(node)).parent.parent] if node else []
        return [*prefix, launch.RUNTIMES_DIR]
    return []


def closed_ancestor(path: Path) -> Path | None:
    """The first folder on the way to `path` that others cannot traverse (None: all can)."""
    current = Path("/")
    for part in path.parts[1:]:
        current = current / part
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return None
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return current
    return None


def _depth(path: str) -> int:
    """len(Path(path).parts) of an absolute path."""
    return 1 if path == "/" else path.count("/") + 1


def mount_plan(
    needed: list[Path],
    hidden: list[Path],
    writable: list[Path] | None = None,
    closed_of: Callable[[Path], Path | None] = closed_ancestor,
) -> list[list[Any]]:
    """The child's mount operations: hide each hidden folder, make /tmp and /dev/shm private, bind back
    each needed path that lies under something hidden (read-only; `writable` ones read-write); shallow
    paths first, so deeper ones win. `closed_of` is closed_ancestor, or a cache of it."""
    writable = writable or []
    needed = [*needed, *writable]
    wanted = {str(n) for n in needed}
    covered = [str(h) for h in hidden if str(h) not in wanted]
    known = set(covered)
    for path in needed:
        closed = closed_of(path)
        if closed is not None and str(closed) not in known:
            covered.append(str(closed))
            known.add(str(closed))
    # A needed path strictly under a cover is bound back: one startswith over all of them.
    inside = tuple(c.rstrip("/") + "/" for c in [*covered, "/tmp", "/dev/shm"])
    read_write = {str(w) for w in writable}
    operations: list[tuple[int, int, list[Any]]] = [(_depth(h), 0, ["hide", h]) for h in covered]
    operations.append((2, 0, ["tmp", "/tmp", TMP_MB]))
    operations.append((3, 0, ["tmp", "/dev/shm", SHM_MB]))
    for path in needed:
        text = str(path)
        if text.startswith(inside):
            operations.append((_depth(text), 1, ["bind_rw" if text in read_write else "bind", text]))
    ordered = [op for _, _, op in sorted(operations, key=lambda o: (o[0], o[1]))]
    return [*ordered, ["proc"]]


@dataclass
class Isolation:
    """The router's isolation policy: identities and what each function's instances may see."""

    state_dir: Path
    config_dir: Path | None = None
    _code: dict[str, Path] = field(default_factory=dict)  # every function's code folder
    _uids: dict[str, int] = field(default_factory=dict)
    # Plans made, by what of the spec they depend on; forgotten when the functions change. A plan resolves
    # a dozen paths and stats their folders (1.5-3 ms), which every cold start would otherwise pay.
    _plans: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    # What every plan shares, resolved once per change of the functions: the folders hidden from all (the
    # state and config folders), by runtime what the runtime needs, and closed_ancestor by path.
    _hidden: list[Path] | None = None
    _needs: dict[str, list[Path]] = field(default_factory=dict)
    _closed: dict[Path, Path | None] = field(default_factory=dict)

    def functions(self, specs: list[FunctionSpec]) -> None:
        """The router's functions changed: each one's code is hidden from the others. Their plans are made
        now, so that no first cold start waits for one."""
        self._plans.clear()
        self._hidden = None
        self._needs.clear()
        self._closed.clear()
        for spec in specs:
            self._code[spec.name] = Path(os.path.realpath(spec.code_dir))
        for spec in specs:
            try:
                self._made(spec)
            except (OSError, ValueError):
                pass  # made (and failing) again at the cold start, which reports it

    def uid(self, name: str) -> int:
        uid = self._uids.get(name)
        if uid is None:
            taken = set(self._uids.values())
            uid = function_uid(self.state_dir, name)
            while uid in taken:
                uid = UID_BASE + (uid - UID_BASE + 1) % UID_SPAN
            self._uids[name] = uid
        return uid

    def plan(self, spec: FunctionSpec) -> dict[str, Any]:
        made = self._made(spec)
        return {**made, "mounts": [list(op) for op in made["mounts"]]}  # the caller's own copy

    def _made(self, spec: FunctionSpec) -> dict[str, Any]:
        journal = spec.environment.get(writes.JOURNAL_ENV)
        key = (spec.name, spec.runtime, spec.code_dir, spec.opt_dir, journal)
        made = self._plans.get(key)
        if made is None:
            made = self._plans[key] = self._plan(spec, journal)
        return made

    def _plan(self, spec: FunctionSpec, journal: str | None) -> dict[str, Any]:
        own = Path(os.path.realpath(spec.code_dir))
        if spec.name not in self._code:
            self._code[spec.name] = own
            self._plans.clear()  # the others' plans do not hide this code yet
        hidden = [*self._hidden_from_all()]
        hidden += [code for name, code in self._code.items() if name != spec.name]
        needed = [own, *self._runtime_needs(spec)]
        if spec.opt_dir is not None:  # the function's layers: its /opt
            needed.append(Path(os.path.realpath(spec.opt_dir)))
        # The write journal of loop protection (router/core/writes.py): instances append to it.
        writable = [Path(os.path.realpath(journal))] if journal else []
        uid = self.uid(spec.name)
        return {"uid": uid, "gid": uid, "mounts": mount_plan(needed, hidden, writable, self._closed_ancestor)}

    def _closed_ancestor(self, path: Path) -> Path | None:
        if path not in self._closed:
            self._closed[path] = closed_ancestor(path)
        return self._closed[path]

    def _hidden_from_all(self) -> list[Path]:
        if self._hidden is None:
            hidden = [Path(os.path.realpath(self.state_dir))]
            if self.config_dir is not None and len(Path(os.path.realpath(self.config_dir)).parts) > 2:
                hidden.append(Path(os.path.realpath(self.config_dir)))  # never "/" or a top-level folder
            self._hidden = hidden
        return self._hidden

    def _runtime_needs(self, spec: FunctionSpec) -> list[Path]:
        needs = self._needs.get(spec.runtime)
        if needs is None:
            needs = [Path(os.path.realpath(p)) for p in runtime_paths(spec)]
            if launch.PYTHON.match(spec.runtime) or launch.NODE.match(spec.runtime):
                # Our bootstraps reach the Runtime API on a Unix socket there (bound back if it is covered).
                needs.append(Path(os.path.realpath(runtime_api.socket_dir())))
            self._needs[spec.runtime] = needs
        return needs
