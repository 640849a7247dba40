"""Measuring each level of a label map: extent, volume, whether the scan's edge cuts it, and
the vertebral canal its outline encloses.

Labels are uint8 [z, y, x] with 0 background and 1–7 = C1–C7, z increasing toward the feet;
spacing (z, y, x) in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...vertebrae import NAMES
from ..postprocess import enclosed_holes
from .limits import (
    CANAL_GAP_MM,
    CANAL_MAX_MM2,
    CANAL_MIN_MM2,
    CANAL_SLAB_MM,
    CORE_PLANE_SHARE,
    EDGE_CUT_FRACTION,
)


@dataclass(frozen=True)
class LevelMeasure:
    """What one level of a label map measures (mm, ml; planes are indices of the label map)."""

    name: str
    volume_ml: float
    height_mm: float
    width_mm: float
    # the head-to-feet extent of the planes holding at least ``CORE_PLANE_SHARE`` of its largest
    # plane: what a few of its pixels labelled in a neighbour's planes do not stretch
    core_height_mm: float
    depth_mm: float
    first_plane: int
    last_plane: int
    centre_z_mm: float
    cut: str | None  # "top", "bottom" or None
    canal_mm2: float
    canal_centre_mm: tuple[float, float] | None  # (y, x)
    canal_hu: float | None
    bone_hu: float | None = None  # 90th percentile of the HU inside the level's label


_Canal = tuple[float, tuple[float, float] | None, np.ndarray | None]  # area, centre, hole mask
# a canal as measured in one window of planes: area, centre, hole mask, (first, last) plane
_WindowCanal = tuple[float, tuple[float, float] | None, np.ndarray | None, tuple[int, int]]


def _canal(footprint: np.ndarray, spacing_yx: tuple[float, float], close_px: int = 3) -> _Canal:
    """(area mm², centre (y, x) mm, hole mask) of the largest hole in a level's outline, its
    gaps narrower than ``close_px`` pixels closed."""
    closed = cv2.morphologyEx(
        footprint.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((close_px, close_px), np.uint8)
    )
    n, comp, stats, centres = cv2.connectedComponentsWithStats(
        enclosed_holes(closed).astype(np.uint8), connectivity=4
    )
    if n <= 1:
        return 0.0, None, None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = float(stats[i, cv2.CC_STAT_AREA]) * spacing_yx[0] * spacing_yx[1]
    cx, cy = centres[i]
    return area, (float(cy) * spacing_yx[0], float(cx) * spacing_yx[1]), comp == i


def _level_canal(
    lab: np.ndarray,
    level: int,
    z0: int,
    z1: int,
    dz: float,
    spacing_yx: tuple[float, float],
    with_c2: bool,
    middle: float,
) -> _WindowCanal:
    """(area mm², centre, hole mask, (first, last) plane) of the level's canal: of the holes of
    a plausible size among the whole outline and its slabs, the one measured nearest the
    level's ``middle`` plane (the largest of those equally near), else the whole outline's.
    Every level's canal is so measured at its middle, and the step from one level to the next
    follows the canal, not which end of a tilted vertebra showed the largest hole. Where no
    outline closes a ring, gaps up to ``CANAL_GAP_MM`` are bridged and the search repeated."""
    n = max(1, round(CANAL_SLAB_MM / dz))
    windows = [(z0, z1)] + [(a, min(a + n - 1, z1)) for a in range(z0, max(z0, z1 - n + 1) + 1)]
    if with_c2:
        windows.append((0, lab.shape[0] - 1))
    footprints = []
    for a, b in windows:
        part = lab[a : b + 1]
        footprint = (part == level).any(axis=0)
        if with_c2:
            footprint |= (part == 2).any(axis=0)
        footprints.append(footprint)

    def measured(close_px: int) -> list[_WindowCanal]:
        return [
            (*_canal(fp, spacing_yx, close_px), w)
            for fp, w in zip(footprints, windows, strict=True)
        ]

    def nearest(found: list[_WindowCanal]) -> _WindowCanal | None:
        good = [f for f in found if CANAL_MIN_MM2 <= f[0] <= CANAL_MAX_MM2]
        if not good:
            return None
        return min(good, key=lambda f: (abs((f[3][0] + f[3][1]) / 2.0 - middle), -f[0]))

    found = measured(3)
    best = nearest(found)
    if best is None:  # no ring closed: bridge gaps up to CANAL_GAP_MM (an odd kernel, pixels)
        wide = 2 * round(CANAL_GAP_MM / (2.0 * min(spacing_yx))) + 1
        best = nearest(measured(wide)) if wide > 3 else None
    return found[0] if best is None else best


def _edge_cut(area: np.ndarray) -> str | None:
    """``"top"`` or ``"bottom"`` when a level's pixels per plane ``area`` reach the first or
    last plane with at least ``EDGE_CUT_FRACTION`` of its largest plane, else None."""
    largest = float(area.max())
    if area[0] > 0 and area[0] >= EDGE_CUT_FRACTION * largest:
        return "top"
    if area[-1] > 0 and area[-1] >= EDGE_CUT_FRACTION * largest:
        return "bottom"
    return None


def edge_cut_levels(labels: np.ndarray, min_voxels: int = 10) -> dict[str, str]:
    """The levels (with at least ``min_voxels`` pixels on some plane) that the top or bottom
    edge of the scan cuts, as :func:`measure_levels` finds them: name → ``"top"``/``"bottom"``."""
    flat = np.asarray(labels).reshape(labels.shape[0], -1)
    out = {}
    for i, name in enumerate(NAMES):
        area = (flat == i + 1).sum(axis=1)
        cut = _edge_cut(area) if area.max() >= min_voxels else None
        if cut:
            out[name] = cut
    return out


def measure_levels(
    labels: np.ndarray,
    spacing: tuple[float, float, float],
    hu: np.ndarray | None = None,
    min_voxels: int = 10,
) -> dict[str, LevelMeasure]:
    """Measure every level with at least ``min_voxels`` pixels on some plane.

    The canal is looked for in the outline of the whole level and of each ``CANAL_SLAB_MM``
    slab of it (a tilted or turned vertebra's whole outline can cover its own canal); the hole
    of a plausible size measured nearest the level's middle counts. C1's is looked for in the
    outline of C1 and C2 together: the dens of C2 rises through the C1 ring, and a thin ring is
    often segmented with gaps.
    """
    lab = np.asarray(labels)
    hu_arr = None if hu is None else np.asarray(hu)
    dz, dy, dx = (float(s) for s in spacing)
    nz = lab.shape[0]
    flat = lab.reshape(nz, -1)
    areas = np.stack([(flat == v).sum(axis=1) for v in range(1, len(NAMES) + 1)], axis=1)
    out: dict[str, LevelMeasure] = {}
    for i, name in enumerate(NAMES):
        planes = np.nonzero(areas[:, i] >= min_voxels)[0]
        if planes.size == 0:
            continue
        z0, z1 = int(planes[0]), int(planes[-1])
        mask = lab[z0 : z1 + 1] == i + 1
        cols = np.nonzero(mask.any(axis=(0, 1)))[0]
        rows = np.nonzero(mask.any(axis=(0, 2)))[0]
        largest = float(areas[:, i].max())
        core = np.nonzero(areas[:, i] >= max(min_voxels, CORE_PLANE_SHARE * largest))[0]
        cut = _edge_cut(areas[:, i])
        with_c2 = name == "C1" and areas[:, 1].max() >= min_voxels
        middle = float((areas[:, i] * np.arange(nz)).sum() / max(areas[:, i].sum(), 1))
        area, centre, hole, (h0, h1) = _level_canal(
            lab, i + 1, z0, z1, dz, (dy, dx), with_c2, middle
        )
        canal_hu = bone_hu = None
        if hu_arr is not None:
            bone_hu = float(np.percentile(hu_arr[z0 : z1 + 1][mask], 90))
            if hole is not None:
                canal_hu = float(np.median(hu_arr[h0 : h1 + 1][:, hole]))
        zc = middle * dz
        out[name] = LevelMeasure(
            name=name,
            volume_ml=float(areas[:, i].sum()) * dz * dy * dx / 1000.0,
            height_mm=(z1 - z0 + 1) * dz,
            core_height_mm=(int(core[-1]) - int(core[0]) + 1) * dz,
            width_mm=(int(cols[-1]) - int(cols[0]) + 1) * dx,
            depth_mm=(int(rows[-1]) - int(rows[0]) + 1) * dy,
            first_plane=z0,
            last_plane=z1,
            centre_z_mm=zc,
            cut=cut,
            canal_mm2=area,
            canal_centre_mm=centre,
            canal_hu=canal_hu,
            bone_hu=bone_hu,
        )
    return out
