"""``cspine-evaluate``: test-set metrics of a trained run, thresholds from its validation split.

    cspine-evaluate --run runs/r1 --test /data/test --out runs/r1/eval
    cspine-evaluate --run runs/r1 --test T --out E --bundle assets/models/cspine-demo

Steps: load the run's model (``checkpoints/best.keras`` unless ``--model``) and config;
predict every validation study of the run's split and choose thresholds for the operating
point (sensitivity ≥ ``--min-sensitivity``); predict every test study; write ``metrics.json``,
``report.md``, ``per_study.csv`` and the figures to ``--out``; with ``--bundle``, write the
model bundle (float32 ``model.keras`` + ``model_card.json`` with thresholds and metrics).
Exit codes: 0 done, 2 bad input, 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cspine_desktop.errors import CspineInputError
from cspine_desktop.imaging.preprocess import PreprocessConfig

from .model.config import TrainConfig, TrainConfigError

if TYPE_CHECKING:
    from cspine_desktop.analysis.aggregate import AggregationConfig

log = logging.getLogger("cspine.evaluate")

TARGETS = {
    "dice_min": 0.90,
    "patient_auc": 0.97,
    "sensitivity": 0.90,
    "specificity": 0.90,
    "severe_sensitivity": 0.97,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cspine-evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="training run folder (from cspine-train)")
    p.add_argument("--test", required=True, help="RSNA-layout test folder (never trained on)")
    p.add_argument("--out", required=True, help="output folder for report, metrics and plots")
    p.add_argument("--model", help="model file (default RUN/checkpoints/best.keras)")
    p.add_argument("--val-data", help="validation data folder (default: the run's data_dir)")
    p.add_argument("--cache-dir", help="study cache (default: the run's cache)")
    p.add_argument("--min-sensitivity", type=float, default=0.90)
    p.add_argument("--top-k", type=int, default=3, help="slices averaged per vertebra")
    p.add_argument(
        "--map-weights",
        default="0,0.25,0.5,0.75,1",
        help="fracture-map weights tried in the aggregation; the validation split "
        "picks the one with the best mean of patient and vertebra AUC",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--max-studies", type=int, help="evaluate only the first N test studies")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--bundle", help="write the model bundle (model.keras + card) here")
    p.add_argument("--docs", help="with --bundle: write DOCS/model_card.md + DOCS/model_card/*.png")
    p.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="TITLE=TEXT",
        help="a note for the model card (repeatable)",
    )
    p.add_argument("--name", default="cspine-demo")
    p.add_argument("--version", default="0.1.0")
    return p


def _phantom_extras(data_dir: str | Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-study confounders and the generator metadata of a phantom set ({} otherwise)."""
    path = Path(data_dir) / "cspine_phantom.json"
    if not path.is_file():
        return {}, {}
    d = json.loads(path.read_text(encoding="utf-8"))
    studies = d.get("studies", []) if isinstance(d, dict) else []
    conf = {s.get("StudyInstanceUID", ""): s.get("confounders") or {} for s in studies}
    meta = {k: d.get(k) for k in ("generator", "seed", "config")} if isinstance(d, dict) else {}
    return conf, meta


def _val_score(outcomes: list[Any]) -> float:
    """Mean of patient AUC and pooled vertebra AUC (NaN parts ignored)."""
    from cspine_desktop.analysis.metrics import roc_auc

    t = np.stack([o.truth for o in outcomes])
    p = np.stack([o.probability for o in outcomes])
    pt = np.array([o.patient_truth for o in outcomes])
    pp = np.array([o.patient_probability for o in outcomes])
    parts = [roc_auc(pt, pp), roc_auc(t.ravel(), p.ravel())]
    parts = [x for x in parts if np.isfinite(x)]
    return float(np.mean(parts)) if parts else float("nan")


