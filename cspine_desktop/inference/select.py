"""Pick and open the backend: ``auto`` = the fastest one here whose model file verifies.

Candidates come from the bundle's files and what is installed: TensorRT (a GPU + the tensorrt
package), ONNX Runtime (int8 and fp32 files; GPU providers with onnxruntime-gpu), Keras
(TensorFlow installed and a ``model.keras`` in the bundle). ``auto`` uses Keras only when
nothing else can run the bundle (TensorFlow's import time and memory outweigh its speed for one
study; ask for ``keras`` explicitly to use it). The first time a model runs on a
machine each candidate is opened and timed on two slices; the timings are cached in
``<cache_dir>/backend-timings.json`` (per machine fingerprint and model digest), so later starts
open only the winner. The score is the expected time for a typical study: load time + time per
slice × :data:`TYPICAL_SLICES`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CspineInputError, ModelBundleError, SettingsError
from .bundle import ModelBundle
from .engine import CLASSIFIER_OUTPUTS, Engine, warn_once
from .hardware import fingerprint

log = logging.getLogger(__name__)

TIMINGS_FILE = "backend-timings.json"
TYPICAL_SLICES = 100  # model-grid planes of a typical neck study (2 mm steps)
_lock = threading.Lock()


@dataclass(frozen=True)
class Candidate:
    """One way to run the bundle. ``key`` names it in the timing cache (e.g. ``onnx-int8``)."""

    backend: str
    key: str
    sha256: str
    open: Callable[[], Engine]


def candidates(
    bundle: ModelBundle,
    backend: str,
    cache_dir: Path | None,
    keras_precisions: tuple[str, ...] = ("auto",),
) -> list[Candidate]:
    """Ways to run ``bundle`` with ``backend`` ("auto" = all) that are installed here.

    ``keras_precisions``: one Keras candidate per precision ("auto" picks bf16/fp16/fp32 for
    the hardware); ``cspine bench`` asks for ("fp32", "bf16") to compare them.
    """
    out: list[Candidate] = []
    if backend in ("auto", "tensorrt"):
        from .backends import trt

        if trt.availability()[0]:
            for prec in ("int8", "fp16"):
                src = bundle.find("onnx", "int8" if prec == "int8" else "fp32")
                if src is not None:
                    out.append(
                        Candidate(
                            "tensorrt",
                            f"tensorrt-{prec}",
                            src.sha256,
                            lambda p=prec: trt.open_engine(
                                bundle, cache_dir=cache_dir, precision=p
                            ),
                        )
                    )
    if backend in ("auto", "onnx", "tensorrt"):
        from .backends import ort

        if ort.is_available():
            for f in bundle.files:
                if f.format == "onnx":
                    out.append(
                        Candidate(
                            "onnx",
                            f"onnx-{f.precision}",
                            f.sha256,
                            lambda f=f: ort.open_engine(bundle, f, cache_dir=cache_dir),
                        )
                    )
    if backend in ("auto", "keras"):
        from .backends import keras_tf

        if keras_tf.is_available():
            for f in bundle.files:
                if f.format not in keras_tf.FORMATS:
                    continue
                for prec in keras_precisions if f.format == "keras" else ("auto",):
                    out.append(
                        Candidate(
                            "keras",
                            f"keras-{f.format if prec == 'auto' else prec}",
                            f.sha256,
                            lambda f=f, p=prec: keras_tf.open_engine(bundle, f, precision=p),
                        )
                    )
    return out


def open_engine(
    bundle: ModelBundle,
    backend: str = "auto",
    cache_dir: Path | None = None,
    *,
    measure: bool = True,
) -> Engine:
    """Open the best engine for ``backend`` ("auto", "onnx", "keras", "tensorrt").

    ``tensorrt`` without a usable GPU falls back to the CPU with one warning (kept in
    ``engine.warnings``). A requested backend that is not installed is a SettingsError; a
    bundle none of whose files verify is a ModelBundleError.
    """
    if backend not in ("auto", "onnx", "keras", "tensorrt"):
        raise SettingsError(f"Unknown backend '{backend}'; choose auto, onnx, keras or tensorrt.")
    fallback_note = ""
    if backend == "tensorrt":
        from .backends import trt

        ok, reason = trt.availability()
        if not ok:
            fallback_note = f"TensorRT cannot run here ({reason}); running on the CPU instead."
            warn_once(fallback_note)
    found = candidates(bundle, backend, cache_dir)
    if backend == "auto" and any(c.backend != "keras" for c in found):
        # Keras only when nothing else can run the bundle: importing TensorFlow costs seconds
        # and over a gigabyte of memory per process, more than its per-slice gain returns
        found = [c for c in found if c.backend != "keras"]
    if not found:
        raise _nothing_to_run(bundle, backend)
    timings = _load_timings(cache_dir) if measure else {}
    machine = fingerprint()
    ordered = sorted(found, key=lambda c: _score(timings.get(_timing_key(machine, c))))
    problems: list[str] = []
    engine: Engine | None = None
    best = float("inf")
    for cand in ordered:
        key = _timing_key(machine, cand)
        known = timings.get(key)
        if engine is not None and (not measure or (known is not None and _score(known) >= best)):
            continue  # known to be slower, or we take the first that opens
        try:
            t0 = time.perf_counter()
            opened = cand.open()
            load_s = time.perf_counter() - t0
        except ModelBundleError as exc:
            problems.append(str(exc))
            warn_once(f"Skipping {cand.key}: {exc}")
            continue
        except Exception as exc:  # a backend that fails to start is skipped, not fatal
            problems.append(f"{cand.key} could not start ({exc})")
            log.warning("backend %s could not start: %s", cand.key, exc, exc_info=True)
            continue
        if measure and known is None:
            known = {
                "load_s": round(load_s, 4),
                "ms_per_slice": round(measure_ms_per_slice(opened), 3),
            }
            timings[key] = known
            _save_timings(cache_dir, timings)
            log.info("measured %s: %s", cand.key, known)
        score = _score(known)
        if engine is None or score < best:
            if engine is not None:
                engine.close()
            engine, best = opened, score
        else:
            opened.close()
    if engine is None:
        raise ModelBundleError(
            "No model file in the bundle can be used: " + "; ".join(problems or ["none listed"])
        )
    if fallback_note:
        engine.warnings = (*engine.warnings, fallback_note)
    engine.classifier = open_classifier(bundle, engine, cache_dir)  # type: ignore[attr-defined]
    log.info("inference backend: %r (stage 2: %r)", engine, engine.classifier)
    return engine


def open_classifier(bundle: ModelBundle, engine: Engine, cache_dir: Path | None) -> Engine | None:
    """The bundle's stage-2 classifier, or None when it has none.

    It runs on ONNX Runtime beside whichever stage-1 engine was chosen: on the same kind of
    device (GPU providers when stage 1 runs on a GPU, else the CPU) and, on the CPU, from its
    int8 file when the bundle ships one (that file exists only if it passed the accuracy gate),
    else fp32. A classifier whose file does not verify is a ModelBundleError: a bundle that
    promises two stages never silently runs one.
    """
    files = bundle.classifier_files
    if not files:
        return None
    from .backends import ort

    on_gpu = not str(engine.device).startswith("cpu")
    order = ("fp32", "int8") if on_gpu else ("int8", "fp32")
    chosen = next((f for p in order for f in files if f.precision == p), files[0])
    return ort.open_engine(
        bundle,
        chosen,
        device="auto" if on_gpu else "cpu",
        cache_dir=cache_dir,
        input_shape=bundle.classifier_input_shape,
        outputs=CLASSIFIER_OUTPUTS,
    )


def measure_ms_per_slice(engine: Engine, batch: int = 2) -> float:
    """Milliseconds per slice on random input of the engine's shape (after one warm-up)."""
    x = np.random.default_rng(0).random((batch, *engine.input_shape), dtype=np.float32)
    engine.predict(x)
    t0 = time.perf_counter()
    engine.predict(x)
    return (time.perf_counter() - t0) * 1000.0 / batch


