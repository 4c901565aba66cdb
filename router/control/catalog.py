"""The functions the router runs: those of the config file, plus those deployed through the Lambda API.

`FunctionCatalog` is the one place that calls `dispatcher.set_functions`, so config reloads (SIGHUP) and API
deployments never overwrite each other: both go through `self.lock` and hand the dispatcher the merged set.

* `await start()` loads the deployed functions from the store (router.control.store), builds every
  definition (router.dispatch.registry) and applies them; `await reload(config)` does the same for a new
  config file, keeping the deployed ones.
* Config-file functions are read-only through the API (their source of truth is the YAML): a change
  request names them in a ResourceConflictException. A config function and a deployed one with the same
  name: the config one wins (a warning is logged), and CreateFunction refuses the name.
* Mutations (`create`, `update_code`, `update_settings`, `set_reserved`, `delete`) are persisted first and
  applied second; a definition that cannot be built (the invoker refuses the code) rolls the change back.
  After `set_functions`, new calls go to instances of the new revision while in-flight calls finish on the
  old ones (the dispatcher's contract).
* Published versions and aliases (router.control.versioning, `self.versions`) exist for both kinds of
  function; the dispatcher gets them attached to each function's $LATEST definition (`dispatch_definitions`).
  Layers published through the API are `self.layers` (router.control.layer_store); a function's layer ARNs
  resolve there, config functions' too.
* `change(name, mutate)` applies a change that is not code or launch settings (tags, event invoke configs,
  function URLs): persisted, and the dispatcher's asynchronous settings follow at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from router.config import AsyncConfig, Config, FunctionConfig
from router.control.async_settings import async_config
from router.control.errors import conflict, invalid_parameter, not_found, precondition_failed
from router.control.layer_store import LayerStore
from router.control.names import LATEST, function_arn
from router.control.store import FunctionRecord, FunctionStore, new_code_file
from router.control.versioning import Versions
from router.core.arn import parse_layer_version_arn
from router.dispatch.registry import (
    FunctionDefinition,
    config_layers,
    definitions_from_config,
    journal_env,
    make_definition,
)
from router.invoker.code import CodeError

if TYPE_CHECKING:
    from router.dispatch.dispatcher import Dispatcher

log = logging.getLogger("router.control.catalog")

# What building a definition raises when the code cannot be used (missing, broken or unsafe ZIP).
BUILD_ERRORS = (OSError, ValueError, CodeError)


class FunctionCatalog:
    def __init__(
        self, config: Config, state_dir: Path, dispatcher: Dispatcher, *, read_only: bool = False
    ) -> None:
        self.config = config
        self.state_dir = state_dir
        self.dispatcher = dispatcher
        self.store = FunctionStore(state_dir / "functions")
        self.layers = LayerStore(state_dir / "layers")
        self.versions = Versions(self)
        if read_only:  # a front process reads the primary's state_dir, never tidies it (router/processes.py)
            self.store.tidy = self.layers.tidy = self.versions.store.tidy = False
        self.records: dict[str, FunctionRecord] = {}
        self.lock = asyncio.Lock()
        self._config_defs: dict[str, FunctionDefinition] = {}
        self._api_defs: dict[str, FunctionDefinition] = {}

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        async with self.lock:
            await asyncio.to_thread(self.layers.load)
            self._config_defs = await asyncio.to_thread(self._config_definitions, self.config)
            self.records = await asyncio.to_thread(self.store.load)
            for name, record in list(self.records.items()):
                try:
                    self._api_defs[name] = await asyncio.to_thread(self._build, record)
                except BUILD_ERRORS as e:
                    log.error(f"deployed function {name!r} cannot be prepared and is not loaded: {e}")
                    del self.records[name]
            await asyncio.to_thread(self.versions.load)
            self._warn_shadowed()
            await self.apply()

    def _config_definitions(self, config: Config) -> dict[str, FunctionDefinition]:
        return definitions_from_config(config, self.state_dir, layers=self.layer_zip)

    async def reload(self, config: Config) -> None:
        async with self.lock:
            defs = await asyncio.to_thread(self._config_definitions, config)
            self.config, self._config_defs = config, defs
            self._warn_shadowed()
            await self.apply()

    async def refresh_code(self, names: list[str]) -> list[str]:
        """Rebuild these config functions from their code (hot reload); returns those whose revision
        changed (their warm instances are retired). A code that cannot be prepared keeps the running one."""
        async with self.lock:
            changed = []
            for name in names:
                old, fconfig = self._config_defs.get(name), self.config.functions.get(name)
                if old is None or fconfig is None:
                    continue
                try:
                    new = await asyncio.to_thread(
                        make_definition,
                        name,
                        fconfig,
                        self.config.path(fconfig.code),
                        state_dir=self.state_dir,
                        region=self.config.account.region,
                        account_id=self.config.account.account_id,
                        runtime_env=journal_env(self.config, self.state_dir),
                        layers=config_layers(self.config, fconfig, self.layer_zip),
                    )
                except BUILD_ERRORS as e:
                    log.error(f"hot reload: {name}: code cannot be prepared, keeping the running one: {e}")
                    continue
                if new.revision != old.revision:
                    self._config_defs[name] = new
                    changed.append(name)
            if changed:
                await self.apply()
            return changed

    def _warn_shadowed(self) -> None:
        for name in sorted(set(self._api_defs) & set(self._config_defs)):
            log.warning(f"deployed function {name!r} is shadowed by the config function of the same name")

    async def apply(self) -> None:
        await self.dispatcher.set_functions(self.dispatch_definitions())

    def dispatch_definitions(self) -> dict[str, FunctionDefinition]:
        """Every function with its published versions and aliases attached (what the dispatcher runs)."""
        return {name: self.versions.attach(defn) for name, defn in self.definitions().items()}

    # -- reading --------------------------------------------------------------------------------------

    def definitions(self) -> dict[str, FunctionDefinition]:
        return {**self._api_defs, **self._config_defs}

    def get(self, name: str) -> FunctionDefinition | None:
        return self._config_defs.get(name) or self._api_defs.get(name)

    def record(self, name: str) -> FunctionRecord | None:
        """The deployed record, or None for a config function (or none at all)."""
        return None if name in self._config_defs else self.records.get(name)

    def names(self) -> list[str]:
        return sorted(set(self._config_defs) | set(self._api_defs))

    def arn(self, name: str, qualifier: str | None = None) -> str:
        return function_arn(self.config.account.region, self.config.account.account_id, name, qualifier)

    def require(self, name: str) -> FunctionDefinition:
        defn = self.get(name)
        if defn is None:
            raise not_found(self.arn(name))
        return defn

    def reserved_total(self, *, excluding: str | None = None) -> int:
        return sum(
            d.config.reserved_concurrency or 0 for n, d in self.definitions().items() if n != excluding
        )

    def code_path(self, name: str) -> Path | None:
        record = self.record(name)
        return self.store.code_path(record) if record is not None else None

    def layer_zip(self, arn: str) -> Path:
        """The ZIP of a layer version ARN (deleted versions too: functions using them keep them)."""
        parsed = parse_layer_version_arn(arn)
        found = self.layers.get(*parsed, deleted=True) if parsed is not None else None
        if parsed is None or found is None:
            raise ValueError(f"Layer version {arn} does not exist.")
        return self.layers.zip_path(*parsed)

    # -- changes --------------------------------------------------------------------------------------

    async def create(self, record: FunctionRecord, zip_bytes: bytes) -> FunctionDefinition:
        async with self.lock:
            if record.name in self._config_defs or record.name in self.records:
                raise conflict(f"Function already exist: {record.name}")
            # Versions left by a config function of this name that is gone are not this function's.
            await self.versions.forget(record.name)
            record = msgspec.structs.replace(
                record, code_file=new_code_file(), revision_id=str(uuid.uuid4()), last_modified=time.time()
            )
            await asyncio.to_thread(self.store.create, record, zip_bytes)
            try:
                defn = await asyncio.to_thread(self._build, record)
            except BUILD_ERRORS as e:
                await asyncio.to_thread(self.store.delete, record.name)
                raise invalid_parameter(f"The code cannot be prepared: {e}") from None
            self.records[record.name], self._api_defs[record.name] = record, defn
            await self.apply()
            _log_change("function created", defn)
            return defn

    async def update_code(
        self, name: str, zip_bytes: bytes, *, revision_id: str | None
    ) -> FunctionDefinition:
        async with self.lock:
            record = self.writable(name, revision_id)
            code_file = new_code_file()
            await asyncio.to_thread(self.store.write_code, name, code_file, zip_bytes)
            updated = self._touched(record, code_file=code_file)
            try:
                defn = await asyncio.to_thread(self._build, updated)
            except BUILD_ERRORS as e:
                await asyncio.to_thread(self.store.discard_code, name, code_file)
                raise invalid_parameter(f"The code cannot be prepared: {e}") from None
            await asyncio.to_thread(self.store.save, updated)
            _log_change("function code updated", defn)
            return await self._commit(updated, defn)

    async def update_settings(
        self, name: str, changes: dict[str, Any], *, revision_id: str | None
    ) -> FunctionDefinition:
        """Apply FunctionRecord field changes (runtime, handler, memory_mb, ...) to a deployed function."""
        async with self.lock:
            updated = self._touched(self.writable(name, revision_id), **changes)
            defn = await asyncio.to_thread(self._build, updated)
            await asyncio.to_thread(self.store.save, updated)
            _log_change("function configuration updated", defn, changed=sorted(changes))
            return await self._commit(updated, defn)

    async def set_reserved(self, name: str, reserved: int | None) -> None:
        """PutFunctionConcurrency / DeleteFunctionConcurrency. Does not change the revision (as on Lambda)."""
        async with self.lock:
            record = self.writable(name, None)
            if reserved is not None:
                self._check_budget(name, reserved)
            updated = msgspec.structs.replace(record, reserved_concurrency=reserved)
            defn = await asyncio.to_thread(self._build, updated)
            await asyncio.to_thread(self.store.save, updated)
            _log_change("function concurrency set", defn, reserved_concurrency=reserved)
            await self._commit(updated, defn)

    async def delete(self, name: str) -> None:
        async with self.lock:
            self.writable(name, None)
            await asyncio.to_thread(self.store.delete, name)
            await self.versions.forget(name)
            del self.records[name], self._api_defs[name]
            await self.apply()
            log.info("function deleted", extra={"fields": {"function": name}})

    # -- helpers --------------------------------------------------------------------------------------

    def writable(self, name: str, revision_id: str | None) -> FunctionRecord:
        if name in self._config_defs:
            raise conflict(
                f"Function {name} is defined in the router's config file and is read-only through the API; "
                "change the config file and reload the router (SIGHUP) instead"
            )
        record = self.records.get(name)
        if record is None:
            raise not_found(self.arn(name))
        if revision_id and revision_id != record.revision_id:
            raise precondition_failed()
        return record

    async def change(self, name: str, mutate: Callable[[FunctionRecord], FunctionRecord]) -> FunctionRecord:
        """Persist a change of what rides on the record (tags, invoke configs, URLs); RevisionId stays."""
        async with self.lock:
            updated = mutate(self.writable(name, None))
            defn = self._api_defs[name]
            async_ = self.async_for_record(updated, LATEST, updated.dead_letter_arn)
            defn = msgspec.structs.replace(defn, config=msgspec.structs.replace(defn.config, async_=async_))
            await asyncio.to_thread(self.store.save, updated)
            await self._commit(updated, defn)
            return updated

    def async_for_record(
        self, record: FunctionRecord, qualifier: str, dead_letter_arn: str | None
    ) -> AsyncConfig:
        """The AsyncConfig of a deployed function's qualifier: its event invoke config, its dead letters."""
        return async_config(record.invoke_configs.get(qualifier), dead_letter_arn)

    def _touched(self, record: FunctionRecord, **changes: Any) -> FunctionRecord:
        return msgspec.structs.replace(
            record, revision_id=str(uuid.uuid4()), last_modified=time.time(), **changes
        )

    async def _commit(self, record: FunctionRecord, defn: FunctionDefinition) -> FunctionDefinition:
        self.records[record.name], self._api_defs[record.name] = record, defn
        await self.apply()
        return defn

    def _check_budget(self, name: str, reserved: int) -> None:
        account = self.config.account
        if self.reserved_total(excluding=name) + reserved > account.concurrency - account.unreserved_min:
            raise invalid_parameter(
                f"Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{account.unreserved_min}]."
            )

    def _build(self, record: FunctionRecord) -> FunctionDefinition:
        return self.build_record(record, self.store.code_path(record))

    def build_record(
        self, record: FunctionRecord, code: Path, *, version: str = LATEST, opt_dir: Path | None = None
    ) -> FunctionDefinition:
        """A deployed function's definition (or one of its versions', from the version's snapshot)."""
        config = FunctionConfig(
            runtime=record.runtime,
            handler=record.handler,
            code=str(self.store.code_path(record)),
            memory_mb=record.memory_mb,
            timeout_s=record.timeout_s,
            reserved_concurrency=record.reserved_concurrency,
            environment=dict(record.environment),
            description=record.description,
            async_=self.async_for_record(record, version, record.dead_letter_arn),
            layers=list(record.layers),
        )
        return make_definition(
            record.name,
            config,
            code,
            state_dir=self.state_dir,
            origin="api",
            region=self.config.account.region,
            account_id=self.config.account.account_id,
            last_modified=record.last_modified,
            runtime_env=journal_env(self.config, self.state_dir),
            layers=[self.layer_zip(arn) for arn in record.layers] if opt_dir is None else (),
            version=version,
            opt_dir=opt_dir,
        )


def _log_change(message: str, defn: FunctionDefinition, **fields: Any) -> None:
    log.info(message, extra={"fields": {"function": defn.name, "revision": defn.revision,
                                        "code_sha256": defn.code_sha256, **fields}})  # fmt: skip
