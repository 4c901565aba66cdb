"""The dispatcher: per-function instance pools, concurrency accounting, throttling, the durable async queue.

Contract (what sources, the control plane and the daemon rely on):

* `Dispatcher(config, state_dir=..., clock=..., metrics=...)`; `await start()` opens the durable queue,
  launches provisioned instances and starts the async workers and the idle reaper; `await drain(grace_s)`
  stops taking new calls, lets in-flight calls finish up to grace_s, keeps queued events on disk;
  `await aclose()` stops every instance. Idempotent.
* `await invoke(function, payload, *, client_context=None, trace=None) -> InvocationResult`: a synchronous
  call. Raises `FunctionNotFound`, `Throttled(reason=...)` at once when over a limit, `ShuttingDown` when
  draining. Function failures (including init failures, timeouts, OOM) come back as data in the result.
* `await enqueue(function, payload, *, trace=None, source=None) -> request_id`: an asynchronous call. Returns
  once the event is durably stored (fsync); retries, max event age and destinations follow the function's
  `async` settings. Raises `FunctionNotFound`, `ShuttingDown`, `QueueUnavailable`.
* `check(function)`: DryRun; raises FunctionNotFound when there is no such function.
* `await set_functions(defs)`: replace the set of functions (config reload, deploy, delete). New calls go to
  instances of the new revision; in-flight calls finish on the old ones, which are then stopped.
* `stats()`: per function and account: in use, idle, cold/warm starts, throttles, queue depth, oldest age.
"""
