"""The mail spool: durable put, pending after a crash, delivered and discarded records."""

from __future__ import annotations

from pathlib import Path

from router.sources.email.spool import MailSpool, SpooledMail, write_durably


def mail(mail_id: str) -> SpooledMail:
    return SpooledMail(id=mail_id, received_at=1.0, mail_from="a@x.test", recipients=["b@example.test"])


def test_put_then_pending_survives_a_new_spool_object(tmp_path: Path) -> None:
    spool = MailSpool(tmp_path)
    spool.open()
    stored = spool.put(mail("0002"), b"raw two\r\n")
    spool.put(mail("0001"), b"raw one\r\n")
    assert stored.raw_path == str(tmp_path / "messages" / "0002.eml") and stored.size == 9

    reopened = MailSpool(tmp_path)  # what a restarted router sees
    reopened.open()
    pending = reopened.pending()
    assert [m.id for m in pending] == ["0001", "0002"]
    assert reopened.read_raw(pending[1]) == b"raw two\r\n"
    assert pending[1].recipients == ["b@example.test"]


def test_delivered_keeps_or_drops_the_raw_file(tmp_path: Path) -> None:
    spool = MailSpool(tmp_path)
    spool.open()
    spool.put(mail("a"), b"A")
    spool.put(mail("b"), b"B")
    spool.delivered("a", keep_raw=True)
    spool.delivered("b", keep_raw=False)
    assert spool.pending() == []
    assert (tmp_path / "messages" / "a.eml").read_bytes() == b"A"
    assert not (tmp_path / "messages" / "b.eml").exists()


def test_discard_removes_both(tmp_path: Path) -> None:
    spool = MailSpool(tmp_path)
    spool.open()
    spool.put(mail("a"), b"A")
    spool.discard("a")
    assert spool.pending() == [] and list((tmp_path / "messages").iterdir()) == []


def test_leftover_temporary_files_are_removed_and_not_delivered(tmp_path: Path) -> None:
    spool = MailSpool(tmp_path)
    spool.open()
    (tmp_path / "pending" / ".x.json.tmp").write_bytes(b"{half")
    (tmp_path / "messages" / ".x.eml.tmp").write_bytes(b"half")
    spool.open()
    assert spool.pending() == []
    assert list((tmp_path / "pending").iterdir()) == [] and list((tmp_path / "messages").iterdir()) == []


def test_a_raw_file_without_record_is_not_pending(tmp_path: Path) -> None:
    # A crash between the two renames: the client never got 250, so the message is not redelivered.
    spool = MailSpool(tmp_path)
    spool.open()
    write_durably(spool.raw_path("orphan"), b"raw")
    assert spool.pending() == []


def test_separate_messages_folder(tmp_path: Path) -> None:
    spool = MailSpool(tmp_path / "state", tmp_path / "mailbox")
    spool.open()
    stored = spool.put(mail("a"), b"A")
    assert Path(stored.raw_path).parent == tmp_path / "mailbox"
    assert [m.id for m in spool.pending()] == ["a"]


def test_spooled_files_are_private(tmp_path: Path) -> None:
    spool = MailSpool(tmp_path)
    spool.open()
    stored = spool.put(mail("a"), b"A")
    assert Path(stored.raw_path).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "pending" / "a.json").stat().st_mode & 0o777 == 0o600
