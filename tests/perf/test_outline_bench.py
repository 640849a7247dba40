"""Stage 1's outlines moved onto the bone edge: Dice against the phantom's truth, and what stage 2
would make of them.

For ``N`` fresh phantom studies (seeds from ``SEED0``: not training, validation or test seeds
of either stage) this runs stage 1 as the app does (``analyze`` without stage 2 or the card's
outline, :func:`~model_training.stages.stage1_masks.stage1_labels`), moves its outlines with
:func:`~cspine_desktop.analysis.outline.outline_to_bone` (the bundle card's section, or the
defaults), and prints the Dice of each level against the phantom's labels both ways, with a
paired bootstrap over studies, and the time the outline takes. With ``CSPINE_BENCH_STAGE2=1``
it also scores every level with the bundle's classifier (``score_vertebrae``) around the true
labels, stage 1's and the moved ones — and two hybrids that tell the level split from the
outline: stage 1's foreground with each voxel given the nearest true level in its slice, and the
true foreground with stage 1's levels — and prints the within-level and patient AUCs, each with
a paired bootstrap against stage 1's labels.

It fails if the moved outlines are not clearly better than stage 1's (the 95 % interval of the
mean Dice difference above zero).

Run: CSPINE_BENCH_STUDIES=100 [CSPINE_BENCH_STAGE2=1] .venv/bin/python -m pytest
tests/perf/test_outline_bench.py -m perf -s   (≈ 5 s per study on 2 cores, ≈ 20 s with stage 2).
Results: docs/benchmarks.md, "Outlines on the bone edge".
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from factories.phantoms import phantom_studies

from cspine_desktop.analysis.metrics import dice_counts, roc_auc
from cspine_desktop.analysis.outline import OutlineConfig, nearest_label, outline_to_bone
from cspine_desktop.analysis.stage2 import Stage2Config, score_vertebrae
from cspine_desktop.inference import demo_model_dir, load_bundle, open_engine
from model_training.model.scoring import within_level_auc
from model_training.stages.stage1_masks import stage1_labels

pytestmark = pytest.mark.perf

SEED0 = int(os.environ.get("CSPINE_BENCH_SEED0", "96000100"))
N = int(os.environ.get("CSPINE_BENCH_STUDIES", "20"))
STAGE2 = os.environ.get("CSPINE_BENCH_STAGE2", "") == "1"
BOOT = 1000
READS = (
    "true",
    "stage 1",
    "on the bone edge",
    "stage 1's outline, true levels",
    "true outline, stage 1's levels",
)


def _dice(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per level C1..C7, NaN where neither has it."""
    c = dice_counts(labels, truth)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c[:, 1] > 0, c[:, 0] / c[:, 1], np.nan)


