"""``stages test``: the bundle on phantom studies of a seed never used before; writes the
metrics, the report and the card's ``metrics`` (and, with ``--docs``, the model card page)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.vertebrae import N_CLASSES

from ..datasets.crops_stream import TEST_SEED0
from ..jsonfile import plain, write_json
from .outcomes import run_bundle, truth_mask_outcomes


def test_bundle(args: argparse.Namespace) -> dict[str, Any]:
    from ..evaluate import TARGETS
    from ..model.report import card_metrics, write_outputs
    from ..model.scoring import compute_metrics

    bundle = Path(args.bundle)
    card_path = bundle / "model_card.json"
    card = json.loads(card_path.read_text())
    seeds = [TEST_SEED0 + i for i in range(args.studies)]
    t0 = time.perf_counter()
    thresholds = {k: float(v) for k, v in card["thresholds"].items()}
    outs = truth_mask_outcomes(bundle, seeds)
    metrics = compute_metrics(outs, thresholds, n_boot=args.bootstrap, seed=0)
    metrics["masks"] = "stage 2 on the true vertebra masks (segmentation errors excluded)"
    e2e_outs: list[Any] = []
    cm = np.zeros((N_CLASSES, N_CLASSES), np.int64)  # segmentation is scored end to end only
    if args.end_to_end:
        e2e_outs, cm = run_bundle(bundle, seeds[: args.end_to_end])
        metrics.update(_end_to_end_metrics(e2e_outs, thresholds))
    metrics["validation"] = (card.get("metrics") or {}).get("validation")
    metrics["operating_point"] = (card.get("metrics") or {}).get("operating_point")
    metrics["targets"] = TARGETS
    metrics["evaluation_time_s"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    context = _report_context(bundle, seeds, metrics, len(outs))
    write_outputs(out, metrics, outs, cm, e2e_outs or outs, thresholds, context)
    card["metrics"] = {
        **card_metrics(metrics),
        "masks": metrics["masks"],
        "end_to_end": metrics.get("end_to_end"),
    }
    write_json(card_path, card)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=plain))
    if args.docs:
        from ..model.card_doc import write_card_docs

        write_card_docs(card_path, out, args.docs)
    return metrics


def _end_to_end_metrics(e2e_outs: list[Any], thresholds: dict[str, float]) -> dict[str, Any]:
    """What the studies run end to end add to the metrics: both stages' verdicts, the share
    assessed (overall and per scan coverage), and the segmentation's Dice."""
    from ..model.scoring import compute_metrics

    e2e = compute_metrics(e2e_outs, thresholds, n_boot=200, seed=0)
    status = [o.confounders.get("_status") for o in e2e_outs]
    return {
        "end_to_end": {
            "n_studies": len(e2e_outs),
            "what": "both stages through analyze(), the backend auto picks, stage-1 masks",
            "patient": e2e["patient"],
            "vertebra_pooled": e2e["vertebra_pooled"],
            "assessed_share": float(np.mean([x == "assessed" for x in status])),
            "by_coverage": _by_coverage(e2e_outs),
        },
        "dice": e2e["dice"],
        "dice_measured_on": f"{len(e2e_outs)} studies end to end",
    }


def _report_context(
    bundle: Path, seeds: list[int], metrics: dict[str, Any], n_test: int
) -> dict[str, Any]:
    """What the report says about the run it reports on."""
    return {
        "run": "two-stage bundle",
        "model": str(bundle.name),
        "test_dir": f"phantom seeds {seeds[0]}–{seeds[-1]} (generated in memory)",
        "train_meta": {},
        "test_meta": {"seed": TEST_SEED0},
        "n_train": None,
        "n_val": (metrics.get("validation") or {}).get("n_studies"),
        "n_test": n_test,
        "aggregation": "stage 2: calibrated top-k plane score; patient = max over vertebrae",
    }


def _by_coverage(outs: list[Any]) -> dict[str, dict[str, float]]:
    """Assessed share and mean Dice per scan coverage (neck / head_neck / trauma)."""
    groups: dict[str, list[Any]] = {}
    for o in outs:
        groups.setdefault(o.confounders.get("_coverage", "neck"), []).append(o)
    return {
        k: {
            "n": len(v),
            "assessed_share": float(
                np.mean([o.confounders.get("_status") == "assessed" for o in v])
            ),
            "mean_dice": float(np.nanmean([np.nanmean(o.dice) for o in v])),
        }
        for k, v in groups.items()
    }
