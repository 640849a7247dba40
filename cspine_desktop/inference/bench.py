"""Backends side by side on this machine: speed, work rate and how close to the CPU's ceiling.

For each way to run the bundle (ONNX Runtime fp32/int8, OpenVINO fp32/bf16/int8, Keras
fp32/bf16, TensorRT) in one process: ms per model slice, seconds per study (a synthetic
``n_slices`` × ``size``² CT, from the Volume to verdicts and source-grid masks, loading
excluded), achieved GFLOP/s (the model's Conv/MatMul FLOPs per slice ÷ time) and that rate as a
fraction of this machine's measured numpy float32 matmul rate (the practical fp32 ceiling;
int8/bf16 paths can exceed 1.0). A two-stage bundle's classifier is measured the same way per
crop plane. Each row says what the accuracy gate decided about its pair (``auto`` picks only
``passed``), and a precision this CPU cannot run (bf16 without AMX / AVX-512 BF16) is listed
as not available. Optionally the whole ``cspine analyze`` of a study with ``auto``, in fresh
processes: the first with an empty cache (every candidate timed, OpenVINO models compiled),
the second as every later start.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..imaging.volume import Volume
from .bundle import ModelBundle
from .engine import Engine
from .hardware import cpu_info, physical_cores

log = logging.getLogger(__name__)


@dataclass
class BackendRun:
    key: str  # "onnx-int8", "keras-bf16", …
    label: str  # engine label, e.g. "onnx-cpu-int8"
    stage: int = 1  # 2 = the stage-2 classifier, timed per crop plane
    gate: str = "passed"  # the accuracy gate's verdict on this pair (auto picks only passed)
    load_s: float | None = None
    ms_per_slice: float | None = None
    cpu_ms_per_slice: float | None = None  # process CPU time: steadier on a shared machine
    s_per_study: float | None = None
    gflops: float | None = None
    ceiling_fraction: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def matmul_gflops(n: int = 2048, repeats: int = 3) -> float:
    """Best numpy float32 matmul rate (GFLOP/s) over ``repeats`` n×n products."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up (thread pool start, page faults)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def synthetic_study(n_slices: int = 300, size: int = 512, slice_mm: float = 0.625) -> Volume:
    """A neck-like CT (soft-tissue cylinder, bone ring, air around), int16 HU [z, y, x]."""
    px = 200.0 / size
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2) * px
    plane = np.full((size, size), -1000, np.int16)
    plane[np.hypot(xx, yy) < 60] = 40
    ring = np.hypot(xx, yy - 10)
    plane[(ring < 14) & (ring > 7)] = 700
    hu = np.empty((n_slices, size, size), np.int16)
    noise = np.random.default_rng(0).integers(-20, 21, size=(size, size), dtype=np.int16)
    for z in range(n_slices):
        hu[z] = plane + np.roll(noise, z, axis=0)
    affine = np.diag([px, px, slice_mm, 1.0])
    affine[:3, 3] = (-100.0, -100.0, 0.0)
    meta = {"StudyInstanceUID": "2.25.1", "SeriesInstanceUID": "2.25.2", "PatientID": "BENCH"}
    return Volume(hu=hu, affine=affine, spacing=(slice_mm, px, px), meta=meta)


def variants(bundle: ModelBundle, cache_dir: Any = None) -> dict[str, Callable[[], Engine]]:
    """Every way to run ``bundle``'s stage 1 that is installed here (Keras both fp32 and, where
    the CPU has it, bf16): key → opener."""
    return {c.key: c.open for c in _candidates(bundle, cache_dir)}


def _candidates(bundle: ModelBundle, cache_dir: Any, threads: int | None = None) -> list[Any]:
    from .hardware import has_bf16
    from .select import candidates

    keras = ("fp32", "bf16") if has_bf16() else ("fp32",)
    return candidates(bundle, "auto", cache_dir, keras_precisions=keras, threads=threads)


def _classifier_candidates(
    bundle: ModelBundle, cache_dir: Any, threads: int | None = None
) -> list[Any]:
    from .engine import CLASSIFIER_OUTPUTS
    from .select import GATED_RUNTIMES, onnx_candidates

    if not bundle.classifier_files:
        return []
    return onnx_candidates(
        bundle,
        bundle.classifier_files,
        GATED_RUNTIMES,
        cache_dir,
        device="cpu",
        input_shape=bundle.classifier_input_shape,
        outputs=CLASSIFIER_OUTPUTS,
        threads=threads,
    )