def _load_model(path: Path) -> Any:
    import keras

    from .model import losses  # noqa: F401  (registers the custom objects)

    if not path.is_file():
        raise TrainConfigError(f"model file {path} does not exist (has the run finished an epoch?)")
    return keras.models.load_model(str(path), compile=False)


@dataclass(frozen=True)
class ValidationChoice:
    """What the validation split decided: the aggregation (of the ``candidates`` tried, by
    ``scores``), its outcomes there, and the thresholds of the operating point."""

    aggregation: AggregationConfig
    outcomes: list[Any]
    scores: list[float]
    thresholds: dict[str, float]


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Choose the aggregation and thresholds on the run's validation split, measure the test
    set with them and write the outputs (see the module docstring); returns the metrics."""
    from cspine_desktop.analysis.aggregate import AggregationConfig
    from model_training.datasets import iter_eval_studies

    from .model.data import load_studies, run_split
    from .model.predict import evaluate_studies
    from .model.report import write_outputs

    run = Path(args.run)
    cfg = _run_config(run)
    pcfg = PreprocessConfig.from_dict(cfg.preprocessing)
    cache = Path(args.cache_dir or cfg.cache_dir or run / "cache")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = _load_model(Path(args.model) if args.model else run / "checkpoints" / "best.keras")
    weights = _map_weights(args.map_weights)
    candidates = [AggregationConfig(top_k=args.top_k, map_weight=w) for w in weights]

    t0 = time.perf_counter()
    val_data = args.val_data or cfg.data_dir
    train_cached = load_studies(val_data, pcfg, cache, args.workers, cfg.max_studies)
    split = run_split(train_cached, run, cfg.val_fraction, cfg.seed)
    val = _choose_on_validation(
        model, split.select(train_cached, "val"), val_data, candidates, args
    )

    test_cached = load_studies(args.test, pcfg, cache, args.workers, args.max_studies)
    overlap = {s.study_uid for s in test_cached} & {s.study_uid for s in train_cached}
    if overlap:
        raise TrainConfigError(f"{len(overlap)} test studies are also in the training data")
    test_conf, test_meta = _phantom_extras(args.test)
    log.info("test: predicting %d studies", len(test_cached))
    test_out, seg_cm = evaluate_studies(
        model, iter_eval_studies(test_cached), val.aggregation, test_conf, args.batch_size
    )
    metrics = _metrics(test_out, seg_cm, val, weights, args, cfg.seed)
    metrics["evaluation_time_s"] = round(time.perf_counter() - t0, 1)
    _, train_meta = _phantom_extras(cfg.data_dir)
    context = {
        "run": str(run),
        "model": str(args.model or "checkpoints/best.keras"),
        "test_dir": str(args.test),
        "train_meta": train_meta,
        "test_meta": test_meta,
        "n_train": len(split.train),
        "n_val": len(split.val),
        "n_test": len(test_cached),
        "aggregation": val.aggregation,
    }
    write_outputs(out, metrics, test_out, seg_cm, val.outcomes, val.thresholds, context)
    _write_per_study(out / "per_study.csv", test_out)
    if args.bundle:
        _write_bundle(args, model, cfg, val.thresholds, val.aggregation, metrics, context, out)
    return metrics


def _run_config(run: Path) -> TrainConfig:
    """The training configuration the run was made with."""
    cfg_path = run / "train_config.yaml"
    if not cfg_path.is_file():
        raise TrainConfigError(f"{run} is not a training run (no train_config.yaml)")
    return TrainConfig.load(cfg_path)


def _choose_on_validation(
    model: Any,
    val_set: list[Any],
    val_data: str | Path,
    candidates: list[AggregationConfig],
    args: argparse.Namespace,
) -> ValidationChoice:
    """Predict the validation studies once per candidate aggregation, keep the best scoring
    one (:func:`_val_score`) and choose the thresholds for ``--min-sensitivity`` on it."""
    from model_training.datasets import iter_eval_studies

    from .model.predict import evaluate_studies
    from .model.scoring import choose_thresholds

    val_conf, _ = _phantom_extras(val_data)
    if not val_set:
        raise TrainConfigError("the run has no validation split to choose thresholds on")
    log.info("validation: predicting %d studies", len(val_set))
    val_runs, _ = evaluate_studies(
        model, iter_eval_studies(val_set), candidates, val_conf, args.batch_size
    )
    choice = [_val_score(o) for o in val_runs]
    best = int(np.nanargmax(choice)) if np.isfinite(choice).any() else 0
    agg, val_out = candidates[best], val_runs[best]
    log.info(
        "aggregation (validation): map weight %.2f (scores %s)",
        agg.map_weight,
        ", ".join(f"{c:.4f}" for c in choice),
    )
    thresholds = choose_thresholds(val_out, args.min_sensitivity)
    log.info("thresholds (validation, sensitivity ≥ %.2f): %s", args.min_sensitivity, thresholds)
    return ValidationChoice(agg, val_out, choice, thresholds)


def _metrics(
    test_out: list[Any],
    seg_cm: np.ndarray,
    val: ValidationChoice,
    weights: list[float],
    args: argparse.Namespace,
    seed: int,
) -> dict[str, Any]:
    """The test-set metrics, with the validation split's and how the choices were made."""
    from .model.scoring import compute_metrics

    metrics = compute_metrics(test_out, val.thresholds, n_boot=args.bootstrap, seed=seed)
    validation = compute_metrics(val.outcomes, val.thresholds, n_boot=200, seed=seed)
    metrics["validation"] = {k: validation[k] for k in ("n_studies", "patient", "vertebra_pooled")}
    metrics["aggregation_choice"] = {
        "map_weights_tried": weights,
        "validation_score": [None if not np.isfinite(c) else round(c, 5) for c in val.scores],
        "chosen_map_weight": val.aggregation.map_weight,
        "score": "mean of patient AUC and all-vertebrae AUC on the validation split",
    }
    metrics["operating_point"] = {
        "min_sensitivity": args.min_sensitivity,
        "chosen_on": "validation split",
    }
    metrics["segmentation_confusion"] = seg_cm.tolist()
    metrics["targets"] = TARGETS
    return metrics


