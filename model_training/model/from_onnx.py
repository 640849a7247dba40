"""Start training from a shipped ONNX file: its weights back into the Keras model.

A model bundle ships ONNX only (its Keras checkpoint stays with the training run that made it),
so fine-tuning the shipped model on new data needs its weights back in Keras. The ONNX file
written by :mod:`model_training.deploy.onnx_export` (tf2onnx) names every initializer after the
Keras layer it came from (``<model>_1/<layer>_1/…``), and that is how they are matched here:

- a ``Conv2D`` kernel is ``<layer>_1/convolution/ReadVariableOp:0`` (or ``…/merged_input:0``
  when tf2onnx folded the BatchNorm that follows the convolution into it), OIHW → HWIO;
  its bias ``<layer>_1/Squeeze:0``;
- a ``BatchNormalization`` is the affine map ``x·mul + add`` tf2onnx left of it: ``mul`` is
  ``<layer>_1/batchnorm/mul:0`` and ``add`` the other input of the ``Add`` after it (a constant
  tf2onnx may have renamed), or, when folded into the convolution before it, only the offset
  ``<layer>_1/batchnorm/sub:0`` (``mul`` is then inside the convolution's kernel);
- a ``Dense`` kernel is ``<layer>_1/MatMul/ReadVariableOp:0`` (or ``…/Cast/…``); biases are
  the Conv node's third input or the constant of the ``Add`` after it (tf2onnx drops an
  all-zero bias: it is then zero).

The BatchNorm layers then hold an equivalent of their inference transform (moving mean 0,
variance 1 − ε), exact in inference but not what training mode computes from batch statistics.
:func:`unfold_batchnorm` gives them real moving statistics, measured on training batches, and
the γ/β that keep the inference transform unchanged, so that fine-tuning starts from the
shipped model's behaviour in training mode as well.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class OnnxWeightsError(ValueError):
    """The ONNX file's initializers do not fit the Keras model."""


def _initializers(path: Path) -> tuple[dict[str, np.ndarray], dict[str, list[Any]]]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return weights, consumers