def _score(timing: dict | None) -> float:
    if not timing:
        return float("inf")
    return float(timing["load_s"]) + float(timing["ms_per_slice"]) * TYPICAL_SLICES / 1000.0


def _timing_key(machine: str, cand: Candidate) -> str:
    return f"{machine}:{cand.sha256[:16]}:{cand.key}"


def _nothing_to_run(bundle: ModelBundle, backend: str) -> CspineInputError:
    formats = sorted({f.format for f in bundle.files})
    if backend == "keras":
        return SettingsError(
            "The Keras backend needs TensorFlow and a model.keras in the bundle "
            f"(bundle has: {', '.join(formats)})."
        )
    return ModelBundleError(
        f"Nothing here can run this model (bundle has: {', '.join(formats)}; "
        "ONNX Runtime is required for ONNX files)."
    )


def _timings_path(cache_dir: Path | None) -> Path | None:
    return None if cache_dir is None else Path(cache_dir) / TIMINGS_FILE


def _load_timings(cache_dir: Path | None) -> dict:
    path = _timings_path(cache_dir)
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged cache is re-measured
    return data if isinstance(data, dict) else {}


def _save_timings(cache_dir: Path | None, timings: dict) -> None:
    path = _timings_path(cache_dir)
    if path is None:
        return
    with _lock:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(timings, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # caching is an optimisation; never fail the analysis for it
            log.warning("could not cache backend timings in %s: %s", path, exc)
