"""Is what the segmentation found a believable cervical spine? The checks, each failure in words.

A fracture verdict is only as good as the vertebrae it is about: "no fracture" said about a
clivus labelled C2, a lumbar spine or a single picture is a confident wrong answer. So every
analysis is checked, and whatever fails becomes a *reason* in plain words:

* **the input** — a CT series (``Modality``), not a single 2D image, with slices at most
  ``MAX_SLICE_MM`` thick: a fracture line is often 1–2 mm wide and is averaged away in a thicker
  slice (the RSNA 2022 challenge used ≤ 1 mm, C-spine protocols 0.5–3 mm);
* **the levels** — the levels found lie in head-to-feet order without a missing level or a gap
  wider than ``MAX_GAP_MM`` between neighbours; each has a volume, height (head–feet extent),
  width (left–right) and depth (front–back) inside ``LEVEL_RANGES``; when most levels are too
  large for a neck, the images show another part of the spine (judged from the images, never
  from the header's body part);
* **the canal** — each level's outline (axial footprint) encloses a vertebral canal of at least
  ``CANAL_MIN_MM2`` holding soft tissue, not bone, and the canal runs on from level to level;
* **the level assignment** — it relabelled at most ``MAX_RELABELLED_FRACTION`` of the pixels;
* **coverage** — a level cut by the top or bottom edge of the scan is *partly in view*.

Reasons about the whole study make every vertebra and the patient indeterminate; a reason
about one level makes that level indeterminate. :func:`final_verdicts` then says which fracture
verdicts may be given (a "fractured" flag only where the status is ``assessed``).

Labels are uint8 [z, y, x] with 0 background and 1–7 = C1–C7, **z increasing toward the feet**
(the model grid of :mod:`cspine_desktop.imaging.preprocess`), spacing (z, y, x) in mm, HU on the
same grid. Pure numpy/OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import cv2
import numpy as np

from ..vertebrae import NAMES

ASSESSED, PARTLY_IN_VIEW, NOT_IN_VIEW, INDETERMINATE = (
    "assessed",
    "partly_in_view",
    "not_in_view",
    "indeterminate",
)
VERTEBRA_STATUSES = (ASSESSED, PARTLY_IN_VIEW, NOT_IN_VIEW, INDETERMINATE)
PATIENT_STATUSES = (ASSESSED, INDETERMINATE)

# ---------------------------------------------------------------------------------- the limits
MAX_SLICE_MM = 5.0
"""Thickest slice (or slice spacing) a fracture verdict is given for, mm."""

MAX_RELABELLED_FRACTION = 0.35
"""Largest share of vertebra pixels the level assignment may relabel. On unseen phantom studies
the demo model's labels need 4–20 % (docs/benchmarks.md); a real head-and-neck CT whose C2 was
found on the clivus needed 74 %."""

MAX_GAP_MM = 12.0
"""Widest head–feet gap between neighbouring levels: a disc is 4–6 mm (ANATOMY: discs),
doubled for thin segmentations at the end-plates."""

CANAL_MIN_MM2 = 50.0
"""Smallest canal cross-section (mm²) enclosed by a level's outline. The cervical canal is a
triangle AP 14–17 × 22–28 mm (≈ 150–240 mm², ANATOMY: spinal canal); a third of that allows for
stenosis and a segmentation that closes only part of the ring."""

CANAL_MAX_MM2 = 900.0
"""Largest hole a vertebra's outline may enclose: the C1 ring around the dens and the canal
(outer AP ≈ 45 mm, ANATOMY: C1) encloses ≈ 400–700 mm²; larger holes are not a canal."""

CANAL_MAX_HU = 200.0
"""The canal holds cord and CSF (0–35 HU) and epidural fat; a "hole" whose median is denser than
this is bone the segmentation left out, not a canal."""

CANAL_SLAB_MM = 10.0
"""Thickness of the slabs whose outline is searched for the canal: the pedicles and laminae
that close the ring around it are 5–10 mm tall."""

MAX_CANAL_STEP_MM = 12.0
"""Largest in-plane shift of the canal's centre from one level to the next (lordosis moves it by
2–6 mm per level; the phantom's largest is 8 mm)."""

EDGE_CUT_FRACTION = 0.2
"""A level touching the first or last plane is cut when that plane still shows at least this
share of the level's largest cross-section: more than the tip of a process lies outside."""


