"""Benchmark: every export of one 300-slice 512² study (``cspine_desktop.reports``).

A synthetic CT series is written and loaded with ``load_study``; a fake outcome puts C1–C7
boxes on it and a heat-map with low-level noise everywhere (as a network's sigmoid output
has). In a fresh subprocess each format is exported once on its own, then ``export_all`` with
every format; peak memory is the high-water RSS during the exports minus the RSS before them.
The table goes into the "Exports" section of docs/benchmarks.md.

Run: ``.venv/bin/python -m pytest -m perf tests/perf/test_reports_bench.py -s``
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories.dicom_series import write_ct_series

pytestmark = pytest.mark.perf

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Exports (DICOM SEG/SR, PDF, PNG, NIfTI)"
N_SLICES, SIZE = 300, 512
FORMATS = ("json", "csv", "nifti", "png", "pdf", "seg", "fracture_seg", "sr")

_SCRIPT = r"""
import json, sys, tempfile, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[2])
from report_fakes import make_result
from cspine_desktop.analysis.pipeline import AnalysisOutcome
from cspine_desktop.imaging import load_study
from cspine_desktop.reports import export_all
import highdicom, nibabel, reportlab.pdfgen.canvas  # imported before the baseline


def rss(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


vol = load_study(sys.argv[1])
nz = vol.hu.shape[0]
labels = np.zeros(vol.hu.shape, np.uint8)
for k in range(7):
    labels[k * nz // 7 : (k + 1) * nz // 7, 200:300, 220:290] = k + 1
rng = np.random.default_rng(0)
heat = np.zeros(vol.hu.shape, np.float32)
for z in range(nz):
    heat[z] = 0.003 * rng.random(heat.shape[1:], dtype=np.float32)
heat[nz // 3 : nz // 3 + 10, 230:260, 230:260] = rng.random((10, 30, 30), dtype=np.float32)
outcome = AnalysisOutcome(make_result("1.2.3", "1.2.3.4"), vol, labels, heat)
base = rss("VmRSS:")
out, sizes = {}, {}
for fmt in sys.argv[3].split(","):
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        paths = export_all(outcome, d, [fmt])
        out[fmt] = time.perf_counter() - t
        sizes[fmt] = sum(p.stat().st_size for k, p in paths.items() if k == fmt or fmt == "png")
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    export_all(outcome, d)
    out["all"] = time.perf_counter() - t
print(json.dumps({"times": out, "sizes": sizes, "peak_extra": rss("VmHWM:") - base}))
"""


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return write_ct_series(
        tmp_path_factory.mktemp("bench") / "ct",
        n_slices=N_SLICES,
        rows=SIZE,
        cols=SIZE,
        spacing=(1.0, 0.4, 0.4),
        origin=(-102.0, -102.0, 0.0),
    )


def _write_section(table: str) -> None:
    text = DOC.read_text()
    if SECTION not in text:
        text = text.rstrip("\n") + "\n\n" + SECTION + "\n"
    start = text.index(SECTION) + len(SECTION)
    nxt = text.find("\n## ", start)
    end = len(text) if nxt < 0 else nxt + 1
    DOC.write_text(text[:start] + "\n\n" + table.strip() + "\n\n" + text[end:].lstrip("\n"))


def test_every_export_of_a_300_slice_study_within_time_and_memory(series):
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCRIPT,
            str(series.folder),
            str(ROOT / "tests" / "reports"),
            ",".join(FORMATS),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    times, sizes, extra = res["times"], res["sizes"], res["peak_extra"]
    rows = [f"| {fmt} | {times[fmt]:.2f} | {sizes.get(fmt, 0) / 1024:,.1f} |" for fmt in FORMATS]
    table = "\n".join(
        [
            f"Measured with `.venv/bin/python -m pytest -m perf tests/perf/test_reports_bench.py"
            f" -s` on 2 CPU cores (1-minute load average {load:.1f} from other work at the start),"
            f" Python {platform.python_version()}. Input: {N_SLICES} "
            f"{SIZE}×{SIZE} CT slices loaded with `load_study`; C1–C7 boxes; a heat-map with "
            "0–0.3 % noise everywhere and one 10-slice hot spot. Each format exported alone "
            "(`sr` includes the SEG it refers to), then all together in one `export_all`.",
            "",
            "| format | time (s) | size (KiB) |",
            "|---|---:|---:|",
            *rows,
            f"| **all** | {times['all']:.2f} | |",
            "",
            f"Peak memory above the loaded study during the exports: {extra / 2**20:.0f} MiB.",
        ]
    )
    print("\n" + table)
    _write_section(table)
    assert times["all"] < 90, times
    assert extra < 512 * 2**20, extra  # less than the study arrays (hu, labels, heat) again
