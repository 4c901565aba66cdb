"""Fixture: spawns a child that ignores SIGTERM and sleeps forever, prints its pid, then sleeps
event["seconds"] (default 0) and returns {"child": pid}."""

import subprocess
import sys
import time

CHILD = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(3600)"
)


def handler(event, context):
    child = subprocess.Popen([sys.executable, "-S", "-c", CHILD], stdout=subprocess.PIPE)
    child.stdout.readline()  # the child ignores SIGTERM from here on
    print(f"child pid {child.pid}", flush=True)
    time.sleep(event.get("seconds", 0) if isinstance(event, dict) else 0)
    return {"child": child.pid}
