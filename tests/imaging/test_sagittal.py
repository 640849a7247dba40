"""Stage 2's second view: sagittal crop planes near a vertebra's midline — their orientation,
resolution, plane selection, and the way back to the source grid."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.imaging.crops import (
    CropConfig,
    geometry,
    paste_planes,
    vertebra_crops,
    view_slice,
)
from cspine_desktop.imaging.volume import Volume

CFG = CropConfig(size=64, sagittal_half_mm=4.0)


def _volume(spacing=(1.0, 0.5, 0.5), shape=(40, 100, 100), z_feet_first=True):
    """A 'vertebra' (label 3): a 12 mm disc over slices 10–29, plus a bright dot on the midline
    5 mm anterior of its centre on slice 25 (toward the head when slice 0 is inferior)."""
    _nz, ny, nx = shape
    dz, dy, dx = spacing
    hu = np.full(shape, 40.0, np.float32)
    labels = np.zeros(shape, np.uint8)
    yy, xx = np.mgrid[:ny, :nx]
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    disc = ((yy - cy) * dy) ** 2 + ((xx - cx) * dx) ** 2 <= 6.0**2
    for z in range(10, 30):
        hu[z][disc] = 300.0
        labels[z][disc] = 3
    dot = ((yy - cy + 5.0 / dy) * dy) ** 2 + ((xx - cx) * dx) ** 2 <= 1.0**2
    hu[24:27][:, dot] = 1500.0
    affine = np.diag([dx, dy, dz, 1.0])  # x → L, y → P, z → S
    if not z_feet_first:  # slice 0 at the head: flip the array and the z axis
        hu, labels = hu[::-1].copy(), labels[::-1].copy()
        affine[2, 2], affine[2, 3] = -dz, dz * (shape[0] - 1)
    return Volume(hu=hu, affine=affine, spacing=spacing, meta={"Modality": "CT"}), labels


@pytest.mark.parametrize("feet_first", [True, False])
def test_sagittal_plane_is_anterior_left_head_up_at_half_mm(feet_first):
    vol, labels = _volume(z_feet_first=feet_first)
    crops = vertebra_crops(vol, labels, 3, CFG, view="sagittal")
    assert crops is not None
    g = crops.geometry
    mid = int(np.argmin(np.abs(g.planes)))
    img = crops.x[mid, ..., 1]
    i, j = np.unravel_index(int(np.argmax(img)), img.shape)
    c = (CFG.size - 1) / 2
    # 5 mm anterior → 10 px to the left; slice 25 is 5.5 mm headward of the centre (19.5) → up
    assert abs(j - (c - 10)) <= 2
    assert abs(i - (c - 11)) <= 2
    # the disc is 20 mm tall (slices 10–29): 40 rows of mask at 0.5 mm
    rows = np.nonzero((crops.x[mid, ..., 3] > 0.5).any(axis=1))[0]
    assert 38 <= len(rows) <= 42


def test_only_planes_through_the_vertebra_within_the_half_width():
    vol, labels = _volume()
    g = geometry(vol, labels, 3, CropConfig(size=64, sagittal_half_mm=10.0), "sagittal")
    assert g is not None
    # planes 1 mm apart; the 12 mm disc holds ≥ 40 mask pixels only where its chord is long enough
    assert np.allclose(np.diff(g.planes), 1.0)
    assert g.planes.min() >= -6.0 and g.planes.max() <= 6.0
    wide = geometry(vol, labels, 3, CropConfig(size=64, sagittal_half_mm=3.0), "sagittal")
    assert wide is not None and list(wide.planes) == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    # off by default: axial only
    assert geometry(vol, labels, 3, CropConfig(size=64), "sagittal") is None
    assert CropConfig(size=64).views == ("axial",) and CFG.views == ("axial", "sagittal")


def test_context_channels_are_the_neighbouring_sagittal_planes():
    vol, labels = _volume()
    hu = vol.hu.copy()
    hu += 20.0 * np.arange(hu.shape[2], dtype=np.float32)  # brighter toward patient left (+x)
    vol2 = Volume(hu=hu, affine=vol.affine, spacing=vol.spacing, meta=vol.meta)
    crops = vertebra_crops(vol2, labels, 3, CFG, view="sagittal")
    mid = int(np.argmin(np.abs(crops.geometry.planes)))
    left, at, right = (crops.x[mid, 5:15, 5:15, c].mean() for c in range(3))
    assert left > at > right


def test_sagittal_map_pastes_back_onto_its_source_voxel():
    vol, labels = _volume()
    crops = vertebra_crops(vol, labels, 3, CFG, view="sagittal")
    g = crops.geometry
    mid = int(np.argmin(np.abs(g.planes)))
    c = (CFG.size - 1) // 2
    maps = np.zeros((len(g.planes), CFG.size, CFG.size), np.float32)
    maps[mid, c - 11, c - 10] = 1.0  # where the dot is
    out = np.zeros(vol.hu.shape, np.float32)
    paste_planes(out, maps, g)
    z, y, x = np.unravel_index(int(np.argmax(out)), out.shape)
    assert abs(z - 25) <= 1 and abs(y - (49.5 - 10)) <= 1.5 and abs(x - 49.5) <= 1.5
    assert view_slice(g, mid, maps[mid]) == pytest.approx(25, abs=1)
