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
A level left much smaller than its two neighbours (they took part of it), or two neighbours
whose sizes break the checks' proportions (one took part of the other), are then split again
where the CT shows the vertebral bodies' tops, when a split that fits exists.

Arrays are on the model grid [Zg, S, S], grid z toward the feet.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, replace
from itertools import combinations, pairwise

import cv2
import numpy as np

from ..vertebrae import NAMES
from .anchors import Anchors, endplate_planes, find_anchors

# Height range (mm) of the planes in which a level dominates: vertebra + the disc below it.
# C1 is a thin ring; C2 includes the dens; C3–C7 ≈ 13–15 mm body + 4–6 mm disc (ANATOMY.md),
# widened for size variation, lordosis and elderly disc narrowing. C2 dominates from below C1's
# ring (which takes the dens's planes) to C3: 20–24 mm on the true labels of 840 phantom
# studies (5th–95th percentile; C3 14–20 mm). At 30 mm, a count anchored on the dens gave C2
# the next level's planes as well, and kept every level below it named one too low.
LEVEL_TYPICAL_MM: tuple[float, ...] = (12.0, 22.0, 18.0, 18.0, 18.0, 18.0, 18.0)
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
# A level between two others (C3–C6) holding less than the plausibility checks'
# ``SQUEEZED_SHARE`` of its neighbours' mean volume has lost part of itself to them (on phantom
# studies: the model's C3 running on into C4). With the bodies' tops found in the CT the three
# are split again (:func:`_resplit_at_bodies`); a boundary on a body's top earns this many
# planes' worth of agreeing votes, so the bodies decide between splits the votes rate alike,
# and no level of the three comes out shorter than ``RESPLIT_MIN_MM`` (the shortest C3–C6 on
# the true level maps of 324 phantom studies on the 2 mm grid: 12 mm; median 16–18 mm).
RESPLIT_DISC_BONUS_PLANES = 1.0
RESPLIT_MIN_MM = 12.0
# above this share of relabelled pixels the result says so (check the levels on the sagittal view)
RELABEL_WARNING_SHARE = 0.25
# Two neighbours are split again (:func:`_resplit_at_bodies`), and the endplates are places to
# split at, only on a column leaning at most this far against the slices
# (:func:`column_lean_deg`): on a neck leaning more, one plane cuts the body of one vertebra
# and the arch of the next (a vertebra 50 mm deep leaning 15° spans 13 mm of planes), and a
# split plane by plane gave one level a third of its neighbour.
PAIR_RESPLIT_MAX_LEAN_DEG = 10.0


# The model's labels are kept as they are when they already agree with the anatomy: median
# planes of neighbouring levels 7–32 mm apart (C3–C7 body + disc ≈ 17–20 mm, ANATOMY.md;
# C1→C2 less), C1's median within −4…+12 mm of the dens tip (its ring surrounds the dens)
# and C2's within +14…+32 mm (dens + body; on phantom studies +20…+26). Skull base labelled
# C1, or every level counted one off, moves them out of these ranges; the dynamic programme
# then decides.
LEVEL_SPACING_MM = (7.0, 32.0)
C1_BELOW_TIP_RANGE_MM = (-4.0, 12.0)
C2_BELOW_TIP_RANGE_MM = (14.0, 32.0)
# C1 (anterior arch, lateral masses) ends this far below the tip: on the true labels of 900
# phantom studies up to 28 mm below C2's top (the ring tilts on a leaning neck; 29 beyond 20 mm)
C1_BELOW_TIP_MAX_MM = 30.0
# a level with fewer pixels than this (× min_voxels) is noise: ignored by the check, and
# cleared when the labels are kept (a sliver of the next vertebra at the scan's edge)
NOISE_LEVEL_VOXELS = 10

# With the thorax in view (:func:`~.anchors.find_rib_top`): C7's median plane lies 0–20 mm
# above the first plane with ribs on the 46 phantom studies where the ribs were found (31 of
# 40 on the 1.25 mm grid, 15 of 20 on the 0.625 mm grid), widened here; in the count, C7's
# run ends ``C7_END_BELOW_RIBS_MM`` below that plane and the
# planes further down are T1's (only pieces labelled C7 that are not a plane's largest — C7's
# spinous process over T1 — keep a label there).
C7_ABOVE_RIBS_MM = (-2.0, 24.0)
C7_END_BELOW_RIBS_MM = 6.0
T1 = 8  # the level below C7 in the count (never a label)
# Labelled planes further than this from the rest (no labels in between) are strays, not the
# spine, when they also hold little (a whole vertebra and its discs missed leave ≈ 20 mm) ...
SPINE_GAP_MM = 24.0
STRAY_SHARE = 0.1  # ... and hold less than this share of the labelled pixels


