"""Fractures are visible in the HU and marked in the mask; mimics are visible but not marked.

One vertebra is drawn alone on a fine grid (0.4 mm pixels, 1 mm slices) with and without a
fracture or confounder, so differences come from that change only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model_training.phantom import artifacts
from model_training.phantom.config import Confounders, FractureSpec
from model_training.phantom.confounders import apply_confounders
from model_training.phantom.fractures import apply_fracture
from model_training.phantom.render import Canvas, Grid, Structure, render_structure
from model_training.phantom.vertebrae import axis, subaxial

PX, DZ = 0.4, 1.0


def _grid(px: float = PX) -> Grid:
    n, nz = round(72 / px), 60
    aff = np.array(
        [
            [px, 0, 0, -n / 2 * px],
            [0, px, 0, -n / 2 * px + 15.0],
            [0, 0, -DZ, nz / 2 * DZ],
            [0, 0, 0, 1.0],
        ]
    )
    return Grid((nz, n, n), aff, px, DZ, DZ)


def _draw(
    level: int,
    spec: FractureSpec | None = None,
    conf: Confounders | None = None,
    seed: int = 0,
    px: float = PX,
) -> tuple[Canvas, Structure]:
    parts, g = axis(1.0, 9.0) if level == 2 else subaxial(level, 1.0, 9.5, 9.5)
    st = Structure(f"C{level}", level, np.zeros(3), np.eye(3), parts, 1400.0, 350.0, 1.0)
    rng = np.random.default_rng(seed)
    if conf is not None:
        apply_confounders(st, g, conf, rng)
    if spec is not None:
        apply_fracture(st, g, spec, 0, rng)
    grid = _grid(px)
    canvas = Canvas(
        np.full(grid.shape, 50.0, np.float32),
        np.zeros(grid.shape, np.uint8),
        np.zeros(grid.shape, np.uint8),
    )
    render_structure(st, grid, canvas)
    return canvas, st


def _dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    m = mask.copy()
    for _ in range(iterations):
        p = np.pad(m, 1)
        m = m | p[:-2, 1:-1, 1:-1] | p[2:, 1:-1, 1:-1] | p[1:-1, :-2, 1:-1]
        m |= p[1:-1, 2:, 1:-1] | p[1:-1, 1:-1, :-2] | p[1:-1, 1:-1, 2:]
    return m


@pytest.fixture(scope="module")
def intact():
    return {k: _draw(k)[0] for k in (2, 5)}


@pytest.mark.parametrize(
    ("level", "kind"),
    [(5, "cortical_line"), (5, "posterior_line"), (5, "spinous"), (2, "dens_type2")],
)
def test_minor_fracture_is_a_lucent_line_without_displacement(intact, level, kind):
    spec = FractureSpec(level, kind, "minor")
    frac, _ = _draw(level, spec)
    ref = intact[level]
    mask = frac.fracture > 0
    assert mask.sum() > 50 and spec.displacement_mm == 0.0
    assert np.array_equal(frac.labels, ref.labels)  # hairline: same bone, same labels
    assert np.all(frac.labels[mask] == level)
    drop = ref.hu - frac.hu
    assert drop[~_dilate(mask, 2)].max() < 1.0  # nothing changes away from the fracture
    # bone turns into clot/fragment density along the line, including cortical voxels
    lucent = mask & (drop > 300)
    assert lucent.sum() > 10
    assert (ref.hu[lucent] > 900).any()  # the line crosses the cortex
    assert (frac.hu[lucent] < 700).mean() > 0.5


@pytest.mark.parametrize(
    ("level", "kind"), [(5, "cortical_line"), (2, "dens_type2"), (5, "spinous")]
)
def test_severe_fracture_displaces_bone(intact, level, kind):
    spec = FractureSpec(level, kind, "severe")
    frac, _ = _draw(level, spec)
    assert spec.displacement_mm >= 1.0
    changed = (frac.labels == level) != (intact[level].labels == level)
    assert changed.sum() * PX * PX * DZ > 10.0  # > 10 mm³ of bone moved


def test_compression_lowers_the_anterior_body_height(intact):
    spec = FractureSpec(5, "compression", "severe")
    frac, _ = _draw(5, spec, seed=1)
    assert spec.height_loss >= 0.25
    assert (intact[5].labels == 5).sum() - (frac.labels == 5).sum() > 0
    # anterior column of the body (LPS y from -7 to -3 mm, x within ±4 mm): fewer slices
    aff = _grid().affine
    rows = slice(round((-7 - aff[1, 3]) / PX), round((-3 - aff[1, 3]) / PX))
    cols = slice(round((-4 - aff[0, 3]) / PX), round((4 - aff[0, 3]) / PX))

    def height(lab):
        return int((lab[:, rows, cols] == 5).any(axis=(1, 2)).sum())

    assert height(frac.labels) <= height(intact[5].labels) - 2
    assert (frac.fracture > 0).sum() > 100


def test_vascular_channel_is_lucent_but_not_a_fracture(intact):
    conf = Confounders(vascular_channels=(5,))
    mimic, st = _draw(5, conf=conf)
    assert st.lucencies
    assert mimic.fracture.sum() == 0
    assert np.array_equal(mimic.labels, intact[5].labels)
    assert (intact[5].hu - mimic.hu).max() > 300  # visible: crosses the posterior cortex


def test_osteophytes_and_sclerosis_add_bone_but_no_fracture(intact):
    conf = Confounders(osteophytes=(5,), sclerosis=(5,))
    mimic, _ = _draw(5, conf=conf, seed=3)
    assert mimic.fracture.sum() == 0
    assert (mimic.labels == 5).sum() > (intact[5].labels == 5).sum()
    assert (mimic.hu - intact[5].hu).max() > 300


def _render(st: Structure, px: float) -> Canvas:
    grid = _grid(px)
    canvas = Canvas(
        np.full(grid.shape, 50.0, np.float32),
        np.zeros(grid.shape, np.uint8),
        np.zeros(grid.shape, np.uint8),
    )
    render_structure(st, grid, canvas)
    return canvas


@pytest.mark.parametrize("kind", ["cortical_line", "posterior_line", "spinous", "dens_type2"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_minor_fracture_breaks_the_cortex_visibly_at_half_mm_pixels(kind, seed):
    """A minor line is 1–1.5 mm wide: after a bone kernel at 0.5 mm pixels the cortex it
    crosses loses hundreds of HU over about twice the cortex a 0.5 mm hairline would break."""
    level = 2 if kind == "dens_type2" else 5
    spec = FractureSpec(level, kind, "minor")
    frac, st = _draw(level, spec, seed=seed, px=0.5)
    ref, _ = _draw(level, seed=seed, px=0.5)
    assert all(1.0 <= c.gap <= 1.5 for c in st.cuts) and spec.displacement_mm == 0.0
    st.cuts = [dataclasses.replace(c, gap=0.5) for c in st.cuts]
    hair = _render(st, 0.5)
    kernel = artifacts.sample_kernel(np.random.default_rng(seed), "bone")
    for canvas in (frac, ref, hair):
        artifacts.reconstruct(canvas.hu, kernel, 0.5)
    cortex = (frac.fracture > 0) & (ref.hu > 700)  # intact cortical voxels near the line
    broken = int(((ref.hu - frac.hu)[cortex] > 400).sum())
    broken_hair = int(((ref.hu - hair.hu)[cortex] > 400).sum())
    assert broken * 0.5 * 0.5 * DZ > 10.0  # > 10 mm³ of cortex turned lucent
    assert broken > 1.6 * broken_hair, (broken, broken_hair)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_line_through_the_body_is_darker_than_the_marrow_it_crosses(seed):
    """The cleft holds clot (20–90 HU): darker than the least dense normal cancellous bone
    (150 HU), so the line shows inside the body, not only where it breaks the cortex."""
    parts, g = subaxial(5, 1.0, 9.5, 9.5)
    spec = FractureSpec(5, "cortical_line", "minor")
    broken = Structure("C5", 5, np.zeros(3), np.eye(3), parts, 1100.0, 150.0, 0.6)
    apply_fracture(broken, g, spec, 0, np.random.default_rng(seed))
    intact = Structure("C5", 5, np.zeros(3), np.eye(3), parts, 1100.0, 150.0, 0.6)
    frac, ref = _render(broken, PX), _render(intact, PX)
    marrow = (frac.fracture > 0) & (ref.hu > 120) & (ref.hu < 200)
    cleft = marrow & (np.abs(ref.hu - frac.hu) > 1.0)
    assert cleft.sum() > 50
    assert np.median(ref.hu[cleft] - frac.hu[cleft]) > 50.0
