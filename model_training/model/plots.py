"""Evaluation figures (matplotlib, Agg backend): ROC, calibration, confusion matrices."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cspine_desktop.analysis.metrics import calibration_curve, roc_auc, roc_curve
from cspine_desktop.vertebrae import NAMES


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_plot(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: Path,
    title: str,
    points: Sequence[tuple[str, float, float]] = (),
) -> Path:
    """ROC curves of (label, truth, scores); ``points`` mark operating points (label, fpr,
    tpr)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.4), dpi=110)
    for label, t, s in curves:
        fpr, tpr, _ = roc_curve(t, s)
        ax.plot(fpr, tpr, lw=1.6, label=f"{label} (AUC {roc_auc(t, s):.3f})")
    for label, x, y in points:
        ax.plot([x], [y], "o", ms=6, label=label)
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def calibration_plot(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]], path: Path, title: str, n_bins: int = 10
) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.4), dpi=110)
    for label, t, s in curves:
        mp, frac, counts = calibration_curve(t, s, n_bins)
        ax.plot(mp, frac, "o-", ms=3, lw=1.4, label=f"{label} (n={int(counts.sum())})")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(
        xlabel="predicted probability",
        ylabel="observed fraction fractured",
        title=title,
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def confusion_plot(
    cm: np.ndarray, labels: Sequence[str], path: Path, title: str, normalise: bool = False
) -> Path:
    """Counts (or row-normalised fractions) with rows = truth, columns = prediction."""
    plt = _plt()
    m = cm.astype(float)
    if normalise:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n), dpi=110)
    ax.imshow(m, cmap="Blues", vmin=0, vmax=m.max() or 1)
    for i in range(n):
        for j in range(n):
            txt = f"{m[i, j]:.2f}" if normalise else f"{int(cm[i, j])}"
            ax.text(
                j,
                i,
                txt,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if m[i, j] > 0.6 * (m.max() or 1) else "black",
            )
    ax.set_xticks(range(n), labels, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="truth", title=title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def dice_plot(dice: dict[str, dict], path: Path, target: float = 0.90) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.2), dpi=110)
    means = [dice[n]["mean"] for n in NAMES]
    lo = [dice[n]["mean"] - dice[n]["ci95"][0] for n in NAMES]
    hi = [dice[n]["ci95"][1] - dice[n]["mean"] for n in NAMES]
    ax.bar(NAMES, means, yerr=[lo, hi], color="#7aa6c2", capsize=3)
    ax.axhline(target, ls="--", color="crimson", lw=1, label=f"target {target:.2f}")
    ax.set(ylim=(0, 1), ylabel="Dice (mean per study, 95% CI)", title="Vertebra segmentation")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
