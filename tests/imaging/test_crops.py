"""Stage-2 crop geometry: resolution, orientation, plane spacing and the way back."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.imaging.crops import (
    CropConfig,
    PlaneSpacing,
    crop_geometry,
    map_to_crop,
    paste_planes,
    sample_planes,
    vertebra_crops,
)
from cspine_desktop.imaging.volume import Volume


def _volume(spacing=(2.0, 0.8, 0.8), shape=(40, 120, 120)):
    """A 'vertebra': a 12 mm disc of bone (label 3) over slices 10–29, with a 2 mm bright dot
    12 mm to patient left of its centre on slice 20."""
    _nz, ny, nx = shape
    dz, dy, dx = spacing
    hu = np.full(shape, 40.0, np.float32)
    labels = np.zeros(shape, np.uint8)
    yy, xx = np.mgrid[:ny, :nx]
    cy, cx = ny / 2, nx / 2
    disc = ((yy - cy) * dy) ** 2 + ((xx - cx) * dx) ** 2 <= 6.0**2
    for z in range(10, 30):
        hu[z][disc] = 300.0
        labels[z][disc] = 3
    dot = ((yy - cy) * dy) ** 2 + ((xx - cx - 12.0 / dx) * dx) ** 2 <= 1.0**2
    hu[20][dot] = 1500.0
    affine = np.diag([dx, dy, dz, 1.0])  # x → L, y → P, z → S (slice 0 inferior)
    return Volume(hu=hu, affine=affine, spacing=spacing, meta={"Modality": "CT"}), labels


def _dot_position(x: np.ndarray) -> tuple[int, int, int]:
    n, j, i = np.unravel_index(int(np.argmax(x[..., 1])), x.shape[:3])
    return int(n), int(j), int(i)


def test_crop_is_half_mm_and_centred_on_the_vertebra():
    vol, labels = _volume()
    cfg = CropConfig(size=64)
    crops = vertebra_crops(vol, labels, 3, cfg)
    assert crops is not None
    mask = crops.x[len(crops.x) // 2, ..., 3] > 0.5
    # a 12 mm disc at 0.5 mm pixels spans ~24 px across, centred in the crop
    width = mask.any(axis=0).sum()
    assert 22 <= width <= 26
    cols = np.nonzero(mask.any(axis=0))[0]
    assert abs(cols.mean() - (cfg.size - 1) / 2) <= 1.0
    # the dot 12 mm to patient left sits 24 px to the right of the centre (columns → left)
    _, j, i = _dot_position(crops.x)
    assert abs(i - ((cfg.size - 1) / 2 + 24)) <= 2 and abs(j - (cfg.size - 1) / 2) <= 2


def test_planes_one_mm_apart_on_thin_slices_and_source_spacing_on_thick():
    thin, lab_thin = _volume(spacing=(0.5, 0.8, 0.8), shape=(160, 120, 120))
    lab_thin[:] = 0
    lab_thin[40:120][:, 50:70, 50:70] = 3
    g = crop_geometry(thin, lab_thin, 3, CropConfig(size=64))
    assert np.allclose(np.diff(g.planes) * 0.5, 1.0)
    thick, lab = _volume(spacing=(2.0, 0.8, 0.8))
    g = crop_geometry(thick, lab, 3, CropConfig(size=64))
    assert np.allclose(np.diff(g.planes) * 2.0, 2.0)
    assert g.planes[0] == 10 and g.planes[-1] == 29


def _unread_slices(planes, slices, slice_mm: float, cfg: CropConfig) -> list[int]:
    """Source slices no channel of any plane reads: each plane reads at −context, 0 and
    +context mm, each read standing for ``plane_mm`` of the source (or one slice when the
    slices are thicker)."""
    reads = np.concatenate(
        [np.asarray(planes) * slice_mm + off for off in (-cfg.context_mm, 0.0, cfg.context_mm)]
    )
    reach = 0.5 * max(cfg.plane_mm, slice_mm) + 1e-6
    return [k for k in slices if np.abs(reads - k * slice_mm).min() > reach]


@pytest.mark.parametrize("slice_mm", [0.5, 0.9, 1.25, 1.6, 2.0, 2.5, 3.0])
def test_plane_spacing_reads_every_slice_of_the_vertebra(slice_mm):
    """Planes at most ``plane_mm + 2·context_mm`` apart (and never closer than the slices) read
    every source slice of the vertebra, thin or thick; the rule before 0.7.1 (one plane or
    slice in two) skips slices once they are thicker than twice the context."""
    n = round(90 / slice_mm)
    vol, lab = _volume(spacing=(slice_mm, 0.8, 0.8), shape=(n, 120, 120))
    lab[:] = 0
    first, last = n // 4, 3 * n // 4
    lab[first : last + 1, 50:70, 50:70] = 3
    cfg = CropConfig(size=64)
    assert cfg.tiling_step_mm == 3.0 and PlaneSpacing.default_for(cfg).step_mm == 2.0
    for step in (2.0, 3.0):
        g = crop_geometry(vol, lab, 3, cfg, spacing=PlaneSpacing(step_mm=step))
        gap = np.diff(g.planes)
        if slice_mm < cfg.plane_mm:
            assert np.allclose(gap * slice_mm, step)
        else:  # on source slices: a whole number of them, never wider than the tiling step
            assert np.allclose(gap, np.round(gap)) and gap.min() >= 1
            assert gap.max() == 1 or gap.max() * slice_mm <= cfg.tiling_step_mm + 1e-6
        inside = range(first, int(g.planes[-1]) + 1)  # up to the last plane
        assert _unread_slices(g.planes, inside, slice_mm, cfg) == []
    old = crop_geometry(vol, lab, 3, cfg, spacing=PlaneSpacing(stride=2))
    new = crop_geometry(vol, lab, 3, cfg, spacing=PlaneSpacing.default_for(cfg))
    skipped = _unread_slices(old.planes, range(first, int(old.planes[-1]) + 1), slice_mm, cfg)
    # thicker than twice the context: each old plane reads only its own slice, the next is
    # skipped (2 mm: the ±1 mm channels read the neighbours at half weight)
    assert (len(skipped) > 0) == (slice_mm > 2 * cfg.context_mm)
    if slice_mm <= 1.25:  # up to 1.25 mm the same planes as before
        assert np.allclose(old.planes, new.planes)
    assert PlaneSpacing.from_card({"plane_stride": 2, "plane_step_mm": 3.0}).step_mm == 3.0
    assert PlaneSpacing.from_card({"plane_stride": 2}) == PlaneSpacing(stride=2)


def test_crop_does_not_depend_on_storage_order():
    """A volume stored flipped left–right and head-first gives the same crop."""
    vol, labels = _volume()
    cfg = CropConfig(size=64)
    a = vertebra_crops(vol, labels, 3, cfg).x
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[0, 3] = vol.hu.shape[2] - 1
    flip[2, 3] = vol.hu.shape[0] - 1
    vol2 = Volume(
        hu=vol.hu[::-1, :, ::-1].copy(),
        affine=vol.affine @ flip,
        spacing=vol.spacing,
        meta=vol.meta,
    )
    b = vertebra_crops(vol2, labels[::-1, :, ::-1].copy(), 3, cfg).x
    assert a.shape == b.shape
    # planes follow the stored slice order; channel 0 is toward the head in both
    assert np.allclose(a, b[::-1], atol=1e-3)
    assert _dot_position(a)[1:] == _dot_position(b)[1:]


def test_context_channels_look_toward_the_head_and_feet():
    vol, labels = _volume(spacing=(1.0, 0.8, 0.8))
    x = vertebra_crops(vol, labels, 3, CropConfig(size=64)).x
    n, j, i = _dot_position(x)
    # the dot is on one slice: the plane 1 mm below it sees it in its "above" channel (0)
    below = n - 1  # slice 0 is the most inferior here
    assert x[below, j, i, 0] > x[below, j, i, 2] + 0.3


def test_paste_planes_returns_a_crop_map_to_its_source_voxels():
    vol, labels = _volume()
    cfg = CropConfig(size=64)
    crops = vertebra_crops(vol, labels, 3, cfg)
    n, j, i = _dot_position(crops.x)
    maps = np.zeros((len(crops.x), cfg.map_size, cfg.map_size), np.float32)
    maps[n, j // cfg.map_stride, i // cfg.map_stride] = 1.0
    out = np.zeros(vol.hu.shape, np.float32)
    paste_planes(out, map_to_crop(maps, cfg), crops.geometry)
    z, y, x = np.unravel_index(int(np.argmax(out)), out.shape)
    _dz, yy, xx = np.nonzero(vol.hu == 1500.0)
    assert z == 20
    assert abs(y - yy.mean()) * 0.8 <= 4.0 and abs(x - xx.mean()) * 0.8 <= 4.0


def test_missing_level_gives_none_and_bad_config_is_refused():
    vol, labels = _volume()
    assert vertebra_crops(vol, labels, 5, CropConfig(size=64)) is None
    with pytest.raises(ValueError):
        CropConfig(size=60, map_stride=8)
    assert CropConfig.from_dict(CropConfig().to_dict()) == CropConfig()


def test_sample_planes_interpolates_between_slices():
    vol, labels = _volume(spacing=(2.0, 0.8, 0.8))
    g = crop_geometry(vol, labels, 3, CropConfig(size=64))
    ramp = np.broadcast_to(np.arange(40, dtype=np.float32)[:, None, None], vol.hu.shape)
    half = sample_planes(ramp, g, 64, offset_mm=1.0)  # half a slice toward the head
    assert np.allclose(half[:, 32, 32], g.planes + 0.5, atol=1e-4)


# --- the samplers read only what a crop needs: same values as reading everything ------------


def _noisy_volume(spacing, shape=(48, 140, 150), seed=0):
    """Random HU (so any misplaced pixel shows) and two levels, one touching the image edge."""
    rng = np.random.default_rng(seed)
    hu = rng.normal(200.0, 300.0, shape).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    labels[8:30, 40:90, 50:110] = 4
    labels[30:46, 100:140, 0:40] = 5  # cut by the image's edge: its crops reach outside
    dz, dy, dx = spacing
    affine = np.diag([dx, dy, dz, 1.0])
    return Volume(hu=hu, affine=affine, spacing=spacing, meta={"Modality": "CT"}), labels


def _reference_axial(array_zyx, geom, size, border, offset_mm=0.0):
    """The plain way: each whole source slice converted, smoothed and warped."""
    import cv2

    factor = float(np.linalg.norm(geom.inplane[:, 0]))

    def one(k):
        k = int(np.clip(k, 0, array_zyx.shape[0] - 1))
        src = np.ascontiguousarray(array_zyx[k], dtype=np.float32)
        if factor > 1.3:
            src = cv2.GaussianBlur(src, (0, 0), 0.5 * factor)
        return cv2.warpAffine(
            src, geom.inplane, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT, borderValue=border,
        )  # fmt: skip

    out = []
    for z in geom.planes + geom.head_dir * offset_mm / geom.slice_mm:
        z = float(np.clip(z, 0, array_zyx.shape[0] - 1))
        k0, f = int(np.floor(z)), z - np.floor(z)
        out.append(one(k0) if f < 1e-6 else (1 - f) * one(k0) + f * one(k0 + 1))
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize("pixel", [0.3, 0.8])  # finer than the crop (smoothed), and coarser
def test_axial_planes_equal_sampling_the_whole_slice(pixel):
    vol, labels = _noisy_volume((1.0, pixel, pixel))
    cfg = CropConfig(size=64)
    for level in (4, 5):
        geom = crop_geometry(vol, labels, level, cfg)
        assert geom is not None
        for off in (1.0, 0.0):
            fast = sample_planes(vol.hu, geom, cfg.size, border=-1000.0, offset_mm=off)
            ref = _reference_axial(vol.hu, geom, cfg.size, -1000.0, off)
            np.testing.assert_allclose(fast, ref, atol=1e-3)
        mask = sample_planes(labels, geom, cfg.size, equals=level)
        np.testing.assert_allclose(mask, _reference_axial(labels == level, geom, cfg.size, 0.0))


def test_sagittal_planes_equal_sampling_whole_columns():
    from cspine_desktop.imaging.sagittal import _column_weights, sagittal_geometry

    vol, labels = _noisy_volume((1.0, 0.3, 0.3))
    cfg = CropConfig(size=64, sagittal_half_mm=6.0)
    geom = sagittal_geometry(vol, labels, 4, cfg)
    assert geom is not None and geom.smooth_px > 0
    fast = sample_planes(vol.hu, geom, cfg.size, border=-1000.0, offset_mm=1.0)
    import cv2

    c = (cfg.size - 1) / 2.0
    for k, o in enumerate(geom.planes):
        centre = geom.centre + (o + 1.0) * geom.left
        xs, w = _column_weights(float(centre[0]), geom.smooth_px)
        img = sum(np.float32(wx / w.sum()) * vol.hu[:, :, x] for x, wx in zip(xs, w, strict=True))
        m = np.array(
            [
                [geom.col[1], geom.row[1], centre[1] - c * (geom.col[1] + geom.row[1])],
                [geom.col[2], geom.row[2], centre[2] - c * (geom.col[2] + geom.row[2])],
            ]
        )
        ref = cv2.warpAffine(
            img.astype(np.float32), m, (cfg.size, cfg.size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT, borderValue=-1000.0,
        )  # fmt: skip
        np.testing.assert_allclose(fast[k], ref, atol=1e-2)


def test_level_boxes_bound_every_voxel_of_each_level():
    from cspine_desktop.imaging.crops import level_boxes

    _vol, labels = _noisy_volume((1.0, 0.5, 0.5))
    labels[0, 0, 149] = 2  # a single voxel in a corner
    for lab in (labels, labels.astype(np.int32)):
        boxes = level_boxes(lab)
        assert sorted(boxes) == [2, 4, 5]
        for v, box in boxes.items():
            zz, yy, xx = np.nonzero(lab == v)
            assert box == (slice(zz.min(), zz.max() + 1), slice(yy.min(), yy.max() + 1),
                           slice(xx.min(), xx.max() + 1))  # fmt: skip
    # cropping every level with the boxes gives what cropping without them gives
    vol, labels = _noisy_volume((1.0, 0.5, 0.5))
    cfg = CropConfig(size=64, sagittal_half_mm=6.0)
    boxes = level_boxes(labels)
    for view in ("axial", "sagittal"):
        a = vertebra_crops(vol, labels, 4, cfg, view=view, box=boxes[4])
        b = vertebra_crops(vol, labels, 4, cfg, view=view)
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.x, b.x)
