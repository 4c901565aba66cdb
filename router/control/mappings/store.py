"""Event source mappings created through the API, persisted under `<state_dir>/event-source-mappings/`.

One file per mapping, `<uuid>.json` (a `MappingRecord`). `save` replaces it atomically (write, fsync, rename,
fsync the folder), `delete` removes it and syncs the folder: once a call returns, the change survives
`kill -9` and a power cut. `load()` removes what an interrupted write left (`.*.tmp`) and skips, with a logged
error, a file it cannot read rather than failing the daemon.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec

from router.control.mappings.model import MappingRecord
from router.core.durable import fsync_dir, remove_temporaries, write_atomically

log = logging.getLogger("router.control.mappings")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(MappingRecord)


class MappingStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self) -> dict[str, MappingRecord]:
        self.root.mkdir(parents=True, exist_ok=True)
        remove_temporaries(self.root)
        records: dict[str, MappingRecord] = {}
        for path in sorted(self.root.glob("*.json")):
            try:
                record = _decoder.decode(path.read_bytes())
            except (OSError, msgspec.DecodeError) as e:
                log.error(f"event source mapping {path.name} is unreadable and was skipped: {e}")
                continue
            if f"{record.uuid}.json" != path.name:
                log.error(f"event source mapping {path.name} names another UUID ({record.uuid}); skipped")
                continue
            records[record.uuid] = record
        return records

    def save(self, record: MappingRecord) -> None:
        write_atomically(self.root / f"{record.uuid}.json", _encoder.encode(record))

    def delete(self, uuid: str) -> None:
        (self.root / f"{uuid}.json").unlink(missing_ok=True)
        fsync_dir(self.root)