@dataclass(frozen=True)
class LevelRange:
    """Plausible size of one level's whole label (body, arch and processes), as segmented:
    (low, high) for the volume (ml), height = head–feet extent, width = left–right extent and
    depth = front–back extent (mm)."""

    volume_ml: tuple[float, float]
    height_mm: tuple[float, float]
    width_mm: tuple[float, float]
    depth_mm: tuple[float, float]


_SUBAXIAL = LevelRange(
    volume_ml=(3.0, 32.0), height_mm=(10.0, 45.0), width_mm=(30.0, 70.0), depth_mm=(30.0, 75.0)
)
LEVEL_RANGES: dict[str, LevelRange] = {
    "C1": LevelRange(
        volume_ml=(1.5, 28.0), height_mm=(4.0, 38.0), width_mm=(50.0, 105.0), depth_mm=(25.0, 65.0)
    ),
    "C2": LevelRange(
        volume_ml=(4.0, 40.0), height_mm=(16.0, 68.0), width_mm=(30.0, 72.0), depth_mm=(32.0, 78.0)
    ),
    "C3": _SUBAXIAL,
    "C4": _SUBAXIAL,
    "C5": _SUBAXIAL,
    "C6": _SUBAXIAL,
    "C7": LevelRange(
        volume_ml=(3.0, 38.0), height_mm=(10.0, 52.0), width_mm=(35.0, 85.0), depth_mm=(35.0, 90.0)
    ),
}
"""Sizes of each level's whole label. From ANATOMY (adult textbook values): C3–C7 bodies
15–20 mm wide, 15–17 mm deep and 13–15 mm tall, behind them a canal 14–17 mm deep and 22–28 mm
wide, short bifid spinous processes, C7's 15–20 mm longer; transverse processes with a 5–6 mm
foramen; C1 a ring ≈ 45 mm deep and 75–80 mm wide; C2's dens ≈ 15 mm tall on a C3-sized body.
A whole subaxial level is therefore ≈ 40–55 mm wide, 40–60 mm deep and, with the down-sloping
processes, 20–35 mm tall; volumes 7–18 ml (C2 and C7 the largest). The ranges widen these by
about a third each way for build, age, lordosis and segmentation error. Thoracic levels (with
their transverse processes ≈ 60–75 mm wide, 55–75 mm tall) and lumbar ones (75–95 mm wide,
> 50 ml) fall outside."""


# ---------------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class LevelMeasure:
    """What one level of a label map measures (mm, ml; planes are indices of the label map)."""

    name: str
    volume_ml: float
    height_mm: float
    width_mm: float
    depth_mm: float
    first_plane: int
    last_plane: int
    centre_z_mm: float
    cut: str | None  # "top", "bottom" or None
    canal_mm2: float
    canal_centre_mm: tuple[float, float] | None  # (y, x)
    canal_hu: float | None


def _holes(mask: np.ndarray) -> np.ndarray:
    """Background pixels of a 2-D mask not connected (4-connectivity) to the image border."""
    inv = (mask == 0).astype(np.uint8)
    n, comp = cv2.connectedComponents(inv, connectivity=4)
    border = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    inside = np.setdiff1d(np.arange(1, n), border)
    return np.isin(comp, inside)


_Canal = tuple[float, tuple[float, float] | None, np.ndarray | None]  # area, centre, hole mask


def _canal(footprint: np.ndarray, spacing_yx: tuple[float, float]) -> _Canal:
    """(area mm², centre (y, x) mm, hole mask) of the largest hole in a level's outline."""
    closed = cv2.morphologyEx(
        footprint.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)
    )
    n, comp, stats, centres = cv2.connectedComponentsWithStats(
        _holes(closed).astype(np.uint8), connectivity=4
    )
    if n <= 1:
        return 0.0, None, None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = float(stats[i, cv2.CC_STAT_AREA]) * spacing_yx[0] * spacing_yx[1]
    cx, cy = centres[i]
    return area, (float(cy) * spacing_yx[0], float(cx) * spacing_yx[1]), comp == i


