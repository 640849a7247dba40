"""Sagittal crop planes of one vertebra: the stage-2 classifier's second view.

An axial plane cannot show a fracture whose own plane is near axial: a type II dens fracture, the
buckled end-plate of a compression, the height lost by a burst. Radiologists read those on the
sagittal reformat, and so does stage 2: besides its axial planes (:mod:`.crops`) every vertebra
is also cut into sagittal planes within ``CropConfig.sagittal_half_mm`` of its midline.

A sagittal crop plane has the same size and pixel spacing as an axial one; columns run toward
posterior (anterior at the left, as a sagittal reformat is displayed), rows toward the feet. The
three image channels are the planes ``context_mm`` toward patient left, at, and toward patient
right; the fourth is the vertebra's mask, exactly as for axial planes.

Sampling is on the canonical view of the source (:func:`.preprocess.canonical_view`), linear
in all three axes; a source finer than the crop is smoothed first, as for axial planes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .preprocess import canonical_view
from .volume import Volume

if TYPE_CHECKING:
    from .crops import CropConfig, PlaneSpacing

Box = tuple[slice, slice, slice]  # z, y, x slices of an array


@dataclass
class SagittalGeometry:
    """Where one vertebra's sagittal crop planes lie in the canonical view of the source.

    centre : view voxel (x, y, z) of the crop centre on the midline plane.
    planes : float64 [n] plane offsets, mm toward patient left of the midline.
    col    : view-voxel step of one crop column (toward posterior).
    row    : view-voxel step of one crop row (toward the feet).
    left   : view-voxel step of 1 mm toward patient left.
    axes   : source array axes that play view z, y, x.
    size   : crop size in pixels.
    """

    level: int
    centre: np.ndarray
    planes: np.ndarray
    col: np.ndarray
    row: np.ndarray
    left: np.ndarray
    axes: tuple[int, int, int]
    size: int
    smooth_px: float  # in-plane Gaussian σ (source pixels) before sampling; 0: none

    def points(self, k: int, offset_mm: float = 0.0) -> np.ndarray:
        """float64 [size, size, 3] view voxel (x, y, z) of every pixel of plane ``k``."""
        c = (self.size - 1) / 2.0
        ii, jj = np.mgrid[: self.size, : self.size].astype(np.float64) - c
        base = self.centre + (float(self.planes[k]) + offset_mm) * self.left
        pts: np.ndarray = base + jj[..., None] * self.col + ii[..., None] * self.row
        return pts


def _view(array_zyx: np.ndarray, axes: tuple[int, int, int]) -> np.ndarray:
    return np.transpose(array_zyx, axes) if axes != (0, 1, 2) else array_zyx


def sagittal_geometry(
    volume: Volume,
    labels_zyx: np.ndarray,
    level: int,
    cfg: CropConfig,
    *,
    centre_jitter_mm: tuple[float, float] = (0.0, 0.0),
    spacing: PlaneSpacing | None = None,
    box: Box | None = None,
) -> SagittalGeometry | None:
    """Sagittal planes (``cfg.plane_mm`` apart, or as ``spacing`` says) within
    ``cfg.sagittal_half_mm`` of vertebra ``level``'s midline that show at least
    ``cfg.min_mask_px`` crop pixels of it; None when there are none (or the sagittal view is
    off). ``box``: a source-array box holding every
    voxel of the level (``crops.level_boxes``); the whole label map when not given."""
    if cfg.sagittal_half_mm <= 0:
        return None
    _hu, a, axes = canonical_view(volume)
    lab = _view(np.asarray(labels_zyx), axes)
    vb: Box = (slice(None),) * 3 if box is None else (box[axes[0]], box[axes[1]], box[axes[2]])
    block = lab[vb] == level
    z0, y0, x0 = (s.indices(n)[0] for s, n in zip(vb, lab.shape, strict=True))
    zz = np.nonzero(block.any(axis=(1, 2)))[0] + z0
    if zz.size == 0:
        return None
    yy = np.nonzero(block.any(axis=(0, 2)))[0] + y0
    xx = np.nonzero(block.any(axis=(0, 1)))[0] + x0
    # the same centre as the axial crop: middle of the mask's bounding box
    centre_vox = 0.5 * np.array([xx[0] + xx[-1], yy[0] + yy[-1], zz[0] + zz[-1]], np.float64)
    centre_lps = a @ np.array([*centre_vox, 1.0])
    centre_lps[0] += centre_jitter_mm[0]
    centre_lps[1] += centre_jitter_mm[1]
    inv = np.linalg.inv(a)
    to_vox = inv[:3, :3]
    centre = (inv @ centre_lps)[:3]
    p = cfg.pixel_mm
    col = to_vox @ np.array([0.0, p, 0.0])  # LPS: +y posterior
    row = to_vox @ np.array([0.0, 0.0, -p])  # LPS: +z head, rows go to the feet
    left = to_vox @ np.array([1.0, 0.0, 0.0])
    step = cfg.plane_mm if spacing is None else spacing.sagittal_step_mm(cfg)
    n_half = int(np.floor(cfg.sagittal_half_mm / step + 1e-6))
    offsets = step * np.arange(-n_half, n_half + 1, dtype=np.float64)
    src_px = float(np.linalg.norm(a[:3, 1]))
    factor = p / max(src_px, 1e-6)
    geom = SagittalGeometry(
        level, centre, offsets, col, row, left, axes, cfg.size, 0.5 * factor if factor > 1.3 else 0
    )
    (mask,) = sample_sagittal_offsets(lab, geom, 0.0, (0.0,), view=True, equals=level, box=vb)
    counts = (mask > 0.5).sum(axis=(1, 2))
    keep = counts >= cfg.min_mask_px
    if not keep.any():
        return None
    geom.planes = offsets[keep]
    return geom


def _column_weights(xf: float, smooth_px: float) -> tuple[np.ndarray, np.ndarray]:
    """View columns and weights of the column image at (fractional) column ``xf``: linear
    between columns, or a Gaussian-weighted mean of the nearby columns when the source is finer
    than the crop."""
    if smooth_px > 0:
        r = int(np.ceil(2 * smooth_px))
        xs = np.arange(int(np.floor(xf)) - r, int(np.floor(xf)) + r + 2)
        w = np.exp(-0.5 * ((xs - xf) / smooth_px) ** 2)
    else:
        x0 = int(np.floor(xf))
        xs = np.array([x0, x0 + 1])
        w = np.array([1.0 - (xf - x0), xf - x0])
    return xs, w


def sample_sagittal(
    array: np.ndarray,
    geom: SagittalGeometry,
    border: float = 0.0,
    offset_mm: float = 0.0,
    *,
    view: bool = False,
) -> np.ndarray:
    """float32 [n, size, size]: ``array`` (source grid, or the canonical view when ``view``) on
    the sagittal planes of ``geom``, shifted ``offset_mm`` toward patient left.

    Each plane is one column image of the view (fixed view x), resampled in (y, z) by an affine
    warp; x is taken at the plane's centre. That is exact when the scanner's axes are not
    rotated about the patient's vertical axis (gantry tilt, a rotation about the left-right axis,
    is exact), and ``canonical_view`` keeps any such rotation well under 45°.
    """
    return sample_sagittal_offsets(array, geom, border, (offset_mm,), view=view)[0]


def sample_sagittal_offsets(
    array: np.ndarray,
    geom: SagittalGeometry,
    border: float,
    offsets_mm: Sequence[float],
    *,
    view: bool = False,
    equals: int | None = None,
    box: Box | None = None,
) -> list[np.ndarray]:
    """:func:`sample_sagittal` at several offsets, reading the source once for all of them:
    only the slab of view columns the planes use, and within it the rows and slices their
    crops cover, is converted to float32 (with ``equals``: to ``array == equals``). ``box``
    (view axes) limits that slab further, for an array that is zero outside it and a border
    of 0 (a level's mask)."""
    v = np.asarray(array) if view else _view(np.asarray(array), geom.axes)
    nz, ny, nx = v.shape
    c = (geom.size - 1) / 2.0
    e = float(geom.size - 1)
    jobs: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = []
    lo = np.array([np.inf, np.inf, np.inf])  # view x, y, z the planes read
    hi = -lo
    for offset_mm in offsets_mm:
        for k in range(len(geom.planes)):
            centre = geom.centre + (float(geom.planes[k]) + offset_mm) * geom.left
            xs, w = _column_weights(float(centre[0]), geom.smooth_px)
            ok = (xs >= 0) & (xs < nx) & (w > 1e-6)
            if not ok.any():
                jobs.append(None)
                continue
            xs, w = xs[ok], w[ok] / w[ok].sum()
            jobs.append((centre, xs, w))
            for i, j in ((0.0, 0.0), (0.0, e), (e, 0.0), (e, e)):
                p = centre + (j - c) * geom.col + (i - c) * geom.row
                lo[1:], hi[1:] = np.minimum(lo[1:], p[1:]), np.maximum(hi[1:], p[1:])
            lo[0], hi[0] = min(lo[0], xs[0]), max(hi[0], xs[-1])
    region = [(0, 0)] * 3  # (start, stop) along view z, y, x
    if np.isfinite(lo).all():
        region = [
            (max(0, int(np.floor(lo[2])) - 2), min(nz, int(np.ceil(hi[2])) + 3)),
            (max(0, int(np.floor(lo[1])) - 2), min(ny, int(np.ceil(hi[1])) + 3)),
            (max(0, int(lo[0])), min(nx, int(hi[0]) + 1)),
        ]
    if box is not None:
        for a, s in enumerate(box):
            start, stop, _ = s.indices(v.shape[a])
            region[a] = (max(region[a][0], start), min(region[a][1], stop))
    (z0, z1), (y0, y1), (x0, x1) = region
    slab = np.zeros((0, 0, 0), np.float32)
    if z1 > z0 and y1 > y0 and x1 > x0:
        part = v[z0:z1, y0:y1, x0:x1]
        if equals is not None:
            part = part == equals
        slab = np.ascontiguousarray(np.moveaxis(part, 2, 0), dtype=np.float32)  # [x, z, y]
    n = len(geom.planes)
    outs = [np.empty((n, geom.size, geom.size), np.float32) for _ in offsets_mm]
    for q, job in enumerate(jobs):
        out = outs[q // n][q % n]
        if job is None or slab.size == 0:
            out[:] = border
            continue
        centre, xs, w = job
        img = np.zeros(slab.shape[1:], np.float32)
        for x, wx in zip(xs, w, strict=True):
            if x0 <= x < x1:
                img += np.float32(wx) * slab[x - x0]
        # crop (column j, row i) → column image (X = view y, Y = view z)
        m = np.array(
            [
                [geom.col[1], geom.row[1], centre[1] - c * (geom.col[1] + geom.row[1]) - y0],
                [geom.col[2], geom.row[2], centre[2] - c * (geom.col[2] + geom.row[2]) - z0],
            ],
            np.float64,
        )
        out[:] = cv2.warpAffine(
            img,
            m,
            (geom.size, geom.size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=border,
        )
    return outs


def paste_sagittal(out_zyx: np.ndarray, planes: np.ndarray, geom: SagittalGeometry) -> None:
    """Draw sagittal crop-plane maps ``planes`` [n, S, S] into ``out_zyx`` (source grid) by
    maximum, each plane thickened to the spacing between planes."""
    view = _view(out_zyx, geom.axes)
    spacing = float(np.diff(geom.planes).min()) if len(geom.planes) > 1 else 1.0
    vox_mm = 1.0 / max(float(np.linalg.norm(geom.left)), 1e-6)  # mm per view voxel along L
    n_side = int(np.ceil(0.5 * spacing / vox_mm))
    shape = np.array(view.shape[::-1])
    c = (geom.size - 1) / 2.0
    ii, jj = np.mgrid[: geom.size, : geom.size].astype(np.float64) - c
    for k in range(len(geom.planes)):
        vals = np.asarray(planes[k], np.float32)
        hot = vals > 1e-3
        if not hot.any():
            continue
        ih, jh = ii[hot][:, None], jj[hot][:, None]
        for s in range(-n_side, n_side + 1):
            base = geom.centre + (float(geom.planes[k]) + s * vox_mm) * geom.left
            pts = base + jh * geom.col + ih * geom.row  # as geom.points, hot pixels only
            idx = np.rint(pts).astype(np.int64)
            ok = np.all((idx >= 0) & (idx < shape), axis=1)
            np.maximum.at(view, (idx[ok, 2], idx[ok, 1], idx[ok, 0]), vals[hot][ok])


def view_slice_of(geom: SagittalGeometry, k: int, i: int, j: int) -> float:
    """View slice index (z) of pixel (row ``i``, column ``j``) of sagittal plane ``k``."""
    return float(geom.points(k)[i, j, 2])