def load_onnx_weights(model: Any, path: str | Path) -> int:
    """Set every weighted layer of ``model`` from the ONNX file at ``path``; returns how many
    layers were set. Raises :class:`OnnxWeightsError` naming the layers that found no match or
    whose shapes differ."""
    import keras

    weights, consumers = _initializers(Path(path))
    by_suffix: dict[str, str] = {}
    for name in weights:
        parts = name.split("/")
        if len(parts) >= 3:
            by_suffix.setdefault("/".join(parts[1:]), name)

    def find(*suffixes: str) -> np.ndarray | None:
        for s in suffixes:
            if s in by_suffix:
                return weights[by_suffix[s]]
        return None

    def added_after(node: Any, size: int | None = None) -> np.ndarray | None:
        """The constant an ``Add`` adds to ``node``'s output (of ``size`` values if given)."""
        for nxt in consumers.get(node.output[0], []):
            if nxt.op_type == "Add":
                other = [i for i in nxt.input if i != node.output[0]]
                fits = other and other[0] in weights
                if fits and (size is None or weights[other[0]].size == size):
                    return weights[other[0]]
        return None

    def add_after_mul(mul_suffix: str) -> np.ndarray | None:
        for node in consumers.get(by_suffix.get(mul_suffix) or "", []):
            if node.op_type == "Mul" and (add := added_after(node)) is not None:
                return add
        return None

    def bias_of(kernel: str, shape: tuple[int, ...]) -> np.ndarray:
        # the Conv node's third input, or the constant added after the Conv/MatMul; none when
        # tf2onnx dropped an all-zero bias
        for node in consumers.get(kernel, []):
            if node.op_type == "Conv" and len(node.input) > 2 and node.input[2] in weights:
                return weights[node.input[2]]
            if (add := added_after(node, int(np.prod(shape)))) is not None:
                return add
        return np.zeros(shape, np.float32)

    problems: list[str] = []
    n_set = 0
    for layer in model.layers:
        current = layer.get_weights()
        if not current:
            continue
        n = f"{layer.name}_1"
        new: list[np.ndarray] | None = None
        if isinstance(layer, keras.layers.Conv2D):
            kname = by_suffix.get(f"{n}/convolution/merged_input:0") or by_suffix.get(
                f"{n}/convolution/ReadVariableOp:0"
            )
            if kname is not None:
                new = [np.transpose(weights[kname], (2, 3, 1, 0))]
                if len(current) == 2:
                    b = find(f"{n}/Squeeze:0", f"{n}/BiasAdd/ReadVariableOp:0")
                    if b is None:
                        b = bias_of(kname, current[1].shape)
                    new = [*new, b]
        elif isinstance(layer, keras.layers.BatchNormalization):
            c = current[0].shape[0]
            mul = find(f"{n}/batchnorm/mul:0")
            add = find(f"{n}/batchnorm/sub:0")
            if add is None and mul is not None:
                add = add_after_mul(f"{n}/batchnorm/mul:0")
            if add is not None:
                eps = float(layer.epsilon)
                gamma = np.ones(c, np.float32) if mul is None else mul.reshape(c)
                new = [gamma, add.reshape(c), np.zeros(c), np.full(c, 1.0 - eps)]
        elif isinstance(layer, keras.layers.Dense):
            kname = by_suffix.get(f"{n}/MatMul/ReadVariableOp:0") or by_suffix.get(
                f"{n}/Cast/ReadVariableOp:0"
            )
            if kname is not None:
                new = [weights[kname], bias_of(kname, current[1].shape)]
        if new is None:
            problems.append(f"{layer.name} ({type(layer).__name__}): not in the ONNX file")
            continue
        try:
            layer.set_weights(
                [np.asarray(w, np.float32).reshape(c.shape) for w, c in zip(new, current)]
            )
        except ValueError as exc:
            problems.append(f"{layer.name}: {exc}")
            continue
        n_set += 1
    if problems:
        raise OnnxWeightsError(
            f"{Path(path).name} does not fit this model: " + "; ".join(problems[:8])
        )
    log.info("weights of %d layers taken from %s", n_set, Path(path).name)
    return n_set


def unfold_batchnorm(model: Any, batches: Iterable[Any], steps: int = 12) -> int:
    """Give every BatchNorm real moving statistics (mean and variance of its input over
    ``steps`` batches, in inference mode) and the γ, β that keep its inference transform
    ``x·A + B`` exactly as it was; returns the number of batches used."""
    import keras

    bns = [ly for ly in model.layers if isinstance(ly, keras.layers.BatchNormalization)]
    if not bns:
        return 0
    probe = keras.Model(model.inputs, [ly.input for ly in bns])
    s1: list[np.ndarray | float] = [0.0] * len(bns)
    s2: list[np.ndarray | float] = [0.0] * len(bns)
    count = [0] * len(bns)
    used = 0
    for batch in itertools.islice(iter(batches), steps):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        outs = probe(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for j, o in enumerate(outs):
            a = np.asarray(o, np.float64).reshape(-1, o.shape[-1])
            s1[j] = s1[j] + a.sum(axis=0)
            s2[j] = s2[j] + (a**2).sum(axis=0)
            count[j] += a.shape[0]
        used += 1
    if not used:
        return 0
    for j, ly in enumerate(bns):
        gamma, beta, mean0, var0 = ly.get_weights()
        eps = float(ly.epsilon)
        scale = gamma / np.sqrt(var0 + eps)
        shift = beta - mean0 * scale
        mean = np.asarray(s1[j]) / count[j]
        var = np.maximum(np.asarray(s2[j]) / count[j] - mean**2, 1e-6)
        ly.set_weights(
            [
                (scale * np.sqrt(var + eps)).astype(np.float32),
                (shift + scale * mean).astype(np.float32),
                mean.astype(np.float32),
                var.astype(np.float32),
            ]
        )
    log.info("BatchNorm statistics of %d layers measured on %d batches", len(bns), used)
    return used
