"""Dispatch: from "call this function" to a running instance, within Lambda's concurrency rules.

Owns: the dispatcher (dispatcher), instance pools (pool), concurrency accounting and throttles
(concurrency), the durable async queue and its retries (queue, scheduler), destinations, the function
registry (registry), routes bound to sources as ports (routing), filters (filters, filter_syntax) and loop
protection (loops).

May import: router.core, router.config, router.shapes, router.invoker, router.metrics, router.logs. Never
router.sources or router.control (tests/unit/test_layers.py): sources reach the dispatcher only through the
route ports it hands them.
"""
