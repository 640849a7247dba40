"""``cspine-train-segmenter``: train the stage-1 U-Net on a stream of fresh phantom studies.

``cspine-train`` trains on a fixed RSNA-layout folder through ``tf.data`` (TensorFlow only);
this trainer streams new phantom studies instead (:mod:`model_training.datasets.grid_stream`),
so nothing can be memorised, and feeds numpy batches to ``train_on_batch``, so the same model
trains on Keras' TensorFlow, JAX or PyTorch backend. After every epoch it predicts a fixed set
of validation studies *and* a probe of training studies plane by plane and records the Dice of
each level (C1…C7, pooled over the planes) for both; a train − validation gap in mean Dice
above 0.05 is logged as a defect. ``--judge-studies N`` validation studies are also labelled
whole and put through the level assignment and the plausibility checks as an analysis does:
the share of them with every level assessed (``val_assessed``) and the assessed levels with
under ``stages.levels.MIN_OWN_SHARE`` of their vertebra under their name (``val_misnamed``)
are what the app needs of stage 1, which the Dice alone does not show (docs/training.md).
``best.keras`` is the epoch with the best validation mean Dice; the learning rate halves when
it has not improved for ``--patience`` epochs.

Start from a shipped model with ``--like-bundle DIR`` (its preprocessing and architecture)
and ``--init-weights DIR/model.onnx`` (or a ``.keras`` / ``.weights.h5`` file).

Runs in chunks: ``--max-minutes`` stops cleanly after the epoch that crosses the budget, and
``--resume`` continues from ``last.keras`` with the optimizer state, the epoch counter, the
learning rate and the stream's position in the seed sequence.
Exit codes: 0 done, 2 bad input (a missing run to resume, an unreadable bundle).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.analysis.metrics import roc_auc
from cspine_desktop.imaging.preprocess import PreprocessConfig
from cspine_desktop.vertebrae import NAMES

from .datasets.grid_stream import (
    TRAIN_SEED0,
    VAL_SEED0,
    GridPlanes,
    GridStream,
    GridStreamConfig,
    WholeStudy,
    evaluation_planes,
    study_planes,
    whole_studies,
)
from .model.config import LossConfig, ModelConfig, TrainConfig
from .phantom.config import POSES
from .stages.levels import misnamed_levels
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
)

log = logging.getLogger("cspine.train_segmenter")
SELECT_ON = "dice_mean"  # best.keras and the plateau schedule


def dice_by_level(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Dice of each level over all planes together (NaN for a level in neither), and their
    mean over the levels present in the truth (``dice_mean``)."""
    out: dict[str, float] = {}
    for k, name in enumerate(NAMES, start=1):
        t, p = truth == k, pred == k
        denom = int(t.sum()) + int(p.sum())
        out[f"dice_{name}"] = 2.0 * float((t & p).sum()) / denom if denom else float("nan")
    present = [out[f"dice_{n}"] for k, n in enumerate(NAMES, start=1) if (truth == k).any()]
    out["dice_mean"] = float(np.mean(present)) if present else float("nan")
    return out


def stray_pixels(truth: np.ndarray, pred: np.ndarray) -> float:
    """Vertebra pixels ``pred`` puts on the planes where ``truth`` has none (the skull, the
    chest, air), per such plane; NaN without such planes."""
    empty = ~truth.reshape(truth.shape[0], -1).any(axis=1)
    if not empty.any():
        return float("nan")
    return float((pred[empty] > 0).sum() / empty.sum())


def evaluate(model: Any, planes: GridPlanes, batch: int = 16) -> dict[str, float]:
    """Per-level Dice of the argmax labels (pooled over every plane given, so labels put
    outside the spine lower it), the stray vertebra pixels per plane without a true vertebra
    (:func:`stray_pixels`), and the AUC of the per-slice fracture head over the vertebrae each
    plane shows."""
    if len(planes) == 0:
        return {"dice_mean": float("nan")}
    pred = model.predict(planes.x.astype(np.float32), batch_size=batch, verbose=0)
    labels = np.asarray(pred["vertebrae"]).argmax(axis=-1).astype(np.uint8)
    out = dice_by_level(planes.labels, labels)
    out["stray_px"] = stray_pixels(planes.labels, labels)
    cls = np.asarray(pred["fracture_cls"]).reshape(planes.cls.shape)
    shown = planes.cls >= 0
    out["fracture_cls_auc"] = roc_auc(planes.cls[shown] > 0.5, cls[shown])
    return out