@dataclass(frozen=True)
class LevelAssignment:
    labels: np.ndarray  # uint8 [Zg, S, S]
    plane_level: np.ndarray  # int8 [Zg]: level 1–7 of each plane, 0 outside the spine
    relabelled_fraction: float  # share of vertebra pixels whose label changed
    warnings: tuple[str, ...]
    anchors: Anchors | None = None  # landmarks found in the HU (None: no HU given)
    # where the result disagrees with the anatomy found in the HU, in plain words: a reason
    # not to trust the levels (the plausibility checks make the study indeterminate)
    problems: tuple[str, ...] = ()
    # the anatomy found in the HU agrees with the levels at every boundary (:func:`_confirmed`):
    # however much was relabelled, the count is the CT's, not a guess
    confirmed: bool = False


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
    With the thorax in view, the first ribs (T1's) end the count: C7 lies just above them,
    the vertebrae beside ribs are not cervical, and without a dens the count runs up from C7.
    A C7 that still does not sit above the ribs is reported in ``problems``.
    """
    result = _assign(labels, slice_step_mm, min_voxels, hu, pixel_mm)
    result = _resplit_at_bodies(result, labels, slice_step_mm, pixel_mm or 1.0, hu)
    if result.anchors is None or result.anchors.rib_top is None:
        return result
    problems = _rib_problems(result.labels, result.anchors.rib_top, slice_step_mm, min_voxels)
    result = replace(result, problems=result.problems + problems)
    if not _confirmed(result):
        return result
    note: tuple[str, ...] = ()
    if result.relabelled_fraction > RELABEL_WARNING_SHARE:
        note = (
            "The dens, the first ribs and the top of each vertebral body from C3 to C7, found "
            "in the CT, agree with the levels as counted.",
        )
    return replace(result, confirmed=True, warnings=result.warnings + note)


def _confirmed(result: LevelAssignment) -> bool:
    """Whether the anatomy found in the CT agrees with the levels at every boundary: the dens
    tip was found (C1 and C2 placed around and below it), the first ribs were found with C7
    just above them (no rib problem), and each boundary from C2|C3 to C6|C7 lies within one
    plane of the top of a vertebral body found in the CT, one body per level (C2 holding none).

    Where stage 1 labelled every level one off (as on a real head-and-neck CT, the skull base
    labelled C1), the count relabels most of the pixels; on 360 phantom studies with their
    true labels so shifted, the 88 counts this confirmed put 0.88–0.98 of the labelled voxels
    at their true level (docs/benchmarks.md). None of them, nor of the confirmed counts of
    the true labels (44) and of stage 1's (36), had a body's top inside C2; posed beyond the
    phantom's range, one such count put C3–C6 one level low with C2 over the body of C3."""
    anchors = result.anchors
    if anchors is None or anchors.dens_tip is None or anchors.rib_top is None:
        return False
    if result.problems:
        return False
    pl = result.plane_level
    tops = np.asarray(anchors.body_tops, dtype=int)
    # the first plane of each level from C3 on, where it follows the level above it
    starts = {
        int(pl[z]): int(z) for z in np.flatnonzero((pl[1:] == pl[:-1] + 1) & (pl[1:] >= 3)) + 1
    }
    if sorted(starts) != [3, 4, 5, 6, 7] or tops.size == 0:
        return False
    if any(np.abs(tops - z).min() > 1 for z in starts.values()):
        return False
    between = (tops >= starts[3] - 1) & (tops <= starts[7] + 1)
    # nor may C2 hold a body's top (a count that gave C2 the body of C3 as well, each level
    # below one too low, on a neck turned and bent beyond the phantom's range)
    c2 = np.flatnonzero(pl == 2)
    inside_c2 = c2.size > 0 and bool(((tops > c2[0] + 1) & (tops < starts[3] - 1)).any())
    return int(between.sum()) == len(starts) and not inside_c2


def _assign(
    labels: np.ndarray,
    slice_step_mm: float,
    min_voxels: int,
    hu: np.ndarray | None,
    pixel_mm: float | None,
) -> LevelAssignment:
    """:func:`assign_levels` before the check against the ribs."""
    lab = np.asarray(labels, dtype=np.uint8)
    nz = lab.shape[0]
    counts = _level_counts(lab)
    spine = _main_run(np.nonzero(counts.sum(axis=1) >= min_voxels)[0], counts, slice_step_mm)
    if spine.size == 0:
        return LevelAssignment(lab.copy(), np.zeros(nz, np.int8), 0.0, ())
    anchors = None
    c1_first = False
    if hu is not None and pixel_mm:
        # the anchors are looked for near the spine's run only: a few labels stage 1 put on
        # the top of a head-and-neck scan, 100 mm above the spine, had moved the window the
        # dens is looked for in (up to 70 mm below the first labelled plane) off the dens
        anchors = find_anchors(hu, _only(lab, spine), slice_step_mm, pixel_mm)
        spine, c1_first = _below_skull_base(spine, anchors, slice_step_mm)
        if spine.size == 0:
            return LevelAssignment(lab.copy(), np.zeros(nz, np.int8), 0.0, (), anchors)
    z0, z1 = int(spine[0]), int(spine[-1])
    dens_tip = anchors.dens_tip if c1_first and anchors is not None else None
    rib_top = anchors.rib_top if anchors is not None else None
    c1_end = _c1_end(counts, dens_tip, slice_step_mm)
    gate_counts = counts.copy()
    gate_counts[:z0] = 0
    gate_counts[c1_end:, 0] = 0
    keep_c1 = _agrees_with_anatomy(
        gate_counts, slice_step_mm, min_voxels, anchors if c1_first else None, rib_top
    )
    without_c1 = gate_counts.copy()
    without_c1[:, 0] = 0
    # no dens found (the count cannot start from the anatomy): a spine that is in order
    # without its "C1" keeps its labels, and C1, not placeable, is left out rather than
    # every level recounted from a guess
    drop_c1 = (
        not keep_c1
        and not c1_first
        and _agrees_with_anatomy(without_c1, slice_step_mm, min_voxels, None, rib_top)
    )
    if keep_c1 or drop_c1:
        return _kept_labels(lab, z0, c1_end, drop_c1, min_voxels, anchors)
    c7_end = None
    if rib_top is not None:
        c7_end = rib_top + round(C7_END_BELOW_RIBS_MM / slice_step_mm) - 1
        if c7_end <= z0:
            c7_end = None  # nothing labelled above the ribs: nothing to count up from
    return _counted_levels(lab, counts, z0, z1, slice_step_mm, anchors, dens_tip, c7_end)


def _only(lab: np.ndarray, spine: np.ndarray) -> np.ndarray:
    """``lab`` with the planes above and below the spine's run (:func:`_main_run`) cleared."""
    out = np.zeros_like(lab)
    out[spine[0] : spine[-1] + 1] = lab[spine[0] : spine[-1] + 1]
    return out


def _level_counts(lab: np.ndarray) -> np.ndarray:
    """Pixels of each level 1–7 in each plane: int [Zg, 7]."""
    flat = lab.reshape(lab.shape[0], -1)
    return np.stack([(flat == v).sum(axis=1) for v in range(1, len(NAMES) + 1)], axis=1)


def column_lean_deg(labels: np.ndarray, step_mm: float, pixel_mm: float) -> float:
    """How far the labelled column leans front to back against the slices, in degrees: the
    slope of the labelled pixels' mean row over the planes (a least-squares line, each plane
    weighted by its pixels; positive: toward the back going down). 0 with fewer than five
    labelled planes."""
    flat = np.asarray(labels).reshape(labels.shape[0], labels.shape[1], -1) > 0
    per_row = flat.sum(axis=2)  # [Zg, rows]
    held = per_row.sum(axis=1).astype(np.float64)
    planes = np.flatnonzero(held >= NOISE_LEVEL_VOXELS)
    if planes.size < 5:
        return 0.0
    rows = np.arange(labels.shape[1], dtype=np.float64)
    mean_row = (per_row[planes] * rows).sum(axis=1) / held[planes]
    w = held[planes]
    z = planes * step_mm
    y = mean_row * pixel_mm
    zc, yc = np.average(z, weights=w), np.average(y, weights=w)
    slope = float(np.sum(w * (z - zc) * (y - yc)) / np.sum(w * (z - zc) ** 2))
    return float(np.degrees(np.arctan(slope)))


def _resplit_at_bodies(
    result: LevelAssignment,
    labels: np.ndarray,
    step_mm: float,
    pixel_mm: float,
    hu: np.ndarray | None = None,
) -> LevelAssignment:
    """Split again, where the CT shows the bodies, neighbouring levels whose sizes say one has
    taken part of another.

    A level between two others (C3–C6) with less than ``SQUEEZED_SHARE`` of their mean
    volume has lost part of itself to them: the planes the three hold are split again into
    three runs. Two neighbours whose volumes break one of the checks' proportions between
    neighbours (:func:`_proportion_faults`: C2 over ``C2_OVER_C3_MAX`` times C3, one of two
    neighbours from C3 to C6 under ``NEIGHBOUR_SHARE_MIN`` of the other, C7 under
    ``C7_OVER_C4_C5_MIN`` or over ``C7_OVER_C4_C5_MAX`` of the mean of C4 and C5 or under
    ``C7_OVER_C6_MIN`` of C6) have moved their boundary: the planes the two hold are split
    again into two runs, unless the column
    leans more than ``PAIR_RESPLIT_MAX_LEAN_DEG`` against the slices. Each boundary lies on a
    body's top found in the CT (``Anchors.body_tops``), on an endplate's plane
    (:func:`~.anchors.endplate_planes`; ``hu`` given, the column leaning at most
    ``PAIR_RESPLIT_MAX_LEAN_DEG``: on a leaning neck a plane's front cuts a body and a disc at
    once, and endplates there gave C4's planes to C3 and C5 on phantom studies; and the count
    relabelled at most ``RELABEL_WARNING_SHARE`` of the pixels) or where the labels change
    now, each run at least ``RESPLIT_MIN_MM`` and within its level's height
    range; the middle of three runs no longer squeezed, two runs leaving fewer proportion
    faults and no new one, judged on the volumes the labels will have once split. Of the splits
    that fit, the one that agrees with the most predicted pixels wins, plus
    ``RESPLIT_DISC_BONUS_PLANES`` for each boundary on a body's top or an endplate, minus the
    height prior of the count (:func:`_best_runs`). Levels are never renamed, only their
    boundaries moved. Without the bodies, or with no such split, the labels stay as they are
    and the plausibility checks leave the levels to the reader.
    """
    out = result.labels
    upright = abs(column_lean_deg(out, step_mm, pixel_mm)) <= PAIR_RESPLIT_MAX_LEAN_DEG
    tops = set(result.anchors.body_tops) if result.anchors is not None else set()
    # endplates only where the count kept the model's levels: after a heavy recount (the skull
    # base labelled C1, every level one too high) a split at them gave C3's planes to C2
    if upright and hu is not None and result.relabelled_fraction <= RELABEL_WARNING_SHARE:
        tops |= set(endplate_planes(hu, out, step_mm, pixel_mm))
    if not tops:
        return result
    places = tuple(sorted(tops))
    plane_level = result.plane_level.copy()
    notes: list[str] = []
    counts = _level_counts(out)
    groups: list[tuple[int, ...]] = [(level - 1, level, level + 1) for level in range(3, 7)]
    if upright:
        groups += [(level, level + 1) for level in range(2, 7)]
    for group in groups:
        cut = _cut_levels(counts)
        split = _split_again(out, counts, group, places, step_mm, cut)
        if split is None:
            continue
        if out is result.labels:
            out = out.copy()
        for (a, b), level in zip(pairwise(split), group, strict=True):
            for z in range(a, b):
                plane = out[z]
                mine = np.isin(plane, group)
                if mine.any():
                    part = np.where(mine, plane, 0).astype(np.uint8)
                    _relabel_plane(part, level)
                    plane[mine] = part[mine]
                if plane_level[z] in group:
                    plane_level[z] = level
        counts = _level_counts(out)  # the next group is judged on the labels as now split
        names = [NAMES[v - 1] for v in group]
        if len(group) == 3:
            notes.append(
                f"Part of {names[1]} had been labelled {names[0]} or {names[2]}; the three were "
                "split again where the CT shows their vertebral bodies."
            )
        else:
            notes.append(
                f"Part of {names[0]} or {names[1]} had been labelled as the other; the two were "
                "split again where the CT shows their vertebral bodies."
            )
    if not notes:
        return result
    lab = np.asarray(labels, dtype=np.uint8)
    n_fg = int((lab > 0).sum())
    changed = float((out != lab).sum() / n_fg) if n_fg else 0.0
    return replace(
        result,
        labels=out,
        plane_level=plane_level,
        relabelled_fraction=changed,
        warnings=result.warnings + tuple(notes),
    )


def _cut_levels(counts: np.ndarray) -> set[int]:
    """Levels that hold most of the labels of the first or last plane: cut by the scan's edge,
    their volume says nothing about their neighbours (the checks compare only whole levels).
    ``counts``: :func:`_level_counts`."""
    return {int(c.argmax()) + 1 for c in (counts[0], counts[-1]) if c.any()}


def _proportion_faults(volume: np.ndarray, cut: Set[int] = frozenset()) -> set[tuple[str, int]]:
    """The checks' proportions between neighbouring levels
    (:func:`~.plausibility.checks.proportion_faults`) that ``volume`` (pixels of C1–C7, [7])
    breaks, the levels in ``cut`` not compared."""
    # imported here: the checks measure with postprocess, which imports this module
    from .plausibility.checks import proportion_faults

    whole = {
        name: float(v)
        for k, (name, v) in enumerate(zip(NAMES, volume, strict=True), start=1)
        if v > 0 and k not in cut
    }
    return proportion_faults(whole)


def _group_faults(group: tuple[int, ...]) -> set[tuple[str, int]]:
    """The proportion faults a group of levels is split again for."""
    if len(group) == 3:
        return {("squeezed", group[1])}
    if group[0] == 2:
        return {("c2_over_c3", 2)}
    if group[0] == 6:
        return {("c7_over", 7), ("c7_under", 7), ("c7_under_c6", 7)}
    return {("unequal", group[0])}


def _split_again(
    lab: np.ndarray,
    counts: np.ndarray,
    group: tuple[int, ...],
    places: tuple[int, ...],
    step_mm: float,
    cut: Set[int] = frozenset(),
) -> tuple[int, ...] | None:
    """(start, boundaries…, stop + 1) planes of the levels of ``group`` (two or three
    neighbours, head to feet) in ``lab`` split again (:func:`_resplit_at_bodies`), or None: the
    group's proportion faults (:func:`_group_faults`) are not there, or no split fits. Each split
    is judged on the volumes the labels would have once split (:func:`_relabel_plane` leaves a
    smaller piece the model gave the level above with it); ``counts``: :func:`_level_counts`
    of ``lab``; ``places``: the planes a boundary may move to beside those where the labels
    change now (bodies' tops found in the CT, and endplates)."""
    # imported here: the checks measure with postprocess, which imports this module
    from .plausibility.limits import SQUEEZED_SHARE

    volume = counts.sum(axis=0).astype(np.float64)
    before = _proportion_faults(volume, cut)
    if not _group_faults(group) & before:
        return None
    first, last = group[0], group[-1]
    dominant = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1) + 1, 0)
    ups, lows = np.flatnonzero(dominant == first), np.flatnonzero(dominant == last)
    if ups.size == 0 or lows.size == 0 or ups[0] >= lows[-1]:
        return None
    start, stop = int(ups[0]), int(lows[-1])
    cols = [v - 1 for v in group]
    members = counts[:, cols].astype(np.float64)
    held = members.sum(axis=1)
    votes = np.vstack(
        [np.zeros((1, len(group))), np.cumsum(members / np.maximum(held, 1.0)[:, None], 0)]
    )
    # volumes without the group's pixels in its planes, and what each plane gives each level
    # of the group once relabelled as that level
    outside = volume.copy()
    outside[cols] -= members[start : stop + 1].sum(axis=0)
    given = {level: _given_as(lab, start, stop, group, level) for level in group}
    in_group = np.isin(dominant, group)
    tops = {int(t) for t in places if start < t <= stop}
    now = {
        z
        for z in range(start + 1, stop + 1)
        if in_group[z] and in_group[z - 1] and dominant[z] != dominant[z - 1]
    }
    ranges = [
        (max(RESPLIT_MIN_MM, LEVEL_HEIGHT_MM[v - 1][0]), LEVEL_HEIGHT_MM[v - 1][1]) for v in group
    ]
    typical = [LEVEL_TYPICAL_MM[v - 1] / step_mm for v in group]
    best: tuple[float, tuple[int, ...]] | None = None
    for bounds in combinations(sorted(tops | now), len(group) - 1):
        edges = (start, *bounds, stop + 1)
        runs = list(pairwise(edges))
        if not all(
            lo <= (b - a) * step_mm <= hi for (a, b), (lo, hi) in zip(runs, ranges, strict=True)
        ):
            continue
        new = outside + sum(
            given[level][b - start] - given[level][a - start]
            for (a, b), level in zip(runs, group, strict=True)
        )
        if len(group) == 3:  # the middle level no longer squeezed by the other two
            if _squeezed(new[group[1] - 1], new[group[0] - 1], new[group[2] - 1], SQUEEZED_SHARE):
                continue
        elif not _proportion_faults(new, cut) < before:  # the pair's fault gone, no new one
            continue
        score = sum(votes[b, j] - votes[a, j] for j, (a, b) in enumerate(runs))
        score += RESPLIT_DISC_BONUS_PLANES * sum(b in tops for b in bounds)
        score -= HEIGHT_PRIOR_PER_PLANE * sum(
            abs(b - a - t) for (a, b), t in zip(runs, typical, strict=True)
        )
        if best is None or score > best[0]:
            best = (score, edges)
    return None if best is None else best[1]


