"""Stage 1's labels on the source grid: nearest-neighbour transport against smooth transport.

Stage 1 labels a 1.25 mm × 2 mm model grid; the viewer, the exports and stage 2's crops use
the labels on the source grid (0.5–1 mm pixels). ``from_grid`` (nearest) copies each grid cell
as a block; ``labels_from_grid`` interpolates each label's indicator and takes the heaviest.

For ``N`` fresh phantom studies (seeds from ``SEED0``: not training, validation or test seeds):
- the ceiling: the true label map carried to the grid and back both ways, Dice against itself;
- the shipped model: ``analyze`` run twice, once with each transport (stage 1 and the level
  assignment are the same; stage 2 then reads its masks from the transported labels): Dice
  against the truth, and stage 2's within-level and patient AUC, with a paired bootstrap over
  studies of smooth − nearest;
- what stage 1's labels cost stage 2: ``analyze`` a third time with the TRUE label map handed
  to stage 2 in their place (everything else as the app runs it), its AUCs beside the others.

Run: CSPINE_BENCH_STUDIES=100 .venv/bin/python -m pytest tests/perf/test_label_transport_bench.py
-m perf -s   (≈ 10 s per study on 2 cores). Results: docs/benchmarks.md, "Stage 1's labels on
the source grid".
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from factories.phantoms import phantom_studies

import cspine_desktop.analysis.pipeline as pipeline
from cspine_desktop.analysis.metrics import dice_counts, roc_auc
from cspine_desktop.imaging.preprocess import (
    PreprocessConfig,
    from_grid,
    labels_from_grid,
    prepare_volume,
    to_grid,
)
from cspine_desktop.inference import demo_model_dir, load_bundle, open_engine
from cspine_desktop.vertebrae import NAMES
from model_training.model.scoring import within_level_auc

pytestmark = pytest.mark.perf

SEED0 = int(os.environ.get("CSPINE_BENCH_SEED0", "96000000"))
N = int(os.environ.get("CSPINE_BENCH_STUDIES", "20"))
BOOT = 400
WAYS = {
    "nearest": lambda grid, prepared: from_grid(grid, prepared, order="nearest"),
    "smooth": labels_from_grid,
}


def _dice(counts: np.ndarray) -> np.ndarray:
    return counts[:, 0] / np.maximum(counts[:, 1], 1)


def _within_level_auc(rows: list[dict], way: str) -> float:
    """The card's within-level AUC (fractured/intact pairs of one level; absent levels out)."""
    truth = np.array([r["truth"] for r in rows])
    prob = np.array([np.where(r[way]["present"], r[way]["prob"], np.nan) for r in rows])
    return within_level_auc(truth, prob)


def _patient_auc(rows: list[dict], way: str) -> float:
    y = np.array([r["patient_truth"] for r in rows], bool)
    return roc_auc(y, np.array([r[way]["patient"] for r in rows]))


def _mean_dice(rows: list[dict], way: str) -> float:
    return float(_dice(sum(r[way]["dice"] for r in rows)).mean())


def _scores(res) -> dict:
    """What stage 2 gave one analysis: each level's probability and presence, the patient's."""
    return {
        "prob": np.array([v.probability or 0.0 for v in res.result.vertebrae]),
        "present": np.array([v.present for v in res.result.vertebrae], bool),
        "patient": float(res.result.patient_overall.probability),
    }


def _dice_line(labels: str, way: str, d: np.ndarray) -> str:
    return f"| {labels} | {way} | " + " | ".join(f"{x:.3f}" for x in d) + f" | {d.mean():.3f} |"


