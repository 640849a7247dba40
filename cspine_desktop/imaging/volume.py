"""The Volume: one CT series as HU on a voxel grid with its geometry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Volume:
    """One CT series, ready for analysis.

    hu       : Hounsfield units, shape [z, y, x] (z = slice along the slice normal, sorted by
               position; y = row; x = column). int16 when the data allow it, else float32.
    affine   : 4×4 matrix mapping voxel index (x=col, y=row, z=slice, 1) → patient LPS mm.
    spacing  : (z, y, x) in mm; z measured from slice positions, not SliceThickness.
    meta     : PatientID, StudyInstanceUID, SeriesInstanceUID, Modality, SeriesDescription,
               WindowCenter/WindowWidth (header display window, if any), source kind, …
    warnings : plain sentences about what was odd in the input and what was done about it.
    """

    hu: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)

    def voxel_to_lps(self, x: float, y: float, z: float) -> np.ndarray:
        """Patient LPS position (mm) of voxel index (x=col, y=row, z=slice)."""
        point: np.ndarray = self.affine @ np.array([x, y, z, 1.0])
        return point[:3]


@dataclass(frozen=True)
class SeriesInfo:
    """One candidate series in a study, for the series chooser."""

    series_uid: str
    description: str
    modality: str
    n_slices: int
    image_type: tuple[str, ...]
    slice_thickness_mm: float | None
    usable: bool  # an axial CT image series that load_study would accept
    reason: str = ""  # why not usable, in words
