"""Stage 2: each vertebra the segmentation found, judged on a high-resolution crop of the source.

For every level present in the stage-1 label map (on the source grid) this cuts the crop planes
(:func:`cspine_desktop.imaging.crops.vertebra_crops`, planes as far apart as the card's
``plane_step_mm`` says; axial, and sagittal near the midline when the card's crops have
``sagittal_half_mm``), runs the classifier
engine on them, and turns the plane probabilities into

* a raw vertebra score: the mean of the ``top_k`` most suspicious planes of either view;
* a calibrated probability: Platt scaling fitted on the validation split
  (``p = σ(a · logit(score) + b)``), so that 0.3 means about 30 % of such vertebrae were
  fractured on validation;
* the heat-map: the classifier's localisation map × its plane probability, calibrated like the
  vertebra score (so heat at or above a vertebra threshold marks a plane that alone would be
  called), drawn back onto the source grid;
* the most suspicious source slice.

The patient probability is the maximum over the vertebrae's calibrated probabilities. All the
numbers (crop geometry, ``top_k``, plane spacing, calibration) come from the model card's
``stage2`` section, written by training, so training, evaluation and the app agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..imaging.crops import (
    CropConfig,
    PlaneSpacing,
    level_boxes,
    map_to_crop,
    paste_planes,
    vertebra_crops,
    view_slice,
)
from ..imaging.preprocess import PreparedVolume
from ..imaging.volume import Volume
from ..vertebrae import NAMES
from .aggregate import StudyScores
from .model_pass import Predictor

MAX_BATCH = 16


@dataclass(frozen=True)
class Stage2Config:
    """The card's ``stage2`` section."""

    crops: CropConfig
    top_k: int = 2
    spacing: PlaneSpacing = field(default_factory=lambda: PlaneSpacing(stride=2))
    calibration: tuple[float, float] = (1.0, 0.0)  # Platt (a, b) on logit(raw score)

    @classmethod
    def from_card(cls, section: Mapping[str, Any]) -> Stage2Config:
        cal = section.get("calibration") or {}
        return cls(
            crops=CropConfig.from_dict(section.get("crops")),
            top_k=int(section.get("top_k", 2)),
            spacing=PlaneSpacing.from_card(section),
            calibration=(float(cal.get("a", 1.0)), float(cal.get("b", 0.0))),
        )


@dataclass
class Stage2Scores:
    """Indexed C1..C7. ``raw`` is the uncalibrated top-k score; ``probability`` calibrated;
    NaN where the level was not found. ``peak_slice`` is a source slice index (Volume order)."""

    raw: np.ndarray
    probability: np.ndarray
    peak_slice: tuple[int | None, ...]
    heatmap: np.ndarray  # float32 [z, y, x] on the source grid, in [0, 1]
    n_planes: int
    seconds: float

    @property
    def patient_probability(self) -> float:
        p = self.probability[np.isfinite(self.probability)]
        return float(p.max()) if p.size else 0.0


def top_k_score(plane_probs: np.ndarray, top_k: int) -> float:
    """Mean of the ``top_k`` highest plane probabilities (0 for no planes)."""
    p = np.sort(np.asarray(plane_probs, np.float64).ravel())[::-1]
    if p.size == 0:
        return 0.0
    return float(p[: max(1, min(int(top_k), p.size))].mean())


def calibrate(raw: np.ndarray | float, calibration: tuple[float, float]) -> np.ndarray:
    """Platt scaling of raw scores: σ(a · logit(raw) + b)."""
    a, b = calibration
    r = np.clip(np.asarray(raw, np.float64), 1e-6, 1 - 1e-6)
    z = a * np.log(r / (1 - r)) + b
    return 1.0 / (1.0 + np.exp(-z))


def score_vertebrae(
    volume: Volume,
    labels_zyx: np.ndarray,
    classifier: Predictor,
    cfg: Stage2Config,
    *,
    check: Callable[[], None] | None = None,
) -> Stage2Scores:
    """Run stage 2 on every level present in ``labels_zyx`` (source grid, Volume order)."""
    import time

    raw = np.full(len(NAMES), np.nan)
    peaks: list[int | None] = [None] * len(NAMES)
    heat = np.zeros(volume.hu.shape, np.float32)
    n_planes, seconds = 0, 0.0
    boxes = level_boxes(labels_zyx, range(1, len(NAMES) + 1))
    for level in range(1, len(NAMES) + 1):
        best_p, best_z, axes = -1.0, None, (0, 1, 2)
        level_probs: list[np.ndarray] = []
        for view in cfg.crops.views if level in boxes else ():
            crops = vertebra_crops(
                volume,
                labels_zyx,
                level,
                cfg.crops,
                spacing=cfg.spacing,
                view=view,
                box=boxes[level],
            )
            if crops is None:
                continue
            probs, maps = [], []
            for i in range(0, len(crops.x), MAX_BATCH):
                t0 = time.perf_counter()
                out = classifier.predict(np.ascontiguousarray(crops.x[i : i + MAX_BATCH]))
                seconds += time.perf_counter() - t0
                probs.append(np.asarray(out["fracture"], np.float32).reshape(-1))
                maps.append(np.asarray(out["fracture_map"], np.float32))
                if check is not None:
                    check()
            p = np.concatenate(probs)
            m = map_to_crop(np.concatenate(maps), cfg.crops)
            level_probs.append(p)
            k = int(np.argmax(p))
            if p[k] > best_p:
                best_p, best_z = float(p[k]), view_slice(crops.geometry, k, m[k])
                axes = crops.geometry.axes
            # on the calibrated scale, so the heat compares with the vertebra thresholds
            p_cal = calibrate(p, cfg.calibration).astype(np.float32)
            paste_planes(heat, np.clip(m * p_cal[:, None, None], 0.0, 1.0), crops.geometry)
        if not level_probs:
            continue
        p_all = np.concatenate(level_probs)
        n_planes += len(p_all)
        raw[level - 1] = top_k_score(p_all, cfg.top_k)
        if best_z is not None:
            peaks[level - 1] = _source_slice(round(best_z), axes, volume.hu.shape)
    prob = np.where(np.isfinite(raw), calibrate(np.nan_to_num(raw), cfg.calibration), np.nan)
    return Stage2Scores(raw, prob, tuple(peaks), heat, n_planes, seconds)


def _source_slice(z_view: int, axes: tuple[int, int, int], shape: tuple[int, ...]) -> int:
    """A view slice index → index along the Volume's first axis (the slice axis when the view
    is the volume itself; else the centre slice, as the view's z is another array axis)."""
    if axes == (0, 1, 2):
        return int(np.clip(z_view, 0, shape[0] - 1))
    return int(shape[0] // 2)


def with_stage2(scores: StudyScores, stage2: Stage2Scores, prepared: PreparedVolume) -> StudyScores:
    """Stage-1 :class:`~.aggregate.StudyScores` with stage 2's probabilities and peaks: the
    vertebra probability is stage 2's calibrated one (0 where stage 2 found no crop), the
    patient probability their maximum over the levels present."""
    import dataclasses

    present = np.asarray(scores.present, bool)
    prob = np.where(present & np.isfinite(stage2.probability), stage2.probability, 0.0)
    peaks = tuple(
        prepared.grid_slice_of(p) if (p is not None and present[i]) else scores.peak_slice[i]
        for i, p in enumerate(stage2.peak_slice)
    )
    patient = float(prob[present].max()) if present.any() else 0.0
    return dataclasses.replace(
        scores,
        probability=prob.astype(np.float32),
        peak_slice=peaks,
        patient_probability=patient,
    )
