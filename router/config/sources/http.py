"""Settings of the HTTP gateway source (`kind: http`)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from router.config.base import HeaderCount, LineBytes, ListenerTimeoutS, Port, SourceSettings, Strict
from router.core.kinds import KindTraits


class CorsConfig(Strict):
    allow_origins: list[str] = msgspec.field(default_factory=lambda: ["*"])
    allow_methods: list[str] = msgspec.field(default_factory=lambda: ["*"])
    allow_headers: list[str] = msgspec.field(default_factory=lambda: ["*"])
    expose_headers: list[str] = []
    max_age_s: Annotated[int, msgspec.Meta(ge=0, le=86400)] = 0
    allow_credentials: bool = False


REQUEST_ID_HEADERS = {"2.0": "apigw-requestid", "1.0": "x-amzn-RequestId"}


class Config(SourceSettings, tag="http"):
    traits: ClassVar[KindTraits] = KindTraits(
        shape="http", waits_for_result=True, request_routed=True, filter_fields=(("body", False),)
    )

    host: str = "127.0.0.1"
    port: Port = 8080
    payload_version: Literal["1.0", "2.0"] = "2.0"
    stage: str = "$default"
    stage_variables: dict[str, str] = {}
    api_id: str = ""  # "" = a stable id made from the source's name
    cors: CorsConfig | None = None
    max_body_mb: Annotated[float, msgspec.Meta(gt=0, le=100)] = 10
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=900)] = 30
    drain_s: Annotated[float, msgspec.Meta(ge=0, le=900)] = 10
    request_id_header: str = ""  # "" = apigw-requestid (2.0) / x-amzn-RequestId (1.0)
    binary_media_types: list[str] = []
    # Malformed or slow requests (docs/hardening.md): 414 / 431 / 408, idle connections closed.
    max_url_bytes: LineBytes = 8190
    max_header_bytes: LineBytes = 8190
    max_headers: HeaderCount = 128
    idle_timeout_s: ListenerTimeoutS = 75
    body_timeout_s: ListenerTimeoutS = 60

    @property
    def request_id_header_name(self) -> str:
        return self.request_id_header or REQUEST_ID_HEADERS[self.payload_version]
