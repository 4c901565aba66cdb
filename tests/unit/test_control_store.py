"""The deployed-function store: whole-or-nothing writes, and recovery from interrupted changes at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.control.store import RECORD, FunctionRecord, FunctionStore, new_code_file
from tests.unit.test_control_support import app_zip


def record(name: str = "f1", **kw: object) -> FunctionRecord:
    return FunctionRecord(name=name, runtime="python3.11", handler="app.handler", code_file=new_code_file(),
                          revision_id="r1", **kw)  # type: ignore[arg-type]  # fmt: skip


def test_created_functions_load_back(tmp_path: Path) -> None:
    store = FunctionStore(tmp_path / "functions")
    rec = record(environment={"STAGE": "dev"}, reserved_concurrency=3)
    store.create(rec, app_zip())
    loaded = FunctionStore(tmp_path / "functions").load()
    assert loaded == {"f1": rec}
    assert store.code_path(rec).read_bytes() == app_zip()


def test_create_refuses_an_existing_function(tmp_path: Path) -> None:
    store = FunctionStore(tmp_path / "functions")
    store.create(record(), app_zip())
    with pytest.raises(FileExistsError):
        store.create(record(), app_zip())


def test_a_new_zip_takes_effect_only_when_the_record_is_saved(tmp_path: Path) -> None:
    store = FunctionStore(tmp_path / "functions")
    old = record()
    store.create(old, app_zip(1))
    new_file = new_code_file()
    store.write_code("f1", new_file, app_zip(2))
    # A crash here: the record still points at the old ZIP, and load drops the orphan.
    assert store.load() == {"f1": old}
    assert not (store.folder("f1") / new_file).exists()
    store.write_code("f1", new_file, app_zip(2))
    new = FunctionRecord(**{**{f: getattr(old, f) for f in old.__struct_fields__}, "code_file": new_file})
    store.save(new)
    assert store.load() == {"f1": new}
    assert sorted(p.name for p in store.folder("f1").iterdir()) == sorted([RECORD, new_file])


def test_load_removes_interrupted_creates_and_deletes(tmp_path: Path) -> None:
    root = tmp_path / "functions"
    store = FunctionStore(root)
    store.create(record("keep"), app_zip())
    (root / ".tmp-123").mkdir()
    (root / ".tmp-123" / "code-x.zip").write_bytes(b"half")
    (root / ".trash-456").mkdir()
    assert set(store.load()) == {"keep"}
    assert sorted(p.name for p in root.iterdir()) == ["keep"]


def test_delete_removes_the_function_folder(tmp_path: Path) -> None:
    store = FunctionStore(tmp_path / "functions")
    store.create(record(), app_zip())
    store.delete("f1")
    assert store.load() == {}
    assert list((tmp_path / "functions").iterdir()) == []


def test_unreadable_or_inconsistent_records_are_skipped_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "functions"
    store = FunctionStore(root)
    store.create(record("good"), app_zip())
    (root / "garbled").mkdir()
    (root / "garbled" / RECORD).write_text("{not json")
    store.create(record("nozip"), app_zip())
    for p in store.folder("nozip").glob("code-*.zip"):
        p.unlink()
    assert set(store.load()) == {"good"}
