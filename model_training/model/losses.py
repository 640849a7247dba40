"""Training losses: CCE + soft Dice for the vertebrae, class-weighted BCE for fractures.

Targets follow the dataset contract: ``vertebrae`` int labels [B, S, S] (0 bg, 1–7), sparse;
``fracture_map`` float [B, S, S, 1] in {0, 1}; ``fracture_cls`` float [B, 7] in {0, 1}, or
``IGNORE`` (−1) for a vertebra the slice does not show — left out of the loss and the AUC.
Predictions are the model's float32 probabilities. All losses return one value per sample
(Keras applies the reduction), so they work unchanged under ``tf.distribute``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

EPS = 1e-6


@keras.saving.register_keras_serializable(package="cspine")
class VertebraeLoss(keras.losses.Loss):
    """Sparse categorical cross-entropy (per sample) + ``dice_weight`` × batch soft-Dice loss.

    The Dice term is computed over the whole batch per vertebra class (C1..C7) and averaged
    over the classes present in the batch's targets only; classes absent from the targets
    are left to the cross-entropy. (A per-sample Dice that scores absent classes punishes
    any probability spread between neighbouring levels far harder than it rewards finding
    the vertebra, and drives the network to predict background.)
    """

    def __init__(
        self,
        n_classes: int = 8,
        dice_weight: float = 1.0,
        name: str = "vertebrae_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.n_classes = n_classes
        self.dice_weight = dice_weight

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == 4:  # [B, S, S, 1] → [B, S, S]
            y_true = ops.squeeze(y_true, -1)
        y_pred = ops.clip(ops.cast(y_pred, "float32"), EPS, 1.0 - EPS)
        onehot = ops.one_hot(y_true, self.n_classes, dtype="float32")
        ce = -ops.mean(ops.sum(onehot * ops.log(y_pred), axis=-1), axis=(1, 2))
        inter = ops.sum(onehot * y_pred, axis=(0, 1, 2))[1:]
        t_sum = ops.sum(onehot, axis=(0, 1, 2))[1:]
        p_sum = ops.sum(y_pred, axis=(0, 1, 2))[1:]
        present = ops.cast(t_sum > 0, "float32")
        dice = (2.0 * inter + EPS) / (t_sum + p_sum + EPS)
        dice_loss = ops.sum(present * (1.0 - dice)) / ops.maximum(ops.sum(present), 1.0)
        return ce + self.dice_weight * dice_loss

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_classes": self.n_classes,
            "dice_weight": self.dice_weight,
        }


@keras.saving.register_keras_serializable(package="cspine")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy with the positive term multiplied by ``pos_weight`` (class weight).

    Mean over all but the batch axis of −[w·y·log p + (1 − y)·log(1 − p)], taken over the
    entries whose target is 0 or 1; negative targets (``IGNORE``) are left out, and a sample
    with no scored entry contributes 0.

    ``dice_weight`` > 0 adds ``dice_weight`` × (1 − soft Dice) computed over the whole batch's
    scored entries, to every sample; a batch without any positive target adds nothing (as in
    :class:`VertebraeLoss`, absent foreground is left to the cross-entropy).
    """

    def __init__(
        self,
        pos_weight: float = 1.0,
        name: str = "weighted_bce",
        dice_weight: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.pos_weight = pos_weight
        self.dice_weight = dice_weight

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.clip(ops.cast(y_pred, "float32"), EPS, 1.0 - EPS)
        y_true = ops.reshape(y_true, ops.shape(y_pred))
        scored = ops.cast(y_true >= 0.0, "float32")
        y_true = ops.clip(y_true, 0.0, 1.0)
        loss = -(
            self.pos_weight * y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred)
        )
        axes = tuple(range(1, len(y_pred.shape)))
        bce = ops.sum(loss * scored, axis=axes) / ops.maximum(ops.sum(scored, axis=axes), 1.0)
        if not self.dice_weight:
            return bce
        t_sum = ops.sum(y_true * scored)
        inter = ops.sum(y_true * y_pred * scored)
        p_sum = ops.sum(y_pred * scored)
        dice = (2.0 * inter + EPS) / (t_sum + p_sum + EPS)
        has_fg = ops.cast(t_sum > 0, "float32")
        return bce + self.dice_weight * has_fg * (1.0 - dice)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pos_weight": self.pos_weight,
            "dice_weight": self.dice_weight,
        }


