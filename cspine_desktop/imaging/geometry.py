"""Slice geometry: order, spacing, tilt and the voxel → LPS affine of a stack of slices.

Slices are ordered by ImagePositionPatient projected on the slice normal (row × column
direction) — never by InstanceNumber or file name. The z spacing is measured from those
positions; SliceThickness is only used for a single slice.

Tolerances (documented for users in the error messages):
- two slices closer than ``DUPLICATE_MM`` along the normal are duplicates → refused;
- a step longer than ``GAP_FACTOR`` × the median step is a gap (missing slices) → refused;
- steps deviating from the median by more than ``UNIFORM_REL`` are accepted with a warning
  (stacked at the mean spacing) up to ``NONUNIFORM_REFUSE_REL``, and refused beyond;
- positions that are not on one straight line → refused;
- gantry tilt (the stack runs obliquely to the slice normal) is corrected by shifting each
  slice in its plane onto an orthogonal grid (bilinear, outside filled with -1024 HU) and
  reported; tilts above ``MAX_TILT_DEG`` are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InconsistentSeriesError

DUPLICATE_MM = 0.01
GAP_FACTOR = 1.5
UNIFORM_REL = 0.02
NONUNIFORM_REFUSE_REL = 0.25
MAX_TILT_DEG = 30.0
MIN_TILT_SHIFT_PX = 0.1
LINE_TOLERANCE_PX = 0.5


@dataclass
class StackGeometry:
    """Where every slice goes and where the grid sits in the patient.

    order   : indices into the input slice list, sorted along the slice normal.
    affine  : 4×4, voxel index (x=col, y=row, z=slice, 1) → patient LPS mm (orthogonal).
    spacing : (z, y, x) mm.
    shifts  : per sorted slice (column, row) shift in pixels that tilt correction applies
              (output(x, y) = input(x - sx, y - sy)), or None when no resampling is needed.
    tilt_deg: angle between the stack direction and the slice normal.
    """

    order: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    shifts: np.ndarray | None = None
    tilt_deg: float = 0.0
    warnings: list[str] = field(default_factory=list)


def plane_axes(orientation: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row direction, column direction, normal) unit vectors from ImageOrientationPatient."""
    iop = np.asarray(orientation, dtype=np.float64)
    row, col = iop[:3], iop[3:]
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if not (0.9 < nr < 1.1 and 0.9 < nc < 1.1) or abs(float(row @ col)) / (nr * nc) > 0.05:
        raise InconsistentSeriesError(
            "The image orientation (ImageOrientationPatient) is invalid: its directions are "
            "not perpendicular unit vectors."
        )
    row, col = row / nr, col / nc
    normal = np.cross(row, col)
    return row, col, normal / np.linalg.norm(normal)


def is_axial(orientation: tuple[float, ...] | None, max_angle_deg: float = 45.0) -> bool:
    """True when the slice normal is within ``max_angle_deg`` of the patient's long axis."""
    if orientation is None:
        return False
    try:
        normal = plane_axes(orientation)[2]
    except InconsistentSeriesError:
        return False
    return bool(abs(normal[2]) >= math.cos(math.radians(max_angle_deg)))


