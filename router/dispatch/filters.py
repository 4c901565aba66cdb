"""Event filtering in EventBridge pattern syntax (placeholder until the filter engine lands)."""

from __future__ import annotations

from typing import Any


def pattern_problems(patterns: Any, where: str) -> list[str]:
    return []
