"""``cspine-train``: train the DenseNet121 U-Net on an RSNA-layout folder (phantom or real).

Examples::

    cspine-train --data /data/rsna --out runs/r1                       # defaults (256 px)
    cspine-train --config train.yaml                                    # YAML, flags override
    cspine-train --resume runs/r1                                       # continue after a stop
    cspine-train --data D --out R --strategy mirrored --encoder-weights imagenet

Re-running the same command (or ``--resume``) continues at the last finished epoch.
``--max-minutes M`` stops at the end of the epoch after which the next one would pass M minutes
(training in chunks); ``--resume`` then continues with the weights, optimiser state and epoch
counter of that epoch.
Exit codes: 0 done, 3 stopped at the time budget (resume to continue), 2 bad input (missing
folder, bad config), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from cspine_desktop.errors import CspineInputError
from cspine_desktop.imaging.preprocess import PreprocessConfig

from .model.config import LossConfig, ModelConfig, TrainConfig, TrainConfigError

log = logging.getLogger("cspine.train")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cspine-train", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="TrainConfig YAML (flags given here override it)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    p.add_argument("--data", help="RSNA-layout training folder")
    p.add_argument("--out", help="run folder (checkpoints, logs, config)")
    p.add_argument("--cache-dir", help="preprocessed study cache (default: OUT/cache)")
    p.add_argument("--input-size", type=int, help="model input size in px (multiple of 32)")
    p.add_argument("--pixel-spacing", type=float, help="model in-plane spacing in mm")
    p.add_argument("--epochs", type=int)
    p.add_argument("--warmup-epochs", type=int, help="frozen-encoder epochs (pretrained only)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--slices-per-study", type=int)
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--max-studies", type=int, help="use only the first N studies")
    p.add_argument("--encoder-weights", help="PATH | imagenet (local Keras cache only) | none")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"))
    p.add_argument("--lr", type=float, dest="learning_rate")
    p.add_argument("--schedule", choices=("cosine", "constant", "plateau"))
    p.add_argument("--precision", choices=("auto", "bfloat16", "float16", "float32"))
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"))
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--max-minutes",
        type=float,
        help="time budget of this invocation: stop at an epoch boundary before it runs out "
        "(exit code 3), then continue with --resume; 0 = none",
    )
    p.add_argument("--workers", type=int, default=2, help="processes preparing the cache")
    p.add_argument(
        "--oversample", type=float, help="share of each epoch drawn from fracture-showing slices"
    )
    p.add_argument(
        "--init-weights",
        help="start from the weights of an earlier model of the same architecture "
        "(.keras or .weights.h5), e.g. to fine-tune it on local data",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


_FLAG_FIELDS = (
    "epochs",
    "warmup_epochs",
    "batch_size",
    "slices_per_study",
    "val_fraction",
    "max_studies",
    "optimizer",
    "learning_rate",
    "schedule",
    "precision",
    "strategy",
    "seed",
    "oversample",
    "init_weights",
    "max_minutes",
)

EXIT_TIME_BUDGET = 3  # stopped at --max-minutes; ``--resume`` continues


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < ``--resume`` run's saved config < ``--config`` YAML < flags."""
    if args.resume:
        saved = Path(args.resume) / "train_config.yaml"
        if not saved.is_file():
            raise TrainConfigError(f"{args.resume} is not a training run (no train_config.yaml)")
        cfg = TrainConfig.load(saved)
    elif args.config:
        cfg = TrainConfig.load(args.config)
    else:
        cfg = TrainConfig()
    changes: dict[str, Any] = {f: getattr(args, f) for f in _FLAG_FIELDS}
    changes = {k: v for k, v in changes.items() if v is not None}
    if args.data:
        changes["data_dir"] = args.data
    if args.out:
        changes["out_dir"] = args.out
    if args.cache_dir:
        changes["cache_dir"] = args.cache_dir
    pre = dict(cfg.preprocessing) or PreprocessConfig().to_dict()
    if args.input_size:
        pre["input_size"] = args.input_size
    if args.pixel_spacing:
        pre["pixel_spacing_mm"] = args.pixel_spacing
    pcfg = PreprocessConfig.from_dict(pre)
    model = cfg.model.to_dict()
    model.update(input_size=pcfg.input_size, channels=pcfg.n_channels)
    if args.encoder_weights is not None:
        model["encoder_weights"] = args.encoder_weights
    cfg = cfg.replace(preprocessing=pcfg.to_dict(), model=ModelConfig.from_dict(model), **changes)
    if not cfg.data_dir:
        raise TrainConfigError("no training data: give --data DIR (or data_dir in --config)")
    if cfg.init_weights and not Path(cfg.init_weights).is_file():
        raise TrainConfigError(f"--init-weights: {cfg.init_weights} is not a file")
    return cfg


