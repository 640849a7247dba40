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


def decompose_softmax(onnx_path: str | Path) -> int:
    """Rewrite every Softmax as exp(x − max) / Σ exp (same values), in place; returns the count.

    ONNX Runtime's CPU layout optimiser turns the model NCHW and moves the output transpose past
    the softmax, which then runs over axis 1 — a slow path (≈ 0.4 s per batch for the 8-class
    256² output, more than a tenth of the whole model). The elementwise form is fused normally.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    nodes, count = [], 0
    for node in graph.node:
        if node.op_type != "Softmax":
            nodes.append(node)
            continue
        count += 1
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        x, y, p = node.input[0], node.output[0], f"{node.name or 'softmax'}_{count}"
        graph.initializer.append(
            helper.make_tensor(f"{p}_axes", onnx.TensorProto.INT64, [1], [axis])
        )
        if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
            reduce_max = helper.make_node("ReduceMax", [x, f"{p}_axes"], [f"{p}_max"], keepdims=1)
        else:
            reduce_max = helper.make_node("ReduceMax", [x], [f"{p}_max"], keepdims=1, axes=[axis])
        nodes += [
            reduce_max,
            helper.make_node("Sub", [x, f"{p}_max"], [f"{p}_shifted"]),
            helper.make_node("Exp", [f"{p}_shifted"], [f"{p}_exp"]),
            helper.make_node("ReduceSum", [f"{p}_exp", f"{p}_axes"], [f"{p}_sum"], keepdims=1),
            helper.make_node("Div", [f"{p}_exp", f"{p}_sum"], [y], name=node.name),
        ]
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        onnx.checker.check_model(model)
        onnx.save(model, str(onnx_path))
    return count


FP16_MIN_ELEMENTS = 1024  # smaller tensors (biases, BN vectors) are not worth a Cast


def store_weights_fp16(onnx_path: str | Path) -> int:
    """Store the large float32 weights as float16 with a ``Cast`` back to float32, in place;
    returns the number of tensors converted.

    The arithmetic stays float32 (ONNX Runtime, OpenVINO and TensorRT fold the casts into
    constants when the session starts), so only the weights are rounded — to 11 significant
    bits — and the file is about half the size. Tensors outside float16's range stay float32.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    initializers, casts = [], []
    for init in graph.initializer:
        w = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        if w is None or w.size < FP16_MIN_ELEMENTS or not np.abs(w).max() < 6.0e4:
            initializers.append(init)
            continue
        half = numpy_helper.from_array(w.astype(np.float16), f"{init.name}__fp16")
        initializers.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    if casts:
        del graph.initializer[:]
        graph.initializer.extend(initializers)
        nodes = casts + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)
        onnx.checker.check_model(model)
        onnx.save(model, str(onnx_path))
    return len(casts)


def weights_fp32(onnx_path: str | Path, out_path: str | Path) -> Path:
    """The inverse of :func:`store_weights_fp16`, into ``out_path``: every float16 weight that is
    cast to float32 becomes a float32 weight again (the values the float file computes with), as
    a quantiser needs them."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    halves = {i.name: i for i in graph.initializer if i.data_type == TensorProto.FLOAT16}
    nodes, widened = [], []
    for node in graph.node:
        if node.op_type == "Cast" and len(node.input) == 1 and node.input[0] in halves:
            w = numpy_helper.to_array(halves[node.input[0]]).astype(np.float32)
            widened.append(numpy_helper.from_array(w, node.output[0]))
        else:
            nodes.append(node)
    used = {n for node in nodes for n in node.input}
    kept = [i for i in graph.initializer if i.name not in halves or i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + widened)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
    return Path(out_path)