def _given_as(
    lab: np.ndarray, start: int, stop: int, group: tuple[int, ...], level: int
) -> np.ndarray:
    """Cumulative pixels of C1–C7 that the planes ``start``…``stop`` of ``lab`` give, their
    pixels of ``group`` relabelled as ``level`` (:func:`_relabel_plane`): float [n + 1, 7],
    row i the sum over the first i planes."""
    rows = np.zeros((stop - start + 2, len(NAMES)))
    for i, z in enumerate(range(start, stop + 1)):
        mine = np.isin(lab[z], group)
        part = np.where(mine, lab[z], 0).astype(np.uint8)
        _relabel_plane(part, level)
        rows[i + 1] = np.bincount(part[mine], minlength=len(NAMES) + 1)[1:]
    return np.cumsum(rows, axis=0)


def _squeezed(middle: float, upper: float, lower: float, share: float) -> bool:
    """Whether ``middle`` holds less than ``share`` of the mean of its neighbours."""
    return middle < share * (upper + lower) / 2.0


def _main_run(planes: np.ndarray, counts: np.ndarray, step_mm: float) -> np.ndarray:
    """The labelled ``planes`` that form the spine: split wherever more than ``SPINE_GAP_MM``
    of planes holds no labels, the runs that hold at least ``STRAY_SHARE`` of the labelled
    pixels (the largest always). A scatter of labels on the skull or in the chest, apart from
    the spine, then neither stretches the count nor makes a level look spread over several
    vertebrae; a substantial part far from the rest is kept for the checks to judge."""
    if planes.size == 0:
        return planes
    cuts = np.flatnonzero((np.diff(planes) - 1) * step_mm > SPINE_GAP_MM) + 1
    runs = np.split(planes, cuts)
    held = np.array([float(counts[r].sum()) for r in runs])
    keep = (held >= STRAY_SHARE * held.sum()) | (held == held.max())
    return np.concatenate([r for r, k in zip(runs, keep, strict=True) if k])


