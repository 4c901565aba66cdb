"""The inspection record: what reached each function and what came of it, for the inspection API and `tail`.

Modules: `memory` (today's backend: a ring of recent invocations in memory, fed by the dispatcher's
result hooks). The seam other backends implement is `router.core.backends.InvocationRecord`.

May import: router.core, router.config, router.dispatch (the hooks it attaches to). Never router.sources or
router.control.
"""
