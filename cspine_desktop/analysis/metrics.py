"""Evaluation metrics for segmentation and fracture verdicts (pure numpy).

Conventions: ``y_true`` are 0/1 (or bool) ground-truth labels, ``scores`` probabilities in
[0, 1]; a case is called positive when ``score >= threshold``. Label maps use the RSNA 2022 /
VerSe values (0 background, 1–7 = C1–C7), any voxel order as long as both maps agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..vertebrae import VERTEBRAE

# RSNA 2022 competition weights: (negative, positive) per column
RSNA_VERTEBRA_WEIGHTS = (1.0, 2.0)
RSNA_PATIENT_WEIGHTS = (7.0, 14.0)


_LABELS = tuple(v.label for v in VERTEBRAE)


# --- segmentation ----------------------------------------------------------------------------
def dice_per_label(
    pred: np.ndarray, true: np.ndarray, labels: Sequence[int] = _LABELS
) -> dict[int, float]:
    """Dice 2|P∩T| / (|P| + |T|) per label value; NaN when the label is in neither map."""
    if pred.shape != true.shape:
        raise ValueError(f"label maps differ in shape: {pred.shape} vs {true.shape}")
    out: dict[int, float] = {}
    for lab in labels:
        p, t = pred == lab, true == lab
        size = int(p.sum()) + int(t.sum())
        out[lab] = float(2.0 * np.logical_and(p, t).sum() / size) if size else float("nan")
    return out


def dice_counts(pred: np.ndarray, true: np.ndarray, labels: Sequence[int] = _LABELS) -> np.ndarray:
    """[len(labels), 2] array of (2|P∩T|, |P| + |T|) — sum over studies for a pooled Dice."""
    rows = []
    for lab in labels:
        p, t = pred == lab, true == lab
        rows.append((2 * int(np.logical_and(p, t).sum()), int(p.sum()) + int(t.sum())))
    return np.asarray(rows, dtype=np.int64)


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """[n, n] counts, rows = true class, columns = predicted class (ints in [0, n))."""
    t = np.asarray(true, dtype=np.int64).ravel()
    p = np.asarray(pred, dtype=np.int64).ravel()
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


# --- binary verdicts -------------------------------------------------------------------------
@dataclass(frozen=True)
class BinarySummary:
    """Counts and rates at one threshold; rates are NaN when their denominator is 0."""

    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: float
    specificity: float
    accuracy: float
    ppv: float
    npv: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def binary_summary(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> BinarySummary:
    """Sensitivity, specificity, accuracy, PPV and NPV of ``scores >= threshold``."""
    t = np.asarray(y_true).astype(bool).ravel()
    p = np.asarray(scores, dtype=np.float64).ravel() >= threshold
    tp, fp = int(np.sum(p & t)), int(np.sum(p & ~t))
    tn, fn = int(np.sum(~p & ~t)), int(np.sum(~p & t))
    return BinarySummary(
        tp, fp, tn, fn,
        sensitivity=_ratio(tp, tp + fn),
        specificity=_ratio(tn, tn + fp),
        accuracy=_ratio(tp + tn, t.size),
        ppv=_ratio(tp, tp + fp),
        npv=_ratio(tn, tn + fn),
    )  # fmt: skip


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U, ties count ½); NaN with one class only."""
    t = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[t].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for every distinct score, from (0, 0) to (1, 1)."""
    t = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    thr = np.unique(s)[::-1]
    n_pos, n_neg = max(int(t.sum()), 1), max(int((~t).sum()), 1)
    tpr = np.array([np.sum((s >= x) & t) for x in thr]) / n_pos
    fpr = np.array([np.sum((s >= x) & ~t) for x in thr]) / n_neg
    return (
        np.concatenate([[0.0], fpr]),
        np.concatenate([[0.0], tpr]),
        np.concatenate([[np.inf], thr]),
    )


def calibration_curve(
    y_true: np.ndarray, scores: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins on [0, 1]: (mean predicted, observed positive fraction, count) for the
    non-empty bins."""
    t = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.clip(np.asarray(scores, dtype=np.float64).ravel(), 0.0, 1.0)
    idx = np.minimum((s * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    keep = counts > 0
    mean_p = np.bincount(idx, weights=s, minlength=n_bins)[keep] / counts[keep]
    frac = np.bincount(idx, weights=t, minlength=n_bins)[keep] / counts[keep]
    return mean_p, frac, counts[keep]


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap (1 − alpha) interval of ``metric(*arrays)``, resampling cases (the
    first axis of every array) with replacement; NaN results (e.g. one class drawn) are
    dropped. Returns (NaN, NaN) when no resample gives a value."""
    rng = np.random.default_rng(seed)
    n = len(arrays[0])
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        v = metric(*(np.asarray(a)[idx] for a in arrays))
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


# --- RSNA 2022 -------------------------------------------------------------------------------
def rsna_weighted_log_loss(y_true: np.ndarray, y_prob: np.ndarray, eps: float = 1e-7) -> float:
    """RSNA 2022 competition metric on [N, 8] arrays, columns C1..C7, patient_overall.

    Per element, binary log loss weighted 1 (negative) / 2 (positive) for a vertebra and
    7 / 14 for patient_overall; per study the weighted mean Σwℓ / Σw; then the mean over
    studies. Probabilities are clipped to [eps, 1 − eps].
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.clip(np.asarray(y_prob, dtype=np.float64), eps, 1.0 - eps)
    if t.ndim != 2 or t.shape[1] != 8 or t.shape != p.shape:
        raise ValueError("expected [N, 8] arrays (C1..C7, patient_overall)")
    neg = np.array([RSNA_VERTEBRA_WEIGHTS[0]] * 7 + [RSNA_PATIENT_WEIGHTS[0]])
    pos = np.array([RSNA_VERTEBRA_WEIGHTS[1]] * 7 + [RSNA_PATIENT_WEIGHTS[1]])
    w = np.where(t > 0.5, pos, neg)
    loss = -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))
    return float(np.mean((w * loss).sum(axis=1) / w.sum(axis=1)))
