"""Evaluation metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cspine_desktop.analysis.metrics import (
    binary_summary,
    bootstrap_ci,
    calibration_curve,
    confusion_matrix,
    dice_counts,
    dice_per_label,
    roc_auc,
    roc_curve,
    rsna_weighted_log_loss,
)


def test_rsna_weighted_log_loss_matches_hand_computation():
    truth = np.array([[1, 0, 0, 0, 0, 0, 0, 1], [0] * 8], float)
    probs = np.array([[0.8] + [0.1] * 6 + [0.9], [0.5] * 8])
    # study 1: C1 positive (w 2), six negatives (w 1), patient positive (w 14)
    s1 = (2 * -math.log(0.8) + 6 * -math.log(0.9) + 14 * -math.log(0.9)) / (2 + 6 + 14)
    # study 2: all negative, 7 × w 1 + patient w 7, every loss ln 2
    s2 = math.log(2)
    assert s1 == pytest.approx(0.116068, abs=1e-6)
    assert rsna_weighted_log_loss(truth, probs) == pytest.approx((s1 + s2) / 2, rel=1e-9)
    assert rsna_weighted_log_loss(truth, probs) == pytest.approx(0.404608, abs=1e-6)


def test_rsna_loss_clips_certain_wrong_answers_and_checks_shape():
    truth = np.zeros((1, 8))
    assert rsna_weighted_log_loss(truth, np.ones((1, 8)), eps=1e-7) == pytest.approx(
        -math.log(1e-7), rel=1e-6
    )
    with pytest.raises(ValueError):
        rsna_weighted_log_loss(np.zeros((2, 7)), np.zeros((2, 7)))


def test_dice_per_label_and_pooled_counts():
    true = np.zeros((2, 4, 4), np.uint8)
    pred = np.zeros_like(true)
    true[0, :2, :2] = 1  # 4 px
    pred[0, :2, :1] = 1  # 2 px, all inside
    true[1, 0, 0] = 2
    d = dice_per_label(pred, true)
    assert d[1] == pytest.approx(2 * 2 / 6)
    assert d[2] == 0.0
    assert math.isnan(d[3])
    counts = dice_counts(pred, true)
    assert counts[0].tolist() == [4, 6] and counts[1].tolist() == [0, 1]
    with pytest.raises(ValueError):
        dice_per_label(pred[0], true)


def test_binary_summary_counts_and_rates():
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.3, 0.4])
    b = binary_summary(y, s, 0.5)
    assert (b.tp, b.fn, b.fp, b.tn) == (2, 1, 1, 3)
    assert b.sensitivity == pytest.approx(2 / 3)
    assert b.specificity == pytest.approx(3 / 4)
    assert b.accuracy == pytest.approx(5 / 7)
    assert math.isnan(binary_summary(np.zeros(3), s[:3], 0.5).sensitivity)


def test_auc_counts_pairs_and_ties():
    y = np.array([1, 1, 0, 0])
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    # pairs (pos, neg): (0.9>0.5) (0.9>0.3) (0.5=0.5 → ½) (0.5>0.3) → 3.5 / 4
    assert roc_auc(y, np.array([0.9, 0.5, 0.5, 0.3])) == pytest.approx(3.5 / 4)
    assert math.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))
    fpr, tpr, _ = roc_curve(y, np.array([0.9, 0.5, 0.5, 0.3]))
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    auc = roc_auc(y, s)
    lo, hi = bootstrap_ci(roc_auc, y, s, n_boot=300, seed=3)
    assert lo < auc < hi and hi - lo < 0.2
    assert (lo, hi) == bootstrap_ci(roc_auc, y, s, n_boot=300, seed=3)


def test_calibration_and_confusion_matrix():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.05, 0.15, 0.85, 0.95])
    mean_p, frac, counts = calibration_curve(y, s, n_bins=2)
    assert mean_p.tolist() == pytest.approx([0.1, 0.9])
    assert frac.tolist() == [0.0, 1.0] and counts.tolist() == [2, 2]
    cm = confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
