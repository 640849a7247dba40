"""The accuracy gate: a reduced-precision model must match fp32 on held-out phantom studies.

Both engines run the app's own path (``prepare_volume`` → ``run_model`` on the neck planes →
``aggregate_study``) on the same studies. Compared: per-vertebra Dice against the true labels
(pooled over studies) and the patient-level ROC AUC. The candidate passes when no vertebra's
Dice drops by more than ``max_dice_drop`` and the AUC does not drop by more than
``max_auc_drop`` (defaults 0.005 each). The held-out seeds never overlap the training seeds
(:data:`HELD_OUT_SEED`) or the calibration seeds (:data:`CALIBRATION_SEED`).

The same gate judges every *runtime × precision pair* that may run a bundle file (e.g. OpenVINO
int8 / fp32 / bf16 beside ONNX Runtime): :func:`judge_runtime` compares each pair with the
ONNX Runtime fp32 reference, stage 1 by :func:`compare` and the stage-2 classifier by its
vertebra and plane AUC (:func:`compare_classifier`, the measure of its int8 export gate), and the
records go into the card entry's ``runtime_gates`` (read by
:mod:`cspine_desktop.inference.gates`: ``auto`` never picks a pair that failed).
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
from cspine_desktop.analysis.model_pass import run_model
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
    *,
    reference_scores: tuple[np.ndarray, float] | None = None,
) -> GateReport:
    """Run both engines on ``studies`` and judge the candidate (see module docstring).

    ``reference_scores``: the reference's ``evaluate`` result when already known (judging
    several candidates against one reference runs it once)."""
    aggregation = aggregation or AggregationConfig()
    ref_dice, ref_auc = reference_scores or evaluate(reference, studies, aggregation)
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


# --------------------------------------------------------------------------- stage 2
@dataclass(frozen=True)
class ClassifierGateReport:
    """The stage-2 classifier's gate: vertebra AUC (top-k of its planes, as the app scores a
    vertebra) and plane AUC, on every second crop plane of held-out phantom studies."""

    reference_vertebra_auc: float
    candidate_vertebra_auc: float
    reference_plane_auc: float
    candidate_plane_auc: float
    auc_drop: float  # the larger of the two drops
    max_auc_drop_allowed: float
    n_studies: int
    n_planes: int
    seed: int
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


def classifier_probs(engine: Any, x: np.ndarray, batch: int = 16) -> np.ndarray:
    """The classifier's ``fracture`` probability of every plane in ``x``."""
    out = [
        np.asarray(engine.predict(np.ascontiguousarray(x[i : i + batch], np.float32))["fracture"])
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)


def classifier_aucs(planes: Any, probs: np.ndarray, top_k: int) -> tuple[float, float]:
    """(vertebra AUC, plane AUC): the training loop's per-vertebra table, one definition."""
    from model_training.train_classifier import vertebra_table

    vt = vertebra_table(planes, probs, top_k)
    return roc_auc(vt["label"], vt["score"]), roc_auc(planes.y.astype(bool), probs)


def compare_classifier(
    reference: Any,
    candidate: Any,
    planes: Any,
    *,
    top_k: int,
    seed: int,
    n_studies: int,
    max_auc_drop: float = MAX_AUC_DROP,
    reference_aucs: tuple[float, float] | None = None,
) -> ClassifierGateReport:
    """Judge a stage-2 candidate against the reference on ``planes`` (crop planes with labels)."""
    ref_v, ref_p = reference_aucs or classifier_aucs(
        planes, classifier_probs(reference, planes.x), top_k
    )
    cand_v, cand_p = classifier_aucs(planes, classifier_probs(candidate, planes.x), top_k)
    drops = [r - c for r, c in ((ref_v, cand_v), (ref_p, cand_p)) if not math.isnan(r - c)]
    drop = max(drops) if drops else 0.0
    return ClassifierGateReport(
        reference_vertebra_auc=float(ref_v),
        candidate_vertebra_auc=float(cand_v),
        reference_plane_auc=float(ref_p),
        candidate_plane_auc=float(cand_p),
        auc_drop=float(drop),
        max_auc_drop_allowed=max_auc_drop,
        n_studies=n_studies,
        n_planes=len(planes.x),
        seed=seed,
        passed=within(drop, max_auc_drop),
    )
