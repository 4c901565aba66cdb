"""The control plane's access check: one shared token (server.auth_token).

When a token is configured, every request must carry it, in one of two forms:

* `Authorization: Bearer <token>` (curl, `router invoke --token`);
* an AWS Signature V4 `Authorization` header whose access key id is the token, which is what an unmodified
  AWS SDK or CLI sends when configured with `aws_access_key_id=<token>` (any secret key). The signature
  itself is not verified: the router does not know a secret key, so the token is a bearer secret either way
  (put TLS in front of a router reachable from other machines).

A request without credentials gets 401 MissingAuthenticationTokenException; wrong credentials get 403
UnrecognizedClientException (the names AWS uses), both in Lambda's error shape. The probes `/healthz` and
`/readyz` stay open, because orchestrators (docker compose, Kubernetes) probe without credentials and they
reveal nothing but up/ready; `/metrics` needs the token like everything else. Function URLs
(`/lambda-url/...`) check their own AuthType: open with NONE, this same token with AWS_IAM. The console's
page and static files (`/console`, `/console/`, `/console/static/...`) are open: a browser navigating sends
no header, and they hold no data; the page asks for the token and sends it on every API call
(`/console/api/...` needs it like everything else).
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from aiohttp import web

from router.control.errors import ApiError, Handler
from router.core.errors import MISSING_TOKEN, UNRECOGNIZED_CLIENT

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
FUNCTION_URLS = "/lambda-url/"
CONSOLE_PAGES = frozenset({"/console", "/console/"})
CONSOLE_FILES = "/console/static/"
_SIGV4 = re.compile(r"^AWS4-HMAC-SHA256\s+.*?Credential=([^/,\s]+)/")


def presented_token(authorization: str) -> str | None:
    """The token an Authorization header presents (Bearer value or SigV4 access key id), None if neither."""
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    m = _SIGV4.match(value)
    return m.group(1) if m else None


def check_token(authorization: str | None, token: str) -> ApiError | None:
    """None when the header carries `token`; else the error to answer with."""
    if not authorization:
        return ApiError(
            401,
            MISSING_TOKEN,
            "Missing Authentication Token: send 'Authorization: Bearer <token>' "
            "or sign with the token as access key id",
            headers={"WWW-Authenticate": "Bearer"},
        )
    presented = presented_token(authorization)
    if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
        return ApiError(403, UNRECOGNIZED_CLIENT, "The security token included in the request is invalid.")
    return None


def is_open(path: str) -> bool:
    """Paths served without the token (see the module docstring)."""
    return (
        path in OPEN_PATHS
        or path in CONSOLE_PAGES
        or path.startswith(FUNCTION_URLS)
        or path.startswith(CONSOLE_FILES)
    )


def auth_middleware(token: str) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Function URLs check their own AuthType (router/control/url_gateway.py).
        if not is_open(request.path):
            error = check_token(request.headers.get("Authorization"), token)
            if error is not None:
                raise error
        return await handler(request)

    return middleware
