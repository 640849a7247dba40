"""Qt-free viewer state: geometry, crosshair, window/level, zoom, probing."""

from __future__ import annotations

import numpy as np
import pytest
from gui_support import coded_volume

from cspine_desktop.gui.models import Orientation, SlicePlane, ViewerModel
from cspine_desktop.imaging.windows import DISPLAY_PRESETS

A, S, C = Orientation.AXIAL, Orientation.SAGITTAL, Orientation.CORONAL


def test_axial_plane_is_the_stored_slice_with_standard_orientation():
    vol = coded_volume()
    plane = SlicePlane.of(vol, A)
    assert plane.image_shape == (16, 10)
    assert plane.pixel_mm == (0.5, 0.5)
    np.testing.assert_array_equal(plane.extract(vol.hu, 3), vol.hu[3])


def test_sagittal_and_coronal_put_the_head_on_top():
    vol = coded_volume(head_first=True)  # slice index grows toward the head
    sag = SlicePlane.of(vol, S)
    img = sag.extract(vol.hu, 4)
    assert img.shape == (12, 16)  # rows = z, columns = y
    assert img[0, 0] == vol.hu[11, 0, 4]  # top row = most superior slice
    cor = SlicePlane.of(vol, C)
    assert cor.extract(vol.hu, 2)[0, 5] == vol.hu[11, 2, 5]
    # feet-first stacks are already top-down
    vol2 = coded_volume(head_first=False)
    assert SlicePlane.of(vol2, S).extract(vol2.hu, 4)[0, 0] == vol2.hu[0, 0, 4]


def test_columns_running_to_patient_right_are_flipped():
    vol = coded_volume()
    vol.affine[0, 0] = -0.5
    img = SlicePlane.of(vol, A).extract(vol.hu, 0)
    assert img[0, 0] == vol.hu[0, 0, -1]


@pytest.mark.parametrize("orientation", list(Orientation))
def test_pixel_to_voxel_round_trip_matches_extracted_values(orientation):
    vol = coded_volume()
    plane = SlicePlane.of(vol, orientation)
    img = plane.extract(vol.hu, 3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        r, c = rng.integers(0, img.shape[0]), rng.integers(0, img.shape[1])
        z, y, x = (int(v) for v in plane.to_voxel(r, c, 3))
        assert vol.hu[z, y, x] == img[r, c]
        assert plane.to_display((z, y, x)) == (r, c)


def test_open_centres_crosshair_and_uses_header_window():
    model = ViewerModel()
    model.set_volume(coded_volume(meta={"WindowCenter": "300", "WindowWidth": ["1500", "400"]}))
    assert model.cursor == (6, 8, 5)
    assert (model.window.center, model.window.width) == (300.0, 1500.0)
    model.set_volume(coded_volume())
    assert model.window == DISPLAY_PRESETS[0]  # no header window → bone


def test_presets_are_the_ux_values_in_order():
    model = ViewerModel()
    model.set_volume(coded_volume())
    got = []
    for n in (1, 2, 3, 4):
        model.apply_preset(n)
        got.append((model.window.width, model.window.center))
    assert got == [(2500, 480), (400, 40), (80, 40), (1500, -600)]
    with pytest.raises(ValueError):
        model.apply_preset(5)


def test_slices_clamp_and_share_one_crosshair():
    model = ViewerModel()
    model.set_volume(coded_volume())
    events = []
    model.changed.connect(events.append)
    model.step_slice(A, 100)
    assert model.slice_index(A) == 11 and events == ["cursor"]
    model.first_slice(S)
    assert model.cursor == (11, 8, 0)
    model.last_slice(C)
    assert model.cursor == (11, 15, 0)
    model.step_slice(A, -3)
    assert model.slice_index(A) == 8


def test_window_drag_invert_zoom_pan_and_reset():
    model = ViewerModel()
    model.set_volume(coded_volume())
    w0 = model.window
    model.drag_window(40, 0)
    assert model.window.width > w0.width and model.window.center == w0.center
    model.drag_window(0, 20)
    assert model.window.center > w0.center
    model.drag_window(-100000, 0)
    assert model.window.width == 1.0  # never zero or negative
    model.toggle_invert()
    model.drag_zoom(S, -50)
    assert model.views[S].zoom > 1.0 and model.views[A].zoom == 1.0
    model.drag_pan(A, 5, -3)
    assert (model.views[A].pan_x, model.views[A].pan_y) == (5, -3)
    model.reset()
    assert model.window == w0 and not model.invert
    assert model.views[S].zoom == 1.0 and model.views[A].pan_x == 0


def test_probe_reports_voxel_lps_and_hu():
    vol = coded_volume()
    model = ViewerModel()
    model.set_volume(vol)
    p = model.probe(A, 4, 7)
    assert p.voxel == (6, 4, 7)
    assert p.hu == pytest.approx(vol.hu[6, 4, 7])
    assert p.lps_mm == pytest.approx((-10 + 7 * 0.5, 20 + 4 * 0.5, 30 + 6 * 2.0))
    assert "HU 6041" in p.describe() and "axial 7/12" in p.describe()
    assert model.probe(A, -1, 0) is None and model.probe(A, 0, 10) is None
