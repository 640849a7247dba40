"""Keras → ONNX (fp32): the float32 twin of the trained model plus a class-activation output.

The exported graph has input ``image`` [N, S, S, C] and outputs ``vertebrae``, ``fracture_map``,
``fracture_cls`` and ``fracture_cam`` [N, S/32, S/32, 7]: the classification head's dense
kernel applied at every bottleneck position (no bias). For a global-average-pool + dense head
this is the class activation map, and equals Grad-CAM up to a constant factor, so ONNX Runtime
and TensorRT can explain ``fracture_cls`` without gradients.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.inference.backends.keras_policy import with_policy

log = logging.getLogger(__name__)

OUTPUTS = ("vertebrae", "fracture_map", "fracture_cls")
CAM_FEATURES = "relu"  # DenseNet121 bottleneck (input of cls_pool)
CLS_DENSE = "fracture_cls_logits"
OPSET = 17


def load_keras_fp32(path: str | Path) -> Any:
    """Load ``model.keras`` (any training dtype policy) as a float32 model."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    model = keras.models.load_model(str(path), compile=False)
    return with_policy(model, "float32")


def with_cam_output(model: Any) -> Any:
    """``model`` plus the ``fracture_cam`` output (see module docstring); as-is if it has no
    GAP + dense classification head to explain."""
    import keras

    names = {layer.name for layer in model.layers}
    if CAM_FEATURES not in names or CLS_DENSE not in names:
        log.warning("no %s/%s layers: exporting without fracture_cam", CAM_FEATURES, CLS_DENSE)
        return model
    kernel = model.get_layer(CLS_DENSE).get_weights()[0]
    cam_layer = keras.layers.Dense(kernel.shape[1], use_bias=False, name="fracture_cam")
    cam = cam_layer(model.get_layer(CAM_FEATURES).output)
    cam_layer.set_weights([kernel])
    outputs = {name: model.get_layer(name).output for name in OUTPUTS}
    outputs["fracture_cam"] = cam
    return keras.Model(model.inputs, outputs, name=model.name)


def export_onnx(model: Any, out_path: str | Path, opset: int = OPSET) -> Path:
    """Write ``model`` (float32) as ONNX to ``out_path`` (atomically)."""
    out_path = Path(out_path)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    model({"image": np.zeros((1, *shape), np.float32)})  # Keras exports only called models
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out_path.parent)
    os.close(fd)
    try:
        model.export(tmp, format="onnx", verbose=False, opset_version=opset)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_path


def max_abs_difference(model: Any, onnx_path: str | Path, x: np.ndarray) -> float:
    """Largest |Keras − ONNX Runtime| over the three outputs for input ``x``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": x})))
    ref = model({"image": x}, training=False)
    return max(float(np.max(np.abs(np.asarray(ref[k]) - got[k]))) for k in OUTPUTS)
