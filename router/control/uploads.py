"""Checks of an uploaded deployment package (Code.ZipFile), done in memory before anything is written.

`check_zip(data)` refuses, with a message naming the entry, a ZIP that:

* is not a ZIP, or is over `max_zipped` bytes (Lambda: 50 MB for a direct upload);
* has an entry with an absolute path (`/etc/x`, `C:\\x`, `\\\\server\\x`), a `..` component, a NUL byte,
  or two entries that land on the same path;
* has an entry that is a symbolic link or any other special file (device, FIFO, socket): only regular
  files and folders are unpacked;
* has more than `max_files` entries, or unpacks to more than `max_unzipped` bytes (Lambda: 250 MB). The
  size is measured by really inflating every entry, chunk by chunk, stopping as soon as the limit is
  passed, so a zip bomb whose headers lie about its sizes is caught too, and a corrupt entry (bad CRC)
  is refused.

The raised `UnsafeZip` is a ValueError; the control plane answers it with InvalidParameterValueException
("Could not unzip uploaded file..." for a broken ZIP, as Lambda says). Unpacking itself is the invoker's
(`router.invoker.code.prepare_code`), which checks again as it writes.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import PurePosixPath

import msgspec

MB = 1024 * 1024


class ZipLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_zipped: int = 50 * MB
    max_unzipped: int = 250 * MB
    max_files: int = 20_000


class ZipSummary(msgspec.Struct, frozen=True, kw_only=True):
    files: int
    unzipped_bytes: int
    names: frozenset[str]


class UnsafeZip(ValueError):
    """The upload is refused; the message says which entry and why."""


BROKEN = "Could not unzip uploaded file. Please check your file, then try to upload again."
_SPECIAL = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


def entry_problem(name: str, external_attr: int) -> str | None:
    """Why one entry may not be unpacked, or None."""
    if "\0" in name:
        return "has a NUL byte in its name"
    path = name.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(path).parts:
        return "has a '..' component (path traversal)"
    kind = _SPECIAL.get(stat.S_IFMT(external_attr >> 16))
    if kind is not None:
        return f"is {kind}; only regular files and folders are allowed"
    return None


def check_zip(data: bytes, limits: ZipLimits | None = None) -> ZipSummary:
    """Check an upload without writing anything. Raises UnsafeZip."""
    limits = limits or ZipLimits()
    if len(data) > limits.max_zipped:
        raise UnsafeZip(f"Zipped size must be smaller than {limits.max_zipped} bytes (got {len(data)})")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise UnsafeZip(f"{BROKEN} ({e})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_files:
            raise UnsafeZip(f"The ZIP has {len(infos)} entries, more than the limit of {limits.max_files}")
        seen: set[str] = set()
        for info in infos:
            problem = entry_problem(info.filename, info.external_attr)
            if problem:
                raise UnsafeZip(f"ZIP entry {info.filename!r} {problem}")
            normal = str(PurePosixPath(info.filename.replace("\\", "/")))
            if normal in seen and not info.is_dir():
                raise UnsafeZip(f"ZIP entry {info.filename!r} appears twice")
            seen.add(normal)
        total = _inflate_all(archive, infos, limits.max_unzipped)
    files = {str(PurePosixPath(i.filename)) for i in infos if not i.is_dir()}
    return ZipSummary(files=len(files), unzipped_bytes=total, names=frozenset(files))


def _inflate_all(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], limit: int) -> int:
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        if total + info.file_size > limit:
            raise UnsafeZip(f"Unzipped size must be smaller than {limit} bytes")
        try:
            with archive.open(info) as f:
                while chunk := f.read(MB):
                    total += len(chunk)
                    if total > limit:
                        raise UnsafeZip(f"Unzipped size must be smaller than {limit} bytes")
        except UnsafeZip:
            raise
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as e:
            # RuntimeError: encrypted entry; NotImplementedError: unsupported compression.
            raise UnsafeZip(f"{BROKEN} (entry {info.filename!r}: {e})") from None
    return total
