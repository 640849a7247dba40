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
    assert shipped.find("onnx", "fp32") is not None, "run cspine-export --format onnx"


def test_the_card_is_complete(shipped):
    card = shipped.card
    cfg = PreprocessConfig.from_dict(card["preprocessing"])
    assert shipped.input_shape == (cfg.input_size, cfg.input_size, cfg.n_channels)
    assert all(0.0 <= t <= 1.0 for t in shipped.thresholds.values())
    assert "not for diagnostic use" in card["disclaimer"].lower()
    for f in shipped.files:
        if f.precision in ("int8", "fp16", "bf16"):
            assert f.extra["accuracy_gate"]["passed"] is True, f.name
