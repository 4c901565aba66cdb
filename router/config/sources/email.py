"""The email source's settings (`kind: email`).

Paths in them (tls files, store.directory) resolve against the config file's folder. Defaults are in the
Structs; docs/sources/email.md lists them for users.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from router.config.base import Port, SourceSettings, Strict
from router.core.kinds import KindTraits

Verdict = Literal["PASS", "FAIL", "GRAY", "PROCESSING_FAILED", "DISABLED"]
SES_MAX_MESSAGE_BYTES = 40 * 1024 * 1024


class VerdictsConfig(Strict):
    """What receipt.*Verdict say. Nothing is checked: these are the statuses functions will see."""

    spam: Verdict = "PASS"
    virus: Verdict = "PASS"
    spf: Verdict = "PASS"
    dkim: Verdict = "PASS"
    dmarc: Verdict = "PASS"
    dmarc_policy: Literal["none", "quarantine", "reject"] = "none"  # shown when dmarc is FAIL, as on SES


class TlsConfig(Strict):
    cert_file: str
    key_file: str
    required: bool = False  # refuse MAIL until the client did STARTTLS


class AuthConfig(Strict):
    users: dict[str, str]  # user -> password; use ${VAR} for the passwords
    required: bool = True
    allow_without_tls: bool = False  # AUTH over plain text: only for local testing


class S3StoreConfig(Strict):
    bucket: str
    endpoint: str | None = None
    prefix: str = ""
    region: str | None = None  # default: account.region
    access_key_id: str = ""  # default: the usual AWS credential chain (environment, profile)
    secret_access_key: str = ""


class StoreConfig(Strict):
    directory: str | None = None  # default: <state_dir>/sources/<name>/messages
    s3: S3StoreConfig | None = None


class Config(SourceSettings, tag="email"):
    traits: ClassVar[KindTraits] = KindTraits(shape="ses")

    host: str = "127.0.0.1"
    port: Port = 2525
    recipients: list[str] = []  # addresses, or "@domain" for every address of a domain
    hostname: str = "localhost"  # the name the server gives in its greeting and Received header
    max_message_bytes: Annotated[int, msgspec.Meta(ge=1024, le=SES_MAX_MESSAGE_BYTES)] = 10 * 1024 * 1024
    max_recipients: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    max_sessions: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 100
    session_timeout_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 300
    include_content: bool = False
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    verdicts: VerdictsConfig = msgspec.field(default_factory=VerdictsConfig)
    tls: TlsConfig | None = None
    auth: AuthConfig | None = None
    redeliver_interval_s: Annotated[float, msgspec.Meta(ge=0.01, le=3600)] = 5
    drain_s: Annotated[float, msgspec.Meta(ge=0, le=900)] = 10
