"""How an instance process is started: the command line and the environment, per runtime.

* `python3.X`: the router's own interpreter (`sys.executable -u`) runs runtimes/python_bootstrap.py.
* `nodejs*.x`: `node` from PATH runs runtimes/node_bootstrap.js.
* `provided`, `provided.al2`, `provided.al2023`: the code folder's executable `bootstrap`.

The environment is built from scratch (nothing of the router's own leaks in but PATH entries and the locale),
with every variable Lambda sets, then the function's own `environment` on top, less the reserved names
Lambda does not let a function set (`router.core.lambda_env.PROTECTED`); those the invoker sets last.
Instances are processes, not containers, so "/opt" is the function's merged layer folder (`spec.opt_dir`):
PATH, LD_LIBRARY_PATH, NODE_PATH and (with layers) PYTHONPATH name it where Lambda names /opt.

Python instances can also be forked from a zygote (router/invoker/zygote.py) instead of started fresh.
`zygote_environment()` is what the zygote itself starts with (what every Python instance has in common), and
`zygote_unfit(spec)` says why a function must get a fresh interpreter anyway: a variable that only takes
effect when a process starts (PYTHON*, LD_*, the locale's) in its environment, or a `lib` folder in its
code (LD_LIBRARY_PATH is read by the dynamic loader at start-up only).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
import time
import uuid
from pathlib import Path

import msgspec

from router.core import lambda_env, timefmt
from router.core.errors import RUNTIME_INVALID_ENTRYPOINT, RUNTIME_INVALID_RUNTIME
from router.invoker.types import FunctionSpec

RUNTIMES_DIR = Path(__file__).parent / "runtimes"
PYTHON = re.compile(r"^python3\.[0-9]+\Z")
NODE = re.compile(r"^nodejs[0-9]+\.x\Z")
PROVIDED = ("provided", "provided.al2", "provided.al2023")
LAMBDA_PATH = "/usr/local/bin:/usr/bin:/bin:/opt/bin"


class LaunchError(Exception):
    """The runtime cannot be started at all (no node, no bootstrap); `error_type` is Lambda's."""

    def __init__(self, message: str, error_type: str = RUNTIME_INVALID_ENTRYPOINT) -> None:
        super().__init__(message)
        self.error_type = error_type


class Launch(msgspec.Struct, frozen=True, kw_only=True):
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def log_stream_name(now: float | None = None, version: str = "$LATEST") -> str:
    """Lambda's stream name: 2024/05/01/[$LATEST]<32 hex> (`now` in epoch seconds)."""
    day = timefmt.day_path(time.time() if now is None else now)
    return f"{day}/[{version}]{uuid.uuid4().hex}"


def data_limit_bytes(memory_mb: int) -> int:
    """RLIMIT_DATA for Python instances: a soft guard well above memory_mb (the RSS sampler is the limit).

    Generous on purpose: thread stacks and arenas count as data, and a guard that breaks sound code is worse
    than none. It only stops one runaway allocation between samples, or while no call is running.
    """
    return max(4 * memory_mb, memory_mb + 1024) * 1024 * 1024


def site_dirs() -> list[str]:
    """The router's own site-packages folders (so functions can import what is installed, boto3 included)."""
    return [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]


PYTHON_BOOTSTRAP = RUNTIMES_DIR / "python_bootstrap.py"
# -S: skipping site (and the .pth files of the router's own environment) saves ~15 ms per cold start; the
# bootstrap puts the same site-packages folders on sys.path itself.
PYTHON_COMMAND = (sys.executable, "-S", "-u", str(PYTHON_BOOTSTRAP))
# Read by the interpreter, the dynamic loader or libc when a process starts, never again after.
STARTUP_PREFIXES = ("PYTHON", "LD_", "LC_", "MALLOC_")
STARTUP_NAMES = ("LANG", "LANGUAGE", "GLIBC_TUNABLES")


def python_arguments(spec: FunctionSpec) -> list[str]:
    """What the Python bootstrap takes after its own path: the RLIMIT_DATA and the site-packages folders."""
    return [str(data_limit_bytes(spec.memory_mb)), os.pathsep.join(site_dirs())]


