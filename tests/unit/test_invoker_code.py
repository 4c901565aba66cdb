"""Safe unzipping and code preparation (router.invoker.code)."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from router.invoker.code import ArchiveError, CodeError, prepare_code, safe_unzip


def make_zip(entries: dict[str, bytes], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = ((modes or {}).get(name, stat.S_IFREG | 0o644)) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def test_unpacks_files_folders_and_exec_bits(tmp_path: Path) -> None:
    data = make_zip(
        {"app.py": b"x = 1\n", "pkg/": b"", "pkg/mod.py": b"y = 2\n", "bootstrap": b"#!/bin/sh\n"},
        {"bootstrap": stat.S_IFREG | 0o4755, "pkg/": stat.S_IFDIR | 0o755},
    )
    names = safe_unzip(data, tmp_path / "out")
    assert sorted(names) == ["app.py", "bootstrap", "pkg/mod.py"]
    assert (tmp_path / "out/pkg/mod.py").read_bytes() == b"y = 2\n"
    mode = (tmp_path / "out/bootstrap").stat().st_mode
    assert mode & 0o111 and not mode & stat.S_ISUID  # executable kept, setuid dropped


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.py", "escapes"),
        ("a/../../evil.py", "escapes"),
        ("/etc/evil", "absolute"),
        ("C:/evil", "absolute"),
        ("..\\evil.py", "escapes"),
    ],
)
def test_rejects_paths_that_escape(tmp_path: Path, name: str, why: str) -> None:
    data = make_zip({"ok.py": b"1", name: b"2"})
    with pytest.raises(ArchiveError, match=why):
        safe_unzip(data, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "evil.py").exists()


def test_rejects_symlinks_before_writing_anything(tmp_path: Path) -> None:
    data = make_zip({"a.py": b"1", "link": b"/etc/passwd"}, {"link": stat.S_IFLNK | 0o777})
    with pytest.raises(ArchiveError, match="symlink"):
        safe_unzip(data, tmp_path / "out")
    assert not (tmp_path / "out" / "a.py").exists()


def test_size_limit_is_checked_before_writing(tmp_path: Path) -> None:
    data = make_zip({"a.bin": b"\0" * 5000, "b.bin": b"\0" * 5000})
    with pytest.raises(ArchiveError, match="more than 8000 bytes"):
        safe_unzip(data, tmp_path / "out", max_bytes=8000)
    assert not (tmp_path / "out").exists()


def test_lying_size_header_cannot_pass_the_limit(tmp_path: Path) -> None:
    data = bytearray(make_zip({"a.bin": b"\0" * 5000}))
    # Patch both the local and the central header's uncompressed size (offsets 22 and 24) to claim 10 bytes.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    with pytest.raises(ArchiveError):
        safe_unzip(bytes(data), tmp_path / "out", max_bytes=1000)
    assert not (tmp_path / "out" / "a.bin").exists()


def test_file_count_limit(tmp_path: Path) -> None:
    data = make_zip({f"f{i}.txt": b"x" for i in range(5)})
    with pytest.raises(ArchiveError, match="5 entries"):
        safe_unzip(data, tmp_path / "out", max_files=4)


def test_not_a_zip_and_non_empty_target(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="not a valid ZIP"):
        safe_unzip(b"not a zip", tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ArchiveError, match="not empty"):
        safe_unzip(make_zip({"a": b"1"}), tmp_path / "full")


def test_prepare_code_uses_a_folder_as_is(tmp_path: Path) -> None:
    assert prepare_code(tmp_path, tmp_path / "cache") == tmp_path.resolve()
    with pytest.raises(CodeError, match="no such file"):
        prepare_code(tmp_path / "missing", tmp_path / "cache")
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(CodeError, match="neither a folder nor a ZIP"):
        prepare_code(tmp_path / "plain.txt", tmp_path / "cache")


def test_prepare_code_unpacks_a_zip_once_by_content(tmp_path: Path) -> None:
    archive = tmp_path / "fn.zip"
    archive.write_bytes(make_zip({"app.py": b"def handler(e, c):\n    return 1\n"}))
    first = prepare_code(archive, tmp_path / "cache")
    assert (first / "app.py").is_file()
    (first / "marker").write_text("kept")  # a second call must reuse the folder, not unpack again
    copy = tmp_path / "same.zip"
    copy.write_bytes(archive.read_bytes())
    assert prepare_code(copy, tmp_path / "cache") == first
    assert (first / "marker").exists()
    archive.write_bytes(make_zip({"app.py": b"changed = True\n"}))
    assert prepare_code(archive, tmp_path / "cache") != first
    leftovers = [p for p in os.listdir(tmp_path / "cache") if p.startswith(".unpack-")]
    assert leftovers == []


def test_prepare_code_leaves_nothing_after_a_bad_zip(tmp_path: Path) -> None:
    archive = tmp_path / "bad.zip"
    archive.write_bytes(make_zip({"../x": b"1"}))
    with pytest.raises(ArchiveError):
        prepare_code(archive, tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []


def test_rejects_two_entries_on_the_same_path(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", b"first")
        zf.writestr("./app.py", b"second")
    with pytest.raises(ArchiveError, match="appears twice"):
        safe_unzip(buf.getvalue(), tmp_path / "out")
