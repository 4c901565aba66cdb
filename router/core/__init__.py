"""The core: the contracts every layer shares, at the bottom of the house.

Owns: the event envelope (`envelope`), the invocation result and outcome kinds (`results`), error types and
Lambda's error names (`errors`), the ports a source is given (`ports`: the route handle, submit, the source
context and contract), the traits a source kind declares (`kinds`), the backend seams the cluster plugs into
(`backends`), the injected clock (`clock`), the loop-protection trace (`trace`), and small shared helpers:
durable file writes (`durable`), retry with backoff (`retry`), time formatting (`timefmt`), Lambda's
reserved environment variables (`lambda_env`) and function ARNs (`arn`).

May import: the standard library, msgspec, and other modules of `router.core`. Nothing else of the router:
every other layer depends on this one, never the other way (tests/unit/test_layers.py checks it).
"""
