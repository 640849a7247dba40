"""How far apart stage 2's crop planes may lie: accuracy against the number of planes scored.

Every plane (1 mm apart, or every slice of a thicker source; sagittal planes 1 mm apart) of
``N`` fresh phantom studies (seeds from ``SEED0``: not training, validation or test seeds) is
scored once by the bundled demo model's classifier on the true vertebra masks; each spacing
rule then takes its planes from those scores (the plane at each of its positions: exact when
its step is a whole number of scored planes, the nearest scored plane otherwise) and is scored
like the app scores (top-k mean per vertebra; the patient is the most suspicious vertebra, which
ranks as the calibrated maximum does). Within-level and patient AUC, paired bootstrap over
studies against the rule of demo models up to 0.7.0 (one plane or slice in two).

Run: CSPINE_BENCH_STUDIES=200 .venv/bin/python -m pytest tests/perf/test_plane_spacing_bench.py
-m perf -s   (≈ 5 s per study on 2 cores). Results: docs/benchmarks.md, "Stage 2 plane spacing".
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from cspine_desktop.analysis.stage2 import Stage2Config, top_k_score
from cspine_desktop.imaging.crops import CropConfig, PlaneSpacing
from cspine_desktop.inference import demo_model_dir, load_bundle, open_engine

pytestmark = pytest.mark.perf

SEED0 = int(os.environ.get("CSPINE_BENCH_SEED0", "96000000"))
N = int(os.environ.get("CSPINE_BENCH_STUDIES", "40"))
BOOT = 400
AXIAL, SAGITTAL = 0, 1


def _rules(crop: CropConfig) -> dict[str, PlaneSpacing]:
    return {
        "every plane": PlaneSpacing(step_mm=crop.plane_mm),  # as _factor counts
        "one in two (up to 0.7.0)": PlaneSpacing(stride=2),
        "2 mm, no slice skipped": PlaneSpacing(step_mm=2.0),
        "3 mm, no slice skipped": PlaneSpacing(step_mm=crop.tiling_step_mm),
        "4 mm": PlaneSpacing(step_mm=4.0),
    }


def _pick(scores: np.ndarray, factor: float) -> np.ndarray:
    """The scores at a rule's positions, ``factor`` scored planes apart (from the first)."""
    idx = np.unique(np.round(np.arange(0.0, scores.size - 0.5, max(factor, 1.0))).astype(int))
    return scores[idx[idx < scores.size]]


def _factor(rule: PlaneSpacing, crop: CropConfig, view: int, slice_mm: float) -> float:
    """How many scored planes (every plane) apart the rule's planes lie."""
    every = PlaneSpacing(step_mm=crop.plane_mm)
    if view == SAGITTAL:
        return rule.sagittal_step_mm(crop) / every.sagittal_step_mm(crop)
    return rule.axial_step(crop, slice_mm) / every.axial_step(crop, slice_mm)


def _score_studies(bundle, cfg: Stage2Config) -> list[dict]:
    from model_training.datasets.crops_stream import StreamConfig, study_planes
    from model_training.phantom.study import generate_study

    clf = open_engine(bundle, "auto", None, measure=False).classifier
    assert clf is not None, "the demo bundle has no stage-2 classifier"
    stream = StreamConfig(phantom_defaults=True)
    every = _rules(cfg.crops)["every plane"]
    out = []
    t0 = time.perf_counter()
    for seed in range(SEED0, SEED0 + N):
        st = generate_study(seed, stream.phantom_config())
        slice_mm = float(st.to_volume().spacing[0])
        pl = study_planes(seed, cfg.crops, stream, train=False, spacing=every, study=st)
        x = pl.x.astype(np.float32)
        batches = [clf.predict(x[i : i + 16])["fracture"] for i in range(0, len(x), 16)]
        p = np.concatenate([np.asarray(b).reshape(-1) for b in batches] or [np.zeros(0)])
        groups = {
            (lv, v): p[(pl.vertebra == lv) & (pl.view == v)]
            for lv in range(1, 8)
            for v in (AXIAL, SAGITTAL)
            if ((pl.vertebra == lv) & (pl.view == v)).any()
        }
        out.append(
            {"fractured": np.asarray(st.fractured, bool), "groups": groups, "slice_mm": slice_mm}
        )
    print(f"\n{N} studies scored at every plane in {time.perf_counter() - t0:.0f} s")
    return out


def _rule_scores(studies, rule, crop, top_k) -> tuple[np.ndarray, float]:
    """[n, 7] top-k vertebra scores (NaN: absent) and the planes per study the rule scores."""
    rows, planes = [], 0
    for s in studies:
        row = []
        for lv in range(1, 8):
            parts = [
                _pick(g, _factor(rule, crop, v, s["slice_mm"]))
                for (lv2, v), g in s["groups"].items()
                if lv2 == lv
            ]
            planes += sum(len(q) for q in parts)
            row.append(top_k_score(np.concatenate(parts), top_k) if parts else np.nan)
        rows.append(row)
    return np.array(rows), planes / max(len(studies), 1)


def _within(truth, scores, idx) -> float:
    from model_training.model.scoring import within_level_auc

    return within_level_auc(truth[idx], scores[idx])


def _patient(truth, scores, idx) -> float:
    from model_training.model.scoring import roc_auc

    return roc_auc(truth[idx].any(axis=1), np.nanmax(scores[idx], axis=1))


def test_plane_spacing_against_accuracy():
    bundle = load_bundle(demo_model_dir())
    cfg = Stage2Config.from_card(bundle.card["stage2"])
    studies = _score_studies(bundle, cfg)
    truth = np.array([s["fractured"] for s in studies])
    rules = _rules(cfg.crops)
    results = {name: _rule_scores(studies, r, cfg.crops, cfg.top_k) for name, r in rules.items()}
    base = results["one in two (up to 0.7.0)"][0]
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(studies), len(studies)) for _ in range(BOOT)]
    every = np.arange(len(studies))
    mine_rule = cfg.spacing
    shipped = next(
        (
            n
            for n, r in rules.items()
            if r.step_mm == mine_rule.step_mm and (r.step_mm > 0 or r.stride == mine_rule.stride)
        ),
        "the card's own",
    )
    print(f"the card's spacing: {cfg.spacing} ({shipped}); top-{cfg.top_k}")
    print("| planes | planes per study | within-level AUC | Δ (95 %) | patient AUC | Δ (95 %) |")
    for name, (scores, per_study) in results.items():
        dw = [_within(truth, scores, d) - _within(truth, base, d) for d in draws]
        dp = [_patient(truth, scores, d) - _patient(truth, base, d) for d in draws]
        print(
            f"| {name} | {per_study:.0f} | {_within(truth, scores, every):.3f} | "
            f"{np.mean(dw):+.3f} ({np.percentile(dw, 2.5):+.3f}…{np.percentile(dw, 97.5):+.3f}) | "
            f"{_patient(truth, scores, every):.3f} | "
            f"{np.mean(dp):+.3f} ({np.percentile(dp, 2.5):+.3f}…{np.percentile(dp, 97.5):+.3f}) |"
        )
    # the card's spacing may not be clearly worse than scoring every plane: the upper end of
    # the 95 % interval of its within-level AUC minus every plane's must reach zero
    mine = _rule_scores(studies, cfg.spacing, cfg.crops, cfg.top_k)[0]
    dense = results["every plane"][0]
    diff = [_within(truth, mine, d) - _within(truth, dense, d) for d in draws]
    print(f"the card's spacing − every plane, within-level AUC: {np.mean(diff):+.3f}")
    assert np.nanpercentile(diff, 97.5) >= 0.0, diff
