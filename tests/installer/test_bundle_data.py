"""The spec's data list and the app's run-time resource lookup agree.

The bundle is simulated: every (source, destination) of ``bundle_data.asset_files`` is copied
under a fake ``sys._MEIPASS``, and the app's own lookup (``inference.resources``) must find and
open everything there: the model card, the model files it can run, the demo study and its truth.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import bundle_data as bd
import pytest
from installer_support import INSTALLER, ROOT

from cspine_desktop.inference import load_bundle, open_engine, resources
from cspine_desktop.inference.backends import keras_tf


@pytest.fixture
def frozen_root(tmp_path, assets, monkeypatch):
    """A fake one-folder bundle holding exactly the spec's asset list; sys._MEIPASS → it."""
    root = tmp_path / "_internal"
    for src, dest in bd.asset_files(assets):
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    monkeypatch.delenv("CSPINE_ASSETS_DIR", raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(root), raising=False)
    return root


def test_lookup_points_into_the_bundled_assets_folder(frozen_root):
    assert resources.assets_dir() == frozen_root / bd.ASSETS


def test_every_path_the_app_opens_is_in_the_bundle(frozen_root, assets):
    shipped = bd.bundle_paths(assets)
    bundle = load_bundle(resources.demo_model_dir())
    opened = [
        resources.demo_model_dir() / bd.CARD_NAME,
        resources.demo_study_path(),
        resources.demo_truth_path(),
        *(bundle.file_path(f) for f in bundle.files if f.format not in bd.TF_ONLY_FORMATS),
    ]
    for path in opened:
        rel = path.relative_to(frozen_root).as_posix()
        assert rel in shipped, f"{rel} is opened at run time but not in the bundle's data list"
        assert path.is_file()


def test_the_bundled_model_verifies_and_runs_without_tensorflow(frozen_root, monkeypatch):
    monkeypatch.setattr(keras_tf, "is_available", lambda: False)  # as in the CPU bundle
    bundle = load_bundle(resources.demo_model_dir())
    engine = open_engine(bundle, "auto", None, measure=False)
    assert engine.name == "onnx"
    assert bundle.verified_path(bundle.find("onnx")).is_file()


def test_tensorflow_only_files_and_litter_are_left_out(assets):
    shipped = bd.bundle_paths(assets)
    assert "assets/models/cspine-demo/model.onnx" in shipped
    assert "assets/models/cspine-demo/model.keras" not in shipped
    assert "assets/models/cspine-demo/.gitkeep" not in shipped
    assert "assets/models/cspine-demo/model.onnx.opt.onnx" not in shipped  # not in the card
    assert "assets/models/no-card/model.onnx" in shipped
    assert {"assets/icons/cspine.png", "assets/icons/cspine.svg", "assets/icons/cspine.ico"} <= (
        shipped
    )


def test_pyinstaller_datas_name_destination_folders(assets):
    for src, dest_dir in bd.pyinstaller_datas(assets):
        assert Path(src).is_file()
        assert (Path(dest_dir) / Path(src).name).as_posix() in bd.bundle_paths(assets)


def test_repository_assets_are_all_shipped():
    """Whatever is under the repository's assets/ now (model cards, model files, demo study,
    icons) is in the data list, minus TensorFlow-only model files."""
    assets = ROOT / "assets"
    shipped = bd.bundle_paths(assets)
    for name in ("cspine.png", "cspine.svg", "cspine.ico"):
        assert f"assets/icons/{name}" in shipped
    for card in assets.glob("models/*/" + bd.CARD_NAME):
        bundle = load_bundle(card.parent)
        rel_dir = card.parent.relative_to(ROOT).as_posix()
        assert f"{rel_dir}/{bd.CARD_NAME}" in shipped
        files = (*bundle.files, *bundle.classifier_files)  # both stages ship
        for f in files:
            assert (f"{rel_dir}/{f.name}" in shipped) == (f.format not in bd.TF_ONLY_FORMATS)
        listed = {f"{rel_dir}/{f.name}" for f in files} | {f"{rel_dir}/{bd.CARD_NAME}"}
        assert {p for p in shipped if p.startswith(rel_dir + "/")} <= listed


def test_spec_takes_its_lists_from_bundle_data():
    spec = (INSTALLER / "cspine.spec").read_text(encoding="utf-8")
    for name in ("pyinstaller_datas", "EXCLUDES", "COPY_METADATA", "HIDDEN_IMPORTS", "GPU_MODULES"):
        assert re.search(rf"\bbd\.{name}\b", spec), f"cspine.spec does not use bd.{name}"
    assert '"cspine_entry.py"' in spec and (INSTALLER / "cspine_entry.py").is_file()
    assert {"tensorflow", "keras", "model_training", "tf2onnx"} <= set(bd.EXCLUDES)


def test_the_app_imports_without_the_excluded_modules(tmp_path):
    """Every cspine_desktop module imports with the excluded modules made unimportable, as in
    the bundle (a top-level import of one of them would break the installed app)."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        f"BLOCKED = {sorted(set(bd.EXCLUDES) | set(bd.GPU_MODULES))!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is not in the bundle')\n"
        "sys.meta_path.insert(0, Block())\n",
        encoding="utf-8",
    )
    code = (
        "import importlib, pkgutil, sys, cspine_desktop as pkg\n"
        "names = [m.name for m in pkgutil.walk_packages(pkg.__path__, 'cspine_desktop.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print(len(names))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "QT_QPA_PLATFORM": "offscreen",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) > 50
