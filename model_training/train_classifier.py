"""``cspine-train-classifier``: train the stage-2 per-vertebra fracture classifier.

Streams fresh phantom studies (:mod:`model_training.datasets.crops_stream`), so nothing can be
memorised; after every epoch it scores a fixed validation set *and* a probe of training studies
the same way inference does (every other plane of every vertebra, top-k mean per vertebra), and
records plane and vertebra AUC for both. A train − validation vertebra-AUC gap above 0.05 is
logged as a defect. ``best.keras`` is the epoch with the best validation vertebra AUC *within a
level* (fractured and intact vertebrae of the same level only: the pooled AUC also rewards a
model that has only learnt which levels fracture most often); the learning rate halves when
that AUC has not improved for ``--patience`` epochs.

Runs in chunks: ``--max-minutes`` stops cleanly after the epoch that crosses the budget, and
``--resume`` continues from ``last.keras`` with the optimizer state, the epoch counter, the
learning rate and the stream's position in the seed sequence.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.analysis.metrics import roc_auc
from cspine_desktop.analysis.stage2 import top_k_score
from cspine_desktop.imaging.crops import CropConfig

from .datasets.crops_stream import (
    TRAIN_SEED0,
    VAL_SEED0,
    VIEWS,
    CropStream,
    Planes,
    StreamConfig,
    evaluation_planes,
)
from .model.classifier import ClassifierConfig
from .model.scoring import within_level_auc_flat

log = logging.getLogger("cspine.train_classifier")
MAX_GAP = 0.05
SELECT_ON = "vertebra_auc_within_level"  # best.keras and the plateau schedule


def vertebra_table(planes: Planes, probs: np.ndarray, top_k: int = 2) -> dict[str, np.ndarray]:
    """Per (study, vertebra): raw score, label, level."""
    key = planes.study.astype(np.int64) * 10 + planes.vertebra.astype(np.int64)
    keys, inv = np.unique(key, return_inverse=True)
    score = np.array([top_k_score(probs[inv == i], top_k) for i in range(len(keys))])
    label = np.array([bool(planes.fractured[inv == i][0]) for i in range(len(keys))])
    return {"key": keys, "score": score, "label": label, "level": keys % 10}


def evaluate_planes(model: Any, planes: Planes, batch: int = 64) -> dict[str, float]:
    """Plane and vertebra AUC over every view together, and the vertebra AUC of each view alone
    (``vertebra_auc_axial``: comparable with a model that had only axial planes)."""
    probs = predict_planes(model, planes.x, batch)
    vt = vertebra_table(planes, probs)
    out = {
        "plane_auc": roc_auc(planes.y.astype(bool), probs),
        "vertebra_auc": roc_auc(vt["label"], vt["score"]),
        # the pooled AUC also rewards knowing which levels fracture most: not what we want
        "vertebra_auc_within_level": within_level_auc_flat(vt["label"], vt["score"], vt["level"]),
    }
    for i, view in enumerate(VIEWS):
        sel = planes.view == i
        if sel.any() and sel.sum() < len(planes):
            one = planes.take(np.nonzero(sel)[0])
            vv = vertebra_table(one, probs[sel])
            out[f"vertebra_auc_{view}"] = roc_auc(vv["label"], vv["score"])
    return out


def predict_planes(model: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    if len(x) == 0:
        return np.zeros(0)
    y = model.predict(x.astype(np.float32), batch_size=batch, verbose=0)
    return np.asarray(y["fracture"]).reshape(-1)


def _auc_fields(val: dict[str, float], probe: dict[str, float]) -> dict[str, float]:
    """History fields: training-probe and validation AUCs and their vertebra-AUC gap."""
    out = {f"train_{k}": v for k, v in probe.items()}
    out.update({f"val_{k}": v for k, v in val.items()})
    out["gap"] = probe["vertebra_auc"] - val["vertebra_auc"]
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cspine-train-classifier", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path, help="run folder (checkpoints, history)")
    p.add_argument("--backbone", default="densenet121", choices=["densenet121", "tiny"])
    p.add_argument("--encoder-weights", default=None, help="none | imagenet (local) | PATH")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps", type=int, default=150, help="batches per epoch")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=2, help="epochs without val gain → lr / 2")
    p.add_argument("--map-weight", type=float, default=1.0)
    p.add_argument("--val-studies", type=int, default=32)
    p.add_argument("--probe-studies", type=int, default=16)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--pool", type=int, default=3000)
    p.add_argument("--crop-size", type=int, default=128)
    p.add_argument(
        "--sagittal-mm",
        type=float,
        default=12.0,
        help="sagittal planes within this many mm of the midline as a second view (0: axial only)",
    )
    p.add_argument(
        "--init-weights", type=Path, default=None, help="start from this .keras model's weights"
    )
    p.add_argument("--max-minutes", type=float, default=120.0, help="stop after this chunk")
    p.add_argument("--resume", action="store_true")
    return p


def _devices(backend: str) -> list[str]:
    """The devices the backend computes on, as it names them."""
    try:
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices()]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(0)] if torch.cuda.is_available() else ["cpu"]
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_logical_devices()]
    except Exception as exc:  # a record, never a reason to stop training
        return [f"unknown ({exc})"]
    return []


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def finish_epoch(
    model: Any,
    run: Path,
    state: dict[str, Any],
    history: list[dict[str, Any]],
    rec: dict[str, Any],
    score: float,
    patience: int,
    seeds_used: int,
    *,
    gap_of: str,
    select_on: str,
) -> None:
    """The end of an epoch, for both stream trainers: log ``rec`` (its ``gap``, train −
    validation, above ``MAX_GAP`` is memorisation); save ``best.keras`` when the validation
    ``score`` beats ``state["best"]``, halve the learning rate after ``patience`` epochs
    without; save ``last.keras``; write history.json and state.json (epoch, seeds, lr)."""
    history.append(rec)
    log.info("epoch %s", json.dumps(rec))
    if rec["gap"] > MAX_GAP:
        log.warning(
            "train − validation %s gap %.3f > %.2f: memorisation, fix the data or the design",
            gap_of,
            rec["gap"],
            MAX_GAP,
        )
    if not np.isfinite(score):
        # e.g. no level with both fractured and intact vertebrae: nothing to choose on
        log.warning("validation %s undefined: use more --val-studies", select_on)
    elif score > state["best"]:
        state["best"], state["wait"] = score, 0
        model.save(run / "best.keras")
    else:
        state["wait"] += 1
        if state["wait"] >= patience:
            new_lr = rec["lr"] * 0.5
            model.optimizer.learning_rate.assign(new_lr)
            log.info(
                "validation %s flat for %d epochs: lr → %.2g", select_on, state["wait"], new_lr
            )
            state["wait"] = 0
    model.save(run / "last.keras")
    state.update(
        epoch=rec["epoch"],
        seeds_used=seeds_used,
        lr=float(np.asarray(model.optimizer.learning_rate)),
    )
    _write_json(run / "history.json", history)
    _write_json(run / "state.json", state)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    run: Path = args.run
    run.mkdir(parents=True, exist_ok=True)
    crop = CropConfig(size=args.crop_size, sagittal_half_mm=args.sagittal_mm)
    stream_cfg = StreamConfig()
    state_path = run / "state.json"
    state: dict[str, Any] = {"epoch": 0, "seeds_used": 0, "lr": args.lr, "best": -1.0, "wait": 0}
    if args.resume:
        if not state_path.is_file():
            print(f"--resume: {state_path} not found", file=sys.stderr)
            return 2
        state = json.loads(state_path.read_text())
    cfg = ClassifierConfig(
        backbone=args.backbone, input_size=crop.size, encoder_weights=args.encoder_weights
    )
    config: dict[str, Any] = {
        "classifier": cfg.to_dict(),
        "crops": crop.to_dict(),
        "stream": asdict(stream_cfg),
        "args": {k: str(v) for k, v in vars(args).items()},
        "seeds": {"train_from": TRAIN_SEED0, "validation_from": VAL_SEED0},
    }
    _write_json(run / "config.json", config)
    # the stream's workers are spawned before TensorFlow is imported
    probe_n = args.probe_studies
    stream = CropStream(
        crop,
        stream_cfg,
        workers=args.workers,
        pool_size=args.pool,
        start_index=max(state["seeds_used"], probe_n),
    )
    t0 = time.time()
    log.info(
        "building evaluation sets (%d validation, %d training probe)", args.val_studies, probe_n
    )
    # as many processes as the stream has (they start before the model is built)
    val = evaluation_planes(
        [VAL_SEED0 + i for i in range(args.val_studies)], crop, stream_cfg, workers=args.workers
    )
    # the probe's studies are also trained on (each once, like every stream study)
    probe_seeds = [TRAIN_SEED0 + i for i in range(probe_n)]
    probe = evaluation_planes(probe_seeds, crop, stream_cfg, workers=args.workers)
    log.info(
        "evaluation planes: %d validation, %d probe (%.0f s)",
        len(val),
        len(probe),
        time.time() - t0,
    )

    import keras

    from .datasets.crops_stream import study_planes
    from .model.classifier import build_classifier, compile_classifier

    # which backend and devices trained this run (docs/training.md says what has been run)
    backend = keras.backend.backend()
    config["keras"] = {
        "version": keras.__version__,
        "backend": backend,
        "devices": _devices(backend),
    }
    _write_json(run / "config.json", config)
    log.info("keras %s on %s: %s", keras.__version__, backend, config["keras"]["devices"])
    if args.resume:
        model = keras.models.load_model(run / "last.keras", compile=True)
    else:
        model = build_classifier(cfg)
        if args.init_weights is not None:
            model.set_weights(
                keras.models.load_model(args.init_weights, compile=False).get_weights()
            )
            log.info("weights from %s", args.init_weights)
        compile_classifier(model, state["lr"], args.map_weight)
    model.optimizer.learning_rate.assign(state["lr"])
    # probe studies: their training planes enter the pool first
    for s in probe_seeds:
        stream.pool.append(study_planes(s, crop, stream_cfg, train=True))
        stream.n_pool += len(stream.pool[-1])
    stream.fill(min(args.pool, 600))
    history_path = run / "history.json"
    history = json.loads(history_path.read_text()) if history_path.is_file() else []
    if args.init_weights is not None and not args.resume:
        # the starting point, measured the same way and in the same run
        tv = time.time()
        v, pr = evaluate_planes(model, val), evaluate_planes(model, probe)
        history.append(
            {"epoch": 0, **_auc_fields(v, pr), "eval_seconds": round(time.time() - tv, 1)}
        )
        log.info("epoch %s", json.dumps(history[-1]))
        _write_json(history_path, history)
    start = time.time()
    for epoch in range(state["epoch"], args.epochs):
        te = time.time()
        model.reset_metrics() if hasattr(model, "reset_metrics") else None
        logs: dict[str, float] = {}
        losses = []
        for _ in range(args.steps):
            x, y = stream.batch(args.batch)
            logs = model.train_on_batch(x, y, return_dict=True)
            losses.append(float(logs["loss"]))
        train_s = time.time() - te
        tv = time.time()
        v = evaluate_planes(model, val)
        pr = evaluate_planes(model, probe)
        rec = {
            "epoch": epoch + 1,
            "lr": float(np.asarray(model.optimizer.learning_rate)),
            "loss": float(np.mean(losses)),
            "train_batch_plane_auc": float(logs.get("fracture_auc", logs.get("auc", float("nan")))),
            **_auc_fields(v, pr),
            "studies_seen": stream.seeds_used,
            "train_seconds": round(train_s, 1),
            "eval_seconds": round(time.time() - tv, 1),
        }
        finish_epoch(
            model, run, state, history, rec, v[SELECT_ON], args.patience, stream.seeds_used,
            gap_of="vertebra AUC", select_on="within-level vertebra AUC",
        )  # fmt: skip
        if (time.time() - start) / 60 > args.max_minutes and epoch + 1 < args.epochs:
            log.info(
                "time budget of %.0f min used: stopping; continue with --resume", args.max_minutes
            )
            break
    stream.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