def _rib_problems(
    labels: np.ndarray, rib_top: int, step_mm: float, min_voxels: int
) -> tuple[str, ...]:
    """Whether the final C7 sits just above the first ribs (``C7_ABOVE_RIBS_MM``)."""
    c7 = (labels == 7).reshape(labels.shape[0], -1).sum(axis=1).astype(np.float64)
    if c7.sum() < NOISE_LEVEL_VOXELS * max(min_voxels, 1):
        return (
            "Ribs were found beside the spine but no C7 above them: the levels may be "
            "counted wrong.",
        )
    cum = np.cumsum(c7)
    median = float(np.searchsorted(cum, cum[-1] / 2.0))
    above = (rib_top - median) * step_mm
    lo, hi = C7_ABOVE_RIBS_MM
    if above < lo:
        return (
            f"What was labelled C7 lies {-above:.0f} mm below the top of the first ribs: it "
            "may be T1, and every level counted one too low.",
        )
    if above > hi:
        return (
            f"What was labelled C7 lies {above:.0f} mm above the first ribs (C7 sits just "
            f"above them, at most {hi:.0f} mm): the levels may be counted wrong.",
        )
    return ()


def _below_skull_base(
    spine: np.ndarray, anchors: Anchors, step_mm: float
) -> tuple[np.ndarray, bool]:
    """(the spine's planes, whether the count starts at C1): with the dens tip found near the
    top of the labelled spine, the planes above C1's ring (skull base, clivus) are left out."""
    z0 = int(spine[0])
    if anchors.dens_tip is None:
        return spine, False
    top = max(0, anchors.dens_tip - round(C1_ABOVE_DENS_MM / step_mm))
    if z0 > anchors.dens_tip + ANCHOR_REACH_MM / step_mm:
        return spine, False
    z0 = max(z0, top)
    return spine[spine >= z0], True


