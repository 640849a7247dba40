"""The training loop: compile, callbacks, frozen-encoder warm-up, fine-tuning, resume.

Layout of a run directory (``TrainConfig.out_dir``)::

    train_config.yaml        the resolved configuration (written before the first step)
    model_config.json        ModelConfig, enough to rebuild the network
    checkpoints/last.keras   full model after the latest epoch (rewritten every epoch)
    checkpoints/best.keras   model with the best validation ``TrainConfig.monitor`` so far
                             (the masked per-vertebra fracture AUC by default)
    backup/<phase>/          BackupAndRestore state (weights + optimiser + epoch) for resuming
    warmup_done.weights.h5   written when the warm-up phase has finished
    history.csv              one row per epoch (losses, metrics, learning_rate, epoch_time_s,
                             auc_gap = training − validation AUC)
    warnings.log             epochs whose train − validation AUC gap exceeded ``max_auc_gap``
    tensorboard/             TensorBoard event files (TensorFlow backend)

Re-running the same command after an interruption resumes at the last finished epoch;
``--resume RUN --epochs N`` extends a finished run to N epochs. With a time budget
(``TrainConfig.max_minutes``) a run stops at an epoch boundary and is resumed the same way.
Non-chief workers of a multi-worker cluster keep their backups and checkpoints under
``workers/worker<i>/`` (every worker must save: saving may be a collective step).

Nothing here needs TensorFlow beyond the data the caller passes (and TensorBoard, written only
on the TensorFlow backend): the same loop runs on Keras' JAX and PyTorch backends.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from .batchnorm import PreciseBatchNorm
from .callbacks import AucGap, EpochTimer, ResumablePlateau, TimeBudget
from .config import TrainConfig
from .losses import make_losses, make_metrics
from .runtime import is_chief, worker_index
from .unet import build_model, set_encoder_trainable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitData:
    """What the loop needs from the data side: repeated datasets (anything Keras' ``fit``
    takes, e.g. a ``tf.data.Dataset`` or a Python generator) and step counts;
    ``calibration``: training batches (no augmentation) for precise BatchNorm statistics."""

    train: Any
    val: Any | None
    steps_per_epoch: int
    val_steps: int | None
    calibration: Any | None = None


def load_init_weights(model: Any, path: str | Path, batches: Any | None = None) -> None:
    """Start from the weights of an earlier model of the same architecture: a ``.keras`` file,
    ``.weights.h5``, or a bundle's ``.onnx`` file (:mod:`.from_onnx`; its BatchNorm layers
    then get moving statistics measured on ``batches`` of the training data). A resumed run
    then restores its own backup over them."""
    from .config import TrainConfigError

    path = Path(path)
    try:
        if path.suffix == ".onnx":
            from .from_onnx import load_onnx_weights, unfold_batchnorm

            load_onnx_weights(model, path)
            if batches is not None:
                unfold_batchnorm(model, batches)
        else:
            model.load_weights(str(path))
    except (ValueError, OSError) as exc:
        raise TrainConfigError(
            f"cannot start from {path.name}: its weights do not fit this model ({exc})"
        ) from exc
    log.info("starting from the weights of %s", path.name)


def make_optimizer(cfg: TrainConfig, learning_rate: float) -> Any:
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    return keras.optimizers.AdamW(learning_rate, weight_decay=cfg.weight_decay)


def lr_at(cfg: TrainConfig, epoch: int, warmup: int | None = None) -> float:
    """Learning rate for a (0-based) epoch: warm-up epochs at the base rate, then the
    fine-tune rate decayed by the schedule over the remaining epochs (``plateau``: the
    fine-tune rate is where it starts; reductions come from the validation metric).
    ``warmup``: the number of frozen-encoder epochs (default: :func:`warmup_epochs`)."""
    warmup = warmup_epochs(cfg) if warmup is None else warmup
    base = cfg.learning_rate
    if epoch < warmup:
        return base
    if warmup:
        base *= cfg.fine_tune_lr_factor
    if cfg.schedule != "cosine":
        return base
    start, total = warmup, cfg.epochs
    t = (epoch - start) / max(1, total - start - 1)
    floor = base * cfg.min_lr_factor
    return floor + 0.5 * (base - floor) * (1.0 + math.cos(math.pi * min(1.0, t)))


def encoder_is_pretrained(cfg: TrainConfig) -> bool:
    """True only when the encoder starts from a weights file that is really there: ``None``,
    ``none``, ``random``, ``scratch`` and ImageNet weights missing from the local Keras cache
    all mean a randomly initialised encoder (see ``backbones.resolve_encoder_weights``)."""
    from .backbones import get_backbone, keras_cache_dir

    weights = cfg.model.encoder_weights
    name = "" if weights is None else str(weights).strip().lower()
    if name in ("", "none", "random", "scratch"):
        return False
    if name == "imagenet":
        return (keras_cache_dir() / get_backbone(cfg.model.backbone).imagenet_file).is_file()
    return Path(str(weights)).expanduser().is_file()


def warmup_epochs(cfg: TrainConfig) -> int:
    """Frozen-encoder epochs: ``cfg.warmup_epochs`` (at most epochs − 1) for a pretrained
    encoder, none for a randomly initialised one (freezing random features teaches nothing)."""
    if not encoder_is_pretrained(cfg):
        return 0
    return max(0, min(cfg.warmup_epochs, cfg.epochs - 1))


def monitored(cfg: TrainConfig, has_val: bool) -> tuple[str, str]:
    """The logged metric that chooses ``best.keras`` and drives plateau and early stopping,
    and its mode: ``val_<monitor>`` (``<monitor>`` without validation data), ``max`` unless
    it is a loss."""
    key = f"val_{cfg.monitor}" if has_val else cfg.monitor
    return key, "min" if cfg.monitor.endswith("loss") else "max"


def _state_dir(run: Path) -> Path:
    """Where this process keeps its resume state: the run folder for the chief, a folder of
    its own for every other worker of a cluster (they must not overwrite the chief's files)."""
    return run if is_chief() else run / "workers" / f"worker{worker_index()}"


def epochs_done(run: str | Path) -> int:
    """Epochs this process has finished in the run folder, from its resume backups (0 for a
    new run): the number a resumed invocation starts after."""
    state = _state_dir(Path(run)) / "backup"
    done = 0
    for phase in ("warmup", "finetune"):
        try:
            meta = json.loads((state / phase / "training_metadata.json").read_text())
            done = max(done, int(meta["epoch"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return done


def _callbacks(
    cfg: TrainConfig, run: Path, phase: str, data: FitData, warmup: int = 0
) -> list[Any]:
    has_val = data.val is not None
    monitor, mode = monitored(cfg, has_val)
    cbs: list[Any] = []
    if data.calibration is not None and cfg.bn_calibration_steps > 0:
        # first, so that validation and the checkpoints see the recomputed statistics
        cbs.append(PreciseBatchNorm(data.calibration, cfg.bn_calibration_steps, has_val))
    cbs.append(EpochTimer())
    backup = _state_dir(run) / "backup" / phase
    if cfg.schedule == "plateau":
        # no LearningRateScheduler here: it would reset the rate every epoch and undo each
        # reduction; the rate starts where compile() put it (or the backup left it)
        base = lr_at(cfg, warmup, warmup)
        cbs.append(
            ResumablePlateau(
                backup / "plateau.json",
                monitor,
                mode=mode,
                factor=cfg.plateau_factor,
                patience=cfg.plateau_patience,
                min_lr=base * cfg.min_lr_factor,
            )
        )
    else:
        cbs.append(keras.callbacks.LearningRateScheduler(lambda e, _lr: lr_at(cfg, e, warmup)))
    # after the schedule, so that the backup holds the optimiser state with this epoch's
    # learning-rate reduction; kept after the last epoch too, so a finished run can be extended
    cbs.append(keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False))
    # every worker saves (saving may create variables, a collective step all workers must
    # join); the others into their own folder
    ckpt = _state_dir(run) / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    cbs += [
        keras.callbacks.ModelCheckpoint(str(ckpt / "last.keras")),
        keras.callbacks.ModelCheckpoint(
            str(ckpt / "best.keras"), monitor=monitor, mode=mode, save_best_only=True
        ),
    ]
    if is_chief():
        cbs += [
            # before the CSV log, which then records ``auc_gap``
            AucGap(_train_metric(cfg), cfg.max_auc_gap, run / "warnings.log"),
            keras.callbacks.CSVLogger(str(run / "history.csv"), append=True),
        ]
        if keras.backend.backend() != "tensorflow":
            log.info("TensorBoard events are written on the TensorFlow backend only")
        elif importlib.util.find_spec("tensorboard") is not None:
            cbs.append(keras.callbacks.TensorBoard(str(run / "tensorboard"), profile_batch=0))
        else:
            log.warning("TensorBoard is not installed; writing history.csv only")
    if cfg.early_stopping_patience > 0 and phase == "finetune":
        cbs.append(
            keras.callbacks.EarlyStopping(monitor, mode=mode, patience=cfg.early_stopping_patience)
        )
    return cbs


def _train_metric(cfg: TrainConfig) -> str:
    """The AUC whose train − validation gap is watched: the monitored metric when it is an
    AUC, otherwise the fracture head's."""
    return cfg.monitor if cfg.monitor.endswith("auc") else "fracture_cls_auc"


def compile_model(model: Any, cfg: TrainConfig, learning_rate: float) -> None:
    losses, weights = make_losses(cfg.loss, cfg.model.n_classes)
    model.compile(
        optimizer=make_optimizer(cfg, learning_rate),
        loss=losses,
        loss_weights=weights,
        metrics=make_metrics(cfg.model.n_classes),
    )


@dataclass
class FitOutcome:
    """What :func:`fit_run` did: the model, whether the run reached its last epoch (or stopped
    early on the validation metric) and whether it stopped at the time budget instead."""

    model: Any
    finished: bool
    stopped_for_time: bool = False
    warnings: list[str] = field(default_factory=list)


def fit(
    cfg: TrainConfig,
    data: FitData,
    strategy: Any,
    extra_callbacks: list[Any] | None = None,
    model_factory: Callable[[Any], Any] = build_model,
) -> Any:
    """Train (or resume) the run described by ``cfg`` and return the trained model
    (:func:`fit_run` also says whether the run finished or stopped at its time budget)."""
    return fit_run(cfg, data, strategy, extra_callbacks, model_factory).model


def fit_run(
    cfg: TrainConfig,
    data: FitData,
    strategy: Any,
    extra_callbacks: list[Any] | None = None,
    model_factory: Callable[[Any], Any] = build_model,
    clock: Callable[[], float] = time.monotonic,
) -> FitOutcome:
    """Train (or resume) the run described by ``cfg``.

    Phase ``warmup`` (frozen encoder, only with pretrained encoder weights) runs epochs
    [0, warmup); phase ``finetune`` runs the rest with the encoder trainable. A randomly
    initialised encoder is never frozen. With ``cfg.max_minutes`` the run stops at the end of
    the epoch after which the next one would pass the budget (``clock`` measures it).
    """
    run = Path(cfg.out_dir)
    run.mkdir(parents=True, exist_ok=True)
    if is_chief():
        cfg.save(run / "train_config.yaml")
        (run / "model_config.json").write_text(json.dumps(cfg.model.to_dict(), indent=2))
    warmup = warmup_epochs(cfg)
    if cfg.warmup_epochs > 0 and not warmup and not encoder_is_pretrained(cfg):
        log.info(
            "no frozen-encoder warm-up: the encoder is randomly initialised, so it trains "
            "from the first epoch (warm-up is only for pretrained weights)"
        )
    state = _state_dir(run)
    state.mkdir(parents=True, exist_ok=True)
    warm_marker = state / "warmup_done.weights.h5"
    verbose = 1 if is_chief() else 0
    extra = list(extra_callbacks or [])
    budget: TimeBudget | None = None
    if cfg.max_minutes:
        budget = TimeBudget(clock() + 60.0 * cfg.max_minutes, clock)
        log.info("time budget: %.1f min for this invocation", cfg.max_minutes)
        extra = [budget, *extra]
    gaps: list[str] = []

    def phase_callbacks(phase: str) -> list[Any]:
        return _callbacks(cfg, run, phase, data, warmup) + extra

    def collect(cbs: list[Any]) -> None:
        for cb in cbs:
            if isinstance(cb, AucGap):
                gaps.extend(cb.warnings)

    with strategy.scope():
        model = model_factory(cfg.model)
        if cfg.init_weights:
            load_init_weights(
                model,
                cfg.init_weights,
                data.calibration if data.calibration is not None else data.train,
            )
        if warmup and not warm_marker.exists():
            log.info("warm-up: %d epoch(s) with the encoder frozen", warmup)
            set_encoder_trainable(model, False)
            compile_model(model, cfg, lr_at(cfg, 0, warmup))
            cbs = phase_callbacks("warmup")
            model.fit(
                data.train,
                validation_data=data.val,
                epochs=warmup,
                steps_per_epoch=data.steps_per_epoch,
                validation_steps=data.val_steps,
                callbacks=cbs,
                verbose=verbose,
                shuffle=False,  # the pipeline draws a fresh shuffled sample each epoch
            )
            collect(cbs)
            if budget is None or not budget.stopped or budget.last_epoch >= warmup - 1:
                model.save_weights(str(warm_marker))
            if budget is not None and budget.stopped:
                return FitOutcome(model, False, True, gaps)
        elif warmup:
            log.info("warm-up already done; loading %s", warm_marker)
            model.load_weights(str(warm_marker))
        set_encoder_trainable(model, True)
        compile_model(model, cfg, lr_at(cfg, warmup, warmup))
        log.info("training epochs %d–%d with the encoder trainable", warmup + 1, cfg.epochs)
        cbs = phase_callbacks("finetune")
        model.fit(
            data.train,
            validation_data=data.val,
            epochs=cfg.epochs,
            initial_epoch=warmup,
            steps_per_epoch=data.steps_per_epoch,
            validation_steps=data.val_steps,
            callbacks=cbs,
            verbose=verbose,
        )
        collect(cbs)
    stopped = budget is not None and budget.stopped and budget.last_epoch < cfg.epochs - 1
    return FitOutcome(model, not stopped, stopped, gaps)
