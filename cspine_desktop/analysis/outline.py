"""Stage 1's vertebra outlines moved onto the bone edge the CT shows.

Stage 1 labels a model grid of 1.25 mm pixels and 2 mm planes; carried back to the source grid
its outlines wander about 1.5 mm either side of the bone (docs/benchmarks.md, "Outlines on the
bone edge"): soft tissue inside the mask, tips of processes outside it. Stage 2 reads the mask
as one of its channels and cuts its crops around it, and the viewer and the SEG show it. This
module moves each outline, plane by plane on the source grid, to the edge a reader would draw:

- the **bone level** of a plane is halfway (``bone_level``) between the soft tissue just
  outside the labels (median HU of a ring ``reach_mm``–2·``reach_mm`` out) and the brightest
  bone inside them (95th percentile): the edge of a blurred cortex, measured where it is, so a
  thin osteoporotic cortex or a soft reconstruction kernel sets a lower level than a sharp one;
- pixels up to ``reach_mm`` outside the labels and above the bone level join the nearest label;
- pixels up to ``reach_mm`` inside the labels at or below the **soft level** are removed when
  they connect to the soft tissue outside — a notch of soft tissue, not marrow behind a cortex;
  openings of one pixel (a hairline gap) do not connect. The soft level is ``soft_level`` of
  the way from soft tissue to cortex but never more than ``soft_margin_hu`` over the soft
  tissue: on a real chest CT (2.5 mm slices) a level of a quarter of the way (≈ 290 HU) peeled
  off cancellous bone of 140–280 HU that a reader includes, behind a cortex the thick slices
  had blurred open.

Nothing moves further than ``reach_mm``; a plane without bone contrast (bone no brighter than
``min_contrast_hu`` over the soft tissue) keeps its labels; a level never gains pixels in a
plane where it had none. Enclosed gaps of at most ``PINHOLE_MM2`` in the result are closed.
Pure numpy/OpenCV; about 0.3 s on a 300-slice neck.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from ..imaging.preprocess import canonical_view
from ..imaging.volume import Volume
from .postprocess import enclosed_holes

_K3 = np.ones((3, 3), np.uint8)
# Enclosed gaps up to this size in a moved outline are closed: pinholes left where added bone
# meets kept bone (seen on a real chest CT: 0.5–2 mm²). A vertebra's smallest true opening, a
# transverse foramen, is several times larger, and the canal far larger.
PINHOLE_MM2 = 4.0


@dataclass(frozen=True)
class OutlineConfig:
    """The card's ``outline`` section (absent: outlines stay as stage 1 drew them)."""

    reach_mm: float = 2.0
    bone_level: float = 0.5
    soft_level: float = 0.25
    bone_hu_range: tuple[float, float] = (200.0, 700.0)
    min_contrast_hu: float = 150.0
    soft_margin_hu: float = 60.0
    max_pixel_aspect: float = 1.2

    @classmethod
    def from_card(cls, section: Mapping[str, Any] | None) -> OutlineConfig | None:
        if not section:
            return None
        d = {k: v for k, v in section.items() if k in cls.__dataclass_fields__}
        if "bone_hu_range" in d:
            lo, hi = d["bone_hu_range"]
            d["bone_hu_range"] = (float(lo), float(hi))
        cfg = cls(**d)
        if not (0.0 < cfg.soft_level < cfg.bone_level < 1.0) or cfg.reach_mm <= 0:
            raise ValueError(f"invalid outline section in the model card: {dict(section)}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bone_hu_range": list(self.bone_hu_range)}