def unavailable(bundle: ModelBundle) -> list[BackendRun]:
    """Rows for precisions this CPU cannot run (OpenVINO bf16 without AMX / AVX-512 BF16)."""
    from .backends import ov

    if not ov.is_available() or ov.has_bf16():
        return []
    caps = ",".join(sorted(ov.cpu_capabilities())) or "none"
    rows = []
    for stage, files in ((1, bundle.files), (2, bundle.classifier_files)):
        if any(f.format == "onnx" and f.precision == "fp32" for f in files):
            rows.append(
                BackendRun(
                    key="openvino-bf16",
                    label="openvino-cpu-bf16",
                    stage=stage,
                    gate="-",
                    error=f"not available on this CPU (OpenVINO CPU capabilities: {caps})",
                )
            )
    return rows


def run_bench(
    bundle: ModelBundle,
    *,
    n_slices: int = 300,
    size: int = 512,
    only: list[str] | None = None,
    cache_dir: Any = None,
    batch: int = 4,
    progress: Callable[[str], None] | None = None,
    analyze_study: str | Path | None = None,
    repeats: int = 3,
    threads: int | None = None,
) -> dict[str, Any]:
    """Measure every variant (or ``only`` those keys) of both stages and the matmul ceiling in
    this process; with ``analyze_study``, also ``cspine analyze`` of it with ``auto``. Times
    per slice are the best of ``repeats`` timed batches (more on a busy machine). ``threads``
    sets the ONNX Runtime / OpenVINO compute threads (1 = the CPU cost of a slice on one core,
    which a busy machine distorts least)."""
    from ..analysis.model_pass import neck_planes
    from ..analysis.pipeline import analyze
    from ..imaging.preprocess import PreprocessConfig, model_input, prepare_volume

    say = progress or (lambda m: None)
    load_start = _load_average()
    say("measuring the numpy float32 matmul ceiling")
    ceiling = matmul_gflops(repeats=max(3, repeats))
    flops = bundle.card.get("flops_per_slice") or _flops_from_files(bundle)
    volume = synthetic_study(n_slices, size)
    prepared = prepare_volume(volume, PreprocessConfig.from_dict(bundle.card["preprocessing"]))
    planes = neck_planes(prepared)
    x = model_input(prepared, planes[:batch])
    runs: list[BackendRun] = []
    for cand in _candidates(bundle, cache_dir, threads):
        if only and cand.key not in only:
            continue
        say(f"benchmarking {cand.key}")
        run = BackendRun(key=cand.key, label=cand.key, gate=cand.gate)
        engine = _time_engine(run, cand.open, x, repeats)
        if engine is not None:
            try:
                t0 = time.perf_counter()
                analyze(volume, engine, bundle.card, explain=True)
                run.s_per_study = time.perf_counter() - t0
                if flops and run.ms_per_slice:
                    run.gflops = flops / (run.ms_per_slice / 1000.0) / 1e9
                    run.ceiling_fraction = run.gflops / ceiling
            except Exception as exc:  # one broken backend must not hide the others
                log.warning("bench %s failed: %s", cand.key, exc, exc_info=True)
                run.error = f"{type(exc).__name__}: {exc}"
            engine.close()
        runs.append(run)
    crops_shape = bundle.classifier_input_shape
    if crops_shape is not None:
        crops = np.random.default_rng(0).random((8, *crops_shape), dtype=np.float32)
        for cand in _classifier_candidates(bundle, cache_dir, threads):
            if only and cand.key not in only:
                continue
            say(f"benchmarking stage 2 {cand.key}")
            run = BackendRun(key=cand.key, label=cand.key, stage=2, gate=cand.gate)
            engine = _time_engine(run, cand.open, crops, repeats)
            if engine is not None:
                engine.close()
            runs.append(run)
    runs += [r for r in unavailable(bundle) if not only or r.key in only]
    report: dict[str, Any] = {
        "machine": {
            "cpu": cpu_info()[0],
            "physical_cores": physical_cores(),
            "load_average": round(load_start, 2),
        },
        "matmul_gflops": ceiling,
        "model": {
            "name": bundle.name,
            "version": bundle.version,
            "gflop_per_slice": (flops or 0) / 1e9,
        },
        "study": {"slices": n_slices, "size": size, "grid_planes_run": len(planes)},
        "repeats": repeats,
        "threads": threads,
        "runs": [r.to_dict() for r in runs],
    }
    if analyze_study is not None:
        say(f"cspine analyze {analyze_study} with auto (fresh processes)")
        report["analyze"] = analyze_auto(analyze_study, bundle.path)
    report["machine"]["load_average_end"] = round(_load_average(), 2)
    return report


