"""Thresholds for an operating point (validation split) and the test-set metrics.

Operating point (default sensitivity ≥ 0.90): the patient verdict as the app computes it
(``aggregate.verdicts``: patient probability ≥ its threshold, or any vertebra fractured) reaches
that sensitivity on the validation split with the highest specificity that allows. The vertebra
threshold feeds that verdict, so both are chosen together: every pair (one vertebra threshold,
one patient threshold) is tried, and among the pairs with the best patient specificity the one
whose vertebra calls are best is kept — meeting the same sensitivity on the pooled vertebrae if
any pair does, then the highest Youden index (sensitivity + specificity − 1). One vertebra
threshold serves C1..C7 (per-level positives are too few for seven separate choices).

Choosing the vertebra threshold alone for vertebra sensitivity ≥ 0.90 first (as an earlier
version did) lets a weak vertebra score fire in nearly every study and leaves no patient
specificity to choose from.

The other way round fails too: with patient specificity first and nothing asked of the vertebra
calls, a weak vertebra score ends at a threshold so high that the patient verdict comes from
the patient threshold alone and the level is almost never named (on stage 1's masks, vertebra
sensitivity 0.21). ``min_vertebra_sensitivity`` is a floor for the pooled vertebra calls: only
vertebra thresholds that find at least that share of the fractured vertebrae are tried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cspine_desktop.analysis.aggregate import PATIENT_KEY
from cspine_desktop.analysis.metrics import (
    binary_summary,
    bootstrap_ci,
    roc_auc,
    rsna_weighted_log_loss,
)
from cspine_desktop.vertebrae import NAMES

from .predict import StudyOutcome

DEGENERATIVE = ("osteoporosis", "osteophytes", "disc_narrowing", "sclerosis")


def _arrays(outcomes: Sequence[StudyOutcome]) -> dict[str, np.ndarray]:
    return {
        "truth": np.stack([o.truth for o in outcomes]).astype(bool),
        "prob": np.stack([o.probability for o in outcomes]),
        "present": np.stack([o.present for o in outcomes]),
        "patient_truth": np.array([o.patient_truth for o in outcomes], bool),
        "patient_prob": np.array([o.patient_probability for o in outcomes]),
    }


def patient_verdicts(a: dict[str, np.ndarray], thresholds: dict[str, float]) -> np.ndarray:
    """The app's patient verdict per study (see ``aggregate.verdicts``)."""
    tv = np.array([thresholds[n] for n in NAMES])
    any_v = np.any(a["present"] & (a["prob"] >= tv), axis=1)
    return any_v | (a["patient_prob"] >= thresholds[PATIENT_KEY])


def _vertebra_candidates(prob: np.ndarray, present: np.ndarray, limit: int = 200) -> np.ndarray:
    """Vertebra thresholds worth trying: the distinct scores of present vertebrae (thinned to
    ``limit`` quantiles) and one above every score (no vertebra called)."""
    scores = np.unique(prob[present])
    if scores.size > limit:
        scores = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, limit)))
    return np.append(scores, 1.0 + 1e-9)