def _c1_end(counts: np.ndarray, dens_tip: int | None, step_mm: float) -> int:
    """The plane where "C1" stops being C1: C1's ring lies around the dens, above C2's middle,
    so "C1" below that (or far below the dens tip) is other bone (an occiput, a shoulder), left
    out of the check and cleared if the labels are kept."""
    c1_end = counts.shape[0]
    c2 = counts[:, 1].astype(np.float64)
    if c2.sum() > 0:
        c1_end = int(np.searchsorted(np.cumsum(c2), c2.sum() / 2.0))
    if dens_tip is not None:
        tip_end = dens_tip + int(np.ceil(C1_BELOW_TIP_MAX_MM / step_mm))
        c1_end = min(c1_end, tip_end)
    return int(c1_end)


def _kept_labels(
    lab: np.ndarray,
    z0: int,
    c1_end: int,
    drop_c1: bool,
    min_voxels: int,
    anchors: Anchors | None,
) -> LevelAssignment:
    """The model's own labels, which already run C1→C7 where the anatomy puts them: kept voxel
    by voxel (one level per plane cannot hold C1's ring around C2's dens); only what lies
    above C1's ring (skull base), "C1" far below it (every "C1" with ``drop_c1``) and levels
    too small to be more than noise are cleared."""
    nz = lab.shape[0]
    plane_level = np.zeros(nz, np.int8)
    out = lab.copy()
    out[:z0] = 0
    tail = out[0 if drop_c1 else c1_end :]
    tail[tail == 1] = 0
    for v in range(1, 8):
        if 0 < (out == v).sum() < NOISE_LEVEL_VOXELS * max(min_voxels, 1):
            out[out == v] = 0
    kept = np.stack([(out.reshape(nz, -1) == v).sum(axis=1) for v in range(1, 8)], axis=1)
    plane_level[:] = np.where(kept.sum(axis=1) > 0, kept.argmax(axis=1) + 1, 0)
    n_fg = int((lab > 0).sum())
    changed = float((out != lab).sum() / n_fg) if n_fg else 0.0
    note: tuple[str, ...] = ()
    if drop_c1 and (lab == 1).any():
        note = (
            "C1 could not be placed (no dens found in the images to count from); "
            "its labels were left out.",
        )
    return LevelAssignment(out, plane_level, changed, note, anchors)


