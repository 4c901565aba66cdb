"""The stores of published versions, aliases and layers: what survives, what a crash leaves, numbering."""

from __future__ import annotations

from pathlib import Path

from router.control.layer_store import LayerStore, LayerVersionRecord
from router.control.published import Published, PublishedStore, VersionRecord
from router.control.records import AliasRecord
from router.control.store import FunctionRecord


def version(n: int, code_file: str) -> VersionRecord:
    fn = FunctionRecord(name="f", runtime="python3.11", handler="app.handler", code_file=code_file)
    return VersionRecord(version=str(n), function=fn, code_sha256="sha", source_revision=f"r{n}",
                         revision_id=f"id{n}", last_modified=1.0)  # fmt: skip


def test_versions_and_aliases_survive_and_numbers_are_never_reused(tmp_path: Path) -> None:
    store = PublishedStore(tmp_path / "published")
    zip_code = tmp_path / "code.zip"
    zip_code.write_bytes(b"PK zip bytes")
    folder = tmp_path / "folder"
    (folder / "__pycache__").mkdir(parents=True)
    (folder / "app.py").write_text("x = 1\n")
    (folder / "__pycache__" / "app.pyc").write_bytes(b"cache")
    published = Published(last_version=1)
    store.add_version("f", version(1, "v1.zip"), zip_code, published)
    published.last_version = 2
    store.add_version("f", version(2, "v2"), folder, published)
    published.aliases["live"] = AliasRecord(name="live", version="2", weights={"1": 0.1})
    store.save_state("f", published)
    loaded = store.load()["f"]
    assert sorted(loaded.versions) == ["1", "2"] and loaded.last_version == 2
    assert loaded.aliases["live"].weights == {"1": 0.1}
    assert (store.folder("f") / "v1.zip").read_bytes() == b"PK zip bytes"
    assert (store.folder("f") / "v2" / "app.py").is_file() and not (
        store.folder("f") / "v2" / "__pycache__"
    ).exists()

    store.delete_version("f", loaded.versions["2"])
    again = store.load()["f"]
    assert sorted(again.versions) == ["1"] and again.last_version == 2  # 2 is not given out again


def test_load_finishes_what_a_crash_interrupted(tmp_path: Path) -> None:
    store = PublishedStore(tmp_path / "published")
    code = tmp_path / "code.zip"
    code.write_bytes(b"zip")
    store.add_version("f", version(1, "v1.zip"), code, Published(last_version=1))
    folder = store.folder("f")
    (folder / "v2.zip").write_bytes(b"code written, record not")  # crashed before its record
    (folder / ".tmp-abc").mkdir()  # a folder copy that was never renamed
    (folder / "v3.json").write_text("{not json")  # a torn record
    (store.root / ".trash-x").mkdir()  # a deletion's leftover
    (folder / "state.json").unlink()  # crashed before the counter was written
    loaded = store.load()["f"]
    assert sorted(loaded.versions) == ["1"] and loaded.last_version == 1
    assert sorted(p.name for p in folder.iterdir()) == ["v1.json", "v1.zip"]
    assert not (store.root / ".trash-x").exists()


def test_layer_versions_are_numbered_and_deleted_ones_keep_their_zip(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    store.load()
    record = LayerVersionRecord(name="common", version=0, code_sha256="s", code_size=3, created=1.0)
    one = store.publish(record, b"one")
    two = store.publish(record, b"two")
    assert (one.version, two.version) == (1, 2)
    store.delete("common", 1)
    assert store.get("common", 1) is None and store.get("common", 1, deleted=True) is not None
    assert store.zip_path("common", 1).read_bytes() == b"one"
    (store.root / "common" / "v9.zip").write_bytes(b"no record")
    reloaded = LayerStore(tmp_path / "layers")
    reloaded.load()
    assert [r.version for r in reloaded.layers["common"].live()] == [2]
    assert not (store.root / "common" / "v9.zip").exists()
    assert reloaded.publish(record, b"three").version == 3
