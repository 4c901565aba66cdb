"""Fixture: describes the process it runs in (ids, environment, descriptors, limits, signals, interpreter
state), so a test can tell an instance forked from the zygote from a freshly started one, field by field."""

import os
import resource
import signal
import sys
import time


def _target(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def handler(event, context):
    print("probe line", flush=True)
    fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "argv": sys.argv,
        "path": sys.path,
        "flags": [sys.flags.no_site, sys.flags.optimize, sys.flags.hash_randomization],
        "unbuffered": sys.stdout.write_through,
        "data_limit": list(resource.getrlimit(resource.RLIMIT_DATA)),
        "fds": {str(fd): _target(fd) for fd in fds},
        "signals": {
            name: str(signal.getsignal(getattr(signal, name)))
            for name in ("SIGINT", "SIGTERM", "SIGPIPE", "SIGCHLD", "SIGHUP")
        },
        "tzname": list(time.tzname),
        "modules_main": sys.modules["__main__"].__file__,
    }
