"""The event record: what reached each function and what came of it, and the tools built on it.

Modules: `sqlite` (the durable record, `<state_dir>/record.db` and blobs, the default) with `schema` (its
layout, writes, reads and retention), `memory` (rings in memory, `record.enabled: false`), `base` (what
both share: the dispatcher hooks, the cursor, waiting), `views` (the JSON documents the inspection API
serves), `replay` (recorded events delivered again), `failstores` and `redrive` (failure destinations read
back and sent back through their functions). The seam other backends implement is
`router.core.backends.InvocationRecord`; docs/record.md describes it all.
"""