def _counted_levels(
    lab: np.ndarray,
    counts: np.ndarray,
    z0: int,
    z1: int,
    step_mm: float,
    anchors: Anchors | None,
    dens_tip: int | None,
    c7_end: int | None = None,
) -> LevelAssignment:
    """The levels counted plane by plane (:func:`_best_runs`) from the top of the spine, from
    C1 when the dens tip was found (``dens_tip``), and every plane's bone relabelled to its
    level. With ``c7_end`` (the ribs found below), C7 ends on that plane and the count is
    anchored there too; the planes below it are T1's."""
    plane_level = np.zeros(lab.shape[0], np.int8)
    end = z1 if c7_end is None else min(z1, c7_end)
    votes = counts[z0 : end + 1].astype(np.float64)
    votes /= np.maximum(votes.sum(axis=1, keepdims=True), 1.0)  # per-plane shares
    boundary = None
    first_len = None
    if dens_tip is not None and anchors is not None:
        boundary, first_len = _anchored_priors(anchors, dens_tip, z0, end, step_mm)
    first_level = 1 if dens_tip is not None else None
    last_level = 7 if c7_end is not None else None
    runs = _best_runs(votes, step_mm, first_level, boundary, first_len, last_level)
    if runs is None and last_level is not None:  # the ribs cannot end this count
        runs = _best_runs(votes, step_mm, first_level, boundary, first_len)
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
    shift = _naming_shift(counts, plane_level)
    for z in range(z0, z1 + 1):
        _relabel_plane(out[z], int(plane_level[z]) if z <= end else T1, shift)
    out[out == T1] = 0
    n_fg = int((lab > 0).sum())
    changed = float((out != lab).sum() / n_fg) if n_fg else 0.0
    warnings: tuple[str, ...] = ()
    if changed > RELABEL_WARNING_SHARE:
        warnings = (
            f"{changed:.0%} of the vertebra pixels were relabelled to follow the anatomical "
            "order; check the level labels on the sagittal view.",
        )
    return LevelAssignment(out, plane_level, changed, warnings, anchors)


