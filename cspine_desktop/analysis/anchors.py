"""Anatomical anchors found in the CT itself: the tip of the dens (the top of C2) and the
column of vertebral bodies below it, read from the midline sagittal plane of the HU on the
model grid [Zg, S, S] (grid z toward the feet); and the top of the thoracic spine, where ribs
first lie beside the vertebrae (T1 carries the first ribs). :mod:`.levels` counts the levels
from them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

import cv2
import numpy as np

BONE_HU = (200.0, 150.0, 120.0)  # bone thresholds tried in turn (osteoporosis: lower)
BLOCK_AP_MM = (10.0, 35.0)  # AP extent of a body block (the thin C1 arch and the skull: not)
CHAIN_GAP_MM = 10.0  # disc (or dens–basion gap) between two stacked blocks, at most
MAX_SLOPE = 0.8  # AP extent / height of C2 (the sloping clivus is about as wide as tall)
DISC_WAIST = 0.6  # bone across a bridged disc's plane, at most this share of the bodies' AP
# The dens above C2's body is followed up while the body's top columns hold at least
# DENS_BONE_MM of bone at DENS_HU (cancellous bone: 150–400 HU, less with osteoporosis; a
# hollow dens shows only its two rims), for at most its height (≈ 15 mm, ANATOMY.md) + 5 mm
DENS_HU = BONE_HU[-1]
DENS_BONE_MM = 2.0
DENS_MAX_MM = 20.0
# C1's anterior arch may touch the dens in the midline (the atlanto-dental joint is 1–3 mm
# wide, thinner than a pixel where the arch leans on the dens): the two are then one bone
# component, and the arch is told by a thin run in front of the dens with a gap between over
# at least FUSED_ARCH_MIN_MM of height, on a block at least FUSED_ARCH_MIN_HEIGHT_MM tall
# (the dens and C2's body: ≈ 35 mm; a lower body, 13–15 mm, with an osteophyte in front: not)
FUSED_ARCH_AP_MM = (2.0, 10.0)
FUSED_ARCH_GAP_MM = 4.0
FUSED_ARCH_MIN_MM = 4.0
FUSED_ARCH_MIN_HEIGHT_MM = 22.0
DENS_MIN_AP_MM = 5.0  # bone behind the arch, at least
# ... and with the column of bodies going on at least this far below the tip: C2 and C3–C7
# below a dens span 120–140 mm (ANATOMY.md). On the truth labels of 560 phantom studies the
# tips so found had 130–150 mm below them (quartiles); on the same scans cut to start at C3's
# or C4's top, where no dens is in view, a lower body's top passed the arch test 39 times,
# with at most 110 mm below it.
FUSED_ARCH_MIN_COLUMN_MM = 115.0

# Ribs beside the spine: bone 45–75 mm to either side of the spine's axis, from 20 mm in front
# of it to 25 mm behind it (rib necks, tubercles and angles; C7's transverse processes end
# within ±40 mm, the clavicles lie further forward, the scapulae further back). A plane shows
# ribs with at least RIB_MIN_AREA_MM2 of such bone on one side.
RIB_LATERAL_MM = (45.0, 75.0)
RIB_AP_MM = (-20.0, 25.0)
RIB_BONE_HU = 200.0
RIB_MIN_AREA_MM2 = 12.0
RIB_GAP_MM = 8.0  # gaps this short between planes with ribs are bridged
RIB_MIN_RUN_MM = 8.0  # the thorax shows ribs over at least this height (half if cut by the scan)
# The same bone signature appears around C1 (mastoids, C1's transverse processes, the skull
# base), from 30 mm above to 30 mm below the top of C1 on the phantom; ribs start ≥ 110 mm
# below it. So the ribs' top counts only this far below the first labelled plane (a skull
# base labelled C1 adds up to 28 mm), or below the dens tip when it was found.
RIB_BELOW_LABELS_MM = 60.0
RIB_BELOW_DENS_MM = 80.0
RIB_QUIET_MM = 20.0  # the lower neck above the first ribs: no rib-like bone beside it
AXIS_REACH_MM = 24.0  # the spine's axis is carried this far beyond the labelled planes


@dataclass(frozen=True)
class Anchors:
    """Grid planes of landmarks found in the HU (None when not found): ``dens_tip``, the top
    of C2 (C1's ring lies around it; occipital condyles and clivus above it), and
    ``column_bottom``, the lowest plane of the column of vertebral bodies in view."""

    dens_tip: int | None = None
    column_bottom: int | None = None
    # top planes of the separate body blocks below C2; with no C2 found (no dens to count
    # from), of every block of the column, for splitting a squeezed level again
    body_tops: tuple[int, ...] = ()
    rib_top: int | None = None  # the first plane with ribs beside the spine: T1's top


ENDPLATE_BAND_MM = 14.0  # the front of the column read for the bodies' endplates
ENDPLATE_RISE = 1.15  # an endplate's plane reads this much above the median of its neighbours
ENDPLATE_REACH_MM = 8.0  # its neighbours: the planes this far above and below it


def endplate_planes(
    hu: np.ndarray, labels: np.ndarray, slice_step_mm: float, pixel_mm: float
) -> tuple[int, ...]:
    """Grid planes where the CT shows a vertebral body's endplate, for splitting a squeezed
    level again where :func:`find_anchors` finds no body's top.

    In the midline sagittal image each plane is read over the first ``ENDPLATE_BAND_MM`` behind
    the front of the labelled column (the body); an endplate's plane is a local maximum of that
    mean HU, at least ``ENDPLATE_RISE`` times the median within ``ENDPLATE_REACH_MM``. At a
    disc the endplates of the bodies above and below meet within a plane or two of the lower
    body's top. Where osteoporotic cores read under every bone threshold and a narrow disc's
    plane over it (partial volume), the bodies form one block of bone with no top to find, and
    the endplates still show. Each disc gives up to two planes (both endplates) and a sclerotic
    core may give one: candidates, not a count."""
    mid = _midline(hu, labels, pixel_mm)
    if mid is None:
        return ()
    sag, xs, ay = mid
    midline = np.asarray(labels)[:, :, xs] > 0
    column = np.asarray(midline.any(axis=2))[:, : int(ay)]  # [Zg, S] in front of the axis
    band = max(1, round(ENDPLATE_BAND_MM / pixel_mm))
    front = np.full(sag.shape[0], np.nan)
    for z in np.flatnonzero(column.any(axis=1)):
        y = int(np.argmax(column[z]))
        front[z] = float(sag[z, y : y + band].mean())
    reach = max(2, round(ENDPLATE_REACH_MM / slice_step_mm))
    planes = []
    for z in np.flatnonzero(~np.isnan(front)):
        near = front[max(0, z - reach) : z + reach + 1]
        near = near[~np.isnan(near)]
        if near.size < 3:
            continue
        peak = front[z] >= np.nanmax(front[max(0, z - 1) : z + 2])
        if peak and front[z] >= ENDPLATE_RISE * float(np.median(near)):
            planes.append(int(z))
    return tuple(planes)


def _midline(
    hu: np.ndarray, labels: np.ndarray, pixel_mm: float
) -> tuple[np.ndarray, slice, float] | None:
    """The midline sagittal image [Zg, S] (the HU averaged over the 4 mm-wide slab of columns
    ``xs`` through the labelled vertebrae's median left–right position), ``xs``, and the
    vertebrae's median front-to-back row; None with nothing labelled."""
    axis = _axis_xy(labels)
    if axis is None:
        return None
    ax, ay = axis
    half = max(1, round(2.0 / pixel_mm))
    x0 = int(np.clip(round(ax) - half, 0, hu.shape[2] - 1))
    xs = slice(x0, x0 + 2 * half + 1)
    return np.asarray(hu[:, :, xs], np.float32).mean(axis=2), xs, ay


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
    mid = _midline(hu, labels, pixel_mm)
    if mid is None:
        return Anchors()
    sag, _, ay = mid
    sag = cv2.GaussianBlur(sag, (0, 0), sigmaX=0.8, sigmaY=0.3)
    first = int(np.nonzero(labels.reshape(labels.shape[0], -1).any(axis=1))[0][0])
    lo = first - 50.0 / slice_step_mm
    hi = first + 70.0 / slice_step_mm
    # osteoporotic bodies only pass the lower thresholds, where the column may break less;
    # the highest column top found is the dens tip
    found = [_column_top(sag, t, ay, slice_step_mm, pixel_mm) for t in BONE_HU]
    tips = [a for a in found if a.dens_tip is not None and lo <= a.dens_tip <= hi]
    if tips:
        best = min(tips, key=lambda a: a.dens_tip or 0)
    else:  # no dens to count from: the bodies' tops alone, from the longest column found
        best = Anchors(body_tops=max((a.body_tops for a in found), key=len))
    ribs = find_rib_top(hu, labels, slice_step_mm, pixel_mm, best.dens_tip)
    return replace(best, rib_top=ribs)


def _plane_axes(labels: np.ndarray, slice_step_mm: float) -> np.ndarray:
    """[Zg, 2] in-plane position (x, y) of the spine in every plane: the median of the labelled
    pixels, smoothed over ±6 mm and carried ``AXIS_REACH_MM`` beyond the labelled planes (NaN
    further away). Per plane, because the spine leans: on a real chest CT its axis moved 50 mm
    backwards from C6 to T3."""
    nz = labels.shape[0]
    raw = np.full((nz, 2), np.nan)
    for z in range(nz):
        yy, xx = np.nonzero(labels[z])
        if xx.size >= 20:
            raw[z] = (np.median(xx), np.median(yy))
    have = np.nonzero(~np.isnan(raw[:, 0]))[0]
    out = np.full((nz, 2), np.nan)
    if have.size == 0:
        return out
    half = max(1, round(6.0 / slice_step_mm))
    reach = AXIS_REACH_MM / slice_step_mm
    for z in range(nz):
        near = have[np.abs(have - z) <= half]
        if near.size:
            out[z] = np.median(raw[near], axis=0)
        else:
            j = have[np.argmin(np.abs(have - z))]
            if abs(j - z) <= reach:
                out[z] = raw[j]
    return out


def rib_planes(
    hu: np.ndarray, labels: np.ndarray, slice_step_mm: float, pixel_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """(ribs, seen), bool [Zg] each: whether a plane shows ribs beside the spine (see
    ``RIB_LATERAL_MM``), and whether the spine's axis is known there (it was looked for)."""
    nz, ny, nx = hu.shape
    axes = _plane_axes(labels, slice_step_mm)
    xs, ys = np.arange(nx), np.arange(ny)
    px2 = pixel_mm * pixel_mm
    seen = ~np.isnan(axes[:, 0])
    out = np.zeros(nz, bool)
    for z in np.nonzero(seen)[0]:
        cx, cy = axes[z]
        dy = (ys - cy) * pixel_mm
        rows = (dy >= RIB_AP_MM[0]) & (dy <= RIB_AP_MM[1])
        dx = (xs - cx) * pixel_mm
        bone = hu[z][rows] > RIB_BONE_HU
        for side in (-1.0, 1.0):
            cols = (side * dx >= RIB_LATERAL_MM[0]) & (side * dx <= RIB_LATERAL_MM[1])
            if bone[:, cols].sum() * px2 >= RIB_MIN_AREA_MM2:
                out[z] = True
                break
    return out, seen


def find_rib_top(
    hu: np.ndarray,
    labels: np.ndarray,
    slice_step_mm: float,
    pixel_mm: float,
    dens_tip: int | None = None,
) -> int | None:
    """The top plane of the thorax: where ribs first lie beside the spine, T1's top.

    Planes with ribs form stretches (gaps up to ``RIB_GAP_MM`` bridged). The thorax is the
    highest stretch that starts far enough below the neck's top — the first labelled plane,
    or the dens tip when found — that it cannot be the skull base, mastoids or C1's
    transverse processes, that is at least ``RIB_MIN_RUN_MM`` high (half that when the scan
    cuts it) and that has ``RIB_QUIET_MM`` of spine without ribs above it (the lower neck);
    its top plane is the answer. None when no stretch qualifies — or when the first one
    below that line does not have the lower neck above it (its top is not where the ribs
    begin)."""
    has, seen = rib_planes(hu, labels, slice_step_mm, pixel_mm)
    labelled = np.nonzero(labels.reshape(labels.shape[0], -1).any(axis=1))[0]
    idx = np.nonzero(has)[0]
    if idx.size == 0 or labelled.size == 0:
        return None
    filled = has.copy()
    gap = round(RIB_GAP_MM / slice_step_mm)
    for a, b in pairwise(idx):
        if b - a <= gap + 1:
            filled[a:b] = True
    if dens_tip is not None:
        line = dens_tip + RIB_BELOW_DENS_MM / slice_step_mm
    else:
        line = int(labelled[0]) + RIB_BELOW_LABELS_MM / slice_step_mm
    quiet = max(1, round(RIB_QUIET_MM / slice_step_mm))
    nz = filled.size
    z = 0
    while z < nz:
        if not filled[z]:
            z += 1
            continue
        top = z
        while z + 1 < nz and filled[z + 1]:
            z += 1
        bottom, z = z, z + 1
        if top < line:
            continue  # the upper neck's bone, or ribs that cannot be told from it
        height = (bottom - top + 1) * slice_step_mm
        if height < (RIB_MIN_RUN_MM / 2 if bottom == nz - 1 else RIB_MIN_RUN_MM):
            continue
        above = slice(top - quiet, top)
        if top < quiet or not seen[above].all() or has[above].any():
            return None
        return top
    return None


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
    _, holes, stats, _ = cv2.connectedComponentsWithStats(
        (outside == 0).astype(np.uint8), connectivity=8
    )
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


def _dens_tip(
    sag: np.ndarray, top: int, cols: tuple[int, int], slice_step_mm: float, pixel_mm: float
) -> int:
    """The dens's tip above a C2 body block whose top plane is ``top``: the planes above it in
    which the block's top columns ``cols`` (first, last) still hold bone (``DENS_HU``,
    ``DENS_BONE_MM``), at most ``DENS_MAX_MM`` up. The dens is thinner than the body and
    partly cancellous: on thick slices its partial volume can fall under the threshold the
    column was found at, or a waist at its base can split it off, and the column then starts
    at C2's body, 8–14 mm too low, which moves every level counted from it by one."""
    c0, c1 = cols
    need = max(2, round(DENS_BONE_MM / pixel_mm))
    tip = top
    for z in range(top - 1, max(-1, top - 1 - round(DENS_MAX_MM / slice_step_mm)), -1):
        if int((sag[z, c0 : c1 + 1] >= DENS_HU).sum()) < need:
            break
        tip = z
    return tip


def _tip_behind_arch(
    rows: np.ndarray, below: int, slice_step_mm: float, pixel_mm: float
) -> int | None:
    """The dens tip, as a row of ``rows``, where C1's anterior arch touches the dens in the
    midline sagittal image: in the top rows ``rows`` [z, y] of one bone component, a thin run
    of bone (``FUSED_ARCH_AP_MM``) in front of the rest, a narrow gap (``FUSED_ARCH_GAP_MM``:
    the atlanto-dental joint) between them, over at least ``FUSED_ARCH_MIN_MM`` of height (a
    hollow body's front cortex has a wider core behind it). The dens then reads above the
    threshold up to its tip: the tip is the first row with bone behind the arch. None when no
    such arch is there, or when the column of bodies ends less than
    ``FUSED_ARCH_MIN_COLUMN_MM`` below the tip (``below``: rows from the first to the column's
    last)."""
    need = max(2, round(FUSED_ARCH_MIN_MM / slice_step_mm))
    lo, hi = (round(mm / pixel_mm) for mm in FUSED_ARCH_AP_MM)
    behind = []
    for row in rows:
        ys = np.flatnonzero(row)
        breaks = np.flatnonzero(np.diff(ys) > 1)
        if breaks.size == 0:
            continue
        first, rest = ys[: breaks[0] + 1], ys[breaks[0] + 1 :]
        gap_mm = (rest[0] - first[-1] - 1) * pixel_mm
        if (
            lo <= first.size <= hi
            and rest.size * pixel_mm >= DENS_MIN_AP_MM
            and gap_mm <= FUSED_ARCH_GAP_MM
        ):
            behind.append((int(rest[0]), int(rest[-1])))
    if len(behind) < need:
        return None
    a, b = (int(v) for v in np.median(np.asarray(behind), axis=0))
    tip = int(np.flatnonzero(rows[:, a : b + 1].any(axis=1))[0])
    if (below - tip) * slice_step_mm < FUSED_ARCH_MIN_COLUMN_MM:
        return None
    return tip


def _column_top(
    sag: np.ndarray, bone_hu: float, ay: float, slice_step_mm: float, pixel_mm: float
) -> Anchors:
    """Top of the vertebral-body column in the midline sagittal image [Zg, S] thresholded at
    ``bone_hu``; the dens is then followed up from C2's body (:func:`_dens_tip`)."""
    mask = sag > bone_hu
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
            cols = np.nonzero(rows.any(axis=0))[0]
            front = float(cols.min())  # the dens's front
            reach = 14.0 / slice_step_mm
            arch = any(
                front - 14.0 / pixel_mm <= y <= front + 1.0 / pixel_mm
                and z0 <= top + reach
                and z1 >= top - 4.0 / slice_step_mm
                for z0, z1, y in small
            )
            bottom = blocks[best[-1]][1]
            tops = tuple(blocks[k][0] for k in best[pos + 1 :])
            if arch:
                tip = _dens_tip(sag, top, (int(cols[0]), int(cols[-1])), slice_step_mm, pixel_mm)
                return Anchors(tip, bottom, tops)
            # an arch touching the dens: the two are the top of their bone (a lower body's top
            # with the lip of the body above reaching down in front of it is not)
            if height >= FUSED_ARCH_MIN_HEIGHT_MM and stats[ci, cv2.CC_STAT_TOP] == top:
                rows = comp[top : top + round(reach) + 1] == ci
                below_arch = _tip_behind_arch(rows, bottom - top, slice_step_mm, pixel_mm)
                if below_arch is not None:
                    return Anchors(top + below_arch, bottom, tops)
            break  # no arch in front: not C2 (e.g. a scan starting lower)
    # no C2 in the column: its bodies' tops still tell where levels meet
    return Anchors(body_tops=tuple(blocks[k][0] for k in best if blocks[k][0] > 0))
