"""Fixture: leaves work running for the router-death tests. event["mode"]:

* "sleep": sleeps event["seconds"] (default 3600);
* "loop": spins on the CPU forever;
* "double": starts a daemon by double fork (its own session), which sleeps forever, then sleeps;
* "child": starts a child that ignores SIGTERM and sleeps forever, then sleeps.

Before it settles in, it prints "pids: <its pid> <every process it started>" (one line)."""

import os
import signal
import subprocess
import sys
import time

CHILD = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(3600)"
)


def _double_fork():
    read, write = os.pipe()
    if os.fork() == 0:
        os.setsid()
        grandchild = os.fork()
        if grandchild == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(3600)
            os._exit(0)
        os.write(write, str(grandchild).encode())
        os._exit(0)
    os.close(write)
    pid = int(os.read(read, 32))
    os.close(read)
    return pid


def handler(event, context):
    mode = event.get("mode", "sleep")
    started = []
    if mode == "double":
        started.append(_double_fork())
    elif mode == "child":
        child = subprocess.Popen([sys.executable, "-S", "-c", CHILD], stdout=subprocess.PIPE)
        child.stdout.readline()
        started.append(child.pid)
    print("pids:", os.getpid(), *started, flush=True)
    if mode == "loop":
        while True:
            pass
    time.sleep(event.get("seconds", 3600))
    return {"pids": started}
