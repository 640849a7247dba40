"""Per-vertebra crops from the *source* volume: the one crop geometry of the stage-2 classifier.

Stage 1 (the U-Net) segments C1–C7 on a coarse model grid; stage 2 judges one vertebra at a
time on a high-resolution crop of the original series, because a hairline fracture (a 1 mm
cortical break) is invisible on 1.25 mm pixels. Training (``model_training``) and inference
(``cspine_desktop.analysis``) both call :func:`vertebra_crops`, so they can never disagree on
what a crop is.

A crop is a stack of axial planes through one vertebra (and, when ``sagittal_half_mm`` > 0, a
second stack of sagittal planes near its midline: :mod:`.sagittal`):

* in-plane ``size`` × ``size`` pixels at ``pixel_mm`` (0.5 mm by default: a coarser source is
  resampled up to it), centred on
  the vertebra's mask, axes in canonical orientation (columns → patient left, rows → posterior);
  a source finer than that is smoothed first (Gaussian, σ = half the down-sampling factor) so
  its noise is averaged as a coarser reconstruction would, not aliased;
* planes ``plane_mm`` apart, or the source spacing when that is coarser;
* channels: the bone window at −``context_mm`` (toward the head), 0 and +``context_mm``, then
  the vertebra's stage-1 mask (soft, in [0, 1]).

:class:`CropGeometry` maps crop pixels back to source voxels, so stage 2's localisation map
can be drawn on the source grid (:func:`paste_planes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from .preprocess import canonical_view
from .sagittal import (
    Box,
    SagittalGeometry,
    paste_sagittal,
    sagittal_geometry,
    sample_sagittal_offsets,
    view_slice_of,
)
from .volume import Volume
from .windows import Window, apply_window


@dataclass(frozen=True)
class CropConfig:
    """Stage-2 crop parameters; stored in the model card ("crops")."""

    size: int = 128
    pixel_mm: float = 0.5
    plane_mm: float = 1.0
    context_mm: float = 1.0
    window: tuple[float, float] = (400.0, 1800.0)  # bone window (centre, width)
    map_stride: int = 8  # localisation map cell, crop pixels (128 px → 16 × 16 map)
    min_mask_px: int = 40  # a plane shows the vertebra when its mask covers this many pixels
    # sagittal planes within this many mm of the vertebra's midline (0: axial planes only)
    sagittal_half_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.size < 16 or self.size % self.map_stride:
            raise ValueError("crop size must be ≥ 16 and a multiple of map_stride")
        if self.pixel_mm <= 0 or self.plane_mm <= 0 or self.context_mm < 0:
            raise ValueError("crop spacings must be positive")

    @property
    def n_channels(self) -> int:
        return 4

    @property
    def views(self) -> tuple[str, ...]:
        return ("axial", "sagittal") if self.sagittal_half_mm > 0 else ("axial",)

    @property
    def map_size(self) -> int:
        return self.size // self.map_stride

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["window"] = [float(v) for v in self.window]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> CropConfig:
        d = dict(d or {})
        if "window" in d:
            d["window"] = tuple(float(v) for v in d["window"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def tiling_step_mm(self) -> float:
        """The widest plane spacing that still reads all of the vertebra: each plane reads the
        source at −context, 0 and +context mm, so planes up to ``plane_mm + 2·context_mm``
        apart together read every ``plane_mm`` of it (and every slice of a thicker source)."""
        return self.plane_mm + 2.0 * self.context_mm


@dataclass(frozen=True)
class PlaneSpacing:
    """How far apart the crop planes of one vertebra lie; in the model card's ``stage2``.

    ``step_mm`` > 0: axial planes about ``step_mm`` apart (:meth:`axial_step`: on source slices
    when they are at least ``plane_mm`` thick, never closer than one slice), sagittal planes
    every ``step_mm``; up to :attr:`CropConfig.tiling_step_mm` every source slice, however
    thick, is read. ``step_mm`` 0: every ``stride``-th plane of
    ``CropConfig.plane_mm`` (or of the source's slices when they are thicker), the rule of
    bundles before 0.7.1 — with slices thicker than twice the context it skips slices.
    """

    stride: int = 1
    step_mm: float = 0.0

    def axial_step(self, cfg: CropConfig, slice_mm: float) -> float:
        """Axial plane step in source slices. With ``step_mm`` on slices at least ``plane_mm``
        thick: the whole number of slices nearest ``step_mm`` (planes on source slices, never
        between two), at most :attr:`CropConfig.tiling_step_mm` wide and at least one slice."""
        slice_mm = max(slice_mm, 1e-6)
        if self.step_mm <= 0:
            return max(1.0, cfg.plane_mm / slice_mm) * max(1, int(self.stride))
        if slice_mm < cfg.plane_mm:
            return max(1.0, self.step_mm / slice_mm)
        n = max(1, round(self.step_mm / slice_mm))
        if n > 1 and n * slice_mm > cfg.tiling_step_mm + 1e-6:
            n = max(1, int(cfg.tiling_step_mm / slice_mm + 1e-6))
        return float(n)

    def sagittal_step_mm(self, cfg: CropConfig) -> float:
        """Sagittal plane step in mm."""
        return self.step_mm if self.step_mm > 0 else cfg.plane_mm * max(1, int(self.stride))

    @classmethod
    def default_for(cls, cfg: CropConfig) -> PlaneSpacing:
        """What training scores and exports write: planes ``2 · plane_mm`` apart (as before
        0.7.1 on slices up to ``plane_mm`` thick), capped at :attr:`CropConfig.tiling_step_mm`
        so that no slice of a thicker source is skipped."""
        return cls(stride=2, step_mm=min(2.0 * cfg.plane_mm, cfg.tiling_step_mm))

    @classmethod
    def from_card(cls, section: Mapping[str, Any]) -> PlaneSpacing:
        """From a card's ``stage2`` section (``plane_step_mm`` wins over ``plane_stride``)."""
        return cls(
            stride=int(section.get("plane_stride", 2)),
            step_mm=float(section.get("plane_step_mm") or 0.0),
        )


@dataclass
class CropGeometry:
    """Where one vertebra's crop lies in the source (canonical view of it).

    inplane  : 2×3 map crop pixel (i, j) → view voxel (x, y).
    planes   : float64 [n] view slice position (fractional index) of every crop plane.
    axes     : source array axes that play view z, y, x (see ``canonical_view``).
    head_dir : +1 when view slice index grows toward the head, −1 otherwise.
    """

    level: int
    inplane: np.ndarray
    planes: np.ndarray
    axes: tuple[int, int, int]
    head_dir: int
    slice_mm: float


Geometry = CropGeometry | SagittalGeometry


@dataclass
class VertebraCrops:
    """``x`` float32 [n, S, S, 4] model input; ``geometry`` to map results back."""

    x: np.ndarray
    geometry: Geometry


def _view_array(array_zyx: np.ndarray, axes: tuple[int, int, int]) -> np.ndarray:
    return np.transpose(array_zyx, axes) if axes != (0, 1, 2) else array_zyx


def level_boxes(labels_zyx: np.ndarray, levels: Iterable[int] = range(1, 8)) -> dict[int, Box]:
    """Bounding box (source array z, y, x slices) of every level in ``levels`` present in the
    label map. One pass over the slices, then one over each level's slab: far cheaper than
    comparing the whole volume for every level and view, as a study's crops otherwise would."""
    lab = np.asarray(labels_zyx)
    wanted = sorted({int(v) for v in levels})
    present = np.zeros((lab.shape[0], len(wanted)), bool)
    for z in range(lab.shape[0]):
        present[z] = np.isin(
            wanted,
            np.unique(lab[z])
            if lab.dtype != np.uint8
            else np.flatnonzero(np.bincount(lab[z].ravel(), minlength=256)),
        )
    out: dict[int, Box] = {}
    for i, v in enumerate(wanted):
        zs = np.flatnonzero(present[:, i])
        if zs.size == 0:
            continue
        out[v] = _box(zs, lab[zs[0] : zs[-1] + 1] == v)
    return out


def _box(zs: np.ndarray, slab: np.ndarray) -> Box:
    """The box of a mask given the slices ``zs`` that hold it and its ``slab`` (bool, from the
    first of them to the last)."""
    ys = np.flatnonzero(slab.any(axis=(0, 2)))
    xs = np.flatnonzero(slab.any(axis=(0, 1)))
    return (
        slice(int(zs[0]), int(zs[-1]) + 1),
        slice(int(ys[0]), int(ys[-1]) + 1),
        slice(int(xs[0]), int(xs[-1]) + 1),
    )


def _level_box(labels_zyx: np.ndarray, level: int, box: Box | None) -> Box | None:
    """``box`` as given, or the level's bounding box (None: the level is absent): one
    comparison of the label map, cheaper than :func:`level_boxes` for a single level."""
    if box is not None:
        return box
    mask = np.asarray(labels_zyx) == level
    zs = np.flatnonzero(mask.any(axis=(1, 2)))
    if zs.size == 0:
        return None
    return _box(zs, mask[zs[0] : zs[-1] + 1])


def _view_box(box: Box, axes: tuple[int, int, int]) -> Box:
    """A source-array box in the view's axis order."""
    return (box[axes[0]], box[axes[1]], box[axes[2]])


def crop_geometry(
    volume: Volume,
    labels_zyx: np.ndarray,
    level: int,
    cfg: CropConfig,
    *,
    centre_jitter_mm: tuple[float, float] = (0.0, 0.0),
    spacing: PlaneSpacing = PlaneSpacing(),
    box: Box | None = None,
) -> CropGeometry | None:
    """Crop geometry of vertebra ``level`` (1..7) from a label map on the source grid, or None
    when the level holds fewer than ``cfg.min_mask_px``-sized planes. ``box``: the level's
    bounding box in the label map (:func:`level_boxes`), found here when not given."""
    _hu, a, axes = canonical_view(volume)
    box = _level_box(labels_zyx, level, box)
    if box is None:
        return None
    vb = _view_box(box, axes)
    mask = _view_array(np.asarray(labels_zyx), axes)[vb] == level
    z0, y0, x0 = (s.start for s in vb)
    # enough pixels (at source resolution) to count as showing the vertebra on a slice
    px_mm2 = float(np.linalg.norm(a[:3, 0]) * np.linalg.norm(a[:3, 1]))
    min_px = max(1, int(cfg.min_mask_px * cfg.pixel_mm**2 / max(px_mm2, 1e-6)))
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    zs = np.nonzero(counts >= min_px)[0]
    if zs.size == 0:
        return None
    _zz, yy, xx = np.nonzero(mask[zs[0] : zs[-1] + 1])
    zs, yy, xx = zs + z0, yy + y0, xx + x0
    # centre: middle of the mask's in-plane bounding box (robust to a long spinous process)
    cx = 0.5 * (float(xx.min()) + float(xx.max()))
    cy = 0.5 * (float(yy.min()) + float(yy.max()))
    cz = float(zs[0] + zs[-1]) / 2.0
    centre_lps = a @ np.array([cx, cy, cz, 1.0])
    centre_lps[0] += centre_jitter_mm[0]
    centre_lps[1] += centre_jitter_mm[1]
    inv = np.linalg.inv(a)
    # crop pixel (i, j) → LPS (centre + (i − c)·p·L̂ + (j − c)·p·P̂) → view voxel (x, y)
    c = (cfg.size - 1) / 2.0
    lin = inv[:2, :2] * cfg.pixel_mm  # LPS (x, y) steps → voxel (x, y)
    origin = inv[:2, :] @ np.array([*centre_lps[:3], 1.0]) - lin @ np.array([c, c])
    inplane = np.hstack([lin, origin[:, None]])
    slice_mm = float(abs(a[2, 2])) or float(np.linalg.norm(a[:3, 2]))
    step = spacing.axial_step(cfg, slice_mm)
    n = int(np.floor((zs[-1] - zs[0]) / step + 1e-6)) + 1
    planes = zs[0] + step * np.arange(n, dtype=np.float64)
    head_dir = 1 if a[2, 2] > 0 else -1
    return CropGeometry(level, inplane, planes, axes, head_dir, slice_mm)


def _footprint(
    m: np.ndarray, size: int, margin: int, shape: tuple[int, ...]
) -> tuple[slice, slice] | None:
    """(slice y, slice x) of the source pixels that a ``size``² crop mapped by the 2×3 ``m``
    (crop pixel → source x, y) reads, widened by ``margin``, clipped to ``shape`` (ny, nx);
    None when that is empty."""
    e = float(size - 1)
    corners = m @ np.array([[0.0, e, 0.0, e], [0.0, 0.0, e, e], [1.0, 1.0, 1.0, 1.0]])
    x0 = max(0, int(np.floor(corners[0].min())) - margin)
    x1 = min(shape[1], int(np.ceil(corners[0].max())) + margin + 1)
    y0 = max(0, int(np.floor(corners[1].min())) - margin)
    y1 = min(shape[0], int(np.ceil(corners[1].max())) + margin + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return (slice(y0, y1), slice(x0, x1))


class _PlaneSampler:
    """Bilinear in-plane samples of a view array, cached per source slice, linear in z.

    Only the source pixels the crop reads are converted, smoothed and warped (the crop's
    footprint, widened by the smoothing kernel's reach): the same values as doing it on the
    whole slice, for a fraction of the work. With ``equals`` the source is ``view == equals``
    (a label map's level, compared slice by slice instead of over the whole volume)."""

    def __init__(
        self,
        view: np.ndarray,
        geom: CropGeometry,
        size: int,
        border: float,
        equals: int | None = None,
    ):
        self.view, self.geom, self.size, self.border = view, geom, size, border
        self.equals = equals
        self.cache: dict[int, np.ndarray] = {}
        factor = float(np.linalg.norm(geom.inplane[:, 0]))  # source px per crop px
        self.sigma = 0.5 * factor if factor > 1.3 else 0.0
        # cv2's float kernel reaches 4σ; +2 for the bilinear neighbours and rounding
        margin = int(np.ceil(4.0 * self.sigma)) + 3
        self.rect = _footprint(geom.inplane, size, margin, view.shape[1:3])
        self.m = geom.inplane.copy()
        if self.rect is not None:
            self.m[0, 2] -= self.rect[1].start
            self.m[1, 2] -= self.rect[0].start

    def slice(self, k: int) -> np.ndarray:
        k = int(np.clip(k, 0, self.view.shape[0] - 1))
        out = self.cache.get(k)
        if out is None:
            if self.rect is None:  # the crop lies wholly outside the slice
                out = np.full((self.size, self.size), self.border, np.float32)
                self.cache[k] = out
                return out
            part = self.view[k][self.rect]
            if self.equals is not None:
                part = part == self.equals
            src: np.ndarray = np.ascontiguousarray(part, dtype=np.float32)
            if self.sigma > 0:
                src = cv2.GaussianBlur(src, (0, 0), self.sigma)
            out = cv2.warpAffine(
                src,
                self.m,
                (self.size, self.size),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=self.border,
            )
            self.cache[k] = out
        return out

    def at(self, z: float) -> np.ndarray:
        last = self.view.shape[0] - 1
        z = float(np.clip(z, 0, last))
        k0 = int(np.floor(z))
        f = z - k0
        if f < 1e-6 or k0 >= last:
            return self.slice(k0)
        return (1.0 - f) * self.slice(k0) + f * self.slice(k0 + 1)


def geometry(
    volume: Volume,
    labels_zyx: np.ndarray,
    level: int,
    cfg: CropConfig,
    view: str = "axial",
    *,
    centre_jitter_mm: tuple[float, float] = (0.0, 0.0),
    spacing: PlaneSpacing = PlaneSpacing(),
    box: Box | None = None,
) -> Geometry | None:
    """The crop geometry of vertebra ``level`` in ``view`` ("axial" or "sagittal"); ``box``:
    the level's bounding box (:func:`level_boxes`), found here when not given."""
    make = sagittal_geometry if view == "sagittal" else crop_geometry
    return make(
        volume,
        labels_zyx,
        level,
        cfg,
        centre_jitter_mm=centre_jitter_mm,
        spacing=spacing,
        box=_level_box(labels_zyx, level, box),
    )


def sample_planes(
    array_zyx: np.ndarray,
    geom: Geometry,
    size: int,
    border: float = 0.0,
    offset_mm: float = 0.0,
    *,
    equals: int | None = None,
) -> np.ndarray:
    """float32 [n, size, size]: ``array_zyx`` (source grid) on the crop planes of ``geom``,
    shifted ``offset_mm`` toward the head (axial) or patient left (sagittal). With ``equals``
    the sampled array is ``array_zyx == equals``, compared only where the crop reads."""
    return sample_planes_offsets(array_zyx, geom, size, border, (offset_mm,), equals=equals)[0]


def sample_planes_offsets(
    array_zyx: np.ndarray,
    geom: Geometry,
    size: int,
    border: float,
    offsets_mm: Sequence[float],
    *,
    equals: int | None = None,
) -> list[np.ndarray]:
    """:func:`sample_planes` at several offsets, reading the source once for all of them."""
    if isinstance(geom, SagittalGeometry):
        return sample_sagittal_offsets(array_zyx, geom, border, offsets_mm, equals=equals)
    sampler = _PlaneSampler(
        _view_array(np.asarray(array_zyx), geom.axes), geom, size, border, equals
    )
    out = []
    for offset_mm in offsets_mm:
        dz = geom.head_dir * offset_mm / max(geom.slice_mm, 1e-6)
        out.append(
            np.stack([sampler.at(z + dz) for z in geom.planes]).astype(np.float32, copy=False)
        )
    return out


def crop_input(hu_planes: Sequence[np.ndarray], mask: np.ndarray, cfg: CropConfig) -> np.ndarray:
    """Model input [n, S, S, 4] from HU planes (above, at, below; each [n, S, S]) and the soft
    vertebra mask [n, S, S]."""
    win = Window(float(cfg.window[0]), float(cfg.window[1]), "bone")
    n = mask.shape[0]
    x = np.empty((n, cfg.size, cfg.size, cfg.n_channels), np.float32)
    for c, planes in enumerate(hu_planes):
        apply_window(np.asarray(planes, np.float32), win, out=x[..., c])
    x[..., 3] = np.clip(mask, 0.0, 1.0)
    return x


def vertebra_crops(
    volume: Volume,
    labels_zyx: np.ndarray,
    level: int,
    cfg: CropConfig,
    *,
    spacing: PlaneSpacing = PlaneSpacing(),
    centre_jitter_mm: tuple[float, float] = (0.0, 0.0),
    hu_zyx: np.ndarray | None = None,
    mask_zyx: np.ndarray | None = None,
    view: str = "axial",
    box: Box | None = None,
) -> VertebraCrops | None:
    """The stage-2 input for vertebra ``level``: crops of ``volume`` around ``labels == level``,
    in ``view`` ("axial" or "sagittal").

    ``hu_zyx`` replaces the volume's HU (training passes an augmented copy); ``mask_zyx`` replaces
    the mask channel's source (training passes a perturbed stage-1 mask). ``box``: the level's
    bounding box in the label map (:func:`level_boxes`; a caller cropping every level passes
    them all from one pass). None when the level is not in the label map.
    """
    geom = geometry(
        volume,
        labels_zyx,
        level,
        cfg,
        view,
        centre_jitter_mm=centre_jitter_mm,
        spacing=spacing,
        box=box,
    )
    if geom is None:
        return None
    hu = volume.hu if hu_zyx is None else hu_zyx
    offsets = (cfg.context_mm, 0.0, -cfg.context_mm)
    planes = sample_planes_offsets(hu, geom, cfg.size, -1000.0, offsets)
    if mask_zyx is None:  # the level compared only where the crop reads, not the whole volume
        mask = sample_planes(labels_zyx, geom, cfg.size, equals=level)
    else:
        mask = sample_planes(mask_zyx, geom, cfg.size)
    return VertebraCrops(crop_input(planes, mask, cfg), geom)


def view_slice(geom: Geometry, k: int, plane_map: np.ndarray | None = None) -> float:
    """View slice index (z) of plane ``k``: the plane itself when axial; for a sagittal plane,
    the row of ``plane_map``'s peak (crop resolution), or the crop centre without a map."""
    if isinstance(geom, SagittalGeometry):
        c = (geom.size - 1) // 2
        i, j = c, c
        if plane_map is not None and float(np.max(plane_map)) > 0:
            i, j = (int(v) for v in np.unravel_index(int(np.argmax(plane_map)), plane_map.shape))
        return view_slice_of(geom, k, int(i), int(j))
    return float(geom.planes[k])


def map_to_crop(maps: np.ndarray, cfg: CropConfig) -> np.ndarray:
    """Localisation maps [n, m, m] (or [n, m, m, 1]) → crop resolution [n, S, S] (bilinear)."""
    m = np.asarray(maps, np.float32)
    if m.ndim == 4:
        m = m[..., 0]
    return np.stack(
        [cv2.resize(p, (cfg.size, cfg.size), interpolation=cv2.INTER_LINEAR) for p in m]
    )


def paste_planes(
    out_zyx: np.ndarray, planes: np.ndarray, geom: Geometry, weight: float = 1.0
) -> None:
    """Draw crop-plane maps ``planes`` [n, S, S] into ``out_zyx`` (source grid, float) by
    maximum; for axial planes every source slice between the first and last plane is
    interpolated in z."""
    if isinstance(geom, SagittalGeometry):
        paste_sagittal(out_zyx, np.asarray(planes, np.float32) * np.float32(weight), geom)
        return
    view = _view_array(out_zyx, geom.axes)  # a view: writes land in out_zyx
    n = planes.shape[0]
    ny, nx = view.shape[1:]
    m2 = cv2.invertAffineTransform(geom.inplane)
    lo = int(np.ceil(geom.planes[0] - 0.5))
    hi = int(np.floor(geom.planes[-1] + 0.5))
    for k in range(max(lo, 0), min(hi, view.shape[0] - 1) + 1):
        pos = np.interp(k, geom.planes, np.arange(n, dtype=np.float64))
        i0 = int(np.floor(pos))
        f = pos - i0
        plane = planes[i0] if f < 1e-6 else (1 - f) * planes[i0] + f * planes[min(i0 + 1, n - 1)]
        warped = cv2.warpAffine(
            np.ascontiguousarray(plane, np.float32) * np.float32(weight),
            m2,
            (nx, ny),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
        np.maximum(view[k], warped, out=view[k])
