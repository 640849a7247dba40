"""Benchmark: ``cspine analyze`` with every default export on a ~300-slice 512² phantom study.

Issue target: the whole command (load, both model stages, every default export) ≤ 6.4 s on the
2-core development machine, peak RSS ≤ 3 GB.

Measured in fresh processes, as a user runs it: ``cspine analyze STUDY`` (every export) and
``cspine analyze STUDY --no-exports`` (result.json + verdicts.csv only), so their difference is
what the exports cost; then, in one process per tree, each export of the same analysis on its
own (time, CPU time, file size) and all of them through one ``export_all``.

With ``CSPINE_BENCH_BASELINE=<git revision>`` the same measurements also run, alternating, on a
baseline: this checkout with the folders named in ``CSPINE_BENCH_BASELINE_PATHS`` (comma-
separated, default ``cspine_desktop/reports``) taken from that revision (everything else, model
included, is the same), so before/after come from the same run on the same study. The table,
with each tree's stage timings from its ``result.json``, goes into the "cspine analyze with
every export" section of docs/benchmarks.md.

Run: ``CSPINE_BENCH_BASELINE=<rev> [CSPINE_BENCH_BASELINE_PATHS=cspine_desktop/imaging,...]
[CSPINE_BENCH_RUNS=2] .venv/bin/python -m pytest -m perf -s
tests/perf/test_analyze_exports_bench.py``
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.perf

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## `cspine analyze` with every export"
TARGET_S, RSS_LIMIT_MB = 6.4, 3072
SLICE_MM = 0.9  # → about 300 slices for the phantom's head-and-neck coverage
FORMATS = ("nifti", "png", "pdf", "seg", "fracture_seg", "sr")
RUNS = int(os.environ.get("CSPINE_BENCH_RUNS", "2"))  # fresh processes per tree and mode
STAGE_NAMES = {
    "load": "load",
    "preprocess": "preprocessing",
    "inference": "stage 1",
    "stage2": "stage 2",
    "total": "analysis",
}

RUNNER = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    t0 = time.perf_counter()
    code = subprocess.run(sys.argv[1:]).returncode
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    rss = usage.ru_maxrss / 1024
    print(json.dumps({"code": code, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss}))
    """
)

# One analysis, then every export alone and all together (in-process, same outcome).
EXPORTS = textwrap.dedent(
    """
    import json, sys, tempfile, time
    from cspine_desktop.services.analysis import AnalysisService
    from cspine_desktop.settings import Settings
    from cspine_desktop.reports import export_all
    outcome = AnalysisService(Settings.load()).analyze_path(sys.argv[1], None)
    with tempfile.TemporaryDirectory() as d:
        export_all(outcome, d, ["json"])
    times, cpu, sizes = {}, {}, {}
    for fmt in sys.argv[2].split(",") + ["all"]:
        with tempfile.TemporaryDirectory() as d:
            t, c = time.perf_counter(), time.process_time()
            paths = export_all(outcome, d, None if fmt == "all" else [fmt])
            times[fmt], cpu[fmt] = time.perf_counter() - t, time.process_time() - c
            sizes[fmt] = {k: p.stat().st_size for k, p in paths.items()}
    import cspine_desktop.reports as reports
    print(json.dumps({"times": times, "cpu": cpu, "sizes": sizes, "reports": reports.__file__}))
    """
)


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


def _baseline_paths() -> list[str]:
    paths = os.environ.get("CSPINE_BENCH_BASELINE_PATHS", "cspine_desktop/reports")
    return [p.strip().strip("/") for p in paths.split(",") if p.strip()]


