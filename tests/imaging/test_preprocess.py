"""The shared preprocessing: geometry, orientation invariance, label transport, channels."""

from __future__ import annotations

import numpy as np
import pytest

from cspine_desktop.imaging.preprocess import (
    PreprocessConfig,
    from_grid,
    labels_from_grid,
    model_input,
    prepare_volume,
    to_grid,
)
from cspine_desktop.imaging.volume import Volume
from cspine_desktop.imaging.windows import DISPLAY_PRESETS, Window, apply_window, header_window

CFG = PreprocessConfig(input_size=64, pixel_spacing_mm=2.0, slice_step_mm=2.0)


def phantom_volume(nz=40, ny=96, nx=96, dz=1.0, dxy=1.5, centre=(60, 40)):
    """Neck-like cylinder (40 HU) with a bone block (1000 HU) whose label is its z-third + 1,
    on an axial LPS grid: x → L, y → P, slice z index increasing toward the head."""
    hu = np.full((nz, ny, nx), -1000, np.int16)
    yy, xx = np.mgrid[:ny, :nx]
    cy, cx = centre
    body = (yy - cy) ** 2 + (xx - cx) ** 2 < (50 / dxy) ** 2
    hu[:, body] = 40
    labels = np.zeros(hu.shape, np.uint8)
    block = (abs(yy - cy - 5) < 6) & (abs(xx - cx) < 8)
    for z in range(nz):
        hu[z, block] = 1000
        labels[z, block] = 1 + (3 * z) // nz
    affine = np.array([[dxy, 0, 0, -100.0], [0, dxy, 0, -80.0], [0, 0, dz, -200.0], [0, 0, 0, 1]])
    return Volume(hu=hu, affine=affine, spacing=(dz, dxy, dxy)), labels


