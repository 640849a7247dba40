"""Model bundles: the card is required, every file is checked against its sha256."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest
from factories.model_bundle import write_bundle

from cspine_desktop.errors import ModelBundleError
from cspine_desktop.inference import load_bundle, resources, sha256_of


def test_a_complete_bundle_loads_and_its_file_verifies(bundle, onnx_bytes):
    f = bundle.find("onnx", "fp32")
    assert f is not None and f.name == "model.onnx"
    assert bundle.verified_path(f).read_bytes() == onnx_bytes
    assert bundle.input_shape == (64, 64, 4)
    assert set(bundle.thresholds) == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "patient_overall"}


def test_a_bundle_without_card_is_refused(bundle_dir):
    (bundle_dir / "model_card.json").unlink()
    with pytest.raises(ModelBundleError, match=r"no model_card\.json"):
        load_bundle(bundle_dir)


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(ModelBundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("thresholds"), "no 'thresholds'"),
        (lambda c: c["thresholds"].pop("C5"), "thresholds lack C5"),
        (lambda c: c.update(files={}), "no model files"),
        (lambda c: c["files"]["model.onnx"].pop("sha256"), "lacks format or sha256"),
        (lambda c: c.update(files={"../x.onnx": {"format": "onnx", "sha256": "0"}}), "outside"),
        (lambda c: c.pop("preprocessing"), "no 'preprocessing'"),
    ],
)
def test_an_incomplete_card_is_refused_with_the_reason(bundle_dir, change, message):
    path = bundle_dir / "model_card.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))
    with pytest.raises(ModelBundleError, match=message):
        load_bundle(bundle_dir)


def test_an_unreadable_card_is_refused(bundle_dir):
    (bundle_dir / "model_card.json").write_text("{not json")
    with pytest.raises(ModelBundleError, match="unreadable"):
        load_bundle(bundle_dir)


def test_a_changed_model_file_is_refused(bundle_dir):
    (bundle_dir / "model.onnx").write_bytes(b"tampered")
    bundle = load_bundle(bundle_dir)
    with pytest.raises(ModelBundleError, match="does not match its model card"):
        bundle.verified_path(bundle.find("onnx"))


def test_a_listed_file_that_is_missing_is_refused(bundle_dir):
    (bundle_dir / "model.onnx").unlink()
    bundle = load_bundle(bundle_dir)
    with pytest.raises(ModelBundleError, match="missing"):
        bundle.verified_path(bundle.find("onnx"))


def test_folder_digest_covers_names_and_bytes(tmp_path):
    d = tmp_path / "saved"
    (d / "variables").mkdir(parents=True)
    (d / "saved_model.pb").write_bytes(b"graph")
    (d / "variables" / "v.data").write_bytes(b"weights")
    first = sha256_of(d)
    (d / "variables" / "v.data").write_bytes(b"weightz")
    assert sha256_of(d) != first
    single = tmp_path / "f.bin"
    single.write_bytes(b"abc")
    assert sha256_of(single) == hashlib.sha256(b"abc").hexdigest()


def test_savedmodel_folder_entries_verify(tmp_path):
    saved = tmp_path / "src"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"graph")
    folder = tmp_path / "bundle"
    write_bundle(folder, {"model.onnx": b"x"})
    import shutil

    shutil.copytree(saved, folder / "savedmodel")
    card = json.loads((folder / "model_card.json").read_text())
    card["files"]["savedmodel"] = {
        "format": "savedmodel",
        "precision": "fp32",
        "sha256": sha256_of(folder / "savedmodel"),
    }
    (folder / "model_card.json").write_text(json.dumps(card))
    bundle = load_bundle(folder)
    assert bundle.verified_path(bundle.find("savedmodel")).is_dir()


def test_assets_are_found_in_a_pyinstaller_bundle(monkeypatch, tmp_path):
    monkeypatch.delenv("CSPINE_ASSETS_DIR", raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.assets_dir() == tmp_path / "assets"
    assert resources.demo_model_dir() == tmp_path / "assets" / "models" / "cspine-demo"


def test_assets_dir_in_a_checkout_is_next_to_the_package(monkeypatch):
    monkeypatch.delenv("CSPINE_ASSETS_DIR", raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    import cspine_desktop

    root = resources.assets_dir().parent
    assert (root / "cspine_desktop" / "__init__.py").samefile(cspine_desktop.__file__)
