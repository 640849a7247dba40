"""Clean the predicted vertebra labels on the model grid and check they make anatomical sense.

Per vertebra, only the largest 3-D connected part is kept (stray islands of a label elsewhere
in the neck are set to background), and for C2 the dens standing on it (:func:`with_dens`);
the vertebrae are then checked to lie in order, C1 nearest the head (smallest grid z) down to
C7. Pure numpy/OpenCV; arrays are [Zg, S, S] on the model grid (grid z increases toward the
feet).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

from ..vertebrae import NAMES
from .levels import assign_levels

DENS_GAP_MM = 4.0  # widest background gap between C2's body and a part kept as its dens
DENS_BASE_MM = 6.0  # the top of C2's body the dens stands on
DENS_OFFSET_MM = 3.0  # how far the dens's centre may lie outside that top's outline


@dataclass(frozen=True)
class CleanLabels:
    """labels: uint8 [Zg, S, S] after cleanup; warnings: plain sentences; removed_voxels per
    vertebra (C1..C7) tells how much was dropped as stray islands; relabelled_fraction is the
    share of vertebra pixels the level assignment relabelled (0 when it did not run);
    level_problems: where the levels disagree with the anatomy found in the CT (reasons for
    the plausibility checks); levels_confirmed: the anatomy found in the CT agrees with the
    levels at every boundary (the relabelled share then says nothing against them)."""

    labels: np.ndarray
    warnings: tuple[str, ...]
    removed_voxels: tuple[int, ...]
    relabelled_fraction: float = 0.0
    level_problems: tuple[str, ...] = ()
    levels_confirmed: bool = False


def enclosed_holes(mask: np.ndarray) -> np.ndarray:
    """Background pixels of a 2-D mask not connected (4-connectivity) to the image border."""
    inv = (mask == 0).astype(np.uint8)
    n, comp = cv2.connectedComponents(inv, connectivity=4)
    border = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    inside = np.setdiff1d(np.arange(1, n), border)
    holes: np.ndarray = np.isin(comp, inside)
    return holes


def components_3d(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(component index per voxel, 0 outside the mask; voxel count per index, [0] = 0) of a
    boolean [Z, Y, X] mask.

    Connectivity: 8 within a plane; across planes, two in-plane components belong together
    when they share a pixel position (6-connectivity through planes).
    """
    mask = np.asarray(mask, dtype=bool)
    comp = np.zeros(mask.shape, dtype=np.int32)
    sizes: list[int] = [0]
    offset = 0
    for z in np.nonzero(mask.reshape(mask.shape[0], -1).any(axis=1))[0].tolist():
        n, lab, stats, _ = cv2.connectedComponentsWithStats(
            mask[z].astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
        )
        lab[lab > 0] += offset
        comp[z] = lab
        sizes.extend(stats[1:, cv2.CC_STAT_AREA].tolist())
        offset += n - 1
    parent = np.arange(offset + 1)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = int(parent[a])
        return a

    for z in range(mask.shape[0] - 1):
        a, b = comp[z], comp[z + 1]
        both = (a > 0) & (b > 0)
        if not both.any():
            continue
        codes = np.unique(a[both].astype(np.int64) * (offset + 1) + b[both])  # 1-D: fast
        for i, j in zip(*np.divmod(codes, offset + 1)):
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(offset + 1)])
    total = np.bincount(roots, weights=np.asarray(sizes, dtype=np.float64), minlength=offset + 1)
    total[0] = 0
    return roots[comp], total.astype(np.int64)