def nearest_levels(foreground: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The voxels of ``foreground`` (> 0), each given the level of the nearest voxel of
    ``levels`` in its slice; slices where ``levels`` has none keep ``foreground``'s own."""
    out = np.array(foreground, np.uint8, copy=True)
    for z in np.flatnonzero(out.reshape(out.shape[0], -1).any(axis=1)):
        if levels[z].any():
            out[z] = np.where(out[z] > 0, nearest_label(levels[z]), 0)
    return out


def _aucs(truth: np.ndarray, raw: np.ndarray) -> tuple[float, float]:
    patient = np.nanmax(np.where(np.isnan(raw), -1.0, raw), axis=1)
    return within_level_auc(truth, raw), roc_auc(truth.any(axis=1), patient)


def test_outline_bench():
    bundle = load_bundle(demo_model_dir())
    cfg = OutlineConfig.from_card(bundle.card.get("outline")) or OutlineConfig()
    s2cfg = Stage2Config.from_card(bundle.card["stage2"])
    engine = open_engine(bundle, "auto", None, measure=False)
    dice: dict[str, list[np.ndarray]] = {"stage 1": [], "on the bone edge": []}
    pooled = {k: np.zeros((7, 2), np.int64) for k in dice}
    raws: dict[str, list[np.ndarray]] = {k: [] for k in READS}
    fractured, spent = [], []
    t0 = time.perf_counter()
    try:
        for study, volume, truth in phantom_studies(SEED0, N):
            s1 = stage1_labels(volume, engine, bundle.card)
            t1 = time.perf_counter()
            moved = outline_to_bone(s1, volume, cfg)
            spent.append(time.perf_counter() - t1)
            for name, lab in (("stage 1", s1), ("on the bone edge", moved)):
                dice[name].append(_dice(lab, truth))
                pooled[name] += dice_counts(lab, truth)
            fractured.append(np.asarray(study.fractured, bool))
            if STAGE2:
                maps = {
                    "true": truth,
                    "stage 1": s1,
                    "on the bone edge": moved,
                    "stage 1's outline, true levels": nearest_levels(s1, truth),
                    "true outline, stage 1's levels": nearest_levels(truth, s1),
                }
                for name in READS:
                    scored = score_vertebrae(volume, maps[name], engine.classifier, s2cfg)
                    raws[name].append(scored.raw)
    finally:
        engine.close()
    d = {k: np.array(v) for k, v in dice.items()}
    print(
        f"\n{N} phantom studies, seeds {SEED0}–{SEED0 + N - 1}, "
        f"{time.perf_counter() - t0:.0f} s; outline {np.mean(spent):.2f} s per study "
        f"(max {np.max(spent):.2f})"
    )
    print("| outlines | " + " | ".join(f"C{i}" for i in range(1, 8)) + " | mean |")
    print("|---|" + "---:|" * 8)
    for k, v in d.items():
        cells = " | ".join(f"{x:.3f}" for x in np.nanmean(v, axis=0))
        print(f"| {k}, mean over studies | {cells} | {np.nanmean(v):.3f} |")
    for k, c in pooled.items():
        per_level = c[:, 0] / np.maximum(c[:, 1], 1)
        cells = " | ".join(f"{x:.3f}" for x in per_level)
        print(f"| {k}, pooled | {cells} | {per_level.mean():.3f} |")
    per_study = np.nanmean(d["on the bone edge"], axis=1) - np.nanmean(d["stage 1"], axis=1)
    rng = np.random.default_rng(0)
    boot = np.array([per_study[rng.integers(0, N, N)].mean() for _ in range(BOOT)])
    lo, hi = np.percentile(boot, [2.5, 97.5])
    print(
        f"mean Dice, on the bone edge − stage 1: {per_study.mean():+.3f} (95 % {lo:+.3f}…{hi:+.3f})"
    )
    if STAGE2:
        truth_v = np.array(fractured)
        print("| stage 2 reads | within-level AUC | patient AUC |")
        print("|---|---:|---:|")
        for name, rows in raws.items():
            w, p = _aucs(truth_v, np.array(rows))
            print(f"| {name} | {w:.3f} | {p:.3f} |")
        r1 = np.array(raws["stage 1"])
        draws = [rng.integers(0, N, N) for _ in range(BOOT)]
        for name in READS[2:] + READS[:1]:
            r2 = np.array(raws[name])
            dd = np.array(
                [np.subtract(_aucs(truth_v[i], r2[i]), _aucs(truth_v[i], r1[i])) for i in draws]
            )
            dd = dd[np.isfinite(dd).all(axis=1)]
            if len(dd) < BOOT // 2:
                print(f"stage 2, {name} − stage 1: too few fractured studies for an interval")
                continue
            (w, p), (wl, pl), (wh, ph) = (
                dd.mean(0),
                np.percentile(dd, 2.5, 0),
                np.percentile(dd, 97.5, 0),
            )
            print(
                f"stage 2, {name} − stage 1: within-level {w:+.3f} ({wl:+.3f}…{wh:+.3f}), "
                f"patient {p:+.3f} ({pl:+.3f}…{ph:+.3f})"
            )
    assert lo > 0.0, f"the moved outlines are not clearly better: {lo:+.3f}…{hi:+.3f}"
