"""Pick and open the backend: ``auto`` = the fastest one here whose model file verifies and
whose runtime × precision pair passed the accuracy gate.

Candidates come from the bundle's files and what is installed: TensorRT (a GPU + the tensorrt
package), ONNX Runtime (int8 and fp32 files; GPU providers with onnxruntime-gpu), OpenVINO
(int8 and fp32 files on the CPU, and bf16 from the fp32 file where the CPU has it), Keras
(TensorFlow installed and a ``model.keras`` in the bundle). The ONNX Runtime and OpenVINO pairs
are filtered by the card's gate records (:mod:`.gates`): ``auto`` takes only the reference
(ONNX Runtime fp32) and pairs that passed; a failed pair is never opened. ``auto`` uses Keras
only when nothing else can run the bundle (TensorFlow's import time and memory outweigh its
speed for one study; ask for ``keras`` explicitly to use it). The first time a model runs on a
machine each candidate is opened and timed on two slices; the timings are cached in
``<cache_dir>/backend-timings.json`` (per machine fingerprint and model digest; see
:mod:`.timings`), so later starts open only the winner. The score is the expected time for a
typical study: load time + time per slice × :data:`TYPICAL_SLICES` (stage 2:
× :data:`TYPICAL_CROP_PLANES`). Both stages are chosen this way; the stage-2 classifier on the
CPU among its own files' pairs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CspineInputError, ModelBundleError, SettingsError
from . import gates
from .bundle import ModelBundle, ModelFile
from .engine import CLASSIFIER_OUTPUTS, OUTPUTS, Engine, warn_once
from .hardware import fingerprint
from .timings import expected_seconds, load_timings, save_timings, timing_key

log = logging.getLogger(__name__)

TYPICAL_SLICES = 100  # model-grid planes of a typical neck study (2 mm steps)
# stage-2 crop planes of a typical study: 7 levels × ~20 planes (0.5 mm crops, every 2nd plane)
TYPICAL_CROP_PLANES = 150
BACKEND_NAMES = ("auto", "onnx", "openvino", "keras", "tensorrt")
GATED_RUNTIMES = ("onnx", "openvino")  # the pairs the card's gate records judge


@dataclass(frozen=True)
class Candidate:
    """One way to run the bundle. ``key`` names it in the timing cache (e.g. ``onnx-int8``)."""

    backend: str
    key: str
    sha256: str
    open: Callable[[], Engine]
    gate: str = gates.PASSED  # the accuracy gate's verdict on this pair (see .gates)


def candidates(
    bundle: ModelBundle,
    backend: str,
    cache_dir: Path | None,
    keras_precisions: tuple[str, ...] = ("auto",),
    threads: int | None = None,
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
                            partial(trt.open_engine, bundle, cache_dir=cache_dir, precision=prec),
                        )
                    )
    if backend in ("auto", "onnx", "tensorrt", "openvino"):
        runtimes = ("onnx",) if backend in ("onnx", "tensorrt") else ("onnx", "openvino")
        out += onnx_candidates(bundle, bundle.files, runtimes, cache_dir, threads=threads)
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
                            partial(keras_tf.open_engine, bundle, f, precision=prec),
                        )
                    )
    return out


def onnx_candidates(
    bundle: ModelBundle,
    files: tuple[ModelFile, ...],
    runtimes: tuple[str, ...],
    cache_dir: Path | None,
    *,
    device: str = "auto",
    input_shape: tuple[int, int, int] | None = None,
    outputs: tuple[str, ...] = OUTPUTS,
    threads: int | None = None,
) -> list[Candidate]:
    """ONNX Runtime and OpenVINO candidates for the ONNX ``files`` (of either stage), each with
    the accuracy gate's verdict on its pair. A runtime that is not installed offers none.
    ``threads``: compute threads per engine (default: the physical cores)."""
    out: list[Candidate] = []
    onnx_files = [f for f in files if f.format == "onnx"]
    kw: dict[str, Any] = {
        "cache_dir": cache_dir,
        "input_shape": input_shape,
        "outputs": outputs,
        "threads": threads,
    }
    if "onnx" in runtimes:
        from .backends import ort

        if ort.is_available():
            for f in onnx_files:
                key = gates.pair_key("onnx", f.precision)
                out.append(
                    Candidate(
                        "onnx",
                        key,
                        f.sha256,
                        partial(ort.open_engine, bundle, f, device=device, **kw),
                        gates.verdict(f, key),
                    )
                )
    if "openvino" in runtimes:
        from .backends import ov

        if ov.is_available():
            for f in onnx_files:
                for prec in ov.precisions_for(f):
                    key = gates.pair_key("openvino", prec)
                    out.append(
                        Candidate(
                            "openvino",
                            key,
                            f.sha256,
                            partial(ov.open_engine, bundle, f, precision=prec, **kw),
                            gates.verdict(f, key),
                        )
                    )
    return out


def gated(found: list[Candidate], backend: str) -> tuple[list[Candidate], list[str]]:
    """The candidates the accuracy gate allows for ``backend``, and why the others were left out.

    ``auto``: ONNX Runtime / OpenVINO pairs only when they passed (the reference always does);
    a backend asked for by name may also run a pair not judged yet (the caller warns); a pair
    that failed is never kept.
    """
    keep, notes = [], []
    for c in found:
        if c.backend not in GATED_RUNTIMES or c.gate == gates.PASSED:
            keep.append(c)
        elif c.gate == gates.FAILED:
            notes.append(f"{c.key} failed the model's accuracy gate and is never used")
        elif backend == "auto":
            notes.append(f"{c.key} has not been judged by the model's accuracy gate")
        else:
            keep.append(c)
    for note in notes:
        log.info("%s", note)
    return keep, notes


def open_engine(
    bundle: ModelBundle,
    backend: str = "auto",
    cache_dir: Path | None = None,
    *,
    measure: bool = True,
) -> Engine:
    """Open the best engine for ``backend`` ("auto", "onnx", "openvino", "keras", "tensorrt").

    ``tensorrt`` without a usable GPU, and ``openvino`` where OpenVINO is not installed or no
    OpenVINO pair may run this model, fall back to ONNX Runtime with one warning (kept in
    ``engine.warnings``). A requested backend that is not installed is a SettingsError; a
    bundle none of whose files verify is a ModelBundleError.
    """
    if backend not in BACKEND_NAMES:
        raise SettingsError(
            f"Unknown backend '{backend}'; choose {', '.join(BACKEND_NAMES[:-1])} or tensorrt."
        )
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
    if backend == "openvino":
        found, notes = gated([c for c in found if c.backend == "openvino"], backend)
        if not found:
            from .backends import ov

            reason = (
                "; ".join(notes)
                if ov.is_available()
                else "OpenVINO is not installed (pip install 'cspine[openvino]')"
            )
            fallback_note = f"OpenVINO cannot run this model ({reason}); using ONNX Runtime."
            warn_once(fallback_note)
            found = candidates(bundle, "onnx", cache_dir)
    found, _ = gated(found, backend)
    if not found:
        raise _nothing_to_run(bundle, backend)
    engine, chosen = choose(found, cache_dir, measure=measure, per_study=TYPICAL_SLICES)
    notes = [fallback_note] if fallback_note else []
    notes += _unjudged_note(chosen)
    if notes:
        engine.warnings = (*engine.warnings, *notes)
    engine.classifier = open_classifier(bundle, engine, cache_dir, backend=backend, measure=measure)
    log.info("inference backend: %r (stage 2: %r)", engine, engine.classifier)
    return engine


def choose(
    found: list[Candidate],
    cache_dir: Path | None,
    *,
    measure: bool = True,
    per_study: int = TYPICAL_SLICES,
) -> tuple[Engine, Candidate]:
    """Open the candidate with the best cached score (measuring the unknown ones and caching
    their timings); without ``measure``, the first that opens."""
    timings = load_timings(cache_dir) if measure else {}
    machine = fingerprint()

    def score(timing: dict[str, Any] | None) -> float:
        return expected_seconds(timing, per_study)

    ordered = sorted(found, key=lambda c: score(timings.get(timing_key(machine, c.sha256, c.key))))
    problems: list[str] = []
    engine: Engine | None = None
    chosen: Candidate | None = None
    best = float("inf")
    for cand in ordered:
        key = timing_key(machine, cand.sha256, cand.key)
        known = timings.get(key)
        if engine is not None and (not measure or (known is not None and score(known) >= best)):
            continue  # known to be slower, or we take the first that opens
        try:
            opened, load_s = _open_timed(cand, reopen_built=measure and known is None)
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
            save_timings(cache_dir, timings)
            log.info("measured %s: %s", cand.key, known)
        s = score(known)
        if engine is None or s < best:
            if engine is not None:
                engine.close()
            engine, chosen, best = opened, cand, s
        else:
            opened.close()
    if engine is None or chosen is None:
        raise ModelBundleError(
            "No model file in the bundle can be used: " + "; ".join(problems or ["none listed"])
        )
    return engine, chosen


def _open_timed(cand: Candidate, *, reopen_built: bool) -> tuple[Engine, float]:
    """Open ``cand`` and time it. ``reopen_built``: an engine that compiled and cached itself
    while opening is opened again, since later starts load that cache: their time is timed."""
    t0 = time.perf_counter()
    opened = cand.open()
    load_s = time.perf_counter() - t0
    if reopen_built and getattr(opened, "built_cache", False):
        opened.close()
        t0 = time.perf_counter()
        opened = cand.open()
        load_s = time.perf_counter() - t0
    return opened, load_s


def _unjudged_note(cand: Candidate) -> list[str]:
    if cand.backend in GATED_RUNTIMES and cand.gate == gates.UNJUDGED:
        note = (
            f"{cand.key} has not been judged by this model's accuracy gate "
            "(cspine-export --format openvino); its results may differ from the reference."
        )
        warn_once(note)
        return [note]
    return []


def open_classifier(
    bundle: ModelBundle,
    engine: Engine,
    cache_dir: Path | None,
    *,
    backend: str = "auto",
    measure: bool = True,
) -> Engine | None:
    """The bundle's stage-2 classifier, or None when it has none.

    When stage 1 runs on a GPU, the classifier runs there too (ONNX Runtime's GPU providers,
    fp32 file). On the CPU it is chosen like stage 1, among its own files: every ONNX Runtime
    and OpenVINO pair the accuracy gate allows, by the timing cache (the int8 file exists only
    if it passed its export gate; OpenVINO pairs need their own records). ``backend`` "onnx" or
    "openvino" keeps stage 2 on that runtime where it can run it. A classifier whose file does
    not verify is a ModelBundleError: a bundle that promises two stages never silently runs one.
    """
    files = bundle.classifier_files
    if not files:
        return None
    for f in files:  # a damaged classifier file is refused, never skipped for another
        bundle.verified_path(f)
    kw: dict[str, Any] = {
        "input_shape": bundle.classifier_input_shape,
        "outputs": CLASSIFIER_OUTPUTS,
    }
    if not str(engine.device).startswith("cpu"):
        from .backends import ort

        fp32 = next((f for f in files if f.precision == "fp32"), files[0])
        return ort.open_engine(bundle, fp32, device="auto", cache_dir=cache_dir, **kw)
    runtimes = {"onnx": ("onnx",), "openvino": ("openvino",)}.get(backend, GATED_RUNTIMES)
    # int8 first: without measurements (``measure=False``) the first that opens is taken
    files = tuple(sorted(files, key=lambda f: f.precision != "int8"))
    found, _ = gated(
        onnx_candidates(bundle, files, runtimes, cache_dir, device="cpu", **kw), backend
    )
    if not found and runtimes != GATED_RUNTIMES:
        found, _ = gated(
            onnx_candidates(bundle, files, ("onnx",), cache_dir, device="cpu", **kw), "auto"
        )
    if not found:
        raise ModelBundleError("No stage-2 classifier file in the bundle can be used here.")
    classifier, chosen = choose(found, cache_dir, measure=measure, per_study=TYPICAL_CROP_PLANES)
    notes = _unjudged_note(chosen)
    if notes:
        classifier.warnings = (*classifier.warnings, *notes)
    return classifier


def measure_ms_per_slice(engine: Engine, batch: int = 2) -> float:
    """Milliseconds per slice on random input of the engine's shape (after one warm-up)."""
    x = np.random.default_rng(0).random((batch, *engine.input_shape), dtype=np.float32)
    engine.predict(x)
    t0 = time.perf_counter()
    engine.predict(x)
    return (time.perf_counter() - t0) * 1000.0 / batch


def _nothing_to_run(bundle: ModelBundle, backend: str) -> CspineInputError:
    formats = sorted({f.format for f in bundle.files})
    if backend == "keras":
        return SettingsError(
            "The Keras backend needs TensorFlow and a model.keras in the bundle "
            f"(bundle has: {', '.join(formats)})."
        )
    return ModelBundleError(
        f"Nothing here can run this model (bundle has: {', '.join(formats)}; "
        "ONNX Runtime is required for ONNX files, and a reduced-precision pair must have "
        "passed the accuracy gate)."
    )