def largest_component_3d(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of a boolean [Z, Y, X] mask (:func:`components_3d`)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros_like(mask)
    comp, sizes = components_3d(mask)
    largest: np.ndarray = comp == int(np.argmax(sizes))
    return largest


def with_dens(c2: np.ndarray, body: np.ndarray, step_mm: float, pixel_mm: float) -> np.ndarray:
    """``body`` (C2's largest part) with the parts of ``c2`` that stand on it as the dens does.

    The dens rises 15 mm above C2's body (ANATOMY). Where the segmentation leaves a plane of
    background at its base (partial volume at 2 mm planes, or a type II fracture line, which
    runs exactly there) the dens is a part of its own, and keeping only the largest part would
    drop it: C2's outline, and so the crops stage 2 judges C2 on, would end below the dens.
    A part of ``c2`` is kept when its lowest plane is within ``DENS_GAP_MM`` above the body's
    top and its centre lies over the body's top ``DENS_BASE_MM`` (widened by
    ``DENS_OFFSET_MM``); stray islands elsewhere are still dropped."""
    rest = np.asarray(c2, dtype=bool) & ~body
    planes = np.nonzero(body.reshape(body.shape[0], -1).any(axis=1))[0]
    if planes.size == 0 or not rest.any():
        return body
    top = int(planes[0])
    rest[top:] = False  # only what lies above the body's top plane
    if not rest.any():
        return body
    footprint = np.asarray(body[top : top + max(1, round(DENS_BASE_MM / step_mm))].any(axis=0))
    r = max(1, round(DENS_OFFSET_MM / pixel_mm))
    base = cv2.dilate(footprint.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    lowest_ok = top - 1 - round(DENS_GAP_MM / step_mm)
    comp, sizes = components_3d(rest)
    out: np.ndarray = body.copy()
    for i in np.nonzero(sizes)[0]:
        part = comp == i
        zs = np.nonzero(part.reshape(part.shape[0], -1).any(axis=1))[0]
        ys, xs = np.nonzero(part.any(axis=0))
        if zs[-1] >= lowest_ok and base[round(float(ys.mean())), round(float(xs.mean()))]:
            out |= part
    return out


def clean_labels(
    labels: np.ndarray,
    min_voxels: int = 10,
    slice_step_mm: float | None = None,
    hu: np.ndarray | None = None,
    pixel_mm: float | None = None,
) -> CleanLabels:
    """Keep each vertebra's largest connected part; warn when the order C1→C7 is broken.

    ``min_voxels``: a vertebra with fewer voxels than this in total is treated as absent (its
    voxels become background) — it is noise, not a vertebra in the field of view.
    ``slice_step_mm``: when given, levels are first assigned down the whole spine
    (:func:`~cspine_desktop.analysis.levels.assign_levels`) so confused neighbouring levels
    are put back in anatomical order; with ``hu`` (the CT on the same grid) and ``pixel_mm``
    the count starts from the dens found in the CT, so a skull or thorax in view cannot
    shift the levels.
    """
    src = np.asarray(labels, dtype=np.uint8)
    level_warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    relabelled = 0.0
    confirmed = False
    if slice_step_mm is not None:
        assigned = assign_levels(
            src, slice_step_mm, min_voxels=min_voxels, hu=hu, pixel_mm=pixel_mm
        )
        src, level_warnings = assigned.labels, assigned.warnings
        relabelled, problems = assigned.relabelled_fraction, assigned.problems
        confirmed = assigned.confirmed
    out = np.zeros_like(src)
    removed = []
    for v in range(1, len(NAMES) + 1):
        mask = src == v
        n = int(mask.sum())
        if n < min_voxels:
            removed.append(n)
            continue
        keep = largest_component_3d(mask)
        if v == 2 and slice_step_mm is not None and pixel_mm is not None:
            keep = with_dens(mask, keep, slice_step_mm, pixel_mm)
        out[keep] = v
        removed.append(n - int(keep.sum()))
    return CleanLabels(
        out, level_warnings + order_warnings(out), tuple(removed), relabelled, problems, confirmed
    )


def centroids_z(labels: np.ndarray) -> dict[str, float]:
    """Mean grid z of every vertebra present in ``labels``."""
    flat = labels.reshape(labels.shape[0], -1)
    zs = np.arange(labels.shape[0], dtype=np.float64)
    out = {}
    for v, name in enumerate(NAMES, start=1):
        counts = (flat == v).sum(axis=1)
        if counts.sum():
            out[name] = float((counts * zs).sum() / counts.sum())
    return out


def order_warnings(labels: np.ndarray) -> tuple[str, ...]:
    """A warning per neighbouring pair (in C1..C7 order) found upside down (lower one above)."""
    cz = centroids_z(labels)
    present = [n for n in NAMES if n in cz]
    out = []
    for upper, lower in pairwise(present):
        if cz[lower] <= cz[upper]:
            out.append(
                f"The vertebra order looks wrong: {lower} was found at or above {upper}. "
                "Check the labels before trusting the per-vertebra verdicts."
            )
    return tuple(out)


def edge_notes(labels: np.ndarray) -> dict[str, str]:
    """Vertebrae touching the first or last grid plane: possibly cut by the scan's edge."""
    notes = {}
    first, last = labels[0], labels[-1]
    for v, name in enumerate(NAMES, start=1):
        if (first == v).any() or (last == v).any():
            notes[name] = "Reaches the edge of the scan; part of it may be outside the images."
    return notes
