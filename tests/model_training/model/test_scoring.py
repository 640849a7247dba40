"""Threshold choice for the operating point, on hand-made validation outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.analysis.aggregate import PATIENT_KEY
from cspine_desktop.vertebrae import NAMES
from model_training.model.predict import StudyOutcome
from model_training.model.scoring import (
    _arrays,
    choose_thresholds,
    level_only_auc,
    patient_verdicts,
    within_level_auc,
)


def _outcome(i: int, truth, prob, patient_prob) -> StudyOutcome:
    truth = np.asarray(truth, bool)
    return StudyOutcome(
        study_uid=f"1.{i}",
        truth=truth,
        patient_truth=bool(truth.any()),
        probability=np.asarray(prob, float),
        present=np.ones(7, bool),
        patient_probability=float(patient_prob),
        dice=np.ones(7),
        dice_counts=np.ones((7, 2), np.int64),
    )


def _rates(outcomes, th):
    a = _arrays(outcomes)
    called = patient_verdicts(a, th)
    t = a["patient_truth"]
    return called[t].mean(), (~called[~t]).mean()


def _half_fractured(rng, n: int):
    """(index, truth) for n studies; every second one has one fractured vertebra."""
    for i in range(n):
        truth = np.zeros(7, bool)
        if i % 2:
            truth[rng.integers(0, 7)] = True
        yield i, truth


def test_separable_vertebra_scores_give_a_perfect_operating_point():
    rng = np.random.default_rng(0)
    outcomes = []
    for i, truth in _half_fractured(rng, 40):
        prob = np.where(truth, rng.uniform(0.6, 0.9, 7), rng.uniform(0.05, 0.4, 7))
        outcomes.append(_outcome(i, truth, prob, 1 - np.prod(1 - prob)))
    th = choose_thresholds(outcomes, 0.9)
    assert set(th) == {*NAMES, PATIENT_KEY}
    assert 0.4 <= th["C1"] <= 0.6
    sens, spec = _rates(outcomes, th)
    assert sens == 1.0 and spec == 1.0


def test_weak_vertebra_scores_do_not_take_the_patient_specificity_away():
    """Vertebra scores are noise while the patient probability separates: a vertebra threshold
    chosen on its own for 90 % vertebra sensitivity would call nearly every study fractured."""
    rng = np.random.default_rng(1)
    outcomes = []
    for i, truth in _half_fractured(rng, 60):
        prob = rng.uniform(0.2, 0.9, 7)
        patient = rng.uniform(0.7, 1.0) if truth.any() else rng.uniform(0.0, 0.5)
        outcomes.append(_outcome(i, truth, prob, patient))
    th = choose_thresholds(outcomes, 0.9)
    sens, spec = _rates(outcomes, th)
    assert sens >= 0.9
    assert spec == 1.0
    # the old rule, for contrast: vertebra threshold for 90 % pooled vertebra sensitivity
    a = _arrays(outcomes)
    pos = np.sort(a["prob"][a["truth"]])[::-1]
    old_tv = pos[int(np.ceil(0.9 * pos.size)) - 1]
    old = {**{n: old_tv for n in NAMES}, PATIENT_KEY: 1.0}
    assert _rates(outcomes, old)[1] < 0.2


@pytest.mark.parametrize("min_sensitivity", [0.8, 0.9, 1.0])
def test_the_chosen_pair_meets_the_sensitivity_it_was_asked_for(min_sensitivity):
    rng = np.random.default_rng(2)
    outcomes = []
    for i in range(50):
        truth = rng.random(7) < 0.1
        prob = np.clip(truth * 0.3 + rng.uniform(0, 0.7, 7), 0, 1)
        outcomes.append(_outcome(i, truth, prob, 1 - np.prod(1 - prob)))
    th = choose_thresholds(outcomes, min_sensitivity)
    sens, _spec = _rates(outcomes, th)
    assert sens >= min_sensitivity - 1e-12


def test_the_vertebra_floor_keeps_the_level_named():
    """Vertebra scores weak, the patient probability separating: patient specificity first
    leaves the vertebra threshold above nearly every fractured vertebra; the floor brings the
    vertebra calls back to the share asked for, and the patient sensitivity still holds."""
    rng = np.random.default_rng(3)
    outcomes = []
    for i, truth in _half_fractured(rng, 80):
        prob = np.clip(rng.uniform(0.1, 0.7, 7) + 0.15 * truth, 0, 1)
        patient = rng.uniform(0.6, 1.0) if truth.any() else rng.uniform(0.0, 0.65)
        outcomes.append(_outcome(i, truth, prob, patient))
    a = _arrays(outcomes)

    def vertebra_sensitivity(th):
        return float((a["prob"][a["truth"]] >= th["C1"]).mean())

    free = choose_thresholds(outcomes, 0.9)
    floored = choose_thresholds(outcomes, 0.9, min_vertebra_sensitivity=0.6)
    assert vertebra_sensitivity(free) < 0.6
    assert vertebra_sensitivity(floored) >= 0.6
    assert _rates(outcomes, floored)[0] >= 0.9


def test_a_score_that_only_knows_the_level_is_found_out():
    """Fractures at C2 and C7 far more often than elsewhere: a score that only says "this is
    C2 or C7" reaches a fair pooled AUC, the level-only baseline, and 0.5 within a level."""
    rng = np.random.default_rng(0)
    share = np.array([0.05, 0.4, 0.05, 0.05, 0.05, 0.1, 0.4])
    truth = rng.random((400, 7)) < share
    prior = np.broadcast_to(share, truth.shape) + 0.0
    from cspine_desktop.analysis.metrics import roc_auc

    pooled = roc_auc(truth.ravel(), prior.ravel())
    assert pooled > 0.65
    assert level_only_auc(truth, prior) == pytest.approx(pooled, abs=0.02)
    assert within_level_auc(truth, prior) == pytest.approx(0.5)
    # a score that sees the fracture is as good within a level as pooled
    seen = truth + rng.normal(0, 0.3, truth.shape)
    assert within_level_auc(truth, seen) > 0.9
    # absent vertebrae (NaN) are left out
    seen[:10, 0] = np.nan
    assert np.isfinite(within_level_auc(truth, seen))
    assert np.isfinite(level_only_auc(truth, seen))
