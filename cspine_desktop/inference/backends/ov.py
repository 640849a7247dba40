"""OpenVINO backend (CPU): the bundle's ONNX files run in fp32, bf16 or int8.

* ``int8``: a QDQ-quantised ONNX file (``model.int8.onnx``), its float parts in fp32.
* ``fp32``: an fp32 ONNX file with ``INFERENCE_PRECISION_HINT`` f32 — set explicitly, because
  on CPUs with AMX or AVX-512 BF16 OpenVINO's default would be bf16.
* ``bf16``: the same fp32 file with the hint bf16, offered only where the CPU plugin reports
  ``BF16`` among its ``OPTIMIZATION_CAPABILITIES`` (AMX / AVX-512 BF16). Asked for elsewhere it
  runs fp32 and says so: OpenVINO would otherwise quietly ignore the hint.

Compiling a model takes seconds to tens of seconds, so the compiled model is exported once to
``<cache_dir>/openvino/<onnx sha256[:16]>-<machine fingerprint>-<precision>.blob`` (the
fingerprint covers the CPU, the core count, the OS and the OpenVINO version, as the timing
cache's and the TensorRT engine cache's keys do) with a sidecar holding the blob's sha256: a
damaged or foreign blob is rebuilt, never trusted. ``openvino`` is imported here, inside
functions, never at package import.
"""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import ModelBundle, ModelFile, sha256_of
from ..engine import CAM_OUTPUT, OUTPUTS, BaseEngine, check_outputs, warn_once
from ..hardware import fingerprint, physical_cores

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "int8")
_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
CACHE_FOLDER = "openvino"


def is_available() -> bool:
    """True when the openvino package can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str:
    import openvino as ov

    return str(ov.get_version()).split("-", 1)[0]


@lru_cache(maxsize=1)
def _core() -> Any:
    import openvino as ov

    return ov.Core()


@lru_cache(maxsize=1)
def cpu_capabilities() -> frozenset[str]:
    """The CPU plugin's ``OPTIMIZATION_CAPABILITIES`` (e.g. FP32, INT8, BF16, EXPORT_IMPORT)."""
    try:
        caps = _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception as exc:  # an unusual build without the CPU plugin: no precision at all
        log.warning("OpenVINO CPU capabilities unreadable: %s", exc)
        return frozenset()
    return frozenset(str(c).upper() for c in caps)


def has_bf16() -> bool:
    """The OpenVINO CPU plugin computes bf16 natively here (AMX or AVX-512 BF16)."""
    return "BF16" in cpu_capabilities()


def precisions_for(model_file: ModelFile) -> tuple[str, ...]:
    """The OpenVINO precisions this CPU offers for ``model_file``: an int8 file runs int8; an
    fp32 file runs fp32, and bf16 where the CPU has it."""
    if model_file.format != "onnx":
        return ()
    if model_file.precision == "int8":
        return ("int8",)
    if model_file.precision == "fp32":
        return ("fp32", "bf16") if has_bf16() else ("fp32",)
    return ()


def compile_config(precision: str, threads: int | None = None) -> dict[str, Any]:
    """The CPU plugin configuration of one precision."""
    return {
        "INFERENCE_PRECISION_HINT": _HINT[precision],
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads or physical_cores()),
    }


def blob_path(cache_dir: Path, model_file: ModelFile, precision: str) -> Path:
    """Where the compiled model of ``model_file`` at ``precision`` is cached on this machine."""
    machine = fingerprint(f"openvino {version()}")
    name = f"{model_file.sha256[:16]}-{machine}-{precision}.blob"
    return Path(cache_dir) / CACHE_FOLDER / name


