"""Study-level aggregation shared by the app and evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.analysis.aggregate import (
    AggregationConfig,
    aggregate_study,
    label_grid,
    verdicts,
)

THRESH = {**{f"C{i}": 0.5 for i in range(1, 8)}, "patient_overall": 0.5}


def _study(z=12, s=16):
    labels = np.zeros((z, s, s), np.uint8)
    for v in range(1, 8):  # C1 at the top (small z), 1–2 planes each, C7 absent
        if v == 7:
            continue
        labels[(v - 1) * 2 : (v - 1) * 2 + 2, 4:12, 4:12] = v
    cls = np.full((z, 7), 0.05, np.float32)
    return labels, cls


def test_topk_mean_within_extent_and_peak_slice():
    labels, cls = _study()
    cls[2, 1] = 0.9  # C2 occupies planes 2–3
    cls[3, 1] = 0.7
    cls[9, 1] = 0.99  # outside C2's extent: ignored
    s = aggregate_study(labels, cls, config=AggregationConfig(top_k=2))
    assert s.present.tolist() == [True] * 6 + [False]
    assert s.probability[1] == pytest.approx(0.8)
    assert s.slice_range[1] == (2, 3) and s.peak_slice[1] == 2
    assert s.slice_range[6] is None and s.probability[6] == 0.0
    expected = 1 - (1 - 0.8) * (1 - 0.05) ** 5
    assert s.patient_probability == pytest.approx(expected, rel=1e-5)


def test_softmax_input_and_max_patient_rule():
    labels, cls = _study()
    probs = np.eye(8, dtype=np.float32)[labels]
    assert np.array_equal(label_grid(probs), labels)
    cls[0, 0] = 0.6
    s = aggregate_study(probs, cls, config=AggregationConfig(top_k=1, patient="max"))
    assert s.patient_probability == pytest.approx(0.6)


def test_fracture_map_contributes_inside_the_vertebra_only():
    labels, cls = _study()
    fmap = np.zeros(labels.shape, np.float32)
    fmap[4, 5:8, 5:8] = 1.0  # inside C3 (planes 4–5)
    fmap[0, 0:3, 0:3] = 1.0  # outside any vertebra
    cfg = AggregationConfig(top_k=1, map_weight=0.5, map_top_px=9)
    s = aggregate_study(labels, cls, fmap, cfg)
    assert s.probability[2] == pytest.approx(0.5 * 0.05 + 0.5 * 1.0)
    assert s.probability[0] == pytest.approx(0.5 * 0.05)


def test_verdicts_patient_never_contradicts_a_vertebra():
    labels, cls = _study()
    cls[2:4, 1] = 0.6
    s = aggregate_study(labels, cls, config=AggregationConfig(patient="max"))
    v = verdicts(s, {**THRESH, "patient_overall": 0.95})
    assert v["C2"] and v["patient_overall"]
    assert not v["C7"]  # absent vertebra is never fractured
    v = verdicts(s, {**THRESH, "C2": 0.7, "patient_overall": 0.95})
    assert not v["C2"] and not v["patient_overall"]


def test_empty_prediction():
    s = aggregate_study(np.zeros((3, 8, 8), np.uint8), np.zeros((3, 7), np.float32))
    assert not s.present.any() and s.patient_probability == 0.0
