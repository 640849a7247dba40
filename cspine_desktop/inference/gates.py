"""Which runtime × precision pairs the accuracy gate let through, as the model card records it.

The reference is the fp32 ONNX file run by ONNX Runtime (``onnx-fp32``): every export and every
other way to run a file is judged against it on held-out phantom studies (``cspine-export``;
:mod:`model_training.deploy.gate`). A file's card entry records the verdicts:

* ``accuracy_gate``: the gate of the file itself on the runtime it was exported for (ONNX
  Runtime for ONNX files), written by the export — ``onnx-int8`` for ``model.int8.onnx``;
* ``runtime_gates``: ``{"openvino-int8": {…, "passed": true}, "openvino-bf16": {…}}``, one
  record per further pair, written by ``cspine-export --format openvino``.

``auto`` only picks a pair that is the reference or whose record passed. A pair whose record
failed is never opened, also not when its backend is asked for by name; a pair without a record
(not judged yet) runs only when its backend is asked for by name, with a warning in the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .bundle import ModelFile

REFERENCE = "onnx-fp32"
PASSED, FAILED, UNJUDGED = "passed", "failed", "unjudged"


def pair_key(runtime: str, precision: str) -> str:
    """``<runtime>-<precision>``, the name the timing cache and the card use (``openvino-bf16``)."""
    return f"{runtime}-{precision}"


def record(model_file: ModelFile, pair: str) -> Mapping[str, Any] | None:
    """The gate record of ``pair`` for ``model_file``, or None when it was never judged."""
    runtimes = model_file.extra.get("runtime_gates")
    found = runtimes.get(pair) if isinstance(runtimes, Mapping) else None
    if isinstance(found, Mapping):
        return found
    own = model_file.extra.get("accuracy_gate")
    if pair == pair_key("onnx", model_file.precision) and isinstance(own, Mapping):
        return own
    return None


def verdict(model_file: ModelFile, pair: str) -> str:
    """``passed`` (the reference, or a passing record), ``failed`` or ``unjudged``."""
    if pair == REFERENCE and model_file.precision == "fp32" and model_file.format == "onnx":
        return PASSED
    rec = record(model_file, pair)
    if rec is None or "passed" not in rec:
        return UNJUDGED
    return PASSED if rec["passed"] is True else FAILED
