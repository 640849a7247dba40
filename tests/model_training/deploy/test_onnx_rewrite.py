"""ONNX graph rewrites done at export keep the outputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from factories.model_bundle import threshold_onnx

from cspine_desktop.inference.flops import onnx_flops_per_slice
from model_training.deploy.onnx_export import decompose_softmax, store_weights_fp16


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


def _matmul_model(path, w, b):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["image", "w"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["y"]),
        ],
        "m",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, w.shape[1]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_fp16_weight_storage_halves_the_file_and_keeps_float32_arithmetic(tmp_path):
    from onnx import TensorProto

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (256, 128)).astype(np.float32)
    b = rng.normal(0, 1, 128).astype(np.float32)
    path = tmp_path / "m.onnx"
    _matmul_model(path, w, b)
    x = rng.random((4, 256), dtype=np.float32)
    before, size = _run_y(path, x), path.stat().st_size
    assert store_weights_fp16(path) == 1  # the bias is too small to be worth a cast
    kinds = {t.name: t.data_type for t in onnx.load(str(path)).graph.initializer}
    assert kinds == {"w__fp16": TensorProto.FLOAT16, "b": TensorProto.FLOAT}
    assert path.stat().st_size < 0.6 * size
    after = _run_y(path, x)
    assert after.dtype == np.float32
    # only the weights were rounded (11 significant bits): the product is within their error
    expected = x @ w.astype(np.float16).astype(np.float32) + b
    assert np.allclose(after, expected, atol=1e-5)
    assert 0 < np.abs(after - before).max() < 1e-2
    assert store_weights_fp16(path) == 0  # idempotent


def test_fp16_weight_storage_keeps_weights_beyond_float16_range(tmp_path):
    w = np.full((64, 32), 1.0e5, np.float32)
    path = tmp_path / "m.onnx"
    _matmul_model(path, w, np.zeros(32, np.float32))
    assert store_weights_fp16(path) == 0
    x = np.ones((1, 64), np.float32)
    assert np.allclose(_run_y(path, x), 64 * 1.0e5)


def _run_y(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(["y"], {"image": x})[0]


def test_fp32_weights_restore_what_the_fp16_storage_computes_with(tmp_path):
    """``stages quantize`` widens the stored float16 weights back before quantising: the same
    float32 values the float file runs with, no Cast left, the file full size again."""
    from onnx import TensorProto

    from model_training.deploy.onnx_export import weights_fp32

    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.05, (256, 128)).astype(np.float32)
    b = rng.normal(0, 1, 128).astype(np.float32)
    path = tmp_path / "m.onnx"
    _matmul_model(path, w, b)
    assert store_weights_fp16(path) == 1
    x = rng.random((4, 256), dtype=np.float32)
    stored = _run_y(path, x)
    wide = weights_fp32(path, tmp_path / "wide.onnx")
    graph = onnx.load(str(wide)).graph
    assert {t.name: t.data_type for t in graph.initializer} == {
        "w": TensorProto.FLOAT,
        "b": TensorProto.FLOAT,
    }
    assert "Cast" not in {n.op_type for n in graph.node}
    np.testing.assert_array_equal(_run_y(wide, x), stored)


def _conv_bn_model(path):
    """Conv → Concat → Mul → Add → Relu → Conv: DenseNet's pre-activation BatchNorm, which
    follows a concatenation and so cannot be folded into a convolution."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 4, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(1, 0.1, (1, 12, 1, 1)).astype(np.float32), "scale"),
        numpy_helper.from_array(rng.normal(0, 0.1, (1, 12, 1, 1)).astype(np.float32), "shift"),
        numpy_helper.from_array(rng.normal(0, 0.3, (2, 12, 3, 3)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Concat", ["c1", "image"], ["cat"], axis=1, name="concat"),
        helper.make_node("Mul", ["cat", "scale"], ["m"], name="bn_mul"),
        helper.make_node("Add", ["m", "shift"], ["a"], name="bn_add"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2"], ["y"], pads=[1, 1, 1, 1], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 4, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2, 16, 16])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_int8_of_the_convolutions_only_leaves_the_batchnorm_float(tmp_path):
    from model_training.deploy.quantize import quantize_int8

    src = tmp_path / "m.onnx"
    _conv_bn_model(src)
    rng = np.random.default_rng(0)

    def slices():
        return (rng.random((1, 4, 16, 16), dtype=np.float32) for _ in range(4))

    def quantised_inputs(path):
        graph = onnx.load(str(path)).graph
        dq = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
        return {n.name for n in graph.node if n.op_type != "DequantizeLinear" and dq & set(n.input)}

    every = quantize_int8(src, tmp_path / "all.onnx", slices())
    convs = quantize_int8(src, tmp_path / "conv.onnx", slices(), op_types=("Conv",))
    assert {"bn_mul", "bn_add"} & quantised_inputs(every)  # the default quantises them too
    only = quantised_inputs(convs)
    assert {"conv1", "conv2"} <= only and not {"bn_mul", "bn_add"} & only
