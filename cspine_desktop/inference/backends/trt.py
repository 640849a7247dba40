"""Native TensorRT backend: an engine built from the bundle's ONNX file for *this* GPU.

A TensorRT engine only runs on the GPU model and TensorRT version it was built with, so engines
are cached per (ONNX sha256, GPU, TensorRT version, precision) under the cache dir, or shipped in
the bundle with ``"gpu"`` and ``"tensorrt_version"`` in their card entry. FP16 engines come from
the fp32 ONNX, INT8 engines from the QDQ-quantised ONNX (explicit quantisation: no calibrator).
``tensorrt`` and ``cuda-python`` (``cuda.bindings``) are imported only inside functions.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelBundleError
from ..bundle import ModelBundle, ModelFile, sha256_of
from ..engine import OUTPUTS, BaseEngine, check_outputs

log = logging.getLogger(__name__)

MAX_BATCH = 8
WORKSPACE_BYTES = 1 << 30


class TensorRTUnavailable(RuntimeError):
    """TensorRT cannot run here; ``str(exc)`` says why in plain words."""


@dataclass(frozen=True)
class GpuIdentity:
    name: str
    compute_capability: str
    tensorrt_version: str

    @property
    def slug(self) -> str:
        s = re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-").lower()
        return f"{s}-sm{self.compute_capability}-trt{self.tensorrt_version}"


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python ≥ 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            raise TensorRTUnavailable(
                "the cuda-python package is not installed (pip install cuda-python)"
            ) from None
    return cudart


def _check(result: Any) -> Any:
    """Unpack a cuda-python ``(err, *values)`` tuple, raising on an error code."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else values


def gpu_identity() -> GpuIdentity:
    """The first CUDA GPU and the installed TensorRT, or TensorRTUnavailable saying why."""
    try:
        import tensorrt as trt
    except ImportError:
        raise TensorRTUnavailable(
            "TensorRT is not installed (pip install 'cspine[gpu]' on a machine with an NVIDIA GPU)"
        ) from None
    cudart = _cudart()
    try:
        count = _check(cudart.cudaGetDeviceCount())
    except Exception as exc:
        raise TensorRTUnavailable(f"the NVIDIA driver/CUDA runtime is not usable ({exc})") from None
    if not count:
        raise TensorRTUnavailable("no NVIDIA GPU was found")
    props = _check(cudart.cudaGetDeviceProperties(0))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return GpuIdentity(name.strip("\0 "), f"{props.major}{props.minor}", trt.__version__)


def availability() -> tuple[bool, str]:
    """(True, gpu description) or (False, the reason in plain words)."""
    try:
        gpu = gpu_identity()
    except TensorRTUnavailable as exc:
        return False, str(exc)
    return True, f"{gpu.name} (TensorRT {gpu.tensorrt_version})"