def _map_weights(text: str) -> list[float]:
    """``--map-weights``: comma-separated numbers in [0, 1]."""
    try:
        weights = [float(w) for w in str(text).split(",") if w.strip()]
    except ValueError:
        raise TrainConfigError("--map-weights takes numbers in [0, 1], e.g. 0,0.5,1") from None
    if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
        raise TrainConfigError("--map-weights takes numbers in [0, 1], e.g. 0,0.5,1")
    return weights


def _write_per_study(path: Path, outcomes: list[Any]) -> None:
    with open(path, "w", newline="") as fh:
        rows = [o.to_row() for o in outcomes]
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _write_bundle(
    args: argparse.Namespace,
    model: Any,
    cfg: TrainConfig,
    thresholds: dict[str, float],
    agg: AggregationConfig,
    metrics: dict[str, Any],
    context: dict[str, Any],
    out: Path,
) -> None:
    """``--bundle``: the model bundle with its card; with ``--docs``, the card's page."""
    from .model.card import write_bundle
    from .model.report import card_metrics, training_data

    notes = dict(n.split("=", 1) for n in args.note if "=" in n)
    card = write_bundle(
        model,
        args.bundle,
        cfg,
        thresholds,
        agg,
        card_metrics(metrics),
        training_data(context, cfg),
        args.name,
        args.version,
        notes,
    )
    log.info("bundle written: %s", card)
    if args.docs:
        from .model.card_doc import write_card_docs

        log.info("model card page: %s", write_card_docs(card, out, args.docs))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["stages"]:  # the two-stage bundle: export, calibrate, test
        from .stages import main as stages_main

        return stages_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        evaluate(args)
    except CspineInputError as exc:
        print(f"cspine-evaluate: {exc}", file=sys.stderr)
        return 2
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
