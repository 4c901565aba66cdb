"""Fixture: a fixed amount of CPU work (event["n"] rounds of hashing, default 200000); returns the wall and
CPU time it took, as the process saw them."""

import hashlib
import time


def handler(event, context):
    rounds = event.get("n", 200000) if isinstance(event, dict) else 200000
    wall, cpu = time.perf_counter(), time.process_time()
    digest = b"x"
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
