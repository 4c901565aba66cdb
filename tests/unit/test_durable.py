"""Durable writes (router/core/durable.py): whole-or-nothing replacement, modes, leftovers, renames."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from router.core import durable
from router.core.durable import remove_temporaries, rename_durably, temporary_path, write_atomically


def test_write_atomically_replaces_and_creates_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "state.json"
    write_atomically(target, b"one")
    write_atomically(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_a_crash_leftover_is_replaced_with_the_mode_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "mail.eml"
    leftover = temporary_path(target)
    leftover.write_bytes(b"half of an older write")
    leftover.chmod(0o644)
    write_atomically(target, b"private", mode=0o600)
    assert target.read_bytes() == b"private"
    assert target.stat().st_mode & 0o777 == 0o600
    assert not leftover.exists()


def test_a_failed_write_keeps_the_old_content_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    write_atomically(target, b"old")

    def failing_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(durable.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert not temporary_path(target).exists()


def test_remove_temporaries_removes_only_leftover_files(tmp_path: Path) -> None:
    (tmp_path / ".a.json.tmp").write_bytes(b"half")
    (tmp_path / "kept.tmp").write_bytes(b"not hidden: not ours")
    (tmp_path / ".dir.tmp").mkdir()
    (tmp_path / "a.json").write_bytes(b"{}")
    remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dir.tmp", "a.json", "kept.tmp"]


def test_rename_durably_moves_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x")
    (tmp_path / "dst").mkdir()
    rename_durably(tmp_path / "src" / "f", tmp_path / "dst" / "g")
    rename_durably(tmp_path / "dst", tmp_path / "moved")
    assert (tmp_path / "moved" / "g").read_bytes() == b"x"
    assert not (tmp_path / "src" / "f").exists() and not (tmp_path / "dst").exists()
    assert os.listdir(tmp_path / "src") == []
