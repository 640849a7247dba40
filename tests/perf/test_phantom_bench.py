"""Benchmark: phantom studies per second at 256² in-plane, one process.

Three slice-spacing settings (the default 0.5–3 mm mix, 1 mm, and the 0.5 mm worst case) plus
the full RSNA-layout write (generation + DICOM + NIfTI). Rates are given per CPU second of this
single-threaded process (``time.process_time``: one core, independent of what else runs on
the machine) and per wall-clock second. The table goes into the "Phantom generator" section of
docs/benchmarks.md.

Run: ``.venv/bin/python -m pytest -m perf tests/perf/test_phantom_bench.py -s``
"""

from __future__ import annotations

import os
import time

import pytest

from model_training.phantom import PhantomConfig, generate_study, write_rsna_dataset

pytestmark = pytest.mark.perf

N = 12


def _rate(fn, n: int) -> tuple[float, float, float]:
    fn(0)  # warm-up (imports, noise bank)
    c0, w0 = time.process_time(), time.perf_counter()
    slices = sum(fn(i + 1) for i in range(n))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return n / cpu, n / wall, slices / n


def test_phantom_generation_rate(tmp_path):
    import cv2

    cv2.setNumThreads(1)  # one core
    rows = []
    for name, spacing in (
        ("default 0.5–3 mm mix", None),
        ("1 mm", (1.0, 1.0)),
        ("0.5 mm", (0.5, 0.5)),
    ):
        cfg = PhantomConfig() if spacing is None else PhantomConfig(slice_spacing_mm=spacing)
        cpu, wall, sl = _rate(lambda s, cfg=cfg: generate_study(1000 + s, cfg).hu.shape[0], N)
        rows.append((f"generate_study, {name}", sl, cpu, wall))

    def write(s: int) -> int:
        out = tmp_path / f"ds{s}"
        summ = write_rsna_dataset(out, 1, seed=s, config=PhantomConfig())
        return summ[0]["acquisition"]["n_slices"]

    cpu, wall, sl = _rate(write, N // 2)
    rows.append(("write_rsna_dataset (DICOM + NIfTI), default mix", sl, cpu, wall))
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| workload (256² in-plane) | mean slices | studies/s per CPU s | studies/s wall |")
    print("|---|---:|---:|---:|")
    for name, sl, cpu, wall in rows:
        print(f"| {name} | {sl:.0f} | {cpu:.2f} | {wall:.2f} |")
    assert rows[0][2] >= 1.0, "phantom generation slower than 1 study per CPU second"
