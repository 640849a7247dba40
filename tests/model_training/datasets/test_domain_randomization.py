"""Domain-randomisation helpers: each changes what it should, and only that."""

from __future__ import annotations

import numpy as np
import pytest

from model_training.datasets import augment as A


def _phantom_slab(nz: int = 9, n: int = 64) -> np.ndarray:
    """Soft tissue (40 HU) with a bright square of bone (1000 HU) in the middle slice."""
    v = np.full((nz, n, n), 40.0, np.float32)
    v[nz // 2, 24:40, 24:40] = 1000.0
    return v


def test_scale_offset_and_gamma():
    v = np.array([0.0, 100.0, 1000.0], np.float32)
    assert np.allclose(A.scale_offset(v, 1.1, -20.0), [-20.0, 90.0, 1080.0])
    img = np.array([0.0, 0.25, 1.0], np.float32)
    assert np.allclose(A.gamma(img, 0.5), [0.0, 0.5, 1.0])
    assert A.gamma(img, 2.0)[1] == pytest.approx(0.0625)


def test_blur_and_sharpen_change_edges_and_keep_the_mean():
    v = _phantom_slab()
    b = A.blur(v, 1.0, 0.5)
    s = A.sharpen(v, 0.6, 1.0, 0.5)
    mid = v.shape[0] // 2
    assert b[mid].max() < 1000.0 and b[mid].mean() == pytest.approx(v[mid].mean(), rel=1e-3)
    assert s[mid].max() > 1000.0 and s[mid].min() < 40.0  # overshoot on both sides of the edge
    assert np.array_equal(v, _phantom_slab())  # inputs untouched


def test_noise_has_the_asked_sd_and_correlation():
    rng = np.random.default_rng(0)
    z = np.zeros((2, 128, 128), np.float32)
    white = A.add_noise(z, 20.0, 0.0, rng)
    coarse = A.add_noise(z, 20.0, 2.0, rng)
    assert white.std() == pytest.approx(20.0, rel=0.05)
    assert coarse.std() == pytest.approx(20.0, rel=0.1)

    def lag1(a):
        return np.corrcoef(a[0, :, :-1].ravel(), a[0, :, 1:].ravel())[0, 1]

    assert abs(lag1(white)) < 0.05 and lag1(coarse) > 0.7


def test_down_up_loses_fine_detail_and_keeps_size():
    rng = np.random.default_rng(1)
    img = rng.standard_normal((64, 64)).astype(np.float32)
    out = A.down_up(img, 2.0)
    assert out.shape == img.shape
    assert out.std() < 0.7 * img.std()  # pixel-scale detail averaged away
    assert abs(out.mean() - img.mean()) < 0.05


def test_slice_thickness_spreads_a_slice_and_keeps_the_sum():
    v = _phantom_slab()
    t = A.slice_thickness(v, 3.0)
    col = t[:, 30, 30]
    mid = v.shape[0] // 2
    assert col[mid] == pytest.approx(40.0 + 960.0 / 3)
    assert col[mid - 1] == pytest.approx(col[mid]) and col[mid + 2] == pytest.approx(40.0)
    assert (t - 40.0)[:, 30, 30].sum() == pytest.approx(960.0)


def test_random_fov_crop_is_inside_and_the_asked_size():
    rng = np.random.default_rng(2)
    for _ in range(20):
        ys, xs = A.random_fov((5, 100, 80), 0.7, rng)
        assert ys.stop - ys.start == 70 and xs.stop - xs.start == 56
        assert ys.start >= 0 and ys.stop <= 100 and xs.start >= 0 and xs.stop <= 80


def test_randomize_volume_is_reproducible_and_varied():
    v = _phantom_slab()
    a, da = A.randomize_volume(v, 0.5, np.random.default_rng(7))
    b, db = A.randomize_volume(v, 0.5, np.random.default_rng(7))
    assert np.array_equal(a, b) and da == db
    assert a.shape == v.shape and a.dtype == np.float32
    seen = set()
    for seed in range(30):
        _, d = A.randomize_volume(v, 0.5, np.random.default_rng(seed))
        seen |= set(d)
    assert {"hu_scale", "down_factor", "thickness_ratio", "noise_hu"} <= seen
    assert {"blur_mm", "sharpen"} <= seen
    same, none = A.randomize_volume(v, 0.5, np.random.default_rng(0), A.DomainConfig(p=0.0))
    assert none == {} and np.array_equal(same, v) and same is not v