def judge_levels(model: Any, studies: list[WholeStudy], batch: int = 16) -> dict[str, float]:
    """Stage 1 on every plane of each study, its labels through ``clean_labels`` (the level
    assignment) and ``check_spine`` as :func:`cspine_desktop.analysis.pipeline.analyze` runs
    them: ``assessed``, the share of studies with every level assessed and no reason against
    the study; ``misnamed``, the assessed levels whose true vertebra carries their name on
    under ``stages.levels.MIN_OWN_SHARE`` of its pixels (a verdict that would be about another
    level). Empty ``studies``: nothing."""
    from cspine_desktop.analysis.plausibility import check_cleaned
    from cspine_desktop.analysis.postprocess import clean_labels

    if not studies:
        return {}
    assessed = misnamed = 0
    for st in studies:
        pred = model.predict(st.x.astype(np.float32), batch_size=batch, verbose=0)
        raw = np.asarray(pred["vertebrae"]).argmax(axis=-1).astype(np.uint8)
        clean = clean_labels(raw, slice_step_mm=st.step_mm, hu=st.hu, pixel_mm=st.pixel_mm)
        spacing = (st.step_mm, st.pixel_mm, st.pixel_mm)
        check = check_cleaned(clean, spacing, st.hu, input_problems=st.problems)
        levels = [NAMES.index(n) + 1 for n, v in check.status.items() if v == "assessed"]
        assessed += not check.study_reasons and len(levels) == len(NAMES)
        misnamed += len(misnamed_levels(clean.labels, st.truth, levels))
    return {"assessed": assessed / len(studies), "misnamed": float(misnamed)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cspine-train-segmenter", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path, help="run folder (checkpoints, history)")
    p.add_argument(
        "--like-bundle",
        type=Path,
        default=None,
        help="model bundle whose preprocessing and U-Net architecture to use",
    )
    p.add_argument("--input-size", type=int, default=None, help="grid size (default: bundle's)")
    p.add_argument("--pixel-mm", type=float, default=None, help="grid pixel (default: bundle's)")
    p.add_argument("--encoder-weights", default=None, help="none | imagenet (local) | PATH")
    p.add_argument("--init-weights", type=Path, default=None, help=".onnx, .keras or .weights.h5")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps", type=int, default=200, help="batches per epoch")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--patience", type=int, default=2, help="epochs without val gain → lr / 2")
    p.add_argument("--planes-per-study", type=int, default=8)
    p.add_argument(
        "--spine-share",
        type=float,
        default=GridStreamConfig.spine_share,
        help="share of a study's training planes drawn within the labelled spine (± 10 mm); "
        "the rest anywhere, the skull and the chest included, as the app runs stage 1",
    )
    p.add_argument("--val-studies", type=int, default=24)
    p.add_argument("--probe-studies", type=int, default=8)
    p.add_argument(
        "--judge-studies",
        type=int,
        default=8,
        help="validation studies labelled whole and put through the level assignment and the "
        "plausibility checks every epoch (val_assessed, val_misnamed); 0: none",
    )
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--pool", type=int, default=2000)
    p.add_argument("--max-minutes", type=float, default=120.0, help="stop after this chunk")
    p.add_argument(
        "--pose",
        choices=sorted(POSES),
        default="default",
        help="how far the phantom necks are posed: askew turns and bends them further "
        "(model_training.phantom.config.ASKEW_POSE), leaning leans most of them forward or "
        "back against the slices (LEANING_POSE)",
    )
    add_precision_argument(p)
    p.add_argument(
        "--run-eagerly",
        action="store_true",
        help="no compiled training step: for a few steps on a small grid (tests, debugging)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run from last.keras: its own grid and U-Net (config.json), "
        "optimizer state, epoch, learning rate and place in the seed sequence",
    )
    return p


