"""Functions deployed through the API, persisted under `<state_dir>/functions/` so they survive a restart.

Layout, one folder per function:

    <state_dir>/functions/<name>/function.json     the FunctionRecord (settings, revision id, code file)
    <state_dir>/functions/<name>/code-<id>.zip     the uploaded ZIP, as checked (router.control.uploads)

The record also holds what the API attaches to the function: tags, layers, its dead-letter target, event
invoke configs and function URLs (router.control.records). Published versions and aliases are kept apart,
in router.control.published, because config-file functions have them too.

Every change is crash-safe: a new function is assembled in `.tmp-<uuid>/` and renamed into place; a new ZIP
is written under a fresh name before `function.json` is atomically replaced (write, fsync, rename) to point
at it; a deleted function's folder is first renamed to `.trash-<uuid>/`. `load()` finishes or undoes
whatever a crash interrupted: it removes `.tmp-*` and `.trash-*` folders and ZIPs no record points at, and
skips (with a logged error) a record it cannot read rather than failing the daemon.

The ZIP is the code: the invoker unpacks it (`router.invoker.code.prepare_code`) into its own folder when the
function's definition is built, so instances of an older revision keep running from their own unpacked copy
while a new ZIP is being deployed.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid
from pathlib import Path

import msgspec

from router.control.records import InvokeConfigRecord, UrlConfigRecord
from router.core.durable import fsync_dir, remove_temporaries, rename_durably, write_atomically, write_synced

log = logging.getLogger("router.control.store")

RECORD = "function.json"


class FunctionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A deployed function, as persisted. Field names are ours (snake_case); the API renders them."""

    name: str
    runtime: str
    handler: str
    code_file: str  # "code-<id>.zip", in the function's folder
    role: str = ""
    description: str = ""
    memory_mb: int = 128
    timeout_s: int = 3
    environment: dict[str, str] = {}
    reserved_concurrency: int | None = None
    architectures: list[str] = msgspec.field(default_factory=lambda: ["x86_64"])
    revision_id: str = ""  # Lambda's RevisionId: changes with every code or configuration update
    last_modified: float = 0.0  # seconds since the epoch
    tags: dict[str, str] = {}
    layers: list[str] = []  # layer version ARNs, in /opt order
    dead_letter_arn: str | None = None  # DeadLetterConfig.TargetArn (an SQS queue or SNS topic)
    invoke_configs: dict[str, InvokeConfigRecord] = {}  # qualifier ($LATEST, version, alias) -> config
    urls: dict[str, UrlConfigRecord] = {}  # qualifier ($LATEST or an alias) -> function URL


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(FunctionRecord)


def new_code_file() -> str:
    return f"code-{uuid.uuid4().hex[:16]}.zip"


class FunctionStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tidy = True  # load() removes what interrupted changes left; False: only reads (front processes)

    def folder(self, name: str) -> Path:
        return self.root / name

    def code_path(self, record: FunctionRecord) -> Path:
        return self.folder(record.name) / record.code_file

    # -- reading --------------------------------------------------------------------------------------

    def load(self) -> dict[str, FunctionRecord]:
        """Every readable record, after cleaning up what an interrupted change left behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        records: dict[str, FunctionRecord] = {}
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                if self.tidy:  # .tmp-* / .trash-*: an interrupted create or delete
                    shutil.rmtree(entry, ignore_errors=True)
                continue
            if not entry.is_dir():
                continue
            record = self._read(entry)
            if record is not None:
                records[record.name] = record
                if self.tidy:
                    self._remove_stale_code(record)
        return records

    def _read(self, folder: Path) -> FunctionRecord | None:
        path = folder / RECORD
        try:
            record = _decoder.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError) as e:
            log.error(f"deployed function in {folder} is unreadable and was skipped: {e}")
            return None
        if record.name != folder.name or not (folder / record.code_file).is_file():
            log.error(f"deployed function in {folder} is inconsistent (name or code file missing); skipped")
            return None
        return record

    def _remove_stale_code(self, record: FunctionRecord) -> None:
        """Older ZIPs of a function (its instances run from their own unpacked copies, not from these)."""
        for path in self.folder(record.name).glob("code-*.zip"):
            if path.name != record.code_file:
                with contextlib.suppress(OSError):
                    path.unlink()
        remove_temporaries(self.folder(record.name))

    # -- writing --------------------------------------------------------------------------------------

    def create(self, record: FunctionRecord, zip_bytes: bytes) -> None:
        """Write a new function whole, or not at all. FileExistsError if it is already there."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.folder(record.name)
        if target.exists():
            raise FileExistsError(target)
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            write_synced(tmp / record.code_file, zip_bytes)
            write_synced(tmp / RECORD, _encoder.encode(record))
            fsync_dir(tmp)  # the two names inside, before the folder's own rename commits it
            rename_durably(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def write_code(self, name: str, code_file: str, zip_bytes: bytes) -> None:
        """Add a new ZIP beside the current one; the record is switched to it by `save`."""
        write_atomically(self.folder(name) / code_file, zip_bytes)

    def save(self, record: FunctionRecord) -> None:
        """Atomically replace a function's record, then drop ZIPs it no longer points at."""
        write_atomically(self.folder(record.name) / RECORD, _encoder.encode(record))
        self._remove_stale_code(record)

    def discard_code(self, name: str, code_file: str) -> None:
        with contextlib.suppress(OSError):
            (self.folder(name) / code_file).unlink()

    def delete(self, name: str) -> None:
        """Remove a function durably (the rename is the commit point), then its files."""
        folder = self.folder(name)
        trash = self.root / f".trash-{uuid.uuid4().hex}"
        rename_durably(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
