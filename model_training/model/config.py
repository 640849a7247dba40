"""Frozen configuration of the network and of a training run, read from and written to YAML.

``ModelConfig`` describes the architecture only (what :func:`build_model` needs); ``TrainConfig``
adds data, losses, optimiser and runtime choices. A training run writes the resolved
``train_config.yaml`` beside its checkpoints so that any checkpoint can be rebuilt and resumed.
Sizes are in pixels of the model grid; the physical scale lives in the preprocessing config
(``pixel_spacing_mm``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from cspine_desktop.errors import CspineInputError

N_CLASSES = 8  # background + C1..C7 (see cspine_desktop.vertebrae)
N_VERTEBRAE = 7

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "constant", "plateau")
PRECISIONS = ("auto", "bfloat16", "float16", "float32")
STRATEGIES = ("default", "mirrored", "multiworker")


class TrainConfigError(CspineInputError):
    """A training configuration value that cannot be used (unknown optimiser, bad size...).
    The training tools exit 2 with its message; it never reaches HTTP, so it has no status."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the U-Net.

    ``input_size`` S and ``channels`` C give the input ``image`` [N, S, S, C]; S must be a
    multiple of 32 (five stride-2 stages in DenseNet121). ``encoder_weights`` is None (random
    init), ``"imagenet"`` (only from the local Keras cache) or a path to a weights file.
    """

    backbone: str = "densenet121"
    input_size: int = 256
    channels: int = 4
    n_classes: int = N_CLASSES
    n_vertebrae: int = N_VERTEBRAE
    decoder_filters: tuple[int, ...] = (128, 64, 32, 24, 16)
    skip_projection: bool = True  # 1×1 conv on each skip before concat (keeps the decoder small)
    cls_dropout: float = 0.3
    encoder_weights: str | None = None

    def __post_init__(self) -> None:
        if self.input_size % 32 or self.input_size < 32:
            raise TrainConfigError(
                f"input size {self.input_size} px must be a multiple of 32 (at least 32)"
            )
        if self.channels < 1:
            raise TrainConfigError("the model needs at least one input channel")
        if len(self.decoder_filters) != 5:
            raise TrainConfigError("decoder_filters needs exactly 5 values (one per stage)")
        object.__setattr__(self, "decoder_filters", tuple(int(f) for f in self.decoder_filters))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["decoder_filters"] = list(self.decoder_filters)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, d)


@dataclass(frozen=True)
class LossConfig:
    """Loss terms and their weights (the paper: BCE for fractures; CCE + Dice for vertebrae).

    ``fracture_map_pos_weight`` / ``fracture_cls_pos_weight`` multiply the positive term of the
    binary cross-entropy to counter the rarity of fractured pixels / slices.
    ``fracture_map_dice_weight`` adds a soft-Dice term over the batch's fractured pixels to the
    map's cross-entropy: fractured pixels are ~0.1 % of a slice, and the cross-entropy alone is
    content with a near-empty map.
    """

    vertebrae_weight: float = 1.0
    fracture_map_weight: float = 1.0
    fracture_cls_weight: float = 1.0
    dice_weight: float = 1.0  # Dice term added to the vertebrae cross-entropy
    fracture_map_pos_weight: float = 10.0
    fracture_cls_pos_weight: float = 3.0
    fracture_map_dice_weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Paths are strings so the YAML stays portable."""

    data_dir: str = ""  # RSNA-layout training set (phantom or real)
    out_dir: str = "runs/cspine"
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocessing: dict[str, Any] = field(default_factory=dict)  # PreprocessConfig.to_dict()
    loss: LossConfig = field(default_factory=LossConfig)
    val_fraction: float = 0.2
    slices_per_study: int = 16  # slices sampled from each study per epoch
    oversample: float = 0.3  # share of each epoch drawn from fracture-showing slices
    batch_size: int = 8
    epochs: int = 30
    warmup_epochs: int = 2  # frozen-encoder epochs (only with pretrained encoder weights)
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    fine_tune_lr_factor: float = 0.1  # LR multiplier after the encoder is unfrozen
    momentum: float = 0.9
    weight_decay: float = 1e-4  # AdamW only
    schedule: str = "cosine"
    min_lr_factor: float = 0.02  # cosine floor, and the lowest rate plateau reductions reach
    plateau_factor: float = 0.3  # ``plateau``: LR multiplier when the monitored metric stalls
    plateau_patience: int = 3  # ``plateau``: epochs without improvement before a reduction
    # metric that chooses checkpoints/best.keras and drives plateau and early stopping, as Keras
    # logs it without the ``val_`` prefix (the validation value is used when there is a
    # validation set); names ending in "loss" are minimised, all others maximised
    monitor: str = "fracture_cls_auc"
    max_auc_gap: float = 0.05  # train − validation AUC above this is reported as a warning
    early_stopping_patience: int = 8
    bn_calibration_steps: int = 32  # batches for precise BatchNorm statistics each epoch
    precision: str = "auto"
    strategy: str = "default"
    seed: int = 0
    max_studies: int | None = None  # use only the first N studies (smoke runs)
    cache_dir: str | None = None  # preprocessed study cache (default: <out_dir>/cache)
    # weights of a whole earlier model (.keras or .weights.h5, same architecture) to start from,
    # e.g. fine-tuning a model trained elsewhere on local data; a resumed run continues from its own
    init_weights: str | None = None
    # time budget of one invocation in minutes (None or 0: none): training stops at the end of
    # the epoch after which the next one would not fit, and ``--resume`` continues from there
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        checks = (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("precision", PRECISIONS),
            ("strategy", STRATEGIES),
        )
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise TrainConfigError(
                    f"{name} '{getattr(self, name)}' is not one of {', '.join(allowed)}"
                )
        if not 0.0 <= self.oversample < 1.0:
            raise TrainConfigError("oversample must be in [0, 1)")
        if not 0.0 <= self.val_fraction < 1.0:
            raise TrainConfigError("val_fraction must be in [0, 1)")
        if self.batch_size < 1 or self.epochs < 1 or self.slices_per_study < 1:
            raise TrainConfigError("batch_size, epochs and slices_per_study must be positive")
        if not 0.0 < self.plateau_factor < 1.0 or self.plateau_patience < 1:
            raise TrainConfigError("plateau_factor must be in (0, 1), plateau_patience ≥ 1")
        if self.max_minutes is not None and self.max_minutes < 0:
            raise TrainConfigError("max_minutes must be positive (or 0 for no time budget)")
        if not self.monitor or self.monitor.startswith("val_"):
            raise TrainConfigError(
                f"monitor '{self.monitor}' must name a metric without the val_ prefix"
            )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        if isinstance(d.get("model"), dict):
            d["model"] = ModelConfig.from_dict(d["model"])
        if isinstance(d.get("loss"), dict):
            d["loss"] = _from_dict(LossConfig, d["loss"])
        return _from_dict(cls, d)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        try:
            d = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise TrainConfigError(f"cannot read training config {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"training config {path} is not valid YAML") from exc
        if not isinstance(d, dict):
            raise TrainConfigError(f"training config {path} must be a mapping of settings")
        return cls.from_dict(d)


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise TrainConfigError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}")
    try:
        return cls(**d)
    except TypeError as exc:
        raise TrainConfigError(f"bad {cls.__name__} settings: {exc}") from exc
