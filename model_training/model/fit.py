"""The training loop: compile, callbacks, frozen-encoder warm-up, fine-tuning, resume.

Layout of a run directory (``TrainConfig.out_dir``)::

    train_config.yaml        the resolved configuration (written before the first step)
    model_config.json        ModelConfig, enough to rebuild the network
    checkpoints/last.keras   full model after the latest epoch (rewritten every epoch)
    checkpoints/best.keras   model with the lowest validation loss so far
    backup/<phase>/          BackupAndRestore state (weights + optimiser + epoch) for resuming
    warmup_done.weights.h5   written when the warm-up phase has finished
    history.csv              one row per epoch (losses, metrics, learning_rate, epoch_time_s)
    tensorboard/             TensorBoard event files

Re-running the same command after an interruption resumes at the last finished epoch;
``--resume RUN --epochs N`` extends a finished run to N epochs.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from .batchnorm import PreciseBatchNorm
from .config import TrainConfig
from .losses import make_losses, make_metrics
from .runtime import is_chief
from .unet import build_model, set_encoder_trainable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitData:
    """What the loop needs from the data side: repeated tf.data datasets and step counts;
    ``calibration``: training batches (no augmentation) for precise BatchNorm statistics."""

    train: Any
    val: Any | None
    steps_per_epoch: int
    val_steps: int | None
    calibration: Any | None = None


def load_init_weights(model: Any, path: str | Path) -> None:
    """Start from the weights of an earlier model of the same architecture (a ``.keras`` file
    or ``.weights.h5``). A resumed run then restores its own backup over them."""
    from .config import TrainConfigError

    try:
        model.load_weights(str(path))
    except (ValueError, OSError) as exc:
        raise TrainConfigError(
            f"cannot start from {Path(path).name}: its weights do not fit this model ({exc})"
        ) from exc
    log.info("starting from the weights of %s", Path(path).name)


def make_optimizer(cfg: TrainConfig, learning_rate: float) -> Any:
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    return keras.optimizers.AdamW(learning_rate, weight_decay=cfg.weight_decay)


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate for a (0-based) epoch: warm-up epochs at the base rate, then the
    fine-tune rate decayed by the schedule over the remaining epochs."""
    base = cfg.learning_rate
    if epoch < _warmup_epochs(cfg):
        return base
    if _warmup_epochs(cfg):
        base *= cfg.fine_tune_lr_factor
    if cfg.schedule != "cosine":
        return base
    start, total = _warmup_epochs(cfg), cfg.epochs
    t = (epoch - start) / max(1, total - start - 1)
    floor = base * cfg.min_lr_factor
    return floor + 0.5 * (base - floor) * (1.0 + math.cos(math.pi * min(1.0, t)))


def _warmup_epochs(cfg: TrainConfig) -> int:
    pretrained = cfg.model.encoder_weights not in (None, "", "none")
    return min(cfg.warmup_epochs, cfg.epochs - 1) if pretrained else 0


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_time_s`` (wall time of the epoch) to the logs, so CSVLogger keeps it."""

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if logs is not None:
            logs["epoch_time_s"] = round(time.perf_counter() - self._t0, 2)


def _callbacks(cfg: TrainConfig, run: Path, phase: str, data: FitData) -> list[Any]:
    has_val = data.val is not None
    monitor = "val_loss" if has_val else "loss"
    cbs: list[Any] = []
    if data.calibration is not None and cfg.bn_calibration_steps > 0:
        # first, so that validation and the checkpoints see the recomputed statistics
        cbs.append(PreciseBatchNorm(data.calibration, cfg.bn_calibration_steps, has_val))
    cbs += [
        # kept after the last epoch too, so a finished run can be extended with more epochs
        keras.callbacks.BackupAndRestore(str(run / "backup" / phase), delete_checkpoint=False),
        keras.callbacks.LearningRateScheduler(lambda e, _lr: lr_at(cfg, e)),
        EpochTimer(),
    ]
    if cfg.schedule == "plateau":
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor, factor=0.3, patience=3))
    if is_chief():
        ckpt = run / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        cbs += [
            keras.callbacks.ModelCheckpoint(str(ckpt / "last.keras")),
            keras.callbacks.ModelCheckpoint(
                str(ckpt / "best.keras"), monitor=monitor, save_best_only=True
            ),
            keras.callbacks.CSVLogger(str(run / "history.csv"), append=True),
        ]
        if importlib.util.find_spec("tensorboard") is not None:
            cbs.append(keras.callbacks.TensorBoard(str(run / "tensorboard"), profile_batch=0))
        else:
            log.warning("TensorBoard is not installed; writing history.csv only")
    if cfg.early_stopping_patience > 0 and phase == "finetune":
        cbs.append(keras.callbacks.EarlyStopping(monitor, patience=cfg.early_stopping_patience))
    return cbs


def compile_model(model: Any, cfg: TrainConfig, learning_rate: float) -> None:
    losses, weights = make_losses(cfg.loss, cfg.model.n_classes)
    model.compile(
        optimizer=make_optimizer(cfg, learning_rate),
        loss=losses,
        loss_weights=weights,
        metrics=make_metrics(cfg.model.n_classes),
    )


def fit(
    cfg: TrainConfig,
    data: FitData,
    strategy: Any,
    extra_callbacks: list[Any] | None = None,
    model_factory: Callable[[Any], Any] = build_model,
) -> Any:
    """Train (or resume) the run described by ``cfg`` and return the trained model.

    Phase ``warmup`` (frozen encoder, only with pretrained encoder weights) runs epochs
    [0, warmup); phase ``finetune`` runs the rest with the encoder trainable.
    """
    run = Path(cfg.out_dir)
    run.mkdir(parents=True, exist_ok=True)
    if is_chief():
        cfg.save(run / "train_config.yaml")
        (run / "model_config.json").write_text(json.dumps(cfg.model.to_dict(), indent=2))
    warmup = _warmup_epochs(cfg)
    warm_marker = run / "warmup_done.weights.h5"
    verbose = 1 if is_chief() else 0
    extra = list(extra_callbacks or [])
    with strategy.scope():
        model = model_factory(cfg.model)
        if cfg.init_weights:
            load_init_weights(model, cfg.init_weights)
        if warmup and not warm_marker.exists():
            log.info("warm-up: %d epoch(s) with the encoder frozen", warmup)
            set_encoder_trainable(model, False)
            compile_model(model, cfg, lr_at(cfg, 0))
            model.fit(
                data.train,
                validation_data=data.val,
                epochs=warmup,
                steps_per_epoch=data.steps_per_epoch,
                validation_steps=data.val_steps,
                callbacks=_callbacks(cfg, run, "warmup", data) + extra,
                verbose=verbose,
                shuffle=False,  # the pipeline draws a fresh shuffled sample each epoch
            )
            model.save_weights(str(warm_marker))
        elif warmup:
            log.info("warm-up already done; loading %s", warm_marker)
            model.load_weights(str(warm_marker))
        set_encoder_trainable(model, True)
        compile_model(model, cfg, lr_at(cfg, warmup))
        log.info("training epochs %d–%d with the encoder trainable", warmup + 1, cfg.epochs)
        model.fit(
            data.train,
            validation_data=data.val,
            epochs=cfg.epochs,
            initial_epoch=warmup,
            steps_per_epoch=data.steps_per_epoch,
            validation_steps=data.val_steps,
            callbacks=_callbacks(cfg, run, "finetune", data) + extra,
            verbose=verbose,
        )
    return model
