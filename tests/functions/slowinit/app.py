"""Fixture: sleeps SLOWINIT_SECONDS (default 0.3) at import, then answers {"initialised_for": seconds}."""

import os
import time

SECONDS = float(os.environ.get("SLOWINIT_SECONDS", "0.3"))
print(f"init sleeping {SECONDS}s", flush=True)
time.sleep(SECONDS)


def handler(event, context):
    return {"initialised_for": SECONDS}
