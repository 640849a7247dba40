"""The body mask that removes the table: what is outside the patient goes, the patient stays —
also where the lungs split the body into a front and a back within a neck-sized field of view
(a plane through the upper thorax, cropped to the model grid)."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.analysis.plausibility import MAX_NECK_SECTION_CM2
from cspine_desktop.imaging.artifacts import AIR_HU, body_mask, remove_table
from cspine_desktop.imaging.preprocess import smallest_body_section_cm2
from cspine_desktop.imaging.volume import Volume

PX = 1.25  # mm, the demo model's grid
N = 128


def _yx() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:N, 0:N].astype(np.float64)
    return yy * PX, xx * PX  # mm


def _upper_thorax() -> np.ndarray:
    """A cropped plane through the lung apices: soft tissue across the whole crop, two lungs
    that reach the crop's sides and meet in front of the spine — so the front (chest wall,
    the larger part here) and the back (spine and paraspinal muscles) are separate regions
    within the crop, joined only outside it."""
    y, x = _yx()
    hu = np.full((N, N), 40.0)
    hu[(y > 70.0) & (y < 112.0)] = -850.0  # the lungs
    hu[(x - 80.0) ** 2 + (y - 136.0) ** 2 < 12.0**2] = 700.0  # the vertebral body
    return hu


def test_the_spine_behind_the_lungs_is_kept():
    hu = _upper_thorax()
    y, _ = _yx()
    assert (hu[y <= 70.0] > -500).sum() > (hu[y >= 112.0] > -500).sum()  # the front is larger
    out = remove_table(hu, PX)
    assert (out > 300).sum() == (hu > 300).sum()  # every bone pixel of the spine is still there
    assert np.array_equal(body_mask(hu, PX)[hu > 300], np.ones(int((hu > 300).sum()), bool))


def test_a_table_below_the_patient_is_removed():
    y, x = _yx()
    hu = np.full((N, N), AIR_HU)
    neck = (x - 80.0) ** 2 + (y - 70.0) ** 2 < 55.0**2
    hu[neck] = 40.0
    for top, val in ((134.0, 300.0), (143.0, 150.0)):  # two thin shells, 2.5 mm, full width
        hu[(y >= top) & (y < top + 2.5)] = val
    hu[(y >= 136.5) & (y < 143.0)] = -900.0  # foam core
    out = remove_table(hu, PX)
    assert (out[y >= 130.0] == AIR_HU).all()
    assert (out[neck] == 40.0).all()


def test_a_thick_block_outside_the_largest_region_is_body_but_a_thin_band_is_not():
    """A band 10 mm thick (a head holder, a chin cut off from the neck by the crop) is not
    kept beside the body, however long it is; a second region 30 mm thick is."""
    y, x = _yx()
    hu = np.full((N, N), AIR_HU)
    hu[(y > 60.0) & (y < 150.0)] = 40.0  # the body: the largest region
    hu[(y > 5.0) & (y < 15.0)] = 40.0  # a 10 mm band across the crop (11 % of the area)
    mask = body_mask(hu, PX)
    assert not mask[y < 20.0].any()
    hu[(y > 5.0) & (y < 35.0) & (x > 40.0) & (x < 120.0)] = 40.0  # now a 30 mm block
    mask = body_mask(hu, PX)
    assert mask[(y > 12.0) & (y < 28.0) & (x > 50.0) & (x < 110.0)].all()


def _section_volume(width_mm: float, depth_mm: float, px: float = 0.5) -> Volume:
    """20 axial planes 2 mm apart of an elliptical body (soft tissue, an airway) in air, a
    table shell below it, on a 512-pixel field of view."""
    n = 512
    yy, xx = (np.mgrid[0:n, 0:n].astype(np.float64) - n / 2) * px
    plane = np.full((n, n), AIR_HU)
    plane[(xx / (width_mm / 2)) ** 2 + (yy / (depth_mm / 2)) ** 2 < 1.0] = 40.0
    plane[xx**2 + (yy + depth_mm / 4) ** 2 < 8.0**2] = AIR_HU  # the airway, inside the body
    plane[(yy > depth_mm / 2 + 10.0) & (yy < depth_mm / 2 + 13.0)] = 300.0  # the table
    affine = np.diag([px, px, 2.0, 1.0])
    return Volume(np.repeat(plane[None], 20, axis=0).astype(np.float32), affine, (2.0, px, px))


def test_the_smallest_body_section_tells_a_neck_from_a_chest():
    """A neck 130 × 110 mm (ANATOMY) holds about 112 cm², airway included, table left out,
    120 with the body mask's 2 mm margin; an abdomen 320 × 230 mm about 578 (590)."""
    neck = smallest_body_section_cm2(_section_volume(130.0, 110.0))
    assert neck == pytest.approx(np.pi * 6.7 * 5.7, rel=0.02)
    assert neck < MAX_NECK_SECTION_CM2
    belly = smallest_body_section_cm2(_section_volume(320.0, 230.0, px=0.8))  # 410 mm FOV
    assert belly == pytest.approx(np.pi * 16.2 * 11.7, rel=0.02)
    assert belly > MAX_NECK_SECTION_CM2
    one = _section_volume(130.0, 110.0)
    assert smallest_body_section_cm2(Volume(one.hu[:1], one.affine, one.spacing)) is None
