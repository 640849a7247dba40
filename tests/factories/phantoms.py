"""Fresh phantom studies for the benchmarks that compare label maps study by study, and the
way stage 1 got a real neck's levels wrong."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def phantom_studies(seed0: int, n: int) -> Iterator[tuple[Any, Any, np.ndarray]]:
    """(study, its volume, its true labels in the volume's order) for seeds ``seed0`` …
    ``seed0 + n − 1``, the phantom's default mix."""
    from model_training.phantom import generate_study

    for seed in range(seed0, seed0 + n):
        study = generate_study(seed)
        yield study, study.to_volume(), study.in_volume_order(study.labels)


def like_the_real_failure(labels: np.ndarray, hu: np.ndarray) -> np.ndarray:
    """A true label map [Zg, S, S] (the demo model's grid) shifted the way stage 1 labelled a
    real head-and-neck CT: skull base (bone up to 28 mm above C1) labelled C1; C1 → C2; the
    lower half of C2 and C3–C6 one level too high; C7 stays C7."""
    pred = labels.copy()
    for k, v in {1: 2, 3: 4, 4: 5, 5: 6, 6: 7}.items():
        pred[labels == k] = v
    z2 = np.nonzero((labels == 2).any(axis=(1, 2)))[0]
    low = z2[len(z2) // 2 :]
    sub = pred[low]
    sub[labels[low] == 2] = 3
    pred[low] = sub
    z1 = int(np.nonzero((labels == 1).any(axis=(1, 2)))[0][0])
    _, yy, xx = np.nonzero(labels)
    cy, cx = int(np.median(yy)), int(np.median(xx))
    win = (slice(cy - 50, cy + 40), slice(cx - 40, cx + 40))
    for z in range(max(0, z1 - 14), z1):
        pred[z][win][hu[z][win] > 300] = 1
    return pred


def c1_named_c2(labels: np.ndarray, c7: str = "lost") -> np.ndarray:
    """A true label map named one too high as in ``like_the_real_failure`` but with nothing
    labelled above C1: C1 labelled C2, C2 labelled C3, …, as stage 1 would label a neck whose
    C1 it took for C2. The true C7 has no name left: ``c7="lost"`` leaves it unlabelled,
    ``c7="merged"`` labels it C7 with the true C6."""
    pred = np.zeros_like(labels)
    for k in range(1, 7):
        pred[labels == k] = k + 1
    if c7 == "merged":
        pred[labels == 7] = 7
    return pred


def c2_named_c1(labels: np.ndarray, c1: str = "lost") -> np.ndarray:
    """A true label map named one too low: C2 labelled C1, C3 labelled C2, …, C7 labelled C6,
    and nothing below labelled C7 (the phantom labels no T1). The true C1: ``c1="lost"``
    leaves it unlabelled, ``c1="merged"`` labels it C1 with the true C2."""
    pred = np.zeros_like(labels)
    for k in range(2, 8):
        pred[labels == k] = k - 1
    if c1 == "merged":
        pred[labels == 1] = 1
    return pred
