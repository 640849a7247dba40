"""Training targets: fracture masks from boxes, and per-slice per-vertebra fracture flags.

All arrays are [z, y, x]; on the model grid that is [Zg, S, S] with Zg planes
``slice_step_mm`` apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cspine_desktop.imaging.volume import Volume

from .rsna import Box, dicom_files

IGNORE = -1.0
"""``fracture_cls`` target of a vertebra that the slice does not show: left out of the loss and
the training AUC. (Scored everywhere, the head learns "is C_k in this slice" — the flags are
zero wherever the vertebra is absent — instead of "is this C_k fractured", and every present
vertebra scores high at inference, where only the vertebra's own slices are aggregated.)"""


@dataclass(frozen=True)
class TargetConfig:
    """How per-slice targets are derived (part of the cache key).

    min_area_mm2 : a vertebra counts as present in a grid slice when its label covers at least
                   this area (mm²).
    near_mm      : a slice is flagged for a fractured vertebra only within this distance (mm,
                   head–feet) of a slice that shows that vertebra's fracture, when the fracture
                   location is known (mask or boxes); otherwise every slice showing the
                   vertebra is flagged.
    attach_px    : fracture voxels are attributed to a vertebra when within this many grid
                   pixels of its label (a fracture gap may not be labelled as bone).
    """

    min_area_mm2: float = 10.0
    near_mm: float = 4.0
    attach_px: int = 3

    def to_dict(self) -> dict[str, float]:
        return {
            "min_area_mm2": self.min_area_mm2,
            "near_mm": self.near_mm,
            "attach_px": self.attach_px,
        }


def _box_slices(files: Sequence[Path]) -> dict[int, dict]:
    """slice_number → header geometry (IPP, IOP, PixelSpacing) of ``<slice_number>.dcm``."""
    import pydicom

    out: dict[int, dict] = {}
    tags = ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "InstanceNumber"]
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=tags)
        number = int(f.stem) if f.stem.isdigit() else int(ds.InstanceNumber)
        out[number] = {
            "ipp": np.array([float(v) for v in ds.ImagePositionPatient]),
            "iop": np.array([float(v) for v in ds.ImageOrientationPatient]),
            "ps": np.array([float(v) for v in ds.PixelSpacing]),
        }
    return out


def boxes_to_mask(
    boxes: Sequence[Box], image_dir: Path, volume: Volume
) -> tuple[np.ndarray, list[str]]:
    """Rasterise fracture ``boxes`` onto ``volume``'s grid: uint8 [z, y, x] and notes on
    boxes that could not be placed.

    Each box corner is taken from pixel space of its own DICOM file (IPP/IOP/PixelSpacing) to
    LPS mm and from there into volume voxels, so the loader's slice order and any in-plane
    reorientation do not matter.
    """
    mask = np.zeros(volume.hu.shape, dtype=np.uint8)
    notes: list[str] = []
    wanted = {b.slice_number for b in boxes}
    files = [f for f in dicom_files(image_dir) if not f.stem.isdigit() or int(f.stem) in wanted]
    geo = _box_slices(files)
    inv = np.linalg.inv(np.asarray(volume.affine, dtype=np.float64))
    nz, ny, nx = volume.hu.shape
    for b in boxes:
        g = geo.get(b.slice_number)
        if g is None:
            notes.append(f"box on slice {b.slice_number}: no such image")
            continue
        row_dir, col_dir = g["iop"][:3], g["iop"][3:]
        points = []
        for c, r in (
            (b.x, b.y),
            (b.x + b.width, b.y + b.height),
            (b.x + b.width, b.y),
            (b.x, b.y + b.height),
        ):
            lps = g["ipp"] + c * g["ps"][1] * row_dir + r * g["ps"][0] * col_dir
            points.append((inv @ np.append(lps, 1.0))[:3])
        corners = np.array(points)  # voxel (x, y, z)
        z = round(float(corners[:, 2].mean()))
        x0, y0 = np.floor(corners[:, :2].min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners[:, :2].max(axis=0)).astype(int)
        if not (0 <= z < nz) or x1 <= 0 or y1 <= 0 or x0 >= nx or y0 >= ny:
            notes.append(f"box on slice {b.slice_number} lies outside the images")
            continue
        mask[z, max(y0, 0) : min(y1, ny), max(x0, 0) : min(x1, nx)] = 1
    return mask, notes


def slice_flags(
    labels: np.ndarray,
    fracture: np.ndarray | None,
    fractured: Sequence[bool],
    pixel_spacing_mm: float,
    slice_step_mm: float,
    cfg: TargetConfig | None = None,
) -> np.ndarray:
    """Per grid slice, per vertebra: does this slice show a fractured C_k? bool [Zg, 7].

    ``labels`` uint8 [Zg, S, S] (0 bg, 1–7), ``fracture`` [Zg, S, S] (non-zero = fractured
    bone) or None when the location is unknown, ``fractured`` the study truth C1…C7.
    Flag = vertebra present in the slice ∧ vertebra fractured ∧ (within ``near_mm`` of a slice
    where the fracture touches that vertebra, if any such slice exists).
    """
    cfg = cfg or TargetConfig()
    nz = labels.shape[0]
    min_px = min_pixels(pixel_spacing_mm, cfg)
    flags = np.zeros((nz, 7), dtype=bool)
    kernel = np.ones((2 * cfg.attach_px + 1,) * 2, np.uint8)
    # the slices where the fracture shows: (z, its fracture plane)
    planes = (
        [(z, fracture[z]) for z in np.nonzero(fracture.reshape(nz, -1).any(axis=1))[0]]
        if fracture is not None
        else []
    )
    near = max(0, int(np.floor(cfg.near_mm / slice_step_mm + 1e-6)))
    for v in range(7):
        if not fractured[v]:
            continue
        present = (labels == v + 1).reshape(nz, -1).sum(axis=1) >= min_px
        located = np.zeros(nz, dtype=bool)
        for z, plane in planes:
            grown = cv2.dilate(np.ascontiguousarray(plane != 0, dtype=np.uint8), kernel)
            located[z] = bool(np.any(grown.astype(bool) & (labels[z] == v + 1)))
        if located.any():
            zs = np.nonzero(located)[0]
            dist = np.min(np.abs(np.arange(nz)[:, None] - zs[None, :]), axis=1)
            flags[:, v] = present & (dist <= near)
        else:
            flags[:, v] = present
    return flags


def cls_targets(flags: np.ndarray, labels: np.ndarray, min_px: int) -> np.ndarray:
    """``fracture_cls`` target of one slice: float32 [7], the flag (0/1) for every vertebra
    showing at least ``min_px`` pixels of ``labels`` [S, S], :data:`IGNORE` for the others.

    Computed on the (augmented) label slice the model sees, so a vertebra cropped out by
    augmentation is ignored rather than asked for."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64).ravel(), minlength=8)[1:8]
    out = np.asarray(flags, dtype=np.float32).copy()
    out[counts < max(1, int(min_px))] = IGNORE
    return out


def min_pixels(pixel_spacing_mm: float, cfg: TargetConfig | None = None) -> int:
    """Pixels a vertebra must cover on a slice to count as shown (``min_area_mm2``)."""
    cfg = cfg or TargetConfig()
    return max(1, round(cfg.min_area_mm2 / pixel_spacing_mm**2))
