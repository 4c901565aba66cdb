"""The write journal's reader (router/core/writes.py): matching by content, one event per write, expiry."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from router.core.writes import WriteJournal, canonical_attribute, data_digest


def note(folder: Path, pid: int, *docs: dict, partial: str = "") -> None:
    with (folder / f"{pid}.jsonl").open("a") as f:
        for doc in docs:
            f.write(json.dumps({"t": doc.pop("t", "T"), "at": doc.pop("at", 100.0), **doc}) + "\n")
        f.write(partial)


def journal(tmp_path: Path, now: float = 100.0) -> WriteJournal:
    writes = WriteJournal(tmp_path, ttl_s=60, clock=lambda: now)
    writes.folder.mkdir(exist_ok=True)
    return writes


def test_each_kind_matches_by_content_and_once(tmp_path: Path) -> None:
    writes = journal(tmp_path)
    note(
        tmp_path,
        1,
        {"t": "file-trace", "k": "file", "path": str(tmp_path / "out.txt")},
        {"t": "s3-trace", "k": "s3", "bucket": "b", "key": "dir/a b.txt"},
        {"t": "kinesis-trace", "k": "kinesis", "stream": "s", "pk": "k", "sha": data_digest(b"again")},
        {"t": "ddb-trace", "k": "dynamodb", "table": "t", "attrs": {"id": "S:a", "n": "N:1", "x": "S:y"}},
    )
    writes.refresh()
    assert writes.take_file(tmp_path / "other.txt") is None
    assert writes.take_file(tmp_path / "out.txt") == "file-trace"
    assert writes.take_file(tmp_path / "out.txt") is None  # one write, one event
    assert writes.take_s3("b", "dir/a b.txt") == "s3-trace" and writes.take_s3("b", "dir/a b.txt") is None
    assert writes.take_kinesis("s", "k", b"other data") is None  # same key, other content: not ours
    assert writes.take_kinesis("s", "k", b"again") == "kinesis-trace"
    assert writes.take_dynamodb("t", {"id": {"S": "b"}}) is None
    assert writes.take_dynamodb("t", {"id": {"S": "a"}, "n": {"N": "1"}}) == "ddb-trace"


def test_lines_are_read_as_they_are_appended_and_a_half_written_one_waits(tmp_path: Path) -> None:
    writes = journal(tmp_path)
    line = json.dumps({"t": "T2", "at": 100.0, "k": "s3", "bucket": "b", "key": "k2"})
    note(tmp_path, 7, {"k": "s3", "bucket": "b", "key": "k1"}, partial=line[:20])
    writes.refresh()
    assert writes.take_s3("b", "k1") == "T" and writes.take_s3("b", "k2") is None
    with (tmp_path / "7.jsonl").open("a") as f:
        f.write(line[20:] + "\n" + "not json\n")
    writes.refresh()
    assert writes.take_s3("b", "k2") == "T2"


def test_old_writes_are_forgotten_and_old_files_removed(tmp_path: Path) -> None:
    note(tmp_path, 1, {"at": 10.0, "k": "s3", "bucket": "b", "key": "old"})
    note(tmp_path, 2, {"at": 95.0, "k": "s3", "bucket": "b", "key": "new"})
    writes = journal(tmp_path, now=100.0)
    writes.refresh()
    assert writes.take_s3("b", "old") is None and writes.take_s3("b", "new") == "T"
    os.utime(tmp_path / "1.jsonl", (1.0, 1.0))
    writes.refresh()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.jsonl"]


def test_canonical_attributes_agree_between_requests_and_records() -> None:
    raw = b"\x00\x01"
    assert canonical_attribute({"B": base64.b64encode(raw).decode()}) == canonical_attribute({"B": raw})
    assert canonical_attribute({"N": "10"}) == "N:10" and canonical_attribute({"S": "x"}) == "S:x"


def test_reset_removes_the_files_of_a_previous_run(tmp_path: Path) -> None:
    folder = tmp_path / "writes"
    folder.mkdir()
    (folder / "9.jsonl").write_text("{}\n")
    WriteJournal(folder).reset()
    assert list(folder.iterdir()) == []
