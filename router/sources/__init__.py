"""Source kinds, by name.

Each kind is one module here (`router/sources/<kind>.py`) that defines:

* `Config`: a frozen msgspec Struct tagged on `kind` (`class Config(Strict, tag="kafka", tag_field="kind")`),
  optionally with `check(self, config, where, problems)` for cross-checks `router validate` runs;
* `create(ctx: SourceContext) -> Source`: the factory the daemon calls.

A module imports its heavy client library (aiokafka, aiobotocore, aiosmtpd, watchfiles) inside `create` or
`run`, never at import time, so `router validate` and unit tests stay fast. The contract every source keeps is
in `router/sources/base.py`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

KINDS: dict[str, str] = {
    "s3": "router.sources.s3",
    "dynamodb": "router.sources.dynamodb",
    "kafka": "router.sources.kafka",
    "kinesis": "router.sources.kinesis",
    "email": "router.sources.email",
    "schedule": "router.sources.schedule",
    "http": "router.sources.http",
}


def kind_module(kind: Any) -> ModuleType:
    """The module of a source kind; KeyError with the list of known kinds for an unknown one."""
    if kind not in KINDS:
        known = ", ".join(sorted(KINDS))
        raise KeyError(f"unknown source kind {kind!r} (known kinds: {known})")
    return importlib.import_module(KINDS[kind])


def config_type(kind: Any) -> type:
    return kind_module(kind).Config  # type: ignore[no-any-return,unused-ignore]


def source_kind(settings: Any) -> str:
    """The kind of a decoded source Config (its msgspec tag)."""
    return str(type(settings).__struct_config__.tag)
