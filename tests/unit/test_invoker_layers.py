"""Layers as the invoker sees them: merged in order into one folder that stands for /opt, and named in the
environment where Lambda names /opt."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from router.invoker.code import prepare_layers
from router.invoker.launch import environment, zygote_unfit
from router.invoker.types import FunctionSpec


def zip_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def test_later_layers_override_earlier_ones_and_the_merge_is_reused(tmp_path: Path) -> None:
    first = tmp_path / "first.zip"
    first.write_bytes(zip_of({"python/shared.py": "one", "python/only1.py": "1", "bin/tool": "t"}))
    second = tmp_path / "second"
    (second / "python").mkdir(parents=True)
    (second / "python" / "shared.py").write_text("two")
    cache = tmp_path / "cache"
    opt = prepare_layers([first, second], cache)
    assert (opt / "python" / "shared.py").read_text() == "two"
    assert (opt / "python" / "only1.py").read_text() == "1" and (opt / "bin" / "tool").is_file()
    assert prepare_layers([first, second], cache) == opt  # the same content: the same folder
    other = prepare_layers([second, first], cache)
    assert other != opt and (other / "python" / "shared.py").read_text() == "one"
    assert not [p for p in cache.iterdir() if p.name.startswith(".opt-")]  # no staging left behind


def spec(tmp_path: Path, runtime: str, opt: Path | None) -> FunctionSpec:
    return FunctionSpec(name="f", runtime=runtime, handler="app.handler", code_dir=tmp_path, opt_dir=opt)


def test_the_environment_names_the_layer_folder_where_lambda_names_opt(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    (opt / "lib").mkdir(parents=True)
    env = environment(
        spec(tmp_path, "python3.12", opt), runtime_api="x", init_type="on-demand", log_stream="s"
    )
    assert env["PYTHONPATH"] == f"{opt}/python/lib/python3.12/site-packages:{opt}/python"
    assert env["LD_LIBRARY_PATH"] == f"{tmp_path}/lib:{opt}/lib" and f"{opt}/bin" in env["PATH"].split(":")
    node = environment(
        spec(tmp_path, "nodejs20.x", opt), runtime_api="x", init_type="on-demand", log_stream="s"
    )
    assert node["NODE_PATH"].split(":")[:2] == [
        f"{opt}/nodejs/node20/node_modules",
        f"{opt}/nodejs/node_modules",
    ]
    plain = environment(
        spec(tmp_path, "python3.12", None), runtime_api="x", init_type="on-demand", log_stream="s"
    )
    assert "PYTHONPATH" not in plain and plain["LD_LIBRARY_PATH"].endswith(":/opt/lib")
    # A layer's lib folder is read by the dynamic loader at start: no forking from the zygote.
    assert zygote_unfit(spec(tmp_path, "python3.12", opt)) is not None