def _rates_of(truth: np.ndarray, called: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sensitivity and specificity of each row of ``called`` [n_rules, n] (NaN without cases)."""
    pos, neg = truth.sum(), (~truth).sum()
    tp = (called & truth).sum(axis=-1).astype(float)
    tn = (~called & ~truth).sum(axis=-1).astype(float)
    sens = tp / pos if pos else np.full(tp.shape, np.nan)
    spec = tn / neg if neg else np.full(tn.shape, np.nan)
    return sens, spec


def choose_thresholds(
    outcomes: Sequence[StudyOutcome],
    min_sensitivity: float = 0.90,
    min_vertebra_sensitivity: float = 0.0,
) -> dict[str, float]:
    """Thresholds {"C1".."C7", "patient_overall"} for the operating point (see module doc)."""
    a = _arrays(outcomes)
    truth, present, prob = a["truth"], a["present"], a["prob"]
    pt, pp = a["patient_truth"], a["patient_prob"]
    patient_cands = np.array(sorted({*pp.tolist(), 1.0 + 1e-9}, reverse=True))
    by_patient = pp[None, :] >= patient_cands[:, None]  # [n_tp, n_studies]
    best: tuple[tuple[float, ...], float, float] | None = None
    for tv in _vertebra_candidates(prob, present):
        called_v = present & (prob >= tv)
        v_sens_1, v_spec_1 = _rates_of(truth.ravel(), called_v.ravel()[None, :])
        v_sens, v_spec = float(v_sens_1[0]), float(v_spec_1[0])
        if not np.isnan(v_sens) and v_sens < min_vertebra_sensitivity - 1e-12:
            continue
        p_sens, p_spec = _rates_of(pt, by_patient | called_v.any(axis=1)[None, :])
        ok = np.isnan(p_sens) | (p_sens >= min_sensitivity - 1e-12)
        if not ok.any():
            continue
        spec = np.where(np.isnan(p_spec), 0.0, p_spec)
        j = int(np.flatnonzero(ok)[np.argmax(spec[ok])])
        vertebra_ok = np.isnan(v_sens) or v_sens >= min_sensitivity - 1e-12
        youden = (0.0 if np.isnan(v_sens) else v_sens) + (0.0 if np.isnan(v_spec) else v_spec)
        key = (round(float(spec[j]), 12), float(vertebra_ok), round(youden, 12))
        if best is None or key > best[0]:
            best = (key, float(tv), float(patient_cands[j]))
    if best is None:  # no pair reaches the sensitivity: call everything (sensitivity 1)
        return {**{n: 0.0 for n in NAMES}, PATIENT_KEY: 0.0}
    _, tv, tp = best
    return {**{n: float(min(tv, 1.0)) for n in NAMES}, PATIENT_KEY: float(min(tp, 1.0))}


def _with_ci(
    fn: Any, *arrays: np.ndarray, n_boot: int, seed: int
) -> dict[str, float | list[float]]:
    value = fn(*arrays)
    lo, hi = bootstrap_ci(fn, *arrays, n_boot=n_boot, seed=seed)
    return {"value": float(value), "ci95": [lo, hi]}


def _rates(
    truth: np.ndarray, called: np.ndarray, scores: np.ndarray, n_boot: int, seed: int
) -> dict[str, Any]:
    """Sensitivity/specificity/accuracy (+CI, resampling cases) of binary calls and AUC."""

    def sens(t, c):
        return binary_summary(t, c, 0.5).sensitivity

    def spec(t, c):
        return binary_summary(t, c, 0.5).specificity

    def acc(t, c):
        return binary_summary(t, c, 0.5).accuracy

    s = binary_summary(truth, called.astype(float), 0.5)
    c = called.astype(float)
    return {
        "n": int(truth.size),
        "positives": int(truth.sum()),
        "tp": s.tp,
        "fp": s.fp,
        "tn": s.tn,
        "fn": s.fn,
        "sensitivity": _with_ci(sens, truth, c, n_boot=n_boot, seed=seed),
        "specificity": _with_ci(spec, truth, c, n_boot=n_boot, seed=seed + 1),
        "accuracy": _with_ci(acc, truth, c, n_boot=n_boot, seed=seed + 2),
        "auc": _with_ci(roc_auc, truth, scores, n_boot=n_boot, seed=seed + 3),
    }


def compute_metrics(
    outcomes: Sequence[StudyOutcome],
    thresholds: dict[str, float],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """All test-set metrics as a JSON-ready dict (see evaluate.py for the report layout)."""
    a = _arrays(outcomes)
    tv = np.array([thresholds[n] for n in NAMES])
    called_v = a["present"] & (a["prob"] >= tv)
    called_p = patient_verdicts(a, thresholds)
    m: dict[str, Any] = {"n_studies": len(outcomes)}

    dice = np.stack([o.dice for o in outcomes])
    counts = np.stack([o.dice_counts for o in outcomes]).sum(axis=0)
    m["dice"] = {}
    for i, n in enumerate(NAMES):
        d = dice[:, i][np.isfinite(dice[:, i])]
        lo, hi = bootstrap_ci(np.mean, d, n_boot=n_boot, seed=seed) if d.size else (np.nan,) * 2
        m["dice"][n] = {
            "mean": float(d.mean()) if d.size else float("nan"),
            "ci95": [lo, hi],
            "pooled": float(counts[i, 0] / counts[i, 1]) if counts[i, 1] else None,
            "n": int(d.size),
        }

    m["patient"] = _rates(a["patient_truth"], called_p, a["patient_prob"], n_boot, seed)
    # vertebra level, pooled: resample studies (rows) so within-study correlation is kept
    m["vertebra_pooled"] = _pooled(a, called_v, n_boot, seed)
    m["per_vertebra"] = {
        n: _rates(a["truth"][:, i], called_v[:, i], a["prob"][:, i], n_boot, seed)
        for i, n in enumerate(NAMES)
    }
    rsna_t = np.concatenate([a["truth"], a["patient_truth"][:, None]], axis=1).astype(float)
    rsna_p = np.concatenate([a["prob"], a["patient_prob"][:, None]], axis=1)
    m["rsna_weighted_log_loss"] = rsna_weighted_log_loss(rsna_t, rsna_p)
    m["by_fracture"] = _by_fracture(outcomes, called_v, called_p)
    m["mimics"] = _mimics(outcomes, called_v, called_p)
    m["thresholds"] = dict(thresholds)
    return m


def _pooled(a: dict[str, np.ndarray], called: np.ndarray, n_boot: int, seed: int) -> dict:
    t, c, p = a["truth"], called.astype(float), a["prob"]

    def flat(fn):
        return lambda tt, cc: fn(tt.ravel(), cc.ravel())

    s = binary_summary(t.ravel(), c.ravel(), 0.5)
    return {
        "n": int(t.size),
        "positives": int(t.sum()),
        "tp": s.tp,
        "fp": s.fp,
        "tn": s.tn,
        "fn": s.fn,
        "sensitivity": _with_ci(
            flat(lambda x, y: binary_summary(x, y, 0.5).sensitivity), t, c, n_boot=n_boot, seed=seed
        ),
        "specificity": _with_ci(
            flat(lambda x, y: binary_summary(x, y, 0.5).specificity),
            t,
            c,
            n_boot=n_boot,
            seed=seed + 1,
        ),
        "accuracy": _with_ci(
            flat(lambda x, y: binary_summary(x, y, 0.5).accuracy),
            t,
            c,
            n_boot=n_boot,
            seed=seed + 2,
        ),
        "auc": _with_ci(flat(roc_auc), t, p, n_boot=n_boot, seed=seed + 3),
        # what the pooled AUC owes to the level alone, and what the score knows beyond it
        "auc_within_level": _with_ci(within_level_auc, t, p, n_boot=n_boot, seed=seed + 4),
        "auc_level_only": level_only_auc(t, p),
    }


def within_level_auc(truth: np.ndarray, prob: np.ndarray) -> float:
    """AUC over fractured/intact pairs of the same level only ([n, 7] arrays; NaN = absent).

    The pooled AUC also rewards a score that only knows which levels fracture most often (C2
    and C7 on the phantom, as in real trauma); within a level that knowledge is worth nothing.
    """
    levels = np.broadcast_to(np.arange(truth.shape[1]), truth.shape)
    ok = np.isfinite(prob)
    return within_level_auc_flat(truth[ok], prob[ok], levels[ok])


def within_level_auc_flat(label: np.ndarray, score: np.ndarray, level: np.ndarray) -> float:
    """:func:`within_level_auc` on one row per vertebra: label, score and level."""
    num = den = 0.0
    for lv in np.unique(level):
        sel = level == lv
        t = np.asarray(label)[sel].astype(bool)
        pairs = float(t.sum()) * float((~t).sum())
        if pairs:
            num += roc_auc(t, np.asarray(score)[sel]) * pairs
            den += pairs
    return num / den if den else float("nan")


def level_only_auc(truth: np.ndarray, prob: np.ndarray) -> float:
    """Pooled AUC of a score that knows only the level: every vertebra scored by its level's
    share of fractures in these same studies (so an upper bound of a level prior)."""
    ok = np.isfinite(prob)
    t = truth.astype(float)
    share = np.array([t[ok[:, i], i].mean() if ok[:, i].any() else 0.0 for i in range(t.shape[1])])
    return roc_auc(truth[ok], np.broadcast_to(share, truth.shape)[ok])


def _by_fracture(
    outcomes: Sequence[StudyOutcome], called_v: np.ndarray, called_p: np.ndarray
) -> dict[str, Any]:
    """Detection rate per fracture kind and severity: a fracture counts as found when its
    vertebra is called fractured ("vertebra"), or when its study is ("patient")."""
    groups: dict[str, list[tuple[bool, bool]]] = {}
    for i, o in enumerate(outcomes):
        for f in o.fractures:
            v = int(f.get("vertebra", 0)) - 1
            if not 0 <= v < 7:
                continue
            hit = (bool(called_v[i, v]), bool(called_p[i]))
            for key in (f"kind:{f.get('kind', '?')}", f"severity:{f.get('severity', '?')}"):
                groups.setdefault(key, []).append(hit)
    return {
        k: {
            "n": len(h),
            "vertebra_sensitivity": float(np.mean([x[0] for x in h])),
            "patient_sensitivity": float(np.mean([x[1] for x in h])),
        }
        for k, h in sorted(groups.items())
    }


def _has(conf: dict[str, Any], key: str) -> bool:
    v = conf.get(key)
    return bool(v) if not isinstance(v, (list, tuple)) else len(v) > 0


def _mimics(
    outcomes: Sequence[StudyOutcome], called_v: np.ndarray, called_p: np.ndarray
) -> dict[str, Any]:
    """False-positive rates on fracture-free studies, overall and with degenerative mimics."""
    out: dict[str, Any] = {}
    negatives = [i for i, o in enumerate(outcomes) if not o.patient_truth]
    sets = {
        "all_negative": negatives,
        "degenerative_only": [
            i for i in negatives if any(_has(outcomes[i].confounders, k) for k in DEGENERATIVE)
        ],
    }
    for k in (*DEGENERATIVE, "vascular_channels", "dental_metal"):
        sets[f"with_{k}"] = [i for i in negatives if _has(outcomes[i].confounders, k)]
    for name, idx in sets.items():
        if not idx:
            out[name] = {"n": 0}
            continue
        out[name] = {
            "n": len(idx),
            "patient_fp_rate": float(np.mean(called_p[idx])),
            "vertebra_fp_rate": float(np.mean(called_v[idx])),
        }
    return out