def _level_canal(
    lab: np.ndarray,
    level: int,
    z0: int,
    z1: int,
    dz: float,
    spacing_yx: tuple[float, float],
    with_c2: bool,
) -> tuple[float, tuple[float, float] | None, np.ndarray | None, tuple[int, int]]:
    """(area mm², centre, hole mask, (first, last) plane) of the level's canal: the largest
    hole of a plausible size among the whole outline and its slabs, else the whole outline's."""
    n = max(1, round(CANAL_SLAB_MM / dz))
    windows = [(z0, z1)] + [(a, min(a + n - 1, z1)) for a in range(z0, max(z0, z1 - n + 1) + 1)]
    if with_c2:
        windows.append((0, lab.shape[0] - 1))
    found: list[tuple[float, tuple[float, float] | None, np.ndarray | None, tuple[int, int]]] = []
    for a, b in windows:
        part = lab[a : b + 1]
        footprint = (part == level).any(axis=0)
        if with_c2:
            footprint |= (part == 2).any(axis=0)
        area, centre, hole = _canal(footprint, spacing_yx)
        found.append((area, centre, hole, (a, b)))
    good = [f for f in found if CANAL_MIN_MM2 <= f[0] <= CANAL_MAX_MM2]
    return max(good, key=lambda f: f[0]) if good else found[0]


def measure_levels(
    labels: np.ndarray,
    spacing: tuple[float, float, float],
    hu: np.ndarray | None = None,
    min_voxels: int = 10,
) -> dict[str, LevelMeasure]:
    """Measure every level with at least ``min_voxels`` pixels on some plane.

    The canal is looked for in the outline of the whole level and of each ``CANAL_SLAB_MM``
    slab of it (a tilted or turned vertebra's whole outline can cover its own canal); the
    largest hole of a plausible size counts. C1's is looked for in the outline of C1 and C2
    together: the dens of C2 rises through the C1 ring, and a thin ring is often segmented with
    gaps.
    """
    lab = np.asarray(labels)
    dz, dy, dx = (float(s) for s in spacing)
    nz = lab.shape[0]
    flat = lab.reshape(nz, -1)
    areas = np.stack([(flat == v).sum(axis=1) for v in range(1, len(NAMES) + 1)], axis=1)
    out: dict[str, LevelMeasure] = {}
    for i, name in enumerate(NAMES):
        planes = np.nonzero(areas[:, i] >= min_voxels)[0]
        if planes.size == 0:
            continue
        z0, z1 = int(planes[0]), int(planes[-1])
        mask = lab[z0 : z1 + 1] == i + 1
        cols = np.nonzero(mask.any(axis=(0, 1)))[0]
        rows = np.nonzero(mask.any(axis=(0, 2)))[0]
        largest = float(areas[:, i].max())
        cut = None
        if areas[0, i] >= EDGE_CUT_FRACTION * largest and areas[0, i] > 0:
            cut = "top"
        elif areas[-1, i] >= EDGE_CUT_FRACTION * largest and areas[-1, i] > 0:
            cut = "bottom"
        with_c2 = name == "C1" and areas[:, 1].max() >= min_voxels
        area, centre, hole, (h0, h1) = _level_canal(lab, i + 1, z0, z1, dz, (dy, dx), with_c2)
        canal_hu = None
        if hu is not None and hole is not None:
            canal_hu = float(np.median(np.asarray(hu)[h0 : h1 + 1][:, hole]))
        zc = float((areas[:, i] * np.arange(nz)).sum() / max(areas[:, i].sum(), 1)) * dz
        out[name] = LevelMeasure(
            name=name,
            volume_ml=float(areas[:, i].sum()) * dz * dy * dx / 1000.0,
            height_mm=(z1 - z0 + 1) * dz,
            width_mm=(int(cols[-1]) - int(cols[0]) + 1) * dx,
            depth_mm=(int(rows[-1]) - int(rows[0]) + 1) * dy,
            first_plane=z0,
            last_plane=z1,
            centre_z_mm=zc,
            cut=cut,
            canal_mm2=area,
            canal_centre_mm=centre,
            canal_hu=canal_hu,
        )
    return out


# ---------------------------------------------------------------------------------- checking
@dataclass(frozen=True)
class SpineCheck:
    """The outcome of the checks, before any fracture verdict.

    study_reasons : reasons that make the whole study indeterminate (empty = none).
    status        : C1..C7 → assessed / partly_in_view / not_in_view / indeterminate.
    reasons       : C1..C7 → that level's own reasons (the study reasons are not repeated).
    measures      : the measured levels.
    """

    study_reasons: tuple[str, ...]
    status: dict[str, str]
    reasons: dict[str, tuple[str, ...]]
    measures: dict[str, LevelMeasure] = field(default_factory=dict)


