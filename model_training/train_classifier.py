"""``cspine-train-classifier``: train the stage-2 per-vertebra fracture classifier.

Streams fresh phantom studies (:mod:`model_training.datasets.crops_stream`), so nothing can be
memorised; after every epoch it scores a fixed validation set *and* a probe of training studies
the same way inference does (every other plane of every vertebra, top-k mean per vertebra), and
records plane and vertebra AUC for both. A train − validation vertebra-AUC gap above 0.05 is
logged as a defect. ``best.keras`` is the epoch with the best validation vertebra AUC *within a
level* (fractured and intact vertebrae of the same level only: the pooled AUC also rewards a
model that has only learnt which levels fracture most often); the learning rate halves when
that AUC has not improved for ``--patience`` epochs. With ``--stage1-masks`` (stage 1's label
maps of the validation studies, :mod:`model_training.stages.stage1_masks`) the validation set
is scored a second time with its crops cut around stage 1's masks, as the app cuts them
(``val_stage1_*`` in the history), and ``best.keras`` and the schedule follow that AUC.

Runs in chunks: ``--max-minutes`` stops cleanly after the epoch that crosses the budget, and
``--resume`` continues from ``last.keras`` with the optimizer state, the epoch counter, the
learning rate and the stream's position in the seed sequence.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
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
from .jsonfile import write_json
from .model.classifier import ClassifierConfig
from .model.scoring import within_level_auc_flat
from .stages.stage1_masks import load_label_maps
from .stream_training import (
    Scoring,
    add_precision_argument,
    evaluation_sets,
    in_precision,
    open_stream,
    record_keras,
    run_config,
    start_run,
    train_epochs,
    validation_seeds,
)

log = logging.getLogger("cspine.train_classifier")
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


def validation_metrics(model: Any, val: Planes, val_stage1: Planes | None) -> dict[str, float]:
    """:func:`evaluate_planes` of the validation set on the true masks, and with ``stage1_``
    before each name on stage 1's masks when given."""
    out = evaluate_planes(model, val)
    if val_stage1 is not None:
        out.update({f"stage1_{k}": v for k, v in evaluate_planes(model, val_stage1).items()})
    return out