def _measures(rows: list[dict]) -> dict[str, tuple[float, float, float]]:
    """Each measure's smooth − nearest and its 95 % paired bootstrap interval."""
    fns = {
        "mean Dice": _mean_dice,
        "within-level AUC": _within_level_auc,
        "patient AUC": _patient_auc,
    }
    rng = np.random.default_rng(0)
    draws: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(BOOT):
        sample = [rows[i] for i in rng.integers(0, len(rows), len(rows))]
        for k, fn in fns.items():
            delta = fn(sample, "smooth") - fn(sample, "nearest")
            if np.isfinite(delta):  # not a draw with one class only
                draws[k].append(delta)
    return {
        k: (fns[k](rows, "smooth") - fns[k](rows, "nearest"), *np.percentile(draws[k], [2.5, 97.5]))
        for k in fns
    }


def test_label_transport_bench(monkeypatch):
    bundle = load_bundle(demo_model_dir())
    cfg = PreprocessConfig.from_dict(dict(bundle.card["preprocessing"]))
    engine = open_engine(bundle, "auto", None, measure=False)
    ceiling = {w: np.zeros((7, 2), np.int64) for w in WAYS}
    rows: list[dict] = []
    spent = {w: 0.0 for w in WAYS}
    t0 = time.perf_counter()
    try:
        for study, volume, truth in phantom_studies(SEED0, N):
            prepared = prepare_volume(volume, cfg)
            grid = to_grid(truth, prepared)
            row: dict = {
                "truth": np.asarray(study.fractured, bool),
                "patient_truth": bool(study.patient_overall),
            }
            for way, transport in WAYS.items():
                ceiling[way] += dice_counts(transport(grid, prepared), truth)

                def timed(g, p, transport=transport, way=way):
                    t = time.perf_counter()
                    out = transport(g, p)
                    spent[way] += time.perf_counter() - t
                    return out

                monkeypatch.setattr(pipeline, "labels_from_grid", timed)
                res = pipeline.analyze(volume, engine, bundle.card, explain=False)
                row[way] = {**_scores(res), "dice": dice_counts(res.labels, truth)}
            monkeypatch.setattr(pipeline, "labels_from_grid", lambda g, p, t=truth: t)
            row["true labels"] = _scores(
                pipeline.analyze(volume, engine, bundle.card, explain=False)
            )
            rows.append(row)
    finally:
        engine.close()
    wall = time.perf_counter() - t0
    print(f"\n{N} phantom studies, seeds {SEED0}–{SEED0 + N - 1}, {wall:.0f} s")
    print("| labels | transport | " + " | ".join(NAMES) + " | mean |")
    print("|---|---|" + "---:|" * (len(NAMES) + 1))
    for way in WAYS:
        print(_dice_line("truth → grid → source", way, _dice(ceiling[way])))
    for way in WAYS:
        print(_dice_line("demo model, `analyze`", way, _dice(sum(r[way]["dice"] for r in rows))))
    cut = float(bundle.card["thresholds"]["patient_overall"])
    y = np.array([r["patient_truth"] for r in rows], bool)
    for way in (*WAYS, "true labels"):
        p = np.array([r[way]["patient"] for r in rows])
        print(
            f"stage 2 on {way}: within-level AUC {_within_level_auc(rows, way):.3f}, "
            f"patient AUC {_patient_auc(rows, way):.3f}; at the card's patient threshold "
            f"{cut:.3f}: sensitivity {np.mean(p[y] >= cut):.2f}, "
            f"specificity {np.mean(p[~y] < cut):.2f}"
        )
    for way in WAYS:
        print(f"{way} transport: {spent[way] / N * 1000:.0f} ms per study")
    for k, (delta, lo, hi) in _measures(rows).items():
        print(f"smooth − nearest, {k}: {delta:+.4f} (95 % {lo:+.4f}…{hi:+.4f})")
    rose = sum(_dice(r["smooth"]["dice"]).mean() > _dice(r["nearest"]["dice"]).mean() for r in rows)
    print(f"studies whose mean Dice rose: {rose} of {N}")
    assert _dice(ceiling["smooth"]).mean() > _dice(ceiling["nearest"]).mean()
    assert _mean_dice(rows, "smooth") > _mean_dice(rows, "nearest")
