"""Settings of the schedule source (`kind: schedule`)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from router.config.base import SourceSettings
from router.core.kinds import KindTraits


class Config(SourceSettings, tag="schedule"):
    traits: ClassVar[KindTraits] = KindTraits(shape="schedule")

    expression: str
    timezone: str = "UTC"
    missed: Literal["fire_once", "skip"] = "fire_once"
    missed_after_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 60
    overlap: bool = True
    input: Any = None  # constant JSON the function receives instead of the scheduled event
    description: str = ""
