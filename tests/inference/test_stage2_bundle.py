"""A two-stage bundle: the stage-2 files never pose as stage-1 candidates, the classifier is
opened beside whichever engine runs stage 1 (int8 on the CPU when shipped), and a damaged
classifier file is refused rather than silently skipped."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factories.model_bundle import classifier_onnx, threshold_onnx, write_bundle
from gate_records import record_gate

from cspine_desktop.errors import ModelBundleError
from cspine_desktop.inference import candidates, load_bundle, open_engine

STAGE2 = {"crops": {"size": 32, "map_stride": 8}, "top_k": 2, "plane_stride": 2}


def _two_stage(folder, int8: bool = True):
    files = {"model.onnx": threshold_onnx(), "classifier.onnx": classifier_onnx()}
    if int8:
        files["classifier.int8.onnx"] = classifier_onnx()
    path = write_bundle(folder, files, card={"stage2": STAGE2})
    card = json.loads((path / "model_card.json").read_text())
    for name in ("classifier.onnx", "classifier.int8.onnx"):
        if name in card["files"]:
            card["files"][name]["stage"] = 2
    (path / "model_card.json").write_text(json.dumps(card))
    if int8:  # an exported int8 classifier passed its gate, and the card says so
        record_gate(path, "classifier.int8.onnx", "onnx-int8", passed=True)
    return load_bundle(path)


def test_stage2_files_are_not_stage1_candidates(tmp_path):
    bundle = _two_stage(tmp_path)
    assert [f.name for f in bundle.files] == ["model.onnx"]
    assert {f.name for f in bundle.classifier_files} == {"classifier.onnx", "classifier.int8.onnx"}
    found = candidates(bundle, "auto", None)
    assert {c.key for c in found} >= {"onnx-fp32", "openvino-fp32"}
    assert {c.sha256 for c in found} == {bundle.files[0].sha256}
    assert bundle.classifier_input_shape == (32, 32, 4)


def test_classifier_opens_beside_stage1_int8_on_the_cpu(tmp_path):
    engine = open_engine(_two_stage(tmp_path), "onnx", None, measure=False)
    clf = engine.classifier
    assert clf is not None and clf.precision == "int8" and clf.label == "onnx-cpu-int8"
    x = np.zeros((3, 32, 32, 4), np.float32)
    x[..., 3] = 1.0
    out = clf.predict(x)
    assert out["fracture"].shape == (3, 1)
    assert out["fracture_map"].shape == (3, 4, 4, 1)
    assert np.allclose(out["fracture_map"], 1.0)


def test_fp32_classifier_when_no_int8_and_none_without_stage2(tmp_path):
    engine = open_engine(_two_stage(tmp_path / "a", int8=False), "onnx", None, measure=False)
    assert engine.classifier.precision == "fp32"
    one = load_bundle(write_bundle(tmp_path / "b", {"model.onnx": threshold_onnx()}))
    assert open_engine(one, "onnx", None, measure=False).classifier is None


def test_a_damaged_classifier_is_refused(tmp_path):
    bundle = _two_stage(tmp_path)
    (bundle.path / "classifier.int8.onnx").write_bytes(b"not the file the card lists")
    with pytest.raises(ModelBundleError, match="does not match"):
        open_engine(bundle, "onnx", None, measure=False)