def command(spec: FunctionSpec) -> list[str]:
    runtime = spec.runtime
    if PYTHON.match(runtime):
        return [*PYTHON_COMMAND, *python_arguments(spec)]
    if NODE.match(runtime):
        node = shutil.which("node")
        if node is None:
            raise LaunchError(f"runtime {runtime}: no 'node' executable on PATH")
        return [node, str(RUNTIMES_DIR / "node_bootstrap.js")]
    if runtime in PROVIDED:
        bootstrap = spec.code_dir / "bootstrap"
        if not bootstrap.is_file() or not os.access(bootstrap, os.X_OK):
            raise LaunchError(f"Couldn't find valid bootstrap(s): [{bootstrap}]")
        return [str(bootstrap)]
    raise LaunchError(f"unknown runtime {runtime!r}", RUNTIME_INVALID_RUNTIME)


def _path() -> str:
    return _path_for(os.environ.get("PATH"))


@functools.lru_cache(maxsize=4)
def _path_for(router_path: str | None) -> str:
    """An instance's PATH, made once per PATH of the router's own: the node lookup is a stat of each of
    its folders, on every launch otherwise."""
    # The interpreters this machine has may live outside Lambda's PATH (a virtualenv, /usr/local/...).
    extra = [str(Path(sys.executable).parent)]
    node = shutil.which("node", path=router_path)
    if node:
        extra.append(str(Path(node).parent))
    seen: list[str] = []
    for entry in [*extra, *LAMBDA_PATH.split(":")]:
        if entry not in seen:
            seen.append(entry)
    return ":".join(seen)


def environment(spec: FunctionSpec, *, runtime_api: str, init_type: str, log_stream: str) -> dict[str, str]:
    task_root = str(spec.code_dir)
    reserved = {
        "_HANDLER": spec.handler,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": str(RUNTIMES_DIR),
    }
    if spec.runtime not in PROVIDED:
        reserved["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{spec.runtime}"
    opt = str(spec.opt_dir) if spec.opt_dir is not None else "/opt"
    base = {
        "PATH": _path() if spec.opt_dir is None else _path().replace("/opt/bin", f"{opt}/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LD_LIBRARY_PATH": f"{task_root}/lib:{opt}/lib",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    if NODE.match(spec.runtime):
        major = spec.runtime.removeprefix("nodejs").removesuffix(".x")
        modules = [f"{opt}/nodejs/node{major}/node_modules", f"{opt}/nodejs/node_modules"]
        base["NODE_PATH"] = ":".join([*modules, f"{task_root}/node_modules"])
    if PYTHON.match(spec.runtime) and spec.opt_dir is not None:
        # Lambda's order: the task root, then the layers' site-packages, then /opt/python.
        version = spec.runtime.removeprefix("python")
        base["PYTHONPATH"] = f"{opt}/python/lib/python{version}/site-packages:{opt}/python"
    # Lambda refuses these in a function's configuration; here the function's values are dropped instead.
    own = {k: v for k, v in spec.environment.items() if k not in lambda_env.PROTECTED}
    return {**base, **own, **reserved}


def zygote_environment() -> dict[str, str]:
    """The environment a zygote starts with: what every Python instance's environment has in common."""
    return {
        "PATH": _path(),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LD_LIBRARY_PATH": "/opt/lib",  # an instance's is <code>/lib:/opt/lib, and zygote_unfit checks lib
        "HOME": os.environ.get("HOME", "/tmp"),
    }


def zygote_unfit(spec: FunctionSpec) -> str | None:
    """Why this function's instances cannot be forked from the zygote (None: they can)."""
    if not PYTHON.match(spec.runtime):
        return f"runtime {spec.runtime} is not Python"
    common = zygote_environment()
    for name, value in spec.environment.items():
        startup = name.startswith(STARTUP_PREFIXES) or name in STARTUP_NAMES
        if startup and common.get(name) != value:
            return f"its environment sets {name}, which only takes effect when a process starts"
    if (spec.code_dir / "lib").is_dir():
        return "its code has a lib folder (LD_LIBRARY_PATH takes effect when a process starts)"
    if spec.opt_dir is not None and (spec.opt_dir / "lib").is_dir():
        return "a layer has a lib folder (LD_LIBRARY_PATH takes effect when a process starts)"
    return None


def build(spec: FunctionSpec, *, runtime_api: str, init_type: str, log_stream: str) -> Launch:
    return Launch(
        argv=command(spec),
        env=environment(spec, runtime_api=runtime_api, init_type=init_type, log_stream=log_stream),
        cwd=spec.code_dir,
    )
