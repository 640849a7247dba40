"""The one interface every inference backend offers, and the outputs it returns.

``predict(batch)`` takes ``image`` float32 [N, S, S, C] in [0, 1] (from
:func:`cspine_desktop.imaging.preprocess.model_input`) and returns a dict with
``vertebrae`` softmax [N, S, S, 8] (0 background, 1–7 = C1–C7), ``fracture_map`` sigmoid
[N, S, S, 1] and ``fracture_cls`` sigmoid [N, 7], all float32 numpy arrays.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

OUTPUTS = ("vertebrae", "fracture_map", "fracture_cls")
# stage 2, per crop plane: ``fracture`` sigmoid [N, 1], ``fracture_map`` sigmoid [N, m, m, 1]
CLASSIFIER_OUTPUTS = ("fracture", "fracture_map")
CAM_OUTPUT = "fracture_cam"  # optional: [N, h, w, 7] class activation (see analysis.explain)
BACKENDS = ("onnx", "openvino", "keras", "tensorrt")


@runtime_checkable
class Engine(Protocol):
    """A loaded model ready to run. Not thread-safe: one caller at a time."""

    name: str  # backend: "onnx", "openvino", "keras", "tensorrt"
    device: str  # "cpu", "cuda:0 (<gpu name>)"
    precision: str  # "fp32", "int8", "fp16", "bf16"
    model_file: str  # the bundle file it runs (or was built from)
    sha256: str  # that file's digest, as in the card
    warnings: tuple[str, ...]  # plain sentences (e.g. a fallback to the CPU)
    input_shape: tuple[int, int, int]  # (S, S, C) of one input slice
    classifier: Engine | None  # the stage-2 crop classifier riding on a stage-1 engine

    @property
    def label(self) -> str: ...  # e.g. "onnx-cpu-int8", for results and logs

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


class BaseEngine:
    """Shared plumbing: attribute storage and output checking."""

    name = "base"
    classifier: Engine | None = None  # set by select.open_engine when the bundle has stage 2

    def __init__(
        self,
        *,
        device: str,
        precision: str,
        model_file: str,
        sha256: str,
        input_shape: tuple[int, int, int],
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.device = device
        self.precision = precision
        self.model_file = model_file
        self.sha256 = sha256
        self.input_shape: tuple[int, int, int] = (
            int(input_shape[0]),
            int(input_shape[1]),
            int(input_shape[2]),
        )
        self.warnings = tuple(warnings)

    @property
    def label(self) -> str:
        """Short description for results and logs, e.g. ``onnx-cpu-int8``."""
        device = self.device.split(" ", 1)[0].split(":", 1)[0]
        return f"{self.name}-{device}-{self.precision}"

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Release the framework session (optional)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label} {self.model_file}>"


def check_outputs(
    outputs: dict[str, np.ndarray], n: int, expected: tuple[str, ...] = OUTPUTS
) -> dict[str, np.ndarray]:
    """Outputs as float32 with the contract's names (plus ``fracture_cam`` when the model has
    it); a model without the contract's outputs (``expected``) is refused."""
    from ..errors import ModelBundleError

    missing = [k for k in expected if k not in outputs]
    if missing:
        raise ModelBundleError(
            f"The model does not produce {', '.join(missing)}; it is not a cspine model."
        )
    keep = (*expected, CAM_OUTPUT) if CAM_OUTPUT in outputs else expected
    out = {k: np.asarray(outputs[k], dtype=np.float32) for k in keep}
    if any(v.shape[0] != n for v in out.values()):
        raise ModelBundleError("The model returned a different number of slices than it was given.")
    return out


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(message: str) -> bool:
    """Log ``message`` as a warning the first time this process sees it; True if logged."""
    with _warned_lock:
        if message in _warned:
            return False
        _warned.add(message)
    log.warning(message)
    return True
