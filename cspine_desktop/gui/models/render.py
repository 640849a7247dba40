"""Compose one displayed slice: windowed CT + label fill/outline + heat-map + edges → RGB.

Pure numpy (and OpenCV through ``edge_map``). Output uint8 [rows, cols, 3], C-contiguous, ready
to wrap in a QImage. The CT values themselves are never modified.

Fast enough to scroll a 512² study: int16 HU go through a 64 Ki-entry lookup table (one gather
instead of float arithmetic), and overlays are blended only on the pixels they cover.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...imaging.features import edge_map
from ...imaging.windows import Window, apply_window
from ...vertebrae import EDGE_RGB as EDGE_COLOUR
from ...vertebrae import HEAT_SCALE_RGB
from .geometry import Orientation
from .viewer import ViewerModel

HEAT_LOW_RGB = np.array(HEAT_SCALE_RGB[0], np.float32)  # the colour of probability 0 …
HEAT_HIGH_RGB = np.array(HEAT_SCALE_RGB[1], np.float32)  # … and of 1 (the colour bar's ends)
EDGE_RGB = np.array(EDGE_COLOUR, np.float32)


@lru_cache(maxsize=8)
def _int16_lut(center: float, width: float, invert: bool) -> np.ndarray:
    """uint8 grey for every int16 HU, indexed by ``hu.view(uint16) ^ 0x8000``."""
    hu = np.arange(-32768, 32768, dtype=np.float32)
    grey = apply_window(hu, Window(center, width))
    if invert:
        grey = 1.0 - grey
    return (grey * 255.0).astype(np.uint8)


def window_grey(hu: np.ndarray, window: Window, invert: bool) -> np.ndarray:
    """uint8 [rows, cols] of a HU slice through ``window`` (inverted if asked)."""
    if hu.dtype == np.int16:
        lut = _int16_lut(float(window.center), float(window.width), bool(invert))
        return lut[np.ascontiguousarray(hu).view(np.uint16) ^ np.uint16(0x8000)]
    grey = apply_window(hu, window)
    if invert:
        grey = 1.0 - grey
    return (grey * 255.0).astype(np.uint8)


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


def _blend_at(flat: np.ndarray, where: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """flat[where] ← flat·(1−α) + colour·α (flat: uint8 [n, 3]; colour [3] or [k, 3]; α [k])."""
    base = flat[where].astype(np.float32)
    a = alpha[:, None]
    flat[where] = (base * (1.0 - a) + colour * a + 0.5).astype(np.uint8)


def slab_slice(model: ViewerModel, orientation: Orientation) -> np.ndarray:
    """The displayed HU slice: the slice itself, or the thick-slab MIP / MinIP around it."""
    volume = model.volume
    if volume is None:
        raise ValueError("There is no volume to take a slice of.")
    plane = model.planes[orientation]
    lo, hi = model.slab_range(orientation)
    hu = np.ascontiguousarray(plane.extract(volume.hu, lo))
    if hi > lo:
        reduce = np.maximum if model.slab_mode == "mip" else np.minimum
        for i in range(lo + 1, hi + 1):
            reduce(hu, plane.extract(volume.hu, i), out=hu)
    return hu


def render_slice(model: ViewerModel, orientation: Orientation) -> np.ndarray:
    """The current slice of ``orientation`` as uint8 RGB [rows, cols, 3]."""
    if model.volume is None:
        return np.zeros((1, 1, 3), np.uint8)
    plane = model.planes[orientation]
    index = model.slice_index(orientation)
    # strided views (sagittal/coronal) are copied once; every later pass is then contiguous
    hu = slab_slice(model, orientation)
    grey = window_grey(hu, model.window, model.invert)
    rgb = np.empty((*grey.shape, 3), np.uint8)
    rgb[...] = grey[..., None]
    flat = rgb.reshape(-1, 3)

    ov = model.overlays
    if ov.labels is not None and ov.labels_visible:
        labels = np.minimum(plane.extract(ov.labels, index), 7)  # a contiguous copy
        colours, alpha = ov.label_lut()
        fill = alpha[labels]
        if ov.outline:
            outline = label_outline(labels) & (fill > 0)
            fill[outline] = min(1.0, 2.0 * ov.label_opacity + 0.2)
        where = np.flatnonzero(fill > 0)
        if where.size:
            lab = labels.reshape(-1)[where]
            _blend_at(flat, where, colours[lab], fill.reshape(-1)[where])
    if ov.heatmap is not None and ov.heatmap_visible and ov.heatmap_opacity > 0:
        heat = np.ascontiguousarray(plane.extract(ov.heatmap, index)).reshape(-1)
        floor = ov.heat_floor  # the threshold, unless the reader shows what lies below it
        where = np.flatnonzero(heat >= floor)
        if where.size:
            h = np.clip(heat[where], 0.0, 1.0)
            colour = HEAT_LOW_RGB + (HEAT_HIGH_RGB - HEAT_LOW_RGB) * h[:, None]  # absolute scale
            strength = 0.35 + 0.65 * np.clip((h - floor) / max(1e-6, 1.0 - floor), 0.0, 1.0)
            _blend_at(flat, where, colour, strength * ov.heatmap_opacity)
    if ov.edges_visible and ov.edge_opacity > 0 and min(hu.shape) >= 3:
        edges = edge_map(hu.astype(np.float32)).reshape(-1)
        where = np.flatnonzero(edges > 0)
        if where.size:
            _blend_at(flat, where, EDGE_RGB, edges[where] * ov.edge_opacity)
    return rgb
