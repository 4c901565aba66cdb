"""Lambda layers published through the API, persisted under `<state_dir>/layers/<name>/`.

    layers/<name>/v<N>.zip       the layer version's ZIP, as checked (router.control.uploads)
    layers/<name>/v<N>.json      its LayerVersionRecord
    layers/<name>/state.json     the last version number given out (numbers are never reused)

A layer version is immutable. DeleteLayerVersion marks its record `deleted`: it is no longer listed or
found by Get*, and no function can newly name it, but its ZIP stays, so functions (and published versions)
that already use it keep running, as on Lambda. The ZIP is written before the record, the record before the
counter; `load()` drops ZIPs without a record and temporaries a crash left.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from router.core.durable import remove_temporaries, write_atomically

log = logging.getLogger("router.control.layers")

STATE = "state.json"
_RECORD = re.compile(r"^v([0-9]+)\.json\Z")


class LayerVersionRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    code_sha256: str
    code_size: int
    created: float
    description: str = ""
    compatible_runtimes: list[str] = []
    compatible_architectures: list[str] = []
    license_info: str | None = None
    deleted: bool = False


class LayerState(msgspec.Struct, kw_only=True):
    last_version: int = 0


@dataclass
class Layer:
    last_version: int = 0
    versions: dict[int, LayerVersionRecord] = field(default_factory=dict)

    def live(self) -> list[LayerVersionRecord]:
        """Versions not deleted, newest first (ListLayerVersions' order)."""
        return sorted((v for v in self.versions.values() if not v.deleted), key=lambda v: -v.version)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(LayerVersionRecord)
_state_decoder = msgspec.json.Decoder(LayerState)


class LayerStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tidy = True  # load() removes what interrupted changes left; False: only reads (front processes)
        self.layers: dict[str, Layer] = {}

    def zip_path(self, name: str, version: int) -> Path:
        return self.root / name / f"v{version}.zip"

    def load(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                if self.tidy:
                    shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_dir():
                self.layers[entry.name] = self._load_one(entry)

    def _load_one(self, folder: Path) -> Layer:
        if self.tidy:
            remove_temporaries(folder)
        layer = Layer()
        try:
            if (folder / STATE).is_file():
                layer.last_version = _state_decoder.decode((folder / STATE).read_bytes()).last_version
        except (OSError, msgspec.DecodeError) as e:
            log.error(f"layer state in {folder} is unreadable: {e}")
        for path in folder.iterdir():
            if _RECORD.match(path.name) is None:
                continue
            try:
                record = _decoder.decode(path.read_bytes())
            except (OSError, msgspec.DecodeError) as e:
                log.error(f"layer version {path} is unreadable and was skipped: {e}")
                continue
            if self.zip_path(folder.name, record.version).is_file():
                layer.versions[record.version] = record
            layer.last_version = max(layer.last_version, record.version)
        for path in folder.glob("v*.zip") if self.tidy else ():
            if int(path.stem[1:]) not in layer.versions:
                path.unlink(missing_ok=True)
        return layer

    def get(self, name: str, version: int, *, deleted: bool = False) -> LayerVersionRecord | None:
        layer = self.layers.get(name)
        record = layer.versions.get(version) if layer else None
        return record if record is not None and (deleted or not record.deleted) else None

    def publish(self, record: LayerVersionRecord, zip_bytes: bytes) -> LayerVersionRecord:
        """Store a new version; `record.version` is set here (the next number). Blocking."""
        layer = self.layers.setdefault(record.name, Layer())
        record = msgspec.structs.replace(record, version=layer.last_version + 1)
        folder = self.root / record.name
        write_atomically(self.zip_path(record.name, record.version), zip_bytes)
        write_atomically(folder / f"v{record.version}.json", _encoder.encode(record))
        layer.last_version = record.version
        write_atomically(folder / STATE, _encoder.encode(LayerState(last_version=record.version)))
        layer.versions[record.version] = record
        return record

    def delete(self, name: str, version: int) -> None:
        record = self.get(name, version)
        if record is None:
            return
        record = msgspec.structs.replace(record, deleted=True)
        write_atomically(self.root / name / f"v{version}.json", _encoder.encode(record))
        self.layers[name].versions[version] = record
