"""The cspine network: DenseNet121 encoder, U-Net decoder, three named outputs.

Input ``image`` float32 [N, S, S, C] (C channels from the preprocessing config, values in
[0, 1]); when C ≠ 3 a named 1×1 convolution (``input_adapter``) maps them to the 3 channels the
encoder (and its ImageNet weights) expects. Outputs, all float32 even under mixed precision:

- ``vertebrae``    softmax [N, S, S, 8]  (0 background, 1–7 = C1–C7)
- ``fracture_map`` sigmoid [N, S, S, 1]  (pixel belongs to fractured bone)
- ``fracture_cls`` sigmoid [N, 7]        (this slice shows a fractured C1..C7), from the
  encoder bottleneck (global average pooling + dense), the paper's classification layers.

Layer names are stable (``decoder_stage{i}{a|b}_conv`` …) so checkpoints and exports line up.
"""

from __future__ import annotations

from typing import Any

from .backbones import build_encoder, get_backbone, resolve_encoder_weights
from .config import ModelConfig

OUTPUTS = ("vertebrae", "fracture_map", "fracture_cls")
# every layer whose name starts with one of these is not part of the encoder
NON_ENCODER_PREFIXES = ("image", "input_adapter", "decoder_", "cls_", *OUTPUTS)


def _conv_bn_relu(x: Any, filters: int, kernel: int, name: str) -> Any:
    from keras import layers

    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _decoder_block(x: Any, skip: Any | None, filters: int, stage: int, project: bool) -> Any:
    """Upsample ×2, concatenate the skip (optionally 1×1-projected), two conv-BN-ReLU."""
    from keras import layers

    prefix = f"decoder_stage{stage}"
    x = layers.UpSampling2D(2, interpolation="nearest", name=f"{prefix}_upsample")(x)
    if skip is not None:
        if project:
            skip = _conv_bn_relu(skip, filters, 1, f"{prefix}_skip")
        x = layers.Concatenate(name=f"{prefix}_concat")([x, skip])
    x = _conv_bn_relu(x, filters, 3, f"{prefix}a")
    return _conv_bn_relu(x, filters, 3, f"{prefix}b")


def build_model(config: ModelConfig) -> Any:
    """Build the uncompiled Keras functional model described by ``config``.

    Uses the current global dtype policy (set mixed precision before calling). Encoder weights:
    see :func:`model_training.model.backbones.resolve_encoder_weights` (never downloads).
    """
    import keras
    from keras import layers

    backbone = get_backbone(config.backbone)
    weights_file = resolve_encoder_weights(backbone, config.encoder_weights)
    size = config.input_size
    image = keras.Input((size, size, config.channels), name="image")
    x = image
    if config.channels != 3:
        x = layers.Conv2D(3, 1, name="input_adapter")(image)
    encoder = build_encoder(backbone, x, weights_file)
    skips = [encoder.get_layer(name).output for name in backbone.skips]
    bottleneck = encoder.get_layer(backbone.bottleneck).output

    f = config.decoder_filters
    d = _conv_bn_relu(bottleneck, 2 * f[0], 1, "decoder_center")
    for stage, filters in enumerate(f, start=1):
        skip = skips[stage - 1] if stage - 1 < len(skips) else None
        d = _decoder_block(d, skip, filters, stage, config.skip_projection)

    seg = layers.Conv2D(config.n_classes, 3, padding="same", name="vertebrae_logits")(d)
    seg = layers.Activation("softmax", dtype="float32", name="vertebrae")(seg)
    frac = layers.Conv2D(1, 3, padding="same", name="fracture_map_logits")(d)
    frac = layers.Activation("sigmoid", dtype="float32", name="fracture_map")(frac)

    c = layers.GlobalAveragePooling2D(name="cls_pool")(bottleneck)
    c = layers.Dropout(config.cls_dropout, name="cls_dropout")(c)
    c = layers.Dense(config.n_vertebrae, name="fracture_cls_logits")(c)
    cls = layers.Activation("sigmoid", dtype="float32", name="fracture_cls")(c)

    outputs = {"vertebrae": seg, "fracture_map": frac, "fracture_cls": cls}
    return keras.Model(image, outputs, name=f"cspine_unet_{backbone.name}")


def encoder_layers(model: Any) -> list[Any]:
    """The layers of ``model`` that belong to the encoder (everything but adapter/decoder/heads)."""
    return [ly for ly in model.layers if not ly.name.startswith(NON_ENCODER_PREFIXES)]


def set_encoder_trainable(model: Any, trainable: bool) -> None:
    """Freeze (warm-up) or unfreeze (fine-tune) the encoder; BatchNorm stays in inference mode
    while frozen because Keras runs frozen BN layers with their moving statistics."""
    for layer in encoder_layers(model):
        layer.trainable = trainable
