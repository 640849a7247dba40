"""The model bundle shipped in assets/models/cspine-demo: card complete, every file verifies."""

from __future__ import annotations

import pytest

from cspine_desktop.imaging.preprocess import PreprocessConfig
from cspine_desktop.inference import demo_model_dir, load_bundle


@pytest.fixture(scope="module")
def shipped():
    if not (demo_model_dir() / "model_card.json").is_file():
        pytest.skip("the demo model has not been trained into assets/models/cspine-demo yet")
    return load_bundle(demo_model_dir())


def test_every_listed_file_matches_its_sha256(shipped):
    assert shipped.files
    for f in shipped.files:
        assert shipped.verified_path(f).exists()


def test_the_app_can_run_it_without_tensorflow(shipped):
    assert shipped.find("onnx") is not None, "run cspine-export --format onnx"


def test_both_stages_ship_and_verify_within_60_mb(shipped):
    """The demo bundle is two-stage: its classifier files verify, its card says how stage 2
    crops, aggregates and is calibrated, and the whole bundle stays under 60 MB."""
    assert shipped.classifier_files, "no stage-2 classifier in the demo bundle"
    for f in shipped.classifier_files:
        assert shipped.verified_path(f).exists()
        if f.precision == "int8":
            assert f.extra["accuracy_gate"]["passed"] is True
    s2 = shipped.card["stage2"]
    assert {"crops", "top_k", "plane_stride", "calibration", "architecture"} <= set(s2)
    assert s2["architecture"]["backbone"] == "densenet121"
    assert s2["calibration"]["n_vertebrae"] > 0
    total = sum(p.stat().st_size for p in shipped.path.iterdir() if p.is_file())
    assert total < 60e6, f"bundle is {total / 1e6:.1f} MB"


def test_the_card_is_complete(shipped):
    card = shipped.card
    cfg = PreprocessConfig.from_dict(card["preprocessing"])
    assert shipped.input_shape == (cfg.input_size, cfg.input_size, cfg.n_channels)
    assert all(0.0 <= t <= 1.0 for t in shipped.thresholds.values())
    assert "not for diagnostic use" in card["disclaimer"].lower()
    for f in (*shipped.files, *shipped.classifier_files):
        if f.precision in ("int8", "fp16", "bf16"):
            assert f.extra["accuracy_gate"]["passed"] is True, f.name
