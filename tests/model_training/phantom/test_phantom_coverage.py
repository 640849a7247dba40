"""Fields of view beyond the neck: head-and-neck and trauma coverage, gantry tilt, posture."""

from __future__ import annotations

import numpy as np
import pytest

from model_training.phantom import PhantomConfig, generate_study
from model_training.phantom.layout import sample_acquisition


def _cfg(**kw) -> PhantomConfig:
    base = {
        "matrix": 96,
        "slice_spacing_mm": (3.0, 3.0),
        "fov_circle_probability": 0.0,
        "table_probability": 0.0,
    }
    base.update(kw)
    return PhantomConfig(**base)


def _z_mm(st, z_index: np.ndarray) -> np.ndarray:
    return st.affine[2, 3] + st.affine[2, 2] * np.asarray(z_index, float)


def test_coverage_mix_and_fields_of_view():
    rng = np.random.default_rng(0)
    acqs = [sample_acquisition(rng, PhantomConfig()) for _ in range(500)]
    kinds = [a.extras["coverage"] for a in acqs]
    assert 0.15 < kinds.count("head_neck") / 500 < 0.25
    assert 0.05 < kinds.count("trauma") / 500 < 0.15
    fov = np.array([a.matrix * a.pixel_spacing_mm for a in acqs])
    wide = np.array([k != "neck" for k in kinds])
    assert fov[wide].min() >= 220 - 1e-6 and fov[wide].max() <= 500 + 1e-6
    assert fov[~wide].max() <= 0.8 * 256 + 1e-6


@pytest.mark.parametrize("coverage", ["head_neck", "trauma"])
def test_wide_coverage_shows_skull_above_and_thorax_below(coverage):
    hn = coverage == "head_neck"
    st = generate_study(4, _cfg(head_neck_probability=float(hn), trauma_probability=float(not hn)))
    assert st.acquisition.extras["coverage"] == coverage
    assert set(np.unique(st.labels)) == set(range(8))  # still exactly C1–C7 labelled
    zl = np.nonzero(st.labels.any(axis=(1, 2)))[0]
    top_mm, bottom_mm = _z_mm(st, zl.min()), _z_mm(st, zl.max())
    z_all = _z_mm(st, np.arange(st.hu.shape[0]))
    assert z_all.max() - top_mm > 40.0  # ≥ 40 mm of head above C1
    assert bottom_mm - z_all.min() > 25.0  # thorax below C7
    above = st.hu[z_all > top_mm + 30.0]
    assert (above > 500).sum() > 200  # skull bone, labelled background
    assert not st.labels[z_all > top_mm + 1.0].any()
    if coverage == "trauma":
        low = st.hu[z_all < bottom_mm - 50.0]
        assert ((low > -950) & (low < -700)).mean() > 0.03  # lung


def test_gantry_tilt_and_head_pose_vary_between_studies():
    cfg = _cfg(gantry_tilt_probability=1.0)
    tilts = [generate_study(s, cfg).acquisition.extras["gantry_tilt_deg"] for s in range(4)]
    assert all(abs(t) <= 20.0 for t in tilts) and len(set(tilts)) == 4
    assert max(abs(t) for t in tilts) > 5.0
