"""Issue items 5–7: measurement tools in mm / degrees / HU that stay with the study, level
names on the sagittal and coronal images, thick-slab MIP/MinIP, PageUp/PageDown, and a
heat-map colour scale that cannot be taken for a vertebra colour."""

from __future__ import annotations

import numpy as np
import pytest
from factories.dicom_series import write_ct_series
from fake_analysis import FakeHandler
from gui_support import neck_volume, shown_viewer
from PySide6.QtCore import Qt
from qt_input import drag

from cspine_desktop.gui.models import Orientation, ViewerModel
from cspine_desktop.gui.models.levels import level_positions
from cspine_desktop.gui.models.measurements import describe
from cspine_desktop.gui.models.render import render_slice, window_grey
from cspine_desktop.vertebrae import EDGE_RGB, HEAT_SCALE_RGB, VERTEBRAE, heat_rgb

A, S, C = Orientation.AXIAL, Orientation.SAGITTAL, Orientation.CORONAL
LEFT = Qt.MouseButton.LeftButton
MIN_DELTA_E = 40.0


@pytest.fixture
def viewer(qtbot):
    return shown_viewer(qtbot, 1000, 700)


def _at(view, row, col):
    p = view.pixel_to_widget(row, col)
    return p.x(), p.y()


def _draw(view, *segments):
    for a, b in segments:
        drag(view, LEFT, _at(view, *a), _at(view, *b))


def _texts(viewer, orientation):
    model = viewer.model
    plane = model.planes[orientation]
    hu = plane.extract(model.volume.hu, model.slice_index(orientation))
    return [describe(m, plane, hu) for m in model.measurements.items]


def test_5_ruler_angle_cobb_and_roi_measure_in_mm_degrees_and_hu(viewer, qtbot):
    sag, ax = viewer.views[S], viewer.views[A]
    bar = viewer.toolbar
    qtbot.mouseClick(bar.tool_buttons["ruler"], LEFT)
    # sagittal pixels are 2 mm (rows, slices) by 0.8 mm (columns): both rulers are 20 mm
    _draw(sag, ((10, 5), (10, 30)), ((5, 20), (15, 20)))
    assert _texts(viewer, S) == ["20.0 mm", "20.0 mm"]
    qtbot.mouseClick(bar.tool_buttons["angle"], LEFT)
    _draw(sag, ((10, 10), (20, 10)), ((20, 20), (20, 20)))  # arm up, then a click to the right
    assert _texts(viewer, S)[-1] == "90.0°"
    qtbot.mouseClick(bar.tool_buttons["cobb"], LEFT)
    # one line level, the other rising 10 rows (20 mm) over 25 columns (20 mm): 45°
    _draw(sag, ((5, 5), (5, 30)), ((30, 5), (20, 30)))
    assert _texts(viewer, S)[-1] == "Cobb 45.0°"
    qtbot.mouseClick(bar.tool_buttons["roi"], LEFT)
    # an ellipse inside the soft-tissue cylinder, clear of the bone: 40 HU, SD 0
    _draw(ax, ((4, 18), (10, 30)))
    roi = _texts(viewer, A)[-1]
    assert roi.startswith("mean 40 HU, SD 0,") and roi.endswith("mm²")
    qtbot.mouseClick(bar.tool_buttons["navigate"], LEFT)
    before = viewer.model.window
    drag(sag, LEFT, (100, 100), (160, 100))
    assert viewer.model.window != before  # the left button does window/level again
    assert len(viewer.model.measurements.items) == 5
    qtbot.mouseClick(bar.clear_button, LEFT)
    assert viewer.model.measurements.items == []


def test_5_measurements_stay_with_the_study(qtbot, make_workstation, tmp_path):
    from cspine_desktop.services.annotations import load_annotations

    write_ct_series(tmp_path / "study", n_slices=14, rows=32, cols=32, spacing=(2.0, 2.5, 2.5))
    window, services = make_workstation(FakeHandler())
    with qtbot.waitSignal(window.controller.analysis_finished, timeout=20000):
        window.open_path(tmp_path / "study")
    study_id = window.controller.current.study_id
    sag = window.viewer.views[S]
    qtbot.mouseClick(window.viewer.toolbar.tool_buttons["ruler"], LEFT)
    _draw(sag, ((2, 2), (2, 12)))
    qtbot.waitUntil(lambda: len(load_annotations(services.studies, study_id)) == 1, timeout=5000)
    window.viewer_model.set_volume(None)
    assert window.viewer_model.measurements.items == []
    table = window.worklist.table
    rect = table.visualRect(table.model().index(0, 0))
    with qtbot.waitSignal(window.controller.analysis_finished, timeout=20000):
        qtbot.mouseClick(table.viewport(), LEFT, pos=rect.center())
        qtbot.mouseDClick(table.viewport(), LEFT, pos=rect.center())
    qtbot.waitUntil(lambda: len(window.viewer_model.measurements.items) == 1, timeout=5000)
    assert _texts(window.viewer, S) == ["25.0 mm"]  # 10 columns of 2.5 mm


