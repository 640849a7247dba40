"""Realism measures: the same tissue regions, found by the same rules, on a real neck CT slice
and on phantom slices, so their HU statistics can be compared (docs/phantom.md).

Regions of one axial slice around a vertebral body centre (row, col):

- cancellous bone: a 7 × 7 mm box at the body centre;
- cortical bone: the densest fifth of the vertebra (bone above 200 HU connected to the body,
  within 45 mm of it) — the shell, wherever partial volume leaves it;
- muscle and fat: soft tissue within 60 mm of the body (−400 to 150 HU, away from bone by
  2 mm), split at −30 HU into fat (below) and muscle (above).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TISSUES = ("cortical", "cancellous", "muscle", "fat")


@dataclass(frozen=True)
class Stats:
    median: float
    q1: float
    q3: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "q1": self.q1, "q3": self.q3, "n": self.n}


def _stats(values: np.ndarray) -> Stats:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return Stats(float("nan"), float("nan"), float("nan"), 0)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return Stats(float(med), float(q1), float(q3), int(v.size))


def tissue_masks(
    hu: np.ndarray, center_rc: tuple[float, float], pixel_mm: float
) -> dict[str, np.ndarray]:
    """Boolean masks of the four tissues on one slice [y, x] (see the module docstring)."""
    h, w = hu.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - center_rc[0], xx - center_rc[1]) * pixel_mm
    img = np.asarray(hu, np.float32)
    bone = (img > 200).astype(np.uint8)
    _, comp = cv2.connectedComponents(bone, connectivity=8)
    cy, cx = center_rc
    at_body = (np.abs(yy - cy) * pixel_mm < 6) & (np.abs(xx - cx) * pixel_mm < 6)
    keep = np.unique(comp[(r < 45.0) & (comp > 0) & at_body])
    vert = np.isin(comp, keep[keep > 0]) & (r < 45.0)
    dense = vert & (img >= np.percentile(img[vert], 80)) if vert.any() else vert
    half = 3.5 / pixel_mm
    box = (np.abs(yy - center_rc[0]) <= half) & (np.abs(xx - center_rc[1]) <= half)
    k2 = max(1, round(2.0 / pixel_mm))
    bone_zone = cv2.dilate(bone, np.ones((2 * k2 + 1, 2 * k2 + 1), np.uint8)) > 0
    soft = (r < 60.0) & (img > -400) & (img < 150) & ~bone_zone
    return {
        "cortical": dense,
        "cancellous": box,
        "muscle": soft & (img >= -30),
        "fat": soft & (img < -30),
    }


def tissue_stats(
    hu: np.ndarray, center_rc: tuple[float, float], pixel_mm: float
) -> dict[str, Stats]:
    """Median and quartiles (HU) of each tissue on one slice."""
    masks = tissue_masks(hu, center_rc, pixel_mm)
    return {t: _stats(np.asarray(hu)[m]) for t, m in masks.items()}


def body_centre(labels_slice: np.ndarray, level: int) -> tuple[float, float]:
    """(row, col) of a phantom vertebral body: the middle of the front 35 % of the vertebra's
    pixels (the body lies in front of the canal)."""
    ys, xs = np.nonzero(labels_slice == level)
    front = ys <= np.percentile(ys, 35)
    return float(np.median(ys[front])), float(np.median(xs[front]))
