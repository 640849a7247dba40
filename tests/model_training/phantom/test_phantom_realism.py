"""Realism: tissue HU on phantom slices at C6/C7 against the real neck CT slice in tests/data,
with the same regions found by the same rules (model_training.phantom.realism)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cspine_desktop.imaging import load_study
from model_training.phantom import PhantomConfig, generate_study, realism

REAL = Path(__file__).resolve().parents[2] / "data/ct-transfer-syntaxes/CTImage.dcm"
REAL_BODY_RC = (291, 272)  # vertebral body centre on the real slice (row, col)


def real_stats() -> dict[str, realism.Stats]:
    vol = load_study(REAL)
    return realism.tissue_stats(vol.hu[0], REAL_BODY_RC, float(vol.spacing[2]))


def phantom_medians(n: int = 8) -> dict[str, float]:
    """Median over n studies × (C6, C7) of each tissue's median, at the real slice's protocol:
    0.68 mm pixels, 5 mm slices, soft kernel."""
    cfg = PhantomConfig(
        matrix=256,
        pixel_spacing_mm=(0.68, 0.68),
        slice_spacing_mm=(5.0, 5.0),
        soft_kernel_probability=1.0,
        fov_circle_probability=0.0,
        fracture_prevalence=0.0,
        head_neck_probability=0.0,
        trauma_probability=0.0,
    )
    meds: dict[str, list[float]] = {t: [] for t in realism.TISSUES}
    for seed in range(n):
        st = generate_study(seed, cfg)
        for level in (6, 7):
            z = int(np.argmax((st.labels == level).sum(axis=(1, 2))))
            centre = realism.body_centre(st.labels[z], level)
            for t, s in realism.tissue_stats(st.hu[z], centre, 0.68).items():
                meds[t].append(s.median)
    return {t: float(np.nanmedian(v)) for t, v in meds.items()}


def test_real_slice_regions_are_what_they_claim():
    real = real_stats()
    assert 150 < real["cancellous"].median < 300
    assert real["cortical"].median > real["cancellous"].median + 200
    assert -20 < real["muscle"].median < 80 and -130 < real["fat"].median < -30
    assert all(s.n > 50 for s in real.values())


@pytest.mark.parametrize("tissue", realism.TISSUES)
def test_phantom_tissue_medians_within_50_hu_of_the_real_slice(tissue, phantom):
    real = real_stats()
    assert abs(phantom[tissue] - real[tissue].median) <= 50.0, (
        tissue,
        phantom[tissue],
        real[tissue].median,
    )


@pytest.fixture(scope="module")
def phantom():
    return phantom_medians()