def build_engine(
    onnx_path: Path,
    out_path: Path,
    *,
    precision: str = "fp16",
    max_batch: int = MAX_BATCH,
) -> Path:
    """Build a serialised engine (``.plan``) from ``onnx_path`` for this GPU; returns out_path.

    precision "fp16" (from an fp32 ONNX) or "int8" (from a QDQ ONNX; FP16 allowed alongside).
    """
    import tensorrt as trt

    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError("precision must be fp32, fp16 or int8")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelBundleError(f"TensorRT cannot read {Path(onnx_path).name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    inp = network.get_input(0)
    _, s1, s2, c = tuple(inp.shape)
    profile = builder.create_optimization_profile()
    profile.set_shape(
        inp.name, (1, s1, s2, c), (max(1, max_batch // 2), s1, s2, c), (max_batch, s1, s2, c)
    )
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build an engine (see the log)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(out_path)
    return out_path


def cached_engine_path(
    cache_dir: Path, onnx_file: ModelFile, gpu: GpuIdentity, precision: str
) -> Path:
    return Path(cache_dir) / "tensorrt" / f"{onnx_file.sha256[:16]}-{gpu.slug}-{precision}.plan"


def engine_for(
    bundle: ModelBundle, cache_dir: Path | None, precision: str = "fp16"
) -> tuple[Path, ModelFile]:
    """The engine file for this GPU: shipped in the bundle, cached, or built now (minutes).

    Returns (plan path, the bundle file it stands for). Cached plans carry a sidecar digest so
    a damaged cache is rebuilt, never trusted.
    """
    gpu = gpu_identity()
    for f in bundle.files:
        if (
            f.format == "tensorrt"
            and f.precision == precision
            and f.extra.get("gpu") == gpu.name
            and f.extra.get("tensorrt_version") == gpu.tensorrt_version
        ):
            return bundle.verified_path(f), f
    source = bundle.find("onnx", "int8" if precision == "int8" else "fp32")
    if source is None:
        raise ModelBundleError(
            f"The model bundle has no {'int8 ' if precision == 'int8' else ''}ONNX file "
            "to build a TensorRT engine from."
        )
    if cache_dir is None:
        raise TensorRTUnavailable("no cache folder to keep the TensorRT engine in")
    plan = cached_engine_path(cache_dir, source, gpu, precision)
    sidecar = plan.with_suffix(".json")
    if plan.is_file() and sidecar.is_file():
        try:
            if json.loads(sidecar.read_text())["sha256"] == sha256_of(plan):
                return plan, source
        except (OSError, KeyError, ValueError):
            pass
    log.info(
        "building a TensorRT %s engine for %s (once per GPU; takes minutes)", precision, gpu.name
    )
    build_engine(bundle.verified_path(source), plan, precision=precision)
    sidecar.write_text(
        json.dumps({"sha256": sha256_of(plan), "gpu": gpu.name, "source": source.name})
    )
    return plan, source


class TensorRTEngine(BaseEngine):
    name = "tensorrt"

    def __init__(self, plan: Path, **kw: Any) -> None:
        super().__init__(**kw)
        import tensorrt as trt

        self._cudart = _cudart()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(Path(plan).read_bytes())
        if self._engine is None:
            raise TensorRTUnavailable("the TensorRT engine does not match this GPU or TensorRT")
        self._context = self._engine.create_execution_context()
        self._stream = _check(self._cudart.cudaStreamCreate())
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self._input = next(n for n in names if self._engine.get_tensor_mode(n) == mode)
        self._outputs = [n for n in names if n != self._input]
        missing = [o for o in OUTPUTS if o not in self._outputs]
        if missing:
            raise ModelBundleError(f"The TensorRT engine lacks outputs {', '.join(missing)}.")
        self._buffers: dict[str, tuple[int, int]] = {}  # name → (device pointer, bytes)

    def _device_buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self._cudart.cudaFree(ptr))
            ptr = _check(self._cudart.cudaMalloc(nbytes))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        cudart = self._cudart
        x = np.ascontiguousarray(batch, dtype=np.float32)
        out: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(x), MAX_BATCH):
            part = x[start : start + MAX_BATCH]
            self._context.set_input_shape(self._input, part.shape)
            d_in = self._device_buffer(self._input, part.nbytes)
            h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
            _check(cudart.cudaMemcpyAsync(d_in, part.ctypes.data, part.nbytes, h2d, self._stream))
            self._context.set_tensor_address(self._input, d_in)
            hosts = {}
            for name in self._outputs:
                shape = tuple(self._context.get_tensor_shape(name))
                hosts[name] = np.empty(shape, dtype=np.float32)
                ptr = self._device_buffer(name, hosts[name].nbytes)
                self._context.set_tensor_address(name, ptr)
            if not self._context.execute_async_v3(int(self._stream)):
                raise RuntimeError("TensorRT inference failed")
            d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
            for name, host in hosts.items():
                ptr = self._buffers[name][0]
                _check(
                    cudart.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, d2h, self._stream)
                )
            _check(cudart.cudaStreamSynchronize(self._stream))
            for name, host in hosts.items():
                out.setdefault(name, []).append(host)
        merged = {k: np.concatenate(v) for k, v in out.items()}
        return check_outputs(merged, len(x))

    def close(self) -> None:
        for ptr, _ in self._buffers.values():
            self._cudart.cudaFree(ptr)
        self._buffers.clear()
        self._context = self._engine = None


def open_engine(
    bundle: ModelBundle, *, cache_dir: Path | None, precision: str = "fp16"
) -> TensorRTEngine:
    """A TensorRT engine for this GPU (TensorRTUnavailable with the reason if it cannot run)."""
    plan, source = engine_for(bundle, cache_dir, precision)
    gpu = gpu_identity()
    return TensorRTEngine(
        plan,
        device=f"cuda:0 ({gpu.name})",
        precision=precision,
        model_file=source.name,
        sha256=source.sha256,
        input_shape=bundle.input_shape,
    )
