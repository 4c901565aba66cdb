"""The control plane: one HTTP port with the Lambda-compatible API, the inspection API, health and metrics.

Owns: the aiohttp app (app), what its handlers see of the daemon (plane), the Invoke API (invoke), function
management (functions, catalog, store, uploads, configuration, names), errors in Lambda's shape (errors),
auth, and the inspection API (inspect, inject, failures).

May import: every part below the top (core, config, shapes, invoker, dispatch, record, sources, metrics,
logs); never router.daemon or router.cli. The daemon hands it a ControlPlane instead.
"""