class OpenVinoEngine(BaseEngine):
    name = "openvino"

    def __init__(
        self,
        compiled: Any,
        *,
        outputs: tuple[str, ...] = OUTPUTS,
        config: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._expected = tuple(outputs)
        self.config = dict(config or {})
        self.built_cache = False  # True when this open compiled the model and wrote the blob
        self.from_cache = False  # True when it was imported from a cached blob
        self._ports: dict[str, Any] = {}
        for port in compiled.outputs:
            names = set(port.get_names())
            name = next((n for n in (*self._expected, CAM_OUTPUT) if n in names), None)
            self._ports[name or port.get_any_name()] = port
        self.supports_cam = CAM_OUTPUT in self._ports

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        result = self._request.infer({0: x})
        # the request reuses its output buffers on the next call: copy them out
        return {
            name: np.array(result[port], dtype=np.float32) for name, port in self._ports.items()
        }

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return check_outputs(self._run(batch), len(batch), self._expected)

    def class_activation(self, batch: np.ndarray, vertebra: int) -> np.ndarray:
        """Class activation map of C1..C7 index ``vertebra`` (see the ONNX backend)."""
        if not self.supports_cam:
            raise RuntimeError("this ONNX model has no fracture_cam output")
        cam = self._run(batch)[CAM_OUTPUT]
        return np.asarray(np.maximum(cam[..., vertebra], 0.0), np.float32)

    def close(self) -> None:
        self._request = self._compiled = None


def open_engine(
    bundle: ModelBundle,
    model_file: ModelFile,
    *,
    precision: str | None = None,
    cache_dir: Path | None = None,
    threads: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    outputs: tuple[str, ...] = OUTPUTS,
) -> OpenVinoEngine:
    """Open ``model_file`` (verified against the card) on OpenVINO's CPU plugin.

    ``precision`` defaults to the file's own (int8 or fp32); "bf16" needs an fp32 file and a
    CPU with bf16 (elsewhere: fp32 with one warning). The compiled model comes from the blob
    cache when a valid one exists, else it is compiled and (with a ``cache_dir``) cached.
    """
    precision = precision or model_file.precision
    if precision not in PRECISIONS:
        raise ValueError(f"OpenVINO precision must be one of {PRECISIONS}, not {precision!r}")
    if (precision == "int8") != (model_file.precision == "int8"):
        raise ValueError(f"{model_file.name} is {model_file.precision}; it cannot run {precision}")
    warnings: list[str] = []
    if precision == "bf16" and not has_bf16():
        msg = (
            "OpenVINO: this CPU has no bf16 (AMX or AVX-512 BF16); running fp32 instead. "
            "The analysis is the same, only slower."
        )
        warn_once(msg)
        warnings.append(msg)
        precision = "fp32"
    onnx_path = bundle.verified_path(model_file)
    config = compile_config(precision, threads)
    compiled, built, cached = _compiled_model(onnx_path, model_file, precision, config, cache_dir)
    engine = OpenVinoEngine(
        compiled,
        outputs=outputs,
        config=config,
        device="cpu",
        precision=precision,
        model_file=model_file.name,
        sha256=model_file.sha256,
        input_shape=input_shape or bundle.input_shape,
        warnings=tuple(warnings),
    )
    engine.built_cache, engine.from_cache = built, cached
    return engine


def _compiled_model(
    onnx_path: Path,
    model_file: ModelFile,
    precision: str,
    config: dict[str, Any],
    cache_dir: Path | None,
) -> tuple[Any, bool, bool]:
    """(compiled model, wrote a new blob, came from the cache)."""
    core = _core()
    blob = blob_path(cache_dir, model_file, precision) if cache_dir is not None else None
    if blob is not None:
        compiled = _import_blob(core, blob, config)
        if compiled is not None:
            return compiled, False, True
    compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
    if blob is None:
        return compiled, False, False
    try:
        _export_blob(compiled, blob, model_file)
    except Exception as exc:  # caching is an optimisation; never fail the analysis for it
        log.warning("could not cache the OpenVINO model in %s: %s", blob, exc)
        return compiled, False, False
    return compiled, True, False


def _import_blob(core: Any, blob: Path, config: dict[str, Any]) -> Any | None:
    sidecar = blob.with_suffix(".json")
    if not (blob.is_file() and sidecar.is_file()):
        return None
    try:
        if json.loads(sidecar.read_text(encoding="utf-8"))["sha256"] != sha256_of(blob):
            log.warning("cached OpenVINO model %s is damaged; compiling again", blob.name)
            return None
        return core.import_model(blob.read_bytes(), "CPU", config)
    except Exception as exc:  # a blob this OpenVINO cannot read is rebuilt
        log.warning("cached OpenVINO model %s unusable (%s); compiling again", blob.name, exc)
        return None


def _export_blob(compiled: Any, blob: Path, model_file: ModelFile) -> None:
    blob.parent.mkdir(parents=True, exist_ok=True)
    tmp = blob.with_suffix(f".{os.getpid()}.tmp")
    data = compiled.export_model()  # a BytesIO in current OpenVINO, bytes in older ones
    tmp.write_bytes(data.getvalue() if hasattr(data, "getvalue") else data)
    os.replace(tmp, blob)
    sidecar = {"sha256": sha256_of(blob), "source": model_file.name, "openvino": version()}
    blob.with_suffix(".json").write_text(json.dumps(sidecar), encoding="utf-8")