def outline_to_bone(labels: np.ndarray, volume: Volume, cfg: OutlineConfig) -> np.ndarray:
    """``labels`` (uint8 [z, y, x] in the volume's order, 0 background, 1..7 levels) with each
    outline moved onto the bone edge in every axial plane of ``volume``; a new array. Labels
    are returned unchanged when the planes' pixels are far from square (``max_pixel_aspect``):
    distances in pixels would then not be distances in mm."""
    src = np.asarray(labels, np.uint8)
    if src.shape != tuple(volume.hu.shape):
        raise ValueError(f"labels {src.shape} do not match the volume {volume.hu.shape}")
    hu, affine, axes = canonical_view(volume)
    px_x, px_y = (float(np.linalg.norm(affine[:3, i])) for i in (0, 1))
    if max(px_x, px_y) > cfg.max_pixel_aspect * min(px_x, px_y) or not src.any():
        return np.array(src, copy=True)
    view = np.transpose(src, axes) if axes != (0, 1, 2) else src
    out = view.copy()
    reach_px = cfg.reach_mm / float(np.sqrt(px_x * px_y))
    pinhole_px = PINHOLE_MM2 / (px_x * px_y)
    for z in np.flatnonzero(view.reshape(view.shape[0], -1).any(axis=1)).tolist():
        _plane(out[z], np.asarray(hu[z]), reach_px, pinhole_px, cfg)
    return np.transpose(out, np.argsort(axes)) if axes != (0, 1, 2) else out


def _plane(
    lab: np.ndarray, hu: np.ndarray, reach_px: float, pinhole_px: float, cfg: OutlineConfig
) -> None:
    """One plane's labels (modified in place) moved onto its bone edge."""
    pad = int(np.ceil(2 * reach_px)) + 2
    ys, xs = np.flatnonzero(lab.any(axis=1)), np.flatnonzero(lab.any(axis=0))
    y0, y1 = max(int(ys[0]) - pad, 0), min(int(ys[-1]) + pad + 1, lab.shape[0])
    x0, x1 = max(int(xs[0]) - pad, 0), min(int(xs[-1]) + pad + 1, lab.shape[1])
    lb = lab[y0:y1, x0:x1]
    h = hu[y0:y1, x0:x1].astype(np.float32)
    inside = lb > 0
    outside = ~inside
    d_out = cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, 5)
    d_in = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5)
    ring = (d_out > reach_px) & (d_out <= 2 * reach_px)
    if ring.sum() < 20:
        return
    soft = float(np.median(h[ring]))
    cortex = float(np.percentile(h[inside], 95))
    if cortex - soft < cfg.min_contrast_hu:
        return
    lo, hi = cfg.bone_hu_range
    bone_at = float(np.clip(soft + cfg.bone_level * (cortex - soft), lo, hi))
    soft_at = min(soft + cfg.soft_level * (cortex - soft), soft + cfg.soft_margin_hu, bone_at)
    # soft tissue reached from outside: one-pixel openings closed, so a hairline does not leak
    soft_px = cv2.morphologyEx((h <= soft_at).astype(np.uint8), cv2.MORPH_OPEN, _K3) > 0
    zone = soft_px & ((d_in <= reach_px) | outside)
    _, comp = cv2.connectedComponents(zone.astype(np.uint8), connectivity=4)
    reached = np.unique(comp[zone & (d_out > 1.5)])
    keep = inside & ~np.isin(comp, reached[reached > 0])
    new = keep | ((h > bone_at) & outside & (d_out <= reach_px))
    new |= _pinholes(new, pinhole_px)
    lab[y0:y1, x0:x1] = np.where(new, nearest_label(lb), 0)


def _pinholes(mask: np.ndarray, max_px: float) -> np.ndarray:
    """The background pixels of ``mask`` in enclosed gaps (:func:`enclosed_holes`) of at most
    ``max_px`` pixels."""
    _n, comp, stats, _ = cv2.connectedComponentsWithStats(
        enclosed_holes(mask).astype(np.uint8), connectivity=4
    )
    small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] <= max_px) + 1
    pinholes: np.ndarray = np.isin(comp, small)
    return pinholes


def nearest_label(plane: np.ndarray) -> np.ndarray:
    """For every pixel of a label plane (uint8, 0 background), the label of the nearest labelled
    pixel (the plane must have one)."""
    inside = plane > 0
    _, nearest = cv2.distanceTransformWithLabels(
        (~inside).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    iy, ix = np.nonzero(inside)  # cv2 numbers the zero pixels in raster order from 1
    lut = np.zeros(int(nearest.max()) + 1, np.uint8)
    lut[1 : iy.size + 1] = plane[iy, ix]
    result: np.ndarray = lut[nearest]
    return result
