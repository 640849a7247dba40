"""Scanner variety: reconstruction kernels (sharpness, noise texture), noise level, slice
thickness and overlap, beam hardening, and trabecular bone texture."""

from __future__ import annotations

import numpy as np
import pytest

from model_training.phantom import PhantomConfig, artifacts, generate_study, texture
from model_training.phantom.layout import sample_acquisition


def _lag1(img: np.ndarray) -> float:
    """Correlation of horizontally neighbouring pixels."""
    a, b = img[:, :-1].ravel(), img[:, 1:].ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_acquisitions_span_kernels_noise_and_overlapping_thickness():
    rng = np.random.default_rng(5)
    cfg = PhantomConfig()
    acqs = [sample_acquisition(rng, cfg) for _ in range(400)]
    noise = np.array([a.noise_hu for a in acqs])
    assert noise.min() >= 5.0 and noise.max() <= 40.0
    assert noise.min() < 8.0 and noise.max() > 32.0  # the whole 5–40 HU range is used
    names = [a.kernel["name"] for a in acqs]
    assert 0.25 < names.count("soft") / len(names) < 0.45
    soft = np.array([a.noise_hu for a in acqs if a.kernel["name"] == "soft"])
    bone = np.array([a.noise_hu for a in acqs if a.kernel["name"] == "bone"])
    assert np.median(soft) < np.median(bone)  # soft kernels are quieter
    thick = np.array([a.slice_thickness_mm for a in acqs])
    dz = np.array([a.slice_spacing_mm for a in acqs])
    assert thick.min() >= 0.5 and thick.max() <= 3.0 + 1e-9 and np.all(thick >= dz)
    overlap = thick > 1.25 * dz
    assert 0.2 < overlap.mean() < 0.5  # overlapping reconstructions are common
    assert np.any(dz < 0.8) and np.any(dz > 2.5)


def test_noise_texture_follows_the_kernel():
    rng = np.random.default_rng(0)
    out = {}
    for name, peak in (("soft", 0.2), ("bone", 0.6)):
        hu = np.zeros((4, 256, 256), np.float32)
        artifacts.add_noise(hu, np.full(4, 20.0), rng, peak * 0.5)  # 0.5 mm pixels
        assert hu.std() == pytest.approx(20.0, rel=0.1)
        out[name] = _lag1(hu[0])
    # soft-kernel noise is blotchy (neighbours correlated), bone-kernel noise a fine grain
    assert out["soft"] > 0.6 and out["bone"] < 0.3, out


def _edge_slice() -> np.ndarray:
    hu = np.zeros((1, 64, 64), np.float32)
    hu[:, :, 32:] = 1000.0
    return hu


def test_bone_kernel_is_sharper_than_soft_with_edge_overshoot():
    rng = np.random.default_rng(1)
    prof = {}
    for name in ("soft", "bone"):
        hu = _edge_slice()
        k = artifacts.sample_kernel(rng, name)
        artifacts.reconstruct(hu, k, 0.5)
        prof[name] = hu[0, 32]

    # 10–90 % rise distance in pixels
    def rise(p: np.ndarray) -> int:
        return int(np.argmax(p > 900) - np.argmax(p > 100))

    assert rise(prof["bone"]) < rise(prof["soft"])
    assert prof["bone"].max() > 1020 and prof["bone"].min() < -20  # overshoot rims
    assert prof["soft"].max() <= 1000.5 and prof["soft"].min() >= -0.5


def test_overlapping_slices_average_along_z_and_keep_the_mean():
    hu = np.zeros((9, 4, 4), np.float32)
    hu[4] = 900.0
    artifacts.slice_profile(hu, 2.0)
    col = hu[:, 0, 0]
    assert col[4] == pytest.approx(450.0) and col[3] == col[5] == pytest.approx(225.0)
    assert col[2] == 0.0 and col.sum() == pytest.approx(900.0)
    same = np.ones((3, 2, 2), np.float32)
    artifacts.slice_profile(same, 1.7)
    assert np.allclose(same, 1.0)


def test_beam_hardening_darkens_the_rays_between_dense_bones():
    hu = np.zeros((1, 200, 200), np.float32)
    hu[0, 90:110, 20:60] = 1800.0  # two "shoulders" left and right
    hu[0, 90:110, 140:180] = 1800.0
    before = hu.copy()
    artifacts.beam_hardening(hu, 0.8, 0.02)
    diff = hu - before
    between = diff[0, 95:105, 80:120].mean()
    away = diff[0, 20:40, 80:120].mean()
    assert between < -10.0 and abs(away) < 2.0


def test_trabecular_texture_is_reproducible_and_unit_variance():
    rng = np.random.default_rng(3)
    p = texture.sample_params(rng, osteoporosis=False)
    u, v, w = np.meshgrid(*(np.arange(-10, 10, 0.25, dtype=np.float32),) * 3, indexing="ij")
    t = texture.lookup(p, u, v, w)
    assert t.shape == u.shape and abs(float(t.mean())) < 0.2
    assert 0.7 < float(t.std()) < 1.3
    assert np.array_equal(t, texture.lookup(p, u, v, w))
    # grain of 1–3 mm: correlated over 0.25 mm, nearly independent 3 mm apart
    assert np.corrcoef(t[:-1].ravel(), t[1:].ravel())[0, 1] > 0.5
    assert abs(np.corrcoef(t[:-12].ravel(), t[12:].ravel())[0, 1]) < 0.35


def test_cancellous_bone_is_textured_not_hollow():
    """Vertebral-body interiors hold 150–400 HU bone with visible texture, between the cortex
    and the soft tissue — not a bright shell around soft-tissue density."""
    cfg = PhantomConfig(
        matrix=256,
        pixel_spacing_mm=(0.5, 0.5),
        slice_spacing_mm=(1.0, 1.0),
        osteoporosis_probability=0.0,
        noise_hu=(5.0, 5.0),
        fracture_prevalence=0.0,
    )
    st = generate_study(31, cfg)
    lab = st.labels
    for level in (4, 5, 6):
        z = int(np.argmax((lab == level).sum(axis=(1, 2))))
        ys, xs = np.nonzero(lab[z] == level)
        # body: the anterior-most third of the vertebra's pixels, eroded by 3 px
        front = ys < np.percentile(ys, 30)
        cy, cx = int(np.median(ys[front])), int(np.median(xs[front]))
        core = st.hu[z, cy - 3 : cy + 4, cx - 3 : cx + 4].astype(float)
        assert 150 < np.median(core) < 420, (level, np.median(core))
        assert core.std() > 15  # texture, well above the 5 HU noise