def _naming_shift(counts: np.ndarray, plane_level: np.ndarray) -> int:
    """The count's level less the model's label for the same vertebra (``plane_level``, 0 where
    none; ``counts``: :func:`_level_counts`): the commonest difference between a plane's
    counted level and the label most of its pixels hold, over the planes counted; 0 where the
    count kept the model's names."""
    held = (plane_level > 0) & (counts.sum(axis=1) > 0)
    if not held.any():
        return 0
    diff = plane_level[held].astype(np.int64) - (counts[held].argmax(axis=1) + 1)
    values, n = np.unique(diff, return_counts=True)
    return int(values[np.argmax(n)])


def _anchored_priors(
    anchors: Anchors, dens_tip: int, z0: int, z1: int, step_mm: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """What the anatomy adds to the count: a bonus for a level starting where a separate body
    block starts (just below a disc), and the first run's length (C1's ring ends, C2 starts,
    ``C2_BELOW_TIP_MM`` below the dens tip)."""
    boundary = np.zeros(z1 - z0 + 1)
    for t in anchors.body_tops:
        for dz, w in ((-1, 0.5), (0, 1.0), (1, 0.5)):
            if 0 <= t + dz - z0 < boundary.size:
                boundary[t + dz - z0] = max(boundary[t + dz - z0], w)
    boundary *= DISC_BONUS_PLANES
    end = dens_tip + C2_BELOW_TIP_MM / step_mm - z0
    tol = max(1.0, 2.0 / step_mm)
    first_len = (max(1, int(np.floor(end - tol))), max(1, int(np.ceil(end + tol))))
    return boundary, first_len


def _agrees_with_anatomy(
    counts: np.ndarray,
    step_mm: float,
    min_voxels: int,
    anchors: Anchors | None,
    rib_top: int | None = None,
) -> bool:
    """Whether the predicted levels already lie in anatomical order and spacing: no level
    missing between two found ones, none spread over more planes than a vertebra spans (10th
    to 90th percentile of its pixels), each level's median plane below the level above it by
    a plausible vertebral spacing, when the dens tip was found, C1 around the tip and C2
    just below it, and when the first ribs were found (``rib_top``), C7 just above them.

    ``counts`` [Zg, 7]: pixels of each level per plane. Levels with fewer than
    ``NOISE_LEVEL_VOXELS`` × ``min_voxels`` pixels are noise and ignored."""
    present = []
    for k in range(counts.shape[1]):
        c = counts[:, k].astype(np.float64)
        if c.sum() < NOISE_LEVEL_VOXELS * max(min_voxels, 1):
            continue
        cum = np.cumsum(c)
        q10, q50, q90 = (float(np.searchsorted(cum, cum[-1] * q)) for q in (0.1, 0.5, 0.9))
        if (q90 - q10) * step_mm > LEVEL_HEIGHT_MM[k][1]:
            return False  # one label spread over several vertebrae
        present.append((k + 1, q50 * step_mm))
    if len(present) < 2:
        return False
    if rib_top is not None:
        where7 = dict(present).get(7)
        if where7 is None:
            return False  # the ribs are in view, so C7 is
        above = rib_top * step_mm - where7
        if not C7_ABOVE_RIBS_MM[0] <= above <= C7_ABOVE_RIBS_MM[1]:
            return False
    for (ka, za), (kb, zb) in pairwise(present):
        if kb != ka + 1:
            return False  # a level missing between two found ones
        if not LEVEL_SPACING_MM[0] <= zb - za <= LEVEL_SPACING_MM[1]:
            return False
    if anchors is not None and anchors.dens_tip is not None:
        tip = anchors.dens_tip * step_mm
        where = dict(present)
        if 1 not in where or 2 not in where:
            return False  # the ring around a dens in view, and C2 itself, must be labelled
        c1, c2 = where[1] - tip, where[2] - tip
        if not C1_BELOW_TIP_RANGE_MM[0] <= c1 <= C1_BELOW_TIP_RANGE_MM[1]:
            return False
        if not C2_BELOW_TIP_RANGE_MM[0] <= c2 <= C2_BELOW_TIP_RANGE_MM[1]:
            return False
    return True


def onto_body_tops(
    labels: np.ndarray, body_tops: Sequence[int], reach: tuple[int, int] = (2, 3)
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Labels whose boundaries from C2|C3 to C6|C7 (the plane from which most labelled pixels
    are the lower level) lie ``reach`` planes (2–3) from a body's top found in the CT are
    moved onto it: the planes between are given to the level the top begins (bone pieces of
    the two levels only; :func:`_relabel_plane`). For labels read on planes square to the
    column only: where a neck leans, a plane holds one body and the next one's arch. Returns
    the labels and the boundaries moved, (level below, from plane, to plane) each."""
    lab = np.array(labels, dtype=np.uint8, copy=True)
    tops = np.asarray(body_tops, dtype=int)
    if tops.size == 0:
        return lab, []
    counts = _level_counts(lab)
    held = counts.sum(axis=1) >= NOISE_LEVEL_VOXELS
    most = np.where(held, counts.argmax(axis=1) + 1, 0)
    moved = []
    for k in range(3, len(NAMES) + 1):
        starts = np.flatnonzero((most[1:] == k) & (most[:-1] == k - 1)) + 1
        if starts.size != 1:
            continue
        start = int(starts[0])
        top = int(tops[np.argmin(np.abs(tops - start))])
        if not reach[0] <= abs(top - start) <= reach[1]:
            continue
        level = k if top < start else k - 1
        for z in range(min(top, start), max(top, start)):
            pair = (lab[z] == k - 1) | (lab[z] == k)
            plane = np.where(pair, lab[z], 0).astype(np.uint8)
            _relabel_plane(plane, level)
            lab[z][pair] = plane[pair]
        moved.append((k, start, top))
    return lab, moved


def _relabel_plane(plane: np.ndarray, level: int, shift: int = 0) -> None:
    """In place: bone pieces of one plane take ``level`` unless they are a smaller piece the
    model gave to the level above (the spinous process of the vertebra above), which take
    ``level − 1``. ``shift``: the count's level less the model's label for the same vertebra
    (−1 where the model named each level one too high, +1 one too low); the level above is
    then the model's ``level − 1 − shift`` (at the ends, the model's first or last level), and
    with a shift a smaller piece the model gave the level below (an articular process rising
    beside the body above) takes ``level + 1``. Compared with the model's names as they stood,
    a recount by one level renamed the arch of the vertebra above as the plane's own level: on
    phantom 85000093's true labels named one too low, C3's arch in C4's planes became C4, and
    C3 was assessed with under 70 % of itself."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats(
        (plane > 0).astype(np.uint8), connectivity=8
    )
    if n <= 1:
        return
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    # the model's name for the level above; at the ends the level the model ran out of
    above = min(max(level - 1 - shift, 1), len(NAMES))
    below = level + 1 - shift
    for c in range(1, n):
        piece = comp == c
        if c != largest:
            majority = int(np.bincount(plane[piece], minlength=len(NAMES) + 1).argmax())
            if majority == above and level > 1:
                plane[piece] = level - 1
                continue
            if majority == below and shift != 0 and 1 < level < len(NAMES):
                plane[piece] = level + 1
                continue
        plane[piece] = level