@keras.saving.register_keras_serializable(package="cspine")
class MaskedAUC(keras.metrics.AUC):
    """ROC AUC over the scored entries only (targets 0/1; ``IGNORE`` entries get weight 0)."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = ops.cast(y_true, "float32")
        weight = ops.cast(y_true >= 0.0, "float32")
        if sample_weight is not None:
            weight = weight * ops.cast(sample_weight, "float32")
        super().update_state(ops.clip(y_true, 0.0, 1.0), y_pred, sample_weight=weight)


@keras.saving.register_keras_serializable(package="cspine")
class SparseDice(keras.metrics.Metric):
    """Mean Dice over C1..C7 accumulated over an epoch (sums of intersections and sizes of the
    argmax prediction vs the sparse target; a class never seen counts as 1)."""

    def __init__(self, n_classes: int = 8, name: str = "dice", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.n_classes = n_classes
        self.inter = self.add_variable(shape=(n_classes,), initializer="zeros", name="inter")
        self.total = self.add_variable(shape=(n_classes,), initializer="zeros", name="total")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == 4:
            y_true = ops.squeeze(y_true, -1)
        t = ops.reshape(ops.one_hot(y_true, self.n_classes, dtype="float32"), (-1, self.n_classes))
        p = ops.reshape(
            ops.one_hot(ops.argmax(y_pred, axis=-1), self.n_classes, dtype="float32"),
            (-1, self.n_classes),
        )
        self.inter.assign_add(ops.sum(t * p, axis=0))
        self.total.assign_add(ops.sum(t + p, axis=0))

    def result(self) -> Any:
        dice = ops.where(self.total > 0, 2.0 * self.inter / ops.maximum(self.total, 1.0), 1.0)
        return ops.mean(dice[1:])

    def reset_state(self) -> None:
        # zeros of the known shape: JAX cannot take a Keras Variable as an array (zeros_like)
        self.inter.assign(ops.zeros((self.n_classes,), "float32"))
        self.total.assign(ops.zeros((self.n_classes,), "float32"))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes}


def make_losses(loss_cfg: Any, n_classes: int = 8) -> tuple[dict[str, Any], dict[str, float]]:
    """Losses and loss weights keyed by output name, from a :class:`LossConfig`."""
    losses = {
        "vertebrae": VertebraeLoss(n_classes=n_classes, dice_weight=loss_cfg.dice_weight),
        "fracture_map": WeightedBinaryCrossentropy(
            loss_cfg.fracture_map_pos_weight,
            name="fracture_map_bce",
            dice_weight=loss_cfg.fracture_map_dice_weight,
        ),
        "fracture_cls": WeightedBinaryCrossentropy(
            loss_cfg.fracture_cls_pos_weight, name="fracture_cls_bce"
        ),
    }
    weights = {
        "vertebrae": loss_cfg.vertebrae_weight,
        "fracture_map": loss_cfg.fracture_map_weight,
        "fracture_cls": loss_cfg.fracture_cls_weight,
    }
    return losses, weights


def make_metrics(n_classes: int = 8) -> dict[str, list[Any]]:
    """Per-output training metrics (Dice for vertebrae, AUC for the fracture outputs)."""
    return {
        "vertebrae": [SparseDice(n_classes=n_classes)],
        "fracture_map": [],
        "fracture_cls": [MaskedAUC(name="auc", multi_label=False)],
    }
