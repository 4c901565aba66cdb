"""The soak check in small: bench/soak.py with N = 300 per listener (docs/hardening.md records N = 10,000).

Every malformed request to each listener (control plane, gateway, SMTP, a runtime's own Runtime API) gets
its 4xx/5xx in its protocol's form, the daemon is healthy afterwards, and its log holds no traceback and no
ERROR line. The deadline here (10 s per answer) only catches a request left unanswered; the one-second
bound is the benchmark's, run by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_soak_every_listener_answers_every_malformed_request() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), "--n", "300", "--deadline-s", "10"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" ok\n") == 4, done.stdout