def stack_geometry(
    orientation: tuple[float, ...],
    positions: np.ndarray,
    pixel_spacing: tuple[float, float],
    thickness: float | None = None,
) -> StackGeometry:
    """Order, spacing, tilt and affine for slices at ``positions`` ([n, 3] LPS mm).

    ``pixel_spacing`` is (between rows, between columns) = (y, x) in mm.
    """
    row, col, normal = plane_axes(orientation)
    dy, dx = (float(v) for v in pixel_spacing)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n = len(pos)
    proj = pos @ normal
    order = np.argsort(proj, kind="stable")
    pos, proj = pos[order], proj[order]
    warnings: list[str] = []
    if n == 1:
        dz = float(thickness) if thickness and thickness > 0 else 1.0
        warnings.append(
            f"Single slice: the z spacing ({dz:g} mm) is taken from "
            + ("SliceThickness." if thickness else "a default, not from the image.")
        )
        return StackGeometry(
            order, _affine(row, col, normal, pos[0], dx, dy, dz), (dz, dy, dx), warnings=warnings
        )
    steps = np.diff(proj)
    _check_duplicates(steps, proj, n)
    median = float(np.median(steps))
    _check_gaps(steps, proj, median, n)
    dz = float(proj[-1] - proj[0]) / (n - 1)
    deviation = float(np.max(np.abs(steps - median))) / median
    if deviation > NONUNIFORM_REFUSE_REL:
        raise InconsistentSeriesError(
            f"Slice spacing is not uniform: steps range from {steps.min():.2f} to "
            f"{steps.max():.2f} mm (more than {NONUNIFORM_REFUSE_REL:.0%} from the median "
            f"{median:.2f} mm); the slices cannot be stacked on one grid."
        )
    if deviation > UNIFORM_REL and float(np.max(np.abs(steps - median))) > 0.01:
        warnings.append(
            f"Slice spacing is slightly non-uniform ({steps.min():.2f}–{steps.max():.2f} mm); "
            f"slices were stacked at the mean spacing {dz:.3f} mm."
        )
    shifts, tilt = _tilt_shifts(pos, proj, row, col, normal, dx, dy)
    if shifts is not None:
        warnings.append(
            f"Gantry tilt of {tilt:.1f}° detected: slices were shifted in their plane onto an "
            "orthogonal grid (bilinear resampling; areas moved in from outside are set to "
            "-1024 HU)."
        )
    return StackGeometry(
        order, _affine(row, col, normal, pos[0], dx, dy, dz), (dz, dy, dx), shifts, tilt, warnings
    )


def _check_duplicates(steps: np.ndarray, proj: np.ndarray, n: int) -> None:
    dup = np.flatnonzero(steps < DUPLICATE_MM)
    if dup.size:
        k = int(dup[0])
        raise InconsistentSeriesError(
            f"{dup.size} slice position(s) occur twice (first at {proj[k]:.2f} mm along the "
            f"slice normal, slices {k + 1} and {k + 2} of {n}); the series mixes overlapping "
            "acquisitions and cannot be stacked."
        )


def _check_gaps(steps: np.ndarray, proj: np.ndarray, median: float, n: int) -> None:
    gaps = np.flatnonzero(steps > GAP_FACTOR * median)
    if gaps.size:
        parts = []
        for k in gaps[:3]:
            missing = max(round(float(steps[k]) / median) - 1, 1)
            parts.append(
                f"about {missing} slice(s) missing between slice {k + 1} and {k + 2} of {n} "
                f"({proj[k]:.1f} → {proj[k + 1]:.1f} mm, a {steps[k]:.1f} mm step where the "
                f"others are {median:.2f} mm)"
            )
        more = f" and {gaps.size - 3} more gaps" if gaps.size > 3 else ""
        raise InconsistentSeriesError("Missing slices: " + "; ".join(parts) + more + ".")


def _tilt_shifts(
    pos: np.ndarray,
    proj: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    normal: np.ndarray,
    dx: float,
    dy: float,
) -> tuple[np.ndarray | None, float]:
    """In-plane shift (pixels) of each sorted slice relative to the first, and the tilt."""
    rel = pos - pos[0]
    along = proj - proj[0]
    inplane = rel - np.outer(along, normal)
    shift_px = np.stack([inplane @ row / dx, inplane @ col / dy], axis=1)
    # fit shift = along * t (a straight oblique line through the first slice)
    t = (along @ shift_px) / max(float(along @ along), 1e-12)
    residual = np.abs(shift_px - np.outer(along, t)).max()
    if residual > LINE_TOLERANCE_PX:
        raise InconsistentSeriesError(
            "Slice positions do not lie on one straight line (they move sideways by up to "
            f"{residual:.1f} pixels from slice to slice); the series cannot be stacked."
        )
    offset_mm = np.hypot(t[0] * dx, t[1] * dy)  # mm sideways per mm along the normal
    tilt = math.degrees(math.atan(offset_mm))
    if np.abs(shift_px).max() < MIN_TILT_SHIFT_PX:
        return None, tilt
    if tilt > MAX_TILT_DEG:
        raise InconsistentSeriesError(
            f"Gantry tilt of {tilt:.1f}° exceeds the {MAX_TILT_DEG:.0f}° that cspine corrects."
        )
    return shift_px, tilt


def _affine(
    row: np.ndarray,
    col: np.ndarray,
    normal: np.ndarray,
    origin: np.ndarray,
    dx: float,
    dy: float,
    dz: float,
) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, 0] = row * dx
    affine[:3, 1] = col * dy
    affine[:3, 2] = normal * dz
    affine[:3, 3] = origin
    return affine
