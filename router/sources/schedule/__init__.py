"""The schedule source (`kind: schedule`): rate(), AWS cron() and 5-field cron expressions, once per tick.

Modules: `source` (the ticking loop and its state), `expr` (expressions and time zones). Its settings are
router/config/sources/schedule.py.

May import: router.core, router.config, router.shapes, router.metrics and router.sources.stream; never
router.dispatch, router.invoker or router.control.
"""

from __future__ import annotations

from router.sources.schedule.source import check, create

__all__ = ["check", "create"]
