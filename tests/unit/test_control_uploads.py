"""Uploaded ZIPs are checked in memory: malicious entries and bombs are refused before anything is written."""

from __future__ import annotations

import stat

import pytest

from router.control.uploads import MB, UnsafeZip, ZipLimits, check_zip
from tests.unit.test_control_support import (
    absolute_zip,
    app_zip,
    bomb_zip,
    lying_bomb_zip,
    make_zip,
    symlink_zip,
    traversal_zip,
)


def test_a_plain_package_passes_with_its_summary() -> None:
    summary = check_zip(make_zip({"app.py": "x = 1\n", "lib/util.py": "y = 2\n", "lib/": ""}))
    assert summary.files == 2
    assert summary.names == frozenset({"app.py", "lib/util.py"})
    assert summary.unzipped_bytes == len("x = 1\n") + len("y = 2\n")


@pytest.mark.parametrize(
    ("archive", "needle"),
    [
        (traversal_zip("../../escaped.py"), "path traversal"),
        (traversal_zip("lib/../../escaped.py"), "path traversal"),
        (traversal_zip("..\\..\\escaped.py"), "path traversal"),
        (absolute_zip("/tmp/escaped.py"), "absolute path"),
        (absolute_zip("C:\\escaped.py"), "absolute path"),
        (symlink_zip("/etc/passwd"), "symbolic link"),
        (make_zip({"fifo": ""}, modes={"fifo": stat.S_IFIFO | 0o644}), "FIFO"),
        (make_zip({"app.py": "a", "./app.py": "b"}), "appears twice"),
        (b"PK\x03\x04 not really a zip", "Could not unzip uploaded file"),
        (b"", "Could not unzip uploaded file"),
    ],
)
def test_malicious_or_broken_packages_are_refused_naming_the_entry(archive: bytes, needle: str) -> None:
    with pytest.raises(UnsafeZip, match=needle.replace("\\", "\\\\").replace("(", "\\(")):
        check_zip(archive)


def test_too_many_files_are_refused() -> None:
    archive = make_zip({f"f{i}.py": "" for i in range(11)})
    with pytest.raises(UnsafeZip, match="11 entries"):
        check_zip(archive, ZipLimits(max_files=10))


def test_an_honest_bomb_is_refused_by_its_declared_size() -> None:
    with pytest.raises(UnsafeZip, match="Unzipped size must be smaller than 2097152 bytes"):
        check_zip(bomb_zip(unpacked_mb=3), ZipLimits(max_unzipped=2 * MB))


def test_a_bomb_that_lies_about_its_size_is_caught_while_inflating() -> None:
    # Headers claim 10 bytes; inflating stops there and the CRC of what was read does not match.
    archive = lying_bomb_zip(real_mb=4, declared=10)
    with pytest.raises(UnsafeZip, match=r"Bad CRC-32 for file 'zeros\.bin'"):
        check_zip(archive, ZipLimits(max_unzipped=2 * MB))


def test_the_zipped_size_limit_applies_before_opening() -> None:
    with pytest.raises(UnsafeZip, match="Zipped size must be smaller than 100 bytes"):
        check_zip(app_zip(), ZipLimits(max_zipped=100))
