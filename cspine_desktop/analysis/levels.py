"""Anatomical level assignment: C1 above C2 above … C7, each with a plausible height.

An axial slice alone says little about *which* cervical level it shows (C4 and C5 look alike);
the segmentation model therefore confuses neighbouring levels. Reading the spine as a whole —
the way a radiologist counts down from C2 — fixes that: the grid planes holding vertebrae are
split into consecutive runs, one per level, in head-to-feet order, each run's height within an
anatomical range, choosing the split that agrees with the most predicted pixels (an exact
dynamic programme). Within each plane, every connected piece of bone then takes the plane's
level — except a piece that is not the plane's largest and that the model gave to the level
just above: one axial plane often cuts the body of one vertebra and, separately, the
down-sloping spinous process of the vertebra above.

Arrays are on the model grid [Zg, S, S], grid z toward the feet.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..vertebrae import NAMES

# Height range (mm) of the planes in which a level dominates: vertebra + the disc below it.
# C1 is a thin ring; C2 includes the dens; C3–C7 ≈ 13–15 mm body + 4–6 mm disc (ANATOMY.md),
# widened for size variation, lordosis and elderly disc narrowing.
LEVEL_TYPICAL_MM: tuple[float, ...] = (12.0, 30.0, 18.0, 18.0, 18.0, 18.0, 18.0)
# Cost, in planes' worth of agreeing votes, of each plane a run deviates from its typical
# height: decisive votes override it, uninformative ones (neighbouring levels confused) do not.
HEIGHT_PRIOR_PER_PLANE = 0.5
LEVEL_HEIGHT_MM: tuple[tuple[float, float], ...] = (
    (4.0, 26.0),
    (14.0, 50.0),
    (9.0, 30.0),
    (9.0, 30.0),
    (9.0, 30.0),
    (9.0, 30.0),
    (9.0, 32.0),
)


@dataclass(frozen=True)
class LevelAssignment:
    labels: np.ndarray  # uint8 [Zg, S, S]
    plane_level: np.ndarray  # int8 [Zg]: level 1–7 of each plane, 0 outside the spine
    relabelled_fraction: float  # share of vertebra pixels whose label changed
    warnings: tuple[str, ...]


def assign_levels(
    labels: np.ndarray, slice_step_mm: float, min_voxels: int = 10
) -> LevelAssignment:
    """Relabel ``labels`` so the levels run C1→C7 head to feet with plausible heights."""
    lab = np.asarray(labels, dtype=np.uint8)
    nz = lab.shape[0]
    flat = lab.reshape(nz, -1)
    counts = np.stack([(flat == v).sum(axis=1) for v in range(1, len(NAMES) + 1)], axis=1)
    spine = np.nonzero(counts.sum(axis=1) >= min_voxels)[0]
    plane_level = np.zeros(nz, np.int8)
    if spine.size == 0:
        return LevelAssignment(lab.copy(), plane_level, 0.0, ())
    z0, z1 = int(spine[0]), int(spine[-1])
    votes = counts[z0 : z1 + 1].astype(np.float64)
    votes /= np.maximum(votes.sum(axis=1, keepdims=True), 1.0)  # per-plane shares
    runs = _best_runs(votes, slice_step_mm)
    if runs is None:
        return LevelAssignment(
            lab.copy(),
            plane_level,
            0.0,
            ("The vertebrae span more planes than C1–C7 can; levels were left as predicted.",),
        )
    for level, start, stop in runs:
        plane_level[z0 + start : z0 + stop] = level
    out = lab.copy()
    for z in range(z0, z1 + 1):
        _relabel_plane(out[z], int(plane_level[z]))
    n_fg = int((lab > 0).sum())
    changed = float((out != lab).sum() / n_fg) if n_fg else 0.0
    warnings: tuple[str, ...] = ()
    if changed > 0.25:
        warnings = (
            f"{changed:.0%} of the vertebra pixels were relabelled to follow the anatomical "
            "order; check the level labels on the sagittal view.",
        )
    return LevelAssignment(out, plane_level, changed, warnings)


def _relabel_plane(plane: np.ndarray, level: int) -> None:
    """In place: bone pieces of one plane take ``level`` unless they are a smaller piece the
    model gave to ``level − 1`` (the spinous process of the vertebra above)."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats(
        (plane > 0).astype(np.uint8), connectivity=8
    )
    if n <= 1:
        return
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    for c in range(1, n):
        piece = comp == c
        if c != largest and level > 1:
            majority = int(np.bincount(plane[piece], minlength=len(NAMES) + 1).argmax())
            if majority == level - 1:
                plane[piece] = level - 1
                continue
        plane[piece] = level


def _best_runs(counts: np.ndarray, step_mm: float) -> list[tuple[int, int, int]] | None:
    """Split planes 0..N−1 into consecutive level runs maximising the agreeing votes minus the
    height prior.

    The first and last runs may be shorter than their minimum (the scan may cut them) and are
    not penalised for being short.
    Returns [(level 1–7, start, stop)] or None when no split fits.
    """
    n, n_levels = counts.shape
    prefix = np.vstack([np.zeros((1, n_levels)), np.cumsum(counts, axis=0)])
    dmin = [max(1, int(np.floor(lo / step_mm))) for lo, _ in LEVEL_HEIGHT_MM]
    dmax = [max(1, int(np.ceil(hi / step_mm))) for _, hi in LEVEL_HEIGHT_MM]
    typ = [t / step_mm for t in LEVEL_TYPICAL_MM]
    neg = -np.inf
    # best[i, v]: best score for planes [0, i) with the last run being level v (0-based)
    best = np.full((n + 1, n_levels), neg)
    back = np.zeros((n + 1, n_levels), dtype=np.int64)  # run length
    for i in range(1, n + 1):
        for v in range(n_levels):
            lo = 1 if i == n else dmin[v]  # the last run may be cut by the scan
            for d in range(1, min(dmax[v], i) + 1):
                start = i - d
                if start == 0:
                    prev = 0.0  # first run: any level, any length ≤ its maximum
                elif d < lo or v == 0:
                    continue
                else:
                    prev = best[start, v - 1]
                    if prev == neg:
                        continue
                dev = d - typ[v]
                if start == 0 or i == n:
                    dev = max(dev, 0.0)  # a run cut by the scan's edge may be short
                score = prev + prefix[i, v] - prefix[start, v] - HEIGHT_PRIOR_PER_PLANE * abs(dev)
                if score > best[i, v]:
                    best[i, v] = score
                    back[i, v] = d
    v = int(np.argmax(best[n]))
    if best[n, v] == neg:
        return None
    runs = []
    i = n
    while i > 0:
        d = int(back[i, v])
        runs.append((v + 1, i - d, i))
        i -= d
        v -= 1
    return runs[::-1]
