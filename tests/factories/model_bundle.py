"""Tiny model bundles for tests: a hand-built ONNX "threshold" model and its card.

The threshold model is a real ONNX graph with the cspine I/O contract but no learning: per
pixel it calls bone (the centre bone-window channel above ``bone_level``) vertebra ``label``,
its fracture map is a fixed logistic of that channel, and ``fracture_cls`` is a constant
vector. Tests can therefore predict exactly what the pipeline must report, without TensorFlow
and in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

N_CLASSES, N_VERTEBRAE = 8, 7
BONE_CHANNEL = 1  # ("bone", 0.0) in the default channel list


def threshold_onnx(
    size: int = 64,
    channels: int = 4,
    label: int = 3,
    cls_prob: tuple[float, ...] = (0.1,) * 7,
    bone_level: float = 0.45,
    dense_label: int | None = 4,
    dense_level: float = 0.75,
    with_cam: bool = True,
) -> bytes:
    """Serialised ONNX model: input ``image`` [N, S, S, C] → vertebrae/fracture_map/
    fracture_cls (+ ``fracture_cam`` [N, S/8, S/8, 7] when ``with_cam``).

    Bone (channel value > ``bone_level``) is ``label``; denser bone (> ``dense_level``, e.g.
    the 1000 HU ball of the synthetic series) is ``dense_label`` when given."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w_seg = np.zeros((channels, N_CLASSES), np.float32)
    b_seg = np.full(N_CLASSES, -100.0, np.float32)
    w_seg[BONE_CHANNEL, 0], b_seg[0] = -40.0, 40.0 * bone_level
    w_seg[BONE_CHANNEL, label], b_seg[label] = 40.0, -40.0 * bone_level
    if dense_label is not None:
        w_seg[BONE_CHANNEL, dense_label] = 120.0
        b_seg[dense_label] = -40.0 * bone_level - 80.0 * dense_level
    w_map = np.zeros((channels, 1), np.float32)
    w_map[BONE_CHANNEL, 0] = 8.0
    b_map = np.array([-6.0], np.float32)
    logits = np.log(np.asarray(cls_prob, np.float64) / (1 - np.asarray(cls_prob, np.float64)))
    w_cls = np.zeros((channels, N_VERTEBRAE), np.float32)
    b_cls = logits.astype(np.float32)
    w_cam = np.zeros((channels, N_VERTEBRAE), np.float32)
    w_cam[BONE_CHANNEL, :] = 1.0
    inits = [
        numpy_helper.from_array(a, n)
        for a, n in [
            (w_seg, "w_seg"),
            (b_seg, "b_seg"),
            (w_map, "w_map"),
            (b_map, "b_map"),
            (w_cls, "w_cls"),
            (b_cls, "b_cls"),
            (w_cam, "w_cam"),
            (np.array([1, 2], np.int64), "hw_axes"),
        ]
    ]
    nodes = [
        helper.make_node("MatMul", ["image", "w_seg"], ["seg_mm"]),
        helper.make_node("Add", ["seg_mm", "b_seg"], ["seg_logits"]),
        helper.make_node("Softmax", ["seg_logits"], ["vertebrae"], axis=-1),
        helper.make_node("MatMul", ["image", "w_map"], ["map_mm"]),
        helper.make_node("Add", ["map_mm", "b_map"], ["map_logits"]),
        helper.make_node("Sigmoid", ["map_logits"], ["fracture_map"]),
        helper.make_node("ReduceMean", ["image", "hw_axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w_cls"], ["cls_mm"]),
        helper.make_node("Add", ["cls_mm", "b_cls"], ["cls_logits"]),
        helper.make_node("Sigmoid", ["cls_logits"], ["fracture_cls"]),
    ]
    outputs = [
        helper.make_tensor_value_info("vertebrae", TensorProto.FLOAT, ["N", size, size, 8]),
        helper.make_tensor_value_info("fracture_map", TensorProto.FLOAT, ["N", size, size, 1]),
        helper.make_tensor_value_info("fracture_cls", TensorProto.FLOAT, ["N", 7]),
    ]
    if with_cam:
        nodes += [
            helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
            helper.make_node(
                "AveragePool", ["nchw"], ["pool8"], kernel_shape=[8, 8], strides=[8, 8]
            ),
            helper.make_node("Transpose", ["pool8"], ["nhwc8"], perm=[0, 2, 3, 1]),
            helper.make_node("MatMul", ["nhwc8", "w_cam"], ["fracture_cam"]),
        ]
        outputs.append(
            helper.make_tensor_value_info(
                "fracture_cam", TensorProto.FLOAT, ["N", size // 8, size // 8, 7]
            )
        )
    graph = helper.make_graph(
        nodes,
        "cspine_threshold",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", size, size, channels])],
        outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def preprocessing(size: int = 64, pixel_spacing_mm: float = 2.0, slice_step_mm: float = 2.0):
    """A PreprocessConfig dict for a coarse test grid (FOV = size × spacing mm)."""
    from cspine_desktop.imaging.preprocess import PreprocessConfig

    return PreprocessConfig(
        input_size=size, pixel_spacing_mm=pixel_spacing_mm, slice_step_mm=slice_step_mm
    ).to_dict()


def write_bundle(
    folder: Path,
    files: dict[str, bytes | Path],
    *,
    size: int = 64,
    card: dict[str, Any] | None = None,
    formats: dict[str, tuple[str, str]] | None = None,
) -> Path:
    """Write ``files`` (name → bytes, or an existing file to copy) and a matching card.

    formats: name → (format, precision); default from the suffix (``*.int8.onnx`` → int8).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, data in files.items():
        blob = data.read_bytes() if isinstance(data, Path) else data
        (folder / name).write_bytes(blob)
        fmt, prec = (formats or {}).get(name) or _guess(name)
        entries[name] = {
            "format": fmt,
            "precision": prec,
            "sha256": hashlib.sha256(blob).hexdigest(),
        }
    doc = {
        "name": "cspine-test",
        "version": "0.0.1",
        "architecture": "threshold test model",
        "created": "2024-01-01T00:00:00Z",
        "preprocessing": preprocessing(size),
        "inputs": {"image": [None, size, size, 4]},
        "outputs": {"vertebrae": [None, size, size, 8]},
        "labels": {str(i): f"C{i}" for i in range(1, 8)},
        "thresholds": {**{f"C{i}": 0.5 for i in range(1, 8)}, "patient_overall": 0.5},
        "aggregation": {"top_k": 3, "assign_levels": False},  # toy labels, not anatomy
        "files": entries,
        "training_data": "none",
        "metrics": {},
        "disclaimer": "Not for diagnostic use.",
    }
    doc.update(card or {})
    (folder / "model_card.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return folder


def _guess(name: str) -> tuple[str, str]:
    if name.endswith(".int8.onnx"):
        return "onnx", "int8"
    if name.endswith(".onnx"):
        return "onnx", "fp32"
    if name.endswith(".keras"):
        return "keras", "fp32"
    return "savedmodel", "fp32"


def classifier_onnx(size: int = 32, stride: int = 8) -> bytes:
    """A stage-2 stand-in: ``fracture`` = sigmoid(mean of the image) and ``fracture_map`` = the
    mask channel average-pooled to the map grid."""
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, size, size, 4])
    out_p = helper.make_tensor_value_info("fracture", TensorProto.FLOAT, [None, 1])
    m = size // stride
    out_m = helper.make_tensor_value_info("fracture_map", TensorProto.FLOAT, [None, m, m, 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=0),
        helper.make_node("Unsqueeze", ["mean", "one"], ["mean1"]),
        helper.make_node("Sigmoid", ["mean1"], ["fracture"]),
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node(
            "AveragePool",
            ["nchw"],
            ["pooled"],
            kernel_shape=[stride, stride],
            strides=[stride, stride],
        ),
        helper.make_node("Slice", ["pooled", "c3", "c4", "c1"], ["maskc"]),
        helper.make_node("Transpose", ["maskc"], ["fracture_map"], perm=[0, 2, 3, 1]),
    ]
    inits = [
        axes,
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        helper.make_tensor("c3", TensorProto.INT64, [1], [3]),
        helper.make_tensor("c4", TensorProto.INT64, [1], [4]),
        helper.make_tensor("c1", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(nodes, "stage2", [inp], [out_p, out_m], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model.SerializeToString()
