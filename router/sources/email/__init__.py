"""The email source (`kind: email`): an SMTP server (aiosmtpd) turning received mail into SES receipt events.

Modules: `source` (the source), `smtp` (the server), `spool` (durable spool), `store` (raw messages),
`parse` (MIME and headers). Its settings are router/config/sources/email.py.

May import: router.core, router.config, router.shapes, router.metrics, router.edge and router.sources.stream;
never router.dispatch, router.invoker or router.control.
"""

from __future__ import annotations

from router.sources.email.source import check, create

__all__ = ["check", "create"]