def predict_planes(model: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    if len(x) == 0:
        return np.zeros(0)
    y = model.predict(x.astype(np.float32), batch_size=batch, verbose=0)
    return np.asarray(y["fracture"]).reshape(-1)


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
    p.add_argument(
        "--stage1-masks",
        type=Path,
        default=None,
        help="stage 1's labels of the validation studies (cspine-evaluate stages masks): also "
        "validate on them, and choose best.keras on them (a run keeps its own; resuming it "
        "with others is refused)",
    )
    p.add_argument("--max-minutes", type=float, default=120.0, help="stop after this chunk")
    add_precision_argument(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run from last.keras: its own crops and network (config.json), "
        "optimizer state, epoch, learning rate and place in the seed sequence",
    )
    return p


def _configs(
    args: argparse.Namespace, saved: dict[str, Any] | None
) -> tuple[CropConfig, ClassifierConfig]:
    """The crops and the network: a resumed run's own (``saved``), else the command line's."""
    if saved is not None:
        return CropConfig.from_dict(saved["crops"]), ClassifierConfig.from_dict(saved["classifier"])
    crop = CropConfig(size=args.crop_size, sagittal_half_mm=args.sagittal_mm)
    cfg = ClassifierConfig(
        backbone=args.backbone, input_size=crop.size, encoder_weights=args.encoder_weights
    )
    return crop, cfg


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (as written, or once resolved)."""
    return str(a) == str(b) or Path(a).resolve() == Path(b).resolve()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    run: Path = args.run
    started = start_run(run, args)
    if started is None:
        return 2
    state, saved = started
    run.mkdir(parents=True, exist_ok=True)
    stream_cfg = StreamConfig()
    try:
        crop, cfg = _configs(args, saved)
    except (KeyError, TypeError, ValueError) as exc:
        print(f"cannot resume {run}: its config.json does not fit ({exc})", file=sys.stderr)
        return 2
    own = (saved or {}).get("stage1_masks")
    if own is not None and args.stage1_masks is not None and not _same_file(own, args.stage1_masks):
        print(
            f"--stage1-masks {args.stage1_masks}: {run} validates on its own stage-1 maps, "
            f"{own}, and chooses best.keras on them; start a new run to validate on others",
            file=sys.stderr,
        )
        return 2
    masks_file = own or args.stage1_masks
    val_seeds = validation_seeds(args, VAL_SEED0)
    try:
        stage1_labels = None if masks_file is None else load_label_maps(Path(masks_file), val_seeds)
    except (OSError, KeyError, ValueError) as exc:
        print(f"--stage1-masks: {exc}", file=sys.stderr)
        return 2
    config = run_config(
        run,
        args,
        (TRAIN_SEED0, VAL_SEED0),
        saved,
        classifier=cfg.to_dict(),
        crops=crop.to_dict(),
        stream=asdict(stream_cfg),
        stage1_masks=None if masks_file is None else str(masks_file),
    )
    if masks_file is not None and config.get("stage1_masks") is None:
        # a run resumed with stage 1's masks for the first time: from now on best.keras is
        # chosen on them, so the best so far (on the true masks) no longer counts
        config["stage1_masks"] = str(masks_file)
        write_json(run / "config.json", config)
        state["best"], state["wait"] = -1.0, 0
        log.info(
            "validation on stage 1's masks from now on (%s): best.keras starts afresh", masks_file
        )
    # the stream's workers are spawned before the Keras backend is imported
    with open_stream(partial(CropStream, crop, stream_cfg), args, state) as stream:
        val, probe, probe_seeds = evaluation_sets(
            # as many processes as the stream has (they start before the model is built)
            lambda seeds: evaluation_planes(seeds, crop, stream_cfg, workers=args.workers),
            args,
            (TRAIN_SEED0, VAL_SEED0),
        )
        val_s1 = None
        if stage1_labels is not None:
            val_s1 = evaluation_planes(
                val_seeds, crop, stream_cfg, workers=args.workers, labels=stage1_labels
            )
            log.info("validation planes on stage 1's masks: %d", len(val_s1))
        keras = record_keras(run, config, args.precision)

        from .datasets.crops_stream import study_planes
        from .model.classifier import build_classifier, compile_classifier

        def rebuild() -> Any:
            fresh = build_classifier(cfg)
            compile_classifier(fresh, state["lr"], args.map_weight)
            return fresh

        if args.resume:
            model = keras.models.load_model(run / "last.keras", compile=True)
            model = in_precision(model, saved, config, rebuild)
        else:
            model = build_classifier(cfg)
            if args.init_weights is not None:
                model.set_weights(
                    keras.models.load_model(args.init_weights, compile=False).get_weights()
                )
                log.info("weights from %s", args.init_weights)
            compile_classifier(model, state["lr"], args.map_weight)
        model.optimizer.learning_rate.assign(state["lr"])
        for s in probe_seeds:  # their training planes enter the pool first
            stream.add(study_planes(s, crop, stream_cfg, train=True))
        stream.fill(min(args.pool, 600))
        scoring = Scoring(
            lambda m: (validation_metrics(m, val, val_s1), evaluate_planes(m, probe)),
            select_on=SELECT_ON if val_s1 is None else f"stage1_{SELECT_ON}",
            gap_on="vertebra_auc",
            words_select="within-level vertebra AUC"
            + ("" if val_s1 is None else " on stage 1's masks"),
            words_gap="vertebra AUC",
        )
        fresh = args.init_weights is not None and not args.resume
        train_epochs(
            model,
            stream,
            args,
            run,
            state,
            scoring,
            measure_start=fresh,
            batch_fields=_batch_fields,
        )
    return 0


def _batch_fields(logs: dict[str, Any]) -> dict[str, float]:
    return {"train_batch_plane_auc": float(logs.get("fracture_auc", logs.get("auc", float("nan"))))}


if __name__ == "__main__":
    raise SystemExit(main())
