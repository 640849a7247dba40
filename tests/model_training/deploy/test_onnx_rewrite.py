"""ONNX graph rewrites done at export keep the outputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from factories.model_bundle import threshold_onnx

from cspine_desktop.inference.flops import onnx_flops_per_slice
from model_training.deploy.onnx_export import decompose_softmax


def _run(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {"image": x})))


def test_softmax_decomposition_gives_the_same_outputs(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(threshold_onnx(bone_level=0.5))
    x = np.random.default_rng(0).random((2, 64, 64, 4), dtype=np.float32)
    before = _run(path, x)
    assert decompose_softmax(path) == 1
    assert "Softmax" not in {n.op_type for n in onnx.load(str(path)).graph.node}
    after = _run(path, x)
    for k in before:
        assert np.allclose(before[k], after[k], atol=1e-6), k
    assert decompose_softmax(path) == 0  # idempotent


def test_flops_count_matmuls_of_the_threshold_model(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(threshold_onnx(with_cam=False))
    # image[1,64,64,4] @ [4,8] and @ [4,1]; pooled[1,4] @ [4,7]
    assert onnx_flops_per_slice(path) == 2 * (64 * 64 * 8 * 4 + 64 * 64 * 1 * 4 + 7 * 4)
