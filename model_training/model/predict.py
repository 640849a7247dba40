"""Whole-study prediction for evaluation: model outputs on every grid slice → study scores.

The same path as the app (``cspine_desktop.analysis``): ``run_model`` (neck planes, argmax
labels), ``clean_labels`` (largest part per vertebra) and ``aggregate_study`` — so evaluated
numbers are those the app would produce for the same model-grid study.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cspine_desktop.analysis.aggregate import AggregationConfig, aggregate_study
from cspine_desktop.analysis.metrics import confusion_matrix, dice_counts
from cspine_desktop.analysis.model_pass import run_model
from cspine_desktop.analysis.postprocess import clean_labels
from cspine_desktop.vertebrae import N_CLASSES

log = logging.getLogger(__name__)


@dataclass
class StudyOutcome:
    """Truth and prediction of one study (vertebra arrays indexed C1..C7)."""

    study_uid: str
    truth: np.ndarray  # bool [7]
    patient_truth: bool
    probability: np.ndarray  # float [7] (0 where not present)
    present: np.ndarray  # bool [7]
    patient_probability: float
    dice: np.ndarray  # float [7], NaN where the vertebra is in neither map
    dice_counts: np.ndarray  # int [7, 2] (2|P∩T|, |P|+|T|)
    fractures: list[dict[str, Any]] = field(default_factory=list)
    confounders: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "study_uid": self.study_uid,
            "patient_truth": self.patient_truth,
            "patient_probability": round(self.patient_probability, 5),
        }
        for i in range(7):
            row[f"C{i + 1}_truth"] = bool(self.truth[i])
            row[f"C{i + 1}_probability"] = round(float(self.probability[i]), 5)
            row[f"C{i + 1}_dice"] = round(float(self.dice[i]), 4)
        return row


def make_predictor(model: Any) -> Any:
    """A graph-compiled ``x [N, S, S, C] -> outputs`` function (traced once; eager calls of a
    400-layer network are many times slower)."""
    import tensorflow as tf

    shape = [None, *(int(d) for d in model.input.shape[1:])]

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)], jit_compile=False)
    def run(x):
        return model(x, training=False)

    return run


class KerasPredictor:
    """The engine protocol of ``analysis.model_pass`` around an in-memory Keras model."""

    def __init__(self, model: Any) -> None:
        s1, s2, c = (int(d) for d in model.input.shape[1:])
        self.input_shape = (s1, s2, c)
        self._run = make_predictor(model)

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        y = self._run(np.ascontiguousarray(batch, dtype=np.float32))
        return {k: np.asarray(v, dtype=np.float32) for k, v in y.items()}


def evaluate_studies(
    model: Any,
    studies: Iterable[Any],
    aggregation: AggregationConfig | Sequence[AggregationConfig],
    confounders: dict[str, dict[str, Any]] | None = None,
    batch_size: int = 16,
) -> tuple[Any, np.ndarray]:
    """Predict every study (``EvalStudy`` items) once and score it with ``aggregation``.

    Returns (outcomes, pixel confusion matrix [8, 8] of the segmentation, rows truth, columns
    prediction). With a sequence of aggregation configs, outcomes is a list per config (the
    model runs once; used to choose the aggregation on the validation split).
    """
    aggs = [aggregation] if isinstance(aggregation, AggregationConfig) else list(aggregation)
    engine = KerasPredictor(model)
    out: list[list[StudyOutcome]] = [[] for _ in aggs]
    seg_cm = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    for n, st in enumerate(studies, start=1):
        grid = run_model(engine, st.prepared, batch_size=batch_size)
        labels = clean_labels(
            grid.labels,
            min_voxels=aggs[0].min_voxels,
            slice_step_mm=st.prepared.cfg.slice_step_mm if aggs[0].assign_levels else None,
            hu=st.prepared.hu,
            pixel_mm=st.prepared.cfg.pixel_spacing_mm,
        ).labels
        if st.labels is not None:
            counts = dice_counts(labels, st.labels)
            with np.errstate(invalid="ignore", divide="ignore"):
                dice = np.where(counts[:, 1] > 0, counts[:, 0] / counts[:, 1], np.nan)
            seg_cm += confusion_matrix(st.labels, labels, N_CLASSES)
        else:
            counts, dice = np.zeros((7, 2), np.int64), np.full(7, np.nan)
        for agg, bucket in zip(aggs, out):
            scores = aggregate_study(labels, grid.fracture_cls, grid.fracture_map, agg)
            bucket.append(
                StudyOutcome(
                    study_uid=st.study_uid,
                    truth=np.asarray(st.fractured, bool),
                    patient_truth=bool(st.patient_overall),
                    probability=np.where(scores.present, scores.probability, 0.0).astype(
                        np.float64
                    ),
                    present=np.asarray(scores.present, bool),
                    patient_probability=float(scores.patient_probability),
                    dice=dice.astype(np.float64),
                    dice_counts=counts,
                    fractures=list(st.fractures),
                    confounders=(confounders or {}).get(st.study_uid, {}),
                )
            )
        if n % 10 == 0:
            log.info("evaluated %d studies", n)
    return (out[0] if isinstance(aggregation, AggregationConfig) else out), seg_cm
