"""Fixture: starts processes (each one `sleep`s) until the system refuses one; then fails with how many it
got and why. Returns only if nothing refused it within event["max"] (default 5000) processes."""

import os
import subprocess


def handler(event, context):
    limit = event.get("max", 5000) if isinstance(event, dict) else 5000
    started = []
    try:
        while len(started) < limit:
            started.append(subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL))
    except OSError as e:
        print(f"pids {os.getpid()} {' '.join(str(p.pid) for p in started)}", flush=True)
        raise RuntimeError(f"refused after {len(started)} processes: {e}") from None
    return {"started": len(started)}
