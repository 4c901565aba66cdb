"""Published versions and aliases of the catalog's functions: publishing, deleting, and what the dispatcher
gets of them.

`Versions(catalog)` keeps every function's `Published` (router.control.published) and the definition of
each version (built from its snapshot, so it runs the code and settings it was published with, in an
instance pool of its own). Changes run under the catalog's lock, are persisted first, then applied
(`catalog._apply`):

* `publish(name, code_sha256=, revision_id=, description=)`: snapshot $LATEST as version N+1, unless
  nothing changed since the last version (then that one is returned, as Lambda does). The preconditions:
  CodeSha256 must be $LATEST's (else InvalidParameterValueException), RevisionId must be its RevisionId
  (else PreconditionFailedException).
* `delete_version(name, version)`: refused (ResourceConflictException) while an alias points at it.
* `put_alias(name, alias, revision_id=, create=)` / `delete_alias(name, alias)`: the checks of the alias
  itself are the API's (router.control.aliases); here, existence and RevisionId.
* `attach(defn)`: the $LATEST definition with `versions` and `aliases` for the dispatcher; each version's
  asynchronous settings are its event invoke config (deployed functions) or the config file's `async:`
  (config functions), and its reserved concurrency is the function's (counted across versions).

Config-file functions may be published and aliased too (the config file is still the only source of their
$LATEST): a route can then pin `function: name:alias`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Protocol

import msgspec

from router.config import AsyncConfig, Config
from router.control.errors import ApiError, conflict, invalid_parameter, not_found, precondition_failed
from router.control.names import LATEST
from router.control.published import Published, PublishedStore, VersionRecord
from router.control.records import AliasRecord
from router.control.store import FunctionRecord
from router.core.errors import RESOURCE_NOT_FOUND
from router.dispatch.registry import AliasRouting, FunctionDefinition

log = logging.getLogger("router.control.versions")


class Catalog(Protocol):
    """What Versions uses of router.control.catalog.FunctionCatalog (which owns it)."""

    lock: asyncio.Lock
    state_dir: Path
    config: Config

    def arn(self, name: str, qualifier: str | None = None) -> str: ...
    def require(self, name: str) -> FunctionDefinition: ...
    def record(self, name: str) -> FunctionRecord | None: ...
    def code_path(self, name: str) -> Path | None: ...
    async def apply(self) -> None: ...

    def build_record(
        self, record: FunctionRecord, code: Path, *, version: str = ..., opt_dir: Path | None = None
    ) -> FunctionDefinition: ...

    def async_for_record(
        self, record: FunctionRecord, qualifier: str, dead_letter_arn: str | None
    ) -> AsyncConfig: ...


class Versions:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.store = PublishedStore(catalog.state_dir / "published")
        self.published: dict[str, Published] = {}
        self.defs: dict[str, dict[str, FunctionDefinition]] = {}

    # -- loading and reading --------------------------------------------------------------------------

    def load(self) -> None:
        """Blocking: every function's published state, and a definition per readable version."""
        self.published = self.store.load()
        for name, published in self.published.items():
            for record in published.ordered():
                try:
                    self.defs.setdefault(name, {})[record.version] = self._build(name, record)
                except (OSError, ValueError) as e:
                    log.error(f"{name}: version {record.version} cannot be prepared and is not loaded: {e}")
                    del published.versions[record.version]

    def _build(self, name: str, record: VersionRecord) -> FunctionDefinition:
        code = self.store.code_path(name, record)
        opt_dir = Path(record.opt_dir) if record.opt_dir else None
        return self.catalog.build_record(record.function, code, version=record.version, opt_dir=opt_dir)

    def of(self, name: str) -> Published:
        return self.published.get(name) or Published()

    def arn(self, name: str, qualifier: str) -> str:
        return self.catalog.arn(name, qualifier)

    def version(self, name: str, version: str) -> tuple[VersionRecord, FunctionDefinition]:
        record = self.of(name).versions.get(version)
        defn = self.defs.get(name, {}).get(version)
        if record is None or defn is None:
            raise not_found(self.arn(name, version))
        return record, defn

    def alias(self, name: str, alias: str) -> AliasRecord:
        found = self.of(name).aliases.get(alias)
        if found is None:
            raise ApiError(404, RESOURCE_NOT_FOUND, f"Alias not found: {self.arn(name, alias)}")
        return found

    # -- publishing -----------------------------------------------------------------------------------

    async def publish(
        self, name: str, *, code_sha256: str | None, revision_id: str | None, description: str | None
    ) -> tuple[VersionRecord, FunctionDefinition]:
        catalog = self.catalog
        async with catalog.lock:
            latest = catalog.require(name)
            snapshot, code = self._snapshot(name, latest)
            if code_sha256 and code_sha256 != latest.code_sha256:
                raise invalid_parameter(
                    f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
                    f"({latest.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
                )
            source = snapshot.revision_id or latest.revision
            if revision_id and revision_id != self._latest_revision_id(name, latest):
                raise precondition_failed()
            published = self.published.setdefault(name, Published())
            last = published.ordered()[-1] if published.versions else None
            if last is not None and last.source_revision == source:
                return self.version(name, last.version)  # nothing changed since: Lambda returns that one
            return await self._add(name, latest, snapshot, code, source, description)

    async def _add(
        self,
        name: str,
        latest: FunctionDefinition,
        snapshot: FunctionRecord,
        code: Path,
        source: str,
        description: str | None,
    ) -> tuple[VersionRecord, FunctionDefinition]:
        published = self.published[name]
        number = str(published.last_version + 1)
        code_file = f"v{number}" if latest.origin == "config" and code.suffix != ".zip" else f"v{number}.zip"
        now, revision = time.time(), str(uuid.uuid4())
        description = snapshot.description if description is None else description
        # What rides on the function (tags, invoke configs, URLs) is not part of a version's snapshot.
        frozen = msgspec.structs.replace(
            snapshot, code_file=code_file, revision_id=revision, description=description, last_modified=now,
            tags={}, invoke_configs={}, urls={},
        )  # fmt: skip
        record = VersionRecord(
            version=number,
            function=frozen,
            code_sha256=latest.code_sha256,
            source_revision=source,
            revision_id=revision,
            last_modified=now,
            description=description,
            opt_dir=str(latest.spec.opt_dir) if latest.spec.opt_dir is not None else None,
        )
        published.last_version = int(number)
        await asyncio.to_thread(self.store.add_version, name, record, code, published)
        defn = await asyncio.to_thread(self._build, name, record)
        published.versions[number] = record
        self.defs.setdefault(name, {})[number] = defn
        await self.catalog.apply()
        log.info("version published", extra={"fields": {"function": name, "version": number}})
        return record, defn

    def _snapshot(self, name: str, latest: FunctionDefinition) -> tuple[FunctionRecord, Path]:
        """$LATEST as a record to freeze, and where its code is (a ZIP, or a config function's folder)."""
        record = self.catalog.record(name)
        if record is not None:
            path = self.catalog.code_path(name)
            assert path is not None
            return record, path
        fc = latest.config
        snapshot = FunctionRecord(
            name=name,
            runtime=fc.runtime,
            handler=fc.handler,
            code_file="",
            description=fc.description,
            memory_mb=fc.memory_mb,
            timeout_s=int(fc.timeout_s),
            environment=dict(fc.environment),
            layers=[layer for layer in fc.layers if layer.startswith("arn:")],
        )
        return snapshot, self.catalog.config.path(fc.code)

    def _latest_revision_id(self, name: str, latest: FunctionDefinition) -> str:
        from router.control.configuration import revision_id

        return revision_id(latest, self.catalog.record(name))

    async def delete_version(self, name: str, version: str) -> None:
        async with self.catalog.lock:
            record, _ = self.version(name, version)
            aliases = self.of(name).aliases.values()
            users = sorted(a.name for a in aliases if version in (a.version, *a.weights))
            if users:
                raise conflict(
                    f"Unable to delete version because the following aliases reference it: {users}"
                )
            await asyncio.to_thread(self.store.delete_version, name, record)
            del self.published[name].versions[version], self.defs[name][version]
            await self.catalog.apply()

    async def forget(self, name: str) -> None:
        """Drop every version and alias of `name` (its function is deleted). Under the catalog's lock."""
        await asyncio.to_thread(self.store.delete_all, name)
        self.published.pop(name, None)
        self.defs.pop(name, None)

    # -- aliases --------------------------------------------------------------------------------------

    async def put_alias(
        self, name: str, alias: AliasRecord, *, revision_id: str | None = None, create: bool
    ) -> AliasRecord:
        async with self.catalog.lock:
            self.catalog.require(name)
            published = self.published.setdefault(name, Published())
            current = published.aliases.get(alias.name)
            if create and current is not None:
                raise conflict(f"Alias already exists: {self.arn(name, alias.name)}")
            if not create:
                current = self.alias(name, alias.name)
                if revision_id and revision_id != current.revision_id:
                    raise precondition_failed()
            for version in (alias.version, *alias.weights):
                if version != LATEST:
                    self.version(name, version)
            alias = msgspec.structs.replace(alias, revision_id=str(uuid.uuid4()))
            published.aliases[alias.name] = alias
            await asyncio.to_thread(self.store.save_state, name, published)
            await self.catalog.apply()
            return alias

    async def delete_alias(self, name: str, alias: str) -> None:
        async with self.catalog.lock:
            self.catalog.require(name)
            self.alias(name, alias)
            published = self.published[name]
            del published.aliases[alias]
            await asyncio.to_thread(self.store.save_state, name, published)
            await self.catalog.apply()

    # -- what the dispatcher runs ---------------------------------------------------------------------

    def attach(self, defn: FunctionDefinition) -> FunctionDefinition:
        name = defn.name
        published = self.published.get(name)
        if published is None or not (published.versions or published.aliases):
            return defn
        reserved = defn.config.reserved_concurrency
        versions = {}
        for version, vdefn in self.defs.get(name, {}).items():
            record = published.versions[version]
            async_ = self._async(defn, version, record.function.dead_letter_arn)
            config = msgspec.structs.replace(vdefn.config, reserved_concurrency=reserved, async_=async_)
            versions[version] = msgspec.structs.replace(vdefn, config=config)
        aliases = {}
        for alias in published.aliases.values():
            target = published.versions.get(alias.version)
            dead_letter = target.function.dead_letter_arn if target else self._dead_letter(name)
            aliases[alias.name] = AliasRouting(
                version=alias.version,
                weights=dict(alias.weights),
                async_=self._async(defn, alias.name, dead_letter),
            )
        return msgspec.structs.replace(defn, versions=versions, aliases=aliases)

    def _async(self, defn: FunctionDefinition, qualifier: str, dead_letter: str | None) -> AsyncConfig:
        record = self.catalog.record(defn.name)
        if record is None:
            return defn.config.async_  # a config function: its `async:` settings, for every version
        return self.catalog.async_for_record(record, qualifier, dead_letter)

    def _dead_letter(self, name: str) -> str | None:
        record = self.catalog.record(name)
        return record.dead_letter_arn if record is not None else None