def test_grid_geometry_and_orientation():
    vol, labels = phantom_volume()
    prep = prepare_volume(vol, CFG)
    assert prep.hu.shape[1:] == (64, 64)
    assert prep.n_slices == int((40 - 1) * 1.0 / 2.0) + 1
    # grid z increases toward the feet: source slice 0 (most inferior) is the last plane
    assert prep.source_slice_of(0) == 39 and prep.source_slice_of(prep.n_slices - 1) <= 1
    g = to_grid(labels, prep)
    top_labels = set(np.unique(g[0])) - {0}
    bottom_labels = set(np.unique(g[-1])) - {0}
    assert top_labels == {3} and bottom_labels == {1}
    # the bone block sits near the FOV centre (the neck centre is found from the body)
    ys, xs = np.nonzero(g[g.shape[0] // 2])
    assert abs(xs.mean() - 31.5) < 3 and abs(ys.mean() - 31.5 - 5 * 1.5 / 2.0) < 3


def test_flipped_and_transposed_storage_give_the_same_grid():
    vol, labels = phantom_volume()
    ref = prepare_volume(vol, CFG)
    # the same anatomy stored with columns running right (x flipped) and slices head→feet
    hu2 = vol.hu[::-1, :, ::-1].copy()
    lab2 = labels[::-1, :, ::-1].copy()
    a2 = vol.affine.copy()
    nz, _, nx = vol.hu.shape
    a2[:3, 3] = vol.affine[:3, 3] + vol.affine[:3, 0] * (nx - 1) + vol.affine[:3, 2] * (nz - 1)
    a2[:3, 0] *= -1
    a2[:3, 2] *= -1
    flipped = prepare_volume(Volume(hu2, a2, vol.spacing), CFG)
    np.testing.assert_allclose(flipped.hu, ref.hu, atol=1.0)  # cv2 fixed-point weights
    np.testing.assert_array_equal(to_grid(lab2, flipped), to_grid(labels, ref))
    # stored sagittally: array axes (x, y, z) → voxel axes permuted
    hu3 = np.transpose(vol.hu, (2, 1, 0)).copy()  # [x, y, z] stored as [z', y', x']
    a3 = vol.affine[:, [2, 1, 0, 3]]
    sag = prepare_volume(Volume(hu3, a3, vol.spacing), CFG)
    np.testing.assert_allclose(sag.hu, ref.hu, atol=1.0)
    back = from_grid(to_grid(np.transpose(labels, (2, 1, 0)), sag), sag)
    assert back.shape == hu3.shape


@pytest.mark.parametrize("transport", [from_grid, labels_from_grid])
def test_label_round_trip_is_exact_where_grids_align(transport):
    vol, labels = phantom_volume(dz=2.0, dxy=2.0)
    prep = prepare_volume(vol, CFG)
    back = transport(to_grid(labels, prep), prep)
    # away from label borders (either transport may move a border by one pixel) it is exact
    interior = labels > 0
    for axis in (1, 2):
        for shift in (-1, 1):
            interior &= np.roll(labels, shift, axis=axis) == labels
    np.testing.assert_array_equal(back[interior], labels[interior])


def _ball_labels(vol: Volume, radius_mm: float = 9.0) -> np.ndarray:
    """A ball in the bone block's place: label 1 in its upper half, 2 in its lower half."""
    nz, ny, nx = vol.hu.shape
    dz, dy, dx = vol.spacing
    zz, yy, xx = np.mgrid[:nz, :ny, :nx]
    cz, cy, cx = (nz - 1) / 2, 60 * 1.5 / dy + 5, 40 * 1.5 / dx
    r2 = ((zz - cz) * dz) ** 2 + ((yy - cy) * dy) ** 2 + ((xx - cx) * dx) ** 2
    return np.where(r2 < radius_mm**2, np.where(zz >= cz, 1, 2), 0).astype(np.uint8)


def _mean_dice(pred: np.ndarray, true: np.ndarray) -> float:
    return float(
        np.mean(
            [
                2 * ((pred == k) & (true == k)).sum() / ((pred == k).sum() + (true == k).sum())
                for k in (1, 2)
            ]
        )
    )


def test_smooth_label_transport_follows_a_round_outline_closer_than_nearest():
    # 0.5 mm source, 2 mm grid: nearest copies each grid cell as a 4 × 4 × 4 block
    vol, _ = phantom_volume(nz=60, ny=240, nx=240, dz=0.5, dxy=0.5, centre=(180, 120))
    truth = _ball_labels(vol)
    prep = prepare_volume(vol, CFG)
    grid = to_grid(truth, prep)
    smooth = labels_from_grid(grid, prep)
    nearest = from_grid(grid, prep)
    assert smooth.shape == truth.shape and smooth.dtype == np.uint8
    assert set(np.unique(smooth)) == {0, 1, 2}
    assert _mean_dice(smooth, truth) > _mean_dice(nearest, truth) + 0.02
    assert labels_from_grid(np.zeros_like(grid), prep).max() == 0


def test_smooth_label_transport_gives_the_same_labels_in_any_storage():
    vol, labels = phantom_volume(dz=2.0, dxy=2.0)
    back = labels_from_grid(to_grid(labels, prep := prepare_volume(vol, CFG)), prep)
    # stored sagittally: the same labels come back, in the stored axis order
    sag = prepare_volume(
        Volume(np.transpose(vol.hu, (2, 1, 0)).copy(), vol.affine[:, [2, 1, 0, 3]], vol.spacing),
        CFG,
    )
    back_sag = labels_from_grid(to_grid(np.transpose(labels, (2, 1, 0)), sag), sag)
    np.testing.assert_array_equal(np.transpose(back_sag, (2, 1, 0)), back)


def test_model_input_channels_are_windowed_neighbours():
    vol, _ = phantom_volume()
    prep = prepare_volume(vol, CFG)
    x = model_input(prep)
    assert x.shape == (prep.n_slices, 64, 64, 4) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    k = prep.n_slices // 2
    # channel 0 = bone window of the plane 2 mm (= one plane) toward the head
    np.testing.assert_allclose(x[k, :, :, 0], apply_window(prep.hu[k - 1], CFG.window("bone")))
    np.testing.assert_allclose(x[k, :, :, 2], apply_window(prep.hu[k + 1], CFG.window("bone")))
    np.testing.assert_allclose(x[0, :, :, 0], x[0, :, :, 1])  # clamped at the end


def test_thin_slices_are_averaged_into_slabs():
    rng = np.random.default_rng(0)
    vol, _ = phantom_volume(dz=0.5, nz=80)
    noisy = vol.hu.astype(np.float32) + rng.normal(0, 50, vol.hu.shape).astype(np.float32)
    prep = prepare_volume(Volume(noisy, vol.affine, vol.spacing), CFG)
    body = prep.hu[prep.n_slices // 2][20:40, 10:25]
    assert body.std() < 50 / 1.5  # averaging ≥ 3 slices lowers the noise


def test_table_outside_body_is_removed_and_source_untouched():
    vol, _ = phantom_volume()
    vol.hu[:, 90:94, :] = 300  # a table under the patient
    before = vol.hu.copy()
    prep = prepare_volume(vol, CFG)
    assert np.array_equal(vol.hu, before)
    assert prep.hu[:, -6:, :].max() <= -999  # the table rows are air now


def test_single_slice_volume():
    vol, _ = phantom_volume(nz=1)
    prep = prepare_volume(vol, CFG)
    assert prep.n_slices == 1
    assert model_input(prep).shape == (1, 64, 64, 4)


def test_config_round_trips_through_the_model_card():
    d = CFG.to_dict()
    assert PreprocessConfig.from_dict(d) == CFG
    assert CFG.fingerprint() == PreprocessConfig.from_dict(d).fingerprint()
    with pytest.raises(ValueError):
        PreprocessConfig(channels=(("lung", 0.0),))


def test_windows():
    assert [w.name for w in DISPLAY_PRESETS] == ["Bone", "Soft tissue", "Brain", "Lung"]
    w = Window(40, 400)
    np.testing.assert_allclose(
        apply_window(np.array([-160.0, 40.0, 240.0, 999.0]), w), [0.0, 0.5, 1.0, 1.0]
    )
    assert header_window({"WindowCenter": [300, 40], "WindowWidth": [1500, 400]}).center == 300
    assert header_window({}) is None
    assert float(apply_window(np.float32(240.0), w)) == 1.0  # scalars work too
