"""Volume → verdicts with a model whose answer is known (the threshold test model)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from factories.dicom_series import write_ct_series
from factories.model_bundle import threshold_onnx, write_bundle

from cspine_desktop import DISCLAIMER
from cspine_desktop.analysis.pipeline import analyze
from cspine_desktop.errors import Cancelled
from cspine_desktop.imaging import load_study
from cspine_desktop.inference import load_bundle, open_engine

# threshold model: bone ring → C3 (fracture 0.9), dense ball → C4 (0.1)
CLS = (0.05, 0.05, 0.9, 0.1, 0.05, 0.05, 0.05)
BALL_LPS = (15.0, -10.0, 12.0)  # the dense ball of the synthetic series (→ "C4")


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct")
    write_ct_series(folder, n_slices=30, rows=32, cols=32)
    return load_study(folder)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    return load_bundle(write_bundle(folder, {"model.onnx": threshold_onnx(cls_prob=CLS)}))


@pytest.fixture(scope="module")
def engine(bundle):
    return open_engine(bundle, "onnx", None)


@pytest.fixture(scope="module")
def outcome(volume, engine, bundle):
    return analyze(volume, engine, bundle.card)


def _voxel(volume, lps):
    x, y, z, _ = np.linalg.inv(volume.affine) @ np.array([*lps, 1.0])
    return round(z), round(y), round(x)


def test_present_and_absent_vertebrae(outcome):
    r = outcome.result
    present = {v.name for v in r.vertebrae if v.present}
    assert present == {"C3", "C4"}
    for v in r.vertebrae:
        if not v.present:
            assert v.probability is None and v.fractured is None and v.slice_range is None
            assert v.status == "not_in_view" and "Not in the images" in v.reasons[0]


def test_probabilities_follow_the_model_and_thresholds_sit_beside_them(outcome):
    r = outcome.result
    assert r.vertebra("C3").probability == pytest.approx(CLS[2], abs=1e-4)
    expected_patient = 1 - (1 - CLS[2]) * (1 - CLS[3])
    assert r.patient_overall.probability == pytest.approx(expected_patient, abs=1e-4)
    assert r.thresholds["C3"] == 0.5 and r.disclaimer == DISCLAIMER
    assert r.vertebra("C3").threshold == 0.5 and r.patient_overall.threshold == 0.5
    assert r.vertebra("C3").operating_point is None  # the test card records no validation


def test_a_toy_spine_gets_no_verdict(outcome):
    """The test model's "vertebrae" are a ring and a ball: no canal, C1–C2 missing. Its C3
    probability (0.9) is above the threshold, yet no fracture verdict may be given."""
    r = outcome.result
    c3, c4 = r.vertebra("C3"), r.vertebra("C4")
    assert c3.fractured is None and c4.fractured is None
    assert c3.status == "indeterminate" and c4.status == "indeterminate"
    assert r.patient_overall.status == "indeterminate" and r.patient_overall.fractured is None
    assert any("canal" in x for x in r.patient_overall.reasons + c4.reasons)


def test_labels_and_heatmap_are_on_the_source_grid(outcome, volume):
    assert outcome.labels.shape == volume.shape and outcome.labels.dtype == np.uint8
    assert outcome.heatmap.shape == volume.shape and outcome.heatmap.dtype == np.float32
    assert set(np.unique(outcome.labels).tolist()) <= {0, 3, 4}
    assert outcome.labels[_voxel(volume, BALL_LPS)] == 4
    assert outcome.heatmap.min() >= 0.0 and outcome.heatmap.max() <= 1.0
    assert outcome.heatmap[:, 0, 0].max() == 0.0  # air in the corner: no heat


def test_slice_ranges_are_source_slice_indices(outcome, volume):
    z_ball = _voxel(volume, BALL_LPS)[0]
    first, last = outcome.result.vertebra("C4").slice_range
    assert first <= z_ball <= last and last - first < 16  # the ball is 12 mm across, 1 mm slices
    c3 = outcome.result.vertebra("C3")
    assert c3.slice_range == (0, volume.shape[0] - 1)  # the ring runs through the whole scan
    assert 0 <= c3.peak_slice < volume.shape[0]
    assert any("cut by the" in x and "edge of the scan" in x for x in c3.reasons)


def test_the_fractured_vertebra_gets_a_class_activation_map(outcome, volume):
    assert outcome.gradcam is not None and outcome.gradcam.shape == volume.shape
    assert outcome.gradcam.max() > 0
    assert np.all(outcome.gradcam[outcome.labels == 0][::97] <= 1.0)


def test_model_and_backend_are_recorded(outcome, engine, bundle):
    r = outcome.result
    assert r.model.sha256 == bundle.find("onnx").sha256
    assert r.backend == "onnx-cpu-fp32"
    assert {"preprocess", "inference", "postprocess", "total"} <= set(r.timings_s)


def test_progress_is_monotonic_and_ends_at_one(volume, engine, bundle):
    seen = []
    analyze(volume, engine, bundle.card, progress=lambda p: seen.append(p.fraction))
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0


def test_cancel_raises_analysis_cancelled(volume, engine, bundle):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        analyze(volume, engine, bundle.card, cancel=cancel)


def test_engine_warnings_reach_the_result(volume, engine, bundle, monkeypatch):
    monkeypatch.setattr(engine, "warnings", ("Running on the CPU: test.",))
    out = analyze(volume, engine, bundle.card, explain=False)
    assert "Running on the CPU: test." in out.result.warnings
    assert out.gradcam is None


def test_an_engine_that_does_not_fit_the_card_is_refused(volume, engine, bundle):
    card = dict(bundle.card)
    card["preprocessing"] = {**card["preprocessing"], "input_size": 96}
    with pytest.raises(ValueError, match="does not match"):
        analyze(volume, engine, card)


def test_the_cam_comes_from_the_main_pass_without_another_run(volume, engine, bundle, monkeypatch):
    def no_second_pass(*a, **k):
        raise AssertionError("class_activation should not be needed")

    monkeypatch.setattr(engine, "class_activation", no_second_pass)
    out = analyze(volume, engine, bundle.card)
    assert out.gradcam is not None and out.gradcam.max() > 0


def test_an_engine_with_gradients_explains_with_its_own_pass(volume, bundle):
    """A Keras-like engine: no fracture_cam output, but class_activation(batch, k)."""

    class GradEngine:
        input_shape = (64, 64, 4)
        label, sha256, warnings, supports_cam = "keras-cpu-fp32", "0" * 64, (), True

        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def predict(self, x):
            out = self.inner.predict(x)
            out.pop("fracture_cam", None)
            return out

        def class_activation(self, x, k):
            self.calls += 1
            return np.ones((len(x), 2, 2), np.float32)

    fake = GradEngine(open_engine(bundle, "onnx", None))
    out = analyze(volume, fake, bundle.card)
    assert fake.calls > 0 and out.gradcam is not None


def test_the_cards_outline_section_moves_what_is_shown_not_what_was_scored(
    volume, engine, bundle, monkeypatch
):
    """The card's ``outline`` section sends the shown labels through ``outline_to_bone`` (its
    own tests: tests/analysis/test_outline.py) after the scoring; without it nothing moves."""
    from cspine_desktop.analysis import pipeline
    from cspine_desktop.analysis.outline import OutlineConfig

    seen = []

    def spy(labels, vol, cfg):
        seen.append((labels.copy(), cfg))
        out = labels.copy()
        out[labels > 0] = 7
        return out

    monkeypatch.setattr(pipeline, "outline_to_bone", spy)
    plain = analyze(volume, engine, bundle.card)
    assert not seen and "outline" not in plain.result.timings_s
    cfg = OutlineConfig(reach_mm=1.5)
    moved = analyze(volume, engine, {**bundle.card, "outline": cfg.to_dict()})
    ((given, given_cfg),) = seen
    np.testing.assert_array_equal(given, plain.labels)
    assert given_cfg == cfg
    np.testing.assert_array_equal(moved.labels, np.where(plain.labels > 0, 7, 0))
    assert "outline" in moved.result.timings_s
    assert [v.probability for v in moved.result.vertebrae] == [
        v.probability for v in plain.result.vertebrae
    ]
