"""ONNX Runtime backend: CPU always; CUDA and TensorRT execution providers with onnxruntime-gpu.

``onnxruntime`` is imported here, inside functions, never at package import.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import ModelBundle, ModelFile
from ..engine import CAM_OUTPUT, OUTPUTS, BaseEngine, check_outputs, warn_once
from ..hardware import physical_cores

log = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def is_available() -> bool:
    """True when onnxruntime can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def gpu_providers() -> list[str]:
    """GPU execution providers this onnxruntime build offers (empty for the CPU wheel)."""
    import onnxruntime as ort

    return [p for p in GPU_PROVIDERS if p in ort.get_available_providers()]


class OnnxEngine(BaseEngine):
    name = "onnx"

    def __init__(
        self,
        session: Any,
        *,
        input_name: str,
        outputs: tuple[str, ...] = OUTPUTS,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self._session = session
        self._input = input_name
        self._expected = tuple(outputs)
        names = [o.name for o in session.get_outputs()]
        # the class-activation output is tiny: compute it in the same pass as the rest
        self._outputs = [n for n in names if n in (*self._expected, CAM_OUTPUT)] or names
        self.supports_cam = CAM_OUTPUT in names

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        values = self._session.run(self._outputs, {self._input: x})
        return check_outputs(dict(zip(self._outputs, values)), len(x), self._expected)

    def class_activation(self, batch: np.ndarray, vertebra: int) -> np.ndarray:
        """Class activation map of C1..C7 index ``vertebra`` from the ``fracture_cam`` output
        (dense weights of the classifier at each bottleneck position): float32 [N, h, w] ≥ 0."""
        if not self.supports_cam:
            raise RuntimeError("this ONNX model has no fracture_cam output")
        x = np.ascontiguousarray(batch, dtype=np.float32)
        (cam,) = self._session.run([CAM_OUTPUT], {self._input: x})
        return np.maximum(np.asarray(cam, np.float32)[..., vertebra], 0.0)

    def close(self) -> None:
        self._session = None


def open_engine(
    bundle: ModelBundle,
    model_file: ModelFile,
    *,
    device: str = "auto",
    cache_dir: Path | None = None,
    threads: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    outputs: tuple[str, ...] = OUTPUTS,
) -> OnnxEngine:
    """Open ``model_file`` (verified against the card) in an ONNX Runtime session.

    device "cpu" uses the CPU provider only; "gpu"/"auto" try TensorRT and CUDA providers
    first when this onnxruntime build has them. A GPU provider that fails to load (no GPU,
    driver mismatch) falls back to the CPU with one warning.
    """
    opts = _session_options(threads)  # imports onnxruntime: without it, nothing else is tried
    path = bundle.verified_path(model_file)
    wanted = gpu_providers() if device in ("auto", "gpu") else []
    warnings: list[str] = []
    if device == "gpu" and not wanted:
        reason = "this onnxruntime has no CUDA/TensorRT support (install onnxruntime-gpu)"
        warnings.append(_warn_fallback(reason))
    session, gpu_active, notes = _start_session(path, opts, wanted, cache_dir, model_file)
    warnings += notes
    precision = model_file.precision
    if "TensorrtExecutionProvider" in gpu_active and precision == "fp32":
        precision = "fp16"  # trt_fp16_enable: the TensorRT provider runs an fp32 file in fp16
    return OnnxEngine(
        session,
        input_name=session.get_inputs()[0].name,
        device=_gpu_device_name(gpu_active[0]) if gpu_active else "cpu",
        precision=precision,
        model_file=model_file.name,
        sha256=model_file.sha256,
        input_shape=input_shape or bundle.input_shape,
        warnings=tuple(warnings),
        outputs=outputs,
    )


def _session_options(threads: int | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or physical_cores()
    opts.log_severity_level = 3
    return opts


def _start_session(
    path: Path,
    opts: Any,
    wanted: list[str],
    cache_dir: Path | None,
    model_file: ModelFile,
) -> tuple[Any, list[str], list[str]]:
    """A session on the ``wanted`` GPU providers, then the CPU: (session, the GPU providers
    active in it, warnings). A GPU provider that cannot start or does not load falls back to
    the CPU with one warning."""
    import onnxruntime as ort

    providers = [_provider_entry(p, cache_dir, model_file) for p in wanted]
    providers.append("CPUExecutionProvider")
    warnings: list[str] = []
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # a GPU provider that cannot start must not stop the analysis
        if not wanted:
            raise
        warnings.append(_warn_fallback(f"the GPU could not be used ({_short(exc)})"))
        session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        wanted = []
    gpu_active = [p for p in session.get_providers() if p in GPU_PROVIDERS]
    if wanted and not gpu_active:
        reason = "the CUDA provider did not load (no GPU or a driver mismatch)"
        warnings.append(_warn_fallback(reason))
    return session, gpu_active, warnings


def _provider_entry(
    provider: str, cache_dir: Path | None, model_file: ModelFile
) -> str | tuple[str, dict[str, bool | str]]:
    if provider != "TensorrtExecutionProvider":
        return provider
    options: dict[str, bool | str] = {"trt_fp16_enable": True}
    if cache_dir is not None:
        trt_cache = Path(cache_dir) / "ort-tensorrt" / model_file.sha256[:16]
        trt_cache.mkdir(parents=True, exist_ok=True)
        options |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(trt_cache)}
    return (provider, options)


def _gpu_device_name(provider: str) -> str:
    return "cuda:0 (TensorRT EP)" if provider.startswith("Tensorrt") else "cuda:0"


def _fallback_message(reason: str) -> str:
    return f"Running on the CPU: {reason}. The analysis is the same, only slower."


def _warn_fallback(reason: str) -> str:
    """Warn (once per process) that the engine runs on the CPU; returns the warning."""
    msg = _fallback_message(reason)
    warn_once(msg)
    return msg


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
