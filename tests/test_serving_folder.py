"""An exported model folder is untrusted input (anyone who can write a shared folder
writes its manifest): the manifest must name a model file inside the folder, never
``..``, an absolute path or a link out of it, and a bad manifest is a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlops.errors import ValidationError
from jupyter_mlops.serving.export import export_model
from jupyter_mlops.serving.model import EXPORT_MANIFEST, load_directory

from .serving_helpers import register_churn

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(store_dir, tmp_path):
    """An exported model folder (``model/`` of a docker export) and its model file."""
    register_churn(1)
    model_dir = export_model("churn@production", "docker", tmp_path / "export") / "model"
    return model_dir


def _manifest(folder: Path) -> dict:
    return json.loads((folder / EXPORT_MANIFEST).read_text())


def _write(folder: Path, manifest: dict) -> None:
    (folder / EXPORT_MANIFEST).write_text(json.dumps(manifest))


def test_a_manifest_cannot_point_outside_its_folder(folder, tmp_path):
    assert load_directory(folder).ref == "churn@1"  # the export as written loads
    manifest = _manifest(folder)
    inside = folder / manifest["model_file"]
    # the same (hash-valid) model file outside the folder, where a crafted manifest points
    outside = tmp_path / "elsewhere" / "model.skops"
    outside.parent.mkdir()
    outside.write_bytes(inside.read_bytes())
    before = {p: p.read_bytes() for p in (folder.rglob("*"))}
    for model_file in [
        "../../elsewhere/model.skops",
        str(outside),
        "sub/../../../elsewhere/model.skops",
        "..",
        "",
        "..\\elsewhere\\model.skops",
    ]:
        _write(folder, {**manifest, "model_file": model_file})
        with pytest.raises(ValidationError) as info:
            load_directory(folder)
        text = str(info.value)
        assert "model_file" in text and "inside" in text and EXPORT_MANIFEST in text, text
        assert "Export the model again" in text
    # a link named like the model file but leading out of the folder is refused too
    _write(folder, manifest)
    inside.unlink()
    os.symlink(outside, inside)
    with pytest.raises(ValidationError, match="inside"):
        load_directory(folder)
    inside.unlink()
    (folder / manifest["model_file"]).write_bytes(outside.read_bytes())
    # nothing in the folder was changed by refusing, and the real manifest still loads
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.name != EXPORT_MANIFEST} == {
        p: b for p, b in before.items() if p.name != EXPORT_MANIFEST
    }
    assert load_directory(folder).ref == "churn@1"


def test_a_malformed_manifest_says_what_is_wrong(folder):
    manifest = _manifest(folder)
    for broken, words in [
        ("{not json", ["not valid JSON"]),
        (json.dumps([1, 2]), ["JSON object"]),
        (json.dumps({k: v for k, v in manifest.items() if k != "object_hash"}), ["object_hash"]),
        (json.dumps({**manifest, "model_file": 7}), ["model_file"]),
        (json.dumps({**manifest, "version": "one"}), ["version 'one'"]),
        (json.dumps({**manifest, "signature": [1]}), ["signature"]),
    ]:
        (folder / EXPORT_MANIFEST).write_text(broken)
        with pytest.raises(ValidationError) as info:
            load_directory(folder)
        for word in words:
            assert word in str(info.value), (word, str(info.value))


def test_serving_a_crafted_folder_stops_with_the_error(folder, tmp_path):
    """What a container runs (``python -m jupyter_mlops.serving /app/model``) refuses it."""
    manifest = _manifest(folder)
    _write(folder, {**manifest, "model_file": "../../elsewhere/model.skops"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(PYTHONPATH=str(REPO), MLOPS_HOME=str(tmp_path / "container-store"))
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.serving", str(folder), "--no-log"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode != 0
    assert "model_file" in done.stderr and "inside" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
