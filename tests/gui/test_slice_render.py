"""Rendering one slice: window, invert, label fill/outline, visibility, heat-map, edges."""

from __future__ import annotations

import numpy as np
from gui_support import neck_volume

from cspine_desktop.gui.models import Orientation, ViewerModel
from cspine_desktop.gui.models.render import label_outline, render_slice
from cspine_desktop.imaging.windows import Window
from cspine_desktop.vertebrae import VERTEBRAE

A, S = Orientation.AXIAL, Orientation.SAGITTAL


def _model_on_c5():
    vol, labels, heat = neck_volume()
    model = ViewerModel()
    model.set_volume(vol)
    model.overlays.set_arrays(labels, heat)
    z5 = int(np.median(np.nonzero(labels == 5)[0]))
    model.set_slice(A, z5)
    return model, labels, heat, z5


def test_window_maps_hu_to_grey_and_invert_reverses_it():
    vol, _, _ = neck_volume()
    model = ViewerModel()
    model.set_volume(vol)
    model.set_window(Window(40, 400))
    img = render_slice(model, A)
    assert img.dtype == np.uint8 and img.shape == (48, 48, 3)
    assert tuple(img[24, 5]) == (127, 127, 127)  # soft tissue 40 HU = window centre
    assert tuple(img[0, 0]) == (0, 0, 0)  # air
    model.toggle_invert()
    assert tuple(render_slice(model, A)[0, 0]) == (255, 255, 255)


def test_label_fill_uses_vertebra_colour_and_respects_visibility():
    model, _labels, _, _z5 = _model_on_c5()
    model.overlays.set_heatmap_visible(False)
    model.overlays.set_outline(False)
    img = render_slice(model, A).astype(int)
    centre = img[24, 24]
    c5 = np.array(VERTEBRAE[4].rgb)
    grey = 255 * (700 - model.window.lower) / model.window.width
    expected = grey * 0.6 + c5 * 0.4
    assert np.allclose(centre, expected, atol=2)
    model.overlays.set_vertebra_visible(5, False)
    hidden = render_slice(model, A).astype(int)[24, 24]
    assert np.allclose(hidden, round(grey), atol=1)
    model.overlays.set_vertebra_visible(5, True)
    model.overlays.set_label_opacity(0.0)
    assert np.allclose(render_slice(model, A).astype(int)[24, 24], round(grey), atol=1)


def test_outline_is_drawn_stronger_than_the_fill():
    model, labels, _, z5 = _model_on_c5()
    model.overlays.set_heatmap_visible(False)
    edge = label_outline(labels[z5])
    rr, cc = np.nonzero(edge)
    img = render_slice(model, A).astype(int)
    c5 = np.array(VERTEBRAE[4].rgb)
    d_edge = np.abs(img[rr[0], cc[0]] - c5).sum()
    d_fill = np.abs(img[24, 24] - c5).sum()
    assert d_edge < d_fill
    assert not edge[24, 24] and edge.sum() > 10


def test_heatmap_toggle_and_opacity_change_only_hot_pixels():
    model, _labels, heat, z5 = _model_on_c5()
    on = render_slice(model, A).astype(int)
    model.overlays.set_heatmap_visible(False)
    off = render_slice(model, A).astype(int)
    changed = np.any(on != off, axis=2)
    hot = heat[z5] > 0.15
    assert changed.any()
    assert not changed[~hot].any()  # cold pixels never touched by the heat layer
    assert (on[hot][:, 2] > off[hot][:, 2]).all()  # hot pixels turn toward the blue scale
    model.overlays.set_heatmap_visible(True)
    model.overlays.set_heatmap_opacity(0.0)
    assert np.array_equal(render_slice(model, A).astype(int), off)


def test_edge_layer_is_optional_and_draws_on_bone_borders():
    model, *_ = _model_on_c5()
    base = render_slice(model, S)
    model.overlays.set_edges_visible(True)
    edged = render_slice(model, S)
    assert not np.array_equal(base, edged)
    model.overlays.set_edges_visible(False)
    assert np.array_equal(base, render_slice(model, S))


def test_original_hu_untouched_by_rendering():
    model, *_ = _model_on_c5()
    before = model.volume.hu.copy()
    model.overlays.set_edges_visible(True)
    for o in Orientation:
        render_slice(model, o)
    assert np.array_equal(before, model.volume.hu)
