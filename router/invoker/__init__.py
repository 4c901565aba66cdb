"""The invoker: each function instance as its own supervised OS process speaking the Lambda Runtime API.

Owns: starting instances (launch, process, the Python zygote), their lifecycle (lifecycle: a state table),
the Runtime API server of each instance (runtime_api, http11), limits and metering (memory, timeouts,
REPORT lines), unpacking code (code), and the runtimes' own bootstraps (runtimes/). Its contract with the
dispatcher is in types.py.

May import: router.core, router.config, router.metrics, router.logs. Never router.sources, router.dispatch or
router.control (tests/unit/test_layers.py).
"""