def train(cfg: TrainConfig, workers: int = 2) -> Path:
    """Prepare the data, train (or resume) and return the run folder."""
    return train_run(cfg, workers)[0]


def train_run(cfg: TrainConfig, workers: int = 2) -> tuple[Path, bool]:
    """Prepare the data, train (or resume); the run folder and whether the run finished
    (False: it stopped at its time budget and ``--resume`` continues it)."""
    import keras

    from model_training.datasets import make_dataset, steps_per_epoch

    from .model.data import load_studies, run_split
    from .model.fit import FitData, epochs_done, fit_run
    from .model.runtime import make_strategy, set_precision

    run = Path(cfg.out_dir)
    run.mkdir(parents=True, exist_ok=True)
    # a resumed run draws new samples: the same seed would replay the first chunk's epochs
    done = epochs_done(run)
    data_seed = cfg.seed + 1000 * done
    if done:
        log.info("resuming after epoch %d", done)
    keras.utils.set_random_seed(data_seed)
    strategy = make_strategy(cfg.strategy)  # before any other TF op (multi-worker needs it)
    set_precision(cfg.precision)
    pcfg = PreprocessConfig.from_dict(cfg.preprocessing)
    cached = load_studies(
        cfg.data_dir, pcfg, cfg.cache_dir or run / "cache", workers, cfg.max_studies
    )
    split = run_split(cached, run, cfg.val_fraction, cfg.seed)
    train_set, val_set = split.select(cached, "train"), split.select(cached, "val")
    bs, sps = cfg.batch_size, cfg.slices_per_study
    train_ds = make_dataset(
        train_set, bs, sps, augment=True, oversample=cfg.oversample, seed=data_seed
    ).repeat()
    val_ds, val_steps = None, None
    if val_set:
        val_sps = max(4, sps // 2)
        val_ds = make_dataset(
            val_set, bs, val_sps, augment=False, oversample=0.0, seed=cfg.seed + 1
        ).repeat()
        val_steps = steps_per_epoch(val_set, bs, val_sps)
    calibration = make_dataset(
        train_set, bs, 2, augment=False, oversample=0.0, seed=cfg.seed + 2
    ).repeat()
    data = FitData(train_ds, val_ds, steps_per_epoch(train_set, bs, sps), val_steps, calibration)
    log.info(
        "training on %d studies (%d steps/epoch of %d slices), validating on %d",
        len(train_set),
        data.steps_per_epoch,
        bs,
        len(val_set),
    )
    outcome = fit_run(cfg, data, strategy)
    if not outcome.finished:
        log.info("stopped at the time budget; continue with: cspine-train --resume %s", run)
        return run, False
    log.info("done: %s", run / "checkpoints")
    return run, True


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cfg = resolve_config(args)
        log.info("configuration: %s", cfg.to_dict())
        _, finished = train_run(cfg, workers=args.workers)
    except CspineInputError as exc:
        print(f"cspine-train: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cspine-train: stopped; re-run the same command to resume", file=sys.stderr)
        return 130
    if not finished:
        print(
            f"cspine-train: stopped at the {cfg.max_minutes:g}-minute budget; continue with "
            f"cspine-train --resume {cfg.out_dir}",
            file=sys.stderr,
        )
        return EXIT_TIME_BUDGET
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["LossConfig", "build_parser", "main", "resolve_config", "train", "train_run"]
