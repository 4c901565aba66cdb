"""Hot reload: a config function whose code folder changes gets new instances on its next call.

`CodeWatcher(catalog).run()` watches the code folders of the config file's functions (folders only: a ZIP is
a release, not a work in progress; functions deployed through the API change through UpdateFunctionCode).
A change under a folder (editor temp files, `__pycache__`, `node_modules` and VCS folders ignored, as
watchfiles' default filter does) makes the catalog rebuild those functions' definitions: when the folder's
digest changed, the function has a new revision, so the dispatcher retires its warm instances (in-flight
calls finish on them) and the next call starts an instance of the new code, as serverless-offline's
`reloadHandler` and SAM's warm containers do. A code folder that cannot be prepared any more (deleted) is
logged and the running revision kept.

The watch is set up once per config: the daemon cancels `run` and starts a new watcher after a reload.
`invoker.hot_reload: false` turns it off.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.control.catalog import FunctionCatalog

log = logging.getLogger("router.control.codewatch")

STEP_MS = 50  # a burst of writes (an editor saving, git checkout) is one change once quiet this long
RUST_TIMEOUT_MS = 500  # how often the watcher thread checks whether to stop


def watched_folders(catalog: FunctionCatalog) -> dict[Path, list[str]]:
    """{code folder: names of the config functions run from it}; ZIP code is not watched."""
    config = catalog.config
    folders: dict[Path, list[str]] = {}
    for name, fconfig in config.functions.items():
        if fconfig.target is not None:
            continue  # runs elsewhere: no code here
        code = config.path(fconfig.code)
        if code.is_dir():
            folders.setdefault(code.resolve(), []).append(name)
    return folders


def functions_touched(folders: dict[Path, list[str]], paths: list[str]) -> list[str]:
    """Names of the functions whose folder holds any of the changed paths."""
    names: set[str] = set()
    for raw in paths:
        path = Path(raw)
        for folder, functions in folders.items():
            if path == folder or path.is_relative_to(folder):
                names.update(functions)
    return sorted(names)


class CodeWatcher:
    def __init__(self, catalog: FunctionCatalog) -> None:
        self.catalog = catalog
        self.stop = asyncio.Event()

    async def run(self) -> None:
        from watchfiles import DefaultFilter, awatch

        folders = watched_folders(self.catalog)
        if not folders:
            return
        log.info("hot reload: watching %d code folder(s)", len(folders))
        try:
            async for changes in awatch(
                *folders,
                watch_filter=DefaultFilter(),
                stop_event=self.stop,
                step=STEP_MS,
                rust_timeout=RUST_TIMEOUT_MS,
                recursive=True,
                ignore_permission_denied=True,
            ):
                names = functions_touched(folders, [path for _, path in changes])
                if names:
                    await self._refresh(names)
        finally:
            self.stop.set()  # a cancelled run ends the watcher thread too

    async def _refresh(self, names: list[str]) -> None:
        for name in await self.catalog.refresh_code(names):
            defn = self.catalog.get(name)
            revision = defn.revision if defn is not None else "?"
            log.info(
                f"hot reload: {name}: code changed; new instances from the next call (revision {revision})",
                extra={"fields": {"function": name, "revision": revision}},
            )
