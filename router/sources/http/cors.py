"""CORS for the HTTP gateway, as an API Gateway HTTP API does it when CORS is configured.

With a `cors:` block on the source, the gateway answers preflight requests itself (OPTIONS with Origin and
Access-Control-Request-Method: 204, no function call) and puts the CORS headers on every other reply to an
allowed origin, replacing any Access-Control-* headers the function returned. Without the block, OPTIONS
is routed like any other method and replies are left alone.

Origins are matched exactly or by glob pattern (`https://*.example.com`); `*` allows every origin. A `*` in
allow_methods or allow_headers echoes what the preflight asked for.
"""

from __future__ import annotations

import fnmatch

from router.config.sources.http import CorsConfig
from router.sources.http.response import Reply


def origin_allowed(cors: CorsConfig, origin: str) -> bool:
    return any(p == "*" or p == origin or fnmatch.fnmatchcase(origin, p) for p in cors.allow_origins)


def is_preflight(method: str, origin: str | None, request_method: str | None) -> bool:
    return method == "OPTIONS" and origin is not None and request_method is not None


def _origin_headers(cors: CorsConfig, origin: str) -> list[tuple[str, str]]:
    if "*" in cors.allow_origins and not cors.allow_credentials:
        headers = [("Access-Control-Allow-Origin", "*")]
    else:
        headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    return headers


def preflight_reply(cors: CorsConfig, origin: str, request_method: str, request_headers: str | None) -> Reply:
    if not origin_allowed(cors, origin):
        return Reply(204)
    headers = _origin_headers(cors, origin)
    methods = request_method if "*" in cors.allow_methods else ",".join(m.upper() for m in cors.allow_methods)
    headers.append(("Access-Control-Allow-Methods", methods))
    if "*" in cors.allow_headers:
        if request_headers:
            headers.append(("Access-Control-Allow-Headers", request_headers))
    elif cors.allow_headers:
        headers.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
    if cors.max_age_s:
        headers.append(("Access-Control-Max-Age", str(cors.max_age_s)))
    return Reply(204, headers)


def apply_cors(cors: CorsConfig, reply: Reply, origin: str | None) -> None:
    """Replace the reply's CORS headers with the gateway's (for an allowed origin) or none."""
    reply.headers = [(k, v) for k, v in reply.headers if not k.lower().startswith("access-control-")]
    if origin is None or not origin_allowed(cors, origin):
        return
    reply.headers.extend(_origin_headers(cors, origin))
    if cors.expose_headers:
        reply.headers.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))


def check_cors(settings: CorsConfig, where: str, problems: list[str]) -> None:
    if settings.allow_credentials and "*" in settings.allow_origins:
        problems.append(
            f"{where}.allow_origins: '*' cannot be used with allow_credentials: true (name the origins)"
        )
