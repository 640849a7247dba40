"""Where to write "C1"…"C7" on a sagittal or coronal view: each level's centre row and the
column just past its right edge, from the label map projected through the volume (so the
labels stay put while the reader scrolls). Qt-free."""

from __future__ import annotations

import numpy as np

from ...vertebrae import VERTEBRAE
from .geometry import Orientation, SlicePlane


def level_positions(labels: np.ndarray, plane: SlicePlane) -> list[tuple[int, float, float]]:
    """(label, row, col) in displayed pixels for each level present, for a sagittal or
    coronal ``plane`` (the axial view gets none)."""
    if plane.orientation == Orientation.AXIAL:
        return []
    present = labels > 0
    if not present.any():
        return []
    axis = plane.orientation.index_axis
    nz = np.nonzero(present.any(axis=tuple(a for a in range(3) if a != axis)))[0]
    lo, hi = int(nz[0]), int(nz[-1])
    sub = np.take(labels, range(lo, hi + 1), axis=axis)
    out = []
    for v in VERTEBRAE:
        proj = (sub == v.label).any(axis=axis)  # [rows, cols] in array order
        if not proj.any():
            continue
        shown = plane.extract(proj[np.newaxis] if axis == 0 else np.expand_dims(proj, axis), 0)
        rows, cols = np.nonzero(shown)
        out.append((v.label, float(rows.mean()), float(cols.max()) + 2.0))
    return out
