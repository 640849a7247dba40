"""Re-create a Keras model under another dtype policy (float32 or mixed_bfloat16), same weights.

A model trained under ``mixed_bfloat16`` stores that policy in every layer; exporting it to
ONNX fp32, or running it in float32 on a CPU without bf16, needs the float32 twin. The output
layers (``vertebrae``, ``fracture_map``, ``fracture_cls``) always stay float32.
"""

from __future__ import annotations

import copy
from typing import Any

from ..engine import OUTPUTS

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def with_policy(model: Any, policy: str) -> Any:
    """A copy of functional ``model`` whose hidden layers use ``policy`` (same weights)."""
    import keras

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}")
    config = copy.deepcopy(model.get_config())
    compute = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
    for layer in config["layers"]:
        keep = layer["config"].get("name") in OUTPUTS
        _set_policy(layer["config"], "float32" if keep else policy)
        _set_tensor_dtype(layer.get("inbound_nodes", []), compute[policy])
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def _set_policy(layer_config: dict[str, Any], policy: str) -> None:
    dtype = layer_config.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") in ("DTypePolicy", "Policy"):
        dtype["config"]["name"] = policy
    elif isinstance(dtype, str) and layer_config.get("name") != "image":
        layer_config["dtype"] = policy


def _set_tensor_dtype(node: Any, dtype: str) -> None:
    """Floating keras_tensor dtypes in the inbound nodes follow the new compute dtype."""
    if isinstance(node, dict):
        if node.get("class_name") == "__keras_tensor__":
            cfg = node.get("config", {})
            if cfg.get("dtype") in ("float32", "bfloat16", "float16"):
                cfg["dtype"] = dtype
        for v in node.values():
            _set_tensor_dtype(v, dtype)
    elif isinstance(node, list):
        for v in node:
            _set_tensor_dtype(v, dtype)