def input_reasons(
    modality: str | None,
    n_slices: int,
    slice_mm: float | None,
    source_kind: str | None = None,
) -> tuple[str, ...]:
    """Reasons the input itself cannot give a fracture verdict.

    ``slice_mm``: the larger of the slice spacing and the slice thickness (mm), if known.
    """
    if (source_kind or "").lower() == "image" or n_slices <= 1:
        what = "a picture (PNG/JPEG)" if (source_kind or "").lower() == "image" else "one slice"
        return (
            f"The input is {what}, not a CT series: a fracture verdict needs a CT series "
            "(a stack of axial slices through the neck).",
        )
    out = []
    mod = (modality or "").strip().upper()
    if mod != "CT":
        out.append(
            f"The images are {mod or 'of unknown modality'}, not CT: the model was made for "
            "CT and its fracture verdicts mean nothing on other images."
        )
    if slice_mm is not None and slice_mm > MAX_SLICE_MM + 1e-6:
        out.append(
            f"The slices are {slice_mm:.1f} mm thick; fracture verdicts need slices of at most "
            f"{MAX_SLICE_MM:.0f} mm (a 1–2 mm fracture line is averaged away in thicker slices)."
        )
    return tuple(out)


def _fmt(lo_hi: tuple[float, float]) -> str:
    return f"{lo_hi[0]:g}–{lo_hi[1]:g}"


def _size_reasons(m: LevelMeasure) -> tuple[list[str], bool]:
    """(reasons, too large) for one level's size: the first measure out of range (one reason
    per level keeps the list readable); lower limits only for a level not cut."""
    r = LEVEL_RANGES[m.name]
    out: list[str] = []
    large = False
    checks = (
        ("volume", m.volume_ml, r.volume_ml, "ml"),
        ("height (head to feet)", m.height_mm, r.height_mm, "mm"),
        ("width", m.width_mm, r.width_mm, "mm"),
        ("depth (front to back)", m.depth_mm, r.depth_mm, "mm"),
    )
    for what, value, (lo, hi), unit in checks:
        if value > hi:
            large = large or what in ("volume", "width", "depth (front to back)")
            out.append(
                f"{m.name} is too large for a {m.name}: {what} {value:.0f} {unit} "
                f"(expected {_fmt((lo, hi))} {unit})."
            )
        elif value < lo and m.cut is None:
            out.append(
                f"{m.name} is too small for a {m.name}: {what} {value:.1f} {unit} "
                f"(expected {_fmt((lo, hi))} {unit})."
            )
    return out[:1], large


