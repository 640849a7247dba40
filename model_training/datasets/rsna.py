"""Reader for the RSNA 2022 Cervical Spine Fracture Detection layout.

::

    root/
      train.csv                      StudyInstanceUID, patient_overall, C1 … C7 (0/1)
      train_bounding_boxes.csv       StudyInstanceUID, x, y, width, height, slice_number
      train_images/<StudyUID>/<n>.dcm
      segmentations/<StudyUID>.nii   labels 0 bg, 1–7 = C1–C7 (8+ = thoracic → background)
      cspine_phantom.json | .csv     optional: patient id, fracture kind/severity per study
      fracture_masks/<StudyUID>.nii.gz  optional: voxel mask of fractured bone

Box coordinates are DICOM pixel columns (x) and rows (y) of the image ``<slice_number>.dcm``.
Only the CSVs, the folder listing and one DICOM header per study are read here; pixel data
and masks are read when the cache is built (:mod:`.cache`). Nothing here raises on a bad
study: it is left out and recorded in :class:`~.report.SkipReport`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cspine_desktop.errors import CorruptFileError, StudyNotFoundError

from .report import NOTE, PARTIAL, SkipReport

VERTEBRAE = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")
TRAIN_COLUMNS = ("StudyInstanceUID", "patient_overall", *VERTEBRAE)
BOX_COLUMNS = ("StudyInstanceUID", "x", "y", "width", "height", "slice_number")

# Studies of the RSNA 2022 training set that participants commonly leave out because of data
# problems reported in the competition's discussion forum (thread 344862). Extend per site.
KNOWN_BAD_STUDIES: frozenset[str] = frozenset(
    {"1.2.826.0.1.3680043.20574", "1.2.826.0.1.3680043.29952"}
)


@dataclass(frozen=True)
class Box:
    """A fracture bounding box on one DICOM image: pixel ``x`` (column), ``y`` (row),
    ``width``, ``height`` (pixels) on the image file ``<slice_number>.dcm``."""

    slice_number: int
    x: float
    y: float
    width: float
    height: float


@dataclass
class RsnaStudy:
    """One study of the index: truths from train.csv, where its files are, what it has."""

    study_uid: str
    patient_id: str
    image_dir: Path
    fractured: tuple[bool, ...]  # C1 … C7
    patient_overall: bool
    segmentation: Path | None = None
    fracture_mask: Path | None = None
    boxes: list[Box] = field(default_factory=list)
    fractures: list[dict[str, Any]] = field(default_factory=list)  # kind, severity, … (extras)

    @property
    def has_location(self) -> bool:
        """True when the fracture's position is known (voxel mask or boxes)."""
        return self.fracture_mask is not None or bool(self.boxes)


@dataclass
class RsnaIndex:
    """The readable studies of one RSNA-layout folder and the report of what was left out."""

    root: Path
    studies: list[RsnaStudy]
    report: SkipReport

    def __len__(self) -> int:
        return len(self.studies)

    def by_uid(self) -> dict[str, RsnaStudy]:
        return {s.study_uid: s for s in self.studies}


# --------------------------------------------------------------------------- CSV helpers
def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return [c.strip() for c in (reader.fieldnames or [])], rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorruptFileError(f"{path.name} cannot be read: {exc}") from exc


def _flag(row: dict[str, str], column: str) -> bool:
    value = (row.get(column) or "").strip()
    try:
        v = float(value)
    except ValueError:
        v = -1.0
    if v not in (0.0, 1.0):
        raise ValueError(f"{column} is {value!r}, expected 0 or 1")
    return v == 1.0


def _read_truths(root: Path, report: SkipReport) -> dict[str, tuple[tuple[bool, ...], bool]]:
    path = root / "train.csv"
    if not path.is_file():
        raise StudyNotFoundError(f"{root} is not an RSNA-layout folder: train.csv is missing")
    columns, rows = _read_csv(path)
    missing = [c for c in TRAIN_COLUMNS if c not in columns]
    if missing:
        raise CorruptFileError(f"train.csv lacks the column(s) {', '.join(missing)}")
    truths: dict[str, tuple[tuple[bool, ...], bool]] = {}
    for n, row in enumerate(rows, start=2):
        uid = (row.get("StudyInstanceUID") or "").strip()
        try:
            if not uid:
                raise ValueError("no StudyInstanceUID")
            fractured = tuple(_flag(row, c) for c in VERTEBRAE)
            overall = _flag(row, "patient_overall")
        except (ValueError, TypeError, KeyError) as exc:
            report.add(uid, "csv", f"train.csv line {n} is not usable: {exc}", path)
            continue
        if uid in truths:
            report.add(
                uid,
                "csv",
                f"train.csv line {n} repeats the study; first row kept",
                path,
                action=NOTE,
            )
            continue
        if overall != any(fractured):
            report.add(
                uid,
                "csv",
                f"train.csv line {n}: patient_overall={int(overall)} "
                "disagrees with C1–C7; C1–C7 kept",
                path,
                action=NOTE,
            )
            overall = any(fractured)
        truths[uid] = (fractured, overall)
    return truths


