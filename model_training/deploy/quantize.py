"""Static int8 quantisation (QDQ) of the fp32 ONNX model, calibrated on phantom slices.

Weights int8 per output channel, activations uint8 (the x86 U8S8 path that VNNI/AMX-INT8
accelerate), ranges from MinMax over calibration slices taken from phantom studies that are
neither training nor gate studies. The output heads (last convolutions/dense, softmax, sigmoid,
class-activation) stay float32: they are cheap and set the probabilities.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from cspine_desktop.analysis.model_pass import neck_planes
from cspine_desktop.imaging.preprocess import PreprocessConfig, model_input, prepare_volume

from .gate import CALIBRATION_SEED, phantom_studies

log = logging.getLogger(__name__)

HEAD_MARKERS = ("vertebrae", "fracture_map", "fracture_cls", "fracture_cam")


def calibration_slices(
    cfg: PreprocessConfig, n_studies: int = 8, per_study: int = 12, phantom_config=None
) -> Iterator[np.ndarray]:
    """Model inputs [1, S, S, C] from evenly spaced neck planes of calibration phantoms."""
    for study in phantom_studies(CALIBRATION_SEED, n_studies, phantom_config):
        prepared = prepare_volume(study.to_volume(), cfg)
        planes = neck_planes(prepared)
        pick = planes[np.linspace(0, len(planes) - 1, min(per_study, len(planes))).astype(int)]
        x = model_input(prepared, pick)
        for i in range(len(x)):
            yield x[i : i + 1]


def head_nodes(onnx_path: Path, markers: Sequence[str] = HEAD_MARKERS) -> list[str]:
    """Names of the nodes that compute the output heads, or hold another of ``markers`` (kept
    in float32)."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    return [
        n.name
        for n in graph.node
        if any(f"/{m}" in n.name or n.name.startswith(m) for m in markers)
    ]


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    slices: Iterator[np.ndarray],
    *,
    op_types: Sequence[str] | None = None,
    float_markers: Sequence[str] = (),
) -> Path:
    """Write the QDQ int8 model of ``fp32_path`` to ``out_path``.

    ``op_types``: quantise only these operators (None: every one ONNX Runtime can); nodes whose
    name holds one of ``float_markers`` stay float32, like the output heads."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(slices)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {"image": x}

    with tempfile.TemporaryDirectory(prefix="cspine-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        excluded = head_nodes(pre, (*HEAD_MARKERS, *float_markers))
        log.info("quantising to int8 (%d head nodes stay float32)", len(excluded))
        quantize_static(
            str(pre),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded,
            op_types_to_quantize=list(op_types) if op_types else None,
        )
    return out_path