def _best_runs(
    counts: np.ndarray,
    step_mm: float,
    first_level: int | None = None,
    boundary: np.ndarray | None = None,
    first_len: tuple[int, int] | None = None,
    last_level: int | None = None,
) -> list[tuple[int, int, int]] | None:
    """Split planes 0..N−1 into consecutive level runs maximising the agreeing votes minus the
    height prior.

    The first and last runs may be shorter than their minimum (the scan may cut them) and are
    not penalised for being short.
    ``first_level``: when given (anchored on the anatomy), the first run must be that level
    and is not cut by the scan; a run then scores the votes of whichever label it holds most
    (the level itself is counted from the anchor, the votes only say where labels change),
    plus ``boundary[start]`` planes' worth for starting where a disc ends; ``first_len``
    bounds the first run's length (planes). ``last_level``: when given (the ribs below), the
    last run must be that level and is not cut by the scan; the count is then anchored at the
    bottom, and the votes only say where labels change.
    Returns [(level 1–7, start, stop)] or None when no split fits.
    """
    n, n_levels = counts.shape
    prefix = np.vstack([np.zeros((1, n_levels)), np.cumsum(counts, axis=0)])
    dmin = [max(1, int(np.floor(lo / step_mm))) for lo, _ in LEVEL_HEIGHT_MM]
    dmax = [max(1, int(np.ceil(hi / step_mm))) for _, hi in LEVEL_HEIGHT_MM]
    typ = [t / step_mm for t in LEVEL_TYPICAL_MM]
    anchored = first_level is not None or last_level is not None
    bonus = np.zeros(n + 1) if boundary is None else np.append(boundary, 0.0)
    neg = -np.inf
    # best[i, v]: best score for planes [0, i) with the last run being level v (0-based)
    best = np.full((n + 1, n_levels), neg)
    back = np.zeros((n + 1, n_levels), dtype=np.int64)  # run length
    for i in range(1, n + 1):
        for v in range(n_levels):
            # the last run may be cut by the scan, unless the ribs end it
            lo = 1 if i == n and last_level is None else dmin[v]
            for d in range(1, min(dmax[v], i) + 1):
                start = i - d
                if start == 0:
                    if first_level is not None and v != first_level - 1:
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
                if (start == 0 and first_level is None) or (i == n and last_level is None):
                    dev = max(dev, 0.0)  # a run cut by the scan's edge may be short
                agree = prefix[i] - prefix[start]
                vote = float(agree.max()) if anchored else float(agree[v])
                score = prev + vote - HEIGHT_PRIOR_PER_PLANE * abs(dev)
                if score > best[i, v]:
                    best[i, v] = score
                    back[i, v] = d
    v = last_level - 1 if last_level is not None else int(np.argmax(best[n]))
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
