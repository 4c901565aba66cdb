"""The HTTP gateway source (`kind: http`): API Gateway REST (1.0) and HTTP API (2.0) events and responses.

Modules: `source` (the server), `routes` (route keys), `events` (request to event), `response` (result to
reply), `cors`. Its settings are router/config/sources/http.py.

May import: router.core, router.config, router.shapes, router.metrics, router.edge and router.sources.stream;
never router.dispatch, router.invoker or router.control.
"""

from __future__ import annotations

from router.sources.http.source import check, create

__all__ = ["check", "create"]
