"""Schedule source (`kind: schedule`): rate() and cron() expressions, croniter underneath."""

from __future__ import annotations

from router.config import Strict


class Config(Strict, tag="schedule", tag_field="kind"):
    expression: str
    timezone: str = "UTC"
