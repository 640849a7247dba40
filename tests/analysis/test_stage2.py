"""Stage 2 inside ``analyze``: every segmented vertebra is judged on its own crop, the card's
calibration is applied, the patient probability is the maximum, and the heat-map comes back on
the source grid where the classifier pointed."""

from __future__ import annotations

import numpy as np
import pytest
from factories.dicom_series import write_ct_series
from factories.model_bundle import threshold_onnx, write_bundle

from cspine_desktop.analysis.pipeline import analyze
from cspine_desktop.analysis.stage2 import calibrate, top_k_score
from cspine_desktop.imaging import load_study
from cspine_desktop.inference import load_bundle, open_engine

CALIBRATION = (2.0, -1.0)


class DenseCentreClassifier:
    """Stands in for the stage-2 model: a plane is 'fractured' (0.8) when its crop centre is
    brighter than bone's cancellous range, else 0.1; its map points at the centre cell."""

    label = "fake-stage2"
    input_shape = (32, 32, 4)

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.calls += 1
        assert x.shape[1:] == (32, 32, 4) and x.dtype == np.float32
        centre = x[:, 14:18, 14:18, 1].mean(axis=(1, 2))
        p = np.where(centre > 0.75, 0.8, 0.1).astype(np.float32)[:, None]
        maps = np.zeros((len(x), 4, 4, 1), np.float32)
        maps[:, 1:3, 1:3, 0] = 1.0
        return {"fracture": p, "fracture_map": maps}


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct")
    write_ct_series(folder, n_slices=30, rows=32, cols=32)
    return load_study(folder)


@pytest.fixture(scope="module")
def outcome(volume, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    bundle = load_bundle(write_bundle(folder, {"model.onnx": threshold_onnx()}))
    engine = open_engine(bundle, "onnx", None)
    engine.classifier = DenseCentreClassifier()
    card = dict(bundle.card)
    card["stage2"] = {
        "crops": {"size": 32, "pixel_mm": 0.5, "map_stride": 8, "min_mask_px": 4},
        "top_k": 2,
        "plane_stride": 1,
        "calibration": {"a": CALIBRATION[0], "b": CALIBRATION[1]},
    }
    return analyze(volume, engine, card), engine


def test_stage2_probabilities_replace_stage1_and_are_calibrated(outcome):
    out, engine = outcome
    assert engine.classifier.calls > 0
    r = out.result
    probs = {v.name: v.probability for v in r.vertebrae if v.present}
    assert set(probs) == {"C3", "C4"}
    # the dense ball (C4) looks fractured to the fake classifier, the ring (C3) does not
    assert probs["C4"] == pytest.approx(float(calibrate(0.8, CALIBRATION)), abs=1e-4)
    assert probs["C3"] == pytest.approx(float(calibrate(0.1, CALIBRATION)), abs=1e-4)
    assert r.patient_overall.probability == pytest.approx(max(probs.values()), abs=1e-5)
    assert "stage 2" in r.backend and "fake-stage2" in r.backend
    assert "stage2" in r.timings_s


def test_stage2_heatmap_is_on_the_source_grid_inside_the_vertebra(outcome):
    out, _ = outcome
    assert out.heatmap.shape == out.volume.hu.shape
    assert out.gradcam is None  # stage 2's map is the localisation
    hot = out.heatmap > 0.5
    assert hot.any()
    c4 = out.labels == 4
    assert (hot & c4).sum() / hot.sum() > 0.5
    # map × plane probability on the calibrated scale (the scale of the vertebra thresholds):
    # the fractured planes' heat peaks at calibrate(0.8), not at the raw 0.8
    assert out.heatmap.max() == pytest.approx(float(calibrate(0.8, CALIBRATION)), abs=1e-3)


def test_top_k_and_calibration_helpers():
    assert top_k_score(np.array([0.1, 0.9, 0.5]), 2) == pytest.approx(0.7)
    assert top_k_score(np.array([]), 2) == 0.0
    assert float(calibrate(0.5, (1.0, 0.0))) == pytest.approx(0.5)
    assert float(calibrate(0.5, (1.0, np.log(3)))) == pytest.approx(0.75)


def test_sagittal_planes_are_scored_with_the_axial_ones(volume, tmp_path):
    """With ``sagittal_half_mm`` in the card, every vertebra is also cut sagittally; the raw
    score is the top-k over both views and the sagittal maps land inside the vertebra too."""
    bundle = load_bundle(write_bundle(tmp_path, {"model.onnx": threshold_onnx()}))
    card = dict(bundle.card)
    crops = {"size": 32, "pixel_mm": 0.5, "map_stride": 8, "min_mask_px": 4}
    counts = {}
    for half in (0.0, 3.0):
        engine = open_engine(bundle, "onnx", None)
        seen: list[int] = []
        fake = DenseCentreClassifier()
        real_predict = fake.predict

        def predict(x, real_predict=real_predict, seen=seen):
            seen.append(len(x))
            return real_predict(x)

        fake.predict = predict
        engine.classifier = fake
        card["stage2"] = {
            "crops": {**crops, "sagittal_half_mm": half},
            "top_k": 2,
            "plane_stride": 1,
            "calibration": {"a": CALIBRATION[0], "b": CALIBRATION[1]},
        }
        out = analyze(volume, engine, card)
        counts[half] = sum(seen)
        probs = {v.name: v.probability for v in out.result.vertebrae if v.present}
        assert probs["C4"] > probs["C3"]
        # the heat is centred on C4 (a sagittal map square reaches past the small ball in z)
        hot = np.argwhere(out.heatmap > 0.5)
        c4 = np.argwhere(out.labels == 4)
        centroid = hot.mean(axis=0)
        assert np.all(centroid >= c4.min(axis=0)) and np.all(centroid <= c4.max(axis=0))
    # 7 sagittal planes (−3…3 mm) per vertebra on top of the axial ones
    assert counts[3.0] > counts[0.0]
