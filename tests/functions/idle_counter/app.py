"""Fixture: a background thread, started at init, counts milliseconds (one tick per ~1 ms of sleep) for as
long as the instance runs; the handler returns the count."""

import threading
import time

ticks = 0


def _count():
    global ticks
    while True:
        time.sleep(0.001)
        ticks += 1


threading.Thread(target=_count, daemon=True).start()


def handler(event, context):
    return {"ticks": ticks}
