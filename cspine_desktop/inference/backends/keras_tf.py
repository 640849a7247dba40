"""Keras backend (TensorFlow CPU/GPU): ``model.keras`` or a SavedModel folder.

TensorFlow is imported only here, inside functions. On CPUs with AMX/AVX-512 BF16 the model is
re-created under ``mixed_bfloat16`` (outputs stay float32); with a GPU under ``mixed_float16``.
This is the one backend that computes true Grad-CAM (gradients of ``fracture_cls``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from ..bundle import ModelBundle, ModelFile
from ..engine import BaseEngine, check_outputs, warn_once
from ..hardware import has_bf16

log = logging.getLogger(__name__)

FORMATS = ("keras", "savedmodel")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CAM_LAYER = "relu"  # DenseNet121 bottleneck feeding the classification head


def is_available() -> bool:
    """True when TensorFlow and Keras are installed (without importing them)."""
    from importlib.util import find_spec

    return find_spec("tensorflow") is not None and find_spec("keras") is not None


def _gpus() -> list[Any]:
    import tensorflow as tf

    try:
        return list(tf.config.list_physical_devices("GPU"))
    except Exception:  # a broken CUDA install must not stop a CPU analysis
        return []


class KerasEngine(BaseEngine):
    name = "keras"

    def __init__(self, model: Any, call: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._model = model
        self._call = call
        self._cam_model: Any = None

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        x = tf.constant(np.ascontiguousarray(batch, dtype=np.float32))
        out = self._call(x)
        return check_outputs({k: v.numpy() for k, v in out.items()}, int(x.shape[0]))

    @property
    def supports_cam(self) -> bool:
        return self._model is not None and _has_layer(self._model, CAM_LAYER)

    def class_activation(self, batch: np.ndarray, vertebra: int) -> np.ndarray:
        """Grad-CAM of ``fracture_cls[:, vertebra]`` (0-based C1..C7) on the bottleneck.

        Returns float32 [N, h, w] ≥ 0 at the bottleneck resolution (S/32), not normalised.
        """
        import tensorflow as tf

        if self._cam_model is None:
            import keras

            layer = self._model.get_layer(CAM_LAYER).output
            head = self._model.get_layer("fracture_cls_logits").output
            self._cam_model = keras.Model(self._model.inputs, [layer, head])
        x = tf.constant(np.asarray(batch, dtype=np.float32))
        with tf.GradientTape() as tape:
            feats, logits = self._cam_model(x, training=False)
            tape.watch(feats)
            target = tf.cast(logits, tf.float32)[:, vertebra]
        # gradients through a GAP + dense head: weights = mean gradient per channel; taken
        # w.r.t. the tensor the model computed (bf16 under mixed precision), then cast
        grads = tf.cast(tape.gradient(target, feats), tf.float32)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(feats, tf.float32), axis=-1))
        return np.asarray(cam.numpy(), dtype=np.float32)

    def close(self) -> None:
        self._model = self._call = self._cam_model = None


def _has_layer(model: Any, name: str) -> bool:
    try:
        model.get_layer(name)
    except (ValueError, AttributeError):
        return False
    return True


def choose_precision(requested: str, gpu: bool) -> str:
    if requested != "auto":
        return requested
    if gpu:
        return "fp16"
    return "bf16" if has_bf16() else "fp32"


def open_engine(
    bundle: ModelBundle,
    model_file: ModelFile,
    *,
    device: str = "auto",
    precision: str = "auto",
) -> KerasEngine:
    """Load ``model_file`` (verified) with Keras; precision "auto" picks bf16/fp16/fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    path = bundle.verified_path(model_file)
    import tensorflow as tf

    warnings: list[str] = []
    gpus = _gpus() if device != "cpu" else []
    if device == "gpu" and not gpus:
        msg = "Running on the CPU: TensorFlow sees no GPU. The analysis is the same, only slower."
        warn_once(msg)
        warnings.append(msg)
    if device == "cpu":
        tf.config.set_visible_devices([], "GPU")
    chosen = choose_precision(precision, bool(gpus))
    if model_file.format == "savedmodel":
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
        input_name = next(iter(signature.structured_input_signature[1]))
        model = None
        chosen = model_file.precision

        def call(x: Any) -> dict[str, Any]:
            return dict(signature(**{input_name: x}))

    else:
        import keras

        from .keras_policy import with_policy

        model = keras.models.load_model(str(path), compile=False)
        policy = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}[chosen]
        model = with_policy(model, policy)
        call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return KerasEngine(
        model,
        call,
        device=f"gpu:0 ({gpus[0].name})" if gpus else "cpu",
        precision=chosen,
        model_file=model_file.name,
        sha256=model_file.sha256,
        input_shape=bundle.input_shape,
        warnings=tuple(warnings),
    )
