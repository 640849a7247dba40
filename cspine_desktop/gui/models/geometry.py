"""How a [z, y, x] volume is cut into the three displayed planes, in radiological orientation.

Display conventions (what radiologists expect):
- axial: patient right on the screen's left, anterior at the top;
- coronal: patient right on the left, superior at the top;
- sagittal: anterior on the left, superior at the top.
The affine (voxel (x, y, z) → LPS mm) tells which way each voxel axis runs; an axis that runs
the "wrong" way is flipped on display only — the data are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from ...imaging.volume import Volume

# array axes of a [z, y, x] volume
Z, Y, X = 0, 1, 2


class Orientation(str, Enum):
    AXIAL = "axial"
    SAGITTAL = "sagittal"
    CORONAL = "coronal"

    @property
    def index_axis(self) -> int:
        """The [z, y, x] array axis this view steps through."""
        return {Orientation.AXIAL: Z, Orientation.CORONAL: Y, Orientation.SAGITTAL: X}[self]

    @property
    def plane_axes(self) -> tuple[int, int]:
        """The array axes shown as (rows, columns)."""
        return {
            Orientation.AXIAL: (Y, X),
            Orientation.CORONAL: (Z, X),
            Orientation.SAGITTAL: (Z, Y),
        }[self]


def display_flips(affine: np.ndarray) -> tuple[bool, bool, bool]:
    """Which of the (z, y, x) array axes must be reversed for radiological display.

    x (columns) should run toward patient left (+L), y (rows) toward posterior (+P), and z
    (slices, drawn as rows in sagittal/coronal) from superior at the top to inferior (−S).
    """
    a = np.asarray(affine, dtype=float)
    col_dir, row_dir, slice_dir = a[:3, 0], a[:3, 1], a[:3, 2]
    flip_x = col_dir[0] < 0
    flip_y = row_dir[1] < 0
    flip_z = slice_dir[2] > 0  # index grows toward the head → draw the last slice on top
    return bool(flip_z), bool(flip_y), bool(flip_x)


@dataclass(frozen=True)
class SlicePlane:
    """One orientation of one volume: extracts display slices and maps pixels ↔ voxels."""

    orientation: Orientation
    shape: tuple[int, int, int]  # (z, y, x)
    spacing: tuple[float, float, float]  # (z, y, x) mm
    flips: tuple[bool, bool, bool]  # (z, y, x) reversed on display

    @classmethod
    def of(cls, volume: Volume, orientation: Orientation) -> SlicePlane:
        return cls(
            orientation,
            tuple(int(n) for n in volume.hu.shape),  # type: ignore[arg-type]
            tuple(float(s) for s in volume.spacing),  # type: ignore[arg-type]
            display_flips(volume.affine),
        )

    @property
    def n_slices(self) -> int:
        return self.shape[self.orientation.index_axis]

    @property
    def image_shape(self) -> tuple[int, int]:
        """(rows, columns) of a displayed slice."""
        r, c = self.orientation.plane_axes
        return self.shape[r], self.shape[c]

    @property
    def pixel_mm(self) -> tuple[float, float]:
        """(row height, column width) of one displayed pixel in mm."""
        r, c = self.orientation.plane_axes
        return self.spacing[r], self.spacing[c]

    def extract(self, array: np.ndarray, index: int) -> np.ndarray:
        """The displayed slice ``index`` of a [z, y, x] array (a view, flipped for display)."""
        plane = np.take(array, index, axis=self.orientation.index_axis)
        r, c = self.orientation.plane_axes
        if self.flips[r]:
            plane = plane[::-1, :]
        if self.flips[c]:
            plane = plane[:, ::-1]
        return plane

    def _unflip(self, axis: int, value: float) -> float:
        return (self.shape[axis] - 1 - value) if self.flips[axis] else value

    def to_voxel(self, row: float, col: float, index: int) -> tuple[float, float, float]:
        """Voxel (z, y, x) shown at displayed pixel (row, col) of slice ``index``."""
        r_axis, c_axis = self.orientation.plane_axes
        zyx = [0.0, 0.0, 0.0]
        zyx[self.orientation.index_axis] = float(index)
        zyx[r_axis] = self._unflip(r_axis, row)
        zyx[c_axis] = self._unflip(c_axis, col)
        return zyx[0], zyx[1], zyx[2]

    def to_display(self, zyx: tuple[float, float, float]) -> tuple[float, float]:
        """Displayed (row, col) of voxel (z, y, x) — the inverse of :meth:`to_voxel`."""
        r_axis, c_axis = self.orientation.plane_axes
        return self._unflip(r_axis, zyx[r_axis]), self._unflip(c_axis, zyx[c_axis])