def check_spine(
    labels: np.ndarray,
    spacing: tuple[float, float, float],
    hu: np.ndarray | None = None,
    *,
    relabelled_fraction: float | None = None,
    input_problems: tuple[str, ...] = (),
    min_voxels: int = 10,
) -> SpineCheck:
    """Run every check on one label map (see the module docstring for the contract)."""
    measures = measure_levels(labels, spacing, hu, min_voxels)
    study: list[str] = list(input_problems)
    own: dict[str, list[str]] = {n: [] for n in NAMES}
    status = {n: NOT_IN_VIEW for n in NAMES}
    for n in measures:
        status[n] = ASSESSED
    if not measures:
        study.append("No cervical vertebra was found in the images.")
    present = [n for n in NAMES if n in measures]

    # coverage
    for n in present:
        if measures[n].cut:
            status[n] = PARTLY_IN_VIEW
            own[n].append(
                f"{n} is cut by the {measures[n].cut} edge of the scan: part of it is outside "
                "the images."
            )

    # sizes, and what they say about the body part
    too_large = []
    for n in present:
        reasons, large = _size_reasons(measures[n])
        if reasons:
            status[n] = INDETERMINATE
            own[n].extend(reasons)
        if large:
            too_large.append(n)
    uncut = [n for n in present if measures[n].cut is None] or present
    if len(too_large) >= 2 and len(too_large) * 2 >= len(uncut):
        study.append(
            f"{len(too_large)} of the {len(present)} levels found are larger than cervical "
            "vertebrae: the images look like a thoracic or lumbar spine, not a neck."
        )

    # order and contiguity
    for upper, lower in pairwise(present):
        if measures[lower].centre_z_mm <= measures[upper].centre_z_mm:
            study.append(
                f"{lower} was found at or above {upper}: the levels are not in head-to-feet order."
            )
        gap = (measures[lower].first_plane - measures[upper].last_plane - 1) * float(spacing[0])
        if gap > MAX_GAP_MM:
            study.append(
                f"There is a gap of {gap:.0f} mm between {upper} and {lower}; neighbouring "
                f"vertebrae are at most {MAX_GAP_MM:.0f} mm apart."
            )
    missing = [n for n in NAMES if present and present[0] < n < present[-1] and n not in measures]
    if missing:
        study.append(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing between "
            f"{present[0]} and {present[-1]}: the levels are not contiguous."
        )

    # the canal
    no_canal = []
    for n in present:
        m = measures[n]
        if m.cut is not None:
            continue
        if m.canal_mm2 < CANAL_MIN_MM2 or m.canal_mm2 > CANAL_MAX_MM2:
            no_canal.append(n)
            own[n].append(f"No vertebral canal was found inside the outline of {n}.")
        elif m.canal_hu is not None and m.canal_hu > CANAL_MAX_HU:
            no_canal.append(n)
            own[n].append(
                f"What {n} encloses is bone-dense ({m.canal_hu:.0f} HU), not a vertebral canal."
            )
    for n in no_canal:
        status[n] = INDETERMINATE
    checked = [n for n in present if measures[n].cut is None]
    if checked and len(no_canal) * 2 > len(checked):
        study.append(
            "No vertebral canal runs through most of the levels found: what was segmented may "
            "not be a spine."
        )
    centres = {n: c for n in present if (c := measures[n].canal_centre_mm) is not None}
    for upper, lower in pairwise(centres):
        if NAMES.index(lower) - NAMES.index(upper) != 1:
            continue
        (y0, x0), (y1, x1) = centres[upper], centres[lower]
        step = float(np.hypot(y1 - y0, x1 - x0))
        if step > MAX_CANAL_STEP_MM and upper not in no_canal and lower not in no_canal:
            study.append(
                f"The vertebral canal jumps {step:.0f} mm sideways between {upper} and {lower}: "
                "it is not one continuous canal."
            )

    # the level assignment
    if relabelled_fraction is not None and relabelled_fraction > MAX_RELABELLED_FRACTION:
        study.append(
            f"The level assignment had to relabel {relabelled_fraction:.0%} of the vertebra "
            f"pixels (at most {MAX_RELABELLED_FRACTION:.0%} is trusted): the levels may be wrong."
        )

    study_reasons = tuple(dict.fromkeys(study))
    if study_reasons:
        status = {n: (INDETERMINATE if s != NOT_IN_VIEW else s) for n, s in status.items()}
    for n in NAMES:
        if status[n] == NOT_IN_VIEW:
            own[n] = ["Not in the images (outside the scan, or not found)."]
    return SpineCheck(
        study_reasons=study_reasons,
        status=status,
        reasons={n: tuple(dict.fromkeys(own[n])) for n in NAMES},
        measures=measures,
    )


# ---------------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class FinalVerdicts:
    """Which fracture verdicts may be given. ``fractured`` is None where the status is not
    assessed; patient reasons are the study reasons, or which levels could not be assessed."""

    status: dict[str, str]
    reasons: dict[str, tuple[str, ...]]
    fractured: dict[str, bool | None]
    patient_status: str
    patient_reasons: tuple[str, ...]
    patient_fractured: bool | None


def final_verdicts(
    check: SpineCheck, fractured: dict[str, bool], patient_fractured: bool
) -> FinalVerdicts:
    """Combine the checks with the model's verdicts.

    A vertebra keeps its verdict only when assessed. The patient is assessed when no study
    reason stands and either all of C1–C7 were assessed or an assessed vertebra is fractured
    (a finding in what was seen stands; a "no fracture" needs the whole spine, and a patient
    probability that includes levels not assessed decides nothing alone).
    """
    status = dict(check.status)
    vert = {n: (bool(fractured[n]) if status[n] == ASSESSED else None) for n in NAMES}
    if check.study_reasons:
        return FinalVerdicts(status, check.reasons, vert, INDETERMINATE, check.study_reasons, None)
    unassessed = [n for n in NAMES if status[n] != ASSESSED]
    seen_fracture = any(vert[n] for n in NAMES)
    if not unassessed or seen_fracture:
        return FinalVerdicts(
            status, check.reasons, vert, ASSESSED, (), bool(patient_fractured or seen_fracture)
        )
    reason = (
        f"{_names(unassessed)} could not be assessed ("
        + "; ".join(f"{n}: {status[n].replace('_', ' ')}" for n in unassessed)
        + "), so a patient-level verdict of no fracture cannot be given."
    )
    return FinalVerdicts(status, check.reasons, vert, INDETERMINATE, (reason,), None)


def _names(names: list[str]) -> str:
    """ "C1–C3" for a run, "C1, C4" otherwise."""
    idx = [NAMES.index(n) for n in names]
    if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{names[0]}–{names[-1]}"
    return ", ".join(names)
