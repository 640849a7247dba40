"""The real architecture (untrained, 64 px) through cspine-export and the app's backends."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factories.keras_bundle import write_keras_bundle

from cspine_desktop.inference import load_bundle
from cspine_desktop.inference.backends import keras_tf, ort
from cspine_desktop.inference.hardware import has_bf16
from model_training import export

pytestmark = pytest.mark.slow
PHANTOM = ["--phantom-matrix", "64", "--eval-studies", "2", "--calibration-studies", "1"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = write_keras_bundle(tmp_path_factory.mktemp("keras") / "bundle")
    assert export.main([str(folder), "--format", "onnx", *PHANTOM]) == 0
    return folder


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).random((2, 64, 64, 4), dtype=np.float32)


def _keras_bundle(folder):
    """The exported card plus the Keras file itself (the app verifies what it runs)."""
    card = json.loads((folder / "model_card.json").read_text())
    card["files"]["model.keras"] = export.file_entry(folder / "model.keras", "keras", "fp32")
    (folder / "model_card.json").write_text(json.dumps(card))
    return load_bundle(folder)


def test_onnx_export_is_recorded_in_the_card(exported):
    card = json.loads((exported / "model_card.json").read_text())
    entry = card["files"]["model.onnx"]
    assert entry["format"] == "onnx" and entry["precision"] == "fp32"
    assert entry["max_abs_diff_vs_keras"] < 1e-3
    assert card["flops_per_slice"] > 1e8
    load_bundle(exported).verified_path(load_bundle(exported).find("onnx"))


def test_onnx_and_keras_backends_agree_and_explain_alike(exported, x):
    bundle = _keras_bundle(exported)
    onnx_engine = ort.open_engine(bundle, bundle.find("onnx"), device="cpu")
    keras_engine = keras_tf.open_engine(bundle, bundle.find("keras"), precision="fp32")
    a, b = onnx_engine.predict(x), keras_engine.predict(x)
    for k in ("vertebrae", "fracture_map", "fracture_cls"):
        assert np.allclose(a[k], b[k], atol=1e-4), k
    assert onnx_engine.supports_cam and keras_engine.supports_cam
    cam_onnx = onnx_engine.class_activation(x, 1)
    grad_cam = keras_engine.class_activation(x, 1)
    h, w = grad_cam.shape[1:]
    # GAP + dense head: Grad-CAM = CAM / (h·w)
    assert np.allclose(grad_cam * h * w, cam_onnx, atol=1e-4 * max(1.0, cam_onnx.max()))


@pytest.mark.skipif(not has_bf16(), reason="CPU without AMX/AVX-512 BF16")
def test_keras_bf16_stays_close_to_fp32(exported, x):
    bundle = _keras_bundle(exported)
    fp32 = keras_tf.open_engine(bundle, bundle.find("keras"), precision="fp32").predict(x)
    bf16_engine = keras_tf.open_engine(bundle, bundle.find("keras"), precision="auto")
    assert bf16_engine.precision == "bf16"
    bf16 = bf16_engine.predict(x)
    assert bf16["vertebrae"].dtype == np.float32
    assert np.abs(bf16["vertebrae"] - fp32["vertebrae"]).max() < 0.05
    cam = bf16_engine.class_activation(x, 1)  # gradients through the bf16 graph
    assert cam.shape == (2, 2, 2) and np.isfinite(cam).all()


def test_int8_export_of_the_real_architecture_passes(exported):
    assert export.main([str(exported), "--format", "onnx-int8", *PHANTOM]) == 0
    card = json.loads((exported / "model_card.json").read_text())
    assert card["files"]["model.int8.onnx"]["accuracy_gate"]["passed"] is True


def test_savedmodel_export_runs_in_the_keras_backend(exported, x):
    assert export.main([str(exported), "--format", "savedmodel", *PHANTOM]) == 0
    bundle = load_bundle(exported)
    engine = keras_tf.open_engine(bundle, bundle.find("savedmodel"))
    ref = ort.open_engine(bundle, bundle.find("onnx"), device="cpu").predict(x)
    got = engine.predict(x)
    assert np.allclose(got["fracture_cls"], ref["fracture_cls"], atol=1e-4)
