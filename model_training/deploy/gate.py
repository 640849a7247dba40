"""The accuracy gate: a reduced-precision model must match fp32 on held-out phantom studies.

Both engines run the app's own path (``prepare_volume`` → ``run_model`` on the neck planes →
``aggregate_study``) on the same studies. Compared: per-vertebra Dice against the true labels
(pooled over studies) and the patient-level ROC AUC. The candidate passes when no vertebra's
Dice drops by more than ``max_dice_drop`` and the AUC does not drop by more than
``max_auc_drop`` (defaults 0.005 each). The held-out seeds never overlap the training seeds
(:data:`HELD_OUT_SEED`) or the calibration seeds (:data:`CALIBRATION_SEED`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cspine_desktop.analysis.aggregate import AggregationConfig, aggregate_study
from cspine_desktop.analysis.metrics import dice_counts, roc_auc
from cspine_desktop.analysis.runner import run_model
from cspine_desktop.imaging.preprocess import (
    PreparedVolume,
    PreprocessConfig,
    prepare_volume,
    to_grid,
)
from cspine_desktop.vertebrae import NAMES

log = logging.getLogger(__name__)

CALIBRATION_SEED = 7_000_000
HELD_OUT_SEED = 8_000_000
MAX_DICE_DROP = 0.005
MAX_AUC_DROP = 0.005
# Drops are differences of fractions such as 0.5775 − 0.5725, which is 0.005000000000000004 in
# binary floating point; a drop equal to the allowance (to 1e-9) is within it.
_ROUNDING = 1e-9


def within(drop: float, allowed: float) -> bool:
    """A measured drop is acceptable when it does not exceed ``allowed`` (up to rounding)."""
    return drop <= allowed + _ROUNDING


@dataclass
class HeldOutStudy:
    study_uid: str
    prepared: PreparedVolume
    truth_labels: np.ndarray  # uint8 [Zg, S, S]
    fractured: bool


@dataclass(frozen=True)
class GateReport:
    reference_dice: tuple[float, ...]  # C1..C7 (NaN where no vertebra in truth nor prediction)
    candidate_dice: tuple[float, ...]
    reference_auc: float
    candidate_auc: float
    max_dice_drop: float
    auc_drop: float
    max_dice_drop_allowed: float
    max_auc_drop_allowed: float
    n_studies: int
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    return v


def phantom_studies(seed: int, n: int, config: Any = None, balanced: bool = True) -> Iterator[Any]:
    """``n`` phantom studies from consecutive seeds; ``balanced`` keeps about half fractured
    (so the patient AUC is defined) by skipping seeds of the class already full."""
    from model_training.phantom import PhantomConfig, generate_study

    config = config or PhantomConfig(fracture_prevalence=0.5)
    want_pos = n // 2 if balanced else n
    pos = neg = 0
    s = seed
    while pos + neg < n and s < seed + 20 * n:
        study = generate_study(s, config)
        s += 1
        if balanced and n >= 2:
            if study.patient_overall and pos >= want_pos:
                continue
            if not study.patient_overall and neg >= n - want_pos:
                continue
        pos += int(study.patient_overall)
        neg += int(not study.patient_overall)
        yield study


def held_out_set(cfg: PreprocessConfig, n: int, phantom_config: Any = None) -> list[HeldOutStudy]:
    out = []
    for study in phantom_studies(HELD_OUT_SEED, n, phantom_config):
        prepared = prepare_volume(study.to_volume(), cfg)
        truth = to_grid(study.in_volume_order(study.labels), prepared)
        out.append(HeldOutStudy(study.study_uid, prepared, truth, study.patient_overall))
    log.info("held-out set: %d studies, %d fractured", len(out), sum(s.fractured for s in out))
    return out


def evaluate(engine: Any, studies: list[HeldOutStudy], aggregation: AggregationConfig):
    """(pooled Dice per vertebra [7], patient AUC) of ``engine`` on ``studies``."""
    counts = np.zeros((len(NAMES), 2), np.int64)
    probs, truth = [], []
    for st in studies:
        grid = run_model(engine, st.prepared)
        counts += dice_counts(grid.labels, st.truth_labels)
        scores = aggregate_study(grid.labels, grid.fracture_cls, grid.fracture_map, aggregation)
        probs.append(scores.patient_probability)
        truth.append(st.fractured)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(counts[:, 1] > 0, counts[:, 0] / np.maximum(counts[:, 1], 1), np.nan)
    return dice, roc_auc(np.array(truth), np.array(probs))


def compare(
    reference: Any,
    candidate: Any,
    studies: list[HeldOutStudy],
    aggregation: AggregationConfig | None = None,
    max_dice_drop: float = MAX_DICE_DROP,
    max_auc_drop: float = MAX_AUC_DROP,
) -> GateReport:
    """Run both engines on ``studies`` and judge the candidate (see module docstring)."""
    aggregation = aggregation or AggregationConfig()
    ref_dice, ref_auc = evaluate(reference, studies, aggregation)
    cand_dice, cand_auc = evaluate(candidate, studies, aggregation)
    drops = ref_dice - cand_dice
    dice_drop = float(np.nanmax(drops)) if np.isfinite(drops).any() else 0.0
    auc_drop = 0.0 if math.isnan(ref_auc) or math.isnan(cand_auc) else ref_auc - cand_auc
    passed = within(dice_drop, max_dice_drop) and within(auc_drop, max_auc_drop)
    return GateReport(
        reference_dice=tuple(float(d) for d in ref_dice),
        candidate_dice=tuple(float(d) for d in cand_dice),
        reference_auc=float(ref_auc),
        candidate_auc=float(cand_auc),
        max_dice_drop=dice_drop,
        auc_drop=float(auc_drop),
        max_dice_drop_allowed=max_dice_drop,
        max_auc_drop_allowed=max_auc_drop,
        n_studies=len(studies),
        passed=bool(passed),
    )
