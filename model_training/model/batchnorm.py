"""Precise BatchNorm statistics: recompute the moving mean/variance for the current weights.

Early in training (a DenseNet from scratch, Adam-type steps) the weights change faster than
the BatchNorm moving averages (momentum 0.99) can follow; the ~120 BatchNorm layers of the
encoder then compound the stale statistics and inference-mode outputs collapse (segmentation
in training mode fine, in inference mode noise). Recomputing the statistics over a few dozen
training batches — an equal-weight average, weights untouched — makes inference match.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import keras

log = logging.getLogger(__name__)


def recalibrate_batchnorm(model: Any, dataset: Any, steps: int = 32) -> int:
    """Reset every BatchNorm's moving statistics to their average over ``steps`` batches of
    ``dataset`` (x, y) run in training mode; returns the number of batches used."""
    bns = [ly for ly in _all_layers(model) if isinstance(ly, keras.layers.BatchNormalization)]
    if not bns or steps <= 0:
        return 0
    saved = [ly.momentum for ly in bns]
    t0 = time.perf_counter()
    n = 0
    try:
        # any iterable of batches (tf.data, a generator, a PyDataset's items): not TF-only
        for k, batch in enumerate(itertools.islice(iter(dataset), steps)):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            for ly in bns:
                ly.momentum = k / (k + 1.0)  # running equal-weight mean; k = 0 takes the batch
            model(x, training=True)
            n += 1
    finally:
        for ly, m in zip(bns, saved):
            ly.momentum = m
    log.info("BatchNorm statistics recomputed on %d batches (%.0f s)", n, time.perf_counter() - t0)
    return n


def _all_layers(model: Any) -> list[Any]:
    out = []
    for ly in model.layers:
        out.append(ly)
        if hasattr(ly, "layers"):
            out.extend(_all_layers(ly))
    return out


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recomputes BatchNorm statistics before each validation (so validation metrics and the
    checkpoints written after it use them), or at the end of each epoch without validation."""

    def __init__(self, dataset: Any, steps: int = 32, has_validation: bool = True) -> None:
        super().__init__()
        self.dataset = dataset
        self.steps = steps
        self.has_validation = has_validation
        self._in_fit = False

    def on_train_begin(self, logs: Any = None) -> None:
        self._in_fit = True

    def on_train_end(self, logs: Any = None) -> None:
        self._in_fit = False

    def on_test_begin(self, logs: Any = None) -> None:
        if self._in_fit:
            recalibrate_batchnorm(self.model, self.dataset, self.steps)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if not self.has_validation:
            recalibrate_batchnorm(self.model, self.dataset, self.steps)
