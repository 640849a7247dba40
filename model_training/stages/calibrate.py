"""``stages calibrate``: the Platt calibration of the vertebra scores and the thresholds,
chosen on validation phantoms (seeds not used at training time)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.analysis.stage2 import calibrate

from ..datasets.crops_stream import VAL_SEED0
from ..jsonfile import plain, write_json
from .outcomes import run_bundle, truth_mask_outcomes

log = logging.getLogger("cspine.stages")


def fit_platt(raw: np.ndarray, y: np.ndarray, iters: int = 200) -> tuple[float, float]:
    """Platt scaling p = σ(a·logit(raw) + b): Newton steps with backtracking on the log loss
    plus a small ridge (finite on separable data; scores clipped to [1e-4, 1 − 1e-4])."""
    r = np.clip(np.asarray(raw, np.float64), 1e-4, 1 - 1e-4)
    x = np.log(r / (1 - r))
    y = np.asarray(y, np.float64)
    lam = 1e-2 * max(len(y), 1) ** 0.5

    def loss(w: np.ndarray) -> float:
        z = w[0] * x + w[1]
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * float(w @ w))

    w = np.array([1.0, 0.0])
    f = loss(w)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(w[0] * x + w[1], -50, 50)))
        g = np.array([np.sum((p - y) * x), np.sum(p - y)]) + lam * w
        s = p * (1 - p)
        h = np.array([[np.sum(s * x * x), np.sum(s * x)], [np.sum(s * x), np.sum(s)]])
        h += lam * np.eye(2)
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-6 and loss(w - t * step) > f - 1e-4 * t * float(g @ step):
            t *= 0.5
        w_new = w - t * step
        f_new = loss(w_new)
        if abs(f - f_new) < 1e-10:
            w, f = w_new, f_new
            break
        w, f = w_new, f_new
    return float(w[0]), float(w[1])


def _saved_outcomes(path: Path) -> tuple[list[int], str, list[Any]]:
    """(seeds, masks, outcomes) from the raw validation scores a ``--save`` wrote: choosing the
    operating point again costs no new scoring run."""
    from ..model.predict import StudyOutcome

    d = np.load(path)
    raw, present, truth = d["raw"], d["present"].astype(bool), d["truth"].astype(bool)
    if "seeds" not in d or "masks" not in d:
        raise ValueError(f"{path} has no seeds or masks: write it with this version's --save")
    outs = [
        StudyOutcome(
            study_uid=str(seed),
            truth=t,
            patient_truth=bool(t.any()),
            probability=np.where(p, r, 0.0),
            present=p,
            patient_probability=0.0,
            dice=np.full(7, np.nan),
            dice_counts=np.zeros((7, 2), np.int64),
            confounders={"_raw": r.tolist()},
        )
        for seed, r, p, t in zip(d["seeds"].tolist(), raw, present, truth)
    ]
    return [int(s) for s in d["seeds"]], str(d["masks"]), outs


def calibrate_bundle(args: argparse.Namespace) -> dict[str, Any]:
    from ..model.scoring import choose_thresholds, compute_metrics

    bundle = Path(args.bundle)
    card_path = bundle / "model_card.json"
    card = json.loads(card_path.read_text())
    card["stage2"]["calibration"] = {"a": 1.0, "b": 0.0}  # identity: the run gives raw scores
    write_json(card_path, card)
    if getattr(args, "scores", None):
        seeds, masks, outs = _saved_outcomes(Path(args.scores))
    else:
        seeds = [VAL_SEED0 + 1000 + i for i in range(args.studies)]  # not the training-time val
        masks = args.masks
        outs = (
            truth_mask_outcomes(bundle, seeds) if masks == "truth" else run_bundle(bundle, seeds)[0]
        )
    raw = np.array([o.confounders["_raw"] for o in outs])
    present = np.array([o.present for o in outs])
    truth = np.array([o.truth for o in outs])
    if args.save:
        np.savez(args.save, raw=raw, present=present, truth=truth, seeds=seeds, masks=masks)
    a, b = fit_platt(raw[present], truth[present])
    log.info("Platt calibration on %d vertebrae: a=%.4f b=%.4f", int(present.sum()), a, b)
    for o, r in zip(outs, raw):
        cal = np.where(o.present, calibrate(r, (a, b)), 0.0)
        o.probability = cal
        o.patient_probability = float(cal[o.present].max()) if o.present.any() else 0.0
    v_floor = float(getattr(args, "min_vertebra_sensitivity", 0.0))
    thresholds = choose_thresholds(outs, args.min_sensitivity, min_vertebra_sensitivity=v_floor)
    val = compute_metrics(outs, thresholds, n_boot=200, seed=0)
    card["stage2"]["calibration"] = {
        "a": a,
        "b": b,
        "method": "Platt scaling of logit(top-k plane score) on validation vertebrae",
        "n_vertebrae": int(present.sum()),
        "seeds": [seeds[0], seeds[-1]],
    }
    card["thresholds"] = thresholds
    metrics = dict(card.get("metrics") or {})
    metrics["validation"] = {k: val[k] for k in ("n_studies", "patient", "vertebra_pooled")}
    metrics["operating_point"] = {
        "min_sensitivity": args.min_sensitivity,
        "min_vertebra_sensitivity": v_floor,
        "chosen_on": f"validation phantoms (seeds {seeds[0]}–{seeds[-1]}), stage 2 on "
        + ("the true vertebra masks" if masks == "truth" else "stage 1's masks"),
    }
    card["metrics"] = json.loads(json.dumps(metrics, default=plain))
    write_json(card_path, card)
    log.info("thresholds: %s; validation patient %s", thresholds, val["patient"])
    return card
