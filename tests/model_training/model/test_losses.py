"""Loss values against hand-computed numbers, and the training Dice metric."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_training.datasets.targets import IGNORE
from model_training.model.config import LossConfig
from model_training.model.losses import (
    MaskedAUC,
    SparseDice,
    VertebraeLoss,
    WeightedBinaryCrossentropy,
    make_losses,
)


def test_weighted_bce_matches_hand_computation():
    y = np.array([[1.0, 0.0]], np.float32)
    p = np.array([[0.8, 0.3]], np.float32)
    # −[3·log 0.8 + log 0.7] / 2
    expected = -(3 * math.log(0.8) + math.log(0.7)) / 2
    loss = WeightedBinaryCrossentropy(pos_weight=3.0)(y, p)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    plain = WeightedBinaryCrossentropy(pos_weight=1.0)(y, p)
    assert float(plain) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2, rel=1e-5)


def test_weighted_bce_leaves_ignored_targets_out():
    y = np.array([[1.0, IGNORE, 0.0], [IGNORE, IGNORE, IGNORE]], np.float32)
    p = np.array([[0.8, 0.01, 0.3], [0.99, 0.5, 0.01]], np.float32)
    per_sample = WeightedBinaryCrossentropy(pos_weight=3.0).call(y, p)
    # first sample: only entries 0 and 2 count; second: nothing scored → 0
    expected = -(3 * math.log(0.8) + math.log(0.7)) / 2
    assert float(per_sample[0]) == pytest.approx(expected, rel=1e-5)
    assert float(per_sample[1]) == 0.0


def test_masked_auc_scores_only_the_shown_vertebrae():
    # ignored entries carry the highest scores: counted as negatives they would halve the AUC
    y = np.array([[1.0, 0.0, IGNORE], [0.0, 1.0, IGNORE]], np.float32)
    p = np.array([[0.7, 0.2, 0.99], [0.1, 0.6, 0.98]], np.float32)
    m = MaskedAUC(num_thresholds=1000)
    m.update_state(y, p)
    assert float(m.result()) == pytest.approx(1.0, abs=1e-3)
    plain = MaskedAUC(num_thresholds=1000)
    plain.update_state(np.clip(y, 0, 1), p)
    assert float(plain.result()) < 0.8


def test_weighted_bce_accepts_map_targets_without_channel_axis():
    y = np.zeros((2, 4, 4), np.float32)
    y[0, 1, 1] = 1
    p = np.full((2, 4, 4, 1), 0.1, np.float32)
    v = float(WeightedBinaryCrossentropy(2.0)(y, p))
    expected = (2 * -math.log(0.1) + 31 * -math.log(0.9)) / 32
    assert v == pytest.approx(expected, rel=1e-5)


def _onehot(labels: np.ndarray, n: int = 8, p: float = 1.0) -> np.ndarray:
    out = np.full((*labels.shape, n), (1 - p) / (n - 1), np.float32)
    np.put_along_axis(out, labels[..., None].astype(int), p, axis=-1)
    return out


def test_vertebrae_loss_is_near_zero_for_a_perfect_prediction_and_grows_with_error():
    lab = np.zeros((1, 8, 8), np.int32)
    lab[0, 2:5, 2:5] = 3
    lab[0, 5:7, 1:3] = 4
    perfect = float(VertebraeLoss()(lab, _onehot(lab)))
    assert perfect < 1e-3
    wrong = lab.copy()
    wrong[0, 2:5, 2:5] = 5
    bad = float(VertebraeLoss()(lab, _onehot(wrong)))
    # present classes C3 (Dice 0) and C4 (Dice 1) → Dice term 0.5, plus a large CE
    assert bad > 0.5 + 1.0


def test_vertebrae_dice_term_is_over_the_batch_and_present_classes_only():
    lab = np.zeros((2, 4, 4), np.int32)
    lab[0, :2, :2] = 1  # 4 px of C1 in the first slice, nothing in the second
    pred = np.zeros((2, 4, 4), np.int32)
    pred[0, :2, :1] = 1  # 2 px predicted, both right
    pred[1, 3, 3] = 6  # a stray C6 pixel: C6 is absent from the targets, no Dice penalty
    probs = _onehot(pred)
    ce_only = float(VertebraeLoss(dice_weight=0.0)(lab, probs))
    both = float(VertebraeLoss(dice_weight=1.0)(lab, probs))
    # C1 over the batch: 2·2 / (4 + 2) = 2/3 → Dice loss 1/3 (mean over present classes)
    assert both - ce_only == pytest.approx(1 / 3, abs=1e-4)


def test_sparse_dice_metric_accumulates_over_batches():
    m = SparseDice()
    lab = np.zeros((1, 4, 4), np.int32)
    lab[0, :2, :2] = 2
    pred = lab.copy()
    pred[0, 0, 0] = 0
    m.update_state(lab, _onehot(pred))
    m.update_state(lab, _onehot(lab))
    # C2: inter 3 + 4, sizes (4+3) + (4+4) → 14/15; the six other classes are unseen → 1
    assert float(m.result()) == pytest.approx((6 + 14 / 15) / 7, rel=1e-5)
    m.reset_state()
    assert float(m.result()) == pytest.approx(1.0)


def test_make_losses_uses_the_configured_weights():
    losses, weights = make_losses(LossConfig(fracture_cls_weight=2.5, fracture_map_pos_weight=7))
    assert set(losses) == set(weights) == {"vertebrae", "fracture_map", "fracture_cls"}
    assert weights["fracture_cls"] == 2.5
    assert losses["fracture_map"].pos_weight == 7


def test_fracture_map_dice_term_is_over_the_batch_and_only_with_foreground():
    y = np.zeros((2, 4, 4, 1), np.float32)
    y[0, :2, :2] = 1  # 4 fractured pixels in the first sample, none in the second
    p = np.full((2, 4, 4, 1), 0.5, np.float32)
    plain = WeightedBinaryCrossentropy(2.0).call(y, p).numpy()
    with_dice = WeightedBinaryCrossentropy(2.0, dice_weight=0.5).call(y, p).numpy()
    # batch Dice: 2·(4·0.5) / (4 + 32·0.5) = 0.2 → + 0.5·0.8 on every sample
    np.testing.assert_allclose(with_dice - plain, [0.4, 0.4], rtol=1e-5)
    empty = np.zeros_like(y)
    np.testing.assert_allclose(
        WeightedBinaryCrossentropy(2.0, dice_weight=0.5).call(empty, p).numpy(),
        WeightedBinaryCrossentropy(2.0).call(empty, p).numpy(),
        rtol=1e-6,
    )
