"""Stage 2's two views on the masks the app has: would axial planes alone do better?

The classifier was trained on axial and sagittal planes cut around the TRUE vertebra masks. The
app cuts them around stage 1's masks, whose outlines are rougher (notches, steps from the
model grid); on some levels the sagittal planes then score near 1 where the true masks give
0.3. For ``N`` fresh phantom studies (seeds from ``SEED0``: not training, validation or test
seeds) this

- runs stage 1 as the app does (``analyze`` without stage 2) and keeps its labels on the source
  grid;
- scores every level as the app does (``score_vertebrae``: the card's planes, top-k, the
  bundle's classifier as ``auto`` opens it), around the true masks and around stage 1's, with
  both views (what the card scores) and with the sagittal view left out (the axial planes are
  the same either way), and prints the within-level AUC (the card's pair-weighted one) and the
  patient AUC (maximum over the levels) of each, with a paired bootstrap over studies of
  axial − both.

It fails if axial planes alone are clearly better on stage 1's masks (the 95 % interval of
axial − both above zero for the within-level AUC): then the card should stop scoring the
sagittal view until the classifier reads stage 1's outlines.

Run: CSPINE_BENCH_STUDIES=200 .venv/bin/python -m pytest tests/perf/test_stage2_views_bench.py
-m perf -s   (≈ 11 s per study on 2 cores). Results: docs/benchmarks.md, "Stage 2's views on
stage 1's masks".
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pytest

from cspine_desktop.analysis.metrics import roc_auc
from cspine_desktop.analysis.stage2 import Stage2Config, score_vertebrae
from cspine_desktop.inference import demo_model_dir, load_bundle, open_engine
from model_training.model.scoring import within_level_auc
from model_training.phantom import generate_study
from model_training.stages.stage1_masks import stage1_labels

pytestmark = pytest.mark.perf

SEED0 = int(os.environ.get("CSPINE_BENCH_SEED0", "96000000"))
N = int(os.environ.get("CSPINE_BENCH_STUDIES", "20"))
BOOT = 1000


def _choices(cfg: Stage2Config) -> dict[str, Stage2Config]:
    """The card's stage 2 (both views) and the same with the sagittal view left out."""
    axial = dataclasses.replace(cfg.crops, sagittal_half_mm=0.0)
    return {"axial + sagittal": cfg, "axial": dataclasses.replace(cfg, crops=axial)}


def _aucs(truth: np.ndarray, raw: np.ndarray) -> tuple[float, float]:
    """(within-level AUC, patient AUC) of [n, 7] scores, NaN = level absent."""
    patient = np.nanmax(np.where(np.isnan(raw), -1.0, raw), axis=1)
    return within_level_auc(truth, raw), roc_auc(truth.any(axis=1), patient)


def test_stage2_views_bench():
    bundle = load_bundle(demo_model_dir())
    cfg = Stage2Config.from_card(bundle.card["stage2"])
    if "sagittal" not in cfg.crops.views:
        pytest.fail(
            "the bundle's classifier was not trained on sagittal planes: nothing to compare"
        )
    engine = open_engine(bundle, "auto", None, measure=False)
    choices = _choices(cfg)
    truth_rows: list[np.ndarray] = []
    raws: dict[tuple[str, str], list[np.ndarray]] = {}
    t0 = time.perf_counter()
    try:
        for seed in range(SEED0, SEED0 + N):
            study = generate_study(seed)
            volume = study.to_volume()
            truth_rows.append(np.asarray(study.fractured, bool))
            for name, labels in (
                ("true masks", study.in_volume_order(study.labels)),
                ("stage 1's masks", stage1_labels(volume, engine, bundle.card)),
            ):
                for choice, c in choices.items():
                    scored = score_vertebrae(volume, labels, engine.classifier, c)
                    raws.setdefault((name, choice), []).append(scored.raw)
    finally:
        engine.close()
    truth = np.array(truth_rows)
    print(
        f"\n{N} phantom studies, seeds {SEED0}–{SEED0 + N - 1}, {time.perf_counter() - t0:.0f} s; "
        f"{int(truth.sum())} fractured vertebrae"
    )
    print("| masks | views | within-level AUC | patient AUC |")
    print("|---|---|---:|---:|")
    raw = {key: np.array(rows) for key, rows in raws.items()}
    for (name, choice), r in raw.items():
        w, p = _aucs(truth, r)
        print(f"| {name} | {choice} | {w:.3f} | {p:.3f} |")
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, N, N) for _ in range(BOOT)]
    delta = {}
    for name in ("true masks", "stage 1's masks"):
        d = np.array(
            [
                np.subtract(
                    _aucs(truth[i], raw[name, "axial"][i]),
                    _aucs(truth[i], raw[name, "axial + sagittal"][i]),
                )
                for i in draws
            ]
        )
        d = d[np.isfinite(d).all(axis=1)]
        if len(d) < BOOT // 2:
            pytest.fail(f"{N} studies are too few for a paired interval (one class in most draws)")
        (w, p), (wl, pl), (wh, ph) = d.mean(0), np.percentile(d, 2.5, 0), np.percentile(d, 97.5, 0)
        print(
            f"axial − both, {name}: within-level {w:+.3f} (95 % {wl:+.3f}…{wh:+.3f}), "
            f"patient {p:+.3f} ({pl:+.3f}…{ph:+.3f})"
        )
        delta[name] = (wl, wh)
    lo, hi = delta["stage 1's masks"]
    assert lo <= 0.0, (
        "on stage 1's masks axial planes alone are clearly better than both views: "
        f"within-level axial − both 95 % {lo:+.3f}…{hi:+.3f}"
    )
