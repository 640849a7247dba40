"""Compose one displayed slice: windowed CT + label fill/outline + heat-map + edges → RGB.

Pure numpy (and OpenCV through ``edge_map``). Output uint8 [rows, cols, 3], C-contiguous, ready
to wrap in a QImage. The CT values themselves are never modified.
"""

from __future__ import annotations

import numpy as np

from ...imaging.features import edge_map
from ...imaging.windows import apply_window
from ...vertebrae import FRACTURE_RGB
from .geometry import Orientation
from .viewer import ViewerModel

HEAT_FLOOR = 0.15  # heat below this is not drawn (keeps the overlay off healthy bone)
HEAT_LOW_RGB = np.array((255.0, 64.0, 0.0), np.float32)  # ramp: orange → FRACTURE_RGB
HEAT_HIGH_RGB = np.array(FRACTURE_RGB, np.float32)
EDGE_RGB = np.array((0.0, 230.0, 255.0), np.float32)


def _blend(rgb: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """rgb ← rgb·(1−α) + colour·α in place; ``colour`` [3] or [..., 3], ``alpha`` [...]."""
    a = alpha[..., None]
    rgb *= 1.0 - a
    rgb += colour * a


def label_outline(labels: np.ndarray) -> np.ndarray:
    """Boolean [rows, cols]: labelled pixels with a 4-neighbour of a different label."""
    edge = np.zeros(labels.shape, bool)
    diff_v = labels[1:, :] != labels[:-1, :]
    diff_h = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= diff_v
    edge[:-1, :] |= diff_v
    edge[:, 1:] |= diff_h
    edge[:, :-1] |= diff_h
    return edge & (labels > 0)


def render_slice(model: ViewerModel, orientation: Orientation) -> np.ndarray:
    """The current slice of ``orientation`` as uint8 RGB [rows, cols, 3]."""
    if model.volume is None:
        return np.zeros((1, 1, 3), np.uint8)
    plane = model.planes[orientation]
    index = model.slice_index(orientation)
    hu = plane.extract(model.volume.hu, index)
    grey = apply_window(hu, model.window)
    if model.invert:
        grey = 1.0 - grey
    rgb = np.repeat((grey * 255.0)[..., None], 3, axis=2)

    ov = model.overlays
    if ov.labels is not None and ov.labels_visible:
        labels = plane.extract(ov.labels, index)
        colours, alpha = ov.label_lut()
        labels = np.minimum(labels, 7)
        fill = alpha[labels]
        if ov.outline:
            outline = label_outline(labels) & (fill > 0)
            fill = np.where(outline, min(1.0, 2.0 * ov.label_opacity + 0.2), fill)
        if fill.any():
            _blend(rgb, colours[labels], fill)
    if ov.heatmap is not None and ov.heatmap_visible and ov.heatmap_opacity > 0:
        heat = plane.extract(ov.heatmap, index)
        strength = np.clip((heat - HEAT_FLOOR) / (1.0 - HEAT_FLOOR), 0.0, 1.0)
        if strength.any():
            colour = HEAT_LOW_RGB + (HEAT_HIGH_RGB - HEAT_LOW_RGB) * strength[..., None]
            _blend(rgb, colour, strength * ov.heatmap_opacity)
    if ov.edges_visible and ov.edge_opacity > 0 and min(hu.shape) >= 3:
        edges = edge_map(np.ascontiguousarray(hu, dtype=np.float32))
        _blend(rgb, EDGE_RGB, edges * ov.edge_opacity)
    return np.ascontiguousarray(np.clip(rgb, 0, 255).astype(np.uint8))