def _read_boxes(root: Path, report: SkipReport) -> dict[str, list[Box]]:
    path = root / "train_bounding_boxes.csv"
    if not path.is_file():
        return {}
    try:
        columns, rows = _read_csv(path)
    except CorruptFileError as exc:
        report.add("", "boxes", f"{exc}; boxes not used", path, action=PARTIAL)
        return {}
    missing = [c for c in BOX_COLUMNS if c not in columns]
    if missing:
        report.add(
            "",
            "boxes",
            f"train_bounding_boxes.csv lacks the column(s) {', '.join(missing)}; boxes not used",
            path,
            action=PARTIAL,
        )
        return {}
    boxes: dict[str, list[Box]] = {}
    for n, row in enumerate(rows, start=2):
        uid = (row.get("StudyInstanceUID") or "").strip()
        try:
            box = Box(
                int(float(row["slice_number"])),
                float(row["x"]),
                float(row["y"]),
                float(row["width"]),
                float(row["height"]),
            )
            if box.width <= 0 or box.height <= 0:
                raise ValueError("width and height must be positive")
        except (ValueError, TypeError, KeyError) as exc:
            report.add(
                uid,
                "boxes",
                f"train_bounding_boxes.csv line {n} ignored: {exc}",
                path,
                action=PARTIAL,
            )
            continue
        boxes.setdefault(uid, []).append(box)
    return boxes


def _read_extras(root: Path, report: SkipReport) -> dict[str, dict[str, Any]]:
    """Per-study extras of the phantom (patient id, fracture list). Absent → {}."""
    path = root / "cspine_phantom.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.add(
            "",
            "extras",
            f"{path.name} cannot be read ({exc}); fracture kinds unknown",
            path,
            action=PARTIAL,
        )
        return {}
    studies = data.get("studies", data) if isinstance(data, dict) else data
    if isinstance(studies, dict):
        studies = [dict(v, study_uid=k) if isinstance(v, dict) else {} for k, v in studies.items()]
    out: dict[str, dict[str, Any]] = {}
    for item in studies if isinstance(studies, list) else []:
        uid = str(item.get("study_uid") or item.get("StudyInstanceUID") or "")
        if uid:
            out[uid] = item
    return out


# --------------------------------------------------------------------------- files
def _first_file_patient_id(files: list[Path]) -> str | None:
    import pydicom  # local: only needed when the extras do not name the patient

    for f in files[:3]:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["PatientID"])
            pid = str(ds.get("PatientID", "") or "").strip()
            return pid or None
        except Exception:  # an unreadable first file is reported when the cache is built
            continue
    return None


def dicom_files(image_dir: Path) -> list[Path]:
    """The ``*.dcm`` files of a study folder, in numeric file-name order."""
    files = [p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() == ".dcm"]
    return sorted(
        files, key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0, p.name)
    )


def _mask_path(folder: Path, uid: str) -> Path | None:
    for suffix in (".nii", ".nii.gz"):
        p = folder / f"{uid}{suffix}"
        if p.is_file():
            return p
    return None


# --------------------------------------------------------------------------- entry point
def read_rsna(
    root: str | os.PathLike[str], skip: Iterable[str] | None = KNOWN_BAD_STUDIES
) -> RsnaIndex:
    """Index an RSNA-layout folder (see module docstring).

    ``skip``: StudyInstanceUIDs to leave out (default: :data:`KNOWN_BAD_STUDIES`; ``None`` or
    ``()`` keeps all). Raises :class:`StudyNotFoundError` / :class:`CorruptFileError` only when
    the folder as a whole is unusable (no train.csv, train.csv without its columns); single bad
    studies are left out and recorded in ``index.report``.
    """
    root = Path(root)
    if not root.is_dir():
        raise StudyNotFoundError(f"{root} is not a folder")
    report = SkipReport()
    truths = _read_truths(root, report)
    boxes = _read_boxes(root, report)
    extras = _read_extras(root, report)
    skip_set = set(skip or ())
    images = root / "train_images"
    studies: list[RsnaStudy] = []
    for uid, (fractured, overall) in truths.items():
        if uid in skip_set:
            report.add(uid, "csv", "on the skip list of known bad studies")
            continue
        image_dir = images / uid
        files = dicom_files(image_dir) if image_dir.is_dir() else []
        if not files:
            report.add(uid, "images", "listed in train.csv but has no images", image_dir)
            continue
        extra = extras.get(uid, {})
        pid = str(extra.get("patient_id") or "") or _first_file_patient_id(files) or uid
        study_boxes = boxes.get(uid, [])
        if study_boxes and not overall:
            report.add(
                uid,
                "boxes",
                "boxes given for a study without fracture; boxes not used",
                root / "train_bounding_boxes.csv",
                action=PARTIAL,
            )
            study_boxes = []
        studies.append(
            RsnaStudy(
                study_uid=uid,
                patient_id=pid,
                image_dir=image_dir,
                fractured=fractured,
                patient_overall=overall,
                segmentation=_mask_path(root / "segmentations", uid),
                fracture_mask=_mask_path(root / "fracture_masks", uid),
                boxes=study_boxes,
                fractures=list(extra.get("fractures", [])),
            )
        )
    if images.is_dir():
        for d in sorted(p for p in images.iterdir() if p.is_dir() and p.name not in truths):
            report.add(d.name, "csv", "has images but no row in train.csv", d)
    for uid in sorted(set(boxes) - set(truths)):
        report.add(
            uid,
            "boxes",
            "boxes for a study not in train.csv; ignored",
            root / "train_bounding_boxes.csv",
            action=PARTIAL,
        )
    return RsnaIndex(root=root, studies=studies, report=report)
