"""Published versions and aliases, persisted under `<state_dir>/published/<function>/` (survive `kill -9`).

Layout, one folder per function (deployed through the API or from the config file):

    published/<name>/v<N>.json      a VersionRecord: the function as it was published (immutable)
    published/<name>/v<N>.zip       the version's own copy of the code (a ZIP) ...
    published/<name>/v<N>/          ... or of a code folder (config-file functions)
    published/<name>/state.json     the last version number given out, and the aliases

Versions are numbered 1, 2, ... and a number is never given out twice, even after the version is deleted
(as on Lambda): `state.json` keeps the last one. Crash safety: a version's code is written (ZIP: atomically;
folder: copied into `.tmp-<uuid>` and renamed) before its record, and the record before `state.json`;
`load()` takes the highest of `state.json`'s number and the records found, and removes code no record
names and temporaries. A function's folder is deleted by renaming it away first.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from router.control.records import AliasRecord
from router.control.store import FunctionRecord
from router.core.durable import fsync_dir, remove_temporaries, rename_durably, write_atomically

log = logging.getLogger("router.control.published")

STATE = "state.json"
_RECORD = re.compile(r"^v([0-9]+)\.json\Z")


class VersionRecord(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    function: FunctionRecord  # the snapshot; its code_file is the version's own copy (v<N>.zip or v<N>)
    code_sha256: str
    source_revision: str  # the $LATEST revision it was taken from (publishing it again changes nothing)
    revision_id: str
    last_modified: float
    description: str = ""
    opt_dir: str | None = None  # the merged layer folder it runs with (content-addressed, never changed)


class PublishedState(msgspec.Struct, kw_only=True):
    last_version: int = 0
    aliases: dict[str, AliasRecord] = {}


@dataclass
class Published:
    """One function's versions (by number, in order) and aliases, in memory."""

    last_version: int = 0
    versions: dict[str, VersionRecord] = field(default_factory=dict)
    aliases: dict[str, AliasRecord] = field(default_factory=dict)

    def ordered(self) -> list[VersionRecord]:
        return sorted(self.versions.values(), key=lambda v: int(v.version))


_encoder = msgspec.json.Encoder()
_version_decoder = msgspec.json.Decoder(VersionRecord)
_state_decoder = msgspec.json.Decoder(PublishedState)


class PublishedStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tidy = True  # load() removes what interrupted changes left; False: only reads (front processes)

    def folder(self, name: str) -> Path:
        return self.root / name

    def code_path(self, name: str, record: VersionRecord) -> Path:
        return self.folder(name) / record.function.code_file

    # -- reading --------------------------------------------------------------------------------------

    def load(self) -> dict[str, Published]:
        self.root.mkdir(parents=True, exist_ok=True)
        out: dict[str, Published] = {}
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                if self.tidy:
                    shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_dir():
                out[entry.name] = self._load_one(entry)
        return out

    def _load_one(self, folder: Path) -> Published:
        if self.tidy:
            remove_temporaries(folder)
        published = Published()
        try:
            if (folder / STATE).is_file():
                state = _state_decoder.decode((folder / STATE).read_bytes())
                published.last_version, published.aliases = state.last_version, dict(state.aliases)
        except (OSError, msgspec.DecodeError) as e:
            log.error(f"published state in {folder} is unreadable; aliases skipped: {e}")
        for path in folder.iterdir():
            m = _RECORD.match(path.name)
            if m is None:
                continue
            try:
                record = _version_decoder.decode(path.read_bytes())
            except (OSError, msgspec.DecodeError) as e:
                log.error(f"published version {path} is unreadable and was skipped: {e}")
                continue
            if (folder / record.function.code_file).exists():
                published.versions[record.version] = record
            published.last_version = max(published.last_version, int(record.version))
        if self.tidy:
            self._remove_orphans(folder, published)
        return published

    def _remove_orphans(self, folder: Path, published: Published) -> None:
        wanted = {v.function.code_file for v in published.versions.values()}
        wanted |= {f"v{v}.json" for v in published.versions} | {STATE}
        for path in folder.iterdir():
            if path.name not in wanted:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    # -- writing --------------------------------------------------------------------------------------

    def add_version(self, name: str, record: VersionRecord, code: Path, published: Published) -> None:
        """Copy `code` (a ZIP or a folder) as the version's, then write its record, then the counter."""
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / record.function.code_file
        if code.is_dir():
            tmp = folder / f".tmp-{uuid.uuid4().hex}"
            shutil.copytree(code, tmp, ignore=shutil.ignore_patterns("__pycache__"))
            fsync_dir(tmp)
            rename_durably(tmp, target)
        else:
            write_atomically(target, code.read_bytes())
        write_atomically(folder / f"v{record.version}.json", _encoder.encode(record))
        self.save_state(name, published)

    def save_state(self, name: str, published: Published) -> None:
        state = PublishedState(last_version=published.last_version, aliases=published.aliases)
        self.folder(name).mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder(name) / STATE, _encoder.encode(state))

    def delete_version(self, name: str, record: VersionRecord) -> None:
        folder = self.folder(name)
        (folder / f"v{record.version}.json").unlink(missing_ok=True)
        fsync_dir(folder)  # the record is gone: the version is deleted; its code is only a leftover now
        code = folder / record.function.code_file
        if code.is_dir():
            shutil.rmtree(code, ignore_errors=True)
        else:
            code.unlink(missing_ok=True)

    def delete_all(self, name: str) -> None:
        folder = self.folder(name)
        if not folder.exists():
            return
        trash = self.root / f".trash-{uuid.uuid4().hex}"
        rename_durably(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