def _baseline_tree(rev: str, dest: Path, paths: list[str]) -> Path:
    """This checkout's ``cspine_desktop`` with each of ``paths`` (folders or files) as of
    ``rev``; returns its parent."""
    shutil.copytree(
        ROOT / "cspine_desktop",
        dest / "cspine_desktop",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for path in paths:
        assert path.startswith("cspine_desktop"), path
        if (dest / path).is_dir():
            shutil.rmtree(dest / path)
        else:  # a single module
            (dest / path).unlink()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, path], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _run(args: list[str], env: dict[str, str], cwd: Path, script: str = RUNNER) -> dict:
    # not from the checkout: ``python -c`` puts the working folder first on sys.path
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc.get("code", 0) == 0, proc.stderr[-3000:]
    return doc


def _write_section(text: str) -> None:
    doc = DOC.read_text()
    if SECTION not in doc:
        doc = doc.rstrip("\n") + "\n\n" + SECTION + "\n"
    start = doc.index(SECTION) + len(SECTION)
    # up to the next section or the first subsection: subsections are the dated history
    ends = [i for i in (doc.find("\n## ", start), doc.find("\n### ", start)) if i >= 0]
    end = min(ends) + 1 if ends else len(doc)
    DOC.write_text(doc[:start] + "\n\n" + text.strip() + "\n\n" + doc[end:].lstrip("\n"))


def _env_words(rev: str | None, paths: list[str]) -> str:
    words = f"CSPINE_BENCH_RUNS={RUNS} " if RUNS != 2 else ""
    if not rev:
        return words
    words += f"CSPINE_BENCH_BASELINE={rev} "
    if paths != ["cspine_desktop/reports"]:
        words += f"CSPINE_BENCH_BASELINE_PATHS={','.join(paths)} "
    return words


def _kib(sizes: dict[str, int]) -> str:
    return f"{sum(sizes.values()) / 1024:,.0f}"


