"""The building blocks of every config Struct: the strict base, the shared field types, the source base.

May import: router.core only.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from router.core.kinds import KindTraits

MemoryMB = Annotated[int, msgspec.Meta(ge=128, le=10240)]
TimeoutS = Annotated[int, msgspec.Meta(ge=1, le=900)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
# Limits of an HTTP listener (router.edge.http.HttpLimits): request line / header line sizes, header count,
# and the idle and body timeouts.
LineBytes = Annotated[int, msgspec.Meta(ge=1024, le=1048576)]
HeaderCount = Annotated[int, msgspec.Meta(ge=8, le=10000)]
ListenerTimeoutS = Annotated[float, msgspec.Meta(gt=0, le=3600)]


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config Struct: immutable, keyword-only, unknown keys rejected."""


class SourceSettings(Strict, tag_field="kind"):
    """Base of each source kind's settings: a member of the tagged union on `kind` (router.config.sources).

    Each kind declares its `traits` (router/core/kinds.py) next to its fields.
    """

    traits: ClassVar[KindTraits]

    def kind_name(self) -> str:
        return str(type(self).__struct_config__.tag)
