"""Source kinds: one package per kind, and the registry that finds a kind's package by name.

Each kind is a package `router/sources/<kind>/` (s3, dynamodb, kafka, kinesis, sqs, sns, email, schedule,
http) that exports:

* `create(ctx: SourceContext) -> Source`: the factory the daemon calls (the contract is in
  router/core/ports.py);
* `check(settings, config, where, problems)`: the kind's own checks that `router validate` runs (optional).

Its settings (a config Struct tagged on `kind`, with the kind's traits) are in `router/config/sources/`.
The stream engine the stream kinds share is `router/sources/stream/`.

A kind imports its heavy client library (aiokafka, aiobotocore, aiosmtpd, watchfiles) inside `create` or
`run`, never at import time, so `router validate` and unit tests stay fast.

May import: router.core, router.config, router.shapes, router.metrics, router.edge. Never router.dispatch,
router.invoker or router.control: a source reaches functions only through its route ports
(tests/unit/test_layers.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from router.config.sources import KINDS

PACKAGES: dict[str, str] = {kind: f"router.sources.{kind}" for kind in KINDS}


def kind_module(kind: str) -> ModuleType:
    """The package of a source kind; KeyError with the list of known kinds for an unknown one."""
    if kind not in PACKAGES:
        raise KeyError(f"unknown source kind {kind!r} (known kinds: {', '.join(sorted(PACKAGES))})")
    return importlib.import_module(PACKAGES[kind])
