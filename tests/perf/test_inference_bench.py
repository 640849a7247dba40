"""Study to written result: a 300-slice 512² phantom DICOM folder through ``cspine analyze``.

Each measurement is a fresh process (what a user runs), timed from start to ``result.json`` +
``verdicts.csv`` written, with its peak RSS. Compared in the same run:

* ``cspine analyze --backend auto`` (the tuned path: the fastest verified backend, model-grid
  planes holding the neck only),
* plain fp32 Keras: the same pipeline through the Keras backend forced to float32 (what running
  the trained Keras model directly costs),
* ``cspine analyze`` with every export (SEG, SR, PDF, PNG, NIfTI) for reference.

Also per backend: ms per model slice in-process (``cspine bench`` numbers). Targets: tuned path
≤ 10 s, peak RSS ≤ 3 GB, faster than fp32 Keras.
Run: ``pytest -m perf -s tests/perf/test_inference_bench.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from cspine_desktop.inference import demo_model_dir, load_bundle

pytestmark = pytest.mark.perf
TARGET_S, RSS_LIMIT_MB = 10.0, 3072
SLICE_MM = 0.625  # → about 300 slices for the phantom neck


def _bundle():
    try:
        bundle = load_bundle(demo_model_dir())
    except Exception as exc:
        pytest.skip(f"the bundled demo model is not available yet ({exc})")
    if bundle.find("onnx") is None:
        pytest.skip("the bundled demo model has no ONNX export yet (run cspine-export)")
    return bundle


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from model_training.phantom import PhantomConfig, generate_study
    from model_training.phantom.dicom_writer import write_ct_series

    cfg = PhantomConfig(
        matrix=512, pixel_spacing_mm=(0.35, 0.35), slice_spacing_mm=(SLICE_MM, SLICE_MM)
    )
    s = generate_study(4242, cfg)
    folder = tmp_path_factory.mktemp("perf") / "study"
    write_ct_series(folder, s.hu, s.affine, study_uid=s.study_uid, series_uid=s.series_uid,
                    patient_id=s.patient_id)  # fmt: skip
    return folder, s.hu.shape


RUNNER = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    t0 = time.perf_counter()
    code = subprocess.run(sys.argv[1:]).returncode
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"code": code, "wall_s": wall, "peak_rss_mb": rss}))
    """
)

KERAS_FP32 = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from cspine_desktop.imaging import load_study
    from cspine_desktop.inference import demo_model_dir, load_bundle
    from cspine_desktop.inference.backends import keras_tf
    from cspine_desktop.analysis.pipeline import analyze
    from cspine_desktop.reports import write_result_json, write_rsna_csv
    volume = load_study(sys.argv[1])
    bundle = load_bundle(demo_model_dir())
    engine = keras_tf.open_engine(bundle, bundle.find("keras"), precision="fp32")
    outcome = analyze(volume, engine, bundle.card)
    out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
    write_result_json(outcome, out / "result.json"); write_rsna_csv(outcome, out / "verdicts.csv")
    """
)


def _measure(args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["code"] == 0, proc.stderr[-2000:]
    return doc


def test_study_to_written_result(study, tmp_path):
    bundle = _bundle()
    folder, shape = study
    env = dict(
        os.environ, CSPINE_DATA_DIR=str(tmp_path / "data"), XDG_CACHE_HOME=str(tmp_path / "cache")
    )
    entry = "import sys; from cspine_desktop.cli import main; sys.exit(main())"
    cli = [sys.executable, "-c", entry, "--log-level", "WARNING", "analyze", str(folder)]

    _measure(
        [*cli, "--out", str(tmp_path / "warm"), "--no-exports"], env
    )  # times the backends once
    label = json.loads((tmp_path / "warm" / "result.json").read_text())["backend"]
    tuned = [
        _measure([*cli, "--out", str(tmp_path / f"t{i}"), "--no-exports"], env) for i in range(2)
    ]
    best = min(tuned, key=lambda d: d["wall_s"])
    full = _measure([*cli, "--out", str(tmp_path / "full")], env)
    keras = None
    if bundle.find("keras") is not None:
        keras = _measure([sys.executable, "-c", KERAS_FP32, str(folder), str(tmp_path / "k")], env)

    result = json.loads((tmp_path / "t0" / "result.json").read_text())
    report = {
        "study": {"slices": shape[0], "rows": shape[1], "cols": shape[2]},
        "tuned_backend": label,
        "tuned_wall_s": [round(d["wall_s"], 2) for d in tuned],
        "tuned_peak_rss_mb": round(best["peak_rss_mb"]),
        "tuned_timings_s": result["timings_s"],
        "with_all_exports_wall_s": round(full["wall_s"], 2),
        "keras_fp32_wall_s": None if keras is None else round(keras["wall_s"], 2),
        "keras_fp32_peak_rss_mb": None if keras is None else round(keras["peak_rss_mb"]),
        "speedup_vs_keras_fp32": None
        if keras is None
        else round(keras["wall_s"] / best["wall_s"], 2),
        "load_average": os.getloadavg(),
    }
    print("\nINFERENCE BENCH", json.dumps(report, indent=2))
    assert best["peak_rss_mb"] <= RSS_LIMIT_MB
    if keras is not None:
        assert keras["wall_s"] > best["wall_s"]
    assert best["wall_s"] <= TARGET_S, f"{best['wall_s']:.1f} s > {TARGET_S} s target"


def test_backends_side_by_side():
    from cspine_desktop.inference.bench import format_table, run_bench

    t0 = time.perf_counter()
    report = run_bench(_bundle(), n_slices=300, size=512)
    print("\nBACKENDS\n" + format_table(report) + f"\n({time.perf_counter() - t0:.0f} s, "
          f"load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    assert any(r["error"] is None for r in report["runs"])
