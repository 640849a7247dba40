"""The classifier's epoch record: a model that only recognises the level is found out by the
within-level vertebra AUC, the number ``best.keras`` is chosen on."""

from __future__ import annotations

import numpy as np
import pytest

from model_training.datasets.crops_stream import Planes
from model_training.train_classifier import SELECT_ON, evaluate_planes


class LevelOnly:
    """Scores a plane by its level alone (read from the first pixel), whatever it shows."""

    def predict(self, x, batch_size=64, verbose=0):
        return {"fracture": x[:, 0, 0, 0].astype(np.float32)[:, None]}


def _planes(rng: np.random.Generator, n_studies: int = 60) -> Planes:
    share = {2: 0.5, 4: 0.05, 7: 0.5}  # C2 and C7 fracture often, C4 rarely
    rows = []
    for study in range(n_studies):
        for level, p in share.items():
            fractured = rng.random() < p
            for _ in range(3):
                rows.append((study, level, fractured))
    study, level, fractured = (np.array(c) for c in zip(*rows))
    x = np.zeros((len(rows), 4, 4, 4), np.float16)
    x[:, 0, 0, 0] = np.where(level == 4, 0.1, 0.9)  # what LevelOnly reads
    return Planes(
        x=x,
        y=fractured.astype(np.uint8),
        maps=np.zeros((len(rows), 2, 2), np.uint8),
        group=np.array(["plain"] * len(rows)),
        vertebra=level.astype(np.int8),
        study=study.astype(np.int64),
        fractured=fractured,
        view=np.zeros(len(rows), np.int8),
    )


def test_a_level_only_model_scores_chance_within_a_level():
    out = evaluate_planes(LevelOnly(), _planes(np.random.default_rng(0)))
    assert out["vertebra_auc"] > 0.65  # the pooled AUC is fooled
    assert out["vertebra_auc_within_level"] == pytest.approx(0.5)
    assert SELECT_ON == "vertebra_auc_within_level"
