"""From per-slice model outputs to per-vertebra and per-patient fracture probabilities.

Shared by the app (verdicts) and by training/evaluation, so thresholds chosen on the
validation split mean the same thing in production. All arrays are on the model grid
([Zg, S, S], grid z toward the feet).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..vertebrae import N_CLASSES, NAMES

PATIENT_KEY = "patient_overall"


@dataclass(frozen=True)
class AggregationConfig:
    """How slice outputs become vertebra scores; stored in the model card ("aggregation").

    top_k       : mean of the k highest slice scores within the vertebra's extent.
    map_weight  : slice score = (1 − w)·fracture_cls + w·(mean of the top ``map_top_px``
                  fracture_map pixels inside the vertebra's mask on that slice).
    min_voxels  : pixels of a vertebra on a slice for that slice to count as showing it.
    patient     : "noisy_or" (1 − Π(1 − p_v)) or "max" over present vertebrae.
    assign_levels : put predicted levels in anatomical order down the whole spine before
                  scoring (:mod:`cspine_desktop.analysis.levels`); off only for test models
                  whose labels are not anatomy.
    """

    top_k: int = 3
    map_weight: float = 0.0
    map_top_px: int = 20
    min_voxels: int = 10
    patient: str = "noisy_or"
    assign_levels: bool = True

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> AggregationConfig:
        return cls(**{k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class StudyScores:
    """probability/present are indexed C1..C7; slice ranges and peaks are grid z indices."""

    probability: np.ndarray  # float32 [7]
    present: np.ndarray  # bool [7]
    slice_range: tuple[tuple[int, int] | None, ...]
    peak_slice: tuple[int | None, ...]
    patient_probability: float


def label_grid(vertebrae: np.ndarray) -> np.ndarray:
    """Label map uint8 [Zg, S, S] from softmax probabilities [Zg, S, S, 8] (or labels as is)."""
    v = np.asarray(vertebrae)
    if v.ndim == 4:
        if v.shape[-1] != N_CLASSES:
            raise ValueError(f"expected {N_CLASSES} classes, got {v.shape[-1]}")
        labels: np.ndarray = np.argmax(v, axis=-1)
        return labels.astype(np.uint8)
    return v.astype(np.uint8, copy=False)


def aggregate_study(
    vertebrae: np.ndarray,
    fracture_cls: np.ndarray,
    fracture_map: np.ndarray | None = None,
    config: AggregationConfig | None = None,
) -> StudyScores:
    """Per-vertebra fracture probability, presence, extent and most suspicious slice."""
    cfg = config or AggregationConfig()
    labels = label_grid(vertebrae)
    cls = np.asarray(fracture_cls, dtype=np.float32).reshape(labels.shape[0], len(NAMES))
    fmap = None if fracture_map is None else np.asarray(fracture_map, np.float32)
    if fmap is not None and fmap.ndim == 4:
        fmap = fmap[..., 0]

    flat = labels.reshape(labels.shape[0], -1)
    counts = np.stack([(flat == v).sum(axis=1) for v in range(1, N_CLASSES)], axis=1)  # [Z, 7]
    prob = np.zeros(len(NAMES), np.float32)
    present = np.zeros(len(NAMES), bool)
    ranges: list[tuple[int, int] | None] = []
    peaks: list[int | None] = []
    for i in range(len(NAMES)):
        zs = np.nonzero(counts[:, i] >= cfg.min_voxels)[0]
        if zs.size == 0:
            ranges.append(None)
            peaks.append(None)
            continue
        present[i] = True
        score = cls[zs, i].copy()
        if fmap is not None and cfg.map_weight > 0:
            score = (1 - cfg.map_weight) * score + cfg.map_weight * _map_scores(
                fmap[zs], labels[zs] == i + 1, cfg.map_top_px
            )
        k = min(cfg.top_k, zs.size)
        prob[i] = float(np.mean(np.sort(score)[-k:]))
        ranges.append((int(zs.min()), int(zs.max())))
        peaks.append(int(zs[int(np.argmax(score))]))
    p = prob[present]
    if p.size == 0:
        patient = 0.0
    elif cfg.patient == "max":
        patient = float(p.max())
    else:
        patient = float(1.0 - np.prod(1.0 - p.astype(np.float64)))
    return StudyScores(prob, present, tuple(ranges), tuple(peaks), patient)


def _map_scores(fmap: np.ndarray, masks: np.ndarray, top_px: int) -> np.ndarray:
    out = np.zeros(fmap.shape[0], np.float32)
    for z in range(fmap.shape[0]):
        vals = fmap[z][masks[z]]
        if vals.size:
            k = min(top_px, vals.size)
            out[z] = float(np.mean(np.partition(vals, vals.size - k)[-k:]))
    return out


def verdicts(scores: StudyScores, thresholds: dict[str, float]) -> dict[str, bool]:
    """Fractured or not, per vertebra ("C1".."C7") and for the patient ("patient_overall").

    A vertebra is fractured when present and its probability reaches its threshold. The
    patient is fractured when the patient probability reaches its threshold or any vertebra
    is fractured (a per-vertebra finding is never contradicted by the patient verdict).
    """
    out = {
        name: bool(scores.present[i] and scores.probability[i] >= thresholds[name])
        for i, name in enumerate(NAMES)
    }
    out[PATIENT_KEY] = bool(
        scores.patient_probability >= thresholds[PATIENT_KEY] or any(out[n] for n in NAMES)
    )
    return out
