"""Email-received source (`kind: email`): an SMTP server (aiosmtpd) that turns mail into SES events."""

from __future__ import annotations

from router.config import Port, Strict


class Config(Strict, tag="email", tag_field="kind"):
    host: str = "127.0.0.1"
    port: Port = 2525
    recipients: list[str] = []
