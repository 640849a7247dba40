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

With the CT itself (HU on the same grid), the count starts from the anatomy rather than from
the field of view: the tip of the dens is found in the midline sagittal plane (the top of the
column of vertebral bodies, with C1's anterior arch in front of it), C1's ring is placed around
it and C2 below it, anything labelled above it (skull base, clivus) is cleared, and each level
below starts preferably where a body starts after a disc. The labels then only say where the
levels change, not which level is which — so a model that counts one level off, or takes the
skull base for C1 on a head-and-neck scan, is corrected; the relabelled fraction reports it.

Arrays are on the model grid [Zg, S, S], grid z toward the feet.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

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


# C1's ring starts at most this far above the dens tip (the tip reaches the ring's top or
# rises a little above it); bone labelled above it is skull base (condyles, clivus)
C1_ABOVE_DENS_MM = 5.0
# the dens tip anchors C1 when the predicted vertebrae start no lower than this below it
ANCHOR_REACH_MM = 24.0
# a level starting where a body block starts (just below a disc) earns this many planes'
# worth of agreeing votes
DISC_BONUS_PLANES = 3.0
# C2 takes over from C1's ring this far below the dens tip (the lateral atlanto-axial joints)
C2_BELOW_TIP_MM = 15.0


@dataclass(frozen=True)
class LevelAssignment:
    labels: np.ndarray  # uint8 [Zg, S, S]
    plane_level: np.ndarray  # int8 [Zg]: level 1–7 of each plane, 0 outside the spine
    relabelled_fraction: float  # share of vertebra pixels whose label changed
    warnings: tuple[str, ...]
    anchors: Anchors | None = None  # landmarks found in the HU (None: no HU given)


def assign_levels(
    labels: np.ndarray,
    slice_step_mm: float,
    min_voxels: int = 10,
    hu: np.ndarray | None = None,
    pixel_mm: float | None = None,
) -> LevelAssignment:
    """Relabel ``labels`` so the levels run C1→C7 head to feet with plausible heights.

    With ``hu`` (the CT on the same grid, ``pixel_mm`` in-plane) the count starts from the
    anatomy: the dens tip found in the HU (:func:`find_anchors`) places C2, C1's ring just
    around and above it, and anything labelled higher (skull base, clivus) is cleared; the
    levels below are then counted from there, so a skull or thorax in view cannot shift them.
    """
    lab = np.asarray(labels, dtype=np.uint8)
    nz = lab.shape[0]
    flat = lab.reshape(nz, -1)
    counts = np.stack([(flat == v).sum(axis=1) for v in range(1, len(NAMES) + 1)], axis=1)
    spine = np.nonzero(counts.sum(axis=1) >= min_voxels)[0]
    plane_level = np.zeros(nz, np.int8)
    if spine.size == 0:
        return LevelAssignment(lab.copy(), plane_level, 0.0, ())
    z0, z1 = int(spine[0]), int(spine[-1])
    anchors = None
    c1_first = False
    if hu is not None and pixel_mm:
        anchors = find_anchors(hu, lab, slice_step_mm, pixel_mm)
        if anchors.dens_tip is not None:
            top = max(0, anchors.dens_tip - round(C1_ABOVE_DENS_MM / slice_step_mm))
            if z0 <= anchors.dens_tip + ANCHOR_REACH_MM / slice_step_mm:
                c1_first = True
                z0 = max(z0, top)
                spine = spine[spine >= z0]
                if spine.size == 0:
                    return LevelAssignment(lab.copy(), plane_level, 0.0, (), anchors)
                z0, z1 = int(spine[0]), int(spine[-1])
    votes = counts[z0 : z1 + 1].astype(np.float64)
    votes /= np.maximum(votes.sum(axis=1, keepdims=True), 1.0)  # per-plane shares
    boundary = None
    first_len = None
    if c1_first and anchors is not None and anchors.dens_tip is not None:
        # a level starts where a separate body block starts (just below a disc)
        boundary = np.zeros(z1 - z0 + 1)
        for t in anchors.body_tops:
            for dz, w in ((-1, 0.5), (0, 1.0), (1, 0.5)):
                if 0 <= t + dz - z0 < boundary.size:
                    boundary[t + dz - z0] = max(boundary[t + dz - z0], w)
        boundary *= DISC_BONUS_PLANES
        # C1's ring ends (C2 starts) C2_BELOW_TIP_MM below the dens tip
        end = anchors.dens_tip + C2_BELOW_TIP_MM / slice_step_mm - z0
        tol = max(1.0, 2.0 / slice_step_mm)
        first_len = (max(1, int(np.floor(end - tol))), max(1, int(np.ceil(end + tol))))
    runs = _best_runs(votes, slice_step_mm, 1 if c1_first else None, boundary, first_len)
    if runs is None:
        return LevelAssignment(
            lab.copy(),
            plane_level,
            0.0,
            ("The vertebrae span more planes than C1–C7 can; levels were left as predicted.",),
            anchors,
        )
    for level, start, stop in runs:
        plane_level[z0 + start : z0 + stop] = level
    out = lab.copy()
    out[:z0] = 0  # above C1's ring when anchored (skull base); nothing otherwise
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
    return LevelAssignment(out, plane_level, changed, warnings, anchors)


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


def _best_runs(
    counts: np.ndarray,
    step_mm: float,
    first_level: int | None = None,
    boundary: np.ndarray | None = None,
    first_len: tuple[int, int] | None = None,
) -> list[tuple[int, int, int]] | None:
    """Split planes 0..N−1 into consecutive level runs maximising the agreeing votes minus the
    height prior.

    The first and last runs may be shorter than their minimum (the scan may cut them) and are
    not penalised for being short.
    ``first_level``: when given (anchored on the anatomy), the first run must be that level
    and is not cut by the scan; a run then scores the votes of whichever label it holds most
    (the level itself is counted from the anchor, the votes only say where labels change),
    plus ``boundary[start]`` planes' worth for starting where a disc ends; ``first_len``
    bounds the first run's length (planes).
    Returns [(level 1–7, start, stop)] or None when no split fits.
    """
    n, n_levels = counts.shape
    prefix = np.vstack([np.zeros((1, n_levels)), np.cumsum(counts, axis=0)])
    dmin = [max(1, int(np.floor(lo / step_mm))) for lo, _ in LEVEL_HEIGHT_MM]
    dmax = [max(1, int(np.ceil(hi / step_mm))) for _, hi in LEVEL_HEIGHT_MM]
    typ = [t / step_mm for t in LEVEL_TYPICAL_MM]
    anchored = first_level is not None
    bonus = np.zeros(n + 1) if boundary is None else np.append(boundary, 0.0)
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
                    if anchored and v != first_level - 1:
                        continue  # anchored: the first run is that level
                    if first_len is not None and not first_len[0] <= d <= first_len[1]:
                        continue
                    prev = 0.0  # first run: any level, any length ≤ its maximum
                elif d < lo or v == 0:
                    continue
                else:
                    prev = best[start, v - 1]
                    if prev == neg:
                        continue
                    prev += bonus[start]
                dev = d - typ[v]
                if (start == 0 and not anchored) or i == n:
                    dev = max(dev, 0.0)  # a run cut by the scan's edge may be short
                agree = prefix[i] - prefix[start]
                vote = float(agree.max()) if anchored else float(agree[v])
                score = prev + vote - HEIGHT_PRIOR_PER_PLANE * abs(dev)
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


# ---------------------------------------------------------------------------------------------
# Anatomical anchors from the CT itself
# ---------------------------------------------------------------------------------------------

BONE_HU = (200.0, 150.0, 120.0)  # bone thresholds tried in turn (osteoporosis: lower)
BLOCK_AP_MM = (10.0, 35.0)  # AP extent of a body block (the thin C1 arch and the skull: not)
CHAIN_GAP_MM = 10.0  # disc (or dens–basion gap) between two stacked blocks, at most
MAX_SLOPE = 0.8  # AP extent / height of C2 (the sloping clivus is about as wide as tall)
DISC_WAIST = 0.6  # bone across a bridged disc's plane, at most this share of the bodies' AP


@dataclass(frozen=True)
class Anchors:
    """Grid planes of landmarks found in the HU (None when not found): ``dens_tip``, the top
    of C2 (C1's ring lies around it; occipital condyles and clivus above it), and
    ``column_bottom``, the lowest plane of the column of vertebral bodies in view."""

    dens_tip: int | None = None
    column_bottom: int | None = None
    body_tops: tuple[int, ...] = ()  # top planes of the separate body blocks below C2


def _axis_xy(labels: np.ndarray) -> tuple[float, float] | None:
    """Median in-plane position (x, y) of the predicted vertebra pixels."""
    _, yy, xx = np.nonzero(labels)
    if xx.size == 0:
        return None
    return float(np.median(xx)), float(np.median(yy))


def find_anchors(
    hu: np.ndarray, labels: np.ndarray, slice_step_mm: float, pixel_mm: float
) -> Anchors:
    """Find the tip of the dens (the top of C2) in the HU.

    In the midline sagittal plane the vertebral bodies form a column of bone blocks stacked
    with discs between them; above C2 the column ends at the dens tip (the clivus above it
    slopes forward, the C1 anterior arch in front of it is thin). The column is the chain of
    stacked blocks holding the most bone; its top-most upright block starts at the dens tip.
    The midline is the in-plane median of the predicted vertebrae, so a skull or thorax in
    view, or labels wrongly put on them, move it little. A tip far from where the predicted
    vertebrae start (more than 50 mm above or 70 mm below) is not trusted."""
    axis = _axis_xy(labels)
    if axis is None:
        return Anchors()
    ax, ay = axis
    half = max(1, round(2.0 / pixel_mm))
    x0 = int(np.clip(round(ax) - half, 0, hu.shape[2] - 1))
    sag = np.asarray(hu[:, :, x0 : x0 + 2 * half + 1], np.float32).mean(axis=2)  # [Zg, S]
    sag = cv2.GaussianBlur(sag, (0, 0), sigmaX=0.8, sigmaY=0.3)
    first = int(np.nonzero(labels.reshape(labels.shape[0], -1).any(axis=1))[0][0])
    lo = first - 50.0 / slice_step_mm
    hi = first + 70.0 / slice_step_mm
    # osteoporotic bodies only pass the lower thresholds, where the column may break less;
    # the highest column top found is the dens tip
    found = [_column_top(sag > t, ay, slice_step_mm, pixel_mm) for t in BONE_HU]
    tips = [a for a in found if a.dens_tip is not None and lo <= a.dens_tip <= hi]
    return min(tips, key=lambda a: a.dens_tip or 0) if tips else Anchors()


def _split_at_discs(
    piece: np.ndarray, top: int, height: int, slice_step_mm: float
) -> list[tuple[int, int]]:
    """Split one bone component of the midline sagittal image at the discs it bridges.

    Two bodies touch across a disc where the antero-inferior lip of the upper one reaches
    down in front of the lower one's top (C2's lip over C3, lordosis): on the disc's plane
    the bone narrows to the lip and endplate corners, well under the bodies' AP extent above
    and below it (at most ``DISC_WAIST`` of it).
    The dens rising from C2's body narrows only one way and is not split off. A body's
    cancellous core may read below the threshold (only the shell passes it): the bone's
    enclosed holes taller than a bridged disc are filled first, so a hollow body does not
    look like a disc while a disc closed by bone in front and behind still does.
    Returns [(top, bottom)] grid planes, head to feet."""
    cols = np.nonzero(piece[top : top + height].any(axis=0))[0]
    bone = np.pad(piece[top : top + height, cols[0] : cols[-1] + 1], 1).astype(np.uint8)
    outside = bone.copy()
    cv2.floodFill(outside, None, (0, 0), 2)
    _, holes, stats, _ = cv2.connectedComponentsWithStats((outside == 0).astype(np.uint8), 4)
    tall = np.nonzero(stats[:, cv2.CC_STAT_HEIGHT] * slice_step_mm > 4.0)[0]
    filled = (bone > 0) | np.isin(holes, tall[tall > 0])
    width = filled[1:-1, 1:-1].sum(axis=1).astype(np.float64)
    k = max(2, round(8.0 / slice_step_mm))  # bodies within 8 mm either side of the disc
    min_len = max(1, round(4.0 / slice_step_mm))  # neither part thinner than 4 mm
    cuts: list[int] = []
    for r in range(min_len, height - min_len + 1):
        above, below = width[max(0, r - k) : r].max(), width[r + 1 : r + 1 + k].max(initial=0.0)
        window = width[max(0, r - k) : r + 1 + k]
        if width[r] <= DISC_WAIST * min(above, below) and width[r] == window.min():
            if cuts and r - cuts[-1] < min_len:
                continue  # the same disc (a flat minimum): keep its first plane
            cuts.append(r)
    edges = [0, *cuts, height]
    return [(top + a, top + b - 1) for a, b in pairwise(edges)]


def _column_top(mask: np.ndarray, ay: float, slice_step_mm: float, pixel_mm: float) -> Anchors:
    """Top of the vertebral-body column in a thresholded midline sagittal image [Zg, S]."""
    n, comp, stats, cents = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    blocks = []  # (top z, bottom z, y centre px, height mm, AP mm, component)
    small = []  # thin bone in the midline (the C1 anterior arch): (top z, bottom z, y px)
    for i in range(1, n):
        z_px, w_px, h_px = stats[i, cv2.CC_STAT_TOP], stats[i, 2], stats[i, 3]
        height, ap, yc = h_px * slice_step_mm, w_px * pixel_mm, float(cents[i][0])
        # bodies lie in front of the canal: up to 40 mm anterior of the vertebrae's median
        # AP position, at most 8 mm behind it
        in_band = ay - 40.0 / pixel_mm <= yc <= ay + 8.0 / pixel_mm
        if in_band and height >= 7.0 and BLOCK_AP_MM[0] <= ap <= BLOCK_AP_MM[1]:
            for top, bottom in _split_at_discs(comp == i, int(z_px), int(h_px), slice_step_mm):
                piece = comp[top : bottom + 1] == i
                cols = np.nonzero(piece.any(axis=0))[0]
                yc_p = float(np.nonzero(piece)[1].mean())
                ap_p = float(cols[-1] - cols[0] + 1) * pixel_mm
                h_mm = (bottom - top + 1) * slice_step_mm
                if h_mm >= 7.0 and BLOCK_AP_MM[0] <= ap_p <= BLOCK_AP_MM[1]:
                    blocks.append((top, bottom, yc_p, h_mm, ap_p, i))
        elif 2.0 <= ap < BLOCK_AP_MM[0] and 4.0 <= height <= 24.0:
            small.append((int(z_px), int(z_px + h_px - 1), yc))
    blocks.sort()

    def below(i: int) -> int | None:
        top, bottom, yc = blocks[i][0], blocks[i][1], blocks[i][2]
        nxt = [
            j
            for j, b in enumerate(blocks)
            if b[0] > bottom
            and (b[0] - bottom) * slice_step_mm <= CHAIN_GAP_MM
            and abs(b[2] - yc) * pixel_mm <= 12.0
            and b[0] > top
        ]
        return min(nxt, key=lambda j: blocks[j][0]) if nxt else None

    best: list[int] = []
    best_bone = 0.0
    for i in range(len(blocks)):
        chain = [i]
        while (j := below(chain[-1])) is not None:
            chain.append(j)
        bone = sum(blocks[j][3] for j in chain)
        if bone > best_bone:
            best, best_bone = chain, bone
    if best_bone < 40.0:  # less than ~3 bodies: not a spine column
        return Anchors()
    for pos, j in enumerate(best):
        top, _, _, height, ap, ci = blocks[j]
        if top > 0 and height >= 12.0 and ap / height <= MAX_SLOPE:  # not cut by the scan
            # C2 only if C1's anterior arch sits in front of the dens, at its height
            rows = comp[top : top + max(1, round(4.0 / slice_step_mm))] == ci
            front = float(np.nonzero(rows.any(axis=0))[0].min())  # the dens's front
            reach = 14.0 / slice_step_mm
            arch = any(
                front - 14.0 / pixel_mm <= y <= front + 1.0 / pixel_mm
                and z0 <= top + reach
                and z1 >= top - 4.0 / slice_step_mm
                for z0, z1, y in small
            )
            if not arch:  # no arch in front: not C2 (e.g. a scan starting lower)
                return Anchors()
            tops = tuple(blocks[k][0] for k in best[pos + 1 :])
            return Anchors(top, blocks[best[-1]][1], tops)
    return Anchors()
