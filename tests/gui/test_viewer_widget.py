"""The three-view viewer: mouse and keys change the view as a radiologist expects."""

from __future__ import annotations

import numpy as np
import pytest
from gui_support import shown_viewer
from PySide6.QtCore import Qt
from qt_input import click, drag, hover, wheel

from cspine_desktop.gui.models import Orientation

A, S, C = Orientation.AXIAL, Orientation.SAGITTAL, Orientation.CORONAL


@pytest.fixture
def viewer(qtbot):
    return shown_viewer(qtbot, 900, 600)


def _centre(view):
    return view.width() / 2, view.height() / 2


def test_number_keys_apply_presets_and_change_the_pixels(viewer, qtbot):
    sag = viewer.views[S]
    before = sag.current_image().copy()
    seen = []
    for key, expected in zip(
        (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_4),
        ((2500, 480), (400, 40), (80, 40), (1500, -600)),
    ):
        qtbot.keyClick(viewer, key)
        seen.append((viewer.model.window.width, viewer.model.window.center))
        assert seen[-1] == expected
    assert not np.array_equal(before, sag.current_image())


def test_arrow_home_end_move_through_slices_of_the_active_view(viewer, qtbot):
    model = viewer.model
    click(viewer.views[A], _centre(viewer.views[A]))
    assert model.active == A
    z = model.slice_index(A)
    qtbot.keyClick(viewer, Qt.Key.Key_Down)
    assert model.slice_index(A) == z + 1
    qtbot.keyClick(viewer, Qt.Key.Key_Up)
    qtbot.keyClick(viewer, Qt.Key.Key_Up)
    assert model.slice_index(A) == z - 1
    qtbot.keyClick(viewer, Qt.Key.Key_Home)
    assert model.slice_index(A) == 0
    qtbot.keyClick(viewer, Qt.Key.Key_End)
    assert model.slice_index(A) == model.volume.hu.shape[0] - 1


def test_wheel_steps_one_slice_per_notch_in_the_view_under_the_mouse(viewer):
    model = viewer.model
    x0, z0 = model.slice_index(S), model.slice_index(A)
    wheel(viewer.views[S], _centre(viewer.views[S]), -1)  # toward the user = next
    assert model.slice_index(S) == x0 + 1 and model.active == S
    wheel(viewer.views[S], _centre(viewer.views[S]), 3)
    assert model.slice_index(S) == x0 - 2
    assert model.slice_index(A) == z0  # other planes untouched


def test_left_drag_changes_window_level_and_i_space_invert_and_reset(viewer, qtbot):
    model = viewer.model
    w0 = model.window
    ax = viewer.views[A]
    drag(ax, Qt.MouseButton.LeftButton, (100, 100), (160, 130))
    assert model.window.width > w0.width and model.window.center > w0.center
    before = ax.current_image().copy()
    qtbot.keyClick(viewer, Qt.Key.Key_I)
    assert model.invert
    assert not np.array_equal(before, ax.current_image())
    qtbot.keyClick(viewer, Qt.Key.Key_Space)
    assert model.window == w0 and not model.invert


def test_middle_drag_pans_and_right_drag_zooms_one_view(viewer):
    model = viewer.model
    cor = viewer.views[C]
    drag(cor, Qt.MouseButton.MiddleButton, (50, 50), (80, 40))
    assert (model.views[C].pan_x, model.views[C].pan_y) == pytest.approx((30, -10))
    drag(cor, Qt.MouseButton.RightButton, (50, 120), (50, 60))  # up = zoom in
    assert model.views[C].zoom > 1.2
    assert model.views[A].zoom == 1.0 and model.views[A].pan_x == 0
    drag(cor, Qt.MouseButton.RightButton, (50, 60), (50, 200))
    assert model.views[C].zoom < 1.0


def test_click_moves_the_shared_crosshair_and_hover_reports_hu(viewer, qtbot):
    model = viewer.model
    ax = viewer.views[A]
    target = ax.pixel_to_widget(10, 30)  # displayed row 10, column 30
    click(ax, (target.x(), target.y()))
    z = model.slice_index(A)
    assert model.cursor == (z, 10, 30)
    assert model.slice_index(S) == 30 and model.slice_index(C) == 10
    with qtbot.waitSignal(viewer.probed) as sig:
        hover(ax, (target.x(), target.y()))
    probe = sig.args[0]
    assert probe.voxel == (z, 10, 30)
    assert probe.hu == model.volume.hu[z, 10, 30]


def test_sagittal_is_drawn_with_physical_aspect(viewer):
    sag = viewer.views[S]
    t = sag.image_transform()
    # sagittal pixels are 2.0 mm (rows = z) by 0.8 mm (columns = y)
    assert t.m22() / t.m11() == pytest.approx(2.0 / 0.8)
