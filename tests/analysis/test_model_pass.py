"""Running the engine over the grid: neck planes, batch size, progress, cancellation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cspine_desktop.analysis.model_pass import (
    COARSE_MIN_PLANES,
    choose_batch_size,
    fine_planes,
    neck_planes,
    run_model,
)
from cspine_desktop.errors import Cancelled
from cspine_desktop.imaging.preprocess import PreparedVolume, PreprocessConfig


def _prepared(zg=20, s=32, bone_planes=range(5, 12)):
    hu = np.full((zg, s, s), -1000.0, np.float32)
    hu[:, 8:24, 8:24] = 40.0  # soft tissue everywhere
    for z in bone_planes:
        hu[z, 12:20, 12:20] = 700.0
    cfg = PreprocessConfig(input_size=s, pixel_spacing_mm=1.0, slice_step_mm=2.0)
    return PreparedVolume(
        hu=hu,
        affine=np.eye(4),
        grid_to_voxel=np.eye(4),
        source_shape=(zg, s, s),
        source_z=np.arange(zg, dtype=np.float64),
        cfg=cfg,
    )


class CountingEngine:
    """Labels every pixel C2, fracture_cls = plane index / 100 for C2; records batches."""

    def __init__(self, s=32, on_batch=None):
        self.input_shape = (s, s, 4)
        self.batches = []
        self.on_batch = on_batch

    def predict(self, x):
        self.batches.append(len(x))
        if self.on_batch:
            self.on_batch(len(self.batches))
        n, s = len(x), x.shape[1]
        vert = np.zeros((n, s, s, 8), np.float32)
        vert[..., 2] = 1.0
        cls = np.zeros((n, 7), np.float32)
        cls[:, 1] = x[:, 0, 0, 3]  # soft-tissue channel of the corner: air → 0
        return {
            "vertebrae": vert,
            "fracture_map": np.full((n, s, s, 1), 0.25, np.float32),
            "fracture_cls": cls,
        }


def test_only_planes_with_bone_are_run_plus_a_margin():
    planes = neck_planes(_prepared())
    assert planes.tolist() == list(range(4, 13))


def test_all_planes_when_no_bone_is_found():
    assert neck_planes(_prepared(bone_planes=())).tolist() == list(range(20))


def test_run_model_fills_run_planes_and_leaves_the_rest_empty():
    engine = CountingEngine()
    seen = []
    out = run_model(engine, _prepared(), batch_size=4, progress=lambda p: seen.append(p.fraction))
    assert engine.batches == [4, 4, 1]
    assert (out.labels[4:13] == 2).all() and not out.labels[:4].any() and not out.labels[13:].any()
    assert np.allclose(out.fracture_map[4:13], 0.25) and not out.fracture_map[13:].any()
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_cancel_stops_between_batches():
    cancel = threading.Event()
    engine = CountingEngine(on_batch=lambda n: cancel.set() if n == 1 else None)
    with pytest.raises(Cancelled):
        run_model(engine, _prepared(), batch_size=2, cancel=cancel)
    assert len(engine.batches) == 1


def test_batch_size_follows_free_memory():
    shape = (256, 256, 4)
    assert choose_batch_size(shape, available_bytes=64 << 20) == 1
    assert choose_batch_size(shape, available_bytes=600 << 20) == 4
    assert choose_batch_size(shape, available_bytes=64 << 30) == 8


class SpineEngine(CountingEngine):
    """Labels C2 on the planes whose corner pixel is soft tissue (the "spine" planes of
    :func:`_long_scan`), background elsewhere; records every plane it is given."""

    def __init__(self, s=32):
        super().__init__(s)
        self.seen = 0

    def predict(self, x):
        y = super().predict(x)
        spine = x[:, 0, 0, 3] > 0.25
        y["vertebrae"][~spine] = 0.0
        y["vertebrae"][~spine, ..., 0] = 1.0
        self.seen += len(x)
        return y


def _long_scan(spine=range(20, 36), zg=60):
    """60 planes of bone (head to chest); the corner pixel is soft tissue on ``spine``."""
    prepared = _prepared(zg=zg, bone_planes=range(zg))
    for z in spine:
        prepared.hu[z, 0, 0] = 40.0
    return prepared


def test_a_long_scan_runs_coarse_then_every_plane_round_the_spine():
    prepared = _long_scan()
    engine = SpineEngine()
    seen = []
    out = run_model(engine, prepared, batch_size=8, progress=lambda p: seen.append(p.fraction))
    assert len(neck_planes(prepared)) >= COARSE_MIN_PLANES
    # the even planes everywhere; the odd ones from 6 mm above the first vertebra found (20)
    # to 6 mm below the last (34)
    fine = list(range(17, 38, 2))
    assert out.planes.tolist() == sorted(set(range(0, 60, 2)) | set(fine))
    assert engine.seen == 30 + len(fine)
    assert (out.labels[20:36] == 2).all()  # every spine plane, 35 included
    assert not out.labels[:20].any() and not out.labels[36:].any()
    # round the spine, the outputs are those of running every plane
    full = run_model(SpineEngine(), prepared, planes=np.arange(60), batch_size=8)
    np.testing.assert_array_equal(out.labels[17:38], full.labels[17:38])
    np.testing.assert_array_equal(out.fracture_cls[17:38], full.fracture_cls[17:38])
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_no_vertebra_in_the_coarse_pass_means_no_fine_pass():
    prepared = _long_scan(spine=())
    engine = SpineEngine()
    out = run_model(engine, prepared, batch_size=8)
    assert engine.seen == 30 and out.planes.tolist() == list(range(0, 60, 2))
    assert fine_planes(out.labels, out.planes, neck_planes(prepared), 2.0).size == 0


def test_a_stray_label_far_from_the_spine_adds_only_its_neighbours():
    """A vertebra label on the chest (planes 50–51) besides the spine (20–35): the planes in
    between are not run twice as densely."""
    prepared = _long_scan(spine=[*range(20, 36), 50, 51])
    engine = SpineEngine()
    out = run_model(engine, prepared, batch_size=8)
    fine = [*range(17, 38, 2), *range(47, 54, 2)]
    assert out.planes.tolist() == sorted(set(range(0, 60, 2)) | set(fine))
    assert (out.labels[50:52] == 2).all() and not out.labels[39:46].any()