def _time_engine(
    run: BackendRun, opener: Callable[[], Engine], x: np.ndarray, repeats: int = 3
) -> Engine | None:
    """Open, warm up and time ``opener``'s engine on ``x`` into ``run`` (best of ``repeats``);
    the engine, or None when it failed (``run.error`` says why)."""
    try:
        t0 = time.perf_counter()
        engine = opener()
        run.load_s = time.perf_counter() - t0
        run.label = engine.label
        engine.predict(x)  # warm-up
        times, cpu = [], []
        for _ in range(max(1, repeats)):
            t0, c0 = time.perf_counter(), time.process_time()
            engine.predict(x)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        run.ms_per_slice = 1000.0 * min(times) / len(x)
        run.cpu_ms_per_slice = 1000.0 * min(cpu) / len(x)
        return engine
    except Exception as exc:  # one broken backend must not hide the others
        log.warning("bench %s failed: %s", run.key, exc, exc_info=True)
        run.error = f"{type(exc).__name__}: {exc}"
        return None


def analyze_auto(study: str | Path, model_dir: str | Path, runs: int = 2) -> list[dict[str, Any]]:
    """``cspine analyze STUDY --backend auto --no-exports`` in fresh processes sharing one new,
    empty cache folder: the first run times every candidate (and compiles OpenVINO models), the
    later ones start as every later start does. Wall time from process start to exit."""
    code = "import sys; from cspine_desktop.cli import main; sys.exit(main(sys.argv[1:]))"
    out = []
    with tempfile.TemporaryDirectory(prefix="cspine-bench-") as tmp:
        env = {
            **os.environ,
            "XDG_CACHE_HOME": str(Path(tmp) / "cache"),
            "CSPINE_DATA_DIR": str(Path(tmp) / "data"),
        }
        for i in range(runs):
            cmd = [sys.executable, "-c", code, "analyze", str(study), "--backend", "auto"]
            cmd += ["--model", str(model_dir), "--no-exports", "--json"]
            cmd += ["--out", str(Path(tmp) / f"out{i}")]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            row: dict[str, Any] = {"run": "first (empty cache)" if i == 0 else "cached choice"}
            row["wall_s"] = round(wall, 2)
            row["exit_code"] = proc.returncode
            try:
                row["backend"] = json.loads(proc.stdout).get("backend")
            except ValueError:
                row["backend"] = None
                row["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
            out.append(row)
    return out


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return float("nan")


def _flops_from_files(bundle: ModelBundle) -> int | None:
    f = bundle.find("onnx", "fp32")
    if f is None:
        return None
    try:
        from .flops import onnx_flops_per_slice

        return onnx_flops_per_slice(bundle.verified_path(f))
    except ImportError:  # the onnx package is a training extra
        return None


def format_table(report: dict[str, Any]) -> str:
    """The bench report as a fixed-width table."""
    m = report["machine"]
    lines = [
        f"CPU: {m['cpu']} ({m['physical_cores']} cores, load average {m['load_average']}); "
        f"numpy fp32 matmul ceiling {report['matmul_gflops']:.1f} GFLOP/s",
        f"Model {report['model']['name']} {report['model']['version']}: "
        f"{report['model']['gflop_per_slice']:.2f} GFLOP per slice; study "
        f"{report['study']['slices']} slices {report['study']['size']}² "
        f"({report['study']['grid_planes_run']} model-grid planes run)",
        f"{'stage':<6}{'backend':<20}{'gate':<9}{'load s':>8}{'ms/slice':>10}{'CPU ms':>8}"
        f"{'s/study':>9}{'GFLOP/s':>9}{'ceiling':>9}",
    ]
    for r in report["runs"]:
        head = f"{r.get('stage', 1):<6}{r['label']:<20}{r.get('gate', ''):<9}"
        if r["error"]:
            lines.append(f"{head}{r['error'][:80]}")
            continue

        def f(v: float | None, fmt: str) -> str:
            return format(v, fmt) if v is not None else "-"

        lines.append(
            f"{head}{f(r['load_s'], '8.2f')}{f(r['ms_per_slice'], '10.1f')}"
            f"{f(r['cpu_ms_per_slice'], '8.1f')}{f(r['s_per_study'], '9.2f')}"
            f"{f(r['gflops'], '9.1f')}{f(r['ceiling_fraction'], '9.0%')}"
        )
    lines.append("stage 2 = the classifier, ms per crop plane; gate = the accuracy gate's verdict")
    for a in report.get("analyze", []):
        lines.append(
            f"cspine analyze, auto, {a['run']}: {a['wall_s']:.2f} s "
            f"(exit {a['exit_code']}, {a.get('backend') or a.get('error')})"
        )
    return "\n".join(lines)
