"""Training data pipeline throughput (samples/s) at the default model grid (256², 4 channels).

Run: .venv/bin/python -m pytest tests/perf/test_dataset_bench.py -m perf -s
Results go to the "Training data pipeline" section of docs/benchmarks.md.
"""

from __future__ import annotations

import time

import numpy as np
import psutil
import pytest

from cspine_desktop.imaging.preprocess import PreprocessConfig
from cspine_desktop.imaging.volume import Volume
from model_training.datasets import make_dataset
from model_training.datasets.cache import write_study
from model_training.datasets.rsna import RsnaStudy
from model_training.datasets.samples import build_sample

pytestmark = pytest.mark.perf

N_STUDIES = 6
SHAPE = (200, 512, 512)  # source slices × rows × columns: a 1 mm, 0.35 mm in-plane neck CT
SPACING = (1.0, 0.35, 0.35)


def _neck(seed: int) -> tuple[Volume, np.ndarray, np.ndarray, tuple[bool, ...]]:
    """A neck-sized synthetic CT: soft-tissue cylinder, seven labelled bone blocks."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = SHAPE
    hu = np.full(SHAPE, -1000, np.int16)
    yy, xx = np.mgrid[0:ny, 0:nx]
    body = (yy - ny / 2) ** 2 + (xx - nx / 2) ** 2 < (0.4 * nx) ** 2
    hu[:, body] = 40
    labels = np.zeros(SHAPE, np.uint8)
    fracture = np.zeros(SHAPE, np.uint8)
    per = (nz - 40) // 7
    for v in range(1, 8):
        z1 = nz - 20 - (v - 1) * per
        block = (
            slice(z1 - per + 4, z1),
            slice(ny // 2 + 10, ny // 2 + 60),
            slice(nx // 2 - 25, nx // 2 + 25),
        )
        hu[block] = 700
        labels[block] = v
    fv = 1 + seed % 7
    z = nz - 20 - (fv - 1) * per - per // 2
    fracture[z - 3 : z + 3, ny // 2 + 20 : ny // 2 + 40, nx // 2 - 5 : nx // 2 + 5] = 1
    hu = (hu + rng.normal(0, 20, SHAPE)).astype(np.int16)
    affine = np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])
    affine[:3, 3] = (-90.0, -90.0, 0.0)
    fractured = tuple(v == fv for v in range(1, 8))
    return Volume(hu, affine, SPACING), labels, fracture, fractured


@pytest.fixture(scope="module")
def bench_cache(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-cache")
    cfg = PreprocessConfig()
    cached, t_prepare = [], []
    for n in range(N_STUDIES):
        vol, labels, fracture, fractured = _neck(n)
        t0 = time.perf_counter()
        sample = build_sample(vol, labels, fracture, fractured, cfg)
        t_prepare.append(time.perf_counter() - t0)
        study = RsnaStudy(f"1.2.{n}", f"P{n}", out, fractured, True)
        cached.append(
            write_study(out, study, sample.prepared, sample.labels, sample.fracture, sample.flags)
        )
    print(
        f"\nprepare + targets per study ({SHAPE[2]}×{SHAPE[1]}×{SHAPE[0]} source → "
        f"{cached[0].n_slices}×256×256 grid): {np.median(t_prepare):.2f} s (median)"
    )
    return cached


def _measure(cached, augment: bool, parallel: int | None, batch: int = 16, spp: int = 64):
    ds = make_dataset(
        cached,
        batch_size=batch,
        slices_per_study=spp,
        augment=augment,
        oversample=0.3,
        seed=0,
        parallel_calls=parallel,
    )
    for _ in ds.take(4):  # warm-up: graph tracing, memory maps
        pass
    proc = psutil.Process()
    c0, t0 = sum(proc.cpu_times()[:2]), time.perf_counter()
    n = sum(int(x.shape[0]) for x, _ in ds)
    wall = time.perf_counter() - t0
    cores = (sum(proc.cpu_times()[:2]) - c0) / wall
    return n / wall, cores


def test_pipeline_throughput(bench_cache):
    rows = []
    for augment in (False, True):
        for parallel in (1, None):
            rate, cores = _measure(bench_cache, augment, parallel)
            rows.append((augment, parallel, rate, cores))
    load = psutil.getloadavg()[0]
    print(f"\n(load average at start of measurement: {load:.1f} on {psutil.cpu_count()} cores)")
    print("| augmentation | parallel batch loaders | samples/s | CPU cores busy | CPU ms/sample |")
    print("|---|---|---|---|---|")
    for augment, parallel, rate, cores in rows:
        label = "1" if parallel == 1 else "AUTOTUNE"
        print(
            f"| {'on' if augment else 'off'} | {label} | {rate:.0f} | {cores:.2f} | "
            f"{1000 * cores / rate:.1f} |"
        )
    best_aug = max(r for a, _, r, _ in rows if a)
    assert best_aug > 20, "pipeline too slow to feed even a CPU training step"


def test_cache_build_rate_on_phantom_dicom(tmp_path):
    """Studies/s from RSNA-layout DICOM (phantom, 256² images) to the cache, 1 vs 2 workers."""
    from model_training.datasets import build_cache, read_rsna
    from model_training.phantom import PhantomConfig, write_rsna_dataset

    n = 6
    write_rsna_dataset(tmp_path / "rsna", n, 5, PhantomConfig(), workers=2)
    index = read_rsna(tmp_path / "rsna")
    assert len(index) == n
    cfg = PreprocessConfig()
    rates = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        cached = build_cache(index, cfg, tmp_path / f"cache{workers}", workers=workers)
        rates[workers] = len(cached) / (time.perf_counter() - t0)
        assert len(cached) == n
    print(
        f"\ncache build ({n} phantom studies, 256² DICOM): "
        + ", ".join(f"{w} worker(s) {r:.2f} studies/s" for w, r in rates.items())
    )
