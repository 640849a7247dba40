"""Stage-2 training data: dense plane labels from the phantom's fracture mask, balanced batches,
reproducible from the seed."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.imaging.crops import CropConfig, PlaneSpacing
from model_training.datasets.crops_stream import CropStream, StreamConfig, study_planes
from model_training.phantom.config import PhantomConfig
from model_training.phantom.study import generate_study

CROP = CropConfig(size=64, pixel_mm=0.8)
STREAM = StreamConfig(fracture_prevalence=1.0)


def _study(seed: int):
    cfg = PhantomConfig(
        matrix=160,
        pixel_spacing_mm=(0.7, 0.7),
        slice_spacing_mm=(1.5, 1.5),
        fracture_prevalence=1.0,
        head_neck_probability=0.0,
        trauma_probability=0.0,
    )
    return generate_study(seed, cfg)


@pytest.fixture(scope="module")
def fractured():
    return _first_study(
        range(50), lambda st: any(f.n_voxels > 50 for f in st.fractures), "fractured"
    )


def _first_study(seeds, wanted, what: str):
    """(seed, study) of the first of ``seeds`` whose study is ``wanted``."""
    for seed in seeds:
        st = _study(seed)
        if wanted(st):
            return seed, st
    raise AssertionError(f"no {what} phantom study in seeds {seeds}")


def test_positive_planes_only_in_fractured_vertebrae(fractured):
    seed, st = fractured
    p = study_planes(seed, CROP, STREAM, train=False, study=st)
    assert len(p) > 0 and p.x.shape[1:] == (64, 64, 4)
    for level in range(1, 8):
        sel = p.vertebra == level
        if not sel.any():
            continue
        assert (p.fractured[sel] == st.fractured[level - 1]).all()
        if not st.fractured[level - 1]:
            assert p.y[sel].sum() == 0, f"C{level} has positive planes but no fracture"
    assert p.y.sum() > 0
    # the localisation target lies where the plane label says
    assert (p.maps.reshape(len(p), -1).max(axis=1) >= p.y).all()
    assert set(np.unique(p.group[p.y == 1])) <= {f"{f.kind}/{f.severity}" for f in st.fractures}


def test_training_draws_from_every_plane_and_evaluation_scores_like_the_app(fractured, monkeypatch):
    """Training picks its few planes per vertebra among all of them; evaluation scores the
    planes inference scores (the exported card's spacing)."""
    import model_training.datasets.crops_stream as cs

    seen = []
    real = cs.geometry

    def spy(*args, **kwargs):
        seen.append(kwargs["spacing"])
        return real(*args, **kwargs)

    monkeypatch.setattr(cs, "geometry", spy)
    seed, st = fractured
    study_planes(seed, CROP, STREAM, train=True, study=st)
    assert seen and set(seen) == {PlaneSpacing()}
    seen.clear()
    study_planes(seed, CROP, STREAM, train=False, study=st)
    assert seen and set(seen) == {PlaneSpacing.default_for(CROP)}


def test_planes_are_reproducible_from_the_seed(fractured):
    seed, st = fractured
    a = study_planes(seed, CROP, STREAM, train=True, study=st)
    b = study_planes(seed, CROP, STREAM, train=True, study=st)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def test_batches_are_balanced(fractured):
    seed, st = fractured
    stream = CropStream(CROP, STREAM, workers=0)
    try:
        stream.add(study_planes(seed, CROP, STREAM, train=False, study=st))
        x, y = stream.batch(16)
        assert x.shape == (16, 64, 64, 4) and x.dtype == np.float32
        assert y["fracture"].sum() == 8
        assert y["fracture_map"].shape == (16, 8, 8, 1)
    finally:
        stream.close()


def test_sagittal_planes_join_the_axial_ones_with_their_own_labels(fractured):
    """With the sagittal view on, every vertebra also gives sagittal planes, labelled from the
    same voxel fracture mask; the axial planes are the ones the axial-only stream gives."""
    seed, st = fractured
    both = CropConfig(size=64, pixel_mm=0.8, sagittal_half_mm=8.0)
    p = study_planes(seed, both, STREAM, train=False, study=st)
    axial_only = study_planes(seed, CROP, STREAM, train=False, study=st)
    assert set(np.unique(p.view)) == {0, 1}
    assert np.array_equal(p.x[p.view == 0], axial_only.x)
    sag = p.view == 1
    # sagittal planes of fractured vertebrae carry positives too, never those of intact ones
    assert p.y[sag & p.fractured].sum() > 0
    assert p.y[sag & ~p.fractured].sum() == 0


ORPHAN_PARENT = """
import sys, time
from cspine_desktop.imaging.crops import CropConfig
from model_training.datasets.crops_stream import CropStream, StreamConfig
if __name__ == "__main__":
    stream = CropStream(CropConfig(size=64, pixel_mm=0.8), StreamConfig(), workers=1, pool_size=10)
    print(stream.procs[0].pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_workers_stop_when_the_trainer_is_killed(tmp_path):
    """A trainer killed before ``close()`` (SIGKILL here) must not leave a worker generating
    studies for nobody: it once went on for an hour after its trainer was stopped."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    script = tmp_path / "parent.py"
    script.write_text(ORPHAN_PARENT)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    worker_pid = int(parent.stdout.readline())
    worker = psutil.Process(worker_pid)
    assert worker.is_running() and worker.ppid() == parent.pid
    time.sleep(2.0)  # inside a study
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 120
    gone = False
    while time.time() < deadline and not gone:
        try:
            gone = worker.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            gone = True
        time.sleep(0.5)
    if not gone:
        worker.kill()
    assert gone, "the worker outlived its trainer by 2 minutes"


def test_negatives_come_from_intact_vertebrae_at_the_levels_of_the_positives(fractured):
    """Positives only at one level: every negative of a batch is from that level too, so
    recognising the level earns nothing; and from an intact vertebra, never a plane of the
    fractured one (its context channels may show the line)."""
    seed, st = fractured
    stream = CropStream(CROP, STREAM, workers=0, rng_seed=1)
    try:
        planes = study_planes(seed, CROP, STREAM, train=False, study=st)
        level = int(planes.vertebra[planes.y == 1][0])
        keep = (planes.y == 0) | (planes.vertebra == level)
        assert (planes.vertebra[keep] != level).sum() > 20  # plenty of other levels pooled
        mine = planes.take(np.nonzero(keep)[0])
        assert ((mine.vertebra == level) & (mine.y == 0)).sum() > 0  # the fractured one's
        seed2, st2 = _first_study(
            range(seed + 1, seed + 60), lambda s: not s.fractured[level - 1], f"intact-C{level}"
        )
        other = study_planes(seed2, CROP, STREAM, train=False, study=st2)
        other = other.take(np.nonzero(other.y == 0)[0])
        stream.add(mine)
        stream.add(other)
        wanted = {
            other.x[i].astype(np.float32).tobytes()
            for i in np.nonzero((other.vertebra == level) & ~other.fractured)[0]
        }
        assert wanted
        for _ in range(5):
            x, y = stream.batch(16)
            negatives = x[y["fracture"][:, 0] == 0]
            assert len(negatives) == 8
            assert all(n.tobytes() in wanted for n in negatives)
    finally:
        stream.close()