def test_analyze_with_every_export(study, tmp_path):
    folder, shape = study
    base_env = dict(
        os.environ,
        CSPINE_DATA_DIR=str(tmp_path / "data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        CSPINE_ASSETS_DIR=str(ROOT / "assets"),
    )
    trees = {"now": dict(base_env)}
    rev = os.environ.get("CSPINE_BENCH_BASELINE")
    paths = _baseline_paths()
    if rev:
        src = _baseline_tree(rev, tmp_path / "baseline", paths)
        trees = {
            "before": dict(base_env, PYTHONPATH=os.pathsep.join([str(src), str(ROOT)])),
            "now": dict(base_env, PYTHONPATH=str(ROOT)),
        }
    entry = "import sys; from cspine_desktop.cli import main; sys.exit(main())"
    cli = [sys.executable, "-c", entry, "--log-level", "WARNING", "analyze", str(folder)]
    loads = [os.getloadavg()[0]]
    run = tmp_path / "run"
    run.mkdir()
    _run([*cli, "--out", str(tmp_path / "warm"), "--no-exports"], trees["now"], run)  # timing
    full: dict[str, list[dict]] = {k: [] for k in trees}
    bare: dict[str, list[dict]] = {k: [] for k in trees}
    for i in range(RUNS):  # alternate the trees so both see the same load
        for name, env in trees.items():
            out = tmp_path / f"{name}-full-{i}"
            full[name].append(_run([*cli, "--out", str(out)], env, run))
            bare[name].append(
                _run([*cli, "--out", str(tmp_path / f"{name}-{i}"), "--no-exports"], env, run)
            )
    loads.append(os.getloadavg()[0])
    per_export = {
        name: _run([str(folder), ",".join(FORMATS)], env, run, EXPORTS)
        for name, env in trees.items()
    }
    loads.append(os.getloadavg()[0])
    if rev:  # each tree ran its own reports package
        assert per_export["before"]["reports"].startswith(str(tmp_path / "baseline"))
    assert per_export["now"]["reports"].startswith(str(ROOT))
    result = json.loads((tmp_path / "now-0" / "result.json").read_text())
    # each tree's stage timings (in-process, from its result.json), median over its runs
    stages = ("load", "preprocess", "inference", "stage2", "total")
    timings = {}
    for n in trees:
        runs = [
            json.loads((tmp_path / f"{n}-{i}" / "result.json").read_text())["timings_s"]
            for i in range(RUNS)
        ]
        timings[n] = {k: float(np.median([r.get(k, np.nan) for r in runs])) for k in stages}

    def best(runs: list[dict]) -> dict:
        return min(runs, key=lambda d: d["wall_s"])

    names = list(trees)
    head = "| | " + " | ".join(names) + " |"
    rule = "|---|" + "---:|" * len(names)
    rows = [
        "| `cspine analyze` (every default export), best of "
        f"{RUNS} (s) | " + " | ".join(f"**{best(full[n])['wall_s']:.2f}**" for n in names) + " |",
        "| all runs (s) | "
        + " | ".join(" / ".join(f"{d['wall_s']:.2f}" for d in full[n]) for n in names)
        + " |",
        "| CPU time of that run (s, all threads) | "
        + " | ".join(f"{best(full[n])['cpu_s']:.2f}" for n in names)
        + " |",
        f"| `cspine analyze --no-exports`, best of {RUNS}: wall / CPU (s) | "
        + " | ".join(f"{best(bare[n])['wall_s']:.2f} / {best(bare[n])['cpu_s']:.2f}" for n in names)
        + " |",
        "| peak RSS with every export (MB) | "
        + " | ".join(f"{max(d['peak_rss_mb'] for d in full[n]):.0f}" for n in names)
        + " |",
        *(
            f"| `--no-exports` runs, {STAGE_NAMES[k]} (s, median, in-process) | "
            + " | ".join(f"{timings[n][k]:.2f}" for n in names)
            + " |"
            for k in stages
        ),
    ]
    for fmt in FORMATS:
        rows.append(
            f"| {fmt}: time / CPU (s), size (KiB) | "
            + " | ".join(
                f"{per_export[n]['times'][fmt]:.2f} / {per_export[n]['cpu'][fmt]:.2f}, "
                f"{_kib(per_export[n]['sizes'][fmt])}"
                for n in names
            )
            + " |"
        )
    rows.append(
        "| every export in one `export_all`: time / CPU (s) | "
        + " | ".join(
            f"{per_export[n]['times']['all']:.2f} / {per_export[n]['cpu']['all']:.2f}"
            for n in names
        )
        + " |"
    )
    baseline = (
        f"`before` = this checkout with {', '.join(f'`{p}`' for p in paths)} from `{rev}`, "
        "measured alternately with `now` in the same run. "
        if rev
        else ""
    )
    text = "\n".join(
        [
            f"Measured with `{_env_words(rev, paths)}.venv/bin/python"
            " -m pytest -m perf -s tests/perf/test_analyze_exports_bench.py` on 2 CPU cores,"
            f" Python {platform.python_version()}, 1-minute load average "
            + " / ".join(f"{x:.1f}" for x in loads)
            + " (start / after the CLI runs / end; other work shared the machine). "
            f"Study: a {shape[0]}-slice {shape[1]}×{shape[2]} phantom DICOM folder "
            f"({SLICE_MM} mm slices), backend `{result['backend']}`. Each `cspine analyze` is a"
            " fresh process (wall clock from start to exit, peak RSS of the process); the"
            " per-export rows are one analysis in one process, each format exported on its own"
            " (`sr` includes the SEG it refers to), then all in one `export_all`. " + baseline,
            "",
            head,
            rule,
            *rows,
        ]
    )
    print("\n" + text)
    _write_section(text)
    now_full = best(full["now"])
    assert max(d["peak_rss_mb"] for d in full["now"]) <= RSS_LIMIT_MB
    assert per_export["now"]["sizes"]["fracture_seg"]["fracture_seg"] < 5 * 2**20
    if rev:
        assert now_full["wall_s"] < best(full["before"])["wall_s"]
    assert now_full["wall_s"] <= TARGET_S, f"{now_full['wall_s']:.2f} s > {TARGET_S} s target"
