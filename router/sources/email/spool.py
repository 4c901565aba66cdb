"""The mail spool: where a message lives from the end of DATA until it is queued for its functions.

Contract:

* `put(mail, raw)` stores the raw message and its delivery record durably before it returns: each file is
  written atomically (`router.core.durable.write_atomically`: a temporary name in its final folder, fsync,
  rename into place, fsync of the folder), readable by the router's user only. The raw message goes first,
  the record last: the record's rename is the commit point. The SMTP source answers
  250 only after `put` returned (and the event was queued).
* `pending()` lists the records of messages not yet delivered, oldest first. After a crash (kill -9) these
  are exactly the messages that may have got a 250 without being queued; the source delivers them on start.
* `delivered(id)` removes the record: the message is now in the dispatcher's durable queue. With
  `keep_raw=False` (the raw message was copied to S3) it removes the raw file too. The removal is not
  fsynced; a crash may bring the record back, which means a duplicate delivery, never a lost message.
* `discard(id)` removes both: the message was refused after spooling (the client got a 4xx and will retry).
* A raw file without a record is a message that never got a 250 (crash between the two renames) or one
  already delivered; either way it is not redelivered.

Layout under the source's state folder: `messages/<id>.eml` (raw RFC 5322 bytes, the path the event names
when the store is local) and `pending/<id>.json` (the delivery record). Temporary files (`.<name>.tmp`) are
removed on open. Every method blocks on disk I/O: call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import errno
from pathlib import Path

import msgspec

from router.core.durable import remove_temporaries, write_atomically

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class SpooledMail(msgspec.Struct, frozen=True, kw_only=True):
    """What the SMTP session knew about a message: everything but the bytes, which are in `raw_path`."""

    id: str  # also SES's mail.messageId
    received_at: float  # epoch seconds, end of DATA
    mail_from: str  # envelope sender (MAIL FROM), "" for a bounce
    recipients: list[str]  # accepted envelope recipients (RCPT TO)
    helo: str = ""
    peer: str = ""  # client IP address
    tls: bool = False
    auth_user: str | None = None
    size: int = 0
    raw_path: str = ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SpooledMail)


def is_disk_full(error: OSError) -> bool:
    return error.errno in NO_SPACE


class MailSpool:
    def __init__(self, root: Path, messages_dir: Path | None = None) -> None:
        # Absolute: the event names the raw file by its path, which the function reads from its own cwd.
        self.pending_dir = (root / "pending").absolute()
        self.messages_dir = (messages_dir if messages_dir is not None else root / "messages").absolute()

    def open(self) -> None:
        """Create the folders and remove temporary files left by a crash (they never got a 250)."""
        for folder in (self.pending_dir, self.messages_dir):
            folder.mkdir(parents=True, exist_ok=True)
            remove_temporaries(folder)

    def raw_path(self, mail_id: str) -> Path:
        return self.messages_dir / f"{mail_id}.eml"

    def put(self, mail: SpooledMail, raw: bytes) -> SpooledMail:
        """Store raw bytes and record durably; return the record with `raw_path` filled in."""
        raw_path = self.raw_path(mail.id)
        mail = msgspec.structs.replace(mail, raw_path=str(raw_path), size=len(raw))
        try:
            write_durably(raw_path, raw)
            write_durably(self._record_path(mail.id), _encoder.encode(mail))
        except BaseException:
            raw_path.unlink(missing_ok=True)
            raise
        return mail

    def pending(self) -> list[SpooledMail]:
        """Records not yet delivered, oldest first (ids sort by time). Unreadable records are skipped."""
        out = []
        for path in sorted(self.pending_dir.glob("*.json")):
            try:
                out.append(_decoder.decode(path.read_bytes()))
            except (OSError, msgspec.DecodeError):
                continue  # a record is only visible after its rename, so this is outside damage; keep it
        return out

    def read_raw(self, mail: SpooledMail) -> bytes:
        return Path(mail.raw_path).read_bytes()

    def delivered(self, mail_id: str, *, keep_raw: bool = True) -> None:
        # No folder fsync: a removal lost to a crash only brings the record back, and a redelivered message
        # is a duplicate (allowed), never a loss. It saves a journal commit per message.
        self._record_path(mail_id).unlink(missing_ok=True)
        if not keep_raw:
            self.raw_path(mail_id).unlink(missing_ok=True)

    def discard(self, mail_id: str) -> None:
        self.delivered(mail_id, keep_raw=False)

    def _record_path(self, mail_id: str) -> Path:
        return self.pending_dir / f"{mail_id}.json"


def write_durably(path: Path, data: bytes) -> None:
    """One spool file, atomically and durably; mail is private, so only the router's user may read it."""
    write_atomically(path, data, mode=0o600)
