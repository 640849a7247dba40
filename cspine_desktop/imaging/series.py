"""Series grouping and choice: which images of a study form the CT volume to analyse.

Images are grouped by SeriesInstanceUID. Images whose SeriesInstanceUID was removed (some
anonymisers do) are grouped by study, frame of reference, orientation, matrix size and pixel
spacing instead and loaded with a warning; such a group is refused, with the groups named, only
when it cannot be told apart: its images repeat slice positions (two series mixed), or two such
groups are equally good choices. Inside a series, images that do not belong to the
stack are left out with a warning: exact duplicate copies, localizer (scout) images, and
images whose orientation, matrix size or pixel spacing differ from the majority. A series is
usable when it holds CT images (not secondary captures, dose reports or localizers) with the
geometry needed to stack them. The default choice is the axial CT series with the most slices,
the thinnest slices breaking ties; non-axial CT is taken only when no axial series exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InconsistentSeriesError, StudyNotFoundError, UnsupportedModalityError
from .dicom_index import NO_SERIES_UID, ImageHeader, OtherObject, ScanResult
from .geometry import is_axial
from .volume import SeriesInfo

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
DOSE_SR_CLASSES = {"1.2.840.10008.5.1.4.1.1.88.67", "1.2.840.10008.5.1.4.1.1.88.68"}
LOCALIZER_WORDS = ("LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "SCANOGRAM")


@dataclass
class SeriesGroup:
    """The images (after clean-up) and other objects of one series, with the verdict."""

    uid: str
    headers: list[ImageHeader]
    others: list[OtherObject] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    usable: bool = False
    reason: str = ""
    axial: bool = False
    modality: str = ""
    description: str = ""

    @property
    def has_uid(self) -> bool:
        """False for images grouped without a SeriesInstanceUID (see :func:`describe`)."""
        return not self.uid.startswith(NO_SERIES_UID)

    @property
    def thickness(self) -> float | None:
        values = [h.thickness for h in self.headers if h.thickness]
        return float(sorted(values)[len(values) // 2]) if values else None

    def info(self) -> SeriesInfo:
        image_type = self.headers[0].image_type if self.headers else ()
        n = len(self.headers) if self.headers else len(self.others)
        return SeriesInfo(
            series_uid=self.uid,
            description=self.description,
            modality=self.modality,
            n_slices=n,
            image_type=image_type,
            slice_thickness_mm=self.thickness,
            usable=self.usable,
            reason=self.reason,
        )


def group_series(scan: ScanResult) -> list[SeriesGroup]:
    """Group, clean and judge every series found by the header scan."""
    by_uid: dict[str, list[ImageHeader]] = {}
    for h in scan.headers:
        by_uid.setdefault(h.series_uid, []).append(h)
    others: dict[str, list[OtherObject]] = {}
    for o in scan.others:
        others.setdefault(o.series_uid, []).append(o)
    groups = []
    for uid in list(by_uid) + [u for u in others if u not in by_uid]:
        headers = by_uid.get(uid, [])
        group = SeriesGroup(uid, headers, others.get(uid, []), scan.series_meta.get(uid, {}))
        first: ImageHeader | OtherObject = headers[0] if headers else group.others[0]
        group.modality = first.modality
        group.description = str(group.meta.get("SeriesDescription") or first.description)
        _clean(group)
        _judge(group)
        if not group.has_uid and group.headers:
            _judge_without_uid(group)
        groups.append(group)
    groups.sort(key=lambda g: (not g.usable, not g.axial, -len(g.headers)))
    return groups


def choose_series(groups: list[SeriesGroup], series_uid: str | None, where: str) -> SeriesGroup:
    """The series to load; raises a typed error saying why none can be."""
    if series_uid is not None:
        for g in groups:
            if g.uid == series_uid:
                if not g.usable:
                    raise UnsupportedModalityError(f"Series {series_uid}: {g.reason}.")
                return g
        available = ", ".join(g.uid for g in groups[:5]) or "none"
        raise StudyNotFoundError(
            f"{where} holds no series with UID {series_uid} (series found: {available})."
        )
    usable = [g for g in groups if g.usable]
    if not usable:
        if not groups:
            raise StudyNotFoundError(f"{where} holds no DICOM image series.")
        imaged = [g for g in groups if g.headers] or groups
        biggest = max(imaged, key=lambda g: len(g.headers))
        others = sorted({g.reason for g in groups if g is not biggest})
        extra = f" Also found: {'; '.join(others)}." if others else ""
        raise UnsupportedModalityError(
            f"{where} holds no CT series to analyse. {biggest.reason[:1].upper()}"
            f"{biggest.reason[1:]}.{extra}"
        )
    axial = [g for g in usable if g.axial]
    pool = axial or usable

    def rank(g: SeriesGroup) -> tuple[int, float]:
        return (len(g.headers), -(g.thickness or 0.0))

    best = max(pool, key=rank)
    tied = [g for g in pool if rank(g) == rank(best) and not g.has_uid]
    if not best.has_uid and len(tied) > 1:
        raise InconsistentSeriesError(
            f"{where} holds {len(tied)} equally likely series whose images have no "
            f"SeriesInstanceUID, so cspine cannot tell which to analyse: "
            f"{'; '.join(describe(g) for g in tied)}. Give each series its own folder, or keep "
            "the SeriesInstanceUID when anonymising."
        )
    if not axial:
        best.warnings.append(
            "No axial CT series in the study; loaded the non-axial series "
            f"'{best.description or best.uid}' instead."
        )
    return best


def _same(a: Any, b: Any, tol: float) -> bool:
    """Equal within ``tol`` (absolute) for numeric tuples; exact otherwise (None, ints)."""
    if a is None or b is None or not isinstance(a, tuple) or not a or isinstance(a[0], int):
        return bool(a == b)
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= tol


def _majority_group(items: list[ImageHeader], key: Any, tol: float) -> list[ImageHeader]:
    """The largest cluster of items whose ``key`` agree within ``tol`` (first seen wins ties)."""
    clusters: list[tuple[Any, list[ImageHeader]]] = []
    for x in items:
        k = key(x)
        for ref, members in clusters:
            if _same(k, ref, tol):
                members.append(x)
                break
        else:
            clusters.append((k, [x]))
    return max(clusters, key=lambda c: len(c[1]))[1]


def _clean(group: SeriesGroup) -> None:
    """Leave out images that cannot belong to the stack, with a warning for each kind."""
    h = group.headers
    if not h:
        return
    seen: set[tuple[str, int | None]] = set()
    unique = []
    for x in h:
        key = (x.sop_uid, x.frame)
        if x.sop_uid and key in seen:
            continue
        seen.add(key)
        unique.append(x)
    _note(group, len(h) - len(unique), "duplicate copies of the same image were ignored")
    h = unique
    kept = [x for x in h if not _is_localizer_image(x)]
    if kept:
        _note(group, len(h) - len(kept), "localizer (scout) images were left out")
        h = kept
    kept = [x for x in h if x.position is not None and x.orientation is not None]
    if kept:
        _note(group, len(h) - len(kept), "images without position or orientation were left out")
        h = kept
    for what, value_of, tol in (
        ("a different orientation", lambda x: x.orientation, 1e-3),
        ("a different matrix size", lambda x: (x.rows, x.cols), 0),
        ("a different pixel spacing", lambda x: x.pixel_spacing, 1e-3),
    ):
        kept = _majority_group(h, value_of, tol)
        _note(group, len(h) - len(kept), f"images with {what} than the rest were left out")
        h = kept
    group.headers = h


def _note(group: SeriesGroup, n: int, text: str) -> None:
    if n > 0:
        group.warnings.append(f"{n} {text}.")


def _is_localizer_image(h: ImageHeader) -> bool:
    return "LOCALIZER" in h.image_type


def describe(group: SeriesGroup) -> str:
    """A series in words, for messages about series that have no UID to name them by."""
    if not group.headers:
        return f"{len(group.others)} object(s) without images"
    h = group.headers[0]
    bits = [f"{len(group.headers)} images of {h.rows}×{h.cols}"]
    if h.pixel_spacing:
        bits.append(f"{h.pixel_spacing[0]:g}×{h.pixel_spacing[1]:g} mm pixels")
    if h.orientation is not None:
        bits.append("axial" if is_axial(h.orientation) else "not axial")
    if group.description:
        bits.append(f"'{group.description}'")
    bits.append(f"e.g. {h.file.name}")
    return ", ".join(bits)


def _judge_without_uid(group: SeriesGroup) -> None:
    """Images grouped without a SeriesInstanceUID: refuse when they repeat slice positions
    (more than one series with the same geometry is mixed), else warn how they were grouped."""
    positions = [
        tuple(round(v, 2) for v in x.position) for x in group.headers if x.position is not None
    ]
    if len(set(positions)) < len(positions):
        group.usable = False
        group.reason = (
            f"images without a SeriesInstanceUID that cannot be told apart ({describe(group)}): "
            f"they lie at only {len(set(positions))} distinct positions, so they hold more than "
            "one series with the same study, frame of reference, orientation, size and "
            "spacing; give each series its own folder, or keep the SeriesInstanceUID when "
            "anonymising"
        )
        return
    group.warnings.append(
        f"The {len(group.headers)} images have no SeriesInstanceUID (an anonymiser may have "
        "removed it); they were read as one series because they share the study, frame of "
        "reference, orientation, matrix size and pixel spacing."
    )


def _judge(group: SeriesGroup) -> None:
    desc = group.description.upper()
    h = group.headers
    modality = group.modality or (
        "CT" if h and h[0].sop_class.startswith("1.2.840.10008.5.1.4.1.1.2") else ""
    )
    if not h:
        is_dose = any(o.sop_class in DOSE_SR_CLASSES for o in group.others) or "DOSE" in desc
        group.reason = (
            "dose report, not images"
            if is_dose
            else (f"{modality or 'DICOM'} object without images")
        )
        return
    first = h[0]
    sop = first.sop_class
    if sop == SECONDARY_CAPTURE or sop.startswith(SECONDARY_CAPTURE + "."):
        kind = "dose report" if "DOSE" in desc else "secondary capture (screenshots)"
        group.reason = f"{kind}, not CT slices"
    elif modality != "CT":
        group.reason = f"{modality or 'Unknown modality'} series: cspine reads CT"
    elif "DOSE" in first.image_type or ("DOSE" in desc and "REPORT" in desc):
        group.reason = "dose report, not CT slices"
    elif all(_is_localizer_image(x) for x in h) or (
        any(w in desc for w in LOCALIZER_WORDS) and len(h) <= 3
    ):
        group.reason = "localizer (scout) images, not a CT series"
    elif first.samples != 1:
        group.reason = "colour images, not CT slices"
    elif first.orientation is None or first.position is None:
        group.reason = "images lack ImagePositionPatient/ImageOrientationPatient to be stacked"
    else:
        group.usable = True
        group.axial = is_axial(first.orientation)
