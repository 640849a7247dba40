"""A few-thousand-parameter stand-in for the U-Net with the same inputs and outputs, and
batches for it, so that the training loop (``fit``) can be tested in seconds on a CPU.

``enc_conv`` counts as encoder (its name has no decoder/head prefix), so a frozen-encoder
warm-up freezes it. The targets are functions of the input, so the network can learn them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
from keras import layers

SIZE = 16
CHANNELS = 4


def tiny_unet(cfg: Any) -> keras.Model:
    """Same contract as ``build_model``: ``image`` → vertebrae / fracture_map / fracture_cls."""
    s = cfg.input_size
    image = keras.Input((s, s, cfg.channels), name="image")
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="enc_conv")(image)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="decoder_conv")(h)
    seg = layers.Conv2D(cfg.n_classes, 1, name="vertebrae_logits")(h)
    seg = layers.Activation("softmax", dtype="float32", name="vertebrae")(seg)
    frac = layers.Conv2D(1, 1, name="fracture_map_logits")(h)
    frac = layers.Activation("sigmoid", dtype="float32", name="fracture_map")(frac)
    c = layers.GlobalAveragePooling2D(name="cls_pool")(h)
    c = layers.Dense(cfg.n_vertebrae, name="fracture_cls_logits")(c)
    cls = layers.Activation("sigmoid", dtype="float32", name="fracture_cls")(c)
    return keras.Model(image, {"vertebrae": seg, "fracture_map": frac, "fracture_cls": cls})


# vertebra label of a pixel = argmax of 8 fixed linear functions of its channels
_LABEL_W = np.random.default_rng(0).normal(size=(CHANNELS, 8)).astype(np.float32)


def batch(n: int = 4, seed: int = 0, cls_positive: bool = True) -> tuple[np.ndarray, dict]:
    """One batch: x [n, S, S, 4]; vertebra label = argmax of fixed linear functions of the
    pixel, fracture map = channel 1 > 0.8, fracture_cls = a random 0/1 pattern (all 0 with
    ``cls_positive=False``, which leaves the AUC without positives: a constant 0)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, SIZE, SIZE, CHANNELS), dtype=np.float32)
    y = {
        "vertebrae": np.argmax((x - 0.5) @ _LABEL_W, axis=-1).astype(np.int32),
        "fracture_map": (x[..., 1:2] > 0.8).astype(np.float32),
        "fracture_cls": (rng.random((n, 7)) > 0.5).astype(np.float32),
    }
    y["fracture_cls"][0, :] = [1, 0, 1, 0, 1, 0, 1]  # both classes present
    y["fracture_cls"][1, :] = [0, 1, 0, 1, 0, 1, 0]
    if not cls_positive:
        y["fracture_cls"][:] = 0.0
    return x, y


def repeat(b: tuple[np.ndarray, dict]) -> Iterator[tuple[np.ndarray, dict]]:
    """The same batch forever (a plain Python generator: no TensorFlow in the data path)."""
    while True:
        yield b
