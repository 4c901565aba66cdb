"""HTTP gateway source (`kind: http`): API Gateway-style routes to functions."""

from __future__ import annotations

from typing import Literal

from router.config import Port, Strict


class Config(Strict, tag="http", tag_field="kind"):
    host: str = "127.0.0.1"
    port: Port = 8080
    payload_version: Literal["1.0", "2.0"] = "2.0"
