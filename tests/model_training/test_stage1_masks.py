"""Validating stage 2 on stage 1's masks: the label maps of the trainer's validation studies,
saved and read back, and the crops cut around them instead of the phantom's own."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.imaging.crops import CropConfig
from model_training.datasets.crops_stream import VAL_SEED0, StreamConfig, study_planes
from model_training.phantom.study import generate_study
from model_training.stages import main as stages_main
from model_training.stages.stage1_masks import load_label_maps, save_label_maps

SEED = VAL_SEED0


def _truth() -> np.ndarray:
    st = generate_study(SEED, StreamConfig().phantom_config())
    return st.in_volume_order(st.labels)


def test_crops_follow_the_label_map_they_are_given():
    crop, stream = CropConfig(size=32), StreamConfig()
    own = study_planes(SEED, crop, stream, train=False)
    truth = _truth()
    same = study_planes(SEED, crop, stream, train=False, labels=truth)
    np.testing.assert_array_equal(own.x, same.x)  # the phantom's map given: the same crops
    np.testing.assert_array_equal(own.y, same.y)
    level = int(np.bincount(own.vertebra.astype(int)).argmax())
    without = np.where(truth == level, 0, truth).astype(truth.dtype)
    got = study_planes(SEED, crop, stream, train=False, labels=without)
    assert level not in set(got.vertebra.tolist())  # a level stage 1 missed has no crops
    assert set(got.vertebra.tolist()) == set(own.vertebra.tolist()) - {level}
    # the targets stay the phantom's
    for lv in set(got.vertebra.tolist()):
        assert got.fractured[got.vertebra == lv].all() == own.fractured[own.vertebra == lv].all()
    with pytest.raises(ValueError, match="do not fit"):
        study_planes(SEED, crop, stream, train=False, labels=truth[:-1])


def test_label_maps_read_back_and_a_missing_study_is_named(tmp_path):
    a = np.zeros((3, 4, 5), np.uint8)
    a[1, 2, 3] = 7
    b = np.ones((2, 2, 2), np.uint8)
    path = tmp_path / "s1.npz"
    save_label_maps(path, {11: a, 12: b}, "bundle")
    got = load_label_maps(path, [12, 11])
    np.testing.assert_array_equal(got[11], a)
    np.testing.assert_array_equal(got[12], b)
    with pytest.raises(ValueError, match="validation study 13"):
        load_label_maps(path, [11, 13])


def test_stage_1_of_the_demo_bundle_labels_a_validation_study(tmp_path):
    """``stages masks`` with the shipped bundle: stage 1 as ``analyze`` runs it, on the
    trainer's first validation study — each level where the phantom has it."""
    from cspine_desktop.inference import demo_model_dir

    out = tmp_path / "s1.npz"
    assert (
        stages_main(
            ["masks", "--bundle", str(demo_model_dir()), "--studies", "1", "--out", str(out)]
        )
        == 0
    )
    labels = load_label_maps(out, [SEED])[SEED]
    truth = _truth()
    assert labels.shape == truth.shape
    for level in range(1, 8):
        t, p = truth == level, labels == level
        if t.sum() < 500:
            continue
        dice = 2 * (t & p).sum() / (t.sum() + p.sum())
        assert dice > 0.6, (level, dice)


def test_stage_1_labels_are_those_stage_2_reads_not_the_outlines_shown(monkeypatch):
    """The app scores stage 2 on stage 1's labels and only moves the shown outlines onto the
    bone (the card's ``outline``): the maps the trainer validates on must be the former."""
    from types import SimpleNamespace

    from cspine_desktop.analysis import pipeline
    from model_training.stages.stage1_masks import stage1_labels

    cards = []

    def fake_analyze(volume, engine, card, explain=True):
        cards.append(card)
        return SimpleNamespace(labels=np.zeros((2, 2, 2), np.uint8))

    monkeypatch.setattr(pipeline, "analyze", fake_analyze)
    card = {"thresholds": {}, "stage2": {"top_k": 2}, "outline": {"reach_mm": 2.0}}
    stage1_labels(object(), object(), card)
    (given,) = cards
    assert "stage2" not in given and "outline" not in given and "thresholds" in given
