"""Encoder table: backbone name → constructor, skip-layer names and bottleneck layer name.

Skip connections are taken by layer **name** (never by index), from the deepest to the
shallowest, each at half the resolution of the next: for an input of S px the skips of
DenseNet121 sit at S/16, S/8, S/4 and S/2, the bottleneck at S/32. ImageNet weights are used
only when the file is already in the local Keras cache; nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backbone:
    """How to build one encoder and where to tap it."""

    name: str
    constructor: str  # attribute of keras.applications
    skips: tuple[str, ...]  # deepest first: S/16, S/8, S/4, S/2
    bottleneck: str  # S/32 feature map feeding the decoder and the classification head
    imagenet_file: str  # file name in the Keras cache (~/.keras/models)


BACKBONES: dict[str, Backbone] = {
    "densenet121": Backbone(
        name="densenet121",
        constructor="DenseNet121",
        skips=("pool4_relu", "pool3_relu", "pool2_relu", "conv1_relu"),
        bottleneck="relu",
        imagenet_file="densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
}


def get_backbone(name: str) -> Backbone:
    from .config import TrainConfigError

    try:
        return BACKBONES[name.lower()]
    except KeyError:
        raise TrainConfigError(
            f"unknown backbone '{name}'; available: {', '.join(sorted(BACKBONES))}"
        ) from None


def keras_cache_dir() -> Path:
    """The Keras model cache: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def resolve_encoder_weights(backbone: Backbone, weights: str | None) -> str | None:
    """Turn ``None | "none" | "imagenet" | PATH`` into a local file path or None (random init).

    ``"imagenet"`` resolves only if the file is already cached; otherwise it is logged plainly
    that the encoder trains from scratch. A PATH that does not exist is a user error.
    """
    from .config import TrainConfigError

    if weights is None or str(weights).lower() in ("", "none", "random", "scratch"):
        log.info("encoder %s: random initialisation (training from scratch)", backbone.name)
        return None
    if str(weights).lower() == "imagenet":
        cached = keras_cache_dir() / backbone.imagenet_file
        if cached.is_file():
            log.info("encoder %s: ImageNet weights from the Keras cache", backbone.name)
            return str(cached)
        log.warning(
            "encoder %s: ImageNet weights are not in the local Keras cache (%s); they are never "
            "downloaded, so the encoder trains from scratch",
            backbone.name,
            backbone.imagenet_file,
        )
        return None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise TrainConfigError(f"encoder weights file {weights} does not exist")
    log.info("encoder %s: weights from %s", backbone.name, path)
    return str(path)


def build_encoder(backbone: Backbone, input_tensor: Any, weights_file: str | None) -> Any:
    """Build the encoder on ``input_tensor`` (3 channels) in the caller's functional graph.

    Pretrained weights are loaded into a stand-alone copy and transferred layer by layer (by
    name), because the in-graph encoder may share its graph with an input adapter.
    """
    import keras

    ctor = getattr(keras.applications, backbone.constructor)
    encoder = ctor(include_top=False, weights=None, input_tensor=input_tensor)
    if weights_file is not None:
        size = tuple(int(d) for d in input_tensor.shape[1:3])
        donor = ctor(include_top=False, weights=weights_file, input_shape=(*size, 3))
        for layer in donor.layers:
            if layer.weights:
                encoder.get_layer(layer.name).set_weights(layer.get_weights())
        del donor
    return encoder