def _configs(
    args: argparse.Namespace, saved: dict[str, Any] | None
) -> tuple[PreprocessConfig, ModelConfig, GridStreamConfig]:
    """The grid, the U-Net and the stream: a resumed run's own (``saved``); else the bundle's
    (``--like-bundle``) or the defaults, with the size and pixel given on the command line."""
    if saved is not None:
        return (
            PreprocessConfig.from_dict(saved["preprocessing"]),
            ModelConfig.from_dict(saved["model"]),
            GridStreamConfig.from_dict(saved["stream"]),
        )
    pre = PreprocessConfig()
    model: dict[str, Any] = {}
    if args.like_bundle is not None:
        card = json.loads((args.like_bundle / "model_card.json").read_text())
        pre = PreprocessConfig.from_dict(card["preprocessing"])
        model = dict(card["architecture"]["model"])
    d = pre.to_dict()
    if args.input_size is not None:
        d["input_size"] = args.input_size
    if args.pixel_mm is not None:
        d["pixel_spacing_mm"] = args.pixel_mm
    pre = PreprocessConfig.from_dict(d)
    model.update(
        input_size=pre.input_size, channels=pre.n_channels, encoder_weights=args.encoder_weights
    )
    stream = GridStreamConfig(
        planes_per_study=args.planes_per_study,
        spine_share=args.spine_share,
        phantom=dict(POSES[args.pose]),
    )
    return pre, ModelConfig.from_dict(model), stream


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    run: Path = args.run
    started = start_run(run, args)
    if started is None:
        return 2
    state, saved = started
    try:
        pre, mcfg, stream_cfg = _configs(args, saved)
    except (OSError, KeyError, ValueError) as exc:
        print(f"cannot use {run if saved else args.like_bundle}: {exc}", file=sys.stderr)
        return 2
    run.mkdir(parents=True, exist_ok=True)
    config = run_config(
        run,
        args,
        (TRAIN_SEED0, VAL_SEED0),
        saved,
        model=mcfg.to_dict(),
        preprocessing=pre.to_dict(),
        stream=stream_cfg.to_dict(),
    )
    # the stream's workers are spawned before the Keras backend is imported
    with open_stream(partial(GridStream, pre, stream_cfg), args, state) as stream:
        val, probe, probe_seeds = evaluation_sets(
            lambda seeds: evaluation_planes(seeds, pre, stream_cfg, workers=args.workers),
            args,
            (TRAIN_SEED0, VAL_SEED0),
        )
        judged = whole_studies(
            [VAL_SEED0 + i for i in range(max(0, args.judge_studies))],
            pre,
            stream_cfg,
            workers=args.workers,
        )
        keras = record_keras(run, config, args.precision)

        from .model.fit import compile_model, load_init_weights
        from .model.unet import build_model

        tcfg = TrainConfig(model=mcfg, loss=LossConfig(), optimizer="adamw", learning_rate=args.lr)

        def rebuild() -> Any:
            fresh = build_model(mcfg)
            compile_model(fresh, tcfg, state["lr"])
            return fresh

        if args.resume:
            model = keras.models.load_model(run / "last.keras", compile=True)
            model = in_precision(model, saved, config, rebuild)
        else:
            model = build_model(mcfg)
            if args.init_weights is not None:
                first = [study_planes(s, pre, stream_cfg, train=True) for s in probe_seeds[:4]]
                calib = GridPlanes.concat(first) if first else None
                batches = [calib.batch()[0]] if calib is not None and len(calib) else None
                load_init_weights(model, args.init_weights, batches)
            compile_model(model, tcfg, state["lr"])
        model.optimizer.learning_rate.assign(state["lr"])
        model.run_eagerly = bool(args.run_eagerly)
        for s in probe_seeds:  # their training planes enter the pool first
            stream.add(study_planes(s, pre, stream_cfg, train=True))
        stream.fill(min(args.pool, 4 * args.batch))
        scoring = Scoring(
            lambda m: ({**evaluate(m, val), **judge_levels(m, judged)}, evaluate(m, probe)),
            select_on=SELECT_ON,
            gap_on="dice_mean",
            words_select="mean Dice",
            words_gap="Dice",
        )
        fresh = args.init_weights is not None and not args.resume
        train_epochs(model, stream, args, run, state, scoring, measure_start=fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
