"""Stage 2: the per-vertebra fracture classifier (DenseNet121 encoder) on high-resolution crops.

Input: one crop plane of one vertebra, [S, S, 4] (bone window above / at / below the plane and
the vertebra's stage-1 mask; see :mod:`cspine_desktop.imaging.crops`). Outputs:

* ``fracture``     [N, 1]  sigmoid: this plane of this vertebra shows a fracture;
* ``fracture_map`` [N, S/8, S/8, 1] sigmoid: where in the crop (the heat-map).

The vertebra's probability is an aggregate over its planes, calibrated on the validation split
(:mod:`cspine_desktop.analysis.stage2`, shared with the app). Everything here is Keras 3 with
``keras.ops`` only, so the same model trains on the TensorFlow, JAX or PyTorch backend.

``backbone="tiny"`` is a small convolutional encoder with the same taps, for the learning tests
in CI; the shipped model uses ``"densenet121"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .backbones import build_encoder, get_backbone, resolve_encoder_weights

MAP_TAP = {"densenet121": "pool3_relu", "tiny": "tiny_s8"}  # S/8 features for the map head
BN_MOMENTUM = 0.95
TOP_TAP = {"densenet121": "relu", "tiny": "tiny_s32"}  # S/32 features for the classifier


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of the stage-2 classifier; stored in the model card."""

    backbone: str = "densenet121"
    input_size: int = 128
    channels: int = 4
    map_filters: int = 64
    dropout: float = 0.3
    encoder_weights: str | None = None  # None | "imagenet" (local cache only) | PATH

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassifierConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _tiny_encoder(x: Any) -> tuple[Any, Any]:
    from keras import layers

    taps = {}
    for i, f in enumerate((16, 24, 32, 48, 64)):  # five stride-2 stages: S/2 … S/32
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"tiny_conv{i}")(x)
        x = layers.BatchNormalization(name=f"tiny_bn{i}")(x)
        x = layers.Activation("relu", name=f"tiny_relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"tiny_s{2 ** (i + 1)}")(x)
        taps[2 ** (i + 1)] = x
    return taps[8], taps[32]


def build_classifier(cfg: ClassifierConfig) -> Any:
    """The stage-2 Keras model (functional, named outputs ``fracture`` and ``fracture_map``)."""
    import keras
    from keras import layers

    s = cfg.input_size
    inp = keras.Input((s, s, cfg.channels), name="image")
    if cfg.backbone == "tiny":
        f8, f32 = _tiny_encoder(inp)
    else:
        bb = get_backbone(cfg.backbone)
        weights = resolve_encoder_weights(bb, cfg.encoder_weights)
        # a learned 1×1 adapter maps the 4 crop channels onto the encoder's 3 (ImageNet layout)
        x = layers.Conv2D(3, 1, name="input_adapter")(inp)
        enc = build_encoder(bb, x, weights)
        f8 = enc.get_layer(MAP_TAP[cfg.backbone]).output
        f32 = enc.get_layer(TOP_TAP[cfg.backbone]).output

    g = layers.GlobalAveragePooling2D(name="cls_pool")(f32)
    g = layers.Dropout(cfg.dropout, name="cls_dropout")(g)
    logit = layers.Dense(1, name="cls_logit")(g)
    prob = layers.Activation("sigmoid", name="fracture", dtype="float32")(logit)

    top = layers.Conv2D(cfg.map_filters, 1, name="map_top")(f32)
    top = layers.UpSampling2D(4, interpolation="bilinear", name="map_up")(top)
    mid = layers.Conv2D(cfg.map_filters, 1, name="map_mid")(f8)
    m = layers.Concatenate(name="map_cat")([mid, top])
    m = layers.Conv2D(cfg.map_filters, 3, padding="same", use_bias=False, name="map_conv")(m)
    m = layers.BatchNormalization(name="map_bn")(m)
    m = layers.Activation("relu", name="map_relu")(m)
    fmap = layers.Conv2D(1, 1, activation="sigmoid", name="fracture_map", dtype="float32")(m)
    model = keras.Model(inp, {"fracture": prob, "fracture_map": fmap}, name="cspine_stage2")
    # batch statistics move faster than Keras' default 0.99: a streamed run is judged after a
    # few hundred steps, and slow moving averages leave inference behind training
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return model


def compile_classifier(model: Any, learning_rate: float, map_weight: float = 1.0) -> None:
    """Adam, BCE on the plane label and on the localisation map, plane AUC as the metric."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss={
            "fracture": keras.losses.BinaryCrossentropy(),
            "fracture_map": keras.losses.BinaryCrossentropy(),
        },
        loss_weights={"fracture": 1.0, "fracture_map": float(map_weight)},
        metrics={"fracture": [keras.metrics.AUC(name="auc")]},
    )
