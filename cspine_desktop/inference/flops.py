"""Arithmetic work of a model: FLOPs per slice of an ONNX graph (needs the ``onnx`` package)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def onnx_flops_per_slice(onnx_path: str | Path) -> int:
    """2 × multiply–adds of every Conv/MatMul/Gemm for one input slice (batch 1).

    Elementwise ops, pooling and activations are not counted (a few % of a U-Net).
    """
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(onnx_path))
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim0.ClearField("dim_param")
    dim0.dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 0 for d in dims]
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        out = shapes.get(node.output[0])
        if not out or not all(out):
            continue
        if node.op_type == "Conv" and inits.get(node.input[1]):
            # weight [Cout, Cin/group, kh, kw]: each output value costs prod(w[1:]) MACs
            total += 2 * int(np.prod(out)) * int(np.prod(inits[node.input[1]][1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            a = shapes.get(node.input[0]) or inits.get(node.input[0])
            if a and all(a):
                total += 2 * int(np.prod(out)) * int(a[-1])
    return int(total)
