"""Function code from a folder or a ZIP file, unpacked safely.

* `safe_unzip(archive, target, *, max_bytes=250 MB, max_files=20000)` unpacks a ZIP (a path, bytes or a
  binary file) into `target`, which must not exist yet or be empty. Every entry is checked BEFORE anything is
  written: no absolute path, no drive letter, no `..` component, no symlink or other special file, no two
  entries on one path, declared unpacked total within `max_bytes`, entry count within `max_files`. The
  bytes written are counted again while unpacking (a lying header cannot get past the limit). Unix
  permission bits are kept (without setuid/setgid/sticky) so a `provided` function's `bootstrap` stays
  executable, and every file is made readable by all (an isolated function runs under a uid of its own).
  Any problem raises `ArchiveError`, whose message names the archive and the culprit entry; nothing is
  left in `target` after a failure.
* `prepare_code(code, cache_dir)` gives the folder an instance runs in: a folder is used as is; a ZIP is
  unpacked once into `cache_dir/<sha256 of the ZIP>`, atomically (unpacked beside it, then renamed), so two
  routers or two revisions with the same ZIP share it and a crash never leaves a half-unpacked folder behind.
* `prepare_layers(layers, cache_dir)` gives the folder that stands for a function's /opt: its layers (folders
  or ZIPs) merged in order into `cache_dir/opt-<key>`, later layers overwriting earlier ones.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from router.core.errors import RouterError

MAX_UNPACKED_BYTES = 250 * 1024 * 1024  # Lambda's limit for an unzipped deployment package
MAX_FILES = 20000


class CodeError(RouterError):
    """The code of a function cannot be used (missing, not a folder or a ZIP)."""


class ArchiveError(CodeError):
    """A ZIP is unsafe or broken; nothing was written."""


def _check_name(info: zipfile.ZipInfo, label: str) -> PurePosixPath:
    name = info.filename.replace("\\", "/")
    if "\x00" in name:
        raise ArchiveError(f"{label}: entry {info.filename!r} has a NUL byte in its name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{label}: entry {info.filename!r} is an absolute path")
    path = PurePosixPath(name)
    if any(part == ".." for part in path.parts):
        raise ArchiveError(f"{label}: entry {info.filename!r} escapes the target folder")
    mode = info.external_attr >> 16
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        kind = "a symlink" if stat.S_ISLNK(mode) else "a special file"
        raise ArchiveError(f"{label}: entry {info.filename!r} is {kind}")
    return path


def _plan(
    zf: zipfile.ZipFile, label: str, max_bytes: int, max_files: int
) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = zf.infolist()
    if len(infos) > max_files:
        raise ArchiveError(f"{label}: {len(infos)} entries, more than the limit of {max_files}")
    total = 0
    plan = []
    seen: set[str] = set()
    for info in infos:
        path = _check_name(info, label)
        if path.parts and path.as_posix() in seen:
            raise ArchiveError(f"{label}: entry {info.filename!r} appears twice")
        seen.add(path.as_posix())
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{label}: entry {info.filename!r} is encrypted")
        total += info.file_size
        if total > max_bytes:
            raise ArchiveError(f"{label}: unpacks to more than {max_bytes} bytes (limit)")
        if path.parts:
            plan.append((info, path))
    return plan


def _open(archive: Path | bytes | BinaryIO) -> tuple[zipfile.ZipFile, str]:
    label = str(archive) if isinstance(archive, Path | str) else "archive"
    source: Path | BinaryIO = io.BytesIO(archive) if isinstance(archive, bytes) else archive
    try:
        return zipfile.ZipFile(source), label
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ArchiveError(f"{label}: not a valid ZIP file: {e}") from None


def _write(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: int, label: str) -> int:
    mode = (info.external_attr >> 16) & 0o777 or 0o644
    written = 0
    with zf.open(info) as src, open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > budget:
                raise ArchiveError(f"{label}: entry {info.filename!r} unpacks past the size limit")
            out.write(chunk)
    # Readable by all: an isolated function runs under a uid of its own (other functions cannot see this
    # folder at all: router/invoker/isolation.py). Lambda refuses to run a 0600 file; we do not.
    os.chmod(dest, (mode | 0o644) & 0o777)
    return written


def safe_unzip(
    archive: Path | bytes | BinaryIO,
    target: Path,
    *,
    max_bytes: int = MAX_UNPACKED_BYTES,
    max_files: int = MAX_FILES,
) -> list[str]:
    """Unpack `archive` into `target` safely; returns the names of the files written. Raises ArchiveError."""
    zf, label = _open(archive)
    with zf:
        plan = _plan(zf, label, max_bytes, max_files)
        if target.exists() and any(target.iterdir()):
            raise ArchiveError(f"{label}: target folder {target} is not empty")
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        written, names = 0, []
        try:
            for info, path in plan:
                dest = root.joinpath(*path.parts)
                if info.is_dir() or info.filename.endswith(("/", "\\")):
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                written += _write(zf, info, dest, max_bytes - written, label)
                names.append(path.as_posix())
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as e:
            _empty(target)
            raise ArchiveError(f"{label}: cannot unpack: {e}") from None
        except ArchiveError:
            _empty(target)
            raise
        return names


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def prepare_code(code: Path, cache_dir: Path, *, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """The folder to run `code` from: itself if a folder, else the ZIP unpacked (once) under cache_dir."""
    code = Path(code)
    if code.is_dir():
        return code.resolve()
    if not code.is_file():
        raise CodeError(f"{code}: no such file or folder")
    if not zipfile.is_zipfile(code):
        raise CodeError(f"{code}: neither a folder nor a ZIP file")
    target = Path(cache_dir) / _digest(code)
    if target.is_dir():
        return target.resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache_dir))
    try:
        safe_unzip(code, staging, max_bytes=max_bytes)
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # anything but "someone else unpacked it first" is a real failure
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target.resolve()


def _folder_key(folder: Path) -> str:
    """A cheap identity of a folder's contents: every file's path, size and modification time."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def prepare_layers(layers: list[Path], cache_dir: Path) -> Path:
    """The folder that stands for /opt: every layer (a folder or a ZIP) unpacked and copied into one, in
    order, later layers overwriting files of earlier ones (Lambda's layer merge). Built once per content
    under `cache_dir/opt-<key>`, atomically like `prepare_code`; instances only read it."""
    folders = [prepare_code(layer, cache_dir) for layer in layers]
    key = hashlib.sha256("\n".join(f"{f}\0{_folder_key(f)}" for f in folders).encode()).hexdigest()[:32]
    target = Path(cache_dir) / f"opt-{key}"
    if target.is_dir():
        return target.resolve()
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".opt-", dir=cache_dir))
    try:
        total = 0
        for folder in folders:
            total += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            if total > MAX_UNPACKED_BYTES:
                raise CodeError(f"layers unpack to more than {MAX_UNPACKED_BYTES} bytes (Lambda's limit)")
            shutil.copytree(folder, staging, dirs_exist_ok=True, symlinks=True)
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target.resolve()