def test_6_level_names_slab_projection_and_page_keys(viewer, qtbot):
    model = viewer.model
    for o in (S, C):
        spots = level_positions(model.overlays.labels, model.planes[o])
        assert [label for label, _r, _c in spots] == list(range(1, 8))
        rows = [r for _l, r, _c in spots]
        assert rows == sorted(rows)  # C1 at the top of the image … C7 at the bottom
    assert level_positions(model.overlays.labels, model.planes[A]) == []
    # the sagittal view paints C5's name in C5's colour beside the spine
    image = viewer.views[S].grab().toImage()
    _label, row, col = level_positions(model.overlays.labels, model.planes[S])[4]
    p = viewer.views[S].pixel_to_widget(row, col)
    rgb = VERTEBRAE[4].rgb
    found = any(
        image.pixelColor(int(p.x()) + dx, int(p.y()) + dy).getRgb()[:3] == rgb
        for dx in range(0, 40)
        for dy in range(-8, 8)
    )
    assert found, "no C5 label drawn beside C5"
    # PageDown / PageUp: ten slices on / back in the active (sagittal) view
    qtbot.mouseClick(viewer.views[S], LEFT)
    start = model.slice_index(S)
    qtbot.keyClick(viewer, Qt.Key.Key_PageDown)
    assert model.slice_index(S) == min(start + 10, model.planes[S].n_slices - 1)
    qtbot.keyClick(viewer, Qt.Key.Key_PageUp)
    assert model.slice_index(S) == start
    # thick-slab MIP with the keyboard on the slab chooser
    combo = viewer.toolbar.slab_mode
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert model.slab_mode == "mip"
    model.set_slice(A, 24)  # a disc space: no bone in the slice itself
    lo, hi = model.slab_range(A)
    assert hi - lo + 1 == 5  # 10 mm of 2 mm slices
    plane = model.planes[A]
    expected = np.max([plane.extract(model.volume.hu, i) for i in range(lo, hi + 1)], axis=0)
    model.overlays.set_labels_visible(False)
    model.overlays.set_heatmap_visible(False)
    shown = render_slice(model, A)[..., 0]
    assert (shown == window_grey(expected, model.window, False)).all()
    assert (expected >= 700).any() and not (plane.extract(model.volume.hu, 24) >= 700).any()
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert model.slab_mode == "minip"
    assert "MinIP 10 mm" in model.slab_caption(A)


def _lab(rgb) -> np.ndarray:
    c = np.asarray(rgb, float) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_7_heat_scale_is_far_from_every_vertebra_colour():
    scale = [heat_rgb(t) for t in np.linspace(0, 1, 51)]
    assert scale[0] == HEAT_SCALE_RGB[0] and scale[-1] == HEAT_SCALE_RGB[1]
    worst = min(np.linalg.norm(_lab(h) - _lab(v.rgb)) for h in scale for v in VERTEBRAE)
    assert worst >= MIN_DELTA_E, f"heat colour only ΔE {worst:.1f} from a vertebra colour"
    assert min(np.linalg.norm(_lab(h) - _lab(EDGE_RGB)) for h in scale) >= MIN_DELTA_E
    # the old orange → yellow ramp would not have passed: the check can fail
    old = min(np.linalg.norm(_lab((255, 64, 0)) - _lab(v.rgb)) for v in VERTEBRAE)
    assert old < MIN_DELTA_E


def test_7_heat_below_the_threshold_is_off_until_asked_and_the_bar_shows_it(qtbot):
    from cspine_desktop.gui.panels.overlay_panel import OverlayPanel

    model = ViewerModel()
    vol, _labels, heat = neck_volume()
    heat = np.where(heat > 0, 0.3, 0.0).astype(np.float32)  # all of it below a 0.5 threshold
    model.set_volume(vol)
    model.overlays.set_arrays(None, heat)
    model.overlays.set_heat_threshold(0.5)
    panel = OverlayPanel(model.overlays)
    qtbot.addWidget(panel)
    panel.show()
    z = int(np.nonzero(heat.any(axis=(1, 2)))[0][0])
    model.set_slice(A, z)
    plain = render_slice(model, A)
    assert (plain[..., 0] == plain[..., 2]).all()  # grey only: nothing below 0.5 is drawn
    assert panel.heat_scale.threshold_text() == "threshold 0.50"
    qtbot.mouseClick(panel.heat_below, LEFT)
    assert model.overlays.heat_below_threshold
    shown = render_slice(model, A)
    where = heat[z] > 0
    # drawn in the blue→cyan scale: blue above red, never yellow/orange
    assert (shown[..., 2][where].astype(int) > shown[..., 0][where].astype(int)).all()
